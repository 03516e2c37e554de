"""The rules that protect a debtor: attempt caps, answered-contact caps, do-not-call, "said they paid", windows.

Plain functions over the ledger, used by the queue before every call and by explanations for people
(`ivr eligible --why`-style). Every count is taken from Attempt rows in the DEBTOR's local day / ISO week /
calendar month (its time zone, DST-exact), so a campaign that spans two local dates, or two campaigns on one
date, are counted right.

An attempt counts against an account when the Attempt row names it (`account`) or dialed one of its numbers
(a shared number carries every sharing account's message). Attempts with outcome congestion / trunk_error / rate_limited are the
trunk's fault, not contacts with the debtor, and are not counted; nor are test calls (Attempt.kind 'test', `ivr
call` to a staff phone) or the debtor's own calls back (kind 'inbound').
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache

import peewee as pw

from ivr.campaign.windows import CallWindows, as_zone, aware_utc, first_instant_at
from ivr.config import Config
from ivr.ledger.models import Account, Attempt, Phone, QueueEntry, database
from ivr.ledger.phones import dial_policy, dial_refusal

NOT_COUNTED = ("congestion", "trunk_error", "rate_limited")  # attempt outcomes that are not the debtor's attempts
CONTACT_PRESETS = {"off": (0, 0, 0), "collection": (1, 2, 8)}  # answered contacts per day / ISO week / month


@dataclass(frozen=True)
class ContactLimits:
    """Answered contacts allowed per debtor; 0 = no cap."""

    per_day: int = 0
    per_week: int = 0
    per_month: int = 0


@dataclass(frozen=True)
class Block:
    """Why an account may not be called now, and the earliest instant (aware UTC) the reason lifts."""

    reason: str
    until: datetime


@dataclass
class Decision:
    """May we call this account now? `final` = not this evening at all (close the queue entry)."""

    may_call: bool
    code: str  # ok | do_not_call | said_paid | no_number | campaign_cap | window | cap
    reasons: list[str] = field(default_factory=list)
    not_before: datetime | None = None  # aware UTC, when it is only a matter of waiting
    final: bool = False


def contact_limits(cfg: Config) -> ContactLimits:
    r = cfg.retry
    if r.contact_caps == "custom":
        return ContactLimits(r.contacts_per_day, r.contacts_per_week, r.contacts_per_month)
    return ContactLimits(*CONTACT_PRESETS[r.contact_caps])


def account_tz(cfg: Config, account: Account) -> str:
    return account.timezone or cfg.locale.timezone


def _naive(at: datetime) -> datetime:
    return aware_utc(at).replace(tzinfo=None)


@lru_cache(maxsize=4096)  # pure, and asked for every candidate of every claim
def day_range(tz: str, day: date) -> tuple[datetime, datetime]:
    """Naive-UTC [start, end) of a local calendar date."""
    z = as_zone(tz)
    return (_naive(first_instant_at(day, time(0), z)), _naive(first_instant_at(day + timedelta(days=1), time(0), z)))


@lru_cache(maxsize=4096)  # pure, and asked for every candidate of every claim
def week_range(tz: str, day: date) -> tuple[datetime, datetime]:
    """Naive-UTC [start, end) of the local ISO week (Monday to Monday) holding `day`."""
    monday = day - timedelta(days=day.weekday())
    z = as_zone(tz)
    return (_naive(first_instant_at(monday, time(0), z)),
            _naive(first_instant_at(monday + timedelta(days=7), time(0), z)))


@lru_cache(maxsize=4096)  # pure, and asked for every candidate of every claim
def month_range(tz: str, day: date) -> tuple[datetime, datetime]:
    first = day.replace(day=1)
    nxt = (first + timedelta(days=32)).replace(day=1)
    z = as_zone(tz)
    return _naive(first_instant_at(first, time(0), z)), _naive(first_instant_at(nxt, time(0), z))


def sql(text: str) -> str:
    """A hot-path statement written with '?' placeholders, in the open database's parameter style.

    The queue runs a handful of tiny indexed look-ups per call; building them with peewee's query builder
    costs ten times more than the database takes to answer them, so these few are plain SQL.
    """
    param = database.obj.param
    return text if param == "?" else text.replace("?", param)


def _marks(n: int) -> str:
    return ", ".join("?" * n)


def account_phones(account_id: int) -> list[Phone]:
    """All of the account's numbers in `position` order (flagged and invalid ones too)."""
    # (Phone has a field called `raw`, which hides Model.raw)
    return list(pw.ModelRaw(Phone, sql("SELECT * FROM phone WHERE account_id = ? ORDER BY position"), (account_id,)))


