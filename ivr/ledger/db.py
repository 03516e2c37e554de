"""Opening the database named in config (SQLite with WAL by default, PostgreSQL by URL) and upgrading its schema.

Migrations are plain functions keyed by version number; `upgrade` applies the missing ones in order and records
each in SchemaVersion, so `ivr db upgrade` is safe to run any number of times.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlparse

import peewee as pw
from playhouse.migrate import SchemaMigrator, migrate
from playhouse.shortcuts import ReconnectMixin

from ivr.ledger import models
from ivr.ledger.models import ALL_MODELS, SchemaVersion, database


class DatabaseError(RuntimeError):
    """The database cannot be opened or written; the message says which and why."""


def open_database(url: str, base_dir: Path = Path(".")) -> pw.Database:
    """Open (not yet upgrade) the database at `url` and bind the models to it."""
    if url.startswith("sqlite:///"):
        raw = url[len("sqlite:///"):]
        path = Path(raw) if raw == ":memory:" or Path(raw).is_absolute() else base_dir / raw
        if raw != ":memory:":
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DatabaseError(f"cannot create the database folder {path.parent}: {exc.strerror}") from None
        db: pw.Database = pw.SqliteDatabase(
            str(path) if raw != ":memory:" else ":memory:",
            pragmas={"journal_mode": "wal", "foreign_keys": 1, "synchronous": "normal", "busy_timeout": 10000},
            check_same_thread=False,
        )
    elif url.startswith(("postgres://", "postgresql://")):
        db = postgres_database(url)
    else:
        raise DatabaseError(f"database.url: unsupported URL {url!r}; use sqlite:///PATH or postgresql://…")
    database.initialize(db)
    try:
        db.connect(reuse_if_open=True)
    except pw.OperationalError as exc:
        where = f" {db.database}" if isinstance(db, pw.SqliteDatabase) and db.database != ":memory:" else ""
        raise DatabaseError(f"cannot open the database{where}: {exc}{_read_only_hint(db)}") from None
    return db


def _read_only_hint(db: pw.Database) -> str:
    """SQLite in WAL mode writes -wal/-shm files next to the database: a read-only folder or mount stops it."""
    if not isinstance(db, pw.SqliteDatabase) or db.database == ":memory:":
        return ""
    folder = Path(db.database).parent
    try:
        read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY) or not os.access(folder, os.W_OK)
    except OSError:
        return ""
    return f" (the folder {folder} is read-only; the database needs to write there)" if read_only else ""


# A process frozen inside a transaction (SIGSTOP, a stalled VM) would hold its locks — the slot and claim locks
# every dialer node takes — until it wakes: every other node would block behind it and nobody could take its calls
# over. Our transactions never wait on anything but the database, so the server may end one that sits idle this
# long: its locks are released (what it wrote is rolled back) and the frozen process finds its connection closed.
PG_IDLE_IN_TRANSACTION_MS = 10_000


class ReconnectingPostgres(ReconnectMixin, pw.PostgresqlDatabase):
    """PostgreSQL that opens a new connection when the server dropped ours (a restart, a failover,
    pg_terminate_backend), for a statement outside a transaction; inside one the error is raised (what the
    transaction wrote is gone) and the next statement reconnects. Without this one dropped connection would make
    every later statement of a long-running dialer fail."""

    reconnect_errors = (
        (pw.OperationalError, "server closed the connection"),
        (pw.OperationalError, "terminating connection"),
        (pw.OperationalError, "connection already closed"),
        (pw.OperationalError, "could not receive data"),
        (pw.OperationalError, "ssl connection has been closed"),
        (pw.InterfaceError, "connection already closed"),
    )


def postgres_database(url: str) -> pw.PostgresqlDatabase:
    """A (not yet connected) PostgreSQL database from `postgresql://user:pass@host:port/name`; user, password
    and name may be percent-encoded (a password containing '@' or ':' is written %40, %3A). The connection says
    which process it is (application_name ivr-<pid>, seen in pg_stat_activity)."""
    u = urlparse(url)
    return ReconnectingPostgres(unquote(u.path.lstrip("/")), user=unquote(u.username or "") or None,
                                password=unquote(u.password or "") or None, host=u.hostname,
                                port=u.port or 5432, application_name=f"ivr-{os.getpid()}",
                                options=f"-c idle_in_transaction_session_timeout={PG_IDLE_IN_TRANSACTION_MS}")


def insert_rows(fields: list[pw.Field], rows: list[tuple], batch: int = 2_000) -> None:
    """Insert many rows of one model (values in `fields` order, as the driver takes them) in the caller's
    transaction: SQLite through the driver's executemany (peewee's insert_many costs 5x on 10^6 rows), PostgreSQL
    through multi-row INSERTs (an executemany there is a round trip per row)."""
    if not rows:
        return
    model = fields[0].model
    db = model._meta.database
    if isinstance(db.obj if isinstance(db, pw.DatabaseProxy) else db, pw.SqliteDatabase):
        cols = ", ".join(f'"{f.column_name}"' for f in fields)
        marks = ", ".join("?" for _ in fields)
        db.cursor().executemany(f'INSERT INTO "{model._meta.table_name}" ({cols}) VALUES ({marks})', rows)
        return
    for start in range(0, len(rows), batch):
        model.insert_many(rows[start:start + batch], fields=fields).execute()


def _v1(db: pw.Database) -> None:
    db.create_tables(ALL_MODELS, safe=True)


def add_missing_columns(db: pw.Database, model: type[models.BaseModel], *fields: str) -> None:
    """Add each named field of `model` to its table unless it is there already.

    v1 creates every table from the CURRENT models, so on a fresh database a later column already exists;
    migrations that add columns therefore add only what an older database lacks.
    """
    table = model._meta.table_name
    present = {c.name for c in db.get_columns(table)}
    migrator = SchemaMigrator.from_database(db)
    ops = [migrator.add_column(table, model._meta.fields[f].column_name, model._meta.fields[f])
           for f in fields if model._meta.fields[f].column_name not in present]
    if ops:
        migrate(*ops)


def _v2(db: pw.Database) -> None:
    """The audit log (ivr.ledger.audit)."""
    db.create_tables([models.AuditEvent], safe=True)


def _v3(db: pw.Database) -> None:
    """Trust in billing data: full exports (Account.seen_run), the import anomaly guard and import counters."""
    add_missing_columns(db, models.Account, "seen_run")
    add_missing_columns(db, models.ImportRun, "status", "full", "accounts", "total_debt", "not_in_ledger",
                        "invalid_phones", "detail", "confirmed_by")


def _v4(db: pw.Database) -> None:
    """The do-not-call list (ivr.ledger.dnc) and test calls marked apart (Attempt.kind)."""
    db.create_tables([models.DncEntry], safe=True)
    add_missing_columns(db, models.Attempt, "kind")
    models.Attempt._schema.create_indexes(safe=True)


def _v5(db: pw.Database) -> None:
    """Node fencing (ivr.dialer.lease): a lease epoch per dialer node and per attempt's owner."""
    add_missing_columns(db, models.DialerNode, "epoch", "fenced_at", "fenced_by")
    add_missing_columns(db, models.Attempt, "epoch")


