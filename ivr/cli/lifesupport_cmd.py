"""`ivr life-support list|informed|status`: the life-support accounts a person informs before the robot may call
(ivr.campaign.lifesupport); recording "informed" is audited.

Examples:
  ivr life-support list                            # whom to inform today, by district, largest debt first
  ivr life-support list --district North --csv > north.csv
  ivr life-support informed 100234 --kind debt --at "2026-11-23 15:30" --note "spoke to the daughter"
  ivr life-support status                          # every life-support account: informed? by whom, when
"""

from __future__ import annotations

import argparse
import csv
import sys
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from ivr.cli.common import iso_date, load, local_today
from ivr.config import CAMPAIGN_KINDS
from ivr.ledger.importer import spreadsheet_safe

LIST_COLUMNS = ["kind", "district", "account", "name", "number", "address", "debt"]


def _local_minute(text: str) -> datetime:
    """argparse type for --at: 'YYYY-MM-DD HH:MM' local time (converted to UTC once the config is read)."""
    try:
        return datetime.strptime(text.strip(), "%Y-%m-%d %H:%M")
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a time; expected 'YYYY-MM-DD HH:MM'") from None


def cmd_list(args: argparse.Namespace) -> int:
    from ivr.campaign import lifesupport

    cfg, _db = load(args)
    day = args.date or local_today(cfg)
    items = lifesupport.pending(cfg, day, args.district)
    if args.csv:  # full numbers: the operators dial them; cells a spreadsheet would evaluate are quoted
        w = csv.writer(sys.stdout)
        w.writerow(LIST_COLUMNS)
        for i in items:
            w.writerow([i.kind, spreadsheet_safe(i.district), spreadsheet_safe(i.account), spreadsheet_safe(i.name),
                        i.number, spreadsheet_safe(i.address), f"{i.debt:.2f}"])
        return 0
    if not items:
        print(f"nobody to inform in person on {day}")
        return 0
    print(f"{len(items)} life-support account(s) to inform in person before the robot may call ({day}):")
    for i in items:
        print(f"  {i.district or '-':<12} {i.account:<14} {i.name:<24} {i.number or 'no valid number':<15} "
              f"{i.debt:>10.2f}  {i.kind}{' ' + i.outage if i.outage else ''}")
    return 0


def cmd_informed(args: argparse.Namespace) -> int:
    from ivr.campaign import lifesupport
    from ivr.ledger import audit

    cfg, _db = load(args)
    at = None
    if args.at is not None:
        at = args.at.replace(tzinfo=ZoneInfo(cfg.locale.timezone)).astimezone(UTC).replace(tzinfo=None)
    row = lifesupport.record_informed(args.account, args.kind, audit.cli_actor(), at=at, note=args.note or "")
    after = lifesupport.after_informed(cfg, args.kind)
    follow = "automated reminders may follow" if after == "robot" else "reminders stay with people"
    print(f"recorded: {args.account} informed about {args.kind} by {row.informed_by}; {follow} "
          f"(life_support.after_informed.{args.kind}: {after})")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from ivr.campaign import lifesupport

    cfg, _db = load(args)
    tz = ZoneInfo(cfg.locale.timezone)
    rows = lifesupport.status_rows()
    if not rows:
        print("no account is flagged life support")
        return 0
    for r in rows:
        told = "; ".join(f"{k}: {n.informed_by} {n.informed_at.replace(tzinfo=UTC).astimezone(tz):%Y-%m-%d %H:%M}"
                         for k, n in sorted(r.informed.items())) or "not informed"
        print(f"  {r.district or '-':<12} {r.account:<14} {r.name:<24} {told}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("life-support", help="life-support accounts: whom a person informs first, record it",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    s = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    lst = s.add_parser("list", help="whom to inform in person (the robot holds them back until then)",
                       description="Life-support accounts the robot would call about their debt were it not for "
                                   "the rule, not yet informed: by district, largest debt first, full numbers.")
    lst.add_argument("--date", type=iso_date, default=None, help="the day YYYY-MM-DD (default: today)")
    lst.add_argument("--district", default=None, metavar="NAME", help="only this district")
    lst.add_argument("--csv", action="store_true", help="CSV on standard output (for a spreadsheet)")
    lst.set_defaults(func=cmd_list)
    inf = s.add_parser("informed", help="record that you informed a life-support account (audited)",
                       description="Record who informed a life-support account, when and about which kind; "
                                   "life_support.after_informed then decides whether the robot may follow.")
    inf.add_argument("account", help="the account number")
    inf.add_argument("--kind", choices=CAMPAIGN_KINDS, default="debt", help="what they were told about "
                     "(default: debt)")
    inf.add_argument("--at", type=_local_minute, default=None, metavar="'YYYY-MM-DD HH:MM'",
                     help="when, local time (default: now)")
    inf.add_argument("--note", default="", help="a short note (who answered, what was said)")
    inf.set_defaults(func=cmd_informed)
    st = s.add_parser("status", help="every life-support account: informed or not, by whom and when",
                      description="Every account flagged life support with its latest notice per kind.")
    st.set_defaults(func=cmd_status)
