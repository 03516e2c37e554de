"""The audit log records who changed what, newest first, and old databases gain its table on upgrade."""

from __future__ import annotations

from datetime import datetime

import peewee as pw

from ivr.ledger import audit
from ivr.ledger import db as ledger_db
from ivr.ledger.models import Account, AuditEvent


def test_record_and_recent_newest_first(db):
    audit.record("anna", "control.channels", "channels", {"from": 30, "to": 10}, at=datetime(2026, 12, 1, 18, 0))
    audit.record("cli:root", "dnc.add", "+380501234567", "debtor asked", at=datetime(2026, 12, 1, 19, 0))
    rows = audit.recent()
    assert [r.action for r in rows] == ["dnc.add", "control.channels"]
    assert rows[1].detail == '{"from": 30, "to": 10}'
    assert [r.actor for r in audit.recent(action_prefix="control.")] == ["anna"]
    assert [r.action for r in audit.recent(actor="cli:root")] == ["dnc.add"]


def test_cli_actor_names_the_unix_user():
    assert audit.cli_actor().startswith("cli:") and len(audit.cli_actor()) > 4


def test_upgrade_from_v1_adds_the_audit_table(db_url, tmp_path):
    database = ledger_db.open_database(db_url, tmp_path)
    database.create_tables([m for m in ledger_db.models.ALL_MODELS if m is not AuditEvent])
    ledger_db.models.SchemaVersion.create(version=1)
    assert not database.table_exists("audit_event")
    assert ledger_db.upgrade(database) == [v for v in sorted(ledger_db.MIGRATIONS) if v > 1]
    assert database.table_exists("audit_event")
    database.close()


def test_add_missing_columns_adds_only_what_is_missing(db_url, db_backend, tmp_path):
    database = ledger_db.connect(db_url, tmp_path)
    # a table no trigger reads (SQLite re-checks every trigger of the schema when it drops a column)
    database.execute_sql('ALTER TABLE "audit_event" DROP COLUMN "target"')
    assert "target" not in {c.name for c in database.get_columns("audit_event")}
    ledger_db.add_missing_columns(database, AuditEvent, "target", "actor")
    assert "target" in {c.name for c in database.get_columns("audit_event")}
    AuditEvent.create(actor="cli:x", action="test.add")
    assert AuditEvent.get(AuditEvent.action == "test.add").target == ""  # the default fills old rows
    database.close()
    assert isinstance(database, pw.SqliteDatabase if db_backend == "sqlite" else pw.PostgresqlDatabase)


def test_upgrade_to_v4_adds_the_do_not_call_table_and_the_attempt_kind(tmp_path):
    url = f"sqlite:///{tmp_path / 'v2.sqlite3'}"
    database = ledger_db.connect(url, tmp_path)
    a = Account.create(number="A-1", name="x")
    ledger_db.models.Attempt.create(uuid="u-1", account=a, e164="+380501234567")
    database.execute_sql('DROP INDEX IF EXISTS "attempt_kind"')
    database.execute_sql('ALTER TABLE "attempt" DROP COLUMN "kind"')
    database.drop_tables([ledger_db.models.DncEntry])
    ledger_db.models.SchemaVersion.delete().where(ledger_db.models.SchemaVersion.version == 4).execute()
    assert ledger_db.upgrade(database) == [4]
    assert database.table_exists("dnc_entry")
    assert ledger_db.models.Attempt.get(ledger_db.models.Attempt.uuid == "u-1").kind == "campaign"
    assert "attempt_kind" in {i.name for i in database.get_indexes("attempt")}
    assert ledger_db.upgrade(database) == []
    database.close()
