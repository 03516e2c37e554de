"""Finding accounts by part of the name ("who is Kovalenko?") without reading every account.

`contains(text)` is the condition story.find_accounts uses: the same rows as `Account.name.contains(text)` (a
LIKE '%text%': case-insensitive for Latin letters on SQLite, for all on PostgreSQL's ILIKE), served by a trigram
index kept by the database (migration 11):

- SQLite: an FTS5 table with the trigram tokenizer over account.name (external content: the names are not
  copied twice), kept by triggers on account; its LIKE matches as SQLite's own does. A text of fewer than three
  letters reads every name (SQLite 3.40's trigram LIKE finds nothing for two Cyrillic letters).
- PostgreSQL: a GIN trigram index (pg_trgm) on account.name, which ILIKE uses by itself. Where the extension
  cannot be created (not installed, no right), the search reads every account as before.
"""

from __future__ import annotations

import logging

import peewee as pw

from ivr.ledger.models import Account

log = logging.getLogger("ivr.ledger.namesearch")

FTS = "account_name_fts"
_SQLITE = [
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS} USING fts5(name, content='account', content_rowid='id', "
    "tokenize='trigram')",
    f"CREATE TRIGGER IF NOT EXISTS {FTS}_ins AFTER INSERT ON account BEGIN "
    f"INSERT INTO {FTS} (rowid, name) VALUES (NEW.id, NEW.name); END",
    f"CREATE TRIGGER IF NOT EXISTS {FTS}_del AFTER DELETE ON account BEGIN "
    f"INSERT INTO {FTS} ({FTS}, rowid, name) VALUES ('delete', OLD.id, OLD.name); END",
    f"CREATE TRIGGER IF NOT EXISTS {FTS}_upd AFTER UPDATE OF name ON account WHEN OLD.name IS NOT NEW.name BEGIN "
    f"INSERT INTO {FTS} ({FTS}, rowid, name) VALUES ('delete', OLD.id, OLD.name); "
    f"INSERT INTO {FTS} (rowid, name) VALUES (NEW.id, NEW.name); END",
    f"INSERT INTO {FTS} ({FTS}) VALUES ('rebuild')",
]


def install(db: pw.Database) -> None:
    """Create the index (and its triggers) over the names already there; without FTS5 or pg_trgm, nothing."""
    if isinstance(db, pw.PostgresqlDatabase):
        try:
            with db.atomic():  # a savepoint: a refused extension must not spoil the migration's transaction
                db.execute_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
                db.execute_sql("CREATE INDEX IF NOT EXISTS account_name_trgm ON account USING gin (name gin_trgm_ops)")
        except pw.DatabaseError as exc:
            log.warning("event=name_index_skipped reason=%s; searching by name reads every account",
                        str(exc).splitlines()[0])
        return
    try:
        with db.atomic():
            for sql in _SQLITE:
                db.execute_sql(sql)
    except pw.OperationalError as exc:  # an SQLite built without FTS5
        log.warning("event=name_index_skipped reason=%s; searching by name reads every account", exc)


_has_fts: dict[int, bool] = {}


def contains(text: str) -> pw.Expression:
    """Accounts whose name contains `text` (see the module's docstring)."""
    db = Account._meta.database
    if isinstance(db.obj, pw.SqliteDatabase) and len(text) >= 3:  # shorter: the trigram index cannot serve it
        key = id(db.obj)
        if key not in _has_fts:
            _has_fts[key] = db.table_exists(FTS)
        if _has_fts[key]:
            return Account.id.in_(pw.SQL(f"(SELECT rowid FROM {FTS} WHERE name LIKE ?)", [f"%{text}%"]))
    return Account.name.contains(text)