def account_numbers(account_id: int, phones: list[Phone] | None = None) -> list[str]:
    """Every number on file for the account (flagged ones too: calls placed to them still count)."""
    return [p.e164 for p in (account_phones(account_id) if phones is None else phones) if p.e164]


def _concerns(account_id: int, numbers: list[str]) -> tuple[str, list]:
    if not numbers:
        return "account_id = ?", [account_id]
    return f"(account_id = ? OR e164 IN ({_marks(len(numbers))}))", [account_id, *numbers]


# The caps of a call about one matter count the calls about that matter: collecting a debt (the evening's reminders
# and installment reminders) or telling of an outage. A debtor's busy evening of debt calls must not hold back an
# emergency notice, nor do outage notices use up the calls the debt rules allow.
CAP_GROUPS: dict[str, tuple[str, ...]] = {"debt": ("debt", "installment"), "installment": ("debt", "installment"),
                                          "outage": ("outage",)}


def cap_kinds(kind: str) -> tuple[str, ...]:
    """The campaign kinds whose calls count toward the caps of a call of `kind`."""
    return CAP_GROUPS.get(kind, (kind,))


def _of_kinds(kinds: tuple[str, ...] | None) -> tuple[str, list]:
    if kinds is None:
        return "", []
    # a call of no campaign (not a test call nor a call-back: none is made so) counts everywhere, to be safe
    return (f" AND (campaign_id IS NULL OR campaign_id IN (SELECT id FROM campaign WHERE kind IN "
            f"({_marks(len(kinds))})))", list(kinds))


def attempts_between(account_id: int, numbers: list[str], start: datetime, end: datetime,
                     kinds: tuple[str, ...] | None = None) -> int:
    """Attempts on this debtor created in [start, end) (naive UTC), trunk faults, test calls and call-backs
    excluded; only calls of campaigns of `kinds` when given."""
    cond, params = _concerns(account_id, numbers)
    of_kinds, kind_params = _of_kinds(kinds)
    cur = database.obj.execute_sql(sql(
        f"SELECT COUNT(*) FROM attempt WHERE {cond} AND created_at >= ? AND created_at < ? "
        f"AND outcome NOT IN ({_marks(len(NOT_COUNTED))}) AND kind NOT IN ('test', 'inbound'){of_kinds}"),
        [*params, start, end, *NOT_COUNTED, *kind_params])
    return int(cur.fetchone()[0])


def answered_times(account_id: int, numbers: list[str], start: datetime, end: datetime,
                   kinds: tuple[str, ...] | None = None) -> list[datetime]:
    """When this debtor's calls were answered within [start, end) (naive UTC); an answering machine is no
    contact with the debtor. Only calls of campaigns of `kinds` when given."""
    cond, params = _concerns(account_id, numbers)
    of_kinds, kind_params = _of_kinds(kinds)
    rows = Attempt.raw(sql(f"SELECT id, answered_at FROM attempt WHERE {cond} AND answered_at IS NOT NULL "
                           "AND answered_at >= ? AND answered_at < ? AND kind NOT IN ('test', 'inbound') "
                           f"AND outcome <> 'machine'{of_kinds}"), *params, start, end, *kind_params)
    return [r.answered_at for r in rows]


def contacts_between(account_id: int, numbers: list[str], start: datetime, end: datetime) -> int:
    """Answered calls to this debtor in [start, end) (naive UTC), by answer time."""
    return len(answered_times(account_id, numbers, start, end))


@dataclass(frozen=True, slots=True)
class CallRow:
    """What the caps need of one Attempt concerning a debtor (read in bulk by `calls_concerning`)."""

    created_at: datetime
    answered_at: datetime | None  # None also for an answering machine (no contact with the debtor)
    counted: bool  # not a trunk fault / refusal for our rate
    campaign_kind: str = ""  # the kind of the call's campaign ("" without one)


