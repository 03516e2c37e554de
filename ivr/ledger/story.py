"""One debtor's story: "who called me and why?" answered for one account or one phone number.

`find_accounts(account=|phone=|name=)` finds the accounts; `account_story(cfg, account)` gathers everything the
ledger knows about one: its numbers, balances and payments, every call (campaign and staff test calls, each with
time, number, outcome, heard, keys), callback requests, do-not-call entries, the queue, today's eligibility verdict
with every reason, whether it may be called right now, and the caps used. Plain data (`AccountStory.as_dict()` is
JSON-ready); the CLI (`ivr account`) and the web console render it. Numbers are masked unless `full_numbers`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import peewee as pw

from ivr.campaign import rules
from ivr.campaign.windows import CallWindows
from ivr.config import Config
from ivr.errors import IvrError
from ivr.ledger import dnc, eligibility, trigram
from ivr.ledger.models import (
    ATTEMPT_IN_FLIGHT,
    Account,
    Attempt,
    Balance,
    CallbackRequest,
    Campaign,
    DncEntry,
    Payment,
    Phone,
    QueueEntry,
)
from ivr.ledger.phones import normalize
from ivr.logs import mask_number

FIND_LIMIT = 50


@dataclass
class PhoneLine:
    position: int
    number: str  # E.164 (masked unless full numbers), or the raw text when it never parsed
    valid: bool
    invalid_reason: str
    flagged_at: datetime | None
    on_dnc_list: bool


@dataclass
class BalanceLine:
    as_of: date
    amount: Decimal
    currency: str
    overdue_since: date | None


@dataclass
class PaymentLine:
    paid_on: date
    amount: Decimal
    reference: str
    imported_at: datetime


@dataclass
class CallLine:
    """One call that carried this account's message."""

    uuid: str
    kind: str  # campaign | test (a staff test call: counted nowhere)
    campaign_day: date | None
    at: datetime  # aware, the debtor's local time
    number: str
    outcome: str  # '' while in progress
    heard: bool
    heard_ms: int
    message_ms: int
    keys: str
    hangup_cause: str
    duration_s: int
    shared_with: list[str] = field(default_factory=list)  # other accounts whose message the same call carried
    detail: str = ""
    about: str = ""  # what the call was about when not a debt reminder: "outage notice", "installment reminder"


@dataclass
class CallbackLine:
    requested_at: datetime  # aware, local
    number: str
    district: str
    handled_at: datetime | None
    call: str  # the attempt uuid, '' if none


@dataclass
class DncLine:
    kind: str  # number | account
    value: str
    reason: str
    until: date | None
    added_by: str
    added_at: datetime
    source: str
    state: str  # in force | lapsed | removed
    removed_at: datetime | None
    removed_by: str
    removed_reason: str


@dataclass
class QueueLine:
    campaign_day: date
    state: str
    outcome: str
    attempts: int
    reason: str
    not_before: datetime  # aware, local


@dataclass
class Verdict:
    day: date
    eligible: bool
    remaining: Decimal
    reasons: list[str]
    excluded_by: list[str]
    now: list[str]  # may it be called right now: the day's kind, window, caps (ivr.campaign.rules)


@dataclass
class CapsUsed:
    """What the debtor's caps allow and how much of each is used, in the debtor's local day / week / month."""

    day: date
    attempts_today: int
    max_attempts_per_day: int
    contacts_today: int
    contacts_this_week: int
    contacts_this_month: int
    contact_limits: dict[str, int]  # per_day / per_week / per_month, 0 = no cap
    campaign_attempts: int | None  # in the campaign of `day`, when there is one
    max_attempts_per_campaign: int


@dataclass
class MessageLine:
    """An SMS, e-mail or letter (ivr.channels), or an evening the debtor was held out (channel 'held out')."""

    at: datetime | None  # local time it was written (held out: the campaign day's draw)
    channel: str
    status: str
    address: str  # masked number / e-mail; postal address; '' for held out
    error: str


@dataclass
class LadderLine:
    """Where the account stands on the escalation ladder (ivr.campaign.ladder) and the life-support rule."""

    stage: str  # reminder | second_call | operator_call | letter | court
    label: str
    since: date
    by: str  # 'rules' or the person who moved it by hand
    heard_calls: int  # since the last payment
    reason: str


@dataclass
class AccountStory:
    account: str
    name: str
    address: str
    district: str
    language: str
    timezone: str
    billing_do_not_call: bool
    claimed_paid_at: datetime | None
    phones: list[PhoneLine]
    balances: list[BalanceLine]  # newest first
    payments: list[PaymentLine]  # newest first
    calls: list[CallLine]  # oldest first
    callbacks: list[CallbackLine]
    dnc: list[DncLine]
    queue: list[QueueLine]  # newest campaign first
    verdict: Verdict
    caps: CapsUsed
    full_numbers: bool = False
    messages: list[MessageLine] = field(default_factory=list)  # SMS, e-mail, letters, hold-out evenings; newest first
    ladder: LadderLine | None = None  # None: owes nothing that qualifies, so not on the ladder
    life_support: bool = False  # billing flags it: a person informs it first (reasons say whether one did)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: dates and times as ISO 8601 text, money as text with 2 decimals."""
        return _plain(asdict(self))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    return value


