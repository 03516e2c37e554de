"""`ivr report`, `ivr export results` and `ivr callbacks`: the morning report, results for billing, operator lists."""

from __future__ import annotations

import argparse
import time
from datetime import date
from pathlib import Path

from ivr.cli.common import iso_date, load
from ivr.errors import IvrError


class BadArgument(IvrError):
    exit_code = 2


def _resolve_day(value: date | None) -> date:
    from ivr.report.data import latest_campaign_day
    return value or latest_campaign_day()


def cmd_report(args: argparse.Namespace) -> int:
    cfg, _db = load(args)
    day = args.date
    from rich.console import Console

    from ivr.report import stored
    from ivr.report.data import build_report, latest_campaign_day
    day = day or latest_campaign_day()
    console = Console(stderr=True)
    started = time.monotonic()
    with console.status(f"Gathering the calls of {day}…"):
        # stored for the console's Reports page too (ivr.report.stored), unless --no-store
        data = build_report(cfg, day) if args.no_store else stored.build(cfg, day)
    out = Path(args.out) if args.out else cfg.path(cfg.report.output_dir) / f"report-{day}.{args.format}"
    with console.status(f"Writing {out}…"):
        if args.format == "html":
            from ivr.report.html import write_html
            write_html(data, out)
        else:
            from ivr.report.csvout import write_report_csv
            write_report_csv(data, out)
    t = data.totals
    print(f"{out}")
    console.print(f"{len(data.people)} people, {t.attempts} calls; reached {t.reached}, heard {t.heard}, "
                  f"pay now {t.pay_now}, callbacks {t.callbacks} ({time.monotonic() - started:.1f} s)")
    return 0


def cmd_export_results(args: argparse.Namespace) -> int:
    cfg, _db = load(args)
    day = _resolve_day(args.date)
    from ivr.report.data import build_report
    from ivr.report.export import write_results
    out = Path(args.out) if args.out else cfg.path(cfg.report.output_dir) / f"results-{day}.csv"
    path, count = write_results(build_report(cfg, day), out)
    print(path)
    print(f"{count} accounts exported for {day}")
    return 0


def cmd_callbacks(args: argparse.Namespace) -> int:
    cfg, _db = load(args)
    day = _resolve_day(args.date)
    from ivr.campaign import lifesupport
    from ivr.report.csvout import write_callback_lists, write_life_support_list
    from ivr.report.data import callback_rows
    rows = callback_rows(cfg, day, args.district)
    folder = Path(args.out) if args.out else cfg.path(cfg.report.output_dir) / f"callbacks-{day}"
    life = lifesupport.pending(cfg, day, args.district)
    if life:  # first: the robot holds these back until a person has informed them
        path = write_life_support_list(life, folder)
        print(f"{path}  ({len(life)} life-support account(s) to inform in person first)")
    if not rows:
        where = f" in district {args.district!r}" if args.district is not None else ""
        print(f"no open callback requests for {day}{where}")
        return 0
    written = write_callback_lists(rows, folder)
    counts = {d: sum(r.district == d for r in rows) for d in written}
    for district, path in written.items():
        print(f"{path}  ({counts[district]} to call, {district or 'no district'})")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="write the morning report of a campaign (HTML for people, CSV for machines)",
                       description="The morning report: per person who was called, who heard, who chose what, who "
                                   "paid since; totals, money after the calls, hours and districts.")
    p.add_argument("--date", type=iso_date, metavar="YYYY-MM-DD", help="campaign day (default: the latest campaign)")
    p.add_argument("--format", choices=("html", "csv"), default="html",
                   help="html: one file a manager opens without a server; csv: one row per person-attempt")
    p.add_argument("--out", metavar="PATH", help="file to write (default: report.output_dir/report-DAY.EXT)")
    p.add_argument("--no-store", action="store_true",
                   help="do not keep the report in the database for the console's Reports page (by default it is "
                        "kept, so the page shows it at once)")
    p.set_defaults(func=cmd_report)

    e = sub.add_parser("export", help="export data for other systems", description="Export data for billing.")
    esub = e.add_subparsers(dest="what", metavar="WHAT", required=True)
    r = esub.add_parser("results", help="one CSV row per account per day: final outcome, heard, digits, attempts",
                        description="Results back to billing: one row per account for the campaign day with its "
                                    "final outcome, heard and reached flags, digits pressed, number of calls and "
                                    "the last call's local time (columns documented in docs/report-and-admin.md).")
    r.add_argument("--date", type=iso_date, metavar="YYYY-MM-DD", help="campaign day (default: the latest campaign)")
    r.add_argument("--out", metavar="PATH", help="file to write (default: report.output_dir/results-DAY.csv)")
    r.set_defaults(func=cmd_export_results)

    c = sub.add_parser("callbacks", help="write callback lists for operators, one CSV per district",
                       description="Open callback requests (key 2) of a campaign, one CSV per district with the "
                                   "full number to call, address, time of the request and debt; first, "
                                   "_life-support.csv: the life-support accounts a person informs before the "
                                   "robot may call them.")
    c.add_argument("--date", type=iso_date, metavar="YYYY-MM-DD", help="campaign day (default: the latest campaign)")
    c.add_argument("--district", metavar="NAME", help="only this district")
    c.add_argument("--out", metavar="DIR", help="folder to write (default: report.output_dir/callbacks-DAY)")
    c.set_defaults(func=cmd_callbacks)
