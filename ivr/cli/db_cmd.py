"""`ivr db upgrade` and `ivr db version`: create or bring the ledger's schema up to date, and show its version."""

from __future__ import annotations

import argparse

from ivr.config import load_config
from ivr.ledger import db as ledger_db


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("db", help="database schema: upgrade, version",
                       description="Create the ledger's tables or apply missing migrations; show the version.")
    dsub = p.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    up = dsub.add_parser("upgrade", help="create tables / apply missing migrations (safe to run again)",
                         description="Apply every missing schema migration in order. Running it twice is harmless.")
    up.set_defaults(func=cmd_upgrade)
    ver = dsub.add_parser("version", help="show the schema version of the database and of this program",
                          description="Show the schema version recorded in the database and the latest known one.")
    ver.set_defaults(func=cmd_version)


def _open(args: argparse.Namespace):
    cfg = load_config(getattr(args, "config", None))
    return ledger_db.open_database(cfg.database.url, cfg.base_dir)


def cmd_upgrade(args: argparse.Namespace) -> int:
    db = _open(args)
    try:
        before = ledger_db.current_version(db)
        applied = ledger_db.upgrade(db)
    finally:
        db.close()
    if applied:
        print(f"database upgraded from version {before} to {applied[-1]} "
              f"(applied {', '.join(map(str, applied))})")
    else:
        print(f"database already at version {before}; nothing to do")
    return 0


def cmd_version(args: argparse.Namespace) -> int:
    db = _open(args)
    try:
        version = ledger_db.current_version(db)
    finally:
        db.close()
    state = "up to date" if version == ledger_db.LATEST else f"run `ivr db upgrade` to reach {ledger_db.LATEST}"
    print(f"schema version {version} (latest {ledger_db.LATEST}): {state}")
    return 0
