"""The `ivr` command: argument parsing and error reporting; each area's subcommands live in their own module.

Every module named in COMMAND_MODULES has `register(subparsers)` adding its subcommands, each with a
`func(args) -> int`. Errors meant for people (IvrError, ConfigError, DatabaseError) are printed as one clear
message with a non-zero exit code, never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

import peewee

from ivr.config import ConfigError
from ivr.errors import IvrError
from ivr.ledger.db import DatabaseError

COMMAND_MODULES = [
    "ivr.cli.db_cmd", "ivr.cli.import_cmd", "ivr.cli.eligible_cmd", "ivr.cli.prompts_cmd", "ivr.cli.sim_cmd",
    "ivr.cli.campaign_cmd", "ivr.cli.report_cmd", "ivr.cli.control_cmd", "ivr.cli.switch_cmd", "ivr.cli.dnc_cmd",
    "ivr.cli.account_cmd", "ivr.cli.sms_cmd", "ivr.cli.email_cmd",
    "ivr.cli.letters_cmd", "ivr.cli.lifesupport_cmd", "ivr.cli.ladder_cmd",
    "ivr.cli.web_cmd", "ivr.cli.voice_cmd", "ivr.cli.kinds_cmd",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ivr", description="Night dialer: outbound debt-reminder calls on FreeSWITCH.")
    parser.add_argument("--config", metavar="PATH",
                        help="settings file (default: $IVR_CONFIG or ./config.yaml)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error argparse has already explained
        return int(exc.code or 0)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"ivr: configuration error in {exc}", file=sys.stderr)
        return 2
    except (IvrError, DatabaseError) as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 1)
    except KeyboardInterrupt:
        print("ivr: interrupted", file=sys.stderr)
        return 130
    except peewee.DatabaseError as exc:  # a write refused under us: locked by another process, read-only, …
        print(f"ivr: database error: {database_hint(exc)}", file=sys.stderr)
        return 1
    except OSError as exc:  # the machine said no (disk full, permissions, …): say what, where; no traceback
        where = f": {exc.filename}" if exc.filename else ""
        print(f"ivr: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1


def database_hint(exc: Exception) -> str:
    """The database's own words plus what to do about the usual ones."""
    text = str(exc).strip() or type(exc).__name__
    low = text.lower()
    if "locked" in low or "busy" in low:
        return f"{text} (another process is writing to it; wait for it to finish and run the command again)"
    if "readonly" in low or "read-only" in low or "read only" in low:
        return f"{text} (the database file or its folder is read-only for this user; check database.url)"
    if "disk" in low and "full" in low:
        return f"{text} (free space on the disk holding the database)"
    return text


if __name__ == "__main__":
    sys.exit(main())