def _v6(db: pw.Database) -> None:
    """Controller speed-ups: `ivr status` reads a campaign's calls per outcome and queue per state from running
    counts kept by triggers (ivr.ledger.tally), and an index (campaign, outcome) serves the report's reads."""
    from ivr.ledger import tally

    db.create_tables([models.Tally], safe=True)
    models.Attempt._schema.create_indexes(safe=True)
    tally.install(db)


def _v7(db: pw.Database) -> None:
    """The staff console: its users, the login throttle, and the callback worklist (who took a request, its
    results, a second call, who closed it)."""
    db.create_tables([models.WebUser, models.LoginThrottle, models.CallbackNote], safe=True)
    add_missing_columns(db, models.CallbackRequest, "taken_by", "taken_at", "result", "promised_on",
                        "next_call_at", "closed_by")


def _v9(db: pw.Database) -> None:
    """Life support first, by a person (LifeSupportNotice) and the escalation ladder's history (LadderMove)."""
    db.create_tables([models.LifeSupportNotice, models.LadderMove], safe=True)


def _v10(db: pw.Database) -> None:
    """Channels and the hold-out group: the Message table (SMS, e-mail, letters), Account.email, the hold-out
    draw on Campaign and the Holdout table."""
    db.create_tables([models.Holdout, models.Message], safe=True)
    add_missing_columns(db, models.Account, "email")
    add_missing_columns(db, models.Campaign, "holdout_share", "holdout_seed", "holdout_count")