# --- finding -----------------------------------------------------------------------------------------------------

def find_accounts(cfg: Config, *, account: str | None = None, phone: str | None = None, name: str | None = None,
                  limit: int = FIND_LIMIT) -> list[Account]:
    """Accounts by account number (exact), by phone number (any usual form: accounts holding it, and accounts
    whose message was played to it), or by part of the name (case-insensitive where the database can). Exactly
    one of the three."""
    given = [k for k, v in (("account", account), ("phone", phone), ("name", name)) if v and v.strip()]
    if len(given) != 1:
        raise IvrError("look an account up by exactly one of: account number, phone number, name")
    if account:
        return list(Account.select().where(Account.number == account.strip()))
    if phone:
        parsed = normalize(phone.strip(), cfg.locale.country)
        if not parsed.valid:
            raise IvrError(f"{phone!r} is not a phone number: {parsed.reason}")
        holders = Phone.select(Phone.account).where(Phone.e164 == parsed.e164)
        called = Attempt.select(Attempt.account).where(Attempt.e164 == parsed.e164)
        carried = {n for (text,) in Attempt.select(Attempt.accounts).where(Attempt.e164 == parsed.e164).tuples()
                   for n in _split(text)}
        cond = Account.id.in_(holders) | Account.id.in_(called)
        if carried:
            cond |= Account.number.in_(list(carried))
        return list(Account.select().where(cond).order_by(Account.number).limit(limit))
    text = name.strip()  # type: ignore[union-attr]
    return list(Account.select().where(trigram.contains(Account.name, text)).order_by(Account.name, Account.number)
                .limit(limit))


