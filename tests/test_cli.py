"""The `ivr` entry point: every subcommand answers --help; `ivr db` upgrades idempotently and reports versions."""

from __future__ import annotations

import argparse

from ivr.cli import build_parser, main
from ivr.ledger import db as ledger_db


def _subcommand_paths(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out.append(prefix + (name,))
                out.extend(_subcommand_paths(sub, prefix + (name,)))
    return out


def test_every_subcommand_has_help(capsys):
    paths = _subcommand_paths(build_parser())
    for must in (("db", "upgrade"), ("db", "version"), ("import", "accounts"), ("import", "payments"),
                 ("import", "sample"), ("eligible",)):
        assert must in paths
    for path in paths:
        assert main([*path, "--help"]) == 0
        assert "usage: ivr " + " ".join(path) in capsys.readouterr().out


def test_db_upgrade_then_version(tmp_path, capsys):
    config = tmp_path / "config.yaml"
    config.write_text("database:\n  url: sqlite:///data/x.sqlite3\n", encoding="utf-8")
    assert main(["--config", str(config), "db", "version"]) == 0
    assert f"schema version 0 (latest {ledger_db.LATEST})" in capsys.readouterr().out
    assert main(["--config", str(config), "db", "upgrade"]) == 0
    assert f"upgraded from version 0 to {ledger_db.LATEST}" in capsys.readouterr().out
    assert (tmp_path / "data" / "x.sqlite3").exists()  # relative to the config file's folder
    assert main(["--config", str(config), "db", "upgrade"]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert main(["--config", str(config), "db", "version"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_unopenable_database_is_a_clear_error(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder", encoding="utf-8")
    config = tmp_path / "config.yaml"
    config.write_text(f"database:\n  url: sqlite:///{blocker}/sub/x.sqlite3\n", encoding="utf-8")
    assert main(["--config", str(config), "db", "upgrade"]) == 1
    err = capsys.readouterr().err
    assert "cannot create the database folder" in err and "Traceback" not in err