def _v8(db: pw.Database) -> None:
    """Campaign kinds (ivr.campaign.kinds): several campaigns an evening (kind, ref, priority, outage_id; one per
    day, kind and ref instead of one per day), installment plans' billing reference, supply points and outages."""
    add_missing_columns(db, models.Campaign, "kind", "ref", "priority", "outage_id")
    add_missing_columns(db, models.InstallmentPlan, "reference")
    db.execute_sql('DROP INDEX IF EXISTS "campaign_day"')  # was UNIQUE (one campaign a day)
    models.Campaign._schema.create_indexes(safe=True)
    models.InstallmentPlan._schema.create_indexes(safe=True)
    db.create_tables([models.SupplyLink, models.Outage, models.OutagePoint], safe=True)


def _v11(db: pw.Database) -> None:
    """Console speed: the eligibility verdicts stored per day (ivr.ledger.verdicts) with the triggers marking the
    accounts whose verdict a change may touch, the morning reports stored per campaign (ivr.report.stored), and
    an index of the open callback requests by district and age (the worklist), a trigram index of account names.
    Nothing is judged or built here: the first list or report asked for is."""
    from ivr.ledger import trigram, verdicts

    db.create_tables([models.StoredVerdict, models.VerdictState, models.VerdictDirty, models.ReportCache,
                      models.ReportPerson], safe=True)
    verdicts.install(db)
    trigram.install(db, "account", "name")  # "find by part of the name" (story.find_accounts)
    trigram.install(db, "report_person", "search", triggers=False)  # the Reports page's search (ivr.report.stored)
    # the callback worklist pages its open requests by district and age (ivr.ledger.callbacks)
    db.execute_sql("CREATE INDEX IF NOT EXISTS callback_request_open ON callback_request (district, created_at, id) "
                   "WHERE handled_at IS NULL")
    # ... and starts with the life-support accounts to inform (ivr.campaign.lifesupport.pending): a handful of a
    # million, found by an index rather than by reading every account on each view
    db.execute_sql("CREATE INDEX IF NOT EXISTS account_life_support ON account (life_support)")


# Reserved numbers while several changes are in flight: 3 import/data trust, 4 do-not-call and test calls,
# 5 node fencing, 6 controller speed-ups, 7 web console users, 8 campaign kinds, 9 life support and the ladder,
# 10 channels and hold-out, 11 web console speed. Never edit an applied migration.
MIGRATIONS: dict[int, Callable[[pw.Database], None]] = {1: _v1, 2: _v2, 3: _v3, 4: _v4, 5: _v5, 6: _v6, 7: _v7,
                                                       8: _v8, 9: _v9, 10: _v10, 11: _v11}
LATEST = max(MIGRATIONS)


def current_version(db: pw.Database) -> int:
    if not db.table_exists(SchemaVersion._meta.table_name):
        return 0
    row = SchemaVersion.select(pw.fn.MAX(SchemaVersion.version)).scalar()
    return int(row or 0)


def applied_versions(db: pw.Database) -> set[int]:
    if not db.table_exists(SchemaVersion._meta.table_name):
        return set()
    return {int(v) for (v,) in SchemaVersion.select(SchemaVersion.version).tuples()}


def upgrade(db: pw.Database) -> list[int]:
    """Apply, in order, every migration not yet recorded; return the versions applied.

    Every one not recorded, not only those above the highest: changes developed side by side land in any
    order, so a database may have 2 and 4 and still need 3.
    """
    applied = []
    try:
        for version in sorted(MIGRATIONS):
            if version in applied_versions(db):
                continue
            with db.atomic():
                MIGRATIONS[version](db)
                SchemaVersion.create(version=version)
            applied.append(version)
    except pw.OperationalError as exc:
        raise DatabaseError(f"cannot upgrade the database schema: {exc}") from None
    return applied


def connect(url: str, base_dir: Path = Path(".")) -> pw.Database:
    """Open the database and bring its schema up to date (what every command does first)."""
    db = open_database(url, base_dir)
    upgrade(db)
    return db


__all__ = ["DatabaseError", "add_missing_columns", "connect", "open_database", "upgrade", "current_version", "LATEST", "models"]
