"""`ivr letters`: the day's letters for the post (ivr.channels.letters): one PDF per district, a CSV for the mail
house, only for debtors nobody could reach by the channels before 'letter' in channels.order.

Examples:
  ivr letters                         # today's letters into <report.output_dir>/letters/<day>/
  ivr letters --date 2026-11-23 --out /srv/post/outgoing
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ivr.cli.common import iso_date, load, local_today, print_skipped


def cmd_letters(args: argparse.Namespace) -> int:
    from ivr.channels import letters
    from ivr.clock import Clock

    cfg, _db = load(args)
    day = args.date or local_today(cfg)
    run = letters.print_due(cfg, day, Clock(), out_dir=Path(args.out) if args.out else None)
    print(f"letters for {day}: {run.considered} eligible debtors considered; {run.printed} letters in "
          f"{len(run.files)} PDF(s)")
    for path in run.files:
        print(f"  {path}")
    if run.csv:
        print(f"  {run.csv} (for the mail house)")
    print_skipped(run.skipped, "no letter")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("letters", help="the day's letters for the post: a PDF per district and a CSV",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--date", type=iso_date, default=None, help="the campaign day YYYY-MM-DD (default: today)")
    p.add_argument("--out", default=None, metavar="DIR", help="folder for the files "
                   "(default: <report.output_dir>/letters/<day>)")
    p.set_defaults(func=cmd_letters)
