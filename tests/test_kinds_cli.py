"""The campaign-kind commands from the command line: outage add/move/cancel/list, the three imports, and
`ivr campaigns` listing an evening's campaigns in priority order."""

from __future__ import annotations

from ivr.cli import main
from ivr.ledger.models import AuditEvent, Outage


def _setup(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("database:\n  url: sqlite:///ivr.sqlite3\nimport:\n  rejects_dir: rejects\n", encoding="utf-8")
    (tmp_path / "accounts.csv").write_text(
        "account,name,phone,address,balance,balance_date\n"
        "3001,Anna,+380501112201,1 Khreshchatyk,0,2026-11-20\n"
        "3002,Boris,+380501112202,2 Khreshchatyk,800,2026-11-20\n", encoding="utf-8")
    (tmp_path / "points.csv").write_text("account,point\n3001,F-1\n3002,F-1\n", encoding="utf-8")
    return ["--config", str(config)]


def test_outage_commands_and_campaigns_listing(tmp_path, capsys):
    c = _setup(tmp_path)
    assert main([*c, "import", "accounts", str(tmp_path / "accounts.csv"), "--no-progress"]) == 0
    assert main([*c, "import", "supply-points", str(tmp_path / "points.csv")]) == 0
    assert main([*c, "outage", "add", "--points", "F-1", "--from", "2026-12-12 09:00", "--to", "2026-12-12 17:00",
                 "--kind", "planned", "--reason", "works", "--id", "D-7"]) == 0
    out = capsys.readouterr().out
    assert "outage D-7 (planned) 2026-12-12 09:00 .. 2026-12-12 17:00 Europe/Kyiv: 2 account(s) fed from F-1" in out
    assert main([*c, "outage", "add", "--points", "F-1", "--from", "2026-12-12 09:00", "--to", "yesterday",
                 "--kind", "planned"]) == 1
    assert "--to: to: 'yesterday' is not a date and time" in capsys.readouterr().err
    assert main([*c, "outage", "move", "D-7", "--from", "2026-12-13 09:00", "--to", "2026-12-13 12:00"]) == 0
    assert main([*c, "outage", "cancel", "D-7"]) == 0
    assert main([*c, "outage", "cancel", "D-404"]) == 1
    assert "no outage 'D-404'" in capsys.readouterr().err
    assert main([*c, "outage", "list"]) == 0
    assert "D-7          planned   cancelled v3  2026-12-13 09:00 .. 2026-12-13 12:00" in capsys.readouterr().out
    assert [e.action for e in AuditEvent.select().order_by(AuditEvent.id)][-3:] == ["outage.add", "outage.move",
                                                                                     "outage.cancel"]
    assert Outage.get().created_by.startswith("cli:")
    assert main([*c, "campaigns", "--date", "2026-12-02"]) == 0
    assert "no campaign on 2026-12-02 yet" in capsys.readouterr().out


def test_import_plans_from_the_command_line_reports_rejects_and_strict_exit(tmp_path, capsys):
    c = _setup(tmp_path)
    assert main([*c, "import", "accounts", str(tmp_path / "accounts.csv"), "--no-progress"]) == 0
    plans = tmp_path / "plans.csv"
    plans.write_text("plan,account,due_date,amount\nP-1,3002,2026-12-05,400\nP-1,3002,2027-01-05,zero\n",
                     encoding="utf-8")
    assert main([*c, "import", "plans", str(plans), "--strict"]) == 3
    out = capsys.readouterr().out
    assert "line 3: amount:" in out and "plans: 2 rows: 1 new" in out
    missing = tmp_path / "nocols.csv"
    missing.write_text("account,when\n3002,2026-12-05\n", encoding="utf-8")
    assert main([*c, "import", "plans", str(missing)]) == 1
    assert "A plans file needs the columns 'plan', 'account', 'due_date', 'amount'" in capsys.readouterr().err
