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

import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import peewee as pw

from ivr.campaign import holdout, kinds, rules
from ivr.campaign.windows import CallWindows, as_zone, aware_utc
from ivr.clock import Clock
from ivr.config import Config
from ivr.errors import IvrError
from ivr.ledger import dnc, models
from ivr.ledger.models import ATTEMPT_IN_FLIGHT, Account, Attempt, Campaign, Phone, QueueEntry
from ivr.logs import shown_number

log = logging.getLogger(__name__)

DONE_OUTCOMES = frozenset({"heard", "pay_now", "callback", "already_paid", "opted_out"})
FRONT_OUTCOMES = frozenset({"early_hangup", "not_heard"})
TRUNK_OUTCOMES = frozenset({"congestion", "trunk_error"})
RATE_LIMITED = "rate_limited"  # refused by our own switch/trunk for going past its rate: back at its place
TRUNK_CAUSES = frozenset({"INVALID_GATEWAY", "GATEWAY_DOWN"})
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
    verdicts: dict = field(default_factory=dict)  # account id -> its eligibility Verdict at the pre-dial check
    holders: set[int] = field(default_factory=set)  # every account holding this number (claim checks)

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


def _check(cfg: Config, account: Account, day: date, campaign_id: int | None = None):
    if cfg.campaign_kind != "debt" and campaign_id is not None:
        return kinds.recheck(cfg, campaign_id, [account.id], day)[account.id]
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


def _closing(entry_id: int, account_id: int, not_eligible: dict, held: set[int]) -> tuple[int, str, str]:
    if account_id in held:
        return entry_id, "held_out", "held out this evening (hold-out group)"
    return entry_id, "not_eligible", _why(not_eligible.get(account_id))


def _why(verdict) -> str:
    return "; ".join(verdict.reasons) if verdict is not None and verdict.reasons else "no longer eligible"


# --- start --------------------------------------------------------------------------------------------------------

def start_campaign(cfg: Config, day: date, clock: Clock) -> Campaign:
    """Create or resume the campaign of the local evening `day`, with a fresh eligible list.

    Eligible accounts without an entry get one (priority 0, first number); waiting entries whose account is no
    longer eligible are closed (given_up, outcome 'not_eligible', reason from eligibility); entries already done
    stay done. Waiting entries of earlier campaigns are carried over (see the module docstring). Before anyone is
    queued, the evening's hold-out group is drawn and recorded (ivr.campaign.holdout, `campaign.holdout_share`):
    those accounts get no entry, and a carried-over entry of theirs is closed with outcome 'held_out'.
    `eligible_count` counts the accounts to contact (held-out ones are in `holdout_count`).
    """
    now = _naive(clock.now())
    db = models.database.obj
    cfg = kinds.config_for(cfg, "debt")
    verdicts = _evaluate(cfg, day)
    eligible = {v.account_id: v for v in verdicts if v.eligible}
    not_eligible = {v.account_id: v for v in verdicts if not v.eligible}
    camp = _open_campaign(db, day, "debt", "", now, priority=kinds.priority_of("debt"))
    _configs[camp.id] = cfg
    release_orphans(None, clock)

    # Entries already in this campaign (a resumed evening). One write transaction taken up-front, so two
    # dialer processes starting at once build the queue one after the other.
    with _write_lock(db):
        # the hold-out group is drawn (once per evening) and recorded before anyone is queued
        held = holdout.draw(cfg, camp, eligible, now)
        to_contact = {a: v for a, v in eligible.items() if a not in held}
        carried_n, closed_n = _refresh(camp, day, to_contact, not_eligible, now, db, held)
        _close_other_channels(cfg, camp, list(to_contact), now)
        Campaign.update(eligible_count=len(to_contact)).where(Campaign.id == camp.id).execute()
    camp.eligible_count = len(to_contact)
    log.info("campaign=%s day=%s eligible=%d held_out=%d carried_over=%d closed_not_eligible=%d", camp.id, day,
             len(to_contact), len(eligible) - len(to_contact), carried_n, closed_n)
    return camp


