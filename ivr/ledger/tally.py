"""Running counts the database keeps itself: a campaign's calls per outcome and its queue entries per state.

`ivr status` (and the console's Tonight page, every few seconds) shows both; counting them with GROUP BY reads
every call of the campaign (2,000,000 rows on a large ledger). Instead, triggers on `attempt` and `queue_entry`
add and subtract in the `tally` table as rows are written, whoever writes them (any dialer node, an import, a
cascade delete), inside the writer's own transaction, so the counts are exactly the rows' counts.
`install(db)` creates the triggers and recounts the table from the rows (migration 6); `counts(kind, campaign)`
reads them.

SQLite: row triggers (an upsert per row, updated in place). PostgreSQL: statement triggers over the transition
tables (one upsert per key a statement touched), locking tally rows in key order, so two dialers moving calls
between the same two outcomes in opposite directions cannot deadlock.
"""

from __future__ import annotations

import peewee as pw

from ivr.ledger.models import Tally

# kind -> (table, counted column): rows with a NULL campaign_id are not counted (test calls, a deleted campaign)
TALLIED = {"outcome": ("attempt", "outcome"), "queue": ("queue_entry", "state")}


def _sqlite_triggers(kind: str, table: str, col: str) -> list[str]:
    def add(row: str, delta: int) -> str:
        # INSERT ... SELECT ... WHERE: the row is only counted when it belongs to a campaign
        return (f"INSERT INTO tally (kind, campaign_id, key, n) SELECT '{kind}', {row}.campaign_id, {row}.{col}, "
                f"{delta} WHERE {row}.campaign_id IS NOT NULL "
                f"ON CONFLICT (kind, campaign_id, key) DO UPDATE SET n = n + ({delta});")
    name = f"tally_{table}"
    return [
        f"CREATE TRIGGER IF NOT EXISTS {name}_ins AFTER INSERT ON {table} BEGIN {add('NEW', 1)} END",
        f"CREATE TRIGGER IF NOT EXISTS {name}_del AFTER DELETE ON {table} BEGIN {add('OLD', -1)} END",
        f"CREATE TRIGGER IF NOT EXISTS {name}_upd AFTER UPDATE OF {col}, campaign_id ON {table} "
        f"WHEN OLD.{col} IS NOT NEW.{col} OR OLD.campaign_id IS NOT NEW.campaign_id "
        f"BEGIN {add('OLD', -1)} {add('NEW', 1)} END",
    ]


def _postgres_triggers(kind: str, table: str, col: str) -> list[str]:
    """Statement-level triggers reading the statement's transition tables: one upsert per key a statement touched,
    not one per row (a row updated a million times in one transaction leaves a million versions to step over)."""
    def fn(event: str, parts: list[tuple[str, int]]) -> str:
        rows = " UNION ALL ".join(f"SELECT campaign_id, {col}::text AS k, {d} AS d FROM {t} "
                                  f"WHERE campaign_id IS NOT NULL" for t, d in parts)
        # ORDER BY: tally rows are locked in key order (see the module's docstring)
        return f"""
CREATE OR REPLACE FUNCTION tally_{table}_{event}_fn() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO tally (kind, campaign_id, key, n)
  SELECT '{kind}', campaign_id, k, SUM(d) FROM ({rows}) AS moved
  GROUP BY campaign_id, k HAVING SUM(d) <> 0 ORDER BY campaign_id, k
  ON CONFLICT (kind, campaign_id, key) DO UPDATE SET n = tally.n + excluded.n;
  RETURN NULL;
END $$"""
    out = [f"DROP TRIGGER IF EXISTS tally_{table} ON {table}"]  # a row-level trigger of an early draft
    for event, referencing, parts in (
            ("insert", "NEW TABLE AS new_rows", [("new_rows", 1)]),
            ("delete", "OLD TABLE AS old_rows", [("old_rows", -1)]),
            ("update", "OLD TABLE AS old_rows NEW TABLE AS new_rows", [("old_rows", -1), ("new_rows", 1)])):
        out += [fn(event, parts), f"DROP TRIGGER IF EXISTS tally_{table}_{event} ON {table}",
                f"CREATE TRIGGER tally_{table}_{event} AFTER {event.upper()} ON {table} REFERENCING {referencing} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION tally_{table}_{event}_fn()"]
    return out


def install(db: pw.Database) -> None:
    """Create the triggers (idempotent) and recount every tally from the rows, in the caller's transaction."""
    postgres = isinstance(db, pw.PostgresqlDatabase)
    statements: list[str] = []
    for kind, (table, col) in TALLIED.items():
        statements += _postgres_triggers(kind, table, col) if postgres else _sqlite_triggers(kind, table, col)
    for sql in statements:
        db.execute_sql(sql)
    recount(db)


def recount(db: pw.Database) -> None:
    """Rebuild the tally table from the rows (the triggers keep it right afterwards)."""
    db.execute_sql("DELETE FROM tally")
    for kind, (table, col) in TALLIED.items():
        db.execute_sql(f"INSERT INTO tally (kind, campaign_id, key, n) SELECT '{kind}', campaign_id, {col}, "
                       f"COUNT(*) FROM {table} WHERE campaign_id IS NOT NULL GROUP BY campaign_id, {col}")


def counts(kind: str, campaign_id: int) -> dict[str, int]:
    """{key: rows} for one campaign ('outcome': calls per outcome, '' = still in progress; 'queue': entries per
    state); keys whose rows are all gone are left out."""
    return {k: n for k, n in Tally.select(Tally.key, Tally.n)
            .where((Tally.kind == kind) & (Tally.campaign_id == campaign_id) & (Tally.n > 0)).tuples()}
