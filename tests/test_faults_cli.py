"""Operational faults seen through the `ivr` command (issue 7): wrong ESL password, FreeSWITCH unreachable, the
outbound-socket port taken, the database locked or read-only, no space left for the prompt cache. Each gives a
non-zero exit code and one clear line on stderr naming what is wrong — never a traceback."""

from __future__ import annotations

import errno
import socket
import sqlite3
from pathlib import Path

import pytest
import yaml
from waiting import wait_until

from ivr.cli import main
from ivr.sim.server import SimServer


def write_config(tmp_path: Path, **sections) -> Path:
    data = {
        "database": {"url": f"sqlite:///{tmp_path / 'ivr.sqlite3'}"},
        "speech": {"cache_dir": str(tmp_path / "cache")},
        "import": {"rejects_dir": str(tmp_path / "rejects")},
        "report": {"output_dir": str(tmp_path / "reports")},
        "logging": {"level": "WARNING"},
        "eligibility": {"max_data_age_hours": 0},  # no billing files here: the data-age check has its own tests
        "freeswitch": {"host": "127.0.0.1", "port": 1, "password": "ClueCon", "command_timeout": 2.0,
                       "reconnect_max_delay": 1.0, "outbound_bind_host": "127.0.0.1", "outbound_bind_port": free_port()},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def run_cli(capsys, argv: list[str]) -> tuple[int, str]:
    code = main(argv)
    err = capsys.readouterr().err
    return code, err


def assert_one_clear_line(code: int, err: str, *words: str) -> None:
    assert code != 0
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("ivr: ")]
    assert len(errors) == 1, err
    for w in words:
        assert w.lower() in errors[0].lower(), (w, errors[0])


@pytest.fixture
def sim():
    server = SimServer(password="ClueCon").start()
    yield server
    server.stop()


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_wrong_esl_password(tmp_path, capsys, sim):
    cfg = write_config(tmp_path, freeswitch={"port": sim.port, "password": "not-the-password"})
    for argv in (["switch", "check"], ["run", "--date", "2026-11-23"]):
        code, err = run_cli(capsys, ["--config", str(cfg), *argv])
        assert_one_clear_line(code, err, "password")
        assert "not-the-password" not in err  # the password is never shown
    assert not sim.inbound  # nothing kept retrying a password that cannot work


def test_freeswitch_unreachable(tmp_path, capsys):
    port = free_port()
    cfg = write_config(tmp_path, freeswitch={"port": port})
    for argv in (["switch", "check"], ["run", "--date", "2026-11-23"]):
        code, err = run_cli(capsys, ["--config", str(cfg), *argv])
        assert_one_clear_line(code, err, f"127.0.0.1:{port}")


def test_freeswitch_stops_answering(tmp_path, capsys, sim):
    sim.set_unresponsive(True)
    cfg = write_config(tmp_path, freeswitch={"port": sim.port, "command_timeout": 0.5})
    code, err = run_cli(capsys, ["--config", str(cfg), "switch", "check"])
    assert_one_clear_line(code, err, f"127.0.0.1:{sim.port}")


def test_outbound_socket_port_taken(tmp_path, capsys, sim):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        cfg = write_config(tmp_path, freeswitch={"port": sim.port, "outbound_bind_port": taken.getsockname()[1]})
        code, err = run_cli(capsys, ["--config", str(cfg), "run", "--date", "2026-11-23"])
        assert_one_clear_line(code, err, str(taken.getsockname()[1]))
    finally:
        taken.close()
    # the failed run let go of its event-socket connection (no client left retrying in the background)
    wait_until(lambda: not sim.inbound, "the failed run to close its event-socket connection")


def sample_files(tmp_path: Path) -> Path:
    from ivr.ledger.sample import write_sample

    return write_sample(tmp_path / "billing", accounts=20, seed=3).accounts


@pytest.fixture
def short_busy_timeout(monkeypatch):
    """The CLI's database with a 0.3 s busy timeout instead of 10 s, so a held lock fails the test quickly."""
    import ivr.cli.common as common

    real = common.connect

    def connect(url, base_dir):
        db = real(url, base_dir)
        db.execute_sql("PRAGMA busy_timeout = 300")
        return db

    monkeypatch.setattr(common, "connect", connect)


def test_database_locked(tmp_path, capsys, short_busy_timeout):
    cfg = write_config(tmp_path)
    accounts = sample_files(tmp_path)
    assert main(["--config", str(cfg), "db", "upgrade"]) == 0
    capsys.readouterr()
    holder = sqlite3.connect(tmp_path / "ivr.sqlite3", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process in the middle of a long write
    try:
        code, err = run_cli(capsys, ["--config", str(cfg), "import", "accounts", str(accounts)])
        assert_one_clear_line(code, err, "locked")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    # once the lock is gone the same import works: nothing was half-written
    code, err = run_cli(capsys, ["--config", str(cfg), "import", "accounts", str(accounts)])
    assert code == 0, err


def test_database_read_only(tmp_path, capsys, monkeypatch):
    import ivr.cli.common as common

    cfg = write_config(tmp_path)
    accounts = sample_files(tmp_path)
    real = common.connect

    def read_only(url, base_dir):
        db = real(url, base_dir)
        db.execute_sql("PRAGMA query_only = ON")  # what a read-only file or mount does to every write
        return db

    monkeypatch.setattr(common, "connect", read_only)
    code, err = run_cli(capsys, ["--config", str(cfg), "import", "accounts", str(accounts)])
    assert_one_clear_line(code, err, "read")


def test_database_folder_cannot_be_created(tmp_path, capsys):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    cfg = write_config(tmp_path, database={"url": f"sqlite:///{blocker / 'db' / 'ivr.sqlite3'}"})
    code, err = run_cli(capsys, ["--config", str(cfg), "db", "upgrade"])
    assert_one_clear_line(code, err, str(blocker))


def test_prompt_cache_disk_full(tmp_path, capsys, monkeypatch):
    from ivr.speech import tts

    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tts, "render", full)
    cfg = write_config(tmp_path)
    assert main(["--config", str(cfg), "db", "upgrade"]) == 0
    capsys.readouterr()
    code, err = run_cli(capsys, ["--config", str(cfg), "prompts", "render", "--date", "2026-11-23",
                                 "--workers", "2"])
    assert_one_clear_line(code, err, "no space left", str(tmp_path / "cache"))
    code, err = run_cli(capsys, ["--config", str(cfg), "prompts", "say", "hello", "-o", str(tmp_path / "x.wav")])
    assert_one_clear_line(code, err, "no space left")
