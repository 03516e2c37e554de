"""The import anomaly guard (issue 11, point 4): an accounts export far from the previous full one is held
(nothing applied, exit 5, a short table), `--confirm-anomaly` applies it and records who and when, and no
campaign dials while an import is held."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml

from ivr.admin.status import snapshot
from ivr.cli import main
from ivr.ledger import audit, freshness, importer
from ivr.ledger.models import Account, Balance, ImportRun, Phone, utcnow
from ivr.ledger.sample import write_sample

HEADER = "account,name,phone,balance,balance_date\n"
N = 40


def export(tmp_path: Path, name: str, debts: dict[str, str]) -> Path:
    path = tmp_path / name
    rows = [f"{acc},Name {acc},+38050{int(acc[2:]):07d},{amount},2026-11-20\n" for acc, amount in debts.items()]
    path.write_text(HEADER + "".join(rows), encoding="utf-8")
    return path


def base() -> dict[str, str]:
    return {f"A-{i:03d}": f"{100 + i * 10}.00" for i in range(N)}


def ledger() -> dict:
    return {"accounts": sorted(Account.select(Account.number, Account.name).tuples()),
            "phones": sorted(Phone.select(Phone.e164).tuples()),
            "balances": sorted((b.account.number, b.as_of, b.amount) for b in Balance.select(Balance, Account)
                               .join(Account))}


@pytest.fixture
def first(cfg, db, tmp_path):
    report = importer.import_accounts(cfg, export(tmp_path, "d1.csv", base()), progress=False)
    assert report.loaded == N and not report.held and report.checks == []  # nothing to compare with yet
    return cfg


def test_every_debt_doubled_is_held_and_nothing_changes(first, tmp_path):
    cfg = first
    before = ledger()
    doubled = {a: f"{float(v) * 2:.2f}" for a, v in base().items()}
    report = importer.import_accounts(cfg, export(tmp_path, "d2.csv", doubled), progress=False)
    assert report.held and (report.loaded, report.updated, report.unchanged) == (0, 0, 0)
    assert {c.name for c in report.tripped} == {"debts risen", "total debt"}
    risen = next(c for c in report.checks if c.name == "debts risen")
    assert (risen.before, risen.now, risen.change) == ("40 compared", "40 at x2 or more", 1.0)
    total = next(c for c in report.checks if c.name == "total debt")
    assert total.change == pytest.approx(1.0) and total.before == "11800.00" and total.now == "23600.00"
    assert {c.name: c.tripped for c in report.checks} == {"debts risen": True, "total debt": True,
                                                          "accounts gone": False, "account count": False}
    assert ledger() == before  # nothing applied
    run = ImportRun.select().order_by(ImportRun.id.desc()).first()
    assert (run.status, run.rows, run.full) == ("held", 0, True) and '"debts risen"' in run.detail
    assert freshness.held_import() == run
    assert report.summary() == ("accounts: HELD, nothing applied: debts risen 100.0 % (limit 10 %); "
                                "total debt +100.0 % (limit 30 %)")


def test_a_normal_month_passes(first, tmp_path):
    cfg = first
    month = {a: (f"{float(v) * 1.1:.2f}" if i % 3 else "0.00") for i, (a, v) in enumerate(base().items())}
    month["A-900"] = "55.00"  # a new account
    report = importer.import_accounts(cfg, export(tmp_path, "d2.csv", month), progress=False)
    assert not report.held and not report.tripped and len(report.checks) == 4
    assert report.updated == N and report.loaded == 1
    again = importer.import_accounts(cfg, export(tmp_path, "d2.csv", month), progress=False)
    assert not again.held and again.unchanged == N + 1


def test_accounts_gone_and_count_change(first, tmp_path):
    cfg = first
    kept = dict(list(base().items())[:28])  # 12 of 40 gone: 30 %
    report = importer.import_accounts(cfg, export(tmp_path, "d2.csv", kept), progress=False)
    assert report.held and {c.name for c in report.tripped} == {"accounts gone", "account count"}
    gone = next(c for c in report.checks if c.name == "accounts gone")
    assert (gone.before, gone.now) == ("40 listed", "12 not in this file")
    # the same file as an export of changes compares debts only: applied
    report = importer.import_accounts(cfg, export(tmp_path, "c2.csv", kept), progress=False, export="changes")
    assert not report.held and [c.name for c in report.checks] == ["debts risen"]
    # a file with half again as many accounts (another utility's mixed in?) is held on the count
    grown = {**base(), **{f"B-{i:03d}": "10.00" for i in range(20)}}
    report = importer.import_accounts(cfg, export(tmp_path, "d3.csv", grown), progress=False)
    assert report.held and [c.name for c in report.tripped] == ["account count"]


def test_thresholds_come_from_config_and_zero_switches_a_check_off(first, tmp_path):
    doubled = {a: f"{float(v) * 2:.2f}" for a, v in base().items()}
    lax = first.replace(imports=dataclasses.replace(first.imports, anomaly_debt_rise_share=0,
                                                    anomaly_total_debt_rise=1.5))
    report = importer.import_accounts(lax, export(tmp_path, "d2.csv", doubled), progress=False)
    assert not report.held and report.updated == N
    assert {c.name: c.limit for c in report.checks}["debts risen"] == 0


def test_below_the_minimum_number_of_accounts_nothing_is_compared(cfg, db, tmp_path):
    small = {f"A-{i:03d}": "100.00" for i in range(5)}
    importer.import_accounts(cfg, export(tmp_path, "s1.csv", small), progress=False)
    report = importer.import_accounts(cfg, export(tmp_path, "s2.csv", {"A-000": "900.00"}), progress=False)
    assert not report.held and report.checks == []


def write_config(tmp_path: Path, cfg) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"database": {"url": cfg.database.url},
                                    "import": {"rejects_dir": str(tmp_path / "rej")},
                                    "freeswitch": {"port": 1, "command_timeout": 2.0}}), encoding="utf-8")
    return str(path)


def test_cli_held_exit_5_then_confirm_anomaly_applies_and_records_who(first, tmp_path, capsys):
    conf = write_config(tmp_path, first)
    doubled = export(tmp_path, "d2.csv", {a: f"{float(v) * 2:.2f}" for a, v in base().items()})
    before = ledger()
    capsys.readouterr()
    assert main(["--config", conf, "import", "accounts", str(doubled)]) == 5
    out, err = capsys.readouterr()
    assert "HELD, nothing applied" in out
    lines = out.splitlines()
    header = next(ln for ln in lines if ln.strip().startswith("check"))
    assert header.split() == ["check", "before", "this", "file", "change", "limit"]
    risen = next(ln for ln in lines if ln.strip().startswith("debts risen"))
    assert "40 compared" in risen and "100.0 %" in risen and "10 %" in risen and risen.endswith("TOO MUCH")
    assert "e.g. A-000: 100.00 -> 200.00" in out
    assert "event=import_held file=d2.csv debts_risen=1.000 total_debt=1.000" in err  # the log line
    assert [ln for ln in err.splitlines() if ln.startswith("ivr: ")] == [
        f"ivr: accounts import held; check the file with billing, then either import a corrected file or apply "
        f"this one anyway: ivr import accounts {doubled} --confirm-anomaly"]
    assert ledger() == before
    # no campaign dials on held data: ivr run refuses, --allow-stale or not
    for extra in ([], ["--allow-stale"]):
        assert main(["--config", conf, "run", "--date", "2026-11-23", *extra]) == 5
        err = capsys.readouterr().err
        assert "is held by the anomaly guard: no campaign runs" in err and "d2.csv" in err
    snap = snapshot(first)
    assert snap.held_import == "d2.csv" and any("accounts import HELD" in e for e in snap.errors)

    assert main(["--config", conf, "import", "accounts", "--confirm-anomaly", str(doubled)]) == 0
    out = capsys.readouterr().out
    assert f"applied despite the anomaly guard, confirmed by {audit.cli_actor()}" in out
    assert "40 updated" in out
    assert Balance.select().where(Balance.amount == 200).count() == 1  # A-000 went 100 -> 200
    run = ImportRun.select().order_by(ImportRun.id.desc()).first()
    assert (run.status, run.confirmed_by, run.updated) == ("confirmed", audit.cli_actor(), N)
    entry = audit.recent(action_prefix="import.confirm_anomaly")[0]
    assert entry.actor == audit.cli_actor() and entry.target == str(doubled)
    assert '"debts risen"' in entry.detail and abs((entry.at - utcnow()).total_seconds()) < 600
    assert freshness.held_import() is None and snapshot(first).held_import == ""
    # the confirmed export is the new reference: the same file again is not held
    assert main(["--config", conf, "import", "accounts", str(doubled)]) == 0


def test_sample_data_day_after_day_is_not_held(cfg, db, tmp_path):
    """The demo's and the tests' generated data: the next day's export passes the guard."""
    day = date(2026, 11, 23)
    for n in range(2):
        files = write_sample(tmp_path / f"s{n}", accounts=400, seed=5, day=day + timedelta(days=n))
        report = importer.import_accounts(cfg, files.accounts, progress=False)
        assert not report.held and report.loaded + report.updated + report.unchanged == 400
    assert len(report.checks) == 4
