"""Stored eligibility verdicts: the console's Who will be called lists read and page them by SQL.

Judging every account (ivr.ledger.eligibility.evaluate) takes about a second per 10,000 accounts, so a list of
1,000,000 cannot be judged per request. Instead one day's verdicts are kept in `stored_verdict` (only accounts on
one of the two lists: eligible, or owing and excluded), and kept equal to a from-scratch evaluation:

- Triggers on every table a verdict reads (account, phone, balance, payment, installment plans and dues, the
  do-not-call list, life-support notices, import runs) write the ids of the accounts a change may touch into `verdict_dirty`, inside
  the writer's own transaction, whoever writes (an import, the dialer's call results, a person on the console).
  A finished full accounts export marks every account (a NULL id): who is missing from it changed.
- `refresh` takes the marked ids away (DELETE ... RETURNING, in one transaction with the new rows, so a mark
  committed meanwhile stays for the next refresh) and judges just those accounts with `check_accounts`, the
  dialer's own last check. More than `INCREMENTAL_LIMIT` marks, or everything marked, and it rebuilds.
- The day, the rules (eligibility, dialing, locale and life_support config) and the judging code itself (a hash of the
  modules) are recorded with the stored rows: another day, a config change or an upgrade rebuilds.

One day is stored at a time (the day the lists are asked for, normally today). A rebuild is what `ivr eligible
--store` runs (from cron, after the night's imports) and what the console starts in the background when the
stored day is not the one asked for.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import peewee as pw

from ivr.config import Config
from ivr.ledger import background, eligibility
from ivr.ledger.db import insert_rows
from ivr.ledger.models import Account, StoredVerdict, VerdictState, database

log = logging.getLogger("ivr.ledger.verdicts")

INCREMENTAL_LIMIT = 20_000  # above this many changed accounts a rebuild is cheaper than judging them one by one
BATCH = 2_000
BUILDING = "building"  # VerdictState.fingerprint while a build runs

# table -> {event: SELECTs of the account ids a row change may touch (NEW / OLD as the trigger's row)}
_BY_ACCOUNT_ID = {"INSERT": ["SELECT NEW.account_id"], "DELETE": ["SELECT OLD.account_id"],
                  "UPDATE": ["SELECT OLD.account_id", "SELECT NEW.account_id"]}
_DUE = "SELECT account_id FROM installment_plan WHERE id = {row}.plan_id"
_DNC = ("SELECT id FROM account WHERE {row}.kind = 'account' AND number = {row}.value UNION "
        "SELECT account_id FROM phone WHERE {row}.kind = 'number' AND e164 = {row}.value")
_RUN = ("SELECT NULL WHERE NEW.kind = 'accounts' AND NEW.\"full\" = {true} UNION ALL "
        "SELECT id FROM account WHERE NEW.kind = 'payments' AND claimed_paid_at IS NOT NULL")
# the account columns a verdict (or the lists' display) reads; other updates (updated_at, email...) mark nothing
ACCOUNT_COLUMNS = ("number", "name", "district", "do_not_call", "claimed_paid_at", "seen_run", "life_support")
WATCHED: dict[str, dict[str, list[str]]] = {
    "account": {"INSERT": ["SELECT NEW.id"], "DELETE": ["SELECT OLD.id"], "UPDATE": ["SELECT NEW.id"]},
    "phone": _BY_ACCOUNT_ID, "balance": _BY_ACCOUNT_ID, "payment": _BY_ACCOUNT_ID,
    "installment_plan": _BY_ACCOUNT_ID, "life_support_notice": _BY_ACCOUNT_ID,
    "installment_due": {"INSERT": [_DUE.format(row="NEW")], "DELETE": [_DUE.format(row="OLD")],
                        "UPDATE": [_DUE.format(row="OLD"), _DUE.format(row="NEW")]},
    "dnc_entry": {"INSERT": [_DNC.format(row="NEW")], "DELETE": [_DNC.format(row="OLD")],
                  "UPDATE": [_DNC.format(row="OLD"), _DNC.format(row="NEW")]},
    "import_run": {"INSERT": [_RUN], "UPDATE": [_RUN]},
}


def _when(table: str, event: str) -> tuple[str, str]:
    """(UPDATE OF column list, WHEN condition) narrowing an update trigger to changes that matter."""
    if event != "UPDATE":
        return "", ""
    if table == "account":
        cols = ACCOUNT_COLUMNS
        return " OF " + ", ".join(cols), " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in cols)
    if table == "import_run":
        return " OF finished_at, status, \"full\"", ""
    return "", ""


# Marks are only worth writing while verdicts are stored (or being built) and no rebuild is due already: the table
# stays small when nobody opens the lists, and a full export's million rows add one mark, not a million.
_GUARD = ("EXISTS (SELECT 1 FROM verdict_state) AND "
          "NOT EXISTS (SELECT 1 FROM verdict_dirty WHERE account_id IS NULL)")


def _statements(postgres: bool) -> list[str]:
    true = "TRUE" if postgres else "1"
    out = ["CREATE INDEX IF NOT EXISTS verdict_dirty_all ON verdict_dirty (account_id) WHERE account_id IS NULL"]
    for table, events in WATCHED.items():
        for event, selects in events.items():
            body = " UNION ALL ".join(s.format(true=true) if "{true}" in s else s for s in selects)
            insert = f"INSERT INTO verdict_dirty (account_id) {body};"
            name = f"verdict_{table}_{event.lower()}"
            of, when = _when(table, event)
            if postgres:  # a trigger's WHEN may not hold a subquery there: the guard is in the function
                cond = f" WHEN ({when})" if when else ""
                out += [f"CREATE OR REPLACE FUNCTION {name}_fn() RETURNS trigger LANGUAGE plpgsql AS $$ "
                        f"BEGIN IF {_GUARD} THEN {insert} END IF; RETURN NULL; END $$",
                        f"DROP TRIGGER IF EXISTS {name} ON {table}",
                        f"CREATE TRIGGER {name} AFTER {event}{of} ON {table} FOR EACH ROW{cond} "
                        f"EXECUTE FUNCTION {name}_fn()"]
            else:
                changed = f"({when.replace('IS DISTINCT FROM', 'IS NOT')}) AND " if when else ""
                out += [f"DROP TRIGGER IF EXISTS {name}",
                        f"CREATE TRIGGER {name} AFTER {event}{of} ON {table} FOR EACH ROW "
                        f"WHEN {changed}{_GUARD} BEGIN {insert} END"]
    return out


def install(db: pw.Database) -> None:
    """Create (or replace) the triggers; nothing is stored until the first build (migration 11)."""
    for sql in _statements(isinstance(db, pw.PostgresqlDatabase)):
        db.execute_sql(sql)


_LEDGER = Path(eligibility.__file__).parent
_CODE = [_LEDGER / n for n in ("eligibility.py", "dnc.py", "phones.py")] + [_LEDGER.parent / "campaign" / "lifesupport.py"]
_code_hash: str | None = None


def fingerprint(cfg: Config) -> str:
    """What the stored verdicts were judged under: the config sections the rules read and the rules' code."""
    global _code_hash
    if _code_hash is None:
        h = hashlib.sha256()
        for path in _CODE:
            h.update(path.read_bytes() if path.exists() else b"")
        _code_hash = h.hexdigest()
    text = repr((cfg.eligibility, cfg.dialing, cfg.locale, cfg.life_support, _code_hash))
    return hashlib.sha256(text.encode()).hexdigest()


