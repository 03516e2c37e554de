"""`ivr email send`: e-mail reminders over SMTP (ivr.channels.email), a step of its own like `ivr sms send`.

The SMTP user and password are read from the environment only: IVR_SMTP_USER, IVR_SMTP_PASSWORD.

Examples:
  ivr email send
  ivr email send --date 2026-11-23 --limit 500
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from zoneinfo import ZoneInfo

from ivr.cli.common import iso_date, load


def cmd_send(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from ivr.channels import email
    from ivr.clock import Clock

    cfg, _db = load(args)
    day = args.date or datetime.now(ZoneInfo(cfg.locale.timezone)).date()
    show = not args.no_progress and sys.stderr.isatty()
    with Progress(TextColumn("sending e-mail"), BarColumn(), MofNCompleteColumn(), console=Console(stderr=True),
                  transient=True, disable=not show) as progress:
        task = progress.add_task("email", total=None)
        run = email.send_due(cfg, day, Clock(), limit=args.limit,
                             progress=lambda done, total: progress.update(task, completed=done, total=total))
    print(f"e-mail for {day}: {run.considered} eligible debtors considered; {run.sent} sent, {run.bounced} "
          f"bounced (refused for good), {run.failed} refused for now")
    for why, n in run.skipped.most_common():
        print(f"  not sent: {n} - {why}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("email", help="e-mail reminders over SMTP", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    ps = p.add_subparsers(dest="email_command", metavar="SUBCOMMAND", required=True)
    s = ps.add_parser("send", help="send the e-mail reminders due now (channels.order, caps)")
    s.add_argument("--date", type=iso_date, default=None, help="the campaign day YYYY-MM-DD (default: today)")
    s.add_argument("--limit", type=int, default=None, help="send at most N messages")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_send)
