"""Shared test fixtures: the real FreeSWITCH transcripts, a fresh database per test, the default config.

Every test that uses the ledger (the `db` or `db_url` fixture, directly or through another fixture) runs twice:
on SQLite (`[sqlite]`) and on PostgreSQL (`[pg]`, marked `postgres`), each time on a fresh, empty-of-data
database. The PostgreSQL cluster is a throwaway one (tests/pg_cluster.py) started once per session, only when a
`[pg]` test runs. A test (or module) marked `sqlite_only` runs on SQLite alone: SQLite-specific checks, and
tests of the event socket whose ledger is incidental (they are slow, and the dialer's database path is proven on
PostgreSQL by the dialer and fault tests that do run on both). Without PostgreSQL installed the `[pg]` tests are skipped with the reason, unless
IVR_TEST_REQUIRE_PG=1 (scripts/test.sh sets it): then they fail. `-m "not postgres"` runs SQLite only.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from ivr.config import Config, parse_config
from ivr.ledger.db import connect

BACKENDS = [pytest.param("sqlite", id="sqlite"),
            pytest.param("postgres", id="pg", marks=pytest.mark.postgres)]

FIXTURES = Path(__file__).parent / "fixtures"


@dataclass
class Record:
    dir: str  # "in" = FreeSWITCH -> client, "out" = client -> FreeSWITCH
    t: float
    data: str
    conn: str = ""


@dataclass
class Transcript:
    header: dict
    records: list[Record]

    def stream(self, direction: str = "in", conn: str | None = None) -> bytes:
        """The raw bytes that crossed the socket in one direction (per connection when the file has several)."""
        return b"".join(r.data.encode("utf-8") for r in self.records
                        if r.dir == direction and (conn is None or r.conn == conn))

    @property
    def conns(self) -> list[str]:
        seen: list[str] = []
        for r in self.records:
            if r.conn not in seen:
                seen.append(r.conn)
        return seen


def load_transcript(name: str) -> Transcript:
    path = FIXTURES / (name if name.endswith(".jsonl") else name + ".jsonl")
    lines = path.read_text(encoding="utf-8").splitlines()
    header = json.loads(lines[0])
    records = [Record(**json.loads(line)) for line in lines[1:] if line.strip()]
    return Transcript(header, records)


@pytest.fixture
def transcript():
    return load_transcript


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run every ledger test on both databases (see the module docstring)."""
    if "db_backend" not in metafunc.fixturenames:
        return
    if any("db_backend" in str(m.args[0]) for m in metafunc.definition.iter_markers("parametrize")):
        return  # the test picks its backend itself
    if metafunc.definition.get_closest_marker("sqlite_only") is not None:
        metafunc.parametrize("db_backend", BACKENDS[:1])
    else:
        metafunc.parametrize("db_backend", BACKENDS)


@pytest.fixture
def db_backend() -> str:
    """Which database a ledger test runs on; parametrized by pytest_generate_tests."""
    return "sqlite"


@pytest.fixture(scope="session")
def pg_cluster():
    """The session's throwaway PostgreSQL cluster (started on first use, stopped and removed at the end)."""
    from pg_cluster import PgUnavailable, start_cluster

    try:
        cluster = start_cluster(os.environ.get("IVR_TEST_PG_DIR") or None)
    except PgUnavailable as exc:
        if os.environ.get("IVR_TEST_REQUIRE_PG") == "1":
            pytest.fail(f"PostgreSQL is required here (IVR_TEST_REQUIRE_PG=1): {exc}", pytrace=False)
        pytest.skip(f"PostgreSQL tests skipped: {exc}")
    yield cluster
    cluster.stop()


def _fresh_url(request: pytest.FixtureRequest, backend: str, tmp_path: Path, name: str, empty: bool) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / name}"
    cluster = request.getfixturevalue("pg_cluster")
    url = cluster.create_database(empty=empty)
    request.addfinalizer(lambda: _drop(cluster, url))
    return url


def _drop(cluster, url: str) -> None:
    from ivr.ledger.models import database

    if database.obj is not None and not database.obj.is_closed():
        database.obj.close()  # the test's own connection; other processes' are cut by DROP … WITH (FORCE)
    cluster.drop_database(url)


@pytest.fixture
def db_url(request: pytest.FixtureRequest, db_backend: str, tmp_path: Path) -> str:
    """The URL of a new EMPTY database (no tables) on the backend under test: for migration tests."""
    return _fresh_url(request, db_backend, tmp_path, "empty.sqlite3", empty=True)


@pytest.fixture
def ledger_url(request: pytest.FixtureRequest, db_backend: str, tmp_path: Path) -> str:
    """The URL of a new database on the backend under test (PostgreSQL: a copy of a template that already has the
    current schema; SQLite: a file in tmp_path, created by the first connect)."""
    return _fresh_url(request, db_backend, tmp_path, "ivr.sqlite3", empty=False)


@pytest.fixture
def cfg(request: pytest.FixtureRequest, tmp_path: Path) -> Config:
    """Default settings with every writable folder under tmp_path; the database is a SQLite file there, or, in a
    ledger test's `[pg]` run, a fresh PostgreSQL database."""
    url = f"sqlite:///{tmp_path / 'ivr.sqlite3'}"
    if "db" in request.fixturenames:
        url = request.getfixturevalue("ledger_url")
    return parse_config({
        "database": {"url": url},
        "speech": {"cache_dir": str(tmp_path / "cache")},
        "import": {"rejects_dir": str(tmp_path / "rejects")},
        "report": {"output_dir": str(tmp_path / "reports")},
    }, base_dir=tmp_path, env={})


@pytest.fixture
def db(ledger_url: str, cfg: Config):
    database = connect(cfg.database.url, cfg.base_dir)
    yield database
    database.close()


@pytest.fixture
def fast_hashes(monkeypatch):
    """argon2 at its cheapest: the console's tests log in often; the real cost is only for real passwords."""
    from argon2 import PasswordHasher

    from ivr.admin import users

    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
def client(cfg: Config, db, fast_hashes):
    """A test client of the console with the standard users (web_support.add_users); files override it."""
    from web_support import add_users, make_app

    add_users()
    return make_app(cfg).test_client()
