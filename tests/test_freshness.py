"""Data freshness (issue 11, point 2): `ivr run` refuses to start on old accounts or payments data (exit 4, one
line naming the import and its age), `--allow-stale` overrides and is logged and audited, `ivr status` shows both
ages."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from ivr.admin.status import render, snapshot, to_json
from ivr.cli import main
from ivr.ledger import audit, freshness
from ivr.ledger.models import ImportRun, utcnow

NOW = datetime(2026, 11, 23, 15, 0)


def run(kind: str, hours_ago: float, *, status: str = "applied", file: str = "x.csv",
        finished: bool = True) -> ImportRun:
    return ImportRun.create(kind=kind, file=f"/billing/{file}", status=status,
                            started_at=NOW - timedelta(hours=hours_ago, minutes=1),
                            finished_at=NOW - timedelta(hours=hours_ago) if finished else None)


def test_ages_are_those_of_the_last_applied_imports(cfg, db):
    assert {k: a.age_hours for k, a in freshness.import_ages(NOW).items()} == {"accounts": None, "payments": None}
    run("accounts", 50, file="old.csv")
    run("accounts", 10, file="new.csv")
    run("accounts", 1, status="held", file="held.csv")  # held: nothing applied, so it does not make data fresh
    run("accounts", 0.5, finished=False)  # still running (or crashed)
    run("payments", 40, file="pay.csv")
    ages = freshness.import_ages(NOW)
    assert (ages["accounts"].age_hours, ages["accounts"].file) == (10.0, "/billing/new.csv")
    assert (ages["payments"].age_hours, ages["payments"].file) == (40.0, "/billing/pay.csv")
    assert [a.kind for a in freshness.stale_imports(cfg, NOW)] == ["payments"]
    with pytest.raises(freshness.StaleData) as info:
        freshness.check_fresh(cfg, NOW)
    assert info.value.exit_code == 4
    assert str(info.value).startswith("the payments import is 40.0 h old (pay.csv, finished 2026-11-21 23:00 UTC); "
                                      "eligibility.max_data_age_hours is 36")
    run("payments", 2)
    assert freshness.stale_imports(cfg, NOW) == []
    freshness.check_fresh(cfg, NOW)
    off = cfg.replace(eligibility=type(cfg.eligibility)(max_data_age_hours=0))
    assert freshness.stale_imports(off, NOW + timedelta(days=90)) == []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(tmp_path: Path) -> str:
    data = {"database": {"url": f"sqlite:///{tmp_path / 'run.sqlite3'}"},
            "speech": {"cache_dir": str(tmp_path / "cache")},
            "import": {"rejects_dir": str(tmp_path / "rej")},
            "freeswitch": {"host": "127.0.0.1", "port": free_port(), "command_timeout": 2.0,
                           "reconnect_max_delay": 1.0, "outbound_bind_port": free_port()}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return str(path)


def import_files(conf: str, tmp_path: Path) -> None:
    acc = tmp_path / "accounts.csv"
    acc.write_text("account,name,phone,balance\nA-1,X,0501234567,500\n", encoding="utf-8")
    pay = tmp_path / "payments.csv"
    pay.write_text("account,amount,date,reference\nA-1,10,2026-11-21,R-1\n", encoding="utf-8")
    assert main(["--config", conf, "import", "accounts", str(acc)]) == 0
    assert main(["--config", conf, "import", "payments", str(pay)]) == 0


def test_ivr_run_on_stale_data_exits_4_with_one_line_naming_the_import(tmp_path, capsys):
    conf = write_config(tmp_path)
    import_files(conf, tmp_path)
    ImportRun.update(finished_at=utcnow() - timedelta(hours=40)).where(ImportRun.kind == "accounts").execute()
    capsys.readouterr()
    assert main(["--config", conf, "run", "--date", "2026-11-23"]) == 4
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith("ivr: the accounts import is 40.0 h old (accounts.csv, finished ")
    assert "max_data_age_hours is 36" in err[0] and "--allow-stale" in err[0]
    # no campaign was started on it
    from ivr.ledger.models import Campaign
    assert Campaign.select().count() == 0


def test_ivr_run_with_no_import_at_all_exits_4(tmp_path, capsys):
    conf = write_config(tmp_path)
    assert main(["--config", conf, "run", "--date", "2026-11-23"]) == 4
    assert "no accounts import yet and no payments import yet" in capsys.readouterr().err


def test_allow_stale_gets_past_the_check_and_is_logged_and_audited(tmp_path, capsys):
    conf = write_config(tmp_path)
    import_files(conf, tmp_path)
    ImportRun.update(finished_at=utcnow() - timedelta(hours=50)).where(ImportRun.kind == "payments").execute()
    capsys.readouterr()
    code = main(["--config", conf, "run", "--date", "2026-11-23", "--allow-stale"])
    err = capsys.readouterr().err  # the log goes to standard error
    # past the data check, it stops at the next thing this test does not provide: a FreeSWITCH to talk to
    assert code == 1 and "cannot reach FreeSWITCH" in err
    assert "WARNING ivr.cli.campaign event=stale_data_allowed day=2026-11-23 payments_age_h=50.0 max_hours=36" in err
    entry = audit.recent(action_prefix="run.allow_stale")[0]
    assert entry.target == "2026-11-23" and entry.actor.startswith("cli:") and '"payments": 50.0' in entry.detail


def test_status_shows_both_ages(cfg, db):
    run("accounts", 5, file="acc.csv")
    snap = snapshot(cfg, NOW.replace(tzinfo=UTC))
    assert snap.data_age_hours == {"accounts": 5.0, "payments": None}
    assert snap.data_files["accounts"] == "acc.csv" and snap.data_max_age_hours == 36
    assert '"accounts": 5.0' in to_json(snap)
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(render(snap))
    text = console.export_text()
    assert "Billing data" in text and "accounts 5.0 h ago (acc.csv), payments never imported" in text
    assert "ivr run needs both under 36 h" in text