def calls_concerning(accounts: dict[int, list[str]], since: datetime) -> dict[int, list[CallRow]]:
    """Every Attempt created since `since` (naive UTC) concerning each account (named on the row, or to one of
    its numbers), in ONE query for the whole batch (the queue's pre-dial re-check of a claim)."""
    if not accounts:
        return {}
    ids = list(accounts)
    by_number: dict[str, list[int]] = {}
    for acc_id, nums in accounts.items():
        for n in nums:
            by_number.setdefault(n, []).append(acc_id)
    cond = f"account_id IN ({_marks(len(ids))})"
    params: list = [*ids]
    if by_number:
        cond = f"({cond} OR e164 IN ({_marks(len(by_number))}))"
        params += list(by_number)
    rows = database.obj.execute_sql(sql(
        "SELECT account_id, e164, created_at, answered_at, outcome, kind, "
        "(SELECT c.kind FROM campaign c WHERE c.id = attempt.campaign_id) "
        f"FROM attempt WHERE {cond} AND created_at >= ?"), [*params, since]).fetchall()
    out: dict[int, list[CallRow]] = {a: [] for a in ids}
    conv = Attempt.created_at.python_value
    for acc_id, e164, created, answered, outcome, kind, camp_kind in rows:
        if kind in ("test", "inbound"):  # the same calls attempts_between / answered_times leave out
            continue
        row = CallRow(conv(created), None if outcome == "machine" else conv(answered), outcome not in NOT_COUNTED,
                      camp_kind or "")
        seen = set()
        for a in [acc_id, *by_number.get(e164, ())]:
            if a in out and a not in seen:
                seen.add(a)
                out[a].append(row)
    return out


def cap_block(cfg: Config, account_id: int, tz: str, at_utc: datetime,
              numbers: list[str] | None = None, calls: list[CallRow] | None = None) -> Block | None:
    """The attempt-per-day and answered-contact caps: None when they allow a call at `at_utc`.

    When several caps are hit, the one lifting LAST is returned, so waiting for it satisfies them all. `calls`:
    this account's attempts already read (`calls_concerning`, reaching back far enough), else they are read here.
    """
    day = aware_utc(at_utc).astimezone(as_zone(tz)).date()
    blocks: list[Block] = []
    d0, d1 = day_range(tz, day)
    lim = contact_limits(cfg)
    kinds = cap_kinds(cfg.campaign_kind)
    periods = [(cap, rng, what) for cap, rng, what in (
        (lim.per_day, (d0, d1), "day"), (lim.per_week, week_range(tz, day), "week"),
        (lim.per_month, month_range(tz, day), "month")) if cap]
    if calls is not None:
        calls = [c for c in calls if c.campaign_kind in kinds or not c.campaign_kind]
        n = sum(1 for c in calls if c.counted and d0 <= c.created_at < d1)
    else:
        numbers = account_numbers(account_id) if numbers is None else numbers
        n = attempts_between(account_id, numbers, d0, d1, kinds)
    if n >= cfg.retry.max_attempts_per_day:
        blocks.append(Block(f"attempt cap for the day reached ({n}/{cfg.retry.max_attempts_per_day})",
                            d1.replace(tzinfo=UTC)))
    if periods:  # one query over the widest period, counted per period here
        lo, hi = min(r[0] for _c, r, _w in periods), max(r[1] for _c, r, _w in periods)
        if calls is not None:
            times = [c.answered_at for c in calls if c.answered_at is not None and lo <= c.answered_at < hi]
        else:
            times = answered_times(account_id, numbers or [], lo, hi, kinds)
        for cap, (a, b), what in periods:
            c = sum(1 for t in times if a <= t < b)
            if c >= cap:
                blocks.append(Block(f"answered-contact cap for the {what} reached ({c}/{cap})",
                                    b.replace(tzinfo=UTC)))
    return max(blocks, key=lambda b: b.until) if blocks else None


