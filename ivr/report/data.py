"""The morning report's facts: set-based queries over one campaign, turned into plain dataclasses.

Nothing here formats or writes files; html.py, csvout.py and export.py do. A handful of queries load the
campaign's queue, attempts, balances and payments (one pass each, however many accounts), then everything is
grouped in Python. Definitions (shown in the report too):

- person: an account queued in the campaign (eligible), or one called in it without a queue entry.
- called: at least one attempt; reached: an attempt was answered; heard: an attempt has the heard flag (or the
  outcome 'heard'); pay-now / callback: an attempt ended with that choice.
- local time: each debtor's time zone (Account.timezone, else locale.timezone).
- debt: the latest Balance on or before the campaign day.
- money within N days: payments dated from the anchor day to anchor + N days, inclusive. The anchor is the
  local day of the first heard call (for reached debtors who never heard the message: the first answered call);
  for eligible debtors who were not reached (the control group) it is the campaign day.
- final outcome of a person: the most significant outcome of their attempts (FINAL_PRECEDENCE).
- test calls (`ivr call`, Attempt.kind 'test') are no one's attempts: they are left out of every figure above and
  listed apart (`test_calls`: those placed on the campaign's local day).
"""

from __future__ import annotations

import gc
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo

import peewee as pw

from ivr.config import Config
from ivr.errors import IvrError
from ivr.ledger.models import (
    ATTEMPT_IN_FLIGHT,
    Account,
    Attempt,
    Balance,
    CallbackRequest,
    Campaign,
    Holdout,
    Message,
    Payment,
    Phone,
    QueueEntry,
    database,
)
from ivr.logs import mask_number
from ivr.report import stats

WINDOWS = (1, 3, 7)

# ledger outcome code -> what a manager reads
LABELS: dict[str, str] = {
    "heard": "heard", "early_hangup": "hung up early", "not_heard": "hung up early", "no_answer": "no answer",
    "busy": "busy", "invalid_number": "invalid number", "rejected": "declined", "failed": "failed",
    "congestion": "failed", "trunk_error": "failed", "rate_limited": "failed", "pay_now": "pay now", "callback": "callback",
    "already_paid": "already paid", "wrong_number": "wrong number", "opted_out": "opted out", "unknown": "unknown",
    "in_progress": "in progress", "not_called": "not called", "machine": "answering machine",
}
# the order labels are listed in (tables and charts)
LABEL_ORDER = ["pay now", "callback", "already paid", "wrong number", "opted out", "heard", "hung up early",
               "answering machine", "no answer", "busy", "declined", "invalid number", "failed", "unknown", "in progress", "not called"]
# an account's final word for the evening: the first of these among its attempts' outcomes
FINAL_PRECEDENCE = ["pay_now", "callback", "already_paid", "wrong_number", "opted_out", "heard", "early_hangup",
                    "not_heard", "machine", "invalid_number", "busy", "rejected", "no_answer", "congestion",
                    "trunk_error", "rate_limited", "failed", "unknown", "in_progress"]
_RANK = {code: i for i, code in enumerate(FINAL_PRECEDENCE)}
ANSWERED_OUTCOMES = frozenset({"heard", "early_hangup", "not_heard", "pay_now", "callback", "already_paid",
                               "wrong_number", "opted_out"})


@dataclass(slots=True)
class AttemptRow:
    uuid: str
    at_utc: datetime  # naive UTC, as stored
    at_local: datetime  # aware, debtor's time zone
    number_masked: str
    outcome: str  # ledger code; 'in_progress' while the call is still up
    label: str
    answered: bool
    heard: bool
    digits: str
    hangup_cause: str
    duration_s: int
    heard_ms: int
    message_ms: int
    inbound: bool = False  # the debtor called back (Attempt.kind 'inbound'); counts like a call we placed


@dataclass(slots=True)
class StaffCallRow:
    """A staff test call (`ivr call`): whose message, to which number, how it went. Counted nowhere else."""

    uuid: str
    at_local: datetime  # aware, locale.timezone
    account: str
    number_masked: str
    outcome: str
    label: str
    heard: bool
    digits: str


@dataclass(slots=True)
class PaymentRow:
    amount: Decimal
    paid_on: date


