"""Who qualifies for a reminder call on a given day, and why (or why not).

Remaining debt = the latest balance on or before the day minus payments made after that balance's date (up to the
day); a payment dated ON the balance date is subtracted too, unless `eligibility.balance_includes_same_day_payments`
says billing's balance already counts it (see `same_day_in_balance`). An account qualifies when the remaining
debt is above `eligibility.threshold`, or is above zero and has been overdue for at least
`eligibility.overdue_months` calendar months. It is then excluded when it is marked do-not-call, has no valid
number (or none the dialing policy allows: `dialable`), keeps to an installment plan, said "already paid" (key 3)
after the last payments import, or is missing from the latest full accounts export (`not_in_latest_export`). The
local do-not-call list (ivr.ledger.dnc) excludes a listed account, and an account whose every valid number is
listed; a listed number is never the one offered. Every verdict carries its reasons in plain words.

`evaluate` reads the whole ledger with a handful of set-based queries (no per-account queries), so 100,000
accounts take about a second; `check_account` runs the same logic for one account (the dialer's last check).
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import PurePath
from typing import Any
from zoneinfo import ZoneInfo

import peewee as pw

from ivr.campaign import lifesupport
from ivr.config import Config
from ivr.ledger import dnc
from ivr.ledger import phones as phonelib
from ivr.ledger.importer import APPLIED, last_payments_import, latest_full_export
from ivr.ledger.models import Account, Balance, ImportRun, InstallmentDue, InstallmentPlan, Payment, Phone
from ivr.logs import mask_number

ZERO = Decimal("0.00")


@dataclass(slots=True)
class Verdict:
    """One account's verdict. `number` is the account number; `e164` its first valid phone ('' if none)."""

    account_id: int
    number: str
    eligible: bool
    remaining: Decimal
    reasons: list[str] = field(default_factory=list)
    e164: str = ""
    balance_date: date | None = None
    overdue_since: date | None = None
    overdue_months: int = 0
    excluded_by: list[str] = field(default_factory=list)  # the exclusion rules that applied ('' = none)
    currency: str = ""  # of the balance the remaining debt comes from ('' = none on file)
    owes: bool = False  # the debt rules alone would call (threshold or overdue), before any exclusion


def add_months(d: date, months: int) -> date:
    """`d` moved by whole calendar months, clamped to the month's last day (31 Jan + 1 = 28/29 Feb)."""
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def months_overdue(since: date | None, day: date) -> int:
    """Whole calendar months from `since` to `day` (0 if not overdue)."""
    if since is None or since >= day:
        return 0
    n = (day.year - since.year) * 12 + day.month - since.month
    while n > 0 and add_months(since, n) > day:
        n -= 1
    return n


_CENT = Decimal("0.01")


def _money(value: Any) -> Decimal:
    return ZERO if value is None else Decimal(str(value)).quantize(_CENT)


@lru_cache(maxsize=4096)
def _date_of(text: str) -> date:
    return date.fromisoformat(text[:10])


def _as_date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return _date_of(str(value))


