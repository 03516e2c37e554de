"""Life support first, by a person: the one rule on whether the robot may call a life-support account.

An account flagged `life_support` (billing's accounts export, column `life_support`) is never called by the
robot about a debt, an installment or an outage before a person has informed it: it goes to the operators'
worklist (the top of the callbacks page, `ivr life-support list`, and `_life-support.csv` beside the callback
lists). An operator records "informed" (who, when, which kind: a LifeSupportNotice, also in the audit log); only
then may automated reminders of that kind follow, and only where `life_support.after_informed.<kind>` is `robot`
(outages default to `never`: people only).

`may_call_robot(account, kind)` is the rule; eligibility (`ivr.ledger.eligibility`) applies the same rule to
whole batches through `refusal`, with the notices read set-wise by `latest_notices`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from ivr.config import CAMPAIGN_KINDS, Config
from ivr.errors import IvrError
from ivr.ledger import audit
from ivr.ledger.models import Account, LifeSupportNotice, utcnow

FIRST = "life support: an operator informs first"
DEFAULT_AFTER_INFORMED = {"debt": "robot", "installment": "robot", "outage": "never"}
_UNREAD = object()  # may_call_robot: the caller did not pass the notice


class LifeSupportError(IvrError):
    """A notice that cannot be recorded (unknown kind or account, not flagged, a time in the future...)."""

    exit_code = 2


@dataclass(frozen=True, slots=True)
class Notice:
    """The latest notice of one kind on an account: when and by whom."""

    informed_at: datetime  # naive UTC
    informed_by: str


def after_informed(cfg: Config | None, kind: str) -> str:
    """What may follow a person's notice for `kind`: 'robot' or 'never' (unknown kinds: never)."""
    table = cfg.life_support.after_informed if cfg is not None else DEFAULT_AFTER_INFORMED
    return table.get(kind, "never")


def refusal(life_support: bool, kind: str, notice: Notice | None, cfg: Config | None = None) -> str | None:
    """Why the robot may not call an account about `kind` (None: it may). Plain words for the verdict's reasons."""
    if not life_support:
        return None
    if notice is None:
        return FIRST
    if after_informed(cfg, kind) != "robot":
        return (f"life support: informed by {notice.informed_by} on {notice.informed_at:%Y-%m-%d}; {kind} reminders "
                f"by a person only (life_support.after_informed.{kind}: never)")
    return None


def may_call_robot(account: Account, kind: str, *, cfg: Config | None = None,
                   notice: Notice | None | object = _UNREAD) -> bool:
    """Whether the robot may call `account` about `kind` (debt | installment | outage).

    Not flagged life-support: yes. Flagged: only after a person recorded that they informed it of this kind, and
    only when `life_support.after_informed.<kind>` is robot (without `cfg`: the defaults, outages never).
    `notice` may pass the latest notice already read (None = none on record); left out, it is read here."""
    if not getattr(account, "life_support", False):
        return True
    if after_informed(cfg, kind) != "robot":
        return False  # people only for this kind, informed or not: no need to read the notices
    if notice is _UNREAD:
        notice = latest_notices([account.id], kind).get(account.id)
    return isinstance(notice, Notice)


def latest_notices(account_ids: list[int] | None, kind: str) -> dict[int, Notice]:
    """The latest notice of `kind` per account (of `account_ids`, or every account), in one query."""
    if account_ids is not None and not account_ids:
        return {}
    q = (LifeSupportNotice.select(LifeSupportNotice.account, LifeSupportNotice.informed_at,
                                  LifeSupportNotice.informed_by)
         .where(LifeSupportNotice.kind == kind).order_by(LifeSupportNotice.informed_at, LifeSupportNotice.id))
    if account_ids is not None:
        q = q.where(LifeSupportNotice.account.in_(account_ids))
    out: dict[int, Notice] = {}
    for acc, at, by in q.tuples():
        out[acc] = Notice(at if isinstance(at, datetime) else datetime.fromisoformat(str(at)), by)
    return out


def record_informed(account: Account | str, kind: str, actor: str, *, at: datetime | None = None, note: str = "",
                    now: datetime | None = None) -> LifeSupportNotice:
    """Record that `actor` informed a life-support account about `kind` at `at` (naive UTC, default now); also
    written to the audit log. Refused for an account not flagged life-support (nothing to record) and for a
    time in the future."""
    now = now or utcnow()
    if kind not in CAMPAIGN_KINDS:
        raise LifeSupportError(f"kind {kind!r} is not allowed; allowed: {', '.join(CAMPAIGN_KINDS)}")
    if not actor:
        raise LifeSupportError("a notice is recorded by a person: actor missing")
    acc = account if isinstance(account, Account) else Account.get_or_none(Account.number == account)
    if acc is None:
        raise LifeSupportError(f"no account {account!r}")
    if not acc.life_support:
        raise LifeSupportError(f"account {acc.number} is not flagged life support; nothing to record")
    at = at or now
    if at > now:
        raise LifeSupportError(f"informed at {at:%Y-%m-%d %H:%M}: that time is in the future")
    note = note.replace("\r", " ").replace("\n", " ").strip()[:500]
    row = LifeSupportNotice.create(account=acc, kind=kind, informed_at=at, informed_by=actor[:100], note=note,
                                   recorded_at=now)
    audit.record(actor, "life_support.informed", acc.number,
                 {"kind": kind, "informed_at": at.isoformat(timespec="minutes"), "note": note})
    return row