def _money(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


def _split(carried: str) -> list[str]:
    return [x.strip() for x in (carried or "").replace(";", ",").split(",") if x.strip()]


# --- the story ---------------------------------------------------------------------------------------------------

def account_story(cfg: Config, account: Account | str, *, day: date | None = None, now: datetime | None = None,
                  full_numbers: bool = False) -> AccountStory:
    """Everything about one account (an Account or its account number), judged on local `day` (default: today in
    the debtor's time zone) at `now` (aware; default: the current time)."""
    acc = account if isinstance(account, Account) else Account.by_number(account)
    tz = rules.account_tz(cfg, acc)
    zone = ZoneInfo(tz)
    now = now or datetime.now(UTC)
    windows = CallWindows(cfg)
    day = day or windows.local_day(tz, now)

    def shown(number: str) -> str:
        return number if full_numbers else mask_number(number)

    def local(at: datetime | None) -> datetime | None:
        return None if at is None else at.replace(tzinfo=UTC).astimezone(zone)

    phones = list(Phone.select().where(Phone.account == acc).order_by(Phone.position))
    numbers = [p.e164 for p in phones if p.e164]
    listed = dnc.listed_numbers(numbers, day)
    phone_lines = [PhoneLine(p.position, shown(p.e164) if p.e164 else p.raw, p.valid and bool(p.e164),
                             p.invalid_reason, p.flagged_at, p.e164 in listed) for p in phones]
    balances = [BalanceLine(b.as_of, _money(b.amount), b.currency, b.overdue_since)
                for b in Balance.select().where(Balance.account == acc).order_by(Balance.as_of.desc())]
    payments = [PaymentLine(p.paid_on, _money(p.amount), p.reference, p.imported_at)
                for p in Payment.select().where(Payment.account == acc).order_by(Payment.paid_on.desc(),
                                                                                Payment.id.desc())]
    calls = _calls(acc, numbers, local, shown)
    callbacks = [CallbackLine(local(c.created_at), shown(c.e164), c.district, local(c.handled_at),
                              c.attempt.uuid if c.attempt_id else "")
                 for c in CallbackRequest.select(CallbackRequest, Attempt).join(Attempt, pw.JOIN.LEFT_OUTER)
                 .where(CallbackRequest.account == acc).order_by(CallbackRequest.created_at)]
    dnc_lines = [_dnc_line(e, day, shown) for e in dnc.entries_for(acc.number, numbers)]
    queue = [QueueLine(q.campaign.day, q.state, q.outcome, q.attempts, q.reason, local(q.not_before))
             for q in QueueEntry.select(QueueEntry, Campaign).join(Campaign)
             .where(QueueEntry.account == acc).order_by(Campaign.day.desc()).limit(10)]
    v = eligibility.check_account(cfg, acc, day)
    verdict = Verdict(day, v.eligible, v.remaining, list(v.reasons), list(v.excluded_by),
                      rules.explain(cfg, acc, now, windows))
    return AccountStory(
        account=acc.number, name=acc.name, address=acc.address, district=acc.district,
        language=acc.language or cfg.locale.language, timezone=tz, billing_do_not_call=acc.do_not_call,
        claimed_paid_at=acc.claimed_paid_at, phones=phone_lines, balances=balances, payments=payments,
        calls=calls, callbacks=callbacks, dnc=dnc_lines, queue=queue, verdict=verdict,
        caps=_caps(cfg, acc, tz, day, numbers), full_numbers=full_numbers,
        messages=_messages(acc, local, shown, full_numbers), ladder=_ladder(cfg, acc, day),
        life_support=bool(acc.life_support))


def _ladder(cfg: Config, acc: Account, day: date) -> LadderLine | None:
    from ivr.campaign import ladder

    found = ladder.positions(cfg, day, [acc.id])
    if not found:
        return None
    p = found[0]
    return LadderLine(p.stage, ladder.LABELS[p.stage], p.since, p.by, len(p.heard), p.reason)


def _messages(acc: Account, local, shown, full: bool) -> list[MessageLine]:
    """The debtor's messages by other channels and the evenings they were held out, newest first."""
    from ivr.ledger.models import Holdout, Message

    def where(m: Message) -> str:
        if m.channel == "sms":
            return shown(m.address)
        if m.channel == "email":
            local_part, _, domain = m.address.partition("@")
            return m.address if full else f"{local_part[:1]}***@{domain}"
        return m.address

    out = [MessageLine(local(m.created_at), m.channel, m.status, where(m), m.error)
           for m in Message.select().where(Message.account == acc).order_by(Message.created_at.desc()).limit(50)]
    out += [MessageLine(local(h.drawn_at), "held out", f"campaign {h.campaign.day}", "", "")
            for h in Holdout.select(Holdout, Campaign).join(Campaign).where(Holdout.account == acc)
            .order_by(Campaign.day.desc()).limit(20)]
    return sorted(out, key=lambda m: m.at or datetime.min.replace(tzinfo=UTC), reverse=True)


def _calls(acc: Account, numbers: list[str], local, shown) -> list[CallLine]:
    """Calls naming the account, and calls to one of its numbers that carried its message too (a shared number
    is only ever called with the accounts holding it; both look-ups use an index, no scan of every call)."""
    cond = Attempt.account == acc
    if numbers:
        cond |= Attempt.e164.in_(numbers) & Attempt.accounts.contains(acc.number)
    out = []
    for a in (Attempt.select(Attempt, Campaign).join(Campaign, pw.JOIN.LEFT_OUTER).where(cond)
              .order_by(Attempt.created_at, Attempt.id)):
        carried = _split(a.accounts)
        if a.account_id != acc.id and acc.number not in carried:
            continue  # the number text matched inside another account number
        outcome = a.outcome or ("in_progress" if a.state in ATTEMPT_IN_FLIGHT else "")
        out.append(CallLine(a.uuid, a.kind, a.campaign.day if a.campaign_id else None, local(a.created_at),
                            shown(a.e164), outcome, a.heard, a.heard_ms, a.message_ms, a.digits, a.hangup_cause,
                            a.duration_s, [n for n in carried if n != acc.number], a.detail,
                            _about(a.campaign) if a.campaign_id else ""))
    return out


def _about(camp: Campaign) -> str:
    """What a call of this campaign said, for a person reading the story ('' for the debt reminder)."""
    if camp.kind == "outage":
        return "outage notice" if not camp.ref.endswith("-fix") else "outage correction"
    if camp.kind == "installment":
        return "installment reminder" if camp.ref == "remind" else "missed installment"
    return ""


def _dnc_line(e: DncEntry, day: date, shown) -> DncLine:
    state = ("removed" if e.removed_at is not None else "lapsed" if e.until is not None and e.until < day
             else "in force")
    return DncLine(e.kind, shown(e.value) if e.kind == "number" else e.value, e.reason, e.until, e.added_by,
                   e.added_at, e.source, state, e.removed_at, e.removed_by, e.removed_reason)


def _caps(cfg: Config, acc: Account, tz: str, day: date, numbers: list[str]) -> CapsUsed:
    d0, d1 = rules.day_range(tz, day)
    w0, w1 = rules.week_range(tz, day)
    m0, m1 = rules.month_range(tz, day)
    answered = rules.answered_times(acc.id, numbers, min(w0, m0), max(w1, m1))
    lim = rules.contact_limits(cfg)
    entry = (QueueEntry.select(QueueEntry.attempts).join(Campaign)
             .where(QueueEntry.account == acc, Campaign.day == day, Campaign.kind == "debt").first())
    return CapsUsed(
        day=day, attempts_today=rules.attempts_between(acc.id, numbers, d0, d1),
        max_attempts_per_day=cfg.retry.max_attempts_per_day,
        contacts_today=sum(1 for t in answered if d0 <= t < d1),
        contacts_this_week=sum(1 for t in answered if w0 <= t < w1),
        contacts_this_month=sum(1 for t in answered if m0 <= t < m1),
        contact_limits={"per_day": lim.per_day, "per_week": lim.per_week, "per_month": lim.per_month},
        campaign_attempts=entry.attempts if entry is not None else None,
        max_attempts_per_campaign=cfg.retry.max_attempts_per_campaign)