@dataclass(slots=True)
class PersonRow:
    account_id: int
    account: str
    name: str
    district: str
    address: str
    timezone: str
    number_masked: str
    debt: Decimal
    queue_state: str  # '' when called without a queue entry
    queue_outcome: str
    attempts: list[AttemptRow] = field(default_factory=list)
    payments: list[PaymentRow] = field(default_factory=list)  # since the first call (or the campaign day)

    # derived by finish() once the attempts and payments are attached
    called: bool = False
    reached: bool = False
    heard: bool = False
    final_outcome: str = "not_called"  # ledger code of the most significant outcome (FINAL_PRECEDENCE)
    final_label: str = "not called"
    outcomes: frozenset[str] = frozenset()
    paid: Decimal = Decimal("0")

    def finish(self) -> None:
        self.called = bool(self.attempts)
        self.reached = any(a.answered for a in self.attempts)
        self.heard = any(a.heard for a in self.attempts)
        self.outcomes = frozenset(a.outcome for a in self.attempts)
        if self.outcomes:
            self.final_outcome = min(self.outcomes, key=lambda o: _RANK.get(o, len(_RANK)))
        self.final_label = LABELS.get(self.final_outcome, self.final_outcome)
        self.paid = sum((p.amount for p in self.payments), Decimal("0"))

    def deciding_attempt(self) -> AttemptRow | None:
        """The attempt whose outcome is the final one (the latest of them)."""
        matching = [a for a in self.attempts if a.outcome == self.final_outcome]
        return matching[-1] if matching else None

    def has_outcome(self, code: str) -> bool:
        return code in self.outcomes


@dataclass
class Totals:
    eligible: int
    called: int
    reached: int
    heard: int
    pay_now: int
    callbacks: int
    already_paid: int
    wrong_number: int
    attempts: int
    in_flight: int
    debt_eligible: Decimal
    opted_out: int = 0  # pressed the opt-out key: the number is on the do-not-call list
    called_back: int = 0  # calls the debtors made back to the caller-ID number (Attempt.kind 'inbound')
    called_back_heard: int = 0  # of those, calls in which the message was heard
    machines: int = 0  # calls an answering machine took (outcome machine; the debtor is retried)


@dataclass
class MoneyFigures:
    group: str  # 'reached' | 'not reached'
    accounts: int
    debt: Decimal
    paid: dict[int, Decimal]  # window days -> sum paid
    payers: dict[int, int]  # window days -> accounts that paid anything
    share: dict[int, float | None]  # window days -> paid / debt (None when debt is 0)


@dataclass
class ChannelRow:
    """One channel's evening: debtors it was used for, what it sent, how many it reached, failed, still pending.

    voice: sent = calls, reached = debtors who answered, failed = debtors called but never reached.
    sms: reached = delivery receipt; failed = undelivered, expired or refused; pending = no receipt yet.
    email: reached = accepted by the server; failed = bounced or refused. letter: reached = printed."""

    channel: str
    people: int
    sent: int
    reached: int
    failed: int
    pending: int = 0


MESSAGE_REACHED = {"sms": ("delivered",), "email": ("sent", "delivered"), "letter": ("printed",)}
MESSAGE_FAILED = ("failed", "bounced", "expired")


def channel_rows(camp: Campaign, totals: Totals) -> list[ChannelRow]:
    """Outcomes per channel for the campaign: voice from the calls, the others from its Message rows."""
    rows = [ChannelRow("voice", totals.called, totals.attempts, totals.reached, totals.called - totals.reached)]
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    people: dict[str, int] = {}
    for channel, status, n in _raw(Message.select(Message.channel, Message.status, pw.fn.COUNT(Message.id))
                                   .where(Message.campaign == camp).group_by(Message.channel, Message.status)):
        counts[channel][status] = n
    for channel, n in _raw(Message.select(Message.channel, pw.fn.COUNT(Message.account.distinct()))
                           .where(Message.campaign == camp).group_by(Message.channel)):
        people[channel] = n
    for channel in ("sms", "email", "letter"):
        c = counts.get(channel, {})
        if not c:
            continue
        reached = sum(c.get(s, 0) for s in MESSAGE_REACHED[channel])
        failed = sum(c.get(s, 0) for s in MESSAGE_FAILED)
        rows.append(ChannelRow(channel, people.get(channel, 0), sum(c.values()), reached, failed,
                               sum(c.values()) - reached - failed))
    return rows


