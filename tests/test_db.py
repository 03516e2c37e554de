"""Schema creation and upgrades are idempotent and recorded (on SQLite and PostgreSQL)."""

import pytest

from ivr.ledger import db as ledger_db
from ivr.ledger.models import Account, SchemaVersion


def test_upgrade_twice_applies_nothing_the_second_time(db_url):
    database = ledger_db.open_database(db_url)
    assert ledger_db.upgrade(database) == sorted(ledger_db.MIGRATIONS)
    assert ledger_db.upgrade(database) == []
    assert ledger_db.current_version(database) == ledger_db.LATEST
    assert SchemaVersion.select().count() == len(ledger_db.MIGRATIONS)
    database.close()


def test_sqlite_uses_wal_and_keeps_data_across_reopen(tmp_path):
    url = f"sqlite:///{tmp_path / 'y.sqlite3'}"
    database = ledger_db.connect(url)
    assert database.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"
    Account.create(number="ACC-1", name="Test")
    database.close()
    database = ledger_db.connect(url)
    assert Account.get(Account.number == "ACC-1").name == "Test"
    database.close()


def test_unsupported_url_is_a_clear_error():
    import pytest
    with pytest.raises(ledger_db.DatabaseError, match="database.url"):
        ledger_db.open_database("mysql://x")


def test_postgres_url_parts_are_percent_decoded():
    from ivr.ledger.db import postgres_database
    pg = postgres_database("postgresql://dial%40er:p%3As%40ss@db.example:5433/ivr%20prod")
    assert pg.database == "ivr prod"
    assert pg.connect_params["user"] == "dial@er"
    assert pg.connect_params["password"] == "p:s@ss"
    assert (pg.connect_params["host"], pg.connect_params["port"]) == ("db.example", 5433)


def test_a_migration_landed_later_with_a_lower_number_is_still_applied(db_url, monkeypatch):
    # Side-by-side changes land in any order: a database at {…, hi} must still get lo < hi.
    db = ledger_db.connect(db_url)
    ran = []
    hi = max(ledger_db.MIGRATIONS) + 2
    lo = hi - 1
    monkeypatch.setitem(ledger_db.MIGRATIONS, hi, lambda d: ran.append(hi))
    assert ledger_db.upgrade(db) == [hi]
    monkeypatch.setitem(ledger_db.MIGRATIONS, lo, lambda d: ran.append(lo))
    assert ledger_db.upgrade(db) == [lo]
    assert ran == [hi, lo]
    assert ledger_db.applied_versions(db) >= {1, 2, lo, hi}
    assert ledger_db.upgrade(db) == []
    db.close()


def test_v3_adds_the_data_trust_columns_to_an_older_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    database = ledger_db.open_database(url, tmp_path)
    database.create_tables(ledger_db.models.ALL_MODELS)
    for version in (1, 2):
        SchemaVersion.create(version=version)
    new = {"account": ["seen_run"], "import_run": ["status", "full", "accounts", "total_debt", "not_in_ledger",
                                                   "invalid_phones", "detail", "confirmed_by"]}
    database.execute_sql('DROP INDEX IF EXISTS "account_seen_run"')
    database.execute_sql('DROP INDEX IF EXISTS "importrun_status"')
    database.execute_sql('DROP INDEX IF EXISTS "import_run_status"')
    for table, columns in new.items():
        for column in columns:
            database.execute_sql(f'ALTER TABLE "{table}" DROP COLUMN "{column}"')
    Account.create(number="OLD-1", name="kept")
    assert 3 in ledger_db.upgrade(database)
    for table, columns in new.items():
        assert set(columns) <= {c.name for c in database.get_columns(table)}
    acc = Account.get(Account.number == "OLD-1")
    assert acc.name == "kept" and acc.seen_run is None
    database.close()


@pytest.mark.postgres
@pytest.mark.parametrize("db_backend", ["postgres"])
def test_postgres_connection_comes_back_after_the_server_dropped_it_and_names_its_process(ledger_url):
    import os

    database = ledger_db.connect(ledger_url)
    assert database.execute_sql("SHOW application_name").fetchone()[0] == f"ivr-{os.getpid()}"
    # a frozen process must not hold the locks every dialer node needs: the server ends its idle transaction
    assert database.execute_sql("SHOW idle_in_transaction_session_timeout").fetchone()[0] == "10s"
    Account.create(number="ACC-1", name="Test")
    pid = database.execute_sql("SELECT pg_backend_pid()").fetchone()[0]
    other = ledger_db.postgres_database(ledger_url)
    other.connect()
    assert other.execute_sql("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0] is True
    other.close()
    assert Account.get(Account.number == "ACC-1").name == "Test"  # reconnected, not "connection closed"
    assert database.execute_sql("SELECT pg_backend_pid()").fetchone()[0] != pid
    database.close()
