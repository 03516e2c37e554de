"""`ivr ladder status|move|history` and `ivr court-list`: the escalation ladder (ivr.campaign.ladder) and the
court candidates with the evidence the legal department needs.

Examples:
  ivr ladder status                         # accounts per stage today
  ivr ladder status --record                # ... and write the rules' moves into the history
  ivr ladder move 100234 operator_call --reason "promised to pay on Friday"
  ivr ladder history 100234
  ivr court-list --date 2026-12-01 --format csv --out court-2026-12-01.csv
"""

from __future__ import annotations

import argparse
import csv
import sys
from datetime import UTC
from pathlib import Path
from zoneinfo import ZoneInfo

from ivr.cli.common import iso_date, load, local_today


def cmd_status(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ivr.campaign import ladder

    cfg, _db = load(args)
    day = args.date or local_today(cfg)
    with Console(stderr=True).status(f"Placing the debtors of {day} on the ladder…"):
        items = ladder.positions(cfg, day)
        moved = ladder.record(cfg, day) if args.record else None
    if args.district is not None:
        items = [p for p in items if p.district == args.district]
    print(f"escalation ladder on {day}: {len(items)} account(s) owe")
    for stage, n in ladder.counts(items).items():
        print(f"  {ladder.LABELS[stage]:<16} {n}")
    if moved is not None:
        total = sum(moved.values())
        print(f"recorded {total} move(s) in the history" + (": " + ", ".join(
            f"{s} {n}" for s, n in sorted(moved.items())) if total else ""))
    return 0


def cmd_move(args: argparse.Namespace) -> int:
    from ivr.campaign import ladder
    from ivr.ledger import audit

    cfg, _db = load(args)
    day = args.date or local_today(cfg)
    row = ladder.move(cfg, args.account, args.stage, audit.cli_actor(), args.reason, day)
    print(f"{args.account} moved to {ladder.LABELS[row.stage]} by {row.by} from {row.day}; holds "
          f"{cfg.ladder.manual_hold_days} day(s) or until a payment")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from ivr.campaign import ladder

    cfg, _db = load(args)
    tz = ZoneInfo(cfg.locale.timezone)
    rows = ladder.history(args.account)
    if not rows:
        print(f"{args.account}: no move recorded yet (`ivr ladder status --record` writes the rules' moves)")
    for m in rows:
        at = m.at.replace(tzinfo=UTC).astimezone(tz)
        print(f"  {at:%Y-%m-%d %H:%M}  {m.stage:<14} from {m.day}  by {m.by:<16} {m.reason}")
    return 0


def cmd_court_list(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ivr.campaign import ladder
    from ivr.ledger.importer import spreadsheet_safe

    cfg, _db = load(args)
    day = args.date or local_today(cfg)
    with Console(stderr=True).status(f"Gathering the court candidates of {day}…"):
        items = ladder.court_candidates(cfg, day)
    if args.format == "csv":
        out = open(args.out, "w", encoding="utf-8-sig", newline="") if args.out else sys.stdout  # noqa: SIM115
        try:
            w = csv.writer(out)
            w.writerow(ladder.COURT_COLUMNS)
            for row in ladder.court_rows(items, day):
                w.writerow([spreadsheet_safe(c) if i in ladder.BILLING_TEXT else c for i, c in enumerate(row)])
        finally:
            if args.out:
                out.close()
        if args.out:
            print(f"{Path(args.out)}  ({len(items)} court candidate(s) on {day})", file=sys.stderr)
        return 0
    if not items:
        print(f"no court candidates on {day}")
        return 0
    print(f"{len(items)} court candidate(s) on {day}:")
    for p in items:
        calls = ", ".join(c.at.strftime("%Y-%m-%d %H:%M") for c in p.heard)
        print(f"  {p.account:<14} {p.name:<24} debt {p.debt:>10.2f} {p.currency}  heard {len(p.heard)}: {calls}; "
              f"{p.days_without_payment(day)} days without payment; since {p.since}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ladder", help="the escalation ladder: accounts per stage, moves by hand, history",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    s = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    st = s.add_parser("status", help="accounts per stage (reminder, second call, operator call, letter, court)",
                      description="Every account that owes placed on the ladder by the rules in config "
                                  "(ladder.*, court.*) and moves made by hand; --record writes the rules' moves "
                                  "into the history.")
    st.add_argument("--date", type=iso_date, default=None, help="the day YYYY-MM-DD (default: today)")
    st.add_argument("--district", default=None, metavar="NAME", help="count only this district")
    st.add_argument("--record", action="store_true", help="write the rules' moves into the history")
    st.set_defaults(func=cmd_status)
    mv = s.add_parser("move", help="move an account to a stage by hand (audited; court needs a heard call)",
                      description="Set an account's stage by hand, e.g. hold it back from court after a "
                                  "promise; the move holds ladder.manual_hold_days days or until a payment.")
    mv.add_argument("account", help="the account number")
    mv.add_argument("stage", choices=("reminder", "second_call", "operator_call", "letter", "court"))
    mv.add_argument("--reason", required=True, help="why (kept in the history and the audit log)")
    mv.add_argument("--date", type=iso_date, default=None, help="the day the move applies from (default: today)")
    mv.set_defaults(func=cmd_move)
    hi = s.add_parser("history", help="an account's recorded moves", description="An account's recorded moves "
                      "on the ladder, oldest first: by the rules or by hand (who, why).")
    hi.add_argument("account", help="the account number")
    hi.set_defaults(func=cmd_history)

    c = sub.add_parser("court-list", help="court candidates with the evidence: debt, the calls heard and dates",
                       description="Accounts on the court stage of the ladder: debt above court.threshold after "
                                   "court.min_heard_calls heard calls and court.days_without_payment days "
                                   "without payment (and a letter, with court.require_letter). Each row carries "
                                   "the evidence: every heard call's local time, number and call id, the first "
                                   "heard call, the last payment, the letter. Nobody is listed without a heard "
                                   "call on record.")
    c.add_argument("--date", type=iso_date, default=None, help="the day YYYY-MM-DD (default: today)")
    c.add_argument("--format", choices=("text", "csv"), default="text",
                   help="text for people, csv for the legal department (UTF-8 with BOM)")
    c.add_argument("--out", default=None, metavar="PATH", help="csv: write to this file (default: standard "
                   "output)")
    c.set_defaults(func=cmd_court_list)