@dataclass
class HoldoutRow:
    """Within `days` days of the campaign day: how many of each group paid anything, and the difference."""

    days: int
    contacted_payers: int
    held_payers: int
    contacted_paid: Decimal
    held_paid: Decimal
    diff: stats.Difference | None  # share of contacted who paid minus share of held-out who paid, with its CI


@dataclass
class HoldoutComparison:
    """Contacted vs held-out debtors (ivr.campaign.holdout): the only comparison that measures the effect."""

    share: float  # campaign.holdout_share when the evening was drawn
    seed: str
    contacted: int
    held: int
    contacted_debt: Decimal
    held_debt: Decimal
    rows: list[HoldoutRow]
    method: str = stats.METHOD


@dataclass
class HourRow:
    hour: int  # local hour 0..23
    calls: int
    answers: int

    @property
    def answer_rate(self) -> float | None:
        return self.answers / self.calls if self.calls else None


@dataclass
class DistrictRow:
    district: str
    eligible: int = 0
    called: int = 0
    reached: int = 0
    heard: int = 0
    pay_now: int = 0
    callbacks: int = 0
    outcomes: Counter = field(default_factory=Counter)  # final label -> persons


@dataclass
class ReportData:
    day: date
    campaign_status: str
    campaign_reason: str
    currency: str
    timezone: str
    generated_at: datetime
    totals: Totals
    money: list[MoneyFigures]
    hours: list[HourRow]
    districts: list[DistrictRow]
    attempt_outcomes: Counter  # label -> attempts
    final_outcomes: Counter  # label -> persons
    people: list[PersonRow]
    test_calls: list[StaffCallRow] = field(default_factory=list)  # shown apart, counted nowhere
    holdout: HoldoutComparison | None = None  # None: no hold-out group that evening
    channels: list[ChannelRow] = field(default_factory=list)  # outcomes per channel (voice first)
    life_support: list[LifeSupportRow] = field(default_factory=list)  # every life-support account, informed?


@dataclass(slots=True)
class LifeSupportRow:
    """A life-support account in the morning report: informed in person about its debt or not, by whom, when."""

    account: str
    name: str
    district: str
    informed_by: str  # '' = not informed
    informed_at: datetime | None  # local time
    robot_may_call: bool  # whether automated debt reminders may follow (life_support.after_informed.debt)
    other_kinds: str  # notices of other kinds, 'outage: petro 2026-11-20 10:00'


def life_support_rows(cfg: Config) -> list[LifeSupportRow]:
    """Every life-support account and whether a person informed it (ivr.campaign.lifesupport), as the ledger
    stands when the report is made."""
    from ivr.campaign import lifesupport

    tz = cfg.locale.timezone
    rows = []
    for r in lifesupport.status_rows():
        debt = r.informed.get("debt")
        others = "; ".join(f"{k}: {n.informed_by} {to_local(n.informed_at, tz):%Y-%m-%d %H:%M}"
                           for k, n in sorted(r.informed.items()) if k != "debt")
        rows.append(LifeSupportRow(r.account, r.name, r.district, debt.informed_by if debt else "",
                                   to_local(debt.informed_at, tz) if debt else None,
                                   lifesupport.refusal(True, "debt", debt, cfg) is None, others))
    return rows


@lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def to_local(at_utc: datetime, tz: str) -> datetime:
    return at_utc.replace(tzinfo=UTC).astimezone(_zone(tz))


_CENT = Decimal("0.01")


def _raw(query: pw.Query) -> list[tuple]:
    """Rows as the driver returns them: peewee's per-value conversion costs 5x on 100,000s of rows."""
    return database.execute(query).fetchall()


