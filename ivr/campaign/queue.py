"""The evening's queue: who is called next, and what happens to them after each call.

Pure logic over the ledger (no sockets). The dialer calls, in this order:

- `start_campaign(cfg, day, clock)` once: creates or resumes the Campaign row of that local evening, refreshes
  the eligible list from the ledger, closes entries of accounts no longer eligible, carries over what earlier
  evenings left waiting, and releases claims orphaned by a crash.
- `next_candidates(campaign, clock, limit, busy_accounts, busy_numbers)` whenever it has free channels: returns
  up to `limit` entries that may be dialed NOW, already CLAIMED (state 'dialing') atomically, so two dialer
  processes never get the same account or number.
- `record_result(entry, outcome, cause, clock, attempt)` after each call (or `record_candidate_result` for all the
  entries a call carried), or `release(entries, clock)` for claims it did not dial after all.

Choices where the issue was silent (see docs/architecture.md "campaign"):
- Carry-over: a waiting entry of an earlier campaign is closed there (state given_up, outcome 'carried_over') and
  re-created in the new one keeping priority (front stays front), phone_index and not_before; its attempt
  count starts at 0 because max_attempts_per_campaign is per evening (the per-day cap counts Attempt rows).
- Numbers: `QueueEntry.phone_index` holds the POSITION of the number to try next (first callable Phone at
  position >= phone_index, wrapping). After no answer / busy / failure the next number is tried on the retry
  (wrapping back to the first); after an early hang-up the same number is called again (someone answered there);
  an invalid, never-retry or wrong number is flagged and the next one is tried; none left = given_up.
- A shared number: the call to it carries every waiting account that has it as a callable number, whatever
  number those accounts would have been tried on next, as long as each passes its own checks.
- The claim is one write transaction (SQLite BEGIN IMMEDIATE / PostgreSQL advisory lock) that re-checks in-flight
  Attempt rows for the number and the accounts, refuses a number while any entry of an account holding it is
  'dialing', and flips the entries waiting -> dialing with a row-count check.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import peewee as pw

from ivr.campaign import rules
from ivr.campaign.windows import CallWindows, as_zone, aware_utc
from ivr.clock import Clock
from ivr.config import Config
from ivr.errors import IvrError
from ivr.ledger import dnc, models
from ivr.ledger.models import Account, Attempt, Campaign, Phone, QueueEntry
from ivr.logs import shown_number

log = logging.getLogger(__name__)

DONE_OUTCOMES = frozenset({"heard", "pay_now", "callback", "already_paid", "opted_out"})
FRONT_OUTCOMES = frozenset({"early_hangup", "not_heard"})
TRUNK_OUTCOMES = frozenset({"congestion", "trunk_error"})
TRUNK_CAUSES = frozenset({"INVALID_GATEWAY", "GATEWAY_DOWN"})
IN_FLIGHT = ("created", "originated", "answered")
FRONT_PRIORITY = -1
ORPHAN_SECONDS = 120  # a 'dialing' entry without a live Attempt this long after its claim was left by a crash
_CHUNK = 500
_PG_CLAIM_LOCK = 0x1D1A1E3

_CLOSE_OUTCOME = {"no_number": "no_number", "campaign_cap": "attempt_cap"}

_configs: dict[int, Config] = {}
_windows: dict[int, tuple[Config, CallWindows]] = {}


@dataclass
class Candidate:
    """One call to place: the entry, its account, the number, and the other entries the same call carries."""

    entry: QueueEntry
    account: Account
    phone: Phone
    accounts_sharing_number: list[QueueEntry] = field(default_factory=list)
    window_end: datetime | None = None  # aware UTC end of the debtor's current window (calls may run past it)

    @property
    def e164(self) -> str:
        return self.phone.e164

    @property
    def entries(self) -> list[QueueEntry]:
        return [self.entry, *self.accounts_sharing_number]

    @property
    def account_numbers(self) -> list[str]:
        """Every account whose message this call carries, the main one first (for Attempt.accounts)."""
        return [self.account.number, *(e.account.number for e in self.accounts_sharing_number)]


# --- helpers ------------------------------------------------------------------------------------------------------

def _naive(at: datetime) -> datetime:
    return aware_utc(at).replace(tzinfo=None)


def _windows_for(cfg: Config) -> CallWindows:
    got = _windows.get(id(cfg))
    if got is None or got[0] is not cfg:  # the cfg is held, so its id cannot be reused while cached
        if len(_windows) > 64:
            _windows.clear()
        got = _windows[id(cfg)] = (cfg, CallWindows(cfg))
    return got[1]


def _cfg_for(campaign_id: int, cfg: Config | None) -> Config:
    if cfg is not None:
        _configs.setdefault(campaign_id, cfg)
        return cfg
    try:
        return _configs[campaign_id]
    except KeyError:
        raise IvrError(f"campaign {campaign_id}: call start_campaign(cfg, …) first in this process, "
                       "or pass cfg=") from None


def _evaluate(cfg: Config, day: date) -> list:
    from ivr.ledger import eligibility
    return eligibility.evaluate(cfg, day)


def _check(cfg: Config, account: Account, day: date):
    from ivr.ledger import eligibility
    return eligibility.check_account(cfg, account, day)


def _tz_ok(cfg: Config, account: Account) -> str | None:
    tz = rules.account_tz(cfg, account)
    try:
        as_zone(tz)
    except IvrError:
        return None
    return tz


def _write_lock(db: pw.Database):
    """A write transaction taken up-front, so claims from several processes are serialized."""
    if isinstance(db, pw.SqliteDatabase):
        return db.atomic(lock_type="IMMEDIATE")
    return _PgLocked(db)


class _PgLocked:
    def __init__(self, db: pw.Database) -> None:
        self.db, self.tx = db, db.atomic()

    def __enter__(self):
        self.tx.__enter__()
        self.db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (_PG_CLAIM_LOCK,))
        return self

    def __exit__(self, *exc):
        return self.tx.__exit__(*exc)


def _close_many(items: Iterable[tuple[int, str, str]], now: datetime) -> int:
    """Close entries (id, outcome, reason) as given_up, grouped so thousands cost a few statements."""
    groups: dict[tuple[str, str], list[int]] = {}
    for eid, outcome, reason in items:
        groups.setdefault((outcome, reason[:200]), []).append(eid)
    n = 0
    for (outcome, reason), ids in groups.items():
        for i in range(0, len(ids), _CHUNK):
            n += (QueueEntry.update(state="given_up", outcome=outcome, reason=reason, updated_at=now)
                  .where(QueueEntry.id.in_(ids[i:i + _CHUNK]), QueueEntry.state.in_(("waiting", "dialing")))
                  .execute())
    return n


def _why(verdict) -> str:
    return "; ".join(verdict.reasons) if verdict is not None and verdict.reasons else "no longer eligible"


# --- start --------------------------------------------------------------------------------------------------------

def start_campaign(cfg: Config, day: date, clock: Clock) -> Campaign:
    """Create or resume the campaign of the local evening `day`, with a fresh eligible list.

    Eligible accounts without an entry get one (priority 0, first number); waiting entries whose account is no
    longer eligible are closed (given_up, outcome 'not_eligible', reason from eligibility); entries already done
    stay done. Waiting entries of earlier campaigns are carried over (see the module docstring).
    """
    now = _naive(clock.now())
    db = models.database.obj
    verdicts = _evaluate(cfg, day)
    eligible = {v.account_id: v for v in verdicts if v.eligible}
    not_eligible = {v.account_id: v for v in verdicts if not v.eligible}
    with db.atomic():
        camp, created = Campaign.get_or_create(day=day, defaults={"status": "running", "started_at": now})
        if not created:
            camp.status, camp.status_reason, camp.finished_at = "running", "", None
            camp.started_at = camp.started_at or now
        camp.eligible_count = len(eligible)
        camp.save()
    _configs[camp.id] = cfg
    release_orphans(None, clock)

    # Entries already in this campaign (a resumed evening). One write transaction taken up-front, so two
    # dialer processes starting at once build the queue one after the other.
    with _write_lock(db):
        carried_n, closed_n = _refresh(camp, day, eligible, not_eligible, now, db)
    log.info("campaign=%s day=%s eligible=%d carried_over=%d closed_not_eligible=%d", camp.id, day,
             len(eligible), carried_n, closed_n)
    return camp


def _refresh(camp: Campaign, day: date, eligible: dict, not_eligible: dict, now: datetime, db: pw.Database
             ) -> tuple[int, int]:
    have: dict[int, tuple[int, str]] = {
        a: (i, s) for i, a, s in QueueEntry.select(QueueEntry.id, QueueEntry.account, QueueEntry.state)
        .where(QueueEntry.campaign == camp).tuples()}
    stale = [i for a, (i, s) in have.items() if s == "waiting" and a not in eligible]
    by_entry = {i: a for a, (i, _s) in have.items()}
    _close_many(((i, "not_eligible", _why(not_eligible.get(by_entry[i]))) for i in stale), now)
    # closed earlier this evening as not eligible, eligible again after a fresh import: back in the queue
    back = [i for a, (i, s) in have.items() if s == "given_up" and a in eligible]
    for i in range(0, len(back), _CHUNK):
        (QueueEntry.update(state="waiting", outcome="", reason="eligible again", updated_at=now)
         .where(QueueEntry.id.in_(back[i:i + _CHUNK]), QueueEntry.outcome == "not_eligible").execute())

    # Carry over what earlier evenings left waiting (the latest entry per account wins).
    carried: dict[int, QueueEntry] = {}
    earlier = list(QueueEntry.select().join(Campaign)
                   .where(Campaign.day < day, QueueEntry.state == "waiting").order_by(Campaign.day, QueueEntry.id))
    for e in earlier:
        carried[e.account_id] = e
    rows = [{"campaign": camp.id, "account": acc_id, "priority": e.priority, "not_before": max(e.not_before, now),
             "phone_index": e.phone_index, "attempts": 0, "updated_at": now}
            for acc_id, e in carried.items() if acc_id in eligible and acc_id not in have]
    # every earlier waiting entry is closed: carried over, or no longer eligible
    _close_many(((e.id, "carried_over", f"carried over to {day}") if e.account_id in eligible
                 else (e.id, "not_eligible", _why(not_eligible.get(e.account_id)))
                 for e in earlier), now)
    taken = set(have) | {r["account"] for r in rows}
    rows += [{"campaign": camp.id, "account": a, "priority": 0, "not_before": now, "phone_index": 0,
              "updated_at": now} for a in eligible if a not in taken]
    _insert_entries(db, rows)
    return len(rows) - sum(1 for a in eligible if a not in taken), len(stale)


def _insert_entries(db: pw.Database, rows: list[dict]) -> None:
    """Many new queue entries at once (executemany: peewee's insert_many spends its time building SQL)."""
    cols = ("campaign_id", "account_id", "state", "priority", "not_before", "attempts", "phone_index", "outcome",
            "reason", "updated_at")
    sql = (f"INSERT INTO {QueueEntry._meta.table_name} ({', '.join(cols)}) "
           f"VALUES ({', '.join([db.param] * len(cols))}) ON CONFLICT DO NOTHING")  # a concurrent start
    params = [(r["campaign"], r["account"], "waiting", r["priority"], r["not_before"], r.get("attempts", 0),
               r["phone_index"], "", "", r["updated_at"]) for r in rows]
    if params:
        db.cursor().executemany(sql, params)


def release_orphans(campaign: Campaign | None, clock: Clock, older_than_s: float = ORPHAN_SECONDS) -> int:
    """Put back to waiting (front of the queue) entries left 'dialing' by a crashed dialer: claimed more than
    `older_than_s` ago with no Attempt of that account in flight. Counted attempts are unchanged."""
    now = _naive(clock.now())
    cutoff = now - timedelta(seconds=older_than_s)
    live = Attempt.select(Attempt.account).where(Attempt.state.in_(IN_FLIGHT))
    # accounts carried by a live call to a shared number are not named on its Attempt row: match the number too
    live_numbers = Attempt.select(Attempt.e164).where(Attempt.state.in_(IN_FLIGHT))
    carried = Phone.select(Phone.account).where(Phone.e164.in_(live_numbers))
    q = QueueEntry.update(state="waiting", priority=FRONT_PRIORITY, not_before=now, updated_at=now,
                          reason="released after a dialer restart").where(
        QueueEntry.state == "dialing", QueueEntry.updated_at < cutoff, QueueEntry.account.not_in(live),
        QueueEntry.account.not_in(carried))
    if campaign is not None:
        q = q.where(QueueEntry.campaign == campaign)
    n = q.execute()
    if n:
        log.warning("released=%d orphaned claims (dialing without a live attempt)", n)
    return n


# --- picking and claiming -----------------------------------------------------------------------------------------

def next_candidates(campaign: Campaign, clock: Clock, limit: int = 1, busy_accounts: Iterable[int] = (),
                    busy_numbers: Iterable[str] = (), *, cfg: Config | None = None) -> list[Candidate]:
    """Up to `limit` calls that may be placed now, CLAIMED (their entries are 'dialing' when returned).

    Order: priority (front = lower), then not_before, then id. Skipped: accounts/numbers in `busy_*` or with an
    Attempt in flight. Each candidate is re-checked (window in its time zone, do-not-call flag and list, said-paid,
    caps, `eligibility.check_account`); entries that fail for good are closed with the reason, entries that must wait
    get `not_before` moved to when they may be called.
    """
    cfg = _cfg_for(campaign.id, cfg)
    windows = _windows_for(cfg)
    now_aware = aware_utc(clock.now())
    now = _naive(now_aware)
    busy_acc = {int(a) for a in busy_accounts}
    busy_num = set(busy_numbers)
    picked: list[Candidate] = []
    taken_entries: set[int] = set()
    closes: list[tuple[int, str, str]] = []
    defers: list[tuple[int, datetime, str]] = []
    closed_tz: dict[str, datetime] = {}
    scanned = 0
    max_scan = max(200, limit * 20)
    last: tuple[int, datetime, int] | None = None
    while len(picked) < limit and scanned < max_scan:
        page = _page(campaign.id, now, last, max(limit * 2, 20))
        if not page:
            break
        for e in page:
            scanned += 1
            last = (e.priority, e.not_before, e.id)
            if len(picked) >= limit:
                break
            if e.id in taken_entries or e.account_id in busy_acc:
                continue
            cand = _consider(cfg, windows, e, now_aware, busy_acc, busy_num, taken_entries, closes, defers,
                             closed_tz)
            if cand is not None:
                picked.append(cand)
                taken_entries.update(x.id for x in cand.entries)
                busy_acc.update(x.account_id for x in cand.entries)
                busy_num.add(cand.e164)
    return _apply(campaign, cfg, picked, closes, defers, closed_tz, now)


def _page(campaign_id: int, now: datetime, last: tuple[int, datetime, int] | None, size: int
          ) -> list[QueueEntry]:
    """The next `size` due waiting entries after `last` in queue order, with their accounts (plain SQL: an
    index range scan on (campaign, state, priority, not_before), then the accounts by primary key)."""
    text = "SELECT * FROM queue_entry WHERE campaign_id = ? AND state = 'waiting' AND not_before <= ?"
    params: list = [campaign_id, now]
    if last is not None:
        p, nb, i = last
        text += " AND (priority > ? OR (priority = ? AND (not_before > ? OR (not_before = ? AND id > ?))))"
        params += [p, p, nb, nb, i]
    text += " ORDER BY priority, not_before, id LIMIT ?"
    entries = list(pw.ModelRaw(QueueEntry, rules.sql(text), [*params, size]))
    if entries:
        ids = list({e.account_id for e in entries})
        accounts = {a.id: a for a in pw.ModelRaw(
            Account, rules.sql(f"SELECT * FROM account WHERE id IN ({', '.join('?' * len(ids))})"), ids)}
        for e in entries:
            e.account = accounts[e.account_id]
    return entries


def _consider(cfg: Config, windows: CallWindows, e: QueueEntry, now: datetime, busy_acc: set[int],
              busy_num: set[str], taken: set[int], closes: list, defers: list, closed_tz: dict
              ) -> Candidate | None:
    acc: Account = e.account
    tz = _tz_ok(cfg, acc)
    if tz is None:
        closes.append((e.id, "not_eligible", f"unknown time zone {acc.timezone!r}"))
        return None
    if tz in closed_tz:
        return None
    all_phones = rules.account_phones(acc.id)
    phones = rules.callable_phones(acc.id, all_phones, cfg)
    if phones:  # the do-not-call list as it is right now (a debtor may have pressed 8 a minute ago)
        free = dnc.without_listed(phones, windows.local_day(tz, now))
        if not free:
            closes.append((e.id, "not_eligible", "every number on the do-not-call list"))
            return None
        phones = free
    d = rules.may_call_now(cfg, acc, now, windows, entry=e, phones=phones,
                           numbers=rules.account_numbers(acc.id, all_phones))
    if not d.may_call:
        if d.final:
            closes.append((e.id, _CLOSE_OUTCOME.get(d.code, "not_eligible"), d.reasons[0]))
        elif d.code == "window" and d.not_before is not None:
            closed_tz[tz] = d.not_before  # every waiting entry of this zone waits: deferred in one UPDATE
        elif d.not_before is not None:
            defers.append((e.id, d.not_before, d.reasons[0]))
        return None
    phone = rules.pick_phone(phones, e.phone_index)
    assert phone is not None  # may_call_now refused empty phone lists
    if phone.e164 in busy_num:
        return None
    v = _check(cfg, acc, windows.local_day(tz, now))
    if not v.eligible:
        closes.append((e.id, "not_eligible", "; ".join(v.reasons) or "no longer eligible"))
        return None
    sharing = _sharing(cfg, windows, e, phone.e164, now, busy_acc, taken, closes)
    return Candidate(e, acc, phone, sharing, windows.window_end(tz, now))


def _sharing(cfg: Config, windows: CallWindows, e: QueueEntry, e164: str, now: datetime, busy_acc: set[int],
             taken: set[int], closes: list) -> list[QueueEntry]:
    """Other waiting entries of this campaign whose account has `e164` as a callable number."""
    # two indexed look-ups (phone.e164, then queue_entry.account) instead of one sub-select the planner
    # may answer by scanning the campaign's waiting entries
    others = [a for a, valid, flagged in models.database.obj.execute_sql(
        rules.sql("SELECT account_id, valid, flagged_at FROM phone WHERE e164 = ? AND account_id <> ?"),
        [e164, e.account_id]).fetchall() if valid and flagged is None]
    if not others:
        return []
    rows = (QueueEntry.select(QueueEntry, Account).join(Account)
            .where(QueueEntry.campaign == e.campaign_id, QueueEntry.state == "waiting",
                   QueueEntry.account.in_(others)).order_by(QueueEntry.id))
    out = []
    for o in rows:
        if o.id in taken or o.account_id in busy_acc:
            continue
        tz = _tz_ok(cfg, o.account)
        if tz is None:
            continue
        d = rules.may_call_now(cfg, o.account, now, windows, entry=o, phones=None)
        if not d.may_call:
            continue
        v = _check(cfg, o.account, windows.local_day(tz, now))
        if not v.eligible:
            closes.append((o.id, "not_eligible", "; ".join(v.reasons) or "no longer eligible"))
            continue
        out.append(o)
    return out


def _apply(campaign: Campaign, cfg: Config, picked: list[Candidate], closes: list, defers: list,
           closed_tz: dict[str, datetime], now: datetime) -> list[Candidate]:
    """One write transaction: closes, deferrals, then the claims. Returns the candidates actually claimed."""
    won: list[Candidate] = []
    db = models.database.obj
    with _write_lock(db):
        _close_many(closes, now)
        for eid, until, why in defers:
            (QueueEntry.update(not_before=_naive(until), reason=why[:200], updated_at=now)
             .where(QueueEntry.id == eid, QueueEntry.state == "waiting").execute())
        for tz, until in closed_tz.items():
            in_zone = Account.timezone == tz
            if tz == cfg.locale.timezone:
                in_zone = in_zone | (Account.timezone == "")
            zone_accounts = Account.select(Account.id).where(in_zone)
            (QueueEntry.update(not_before=_naive(until), updated_at=now)
             .where(QueueEntry.campaign == campaign, QueueEntry.state == "waiting",
                    QueueEntry.not_before < _naive(until), QueueEntry.account.in_(zone_accounts)).execute())
        for cand in picked:
            if _claim(cand, now):
                won.append(cand)
    for cand in won:
        for x in cand.entries:
            x.state = "dialing"
            x.updated_at = now
    return won


def _claim(cand: Candidate, now: datetime) -> bool:
    """Flip the candidate's entries waiting -> dialing if nothing of theirs is in flight (inside the write lock).

    Plain SQL (rules.sql): separate indexed look-ups on attempt.e164, attempt.account, phone.e164 and
    queue_entry.account, each a few microseconds in the database.
    """
    db = models.database.obj
    accounts = [x.account_id for x in cand.entries]
    ids = [x.id for x in cand.entries]
    live = ", ".join("?" * len(IN_FLIGHT))

    def one(text: str, params: list) -> tuple | None:
        return db.execute_sql(rules.sql(text), params).fetchone()

    if one(f"SELECT 1 FROM attempt WHERE e164 = ? AND state IN ({live}) LIMIT 1", [cand.e164, *IN_FLIGHT]):
        return False
    if one(f"SELECT 1 FROM attempt WHERE account_id IN ({', '.join('?' * len(accounts))}) "
           f"AND state IN ({live}) LIMIT 1", [*accounts, *IN_FLIGHT]):
        return False
    holders = [r[0] for r in db.execute_sql(rules.sql("SELECT account_id FROM phone WHERE e164 = ?"),
                                            [cand.e164]).fetchall()]
    if holders and one(f"SELECT 1 FROM queue_entry WHERE account_id IN ({', '.join('?' * len(holders))}) "
                       "AND state = 'dialing' LIMIT 1", holders):
        return False  # another claim may be about to dial this number
    marks = ", ".join("?" * len(ids))
    # Inside the write lock nobody else changes these rows between the count and the update.
    waiting = one(f"SELECT COUNT(*) FROM queue_entry WHERE id IN ({marks}) AND state = 'waiting'", ids)
    if waiting is None or waiting[0] != len(ids):
        return False
    n = db.execute_sql(rules.sql(f"UPDATE queue_entry SET state = 'dialing', updated_at = ? "
                                 f"WHERE id IN ({marks}) AND state = 'waiting'"), [now, *ids]).rowcount
    if n != len(ids):  # cannot happen under the lock; refuse rather than risk a double call
        raise IvrError(f"queue claim lost a race on entries {ids}: is the database shared without locking?")
    return True


def release(entries: Iterable[QueueEntry], clock: Clock) -> int:
    """Give back claims that were not dialed (paused, no slot): back to waiting, nothing counted."""
    ids = [e.id for e in entries]
    if not ids:
        return 0
    now = _naive(clock.now())
    n = (QueueEntry.update(state="waiting", updated_at=now)
         .where(QueueEntry.id.in_(ids), QueueEntry.state == "dialing").execute())
    for e in entries:
        e.state = "waiting"
    return n


# --- after a call -------------------------------------------------------------------------------------------------

def record_result(entry: QueueEntry, outcome: str, cause: str, clock: Clock, attempt: Attempt | None = None,
                  *, cfg: Config | None = None) -> QueueEntry:
    """Apply a call's outcome to its queue entry and return the entry as saved.

    heard / pay_now / callback / already_paid / opted_out -> done (opted_out: the dialer has put the number on
    the do-not-call list; other numbers of the account may be called on later evenings). early_hangup / not_heard -> front of the queue after
    retry.early_hangup_pause_seconds (same number). congestion causes and trunk errors -> back, not counted.
    unknown -> front, counted. machine (an answering machine; it heard no message) -> like no answer: the
    NO_ANSWER delay, next number. Causes in invalid_number_causes -> number flagged invalid (for every account that
    has it), next number. never_retry causes -> number flagged, next number. wrong_number -> this account's
    number flagged, next number. Anything else -> retry after retry.delays[cause] (default_delay) on the next
    number. Then the caps: campaign cap reached -> given_up; daily / contact cap -> wait for the window after
    the cap lifts. Entries already closed are left as they are (a late duplicate report changes nothing).
    """
    cfg = _cfg_for(entry.campaign_id, cfg)
    windows = _windows_for(cfg)
    now_aware = aware_utc(clock.now())
    now = _naive(now_aware)
    r = cfg.retry
    cause = (cause or "").upper()
    with models.database.obj.atomic():
        e = QueueEntry.get_by_id(entry.id)
        if e.state not in ("waiting", "dialing"):
            return e
        acc = Account.get_by_id(e.account_id)
        tz = _tz_ok(cfg, acc) or cfg.locale.timezone
        phones = rules.callable_phones(acc.id, cfg=cfg)
        called = _called_phone(acc.id, phones, e, attempt)
        e.outcome, e.updated_at = outcome, now
        e.reason = f"{outcome} {cause}".strip()[:200]
        counted = True
        next_pos: int | None = called.position if called else e.phone_index
        delay = 0.0

        if outcome in DONE_OUTCOMES:
            e.state = "done"
            e.attempts += 1
            if outcome == "already_paid" and acc.claimed_paid_at is None:
                Account.update(claimed_paid_at=now).where(Account.id == acc.id).execute()
            e.save()
            _sync(entry, e)
            return e
        congestion = cause in cfg.pacing.congestion_causes and outcome not in FRONT_OUTCOMES
        if outcome in TRUNK_OUTCOMES or cause in TRUNK_CAUSES or congestion:
            counted = False  # the trunk's fault, not an attempt on the debtor
            delay = 0 if (outcome == "trunk_error" or cause in TRUNK_CAUSES) else r.delays.get(cause, r.default_delay)
        elif outcome in FRONT_OUTCOMES or outcome == "unknown":
            e.priority = FRONT_PRIORITY
            delay = r.early_hangup_pause_seconds if outcome in FRONT_OUTCOMES else 0
        elif cause in r.invalid_number_causes or outcome == "invalid_number":
            if called is not None:
                why = cause or "invalid number"
                (Phone.update(valid=False, invalid_reason=why, flagged_at=now)
                 .where(Phone.e164 == called.e164).execute())
                log.info("account=%s number=%s flagged invalid cause=%s", acc.number, shown_number(called.e164),
                         why)
            next_pos = _next_after(acc.id, called)
        elif outcome == "wrong_number":
            if called is not None:
                (Phone.update(valid=False, invalid_reason="wrong number (key 9)", flagged_at=now)
                 .where(Phone.id == called.id).execute())
            next_pos = _next_after(acc.id, called)
        elif cause in r.never_retry:
            if called is not None:
                (Phone.update(invalid_reason=cause, flagged_at=now).where(Phone.id == called.id).execute())
            next_pos = _next_after(acc.id, called)
        else:
            # an answering machine heard no message: retried like no answer (its delay, the next number)
            delay = r.delays.get("NO_ANSWER" if outcome == "machine" else cause, r.default_delay)
            next_pos = rules.position_after(phones, called.position) if called else e.phone_index

        if counted:
            e.attempts += 1
        if next_pos is None:
            e.state = "given_up"
            e.reason = f"no callable number left ({outcome} {cause})".strip()[:200]
            e.save()
            _sync(entry, e)
            return e
        e.phone_index = next_pos
        e.state = "waiting"
        if counted and rules.campaign_cap_reached(cfg, e):
            e.state = "given_up"
            e.reason = f"attempt cap for the campaign reached ({e.attempts}/{r.max_attempts_per_campaign})"
            e.save()
            _sync(entry, e)
            return e
        due = now_aware + timedelta(seconds=delay)
        block = rules.cap_block(cfg, acc.id, tz, due) if counted else None
        if block is not None:
            due = max(due, block.until)
            e.reason = block.reason[:200]
        e.not_before = _naive(windows.next_open(tz, due))
        e.save()
    _sync(entry, e)
    return e


def record_candidate_result(cand: Candidate, outcome: str, cause: str, clock: Clock,
                            attempt: Attempt | None = None, *, cfg: Config | None = None) -> list[QueueEntry]:
    """`record_result` for every entry the call carried (a shared number: same outcome for all)."""
    return [record_result(x, outcome, cause, clock, attempt, cfg=cfg) for x in cand.entries]


def _called_phone(account_id: int, phones: list[Phone], e: QueueEntry, attempt: Attempt | None) -> Phone | None:
    """The account's Phone this call dialed: the attempt's number if known, else the entry's current number."""
    if attempt is not None and attempt.e164:
        p = Phone.get_or_none((Phone.account == account_id) & (Phone.e164 == attempt.e164))
        if p is not None:
            return p
    return rules.pick_phone(phones, e.phone_index)


def _next_after(account_id: int, called: Phone | None) -> int | None:
    phones = rules.callable_phones(account_id)  # re-read: the called number was just flagged
    if called is None:
        return phones[0].position if phones else None
    return rules.position_after(phones, called.position)


def _sync(target: QueueEntry, source: QueueEntry) -> None:
    for f in ("state", "priority", "not_before", "attempts", "phone_index", "outcome", "reason", "updated_at"):
        setattr(target, f, getattr(source, f))


# --- for the dialer's loop and for status -------------------------------------------------------------------------

def next_wakeup(campaign: Campaign) -> datetime | None:
    """When the earliest waiting entry becomes due (aware UTC); None when nothing is waiting.

    A skip-scan over the few distinct priorities: each step is an index seek on (campaign, state, priority,
    not_before), so this stays cheap on 100,000 entries however often the dialer asks.
    """
    db = models.database.obj
    base = "FROM queue_entry WHERE campaign_id = ? AND state = 'waiting'"
    best = None
    prio = db.execute_sql(rules.sql(f"SELECT priority {base} ORDER BY priority LIMIT 1"), [campaign.id]).fetchone()
    while prio is not None:
        v = db.execute_sql(rules.sql(f"SELECT MIN(not_before) {base} AND priority = ?"),
                           [campaign.id, prio[0]]).fetchone()[0]
        v = QueueEntry.not_before.python_value(v)
        if v is not None and (best is None or v < best):
            best = v
        prio = db.execute_sql(rules.sql(f"SELECT priority {base} AND priority > ? ORDER BY priority LIMIT 1"),
                              [campaign.id, prio[0]]).fetchone()
    return None if best is None else aware_utc(best)


def counts(campaign: Campaign) -> dict[str, int]:
    """Queue entries per state."""
    q = (QueueEntry.select(QueueEntry.state, pw.fn.COUNT(QueueEntry.id))
         .where(QueueEntry.campaign == campaign).group_by(QueueEntry.state).tuples())
    return dict(q)