def _open_campaign(db: pw.Database, day: date, kind: str, ref: str, now: datetime, **defaults: Any) -> Campaign:
    """The campaign (day, kind, ref), created running, or an existing one resumed as running."""
    with db.atomic():
        camp, created = Campaign.get_or_create(day=day, kind=kind, ref=ref, defaults={
            "status": "running", "started_at": now, **defaults})
        if not created:
            camp.status, camp.status_reason, camp.finished_at = "running", "", None
            camp.started_at = camp.started_at or now
            camp.save()
    return camp


def start_kind_campaign(cfg: Config, day: date, clock: Clock, kind: str, ref: str, audience: dict[int, str],
                        *, priority: int, outage_id: int | None = None,
                        not_eligible: dict[int, str] | None = None) -> Campaign:
    """Create or resume the campaign (`kind`, `ref`) of the local evening `day` for `audience` (account id ->
    why they are called), as `start_campaign` does for debt: waiting entries of accounts no longer in the
    audience are closed (`not_eligible` may say why), earlier evenings' waiting entries of the SAME kind and ref
    are carried over. No hold-out draw and no other channel: those belong to debt reminders. `cfg` is narrowed to
    the kind here (`kinds.config_for`; an emergency outage by its priority)."""
    cfg = kinds.config_for(cfg, kind, emergency=priority == kinds.PRIORITY["emergency_outage"])
    now = _naive(clock.now())
    db = models.database.obj
    camp = _open_campaign(db, day, kind, ref, now, priority=priority, outage_id=outage_id)
    _configs[camp.id] = cfg
    release_orphans(None, clock)
    why = {a: kinds.AudienceVerdict(a, False, [r]) for a, r in (not_eligible or {}).items()}
    with _write_lock(db):
        carried_n, closed_n = _refresh(camp, day, audience, why, now, db)
        Campaign.update(eligible_count=len(audience)).where(Campaign.id == camp.id).execute()
    camp.eligible_count = len(audience)
    log.info("event=campaign_started campaign=%s kind=%s ref=%s day=%s audience=%d carried_over=%d "
             "closed_not_eligible=%d", camp.id, kind, ref or "-", day, len(audience), carried_n, closed_n)
    return camp


def _refresh(camp: Campaign, day: date, eligible: dict, not_eligible: dict, now: datetime, db: pw.Database,
             held: set[int] = frozenset()) -> tuple[int, int]:
    have: dict[int, tuple[int, str]] = {
        a: (i, s) for i, a, s in QueueEntry.select(QueueEntry.id, QueueEntry.account, QueueEntry.state)
        .where(QueueEntry.campaign == camp).tuples()}
    stale = [i for a, (i, s) in have.items() if s == "waiting" and a not in eligible]
    by_entry = {i: a for a, (i, _s) in have.items()}
    _close_many((_closing(i, by_entry[i], not_eligible, held) for i in stale), now)
    # closed earlier this evening as not eligible, eligible again after a fresh import: back in the queue
    back = [i for a, (i, s) in have.items() if s == "given_up" and a in eligible]
    for i in range(0, len(back), _CHUNK):
        (QueueEntry.update(state="waiting", outcome="", reason="eligible again", updated_at=now)
         .where(QueueEntry.id.in_(back[i:i + _CHUNK]), QueueEntry.outcome == "not_eligible").execute())

    # Carry over what earlier evenings left waiting (the latest entry per account wins).
    carried: dict[int, QueueEntry] = {}
    earlier = list(QueueEntry.select().join(Campaign)
                   .where(Campaign.day < day, Campaign.kind == camp.kind, Campaign.ref == camp.ref,
                          QueueEntry.state == "waiting").order_by(Campaign.day, QueueEntry.id))
    for e in earlier:
        carried[e.account_id] = e
    rows = [{"campaign": camp.id, "account": acc_id, "priority": e.priority, "not_before": max(e.not_before, now),
             "phone_index": e.phone_index, "attempts": 0, "updated_at": now}
            for acc_id, e in carried.items() if acc_id in eligible and acc_id not in have]
    # every earlier waiting entry is closed: carried over, or no longer eligible
    _close_many(((e.id, "carried_over", f"carried over to {day}") if e.account_id in eligible
                 else _closing(e.id, e.account_id, not_eligible, held)
                 for e in earlier), now)
    taken = set(have) | {r["account"] for r in rows}
    rows += [{"campaign": camp.id, "account": a, "priority": 0, "not_before": now, "phone_index": 0,
              "updated_at": now} for a in eligible if a not in taken]
    _insert_entries(db, rows)
    return len(rows) - sum(1 for a in eligible if a not in taken), len(stale)