def _dt(value: datetime | str | None) -> datetime | None:
    """Naive UTC datetime from a raw value (SQLite keeps ISO text, PostgreSQL a datetime)."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


def _day(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value[:10])


def _money(value: Decimal | float | int | str | None) -> Decimal:
    return Decimal("0.00") if value is None else Decimal(str(value)).quantize(_CENT)


def latest_campaign_day() -> date:
    row = Campaign.select(pw.fn.MAX(Campaign.day)).where(Campaign.kind == "debt").scalar()
    if row is None:
        raise IvrError("no campaign in the database yet: run `ivr campaign` (or `ivr demo`) first")
    return row if isinstance(row, date) else date.fromisoformat(str(row))


def get_campaign(day: date) -> Campaign:
    camp = Campaign.get_or_none(Campaign.day == day, Campaign.kind == "debt", Campaign.ref == "")
    if camp is None:
        days = [c.day for c in Campaign.select(Campaign.day).where(Campaign.kind == "debt").order_by(Campaign.day.desc()).limit(5)]
        known = ", ".join(str(d) for d in days) or "none yet"
        raise IvrError(f"no campaign on {day}; campaigns on: {known}")
    return camp


def _person_ids(camp: Campaign) -> pw.SelectQuery:
    """Every account of the campaign: queued or called (a UNION subquery)."""
    return (QueueEntry.select(QueueEntry.account).where(QueueEntry.campaign == camp)
            | Attempt.select(Attempt.account).where(Attempt.campaign == camp, Attempt.kind != "test"))


def _load_people(cfg: Config, camp: Campaign) -> dict[int, PersonRow]:
    default_tz = cfg.locale.timezone
    people: dict[int, PersonRow] = {}
    rows = _raw(QueueEntry.select(Account.id, Account.number, Account.name, Account.district, Account.address,
                                  Account.timezone, QueueEntry.state, QueueEntry.outcome)
                .join(Account).where(QueueEntry.campaign == camp))
    for aid, number, name, district, address, tz, state, outcome in rows:
        people[aid] = PersonRow(aid, number, name, district, address, tz or default_tz, "", Decimal("0"),
                                state, outcome)
    # accounts called in this campaign without a queue entry (a queue entry closed and removed by hand)
    extra = _raw(Account.select(Account.id, Account.number, Account.name, Account.district, Account.address,
                                Account.timezone)
                 .where(Account.id.in_(Attempt.select(Attempt.account)
                                       .where(Attempt.campaign == camp, Attempt.kind != "test")),
                        # NOT EXISTS, not NOT IN: PostgreSQL runs a NOT IN over a million queue entries that do
                        # not fit work_mem as a subplan per account (the report of 1,000,000 never ended)
                        ~pw.fn.EXISTS(QueueEntry.select(pw.SQL("1")).where(
                            (QueueEntry.campaign == camp) & (QueueEntry.account == Account.id)))))
    for aid, number, name, district, address, tz in extra:
        people[aid] = PersonRow(aid, number, name, district, address, tz or default_tz, "", Decimal("0"), "", "")
    return people


def _attach_numbers(camp: Campaign, people: dict[int, PersonRow]) -> None:
    """The number shown for a person: their first valid phone (masked); calls show their own number."""
    rows = _raw(Phone.select(Phone.account, Phone.e164, Phone.raw, Phone.valid)
                .where(Phone.account.in_(_person_ids(camp)))
                .order_by(Phone.account, Phone.valid.desc(), Phone.position))
    for aid, e164, raw, _valid in rows:
        person = people.get(aid)
        if person is not None and not person.number_masked:
            person.number_masked = mask_number(e164 or raw)


def _attach_debts(camp: Campaign, people: dict[int, PersonRow]) -> None:
    latest = (Balance.select(Balance.account.alias("acc"), pw.fn.MAX(Balance.as_of).alias("last"))
              .where(Balance.as_of <= camp.day, Balance.account.in_(_person_ids(camp)))
              .group_by(Balance.account).alias("latest"))
    rows = _raw(Balance.select(Balance.account, Balance.amount)
                .join(latest, on=((Balance.account == latest.c.acc) & (Balance.as_of == latest.c.last))))
    for aid, amount in rows:
        if aid in people:
            people[aid].debt = _money(amount)


def _attach_attempts(camp: Campaign, people: dict[int, PersonRow]) -> None:
    by_number = {p.account: p for p in people.values()}
    masked: dict[str, str] = {}
    rows = _raw(Attempt.select(Attempt.account, Attempt.accounts, Attempt.uuid, Attempt.e164, Attempt.state,
                               Attempt.outcome, Attempt.created_at, Attempt.answered_at, Attempt.heard,
                               Attempt.digits, Attempt.hangup_cause, Attempt.duration_s, Attempt.heard_ms,
                               Attempt.message_ms, Attempt.kind)
                .where(Attempt.campaign == camp, Attempt.kind != "test").order_by(Attempt.created_at, Attempt.id))
    for (aid, carried, uuid, e164, state, outcome, created, answered_at, heard, digits, cause, duration,
         heard_ms, message_ms, kind) in rows:
        code = outcome or ("in_progress" if state in ATTEMPT_IN_FLIGHT else "unknown")
        created = _dt(created)
        owners = {aid}
        # one call may carry the messages of several accounts sharing the number
        if "," in carried or ";" in carried:
            for other in carried.replace(";", ",").split(","):
                if other.strip() in by_number:
                    owners.add(by_number[other.strip()].account_id)
        for owner in owners:
            person = people.get(owner)
            if person is None:
                continue
            person.attempts.append(AttemptRow(
                uuid=uuid, at_utc=created, at_local=to_local(created, person.timezone),
                number_masked=masked.get(e164) or masked.setdefault(e164, mask_number(e164)), outcome=code, label=LABELS.get(code, code),
                answered=answered_at is not None or code in ANSWERED_OUTCOMES,
                heard=bool(heard) or code == "heard", digits=digits, hangup_cause=cause,
                duration_s=duration or 0, heard_ms=heard_ms or 0, message_ms=message_ms or 0,
                inbound=kind == "inbound"))


def staff_test_calls(cfg: Config, day: date) -> list[StaffCallRow]:
    """The staff test calls placed on local `day` (locale.timezone), oldest first."""
    tz = cfg.locale.timezone
    start = datetime(day.year, day.month, day.day, tzinfo=_zone(tz)).astimezone(UTC).replace(tzinfo=None)
    end = (datetime(day.year, day.month, day.day, tzinfo=_zone(tz)) + timedelta(days=1)
           ).astimezone(UTC).replace(tzinfo=None)
    rows = _raw(Attempt.select(Attempt.uuid, Attempt.created_at, Account.number, Attempt.e164, Attempt.state,
                               Attempt.outcome, Attempt.heard, Attempt.digits)
                .join(Account).where(Attempt.kind == "test", Attempt.created_at >= start, Attempt.created_at < end)
                .order_by(Attempt.created_at, Attempt.id))
    out = []
    for uuid, created, account, e164, state, outcome, heard, digits in rows:
        code = outcome or ("in_progress" if state in ATTEMPT_IN_FLIGHT else "unknown")
        out.append(StaffCallRow(uuid, to_local(_dt(created), tz), account, mask_number(e164), code,
                               LABELS.get(code, code), bool(heard), digits or ""))
    return out


def _anchor(person: PersonRow, day: date) -> date:
    """The day money is counted from: first heard call, else first answered call, else the campaign day."""
    for wanted in ("heard", "answered"):
        for a in person.attempts:
            if getattr(a, wanted):
                return a.at_local.date()
    return day


def _load_payments(camp: Campaign) -> dict[int, list[PaymentRow]]:
    # a day of margin: a debtor east of the default zone may have been called on the previous local date
    rows = _raw(Payment.select(Payment.account, Payment.amount, Payment.paid_on)
                .where(Payment.paid_on >= camp.day - timedelta(days=1), Payment.account.in_(_person_ids(camp)))
                .order_by(Payment.paid_on, Payment.id))
    out: dict[int, list[PaymentRow]] = defaultdict(list)
    for aid, amount, paid_on in rows:
        out[aid].append(PaymentRow(_money(amount), _day(paid_on)))
    return out


def _money_figures(group: str, members: list[tuple[PersonRow, date, list[PaymentRow]]]) -> MoneyFigures:
    debt = sum((p.debt for p, _, _ in members), Decimal("0"))
    paid: dict[int, Decimal] = {}
    payers: dict[int, int] = {}
    share: dict[int, float | None] = {}
    for n in WINDOWS:
        total, count = Decimal("0"), 0
        for _person, anchor, payments in members:
            s = sum((x.amount for x in payments if anchor <= x.paid_on <= anchor + timedelta(days=n)), Decimal("0"))
            if s:
                total += s
                count += 1
        paid[n], payers[n] = total, count
        share[n] = float(total / debt) if debt > 0 else None
    return MoneyFigures(group, len(members), debt, paid, payers, share)


def _holdout_comparison(camp: Campaign, people: dict[int, PersonRow],
                        payments: dict[int, list[PaymentRow]]) -> HoldoutComparison | None:
    """Contacted (every account queued to be contacted this evening, reached or not: the group as drawn) vs
    held-out, payments dated from the campaign day to day + N inclusive, for both groups alike."""
    if not camp.holdout_count:
        return None
    held_ids = [a for (a,) in Holdout.select(Holdout.account).where(Holdout.campaign == camp).tuples()]
    held_pay: dict[int, list[PaymentRow]] = defaultdict(list)
    for i in range(0, len(held_ids), 500):
        chunk = held_ids[i:i + 500]
        for aid, amount, paid_on in _raw(Payment.select(Payment.account, Payment.amount, Payment.paid_on)
                                         .where(Payment.paid_on >= camp.day, Payment.account.in_(chunk))):
            held_pay[aid].append(PaymentRow(_money(amount), _day(paid_on)))
    held_debt = Decimal("0")
    latest = (Balance.select(Balance.account.alias("acc"), pw.fn.MAX(Balance.as_of).alias("last"))
              .where(Balance.as_of <= camp.day,
                     Balance.account.in_(Holdout.select(Holdout.account).where(Holdout.campaign == camp)))
              .group_by(Balance.account).alias("latest"))
    for (amount,) in _raw(Balance.select(Balance.amount)
                          .join(latest, on=((Balance.account == latest.c.acc) & (Balance.as_of == latest.c.last)))):
        held_debt += _money(amount)
    contacted = [p for p in people.values() if p.queue_state]

    def within(pays: list[PaymentRow], n: int) -> Decimal:
        return sum((x.amount for x in pays if camp.day <= x.paid_on <= camp.day + timedelta(days=n)), Decimal("0"))

    rows = []
    for n in WINDOWS:
        c_sums = [within(payments.get(p.account_id, []), n) for p in contacted]
        h_sums = [within(held_pay.get(a, []), n) for a in held_ids]
        c_k, h_k = sum(1 for x in c_sums if x > 0), sum(1 for x in h_sums if x > 0)
        rows.append(HoldoutRow(n, c_k, h_k, sum(c_sums, Decimal("0")), sum(h_sums, Decimal("0")),
                               stats.newcombe(c_k, len(contacted), h_k, len(held_ids))))
    return HoldoutComparison(camp.holdout_share, camp.holdout_seed, len(contacted), len(held_ids),
                             sum((p.debt for p in contacted), Decimal("0")), held_debt, rows)


@contextmanager
def _no_gc_pauses() -> Iterator[None]:
    """Hold the cyclic GC while ~10^6 small objects are built (it rescans them all: +30 % time); nothing
    built here forms cycles, so nothing is lost."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def build_report(cfg: Config, day: date | None = None, now: datetime | None = None) -> ReportData:
    """All the facts of one campaign's morning report (the latest campaign when `day` is None)."""
    with _no_gc_pauses():
        return _build_report(cfg, day, now)


