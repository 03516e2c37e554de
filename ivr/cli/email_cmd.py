"""`ivr email send`: e-mail reminders over SMTP (ivr.channels.email), a step of its own like `ivr sms send`.

The SMTP user and password are read from the environment only: IVR_SMTP_USER, IVR_SMTP_PASSWORD.

Examples:
  ivr email send
  ivr email send --date 2026-11-23 --limit 500
"""

from __future__ import annotations

import argparse

from ivr.cli.common import add_send_options, load, local_today, print_skipped, progress_bar


def cmd_send(args: argparse.Namespace) -> int:
    from ivr.channels import email
    from ivr.clock import Clock

    cfg, _db = load(args)
    day = args.date or local_today(cfg)
    with progress_bar("sending e-mail", not args.no_progress) as progress:
        run = email.send_due(cfg, day, Clock(), limit=args.limit, progress=progress)
    print(f"e-mail for {day}: {run.considered} eligible debtors considered; {run.sent} sent, {run.bounced} "
          f"bounced (refused for good), {run.failed} refused for now")
    print_skipped(run.skipped, "not sent")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("email", help="e-mail reminders over SMTP", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    ps = p.add_subparsers(dest="email_command", metavar="SUBCOMMAND", required=True)
    s = ps.add_parser("send", help="send the e-mail reminders due now (channels.order, caps)")
    add_send_options(s)
    s.set_defaults(func=cmd_send)
