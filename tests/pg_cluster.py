"""A throwaway PostgreSQL cluster for the tests: initdb + pg_ctl in a temporary folder, on a free port.

No system service is touched: the data folder, the unix socket and the log all live in one temporary folder that
is removed when the cluster stops. PostgreSQL refuses to run as root, so when the tests run as root the server
runs as the `postgres` user that Debian's package creates (else `nobody`), through `runuser`.

Each test gets its own database, created from a template that already holds the current schema (CREATE DATABASE
… TEMPLATE copies files: a few tens of milliseconds, much less than creating every table again). Tests of the
migrations themselves ask for an empty database instead.

Where the binaries are: $IVR_TEST_PG_BIN, else `initdb` on PATH, else the newest /usr/lib/postgresql/*/bin.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

SERVER_SETTINGS = {
    # durability is worthless for a cluster deleted after the run; speed is not
    "fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",
    "listen_addresses": "127.0.0.1", "max_connections": "200", "shared_buffers": "32MB",
    "log_min_messages": "warning",
}


class PgUnavailable(RuntimeError):
    """PostgreSQL binaries are missing or the cluster could not start; the message says which."""


def find_bin_dir() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres, or None when PostgreSQL is not installed."""
    env = os.environ.get("IVR_TEST_PG_BIN", "")
    if env:
        return Path(env) if (Path(env) / "initdb").exists() else None
    on_path = shutil.which("initdb")
    if on_path:
        return Path(os.path.realpath(on_path)).parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0)
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_user() -> str | None:
    """Who runs the server: None = this user; as root, `postgres` (Debian's package) or `nobody`."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise PgUnavailable("running as root and neither a 'postgres' nor a 'nobody' user exists to run PostgreSQL")


@dataclass
class Cluster:
    bin_dir: Path
    root: Path
    port: int = 0
    user: str | None = None
    superuser: str = "ivr"
    template: str = "ivr_template"
    _names: itertools.count = field(default_factory=lambda: itertools.count(1))
    _admin: object = None

    @property
    def data(self) -> Path:
        return self.root / "data"

    def _run(self, *cmd: str, timeout: float = 120) -> subprocess.CompletedProcess:
        full = [str(self.bin_dir / cmd[0]), *cmd[1:]]
        if self.user is not None:
            full = ["runuser", "-u", self.user, "--", *full]
        proc = subprocess.run(full, capture_output=True, text=True, timeout=timeout, cwd=self.root)
        if proc.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise PgUnavailable(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}\n{tail}")
        return proc

    def start(self) -> None:
        self.user = _server_user()
        if self.user is not None:
            info = pwd.getpwnam(self.user)
            os.chown(self.root, info.pw_uid, info.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", self.superuser, "--auth=trust", "-E", "UTF8",
                  "--locale=C", "--no-sync")
        self.port = _free_port()
        opts = " ".join([f"-p {self.port}", f"-k {self.root}", *(f"-c {k}={v}" for k, v in SERVER_SETTINGS.items())])
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-o", opts, "-w",
                  "-t", "60", "start")
        self._make_template()

    def stop(self) -> None:
        """Stop the server (immediately: nothing in it is kept) and remove the folder."""
        with contextlib.suppress(Exception):
            if self._admin is not None:
                self._admin.close()
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(Exception):
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, name: str) -> str:
        return f"postgresql://{self.superuser}@127.0.0.1:{self.port}/{name}"

    def admin(self):
        """An autocommit connection to the `postgres` database (CREATE / DROP DATABASE cannot run in a
        transaction)."""
        import psycopg2

        if self._admin is None or self._admin.closed:
            self._admin = psycopg2.connect(host="127.0.0.1", port=self.port, user=self.superuser, dbname="postgres")
            self._admin.autocommit = True
        return self._admin

    def _make_template(self) -> None:
        """A database with the current schema, copied for every test that wants a ready ledger."""
        from ivr.ledger.db import connect

        with self.admin().cursor() as cur:
            cur.execute(f'CREATE DATABASE "{self.template}"')
        db = connect(self.url(self.template))
        db.close()

    def create_database(self, empty: bool = False) -> str:
        """A new database (a copy of the template, or an empty one) and its URL."""
        name = f"t{os.getpid()}_{next(self._names)}"
        # FILE_COPY (PostgreSQL 15+) copies the template's files: ~30 ms against ~220 ms for the default WAL_LOG
        strategy = " STRATEGY FILE_COPY" if self.admin().server_version >= 150000 else ""
        with self.admin().cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}" TEMPLATE "{"template0" if empty else self.template}"{strategy}')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        with self.admin().cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def start_cluster(parent: str | None = None) -> Cluster:
    """A running cluster in a new folder under `parent` (default: the system's temporary folder)."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise PgUnavailable("PostgreSQL is not installed (no initdb on PATH, in $IVR_TEST_PG_BIN or "
                            "/usr/lib/postgresql/*/bin): apt-get install postgresql, or run scripts/test.sh")
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        raise PgUnavailable("the PostgreSQL driver psycopg2 is not installed (pip install -e .)") from None
    root = Path(tempfile.mkdtemp(prefix="ivr-pg-", dir=parent))
    os.chmod(root, 0o755)
    cluster = Cluster(bin_dir=bin_dir, root=root)
    try:
        cluster.start()
    except BaseException:
        cluster.stop()
        raise
    return cluster