def _build_report(cfg: Config, day: date | None, now: datetime | None) -> ReportData:
    camp = get_campaign(day or latest_campaign_day())
    people = _load_people(cfg, camp)
    _attach_numbers(camp, people)
    _attach_debts(camp, people)
    _attach_attempts(camp, people)
    payments = _load_payments(camp)

    reached_members, control_members = [], []
    hours: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    attempt_outcomes: Counter = Counter()
    final_outcomes: Counter = Counter()
    districts: dict[str, DistrictRow] = {}
    in_flight = 0
    called_back = called_back_heard = machines = 0
    seen_calls: set[str] = set()
    for person in people.values():
        anchor = _anchor(person, camp.day)
        start = person.attempts[0].at_local.date() if person.attempts else camp.day
        mine = payments.get(person.account_id, [])
        person.payments = [p for p in mine if p.paid_on >= start]
        person.finish()
        if person.reached:
            reached_members.append((person, anchor, mine))
        elif person.queue_state:
            control_members.append((person, anchor, mine))
        for a in person.attempts:
            if a.uuid in seen_calls:  # a call carrying several accounts' messages is still one call
                continue
            seen_calls.add(a.uuid)
            bucket = hours[a.at_local.hour]
            bucket[0] += 1
            bucket[1] += a.answered
            attempt_outcomes[a.label] += 1
            in_flight += a.outcome == "in_progress"
            called_back += a.inbound
            called_back_heard += a.inbound and a.heard
            machines += a.outcome == "machine"
        final_outcomes[person.final_label] += 1
        d = districts.setdefault(person.district, DistrictRow(person.district))
        d.eligible += bool(person.queue_state)
        d.called += person.called
        d.reached += person.reached
        d.heard += person.heard
        d.pay_now += person.has_outcome("pay_now")
        d.callbacks += person.has_outcome("callback")
        d.outcomes[person.final_label] += 1

    rows = sorted(people.values(), key=lambda p: (p.district, p.account))
    queued = [p for p in rows if p.queue_state]
    totals = Totals(
        eligible=camp.eligible_count or len(queued),
        called=sum(p.called for p in rows),
        reached=sum(p.reached for p in rows),
        heard=sum(p.heard for p in rows),
        pay_now=sum(p.has_outcome("pay_now") for p in rows),
        callbacks=sum(p.has_outcome("callback") for p in rows),
        already_paid=sum(p.has_outcome("already_paid") for p in rows),
        wrong_number=sum(p.has_outcome("wrong_number") for p in rows),
        opted_out=sum(p.has_outcome("opted_out") for p in rows),
        called_back=called_back, called_back_heard=called_back_heard, machines=machines,
        attempts=len(seen_calls),
        in_flight=in_flight,
        debt_eligible=sum((p.debt for p in queued), Decimal("0")),
    )
    hour_rows = []
    if hours:
        for h in range(min(hours), max(hours) + 1):
            calls, answers = hours.get(h, (0, 0))
            hour_rows.append(HourRow(h, calls, answers))
    return ReportData(
        day=camp.day, campaign_status=camp.status, campaign_reason=camp.status_reason,
        currency=cfg.locale.currency, timezone=cfg.locale.timezone,
        generated_at=(now or datetime.now(UTC)).astimezone(_zone(cfg.locale.timezone)),
        totals=totals,
        money=[_money_figures("reached", reached_members), _money_figures("not reached", control_members)],
        hours=hour_rows,
        districts=sorted(districts.values(), key=lambda d: d.district),
        attempt_outcomes=attempt_outcomes, final_outcomes=final_outcomes, people=rows,
        test_calls=staff_test_calls(cfg, camp.day),
        holdout=_holdout_comparison(camp, people, payments),
        channels=channel_rows(camp, totals),
        life_support=life_support_rows(cfg),
    )


