"""Installment reminders: the plans billing agreed with debtors, who is reminded of which due date, and the import.

A plan (InstallmentPlan, its dues InstallmentDue) is kept to while the payments since it started cover every due
so far (the debt rule in ivr.ledger.eligibility: such an account is left out of debt campaigns, and comes back to
them once it falls behind). Each local evening `due_campaigns` starts up to two campaigns:

- `remind`: a due date `installment.remind_days_before` days away (default 3 and 0) that the payments so far do
  not cover yet; the message says the installment's amount (what is still open of it) and its date in words;
- `missed`: a due date `installment.missed_days_after` days ago (default 1) that the payments do not cover; the
  message says the amount behind and the date missed.

Both are re-checked before every call (a payment imported meanwhile ends them).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import peewee as pw

from ivr.campaign import kinds, lifesupport
from ivr.clock import Clock
from ivr.config import Config
from ivr.errors import IvrError
from ivr.ledger import listimport
from ivr.ledger.importer import ImportReport, RowError
from ivr.ledger.models import Account, Campaign, InstallmentDue, InstallmentPlan, Payment, database, utcnow

REFS = ("remind", "missed")
PLAN_RE_MAX = 64


@dataclass(frozen=True)
class Due:
    """One installment an account is called about: the amount still open and its date."""

    account_id: int
    plan_id: int
    due_on: date
    amount: Decimal
    ref: str  # remind | missed


def _open_dues(account_ids: list[int] | None, day: date) -> dict[int, list[tuple[InstallmentPlan, list]]]:
    """Active plans (with their dues in date order) per account."""
    q = InstallmentPlan.select().where(InstallmentPlan.active)
    if account_ids is not None:
        q = q.where(InstallmentPlan.account.in_(account_ids))
    plans = list(q)
    dues: dict[int, list[InstallmentDue]] = {}
    if plans:
        for d in (InstallmentDue.select().where(InstallmentDue.plan.in_([p.id for p in plans]))
                  .order_by(InstallmentDue.due_on, InstallmentDue.id)):
            dues.setdefault(d.plan_id, []).append(d)
    out: dict[int, list[tuple[InstallmentPlan, list]]] = {}
    for p in plans:
        out.setdefault(p.account_id, []).append((p, dues.get(p.id, [])))
    return out


def _paid(account_id: int, since: date, until: date) -> Decimal:
    got = (Payment.select(pw.fn.COALESCE(pw.fn.SUM(Payment.amount), 0))
           .where(Payment.account == account_id, Payment.paid_on >= since, Payment.paid_on <= until).scalar())
    return Decimal(str(got or 0))


def dues_called(cfg: Config, day: date, account_ids: list[int] | None = None) -> dict[str, dict[int, Due]]:
    """ref -> {account id: the due it is called about} on the local evening `day`."""
    sec = cfg.installment
    remind_days = {day + timedelta(days=n) for n in sec.remind_days_before}
    missed_day = day - timedelta(days=sec.missed_days_after) if sec.missed_days_after else None
    out: dict[str, dict[int, Due]] = {"remind": {}, "missed": {}}
    open_dues = _open_dues(account_ids, day)
    # life support: a person informs first (ivr.campaign.lifesupport); the robot only after, if the setting allows
    barred = {a.id for a in Account.select(Account.id, Account.life_support).where(
        Account.id.in_(list(open_dues)), Account.life_support == True)  # noqa: E712 (peewee expression)
        if not lifesupport.may_call_robot(a, "installment", cfg=cfg)} if open_dues else set()
    for acc_id, plans in open_dues.items():
        if acc_id in barred:
            continue
        for plan, dues in plans:
            wanted = [d for d in dues if d.due_on in remind_days or d.due_on == missed_day]
            if not wanted:
                continue
            paid = _paid(acc_id, plan.starts_on, day)
            for d in wanted:
                through = sum((Decimal(x.amount) for x in dues if x.due_on <= d.due_on), Decimal("0"))
                open_ = through - paid
                if open_ <= 0:
                    continue
                if d.due_on == missed_day and acc_id not in out["missed"]:
                    out["missed"][acc_id] = Due(acc_id, plan.id, d.due_on, open_.quantize(Decimal("0.01")),
                                                "missed")
                elif d.due_on in remind_days and acc_id not in out["remind"]:
                    amount = min(Decimal(d.amount), open_).quantize(Decimal("0.01"))
                    out["remind"][acc_id] = Due(acc_id, plan.id, d.due_on, amount, "remind")
    return out


def due_campaigns(cfg: Config, day: date, clock: Clock) -> list[Campaign]:
    """Start (or resume) the installment campaigns of the local evening `day`; return those with anyone to call."""
    from ivr.campaign.queue import start_kind_campaign

    called = dues_called(cfg, day)
    out: list[Campaign] = []
    for ref in REFS:
        who = {a: f"installment of {d.amount} due {d.due_on}" for a, d in called[ref].items()}
        exists = Campaign.select().where(Campaign.day == day, Campaign.kind == "installment",
                                         Campaign.ref == ref).exists()
        if not who and not exists:
            continue
        camp = start_kind_campaign(cfg, day, clock, "installment", ref, who, priority=kinds.priority_of("installment"))
        if who:
            out.append(camp)
        else:
            Campaign.update(status="done", finished_at=utcnow()).where(Campaign.id == camp.id).execute()
    return out


def recheck(cfg: Config, camp: Campaign, account_ids: list[int], day: date) -> dict[int, kinds.AudienceVerdict]:
    """Still an open installment to call about (a payment imported meanwhile ends it)?"""
    called = dues_called(cfg, camp.day, account_ids).get(camp.ref, {})
    why = "installment paid, or the plan changed"
    return {a: kinds.AudienceVerdict(a, a in called, [] if a in called else [why]) for a in account_ids}


def message_values(cfg: Config, camp: Campaign, account: Account, day: date) -> dict[str, Any]:
    """The values of one account's installment message: the amount still open and the due date."""
    d = dues_called(cfg, camp.day, [account.id]).get(camp.ref, {}).get(account.id)
    if d is None:
        raise IvrError(f"account {account.number}: no open installment for campaign {camp.ref} on {camp.day}")
    return {"account": account.number, "name": account.name, "amount": d.amount, "due_date": d.due_on,
            "currency": cfg.locale.currency}


