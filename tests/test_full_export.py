"""Full or partial accounts exports (issue 11, point 1): after a full export, an account it does not list is not
called ("not in the latest export of DATE") until an import lists it again; a changes export leaves the others
alone."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date
from pathlib import Path
from zoneinfo import ZoneInfo

from ivr.cli import main
from ivr.ledger import importer
from ivr.ledger.eligibility import check_account, evaluate
from ivr.ledger.models import Account, ImportRun

HEADER = "account,name,phone,balance,balance_date\n"
DAY = date(2026, 11, 23)
ROWS = {"A-1": "A-1,Olena,0501234567,500,2026-11-20\n",
        "A-2": "A-2,Ivan,0501234568,600,2026-11-20\n",
        "A-3": "A-3,Petro,0501234569,700,2026-11-20\n"}


def export(tmp_path: Path, name: str, *numbers: str, extra: str = "") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + "".join(ROWS[n] for n in numbers) + extra, encoding="utf-8")
    return path


def eligible(cfg) -> dict[str, bool]:
    return {v.number: v.eligible for v in evaluate(cfg, DAY)}


def export_day(cfg, run: ImportRun) -> date:
    return run.started_at.replace(tzinfo=UTC).astimezone(ZoneInfo(cfg.locale.timezone)).date()


def test_an_account_missing_from_a_full_export_is_not_called_until_it_reappears(cfg, db, tmp_path):
    assert cfg.imports.accounts_export == "full"
    importer.import_accounts(cfg, export(tmp_path, "d1.csv", "A-1", "A-2", "A-3"), progress=False)
    assert eligible(cfg) == {"A-1": True, "A-2": True, "A-3": True}
    report = importer.import_accounts(cfg, export(tmp_path, "d2.csv", "A-1", "A-3"), progress=False)
    assert report.full and report.missing == 1 and "1 account(s) in the ledger are not in this full export" \
        in report.summary()
    assert (report.loaded, report.updated, report.unchanged) == (0, 0, 2)
    assert eligible(cfg) == {"A-1": True, "A-2": False, "A-3": True}
    run = ImportRun.select().order_by(ImportRun.id.desc()).first()
    v = check_account(cfg, "A-2", DAY)
    assert v.excluded_by == [f"not in the latest export of {export_day(cfg, run)} (d2.csv)"]
    assert v.remaining > 0  # the old balance is still there; it is just no longer vouched for
    # it reappears in the next full export: called again
    importer.import_accounts(cfg, export(tmp_path, "d3.csv", "A-1", "A-2", "A-3"), progress=False)
    assert eligible(cfg) == {"A-1": True, "A-2": True, "A-3": True}


def test_a_changes_export_leaves_unlisted_accounts_alone_and_brings_back_the_ones_it_lists(cfg, db, tmp_path):
    importer.import_accounts(cfg, export(tmp_path, "d1.csv", "A-1", "A-2", "A-3"), progress=False)
    importer.import_accounts(cfg, export(tmp_path, "d2.csv", "A-1"), progress=False)
    assert eligible(cfg) == {"A-1": True, "A-2": False, "A-3": False}
    changes = cfg.replace(imports=dataclasses.replace(cfg.imports, accounts_export="changes"))
    report = importer.import_accounts(changes, export(tmp_path, "c1.csv", "A-3"), progress=False)
    assert not report.full and report.missing == 0
    assert eligible(cfg) == {"A-1": True, "A-2": False, "A-3": True}
    assert not ImportRun.select().order_by(ImportRun.id.desc()).first().full


def test_a_ledger_without_any_full_export_excludes_nobody(cfg, db, tmp_path):
    changes = cfg.replace(imports=dataclasses.replace(cfg.imports, accounts_export="changes"))
    importer.import_accounts(changes, export(tmp_path, "c1.csv", "A-1", "A-2"), progress=False)
    importer.import_accounts(changes, export(tmp_path, "c2.csv", "A-3"), progress=False)
    assert eligible(cfg) == {"A-1": True, "A-2": True, "A-3": True}


def test_an_account_whose_row_a_full_export_rejected_is_not_vouched_for_either(cfg, db, tmp_path):
    importer.import_accounts(cfg, export(tmp_path, "d1.csv", "A-1", "A-2"), progress=False)
    report = importer.import_accounts(cfg, export(tmp_path, "d2.csv", "A-1",
                                                  extra="A-2,Ivan,0501234568,6OO,2026-11-21\n"), progress=False)
    assert [r.line for r in report.rejected] == [3]
    assert eligible(cfg) == {"A-1": True, "A-2": False}
    assert check_account(cfg, "A-2", DAY).excluded_by[0].startswith("not in the latest export of ")


def test_cli_export_option_and_why(cfg, db, tmp_path, capsys):
    conf = tmp_path / "config.yaml"
    conf.write_text(f"database:\n  url: {cfg.database.url}\nimport:\n  rejects_dir: {tmp_path / 'rej'}\n",
                    encoding="utf-8")
    assert main(["--config", str(conf), "import", "accounts", str(export(tmp_path, "d1.csv", "A-1", "A-2"))]) == 0
    assert main(["--config", str(conf), "import", "accounts", "--export", "changes",
                 str(export(tmp_path, "c1.csv", "A-1"))]) == 0
    assert check_account(cfg, "A-2", DAY).eligible  # a changes file says nothing about A-2
    assert main(["--config", str(conf), "import", "accounts", "--export", "full",
                 str(export(tmp_path, "d2.csv", "A-1"))]) == 0
    out = capsys.readouterr().out
    assert "1 account(s) in the ledger are not in this full export and will not be called" in out
    assert main(["--config", str(conf), "eligible", "--date", DAY.isoformat(), "--why", "A-2"]) == 0
    out = capsys.readouterr().out
    assert "A-2 (Ivan) on 2026-11-23: not eligible" in out
    assert "excluded: not in the latest export of " in out and "(d2.csv)" in out
    assert Account.get(number="A-2").seen_run < ImportRun.select().order_by(ImportRun.id.desc()).first().id