def _row(day: date, v: eligibility.Verdict, name: str, district: str) -> tuple:
    text = "\n".join(r.replace("\n", " ") for r in v.reasons)
    return (day, v.account_id, v.number, name, district, v.eligible, str(v.remaining), text, text.lower())


def _listed(v: eligibility.Verdict) -> bool:
    return v.eligible or v.remaining > 0


_FIELDS = [StoredVerdict.day, StoredVerdict.account_id, StoredVerdict.number, StoredVerdict.name,
           StoredVerdict.district, StoredVerdict.eligible, StoredVerdict.remaining, StoredVerdict.reasons,
           StoredVerdict.search]


def _names(ids: list[int]) -> dict[int, tuple[str, str]]:
    out = {}
    for i in range(0, len(ids), BATCH):
        chunk = ids[i:i + BATCH]
        out.update({a: (n, d) for a, n, d in Account.select(Account.id, Account.name, Account.district)
                    .where(Account.id.in_(chunk)).tuples()})
    return out


def _take_marks() -> list[int | None]:
    """Delete every visible mark and return their account ids (inside the caller's transaction)."""
    return [r[0] for r in database.execute_sql("DELETE FROM verdict_dirty RETURNING account_id").fetchall()]


def build(cfg: Config, day: date, progress: Callable[[str], None] | None = None) -> int:
    """Judge every account for `day` and store the lists' rows (replacing any stored day); returns the rows."""
    t0 = time.perf_counter()
    with database.atomic():  # marks from before this point are covered by the evaluation below
        VerdictState.delete().execute()
        # a state row while building, under no rules' fingerprint: the triggers keep marking (changes made
        # during the evaluation are judged again by the next refresh) but nothing reads the rows as current
        VerdictState.create(day=day, fingerprint=BUILDING)
        _take_marks()
    if progress:
        progress("judging every account")
    verdicts = [v for v in eligibility.evaluate(cfg, day) if _listed(v)]
    names = {a: (n, d) for a, n, d in Account.select(Account.id, Account.name, Account.district).tuples()}
    if progress:
        progress(f"storing {len(verdicts)} verdicts")
    rows = [_row(day, v, *names.get(v.account_id, ("", ""))) for v in verdicts]
    counts: dict[str, dict[str, int]] = {"eligible": {}, "excluded": {}}
    for r in rows:
        _count(counts, r[5], r[4], 1)
    with database.atomic():
        StoredVerdict.delete().execute()
        insert_rows(_FIELDS, rows)
        now = datetime.now(UTC).replace(tzinfo=None)
        VerdictState.delete().execute()
        VerdictState.create(day=day, built_at=now, refreshed_at=now, fingerprint=fingerprint(cfg),
                            accounts=len(names), counts=json.dumps(counts))
    log.info("event=verdicts_built day=%s rows=%d accounts=%d seconds=%.1f", day, len(verdicts), len(names),
             time.perf_counter() - t0)
    return len(verdicts)