def caps_reach_back(cfg: Config, tz: str, at_utc: datetime) -> datetime:
    """The earliest created_at (naive UTC) `cap_block` may look at for a call at `at_utc` (a day of margin:
    a call answered in the period may have been created just before it)."""
    day = aware_utc(at_utc).astimezone(as_zone(tz)).date()
    lo = day_range(tz, day)[0]
    lim = contact_limits(cfg)
    if lim.per_week:
        lo = min(lo, week_range(tz, day)[0])
    if lim.per_month:
        lo = min(lo, month_range(tz, day)[0])
    return lo - timedelta(days=1)


def campaign_cap_reached(cfg: Config, entry: QueueEntry) -> bool:
    return entry.attempts >= cfg.retry.max_attempts_per_campaign


def may_call_now(cfg: Config, account: Account, at_utc: datetime, windows: CallWindows,
                 entry: QueueEntry | None = None, phones: list[Phone] | None = None,
                 numbers: list[str] | None = None, calls: list[CallRow] | None = None) -> Decision:
    """The cheap rules, in order of finality: do-not-call, said-paid, numbers, campaign cap, window, caps.

    Eligibility by debt (paid since, threshold) is `ivr.ledger.eligibility.check_account`; the queue asks both.
    `phones` = the callable numbers (None: not checked); `numbers` = all the account's numbers (None: read);
    `calls` = the account's attempts already read in bulk (`calls_concerning`; None: read here).
    """
    if account.do_not_call:
        return Decision(False, "do_not_call", ["do-not-call"], final=True)
    if account.claimed_paid_at is not None and cfg.campaign_kind != "outage":  # paying is no outage's business
        return Decision(False, "said_paid", ["said already paid; waiting for the next payments import"], final=True)
    if phones is not None and not phones:
        return Decision(False, "no_number", ["no callable number left"], final=True)
    if entry is not None and campaign_cap_reached(cfg, entry):
        return Decision(False, "campaign_cap", [f"attempt cap for the campaign reached ({entry.attempts}/"
                                f"{cfg.retry.max_attempts_per_campaign})"], final=True)
    tz = account_tz(cfg, account)
    at = aware_utc(at_utc)
    opens = windows.next_open(tz, at)
    if opens > at:
        local = opens.astimezone(as_zone(tz))
        return Decision(False, "window", [f"outside the calling window; next opens {local:%Y-%m-%d %H:%M} {tz}"],
                        not_before=opens)
    block = cap_block(cfg, account.id, tz, at, numbers, calls)
    if block is not None:
        return Decision(False, "cap", [block.reason], not_before=windows.next_open(tz, block.until))
    return Decision(True, "ok", ["may be called now"])


def explain(cfg: Config, account: Account, at_utc: datetime, windows: CallWindows | None = None) -> list[str]:
    """Human lines on why this account may or may not be called at `at_utc` (rules of this module only)."""
    windows = windows or CallWindows(cfg)
    phones = callable_phones(account.id, cfg=cfg)
    d = may_call_now(cfg, account, at_utc, windows, phones=phones)
    tz = account_tz(cfg, account)
    day = windows.local_day(tz, at_utc)
    kind = windows.day_kind(day)
    extra = f" ({windows.holiday_name(day)})" if kind == "holiday" else ""
    return [f"local date {day} in {tz} is a {kind}{extra}", *d.reasons]


def callable_phones(account_id: int, phones: list[Phone] | None = None, cfg: Config | None = None) -> list[Phone]:
    """The account's numbers that may be dialed, in `position` order (invalid and flagged ones left out; with
    `cfg`, also those dialing.allowed_countries / number_types refuse)."""
    phones = account_phones(account_id) if phones is None else phones
    out = [p for p in phones if p.valid and p.flagged_at is None and p.e164]
    if cfg is not None:
        policy = dial_policy(cfg)
        out = [p for p in out if not dial_refusal(p.e164, policy)]
    return out


def pick_phone(phones: list[Phone], phone_index: int) -> Phone | None:
    """The number to dial: the first callable one at position >= phone_index, wrapping to the first."""
    for p in phones:
        if p.position >= phone_index:
            return p
    return phones[0] if phones else None


def position_after(phones: list[Phone], position: int) -> int | None:
    """The position of the callable number after `position` (wrapping around), None when none is left."""
    for p in phones:
        if p.position > position:
            return p.position
    return phones[0].position if phones else None