def _as_datetime(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def _rows(query: pw.Select) -> list[tuple]:
    """The query's rows as the driver returns them: peewee's per-value conversion would cost more than the
    rules themselves on 100,000 accounts; the few conversions needed are done above."""
    sql, params = query.sql()
    return Account._meta.database.execute_sql(sql, params).fetchall()


def _rows_of(key: Any, build: Any, params: list) -> list[tuple]:
    """`_rows` of the query `build()` makes, its SQL text built once per `key` (ivr.ledger.prebuilt checks
    that `params` are the values peewee binds, in its order, before it reuses the text)."""
    from ivr.ledger import prebuilt

    return prebuilt.execute(key, build, params).fetchall()


@dataclass
class _Facts:
    """Everything the rules need, per account id, gathered set-wise."""

    accounts: list[tuple[int, str, bool, datetime | None]]
    balance: dict[int, tuple[date, Decimal, date | None, str]]
    paid_since: dict[int, Decimal]
    phones: dict[int, list[tuple[str, bool, str, str]]]
    plans: dict[int, tuple[Decimal, Decimal, date]]  # dues so far, paid since start, starts_on
    last_payments_import: datetime | None
    listed: dnc.Listed = field(default_factory=dnc.Listed)  # the do-not-call entries in force on the day
    latest_export: ImportRun | None = None  # the latest full accounts export
    not_in_export: set[int] = field(default_factory=set)  # accounts it did not list (and no import since did)
    # life-support accounts -> the latest "informed about the debt" notice (None = none yet): lifesupport's rule
    life_support: dict[int, lifesupport.Notice | None] = field(default_factory=dict)


def _where_account(query: pw.Select, column: pw.Field, account_ids: Iterable[int] | None) -> pw.Select:
    return query if account_ids is None else query.where(column.in_(list(account_ids)))


def same_day_in_balance(cfg: Config | None) -> bool:
    """Whether a payment dated on the balance date is already in that balance (config; default: it is not).

    Billing exports rarely say whether the balance was taken before or after the day's payments. Counting such
    a payment as NOT yet in the balance errs on the debtor's side: at worst one who paid is not called, never
    one who paid is called about a debt already settled (the field complaint this rule answers)."""
    return bool(cfg is not None and cfg.eligibility.balance_includes_same_day_payments)


def _paid_after_balance(latest_day: Any, same_day_included: bool) -> pw.Expression:
    """Payments that reduce the balance dated `latest_day`."""
    return Payment.paid_on > latest_day if same_day_included else Payment.paid_on >= latest_day


def _gather(day: date, account_ids: Iterable[int] | None = None, same_day_included: bool = False,
            phone_rows: list[tuple[int, str, bool, str, str]] | None = None,
            loaded: list[Account] | None = None) -> _Facts:
    """The facts of every account (or of `account_ids`); `phone_rows` (account_id, e164, valid, invalid_reason,
    raw) in position order and `loaded` (the Account rows of `account_ids`) when the caller has read them."""
    ids = None if account_ids is None else list(account_ids)
    if loaded is not None:
        accounts = [(a.id, a.number, bool(a.do_not_call), _as_datetime(a.claimed_paid_at)) for a in loaded]
    else:
        accounts = [(r[0], r[1], bool(r[2]), _as_datetime(r[3])) for r in _rows(_where_account(
            Account.select(Account.id, Account.number, Account.do_not_call, Account.claimed_paid_at),
            Account.id, ids).order_by(Account.id))]

    latest = _where_account(
        Balance.select(Balance.account.alias("acc"), pw.fn.MAX(Balance.as_of).alias("d"))
        .where(Balance.as_of <= day), Balance.account, ids).group_by(Balance.account).alias("latest")
    n = None if ids is None else len(ids)  # the SQL's shape: its text is built once per shape (prebuilt.py)
    bal = {}
    q = lambda: (Balance.select(Balance.account, Balance.as_of, Balance.amount, Balance.overdue_since,  # noqa: E731
                                Balance.currency)
                 .join(latest, on=((Balance.account == latest.c.acc) & (Balance.as_of == latest.c.d))))
    for acc, as_of, amount, overdue, currency in _rows_of(("eligibility.balance", n), q, [day, *(ids or ())]):
        bal[acc] = (_as_date(as_of), _money(amount), _as_date(overdue), currency or "")

    paid = {}
    q = lambda: (Payment.select(Payment.account, pw.fn.SUM(Payment.amount))  # noqa: E731
                 .join(latest, on=(Payment.account == latest.c.acc))
                 .where(_paid_after_balance(latest.c.d, same_day_included) & (Payment.paid_on <= day))
                 .group_by(Payment.account))
    for acc, total in _rows_of(("eligibility.paid", n, same_day_included), q, [day, *(ids or ()), day]):
        paid[acc] = _money(total)

    phones: dict[int, list[tuple[str, bool, str, str]]] = {}
    if phone_rows is None:
        phone_rows = _rows(_where_account(
            Phone.select(Phone.account, Phone.e164, Phone.valid, Phone.invalid_reason, Phone.raw),
            Phone.account, ids).order_by(Phone.account, Phone.position))
    for acc, e164, valid, reason, raw in phone_rows:
        phones.setdefault(acc, []).append((e164, bool(valid), reason, raw))

    dues = (InstallmentDue.select(pw.fn.COALESCE(pw.fn.SUM(InstallmentDue.amount), 0))
            .where((InstallmentDue.plan == InstallmentPlan.id) & (InstallmentDue.due_on <= day)))
    paid_plan = (Payment.select(pw.fn.COALESCE(pw.fn.SUM(Payment.amount), 0))
                 .where((Payment.account == InstallmentPlan.account) & (Payment.paid_on >= InstallmentPlan.starts_on)
                        & (Payment.paid_on <= day)))
    plans: dict[int, tuple[Decimal, Decimal, date]] = {}
    q = lambda: _where_account(  # noqa: E731
        InstallmentPlan.select(InstallmentPlan.account, dues, paid_plan, InstallmentPlan.starts_on)
        .where(InstallmentPlan.active & (InstallmentPlan.starts_on <= day)),
        InstallmentPlan.account, ids)
    for acc, due, paid_p, starts in _rows_of(("eligibility.plans", n), q, [0, day, 0, day, day, *(ids or ())]):
        prev = plans.get(acc)
        entry = (_money(due), _money(paid_p), _as_date(starts))
        if prev is None or entry[2] > prev[2]:  # the newest active plan speaks for the account
            plans[acc] = entry  # type: ignore[assignment]
    listed = dnc.listed_on(day) if ids is None else dnc.listed_on(
        day, accounts=[a[1] for a in accounts], numbers=[p[0] for ps in phones.values() for p in ps])
    if ids is None:
        facts = _Facts(accounts, bal, paid, phones, plans, last_payments_import(), listed)
        _gather_export(facts, ids, latest_full_export())
    else:  # the dialer's path: both import marks in one statement
        paid_at, run = _latest_imports()
        facts = _Facts(accounts, bal, paid, phones, plans, paid_at, listed)
        if loaded is not None:
            facts.latest_export = run
            if run is not None:
                facts.not_in_export = {a.id for a in loaded if a.seen_run is None or a.seen_run < run.id}
        else:
            _gather_export(facts, ids, run)
    _gather_life_support(facts, ids, loaded)
    return facts


def _gather_life_support(facts: _Facts, ids: list[int] | None, loaded: list[Account] | None) -> None:
    """Which accounts are flagged life-support and whether a person informed them about the debt (no query
    at all for the notices when none is flagged: the dialer's batches rarely hold one)."""
    if loaded is not None:
        flagged = [a.id for a in loaded if a.life_support]
    else:
        q = Account.select(Account.id).where(Account.life_support == True)  # noqa: E712
        flagged = [r[0] for r in _rows(_where_account(q, Account.id, ids))]
    if flagged:
        notices = lifesupport.latest_notices(flagged if ids is not None else None, "debt")
        facts.life_support = {a: notices.get(a) for a in flagged}


def _gather_export(facts: _Facts, ids: list[int] | None, run: ImportRun | None) -> None:
    """Which accounts the latest full accounts export did not list (none when there has been no full export)."""
    facts.latest_export = run
    if run is not None:
        q = Account.select(Account.id).where(Account.seen_run.is_null() | (Account.seen_run < run.id))
        facts.not_in_export = {r[0] for r in _rows(_where_account(q, Account.id, ids))}


_runs: dict[int, tuple[Any, ImportRun]] = {}  # finished imports by id (their id, start and file never change)


def _latest_imports() -> tuple[datetime | None, ImportRun | None]:
    """`last_payments_import()` and `latest_full_export()` in one statement (the run itself read once)."""
    db = Account._meta.database
    text = ("SELECT (SELECT MAX(finished_at) FROM import_run WHERE kind = 'payments'), (SELECT MAX(id) FROM "
            "import_run WHERE kind = 'accounts' AND \"full\" = ? AND finished_at IS NOT NULL AND status IN (?, ?))")
    paid_at, run_id = db.execute_sql(text.replace("?", db.param), [True, *APPLIED]).fetchone()
    run = None
    if run_id is not None:
        got = _runs.get(run_id)
        if got is None or got[0] is not db.obj:
            if len(_runs) > 64:
                _runs.clear()
            got = _runs[run_id] = (db.obj, ImportRun.get_by_id(run_id))
        run = got[1]
    return _as_datetime(paid_at), run


def dialable(cfg: Config, numbers: list[tuple[str, bool, str, str]]) -> list[tuple[str, bool, str, str]]:
    """The account's numbers (e164, valid, reason, raw) with the dialing policy applied to those stored as valid:
    config may have narrowed dialing.allowed_countries / number_types since they were imported."""
    policy = phonelib.dial_policy(cfg)
    out = []
    for e164, ok, reason, raw in numbers:
        why = phonelib.dial_refusal(e164, policy) if ok and e164 else ""
        out.append((e164, False, why, raw) if why else (e164, ok, reason, raw))
    return out


def not_in_latest_export(cfg: Config, facts: _Facts, acc_id: int) -> str | None:
    """The exclusion of an account the latest full export did not list (absent, or its row was rejected):
    billing no longer vouches for its balance, so it is not called until an import lists it again."""
    run = facts.latest_export
    if run is None or acc_id not in facts.not_in_export:
        return None
    started = run.started_at.replace(tzinfo=UTC).astimezone(ZoneInfo(cfg.locale.timezone))
    return f"not in the latest export of {started.date()} ({PurePath(run.file).name})"


def _verdict(cfg: Config, day: date, facts: _Facts, acc: tuple[int, str, bool, datetime | None]) -> Verdict:
    acc_id, number, dnc, claimed = acc
    threshold = Decimal(str(cfg.eligibility.threshold)).quantize(Decimal("0.01"))
    need_months = cfg.eligibility.overdue_months
    v = Verdict(acc_id, number, False, ZERO)
    reasons, excluded = v.reasons, v.excluded_by

    b = facts.balance.get(acc_id)
    if b is None:
        reasons.append(f"no balance on or before {day}")
        qualifies = False
    else:
        as_of, amount, overdue, v.currency = b
        paid = facts.paid_since.get(acc_id, ZERO)
        v.remaining = amount - paid
        v.balance_date, v.overdue_since = as_of, overdue
        v.overdue_months = months_overdue(overdue, day) if overdue else 0
        owed = f"owes {v.remaining} (balance {amount} on {as_of}" + (f", paid {paid} since)" if paid else ")")
        if v.remaining <= 0:
            reasons.append(f"nothing owed: {owed[5:]}")
            qualifies = False
        elif v.remaining > threshold:
            reasons.append(f"{owed}, above the threshold {threshold}")
            qualifies = True
        elif need_months and v.overdue_months >= need_months:
            reasons.append(f"{owed}, overdue {v.overdue_months} month(s) since {overdue} (rule: {need_months})")
            qualifies = True
        else:
            od = (f"overdue {v.overdue_months} month(s) since {overdue}" if overdue else "not overdue")
            rule = f"{need_months} month(s)" if need_months else "the overdue rule is off"
            reasons.append(f"{owed}, not above the threshold {threshold} and {od} (rule: {rule})")
            qualifies = False

    if dnc:
        excluded.append("do-not-call")
    if (gone := not_in_latest_export(cfg, facts, acc_id)) is not None:
        excluded.append(gone)
    numbers = dialable(cfg, facts.phones.get(acc_id, []))
    valid = [p[0] for p in numbers if p[1] and p[0]]
    valid = _dnc_exclusions(facts.listed, number, valid, excluded)
    if valid:
        v.e164 = valid[0]
    elif numbers:
        why = "; ".join(f"{p[3]!r}: {p[2] or 'invalid'}" for p in numbers[:3])
        excluded.append(f"no valid number ({why})")
    else:
        excluded.append("no phone number on file")
    plan = facts.plans.get(acc_id)
    if plan is not None:
        due, paid_p, starts = plan
        if paid_p >= due:
            excluded.append(f"installment plan up to date (paid {paid_p} of {due} due since {starts})")
        else:
            reasons.append(f"installment plan behind: paid {paid_p} of {due} due since {starts}")
    if acc_id in facts.life_support:
        notice = facts.life_support[acc_id]
        why = lifesupport.refusal(True, "debt", notice, cfg)
        if why is not None:
            excluded.append(why)
        elif notice is not None:
            reasons.append(f"life support: informed by {notice.informed_by} on {notice.informed_at:%Y-%m-%d}")
    if claimed is not None:
        last = facts.last_payments_import
        if last is None or claimed > last:
            excluded.append(f"said already paid (key 3) at {claimed:%Y-%m-%d %H:%M} UTC; "
                            "waiting for the next payments import")
    reasons.extend(f"excluded: {e}" for e in excluded)
    v.owes = qualifies
    v.eligible = qualifies and not excluded
    return v


def _dnc_exclusions(listed: dnc.Listed, number: str, valid: list[str], excluded: list[str]) -> list[str]:
    """Apply the do-not-call list: the account listed, or every valid number listed, is an exclusion (the entry's
    reason named); returns the valid numbers not listed (a listed number is never offered)."""
    entry = listed.account(number)
    if entry is not None:
        excluded.append(f"account on the do-not-call list: {dnc.describe(entry)}")
    free = [e for e in valid if listed.number(e) is None]
    if valid and not free:
        why = "; ".join(f"{mask_number(e)}: {dnc.describe(listed.numbers[e])}" for e in valid[:3])
        excluded.append(f"every number on the do-not-call list ({why})")
        return valid  # v.e164 still names the number, so `ivr eligible --why` shows which
    return free


def evaluate(cfg: Config, day: date) -> list[Verdict]:
    """A verdict for every account, in account-id order."""
    facts = _gather(day, same_day_included=same_day_in_balance(cfg))
    return [_verdict(cfg, day, facts, acc) for acc in facts.accounts]


def check_account(cfg: Config, account: Account | int | str, day: date) -> Verdict:
    """The verdict for one account (an Account, its id, or its account number)."""
    acc_id = _account_id(account)
    facts = _gather(day, [acc_id], same_day_in_balance(cfg))
    if not facts.accounts:
        raise LookupError(f"no account with id {acc_id}")
    return _verdict(cfg, day, facts, facts.accounts[0])


def check_accounts(cfg: Config, account_ids: Iterable[int], day: date,
                   phone_rows: list[tuple[int, str, bool, str, str]] | None = None,
                   loaded: list[Account] | None = None) -> tuple[dict[int, Verdict], dnc.Listed]:
    """`check_account` for many accounts at once, with the same handful of queries as for one (the queue's
    pre-dial re-check of a whole claim); also returns the do-not-call entries naming them or their numbers."""
    ids = list(account_ids)
    if not ids:
        return {}, dnc.Listed()
    facts = _gather(day, ids, same_day_in_balance(cfg), phone_rows, loaded)
    return {acc[0]: _verdict(cfg, day, facts, acc) for acc in facts.accounts}, facts.listed


def remaining_debt(account: Account | int | str, day: date, cfg: Config | None = None) -> Decimal:
    """Latest balance on or before `day` minus payments since that balance's date (0 if no balance); whether a
    payment ON the balance date counts follows `cfg` (default: it is subtracted)."""
    acc_id = _account_id(account)
    facts = _gather(day, [acc_id], same_day_in_balance(cfg))
    b = facts.balance.get(acc_id)
    return ZERO if b is None else b[1] - facts.paid_since.get(acc_id, ZERO)


def _account_id(account: Account | int | str) -> int:
    if isinstance(account, Account):
        return account.id
    if isinstance(account, int):
        return account
    acc = Account.get_or_none(Account.number == account)
    if acc is None:
        raise LookupError(f"no account {account!r}")
    return acc.id


@dataclass(slots=True)
class ListedVerdict:
    """A verdict with what a person needs to recognise the account (the console's lists)."""

    verdict: Verdict
    name: str
    district: str


@dataclass(slots=True)
class Listing:
    rows: list[ListedVerdict]
    total: int  # rows matching the filters, over every page


def matching(cfg: Config, day: date, *, excluded: bool = False, district: str = "", reason: str = "",
             amount_min: Decimal | None = None, amount_max: Decimal | None = None) -> list[Verdict]:
    """The eligible verdicts (or, with `excluded`, those who owe but are not called, as `ivr eligible
    --excluded`), filtered by district, a word in the reasons and the remaining debt, in account order. A
    district filter narrows the ledger read to that district's accounts."""
    ids = None
    if district:
        ids = [i for (i,) in Account.select(Account.id).where(Account.district == district).tuples()]
    facts = _gather(day, ids, same_day_in_balance(cfg))  # the same payment rule as evaluate and check_account
    needle = reason.strip().lower()
    matched = []
    for acc in facts.accounts:
        v = _verdict(cfg, day, facts, acc)
        if excluded == v.eligible or (excluded and v.remaining <= 0):
            continue
        if amount_min is not None and v.remaining < amount_min:
            continue
        if amount_max is not None and v.remaining > amount_max:
            continue
        if needle and not any(needle in r.lower() for r in v.reasons):
            continue
        matched.append(v)
    return matched


def page_of(matched: list[Verdict], offset: int = 0, limit: int = 50) -> Listing:
    """One page of `matching`'s verdicts with each account's name and district."""
    page = matched[offset:offset + limit]
    names = {i: (n, d) for i, n, d in Account.select(Account.id, Account.name, Account.district)
             .where(Account.id.in_([v.account_id for v in page])).tuples()} if page else {}
    return Listing([ListedVerdict(v, *names.get(v.account_id, ("", ""))) for v in page], len(matched))


def listing(cfg: Config, day: date, *, excluded: bool = False, district: str = "", reason: str = "",
            amount_min: Decimal | None = None, amount_max: Decimal | None = None, offset: int = 0,
            limit: int = 50) -> Listing:
    """One page of `matching` (the console's Who will be called list)."""
    return page_of(matching(cfg, day, excluded=excluded, district=district, reason=reason, amount_min=amount_min,
                            amount_max=amount_max), offset, limit)


def districts() -> list[str]:
    """Every district named on an account, sorted: one index probe per district (a loose index scan), not a
    scan of every account's (a million accounts, a handful of districts)."""
    db = Account._meta.database
    rows = db.execute_sql(
        "WITH RECURSIVE d(x) AS (SELECT MIN(district) FROM account UNION ALL "
        "SELECT (SELECT MIN(district) FROM account WHERE district > d.x) FROM d WHERE d.x IS NOT NULL) "
        "SELECT x FROM d WHERE x IS NOT NULL").fetchall()
    return sorted(x for (x,) in rows)
