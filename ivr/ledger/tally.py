"""Running counts the database keeps itself: a campaign's calls per outcome and its queue entries per state.

`ivr status` (and the console's Tonight page, every few seconds) shows both; counting them with GROUP BY reads
every call of the campaign (2,000,000 rows on a large ledger). Instead, triggers on `attempt` and `queue_entry`
add and subtract in the `tally` table as rows are written, whoever writes them (any dialer node, an import, a
cascade delete), inside the writer's own transaction, so the counts are exactly the rows' counts.
`install(db)` creates the triggers and recounts the table from the rows (migration 6); `counts(kind, campaign)`
reads them.

On PostgreSQL one statement changing a row's key touches two tally rows: they are always locked in key
order, so two dialers moving calls between the same two outcomes in opposite directions cannot deadlock.
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
    fn = f"tally_{table}_fn"
    body = f"""
CREATE OR REPLACE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  old_c integer; old_k text; new_c integer; new_k text;
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN old_c := OLD.campaign_id; old_k := OLD.{col}; END IF;
  IF TG_OP IN ('UPDATE', 'INSERT') THEN new_c := NEW.campaign_id; new_k := NEW.{col}; END IF;
  IF old_c IS NOT DISTINCT FROM new_c AND old_k IS NOT DISTINCT FROM new_k THEN RETURN NULL; END IF;
  IF old_c IS NOT NULL AND new_c IS NOT NULL AND (new_c, new_k) < (old_c, old_k) THEN
    -- lock the smaller key first (see the module's docstring)
    PERFORM tally_add('{kind}', new_c, new_k, 1);
    PERFORM tally_add('{kind}', old_c, old_k, -1);
  ELSE
    IF old_c IS NOT NULL THEN PERFORM tally_add('{kind}', old_c, old_k, -1); END IF;
    IF new_c IS NOT NULL THEN PERFORM tally_add('{kind}', new_c, new_k, 1); END IF;
  END IF;
  RETURN NULL;
END $$"""
    return [
        body,
        f"DROP TRIGGER IF EXISTS tally_{table} ON {table}",
        f"CREATE TRIGGER tally_{table} AFTER INSERT OR DELETE OR UPDATE OF {col}, campaign_id ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION {fn}()",
    ]


_PG_ADD = """
CREATE OR REPLACE FUNCTION tally_add(k text, c integer, key_ text, delta integer) RETURNS void LANGUAGE sql AS $$
  INSERT INTO tally (kind, campaign_id, key, n) VALUES (k, c, key_, delta)
  ON CONFLICT (kind, campaign_id, key) DO UPDATE SET n = tally.n + delta
$$"""


def install(db: pw.Database) -> None:
    """Create the triggers (idempotent) and recount every tally from the rows, in the caller's transaction."""
    postgres = isinstance(db, pw.PostgresqlDatabase)
    statements = [_PG_ADD] if postgres else []
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