def stored_day(cfg: Config) -> VerdictState | None:
    """The stored day's state when it was judged under the current rules (else None)."""
    state = VerdictState.select().first()
    return state if state is not None and state.fingerprint == fingerprint(cfg) else None


@dataclass
class Refreshed:
    changed: int  # accounts judged again
    rebuilt: bool


def refresh(cfg: Config, day: date, limit: int = INCREMENTAL_LIMIT) -> Refreshed | None:
    """Bring the stored verdicts of `day` up to date with the ledger by judging the marked accounts again.

    Returns None, touching nothing, when that needs a rebuild instead: another day (or none) stored, other
    rules, every account marked, or more than `limit` marks."""
    state = stored_day(cfg)
    if state is None or state.day != day:
        return None
    if database.execute_sql("SELECT 1 FROM verdict_dirty LIMIT 1").fetchone() is None:
        return Refreshed(0, False)  # nothing changed: no write transaction (a page view per few seconds)
    with database.atomic() as txn:
        marks = _take_marks()
        ids = sorted({m for m in marks if m is not None})
        if None in marks or len(ids) > limit:
            txn.rollback()  # the marks stay for the rebuild
            return None
        if ids:
            counts = json.loads(state.counts)
            _store(cfg, day, ids, counts)
            VerdictState.update(refreshed_at=datetime.now(UTC).replace(tzinfo=None),
                                counts=json.dumps(counts)).where(VerdictState.day == day).execute()
    if ids:
        log.info("event=verdicts_refreshed day=%s accounts=%d", day, len(ids))
    return Refreshed(len(ids), False)


def _count(counts: dict[str, dict[str, int]], eligible: bool, district: str, delta: int) -> None:
    per = counts["eligible" if eligible else "excluded"]
    per[district] = per.get(district, 0) + delta
    if not per[district]:
        del per[district]


def _store(cfg: Config, day: date, ids: list[int], counts: dict[str, dict[str, int]]) -> None:
    """Judge `ids` again (the dialer's check_accounts), replace their stored rows and move `counts` with them."""
    for i in range(0, len(ids), BATCH):
        chunk = ids[i:i + BATCH]
        verdicts, _listed_dnc = eligibility.check_accounts(cfg, chunk, day)
        names = _names([a for a, v in verdicts.items() if _listed(v)])
        gone = StoredVerdict.select(StoredVerdict.eligible, StoredVerdict.district).where(
            (StoredVerdict.day == day) & StoredVerdict.account_id.in_(chunk))
        for eligible, district in gone.tuples():
            _count(counts, bool(eligible), district, -1)
        StoredVerdict.delete().where((StoredVerdict.day == day) & StoredVerdict.account_id.in_(chunk)).execute()
        rows = [_row(day, v, *names.get(a, ("", ""))) for a, v in verdicts.items() if _listed(v)]
        for r in rows:
            _count(counts, r[5], r[4], 1)
        insert_rows(_FIELDS, rows)


def ensure(cfg: Config, day: date, progress: Callable[[str], None] | None = None) -> Refreshed:
    """Refresh the stored verdicts of `day`, rebuilding them when a refresh cannot (the CLI's --store)."""
    done = refresh(cfg, day)
    if done is not None:
        return done
    return Refreshed(build(cfg, day, progress), True)