@dataclass
class CallbackRow:
    district: str
    account: str
    name: str
    number: str  # full E.164: operators dial it (this list is not a log)
    address: str
    requested_at: datetime  # aware, debtor's local time
    debt: Decimal


def callback_rows(cfg: Config, day: date, district: str | None = None) -> list[CallbackRow]:
    """Open (unhandled) callback requests made during the campaign of `day`, by district then time.

    Requests tied to an attempt belong to that attempt's campaign; those without one count when they were made
    on `day` in the default time zone.
    """
    camp = get_campaign(day)
    tz = _zone(cfg.locale.timezone)
    start = datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC).replace(tzinfo=None)
    end = start + timedelta(days=1)
    cond = (CallbackRequest.handled_at.is_null()
            & (CallbackRequest.attempt.in_(Attempt.select(Attempt.id).where(Attempt.campaign == camp))
               | (CallbackRequest.attempt.is_null() & (CallbackRequest.created_at >= start)
                  & (CallbackRequest.created_at < end))))
    district_of = pw.fn.COALESCE(pw.fn.NULLIF(CallbackRequest.district, ""), Account.district)
    if district is not None:
        cond &= district_of == district
    rows = (CallbackRequest.select(CallbackRequest.account, district_of, Account.number, Account.name,
                                   CallbackRequest.e164, Account.address, CallbackRequest.created_at,
                                   Account.timezone)
            .join(Account).where(cond).order_by(district_of, CallbackRequest.created_at).tuples())
    debts: dict[int, Decimal] = {}
    ids = CallbackRequest.select(CallbackRequest.account).join(Account).where(cond)
    latest = (Balance.select(Balance.account.alias("acc"), pw.fn.MAX(Balance.as_of).alias("last"))
              .where(Balance.as_of <= day, Balance.account.in_(ids)).group_by(Balance.account).alias("latest"))
    for aid, amount in (Balance.select(Balance.account, Balance.amount)
                        .join(latest, on=((Balance.account == latest.c.acc) & (Balance.as_of == latest.c.last)))
                        .tuples()):
        debts[aid] = Decimal(amount)
    return [CallbackRow(dist or "", number, name, e164, address,
                        to_local(created, acc_tz or cfg.locale.timezone), debts.get(aid, Decimal("0")))
            for aid, dist, number, name, e164, address, created, acc_tz in rows]
