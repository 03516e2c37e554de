"""The escalation ladder: where each debtor stands (reminder call -> second call -> operator call -> letter ->
court candidate), computed from the ledger by the rules in config, with the evidence behind it.

`positions(cfg, day)` is the one domain function: for every account that owes (the debt rules of
ivr.ledger.eligibility, exclusions aside) it reads the heard calls since the last payment, the last payment and
the letters printed since, and places the account on the ladder:

- reminder: no heard call since the last payment;
- second_call: `ladder.second_call_after_heard` heard calls;
- operator_call: `ladder.operator_after_heard` heard calls and `ladder.operator_after_days` days since the first;
- letter: `ladder.letter_after_days` days since the first heard call (and the operator call reached);
- court: the letter stage reached, remaining debt above `court.threshold`, `court.min_heard_calls` heard calls
  (never fewer than one), `court.days_without_payment` days since the first heard call, and, with
  `court.require_letter`, a letter printed since the last payment.

Each stage carries the day it was reached (derived from the evidence, so a late run gives the same dates). Any
payment restarts the ladder: the calls that count are those heard after it. A person may move an account by
hand (`move`: the history row and the audit log say who and why); the move holds `ladder.manual_hold_days`
days or until the next payment. Nobody reaches the court stage without a heard call on record: the rules need
one, `move` refuses it, and `court_candidates` checks it once more. `record` writes the rules' moves into the
history (LadderMove, by 'rules'); `ivr ladder`, `ivr court-list` and the console's Court page call these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo

import peewee as pw

from ivr.config import Config
from ivr.errors import IvrError
from ivr.ledger import audit
from ivr.ledger.models import Account, Attempt, Campaign, LadderMove, Message, Payment, database, utcnow

STAGES = ("reminder", "second_call", "operator_call", "letter", "court")
LABELS = {"reminder": "reminder call", "second_call": "second call", "operator_call": "operator call",
          "letter": "letter", "court": "court candidate"}
OFF = "off"  # recorded in the history when an account leaves the ladder (it owes nothing that qualifies)
LETTER_DONE = ("printed", "sent", "delivered")


class LadderError(IvrError):
    """A move that cannot be made (unknown stage or account, court without a heard call, no reason...)."""

    exit_code = 2


@dataclass(frozen=True, slots=True)
class HeardCall:
    """One heard call: the evidence. `at` is the debtor's local time."""

    uuid: str  # the FreeSWITCH call id (Unique-ID): matches the switch's own records
    at: datetime
    e164: str
    outcome: str
    heard_ms: int
    message_ms: int

    @property
    def day(self) -> date:
        return self.at.date()


@dataclass(slots=True)
class Position:
    """An account's place on the ladder on a day, and why."""

    account_id: int
    account: str
    name: str
    address: str
    district: str
    debt: Decimal
    currency: str
    stage: str
    since: date  # the day the stage was reached (or set by hand)
    by: str = "rules"  # or the person who set it by hand
    reason: str = ""
    heard: list[HeardCall] = field(default_factory=list)  # since the last payment, oldest first
    last_payment: date | None = None
    letter_on: date | None = None  # the first letter printed since the last payment
    reached: dict[str, date] = field(default_factory=dict)  # stage -> day the rules reached it

    @property
    def first_heard(self) -> date | None:
        return self.heard[0].day if self.heard else None

    def days_without_payment(self, day: date) -> int:
        """Days since the first heard call (after the last payment): the debtor knew, and did not pay."""
        return (day - self.heard[0].day).days if self.heard else 0


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError):  # a bad zone from billing: UTC rather than no evidence at all
        return ZoneInfo("UTC")


def _local(at: datetime, tz: str) -> datetime:
    return at.replace(tzinfo=UTC).astimezone(_zone(tz))