# --- the console's lists -------------------------------------------------------------------------------------

def _like(needle: str) -> pw.Node:
    """`search LIKE '%needle%'` with the needle's own % and _ taken literally (plain LIKE on both databases:
    peewee would turn an SQLite LIKE into GLOB)."""
    escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return pw.NodeList((StoredVerdict.search, pw.SQL("LIKE"), pw.Value(f"%{escaped}%"), pw.SQL("ESCAPE '\\'")))


_counts: dict[tuple, int] = {}  # (filters, the stored verdicts' version) -> rows: paging a list counts it once


def listing(day: date, *, excluded: bool = False, district: str = "", reason: str = "",
            amount_min: Decimal | None = None, amount_max: Decimal | None = None, offset: int = 0,
            limit: int = 50, state: VerdictState | None = None) -> eligibility.Listing:
    """One page of the stored lists, in account order, with the count over every page: the same rows as
    eligibility.listing on a ledger the stored verdicts are up to date with (call `refresh` first). `state`
    (the stored day's, from `stored_day`) lets the count be reused while nothing was refreshed."""
    cond = (StoredVerdict.day == day) & (StoredVerdict.eligible == (not excluded))
    if district:
        cond &= StoredVerdict.district == district
    needle = reason.strip().lower()
    if needle:
        cond &= _like(needle)
    if amount_min is not None:
        cond &= StoredVerdict.remaining >= amount_min
    if amount_max is not None:
        cond &= StoredVerdict.remaining <= amount_max
    current = state is not None and state.day == day and state.fingerprint != BUILDING
    key = (day, excluded, district, needle, amount_min, amount_max,
           (state.built_at, state.refreshed_at) if current else None)
    total = _counts.get(key) if current else None
    if current and total is None and not needle and amount_min is None and amount_max is None:
        per = json.loads(state.counts).get("excluded" if excluded else "eligible", {})  # kept with the rows
        total = per.get(district, 0) if district else sum(per.values())
    if total is None:
        total = StoredVerdict.select(pw.fn.COUNT(pw.SQL("*"))).where(cond).scalar() or 0
        if key[-1] is not None:
            if len(_counts) > 256:
                _counts.clear()
            _counts[key] = total
    # the page's ids first, off an index (a deep page steps over index entries, not over the wide rows)
    ids = (StoredVerdict.select(StoredVerdict.account_id).where(cond).order_by(StoredVerdict.account_id)
           .limit(limit).offset(offset))
    rows = []
    for acc, number, name, dist, eligible, remaining, reasons in (
            StoredVerdict.select(StoredVerdict.account_id, StoredVerdict.number, StoredVerdict.name,
                                 StoredVerdict.district, StoredVerdict.eligible, StoredVerdict.remaining,
                                 StoredVerdict.reasons)
            .where((StoredVerdict.day == day) & StoredVerdict.account_id.in_(ids))
            .order_by(StoredVerdict.account_id).tuples()):
        v = eligibility.Verdict(acc, number, bool(eligible), eligibility._money(remaining),
                                reasons.split("\n") if reasons else [])
        rows.append(eligibility.ListedVerdict(v, name, dist))
    return eligibility.Listing(rows, total)


def stored_rows(day: date) -> list[tuple[int, bool, Decimal, list[str]]]:
    """Every stored row of `day` (account id, eligible, remaining, reasons), in account order: for tests and
    checks comparing with a from-scratch evaluation."""
    return [(a, bool(e), eligibility._money(r), t.split("\n") if t else [])
            for a, e, r, t in StoredVerdict.select(StoredVerdict.account_id, StoredVerdict.eligible,
                                                   StoredVerdict.remaining, StoredVerdict.reasons)
            .where(StoredVerdict.day == day).order_by(StoredVerdict.account_id).tuples()]


def expected_rows(cfg: Config, day: date) -> list[tuple[int, bool, Decimal, list[str]]]:
    """What `stored_rows` must equal: the lists' rows of a from-scratch evaluation."""
    return [(v.account_id, v.eligible, v.remaining, [r.replace("\n", " ") for r in v.reasons])
            for v in eligibility.evaluate(cfg, day) if _listed(v)]


def build_in_background(cfg: Config, day: date) -> float:
    """Start bringing `day`'s verdicts up to date in a thread (unless that runs); returns when it started."""
    return background.start(("verdicts", day), lambda: ensure(cfg, day))


def building(day: date) -> float | None:
    """When the running background build of `day` started (None: none runs)."""
    return background.running(("verdicts", day))
