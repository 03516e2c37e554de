"""Substring search ("name contains ...") served by a trigram index the database keeps, not by reading every row.

`install(db, table, column)` creates the index (the table's primary key must be an integer `id`: the index
rows carry it as their rowid); `contains(field, text)` is the condition, giving the same rows as `field LIKE
'%text%'` with text's own % and _ taken literally (case-insensitive for Latin letters on SQLite; on
PostgreSQL ILIKE, for all letters). Used for account names (story.find_accounts) and the stored reports' person
table (ivr.report.stored).

- SQLite: an FTS5 table with the trigram tokenizer over the column (external content: the text is not copied),
  kept by triggers on the table (cascade deletes included); its LIKE matches as SQLite's own does. A text of
  fewer than three letters, or holding a wildcard or backslash, reads every row (the index cannot serve it;
  SQLite 3.40's trigram LIKE also finds nothing for two Cyrillic letters).
- PostgreSQL: a GIN trigram index (pg_trgm) on the column, which ILIKE uses by itself. Where the extension
  cannot be created (not installed, no right), the search reads every row, as it would without this module.
"""

from __future__ import annotations

import logging

import peewee as pw

log = logging.getLogger("ivr.ledger.trigram")


def _fts(table: str, column: str) -> str:
    return f"{table}_{column}_fts"


def install(db: pw.Database, table: str, column: str, triggers: bool = True) -> None:
    """Create the index (and, on SQLite, its triggers) over the rows already there; without FTS5 or pg_trgm,
    nothing (logged). `triggers=False` (SQLite): the writer indexes what it inserts itself with `add`, set-wise (a
    trigger indexes row by row: 10x slower for a million rows); deletes, cascades included, stay a trigger's (an
    external-content index holding a row that is gone reads as a corrupt database)."""
    if isinstance(db, pw.PostgresqlDatabase):
        try:
            with db.atomic():  # a savepoint: a refused extension must not spoil the migration's transaction
                db.execute_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
                db.execute_sql(f"CREATE INDEX IF NOT EXISTS {table}_{column}_trgm ON {table} "
                               f"USING gin ({column} gin_trgm_ops)")
        except pw.DatabaseError as exc:
            log.warning("event=trigram_index_skipped table=%s reason=%s; a search there reads every row", table,
                        str(exc).splitlines()[0])
        return
    fts = _fts(table, column)
    statements = [
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {fts} USING fts5({column}, content='{table}', content_rowid='id', "
        "tokenize='trigram')",
        f"CREATE TRIGGER IF NOT EXISTS {fts}_ins AFTER INSERT ON {table} BEGIN "
        f"INSERT INTO {fts} (rowid, {column}) VALUES (NEW.id, NEW.{column}); END",
        f"CREATE TRIGGER IF NOT EXISTS {fts}_del AFTER DELETE ON {table} BEGIN "
        f"INSERT INTO {fts} ({fts}, rowid, {column}) VALUES ('delete', OLD.id, OLD.{column}); END",
        f"CREATE TRIGGER IF NOT EXISTS {fts}_upd AFTER UPDATE OF {column} ON {table} "
        f"WHEN OLD.{column} IS NOT NEW.{column} BEGIN "
        f"INSERT INTO {fts} ({fts}, rowid, {column}) VALUES ('delete', OLD.id, OLD.{column}); "
        f"INSERT INTO {fts} (rowid, {column}) VALUES (NEW.id, NEW.{column}); END",
        f"INSERT INTO {fts} ({fts}) VALUES ('rebuild')",
    ]
    if not triggers:  # deletes (cascades included) still by trigger: the index must never hold a row gone
        statements = [statements[0], statements[2], *(f"DROP TRIGGER IF EXISTS {fts}_{e}" for e in ("ins", "upd")),
                      statements[-1]]
    try:
        with db.atomic():
            for sql in statements:
                db.execute_sql(sql)
    except pw.OperationalError as exc:  # an SQLite built without FTS5
        log.warning("event=trigram_index_skipped table=%s reason=%s; a search there reads every row", table, exc)


def _indexed(field: pw.Field) -> str | None:
    """The SQLite FTS table indexing `field` (None: PostgreSQL, or none there)."""
    model = field.model
    db = model._meta.database
    target = db.obj if isinstance(db, pw.DatabaseProxy) else db
    if not isinstance(target, pw.SqliteDatabase):
        return None
    fts = _fts(model._meta.table_name, field.column_name)
    key = (id(target), fts)
    if key not in _has_fts:
        _has_fts[key] = db.table_exists(fts)
    return fts if _has_fts[key] else None


def add(field: pw.Field, where: str, params: list) -> None:
    """Put the rows matching `where` into the index, after they are written (SQLite, an index without
    triggers)."""
    fts = _indexed(field)
    if fts is not None:
        table, col = field.model._meta.table_name, field.column_name
        field.model._meta.database.execute_sql(
            f"INSERT INTO {fts} (rowid, {col}) SELECT id, {col} FROM {table} WHERE {where}", params)


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


_has_fts: dict[tuple[int, str], bool] = {}


def contains(field: pw.Field, text: str, recheck: bool = False) -> pw.Node:
    """Rows whose `field` contains `text` (see the module's docstring); `recheck`: the row's own text is
    matched too (belt and braces for an index its writer keeps)."""
    model = field.model
    db = model._meta.database
    target = db.obj if isinstance(db, pw.DatabaseProxy) else db
    if isinstance(target, pw.PostgresqlDatabase):
        return pw.NodeList((field, pw.SQL("ILIKE"), pw.Value(f"%{_escaped(text)}%"), pw.SQL("ESCAPE '\\'")))
    plain = pw.NodeList((field, pw.SQL("LIKE"), pw.Value(f"%{_escaped(text)}%"), pw.SQL("ESCAPE '\\'")))
    if len(text) < 3 or any(c in text for c in "%_\\"):
        return plain
    fts = _indexed(field)
    if fts is None:
        return plain
    # the table's integer primary key is its rowid, which the index's rows carry
    hit = model._meta.primary_key.in_(pw.SQL(f"(SELECT rowid FROM {fts} WHERE {field.column_name} LIKE ?)",
                                             [f"%{text}%"]))
    return (hit & plain) if recheck else hit