def _dt(value: object) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _d(value: object) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def rule_dates(cfg: Config, heard_days: list[date], debt: Decimal, letter_on: date | None) -> dict[str, date]:
    """The day each stage is reached by the rules (a stage missing: not reached, whatever the day). Pure: the
    heard calls' local days since the last payment, oldest first; the remaining debt; the first letter since."""
    lad, court = cfg.ladder, cfg.court
    n = len(heard_days)
    out: dict[str, date] = {}
    if n < lad.second_call_after_heard:
        return out
    first = heard_days[0]
    out["second_call"] = heard_days[lad.second_call_after_heard - 1]
    if n < lad.operator_after_heard:
        return out
    out["operator_call"] = max(out["second_call"], heard_days[lad.operator_after_heard - 1],
                               first + timedelta(days=lad.operator_after_days))
    out["letter"] = max(out["operator_call"], first + timedelta(days=lad.letter_after_days))
    need = max(1, court.min_heard_calls)  # config says at least 1; this is the guard that never lets 0 through
    if debt <= Decimal(str(court.threshold)) or n < need:
        return out
    if court.require_letter and letter_on is None:
        return out
    candidates = [out["letter"], heard_days[need - 1], first + timedelta(days=court.days_without_payment)]
    if court.require_letter and letter_on is not None:
        candidates.append(letter_on)
    out["court"] = max(candidates)
    return out


def positions(cfg: Config, day: date, account_ids: list[int] | None = None) -> list[Position]:
    """Every account that owes on `day` (or those of `account_ids`) placed on the ladder, by district and
    account number. Set-wise reads (the verdicts, the heard calls, the last payments, the letters, the moves),
    whole tables at once when every account is asked for: no query per account, no IN list of thousands."""
    from ivr.ledger import eligibility

    if account_ids is None:
        verdicts = [v for v in eligibility.evaluate(cfg, day) if v.owes]
    else:
        got, _listed = eligibility.check_accounts(cfg, account_ids, day)
        verdicts = [got[i] for i in sorted(got) if got[i].owes]
    if not verdicts:
        return []
    ids = None if account_ids is None else [v.account_id for v in verdicts]
    wanted = {v.account_id for v in verdicts}
    info: dict[int, tuple[str, str, str, str]] = {}
    q = Account.select(Account.id, Account.name, Account.address, Account.district, Account.timezone)
    for aid, name, address, district, tz in _read(q, Account.id, ids):
        if aid in wanted:
            info[aid] = (name, address, district, tz or cfg.locale.timezone)
    end = datetime(day.year, day.month, day.day) + timedelta(days=2)  # local day ends before this in UTC
    last_paid = _last_payments(ids, wanted, day)
    heard = _heard_calls(ids, wanted, end, info)
    letters = _letters(ids, wanted, end, info)
    moves = _manual_moves(ids, wanted, day)
    out = []
    for v in verdicts:
        name, address, district, _tz = info[v.account_id]
        paid = last_paid.get(v.account_id)
        calls = [c for c in heard.get(v.account_id, []) if c.day <= day and (paid is None or c.day > paid)]
        letter_on = next((d for d in letters.get(v.account_id, []) if d <= day and (paid is None or d > paid)),
                         None)
        dates = rule_dates(cfg, [c.day for c in calls], v.remaining, letter_on)
        reached = {s: d for s, d in dates.items() if d <= day}
        stage = next((s for s in reversed(STAGES) if s in reached), "reminder")
        p = Position(v.account_id, v.number, name, address, district, v.remaining, v.currency, stage,
                     reached.get(stage) or _owing_since(v, paid, day), heard=calls,
                     last_payment=paid, letter_on=letter_on, reached=reached)
        p.reason = _why(cfg, p, day)
        move = moves.get(v.account_id)
        if move is not None and (paid is None or move.day >= paid) and \
                move.day + timedelta(days=cfg.ladder.manual_hold_days) > day and \
                (move.stage != "court" or calls):
            p.stage, p.since, p.by = move.stage, move.day, move.by
            p.reason = f"set by hand by {move.by} on {move.day}: {move.reason}"
        out.append(p)
    out.sort(key=lambda p: (p.district, p.account))
    return out


def _owing_since(v: object, paid: date | None, day: date) -> date:
    """Since when a debtor without a heard call is at the reminder stage: the day after the last payment, else
    since the debt became overdue (or its balance date)."""
    if paid is not None:
        return paid + timedelta(days=1)
    return getattr(v, "overdue_since", None) or getattr(v, "balance_date", None) or day


def _why(cfg: Config, p: Position, day: date) -> str:
    n = len(p.heard)
    after = f" since the payment of {p.last_payment}" if p.last_payment else ""
    if p.stage == "reminder":
        return f"no heard call{after}"
    text = f"{n} heard call(s){after}, the first on {p.first_heard} ({p.days_without_payment(day)} days without " \
           f"payment)"
    if p.stage == "court":
        text += f"; debt {p.debt} above {Decimal(str(cfg.court.threshold)):.2f}"
        if p.letter_on:
            text += f"; letter printed {p.letter_on}"
    return text