@dataclass(slots=True)
class PendingItem:
    """A life-support account an operator must inform before the robot may call it."""

    kind: str
    account_id: int
    account: str
    name: str
    district: str
    number: str  # full E.164: the operator dials it ('' = none valid on file)
    address: str
    debt: Decimal
    outage: str = ""  # for kind 'outage': which one and when, e.g. "EM-1 emergency 2026-12-04 18:00–23:00"


def pending(cfg: Config, day: date, district: str | None = None) -> list[PendingItem]:
    """The operators' list: life-support accounts fed from an outage being announced on `day` and not informed
    of it yet (emergencies first, then planned outages by start), then those the robot would call about their
    debt on `day` were it not for this rule (the rule is their only exclusion), not yet informed; by district,
    largest debt first."""
    from ivr.ledger import eligibility

    outage_items = _outage_pending(cfg, day, district)

    q = Account.select().where(Account.life_support == True)  # noqa: E712 (peewee builds SQL from ==)
    if district:
        q = q.where(Account.district == district)
    loaded = list(q.order_by(Account.id))
    if not loaded:
        return outage_items
    verdicts, _listed = eligibility.check_accounts(cfg, [a.id for a in loaded], day, loaded=loaded)
    items = []
    for a in loaded:
        v = verdicts.get(a.id)
        if v is not None and v.owes and v.excluded_by == [FIRST]:
            items.append(PendingItem("debt", a.id, a.number, a.name, a.district, v.e164, a.address, v.remaining))
    items.sort(key=lambda i: (i.district, -i.debt, i.account))
    return outage_items + items


def _outage_pending(cfg: Config, day: date, district: str | None) -> list[PendingItem]:
    """Life-support accounts of each outage announced on `day` (an emergency until it ends, a planned one from
    its first notice day to its start), not informed since the outage was entered or last changed (a notice
    about an earlier outage, or an earlier version of this one, tells nothing about this one)."""
    from ivr.campaign import outages, rules
    from ivr.ledger.models import Outage, Phone

    items: list[PendingItem] = []
    for o in Outage.select().where(Outage.status == "scheduled").order_by(Outage.kind, Outage.starts_at):
        if outages.local_day(cfg, o.ends_at) < day:
            continue
        if o.kind != "emergency" and (outages.local_day(cfg, o.starts_at) < day or
                                      outages.notice_stage(cfg, outages.local_day(cfg, o.starts_at), day) is None):
            continue
        flagged = [a for a in outages.affected_accounts(o) if a.life_support and (not district or
                                                                                  a.district == district)]
        if not flagged:
            continue
        notices = latest_notices([a.id for a in flagged], "outage")
        held: dict[int, list[Phone]] = {}
        for p in Phone.select().where(Phone.account.in_([a.id for a in flagged])).order_by(Phone.position):
            held.setdefault(p.account_id, []).append(p)
        # the number the robot would dial first (rules.callable_phones: valid, not flagged, allowed by policy)
        phones = {aid: ok[0].e164 for aid, ps in held.items() if (ok := rules.callable_phones(aid, ps, cfg))}
        start, end = (t.replace(tzinfo=UTC).astimezone(ZoneInfo(cfg.locale.timezone)) for t in (o.starts_at,
                                                                                               o.ends_at))
        when = f"{start:%Y-%m-%d %H:%M}–{end:%d.%m %H:%M}"  # the company's local time
        for a in flagged:
            n = notices.get(a.id)
            if n is not None and n.informed_at >= o.updated_at:
                continue
            items.append(PendingItem("outage", a.id, a.number, a.name, a.district, phones.get(a.id, ""), a.address,
                                     Decimal("0"), f"{o.code} {o.kind} {when}"))
    return items  # emergencies first ('emergency' sorts before 'planned'), then by start


@dataclass(slots=True)
class StatusRow:
    """A life-support account and whether a person has informed it (per kind), for the morning report."""

    account: str
    name: str
    district: str
    informed: dict[str, Notice]  # kind -> the latest notice


def status_rows() -> list[StatusRow]:
    """Every life-support account with its latest notice per kind, by district and account."""
    accounts = list(Account.select(Account.id, Account.number, Account.name, Account.district)
                    .where(Account.life_support == True)  # noqa: E712
                    .order_by(Account.district, Account.number).tuples())
    if not accounts:
        return []
    ids = [a[0] for a in accounts]
    by_kind = {kind: latest_notices(ids, kind) for kind in _kinds_on_record(ids)}
    return [StatusRow(number, name, district, {k: n[aid] for k, n in by_kind.items() if aid in n})
            for aid, number, name, district in accounts]


def _kinds_on_record(ids: list[int]) -> list[str]:
    rows = (LifeSupportNotice.select(LifeSupportNotice.kind).where(LifeSupportNotice.account.in_(ids))
            .group_by(LifeSupportNotice.kind).tuples())
    return sorted(k for (k,) in rows)


def history(account: Account) -> list[LifeSupportNotice]:
    """Every notice on an account, oldest first."""
    return list(LifeSupportNotice.select().where(LifeSupportNotice.account == account)
                .order_by(LifeSupportNotice.informed_at, LifeSupportNotice.id))


__all__ = ["FIRST", "LifeSupportError", "Notice", "PendingItem", "StatusRow", "after_informed", "history",
           "latest_notices", "may_call_robot", "pending", "record_informed", "refusal", "status_rows"]