# --- the billing file ------------------------------------------------------------------------------------------

PLAN_COLUMNS = {"plan": "plan", "account": "account", "due_date": "due_date", "amount": "amount",
                "starts_on": "starts_on"}


def import_plans(cfg: Config, path: str | Path, actor: str, today: date | None = None) -> ImportReport:
    """Installment plans from billing: one row per due (plan id, account, due date, amount; optionally the date
    the plan started). A plan in the file gets exactly the file's dues (its earlier ones are replaced); plans not
    in the file are left as they are. Counts are per plan (new / updated / unchanged); bad rows are rejects with
    their line, and a plan with a bad row is loaded without that due (the rejects file holds it to re-import)."""
    started = listimport.started_now()
    today = today or date.today()
    cache: dict[str, Account | None] = {}
    plans: dict[str, dict[str, Any]] = {}

    with listimport.reading(cfg, path, "plans", PLAN_COLUMNS, ("plan", "account", "due_date", "amount")) as rows:
        for line, v, raw in rows.items:
            try:
                ref = v.get("plan", "")
                if not ref or len(ref) > PLAN_RE_MAX or not ref.isprintable():
                    raise RowError(f"plan id {ref!r}: empty, too long or with control characters")
                acc = listimport.account_of(cfg, v.get("account", ""), cache)
                due_on = listimport.day(cfg, v.get("due_date", ""), "due_date")
                amount = listimport.amount(cfg, v.get("amount", ""), "amount")
                starts = listimport.day(cfg, v["starts_on"], "starts_on") if v.get("starts_on") else None
                p = plans.setdefault(ref, {"account": acc, "dues": {}, "starts": starts, "line": line})
                if p["account"].id != acc.id:
                    raise RowError(f"plan {ref} is for account {p['account'].number} (line {p['line']}), "
                                   f"not {acc.number}")
                if due_on in p["dues"]:
                    raise RowError(f"plan {ref} lists {due_on} twice")
                p["dues"][due_on] = amount
                if starts is not None:
                    p["starts"] = starts
            except RowError as exc:
                rows.reject(line, str(exc), raw)
        report = rows.report
        with database.atomic():
            for ref, p in plans.items():
                if not p["dues"]:
                    continue
                starts = p["starts"] or min(min(p["dues"]), today)
                plan = InstallmentPlan.get_or_none(InstallmentPlan.reference == ref)
                new_dues = sorted(p["dues"].items())
                if plan is None:
                    plan = InstallmentPlan.create(account=p["account"].id, starts_on=starts, reference=ref)
                    report.loaded += 1
                else:
                    old = [(d.due_on, Decimal(d.amount)) for d in
                           InstallmentDue.select().where(InstallmentDue.plan == plan.id).order_by(InstallmentDue.due_on)]
                    if (old == new_dues and plan.account_id == p["account"].id and plan.starts_on == starts
                            and plan.active):
                        report.unchanged += 1
                        continue
                    InstallmentPlan.update(account=p["account"].id, starts_on=starts, active=True).where(
                        InstallmentPlan.id == plan.id).execute()
                    InstallmentDue.delete().where(InstallmentDue.plan == plan.id).execute()
                    report.updated += 1
                InstallmentDue.insert_many([{"plan": plan.id, "due_on": d, "amount": a} for d, a in new_dues]
                                           ).execute()
        listimport.record_run(rows, actor, started)
    return report