def _read(query: pw.Select, column: pw.Field, ids: list[int] | None) -> list[tuple]:
    """The query's rows as the driver gives them (peewee's per-value conversion costs more than the rules on
    tens of thousands of rows): for every account (`ids` None) in one statement, else in IN lists SQLite
    accepts on any version."""
    db = Account._meta.database
    if ids is None:
        sql, params = query.sql()
        return db.execute_sql(sql, params).fetchall()
    rows: list[tuple] = []
    for i in range(0, len(ids), 900):
        sql, params = query.where(column.in_(ids[i:i + 900])).sql()
        rows.extend(db.execute_sql(sql, params).fetchall())
    return rows


def _last_payments(ids: list[int] | None, wanted: set[int], day: date) -> dict[int, date]:
    q = (Payment.select(Payment.account, pw.fn.MAX(Payment.paid_on)).where(Payment.paid_on <= day)
         .group_by(Payment.account))
    return {aid: _d(paid_on) for aid, paid_on in _read(q, Payment.account, ids) if aid in wanted}


def _heard_calls(ids: list[int] | None, wanted: set[int], end: datetime, info: dict
                 ) -> dict[int, list[HeardCall]]:
    """Heard debt-reminder calls (not staff test calls, not outage notices or installment reminders: ivr.campaign
    .kinds) per account, oldest first, at the debtor's local time."""
    out: dict[int, list[HeardCall]] = {}
    debt = Campaign.select(Campaign.id).where(Campaign.kind == "debt")
    q = (Attempt.select(Attempt.account, Attempt.uuid, Attempt.created_at, Attempt.answered_at, Attempt.e164,
                        Attempt.outcome, Attempt.heard_ms, Attempt.message_ms)
         .where((Attempt.heard == True) & (Attempt.kind == "campaign") & (Attempt.created_at < end)  # noqa: E712
                & (Attempt.campaign.is_null() | Attempt.campaign.in_(debt))))
    rows = [r for r in _read(q, Attempt.account, ids) if r[0] in wanted]
    rows.sort(key=lambda r: (_dt(r[3] or r[2]), r[1]))
    for aid, uuid, created, answered, e164, outcome, heard_ms, message_ms in rows:
        at = _local(_dt(answered or created), info[aid][3])
        out.setdefault(aid, []).append(HeardCall(uuid, at, e164, outcome, heard_ms or 0, message_ms or 0))
    return out


def _letters(ids: list[int] | None, wanted: set[int], end: datetime, info: dict) -> dict[int, list[date]]:
    """The local days letters were printed (or sent) per account, oldest first."""
    out: dict[int, list[date]] = {}
    q = (Message.select(Message.account, Message.created_at)
         .where((Message.channel == "letter") & Message.status.in_(LETTER_DONE) & (Message.created_at < end)))
    for aid, created in sorted((r for r in _read(q, Message.account, ids) if r[0] in wanted),
                               key=lambda r: _dt(r[1])):
        out.setdefault(aid, []).append(_local(_dt(created), info[aid][3]).date())
    return out


def _manual_moves(ids: list[int] | None, wanted: set[int], day: date) -> dict[int, LadderMove]:
    """The latest move made by hand on or before `day`, per account."""
    out: dict[int, LadderMove] = {}
    q = LadderMove.select().where((LadderMove.by != "rules") & (LadderMove.day <= day))
    if ids is not None:
        q = q.where(LadderMove.account.in_(ids))
    for m in q.order_by(LadderMove.at, LadderMove.id):
        if m.account_id in wanted:
            m.day = _d(m.day)
            out[m.account_id] = m
    return out


def court_candidates(cfg: Config, day: date) -> list[Position]:
    """The accounts on the court stage on `day`, each with at least one heard call on record (the guard is
    checked here once more, whatever put them there)."""
    return [p for p in positions(cfg, day) if p.stage == "court" and p.heard]


def counts(items: list[Position]) -> dict[str, int]:
    """Accounts per stage, in ladder order."""
    return {s: sum(p.stage == s for p in items) for s in STAGES}


