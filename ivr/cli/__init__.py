"""The `ivr` command: argument parsing and error reporting; each area's subcommands live in their own module.

Every module named in COMMAND_MODULES has `register(subparsers)` adding its subcommands, each with a
`func(args) -> int`. Errors meant for people (IvrError, ConfigError, DatabaseError) are printed as one clear
message with a non-zero exit code, never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ivr.config import ConfigError
from ivr.errors import IvrError
from ivr.ledger.db import DatabaseError

COMMAND_MODULES = [
    "ivr.cli.db_cmd", "ivr.cli.import_cmd", "ivr.cli.eligible_cmd", "ivr.cli.prompts_cmd", "ivr.cli.sim_cmd",
    "ivr.cli.campaign_cmd", "ivr.cli.report_cmd", "ivr.cli.control_cmd", "ivr.cli.switch_cmd",
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
    args = parser.parse_args(argv)
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


if __name__ == "__main__":
    sys.exit(main())