def _close_other_channels(cfg: Config, camp: Campaign, account_ids: list[int], now: datetime) -> None:
    """Entries of debtors whose reminder goes by another channel first (ivr.channels.rules, channels.enabled)
    are closed at once: they stay in the evening's group (the hold-out comparison counts them) but are not called."""
    from ivr.channels import rules as channel_rules

    skip = channel_rules.not_by_voice_now(cfg, account_ids, now)
    if not skip:
        return
    listed = sorted(skip)
    ids = [i for n in range(0, len(listed), _CHUNK) for (i,) in QueueEntry.select(QueueEntry.id).where(
        QueueEntry.campaign == camp, QueueEntry.state == "waiting",
        QueueEntry.account.in_(listed[n:n + _CHUNK])).tuples()]
    _close_many(((i, "other_channel", "another channel first (channels.order)") for i in ids), now)


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
    `older_than_s` ago with no Attempt of that account unsettled (in flight, or ended without its outcome yet).
    Counted attempts are unchanged."""
    now = _naive(clock.now())
    cutoff = now - timedelta(seconds=older_than_s)
    # a call whose channel has ended but whose outcome is not written yet (its flow is finishing, or the finalize
    # waits for the database) still holds its entry: releasing it would lose the outcome's count of the attempt
    unsettled = models.attempt_unsettled()
    live = Attempt.select(Attempt.account).where(unsettled)
    # accounts carried by a live call to a shared number are not named on its Attempt row: match the number too
    live_numbers = Attempt.select(Attempt.e164).where(unsettled)
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
    caps, eligibility as `eligibility.check_account`); entries that fail for good are closed with the reason,
    entries that must wait get `not_before` moved to when they may be called. The re-check reads the facts of a
    whole page of entries with one set of queries (`_Batch`), whatever the page's size; each candidate keeps its
    verdicts, so the call's message is said from the same facts without reading them again.
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
        page = _page(campaign.id, now, last, max(limit - len(picked) + 2, 4))
        if not page:
            break
        last = (page[-1].priority, page[-1].not_before, page[-1].id)
        scanned += len(page)
        todo = [e for e in page if e.id not in taken_entries and e.account_id not in busy_acc]
        batch = _Batch.load(cfg, windows, todo, now_aware)
        for e in todo:
            if len(picked) >= limit:
                break
            if e.id in taken_entries or e.account_id in busy_acc:
                continue
            cand = _consider(cfg, windows, e, now_aware, busy_acc, busy_num, taken_entries, closes, defers,
                             closed_tz, batch)
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


@dataclass
class _Batch:
    """The pre-dial facts of a page of entries, read with a fixed handful of queries (not per entry): every
    number of their accounts and every other holder of those numbers, the eligibility verdicts and do-not-call
    entries (`eligibility.check_accounts`), and the attempts the caps count (`rules.calls_concerning`)."""

    phones: dict[int, list[Phone]] = field(default_factory=dict)
    holders: dict[str, list[Phone]] = field(default_factory=dict)  # e164 -> every Phone row with that number
    verdicts: dict = field(default_factory=dict)
    listed: dnc.Listed = field(default_factory=dnc.Listed)
    calls: dict[int, list[rules.CallRow]] = field(default_factory=dict)

    @classmethod
    def load(cls, cfg: Config, windows: CallWindows, entries: list[QueueEntry], now: datetime) -> _Batch:
        from ivr.ledger import eligibility

        out = cls()
        ids = list({e.account_id for e in entries})
        if not ids:
            return out
        marks = ", ".join("?" * len(ids))
        rows = pw.ModelRaw(Phone, rules.sql(
            f"SELECT * FROM phone WHERE account_id IN ({marks}) OR e164 IN "
            f"(SELECT e164 FROM phone WHERE account_id IN ({marks}) AND e164 <> '') "
            "ORDER BY account_id, position"), [*ids, *ids])
        wanted = set(ids)
        for p in rows:
            if p.account_id in wanted:
                out.phones.setdefault(p.account_id, []).append(p)
            if p.e164:
                out.holders.setdefault(p.e164, []).append(p)
        by_day: dict[date, list[int]] = {}
        since: datetime | None = None
        for e in entries:
            tz = _tz_ok(cfg, e.account)
            if tz is None:
                continue
            by_day.setdefault(windows.local_day(tz, now), []).append(e.account_id)
            back = rules.caps_reach_back(cfg, tz, now)
            since = back if since is None else min(since, back)
        accounts = {e.account_id: e.account for e in entries}
        for day, group in by_day.items():
            phone_rows = [(p.account_id, p.e164, p.valid, p.invalid_reason, p.raw)
                          for a in group for p in out.phones.get(a, [])]
            verdicts, listed = eligibility.check_accounts(cfg, group, day, phone_rows,
                                                          [accounts[a] for a in sorted(set(group))])
            if cfg.campaign_kind != "debt":  # the kind's own audience rule, not the debt rule
                verdicts = kinds.recheck(cfg, entries[0].campaign_id, sorted(set(group)), day, now)
            out.verdicts.update(verdicts)
            out.listed.accounts.update(listed.accounts)
            out.listed.numbers.update(listed.numbers)
        if since is not None:
            out.calls = rules.calls_concerning(
                {a: [p.e164 for p in out.phones.get(a, []) if p.e164] for a in ids}, since)
        return out


def _consider(cfg: Config, windows: CallWindows, e: QueueEntry, now: datetime, busy_acc: set[int],
              busy_num: set[str], taken: set[int], closes: list, defers: list, closed_tz: dict, batch: _Batch
              ) -> Candidate | None:
    acc: Account = e.account
    tz = _tz_ok(cfg, acc)
    if tz is None:
        closes.append((e.id, "not_eligible", f"unknown time zone {acc.timezone!r}"))
        return None
    if tz in closed_tz:
        return None
    all_phones = batch.phones.get(acc.id, [])
    callable_ = phones = rules.callable_phones(acc.id, all_phones, cfg)
    if phones:  # the do-not-call list as it is right now (a debtor may have pressed 8 a minute ago)
        free = [p for p in phones if batch.listed.number(p.e164) is None]
        if not free:
            closes.append((e.id, "not_eligible", "every number on the do-not-call list"))
            return None
        phones = free
    d = rules.may_call_now(cfg, acc, now, windows, entry=e, phones=phones,
                           numbers=rules.account_numbers(acc.id, all_phones), calls=batch.calls.get(acc.id, []))
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
    v = batch.verdicts.get(acc.id) or _check(cfg, acc, windows.local_day(tz, now), e.campaign_id)
    if not v.eligible:
        closes.append((e.id, "not_eligible", "; ".join(v.reasons) or "no longer eligible"))
        return None
    e.callable_phones = callable_  # record_result's numbers after the call, without reading them again
    e.all_numbers = rules.account_numbers(acc.id, all_phones)
    e.calls_before = batch.calls.get(acc.id, [])
    holders = batch.holders.get(phone.e164, [])
    sharing, verdicts = _sharing(cfg, windows, e, phone.e164, holders, now, busy_acc, taken, closes)
    cand = Candidate(e, acc, phone, sharing, windows.window_end(tz, now))
    cand.verdicts = {acc.id: v, **verdicts}
    cand.holders = {p.account_id for p in holders} | {acc.id}
    return cand


def _sharing(cfg: Config, windows: CallWindows, e: QueueEntry, e164: str, holders: list[Phone], now: datetime,
             busy_acc: set[int], taken: set[int], closes: list) -> tuple[list[QueueEntry], dict]:
    """Other waiting entries of this campaign whose account has `e164` as a callable number (and their
    verdicts). `holders`: every Phone row with that number (read with the batch)."""
    others = [p.account_id for p in holders if p.account_id != e.account_id and p.valid and p.flagged_at is None]
    if not others:
        return [], {}
    rows = (QueueEntry.select(QueueEntry, Account).join(Account)
            .where(QueueEntry.campaign == e.campaign_id, QueueEntry.state == "waiting",
                   QueueEntry.account.in_(others)).order_by(QueueEntry.id))
    out, verdicts = [], {}
    for o in rows:
        if o.id in taken or o.account_id in busy_acc:
            continue
        tz = _tz_ok(cfg, o.account)
        if tz is None:
            continue
        d = rules.may_call_now(cfg, o.account, now, windows, entry=o, phones=None)
        if not d.may_call:
            continue
        v = _check(cfg, o.account, windows.local_day(tz, now), e.campaign_id)
        if not v.eligible:
            closes.append((o.id, "not_eligible", "; ".join(v.reasons) or "no longer eligible"))
            continue
        out.append(o)
        verdicts[o.account_id] = v
    return out, verdicts


def _apply(campaign: Campaign, cfg: Config, picked: list[Candidate], closes: list, defers: list,
           closed_tz: dict[str, datetime], now: datetime) -> list[Candidate]:
    """One write transaction: closes, deferrals, then the claims. Returns the candidates actually claimed."""
    won: list[Candidate] = []
    if not (picked or closes or defers or closed_tz):
        return won
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
        if picked:
            won = _claim(picked, now)
    for cand in won:
        for x in cand.entries:
            x.state = "dialing"
            x.updated_at = now
    return won


def _claim(cands: list[Candidate], now: datetime) -> list[Candidate]:
    """Flip the candidates' entries waiting -> dialing where nothing of theirs is in flight (inside the write
    lock), with two statements for the whole claim: the live attempts on their numbers and accounts with the
    'dialing' entries of every holder of their numbers, then the UPDATE of those still waiting (RETURNING which).

    A number is refused while an Attempt to it or to one of its accounts is live, or while any account holding it
    has a 'dialing' entry (another claim may be about to dial it, or one earlier in this claim will)."""
    db = models.database.obj
    live = ", ".join("?" * len(ATTEMPT_IN_FLIGHT))
    numbers = list({c.e164 for c in cands})
    accounts = list({x.account_id for c in cands for x in c.entries})
    holders = list({h for c in cands for h in c.holders} | set(accounts))

    def marks(n: int) -> str:
        return ", ".join("?" * n)

    busy_n: set[str] = set()
    busy_a: set[int] = set()
    dialing: set[int] = set()
    for what, e164, acc in db.execute_sql(rules.sql(
            f"SELECT 'a', e164, account_id FROM attempt WHERE state IN ({live}) AND (e164 IN "
            f"({marks(len(numbers))}) OR account_id IN ({marks(len(accounts))})) UNION ALL SELECT 'q', '', "
            f"account_id FROM queue_entry WHERE account_id IN ({marks(len(holders))}) AND state = 'dialing'"),
            [*ATTEMPT_IN_FLIGHT, *numbers, *accounts, *holders]).fetchall():
        if what == "a":
            busy_n.add(e164)
            busy_a.add(acc)
        else:
            dialing.add(acc)
    won: list[Candidate] = []
    for c in cands:
        accs = {x.account_id for x in c.entries}
        mine = c.holders or accs
        if c.e164 in busy_n or accs & busy_a or (set(mine) | accs) & dialing:
            continue
        won.append(c)
        dialing |= accs  # claimed now: a later candidate whose number these accounts hold must wait
    if not won:
        return won
    got = [x.id for c in won for x in c.entries]
    flipped = {r[0] for r in db.execute_sql(rules.sql(
        f"UPDATE queue_entry SET state = 'dialing', updated_at = ? WHERE id IN ({marks(len(got))}) "
        "AND state = 'waiting' RETURNING id"), [now, *got]).fetchall()}
    lost = [c for c in won if any(x.id not in flipped for x in c.entries)]
    if lost:  # claimed (or closed) elsewhere since the page was read: give back what this claim flipped of them
        back = [x.id for c in lost for x in c.entries if x.id in flipped]
        if back:
            db.execute_sql(rules.sql(f"UPDATE queue_entry SET state = 'waiting' WHERE id IN "
                                     f"({marks(len(back))}) AND state = 'dialing'"), back)
        won = [c for c in won if c not in lost]
    return won


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
    retry.early_hangup_pause_seconds (same number). rate_limited (the switch refused the originate for our rate,
    before any channel existed) -> waiting again at once at its place, same number, not counted. congestion causes
    and trunk errors -> back, not counted.
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
    db = models.database.obj
    # inside the dialer's finalize transaction already: no savepoint (two statements a call)
    with contextlib.nullcontext() if db.in_transaction() else db.atomic():
        if entry.state == "dialing" and "account" in entry.__rel__:
            # our own claim, as this process holds it: nobody else writes a 'dialing' entry, and the write
            # below is conditional on it still being 'dialing' (else the row as it is now is returned)
            e = QueueEntry(**entry.__data__)
            e.account = acc = entry.account
        else:
            e = QueueEntry.get_by_id(entry.id)
            if e.state not in ("waiting", "dialing"):
                return e
            acc = Account.get_by_id(e.account_id)
        expect = e.state
        tz = _tz_ok(cfg, acc) or cfg.locale.timezone
        phones = getattr(entry, "callable_phones", None)
        if phones is None:
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
            return _save(entry, e, expect)
        if outcome == RATE_LIMITED:
            # our own rate was the problem, not the debtor: same place in the queue (priority, not_before, id),
            # same number, nothing counted; the pacer has slowed the rate down meanwhile
            e.state = "waiting"
            return _save(entry, e, expect)
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
            return _save(entry, e, expect)
        e.phone_index = next_pos
        e.state = "waiting"
        if counted and rules.campaign_cap_reached(cfg, e):
            e.state = "given_up"
            e.reason = f"attempt cap for the campaign reached ({e.attempts}/{r.max_attempts_per_campaign})"
            return _save(entry, e, expect)
        due = now_aware + timedelta(seconds=delay)
        block = None
        if counted:
            block = rules.cap_block(cfg, acc.id, tz, due, getattr(entry, "all_numbers", None),
                                    _calls_with_this_one(cfg, entry, now))
        if block is not None:
            due = max(due, block.until)
            e.reason = block.reason[:200]
        e.not_before = _naive(windows.next_open(tz, due))
        return _save(entry, e, expect)


def record_candidate_result(cand: Candidate, outcome: str, cause: str, clock: Clock,
                            attempt: Attempt | None = None, *, cfg: Config | None = None) -> list[QueueEntry]:
    """`record_result` for every entry the call carried (a shared number: same outcome for all)."""
    return [record_result(x, outcome, cause, clock, attempt, cfg=cfg) for x in cand.entries]


_SAVE_SQL = ("UPDATE queue_entry SET state = ?, priority = ?, not_before = ?, attempts = ?, phone_index = ?, "
             "outcome = ?, reason = ?, updated_at = ? WHERE id = ? AND state = ?")


def _save(target: QueueEntry, e: QueueEntry, expect: str) -> QueueEntry:
    """Write the entry's new state if it is still `expect` (one statement); else it was settled meanwhile (a late
    duplicate report, or another node took the call over): the row as it is now is returned, unchanged."""
    n = models.database.obj.execute_sql(rules.sql(_SAVE_SQL), [
        e.state, e.priority, _naive_value(e.not_before), e.attempts, e.phone_index, e.outcome, e.reason,
        _naive_value(e.updated_at), e.id, expect]).rowcount
    if n != 1:
        e = QueueEntry.get_by_id(e.id)
    _sync(target, e)
    return e


def _naive_value(at: datetime) -> datetime:
    return at if at.tzinfo is None else _naive(at)


def _calls_with_this_one(cfg: Config, entry: QueueEntry, now: datetime) -> list[rules.CallRow] | None:
    """The attempts the caps count, from the pre-dial check plus this call, when that is the whole story: no
    contact caps (they need answer times), and the claim read them (nothing else could call this debtor since:
    its account and numbers were busy with this call). None: cap_block reads them."""
    before = getattr(entry, "calls_before", None)
    lim = rules.contact_limits(cfg)
    if before is None or lim.per_day or lim.per_week or lim.per_month:
        return None
    return [*before, rules.CallRow(now, None, True)]


def _called_phone(account_id: int, phones: list[Phone], e: QueueEntry, attempt: Attempt | None) -> Phone | None:
    """The account's Phone this call dialed: the attempt's number if known, else the entry's current number."""
    if attempt is not None and attempt.e164:
        for p in phones:
            if p.e164 == attempt.e164:
                return p
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