def move(cfg: Config, account: str, stage: str, actor: str, reason: str, day: date,
         now: datetime | None = None) -> LadderMove:
    """Move an account by hand (recorded in the history and the audit log). Moving to court needs a heard call
    since the last payment: the evidence the legal department needs."""
    if stage not in STAGES:
        raise LadderError(f"stage {stage!r} is not allowed; allowed: {', '.join(STAGES)}")
    if not actor or actor == "rules":
        raise LadderError("a move by hand is made by a person: actor missing (or named 'rules', the rules' own "
                          "mark)")
    reason = reason.replace("\r", " ").replace("\n", " ").strip()[:400]
    if not reason:
        raise LadderError("say why the account is moved by hand (--reason): it is kept in the history")
    acc = Account.get_or_none(Account.number == account)
    if acc is None:
        raise LadderError(f"no account {account!r}")
    if stage == "court":
        found = positions(cfg, day, [acc.id])
        if not found or not found[0].heard:
            raise LadderError(f"account {account} cannot become a court candidate: no heard call on record since "
                              "its last payment")
    with database.atomic():
        row = LadderMove.create(account=acc, stage=stage, at=now or utcnow(), day=day, by=actor[:100],
                                reason=reason)
        audit.record(actor, "ladder.move", account, {"stage": stage, "day": day.isoformat(), "reason": reason})
    return row


def record(cfg: Config, day: date, now: datetime | None = None) -> dict[str, int]:
    """Write the rules' moves of `day` into the history: one LadderMove (by 'rules') per account whose stage
    differs from its last recorded one ('off' for one that left the ladder). Returns moves per stage."""
    now = now or utcnow()
    current = positions(cfg, day)
    last: dict[int, str] = {}
    for aid, stage in (LadderMove.select(LadderMove.account, LadderMove.stage)
                       .where(LadderMove.day <= day).order_by(LadderMove.at, LadderMove.id).tuples()):
        last[aid] = stage
    rows = []
    on = set()
    for p in current:
        on.add(p.account_id)
        if last.get(p.account_id) != p.stage and p.by == "rules":
            rows.append({"account": p.account_id, "stage": p.stage, "at": now, "day": p.since, "by": "rules",
                         "reason": p.reason[:400]})
    for aid, stage in last.items():
        if aid not in on and stage != OFF:
            rows.append({"account": aid, "stage": OFF, "at": now, "day": day, "by": "rules",
                         "reason": "owes nothing that qualifies"})
    with database.atomic():
        for i in range(0, len(rows), 500):
            LadderMove.insert_many(rows[i:i + 500]).execute()
    moved: dict[str, int] = {}
    for r in rows:
        moved[r["stage"]] = moved.get(r["stage"], 0) + 1
    return moved


def history(account: str) -> list[LadderMove]:
    """An account's recorded moves, oldest first."""
    acc = Account.get_or_none(Account.number == account)
    if acc is None:
        raise LadderError(f"no account {account!r}")
    return list(LadderMove.select().where(LadderMove.account == acc).order_by(LadderMove.at, LadderMove.id))


COURT_COLUMNS = ["account", "name", "address", "district", "debt", "currency", "heard_calls", "heard_call_times",
                 "heard_call_numbers", "heard_call_ids", "first_heard_on", "days_without_payment", "last_payment_on",
                 "letter_printed_on", "candidate_since", "set_by"]

# columns holding billing's text: made formula-safe for a spreadsheet (numbers and ids are our own, validated)
BILLING_TEXT = {COURT_COLUMNS.index(c) for c in ("account", "name", "address", "district")}


def court_rows(items: list[Position], day: date) -> list[list[str]]:
    """The court list as rows of text (COURT_COLUMNS): each heard call's local time, number and call id."""
    out = []
    for p in items:
        out.append([p.account, p.name, p.address, p.district, f"{p.debt:.2f}", p.currency, str(len(p.heard)),
                    "; ".join(c.at.strftime("%Y-%m-%d %H:%M") for c in p.heard),
                    "; ".join(c.e164 for c in p.heard), "; ".join(c.uuid for c in p.heard),
                    str(p.first_heard or ""), str(p.days_without_payment(day)), str(p.last_payment or ""),
                    str(p.letter_on or ""), str(p.since), p.by])
    return out
