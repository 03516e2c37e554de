"""`ivr dnc add|remove|list|import`: the local do-not-call list (ivr.ledger.dnc), every change audited."""

from __future__ import annotations

import argparse
import csv
import sys

from ivr.cli.common import iso_date, load, local_today
from ivr.ledger import audit, dnc
from ivr.ledger.importer import spreadsheet_safe
from ivr.logs import mask_number


def _kind(args: argparse.Namespace) -> str | None:
    return "number" if args.number else "account" if args.account else None


def cmd_add(args: argparse.Namespace) -> int:
    cfg, _db = load(args)
    entry = dnc.add(cfg, args.target, args.reason, audit.cli_actor(), until=args.until, kind=_kind(args))
    shown = dnc.Target(entry.kind, entry.value).shown(args.full_numbers)
    print(f"{entry.kind} {shown} is on the do-not-call list: {dnc.describe(entry)}")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    cfg, _db = load(args)
    removed = dnc.remove(cfg, args.target, audit.cli_actor(), args.reason or "", kind=_kind(args))
    e = removed[0]
    shown = dnc.Target(e.kind, e.value).shown(args.full_numbers)
    print(f"{e.kind} {shown} removed from the do-not-call list ({len(removed)} entry(ies); "
          "the history is kept)")
    return 0


COLUMNS = ["kind", "value", "reason", "until", "added_at", "added_by", "source", "removed_at", "removed_by",
           "removed_reason"]


def cmd_list(args: argparse.Namespace) -> int:
    cfg, _db = load(args)
    today = local_today(cfg)
    rows = dnc.entries(include_removed=args.all, day=None if args.all else today)
    if args.csv:  # for a spreadsheet: full numbers, cells a spreadsheet would evaluate are quoted
        w = csv.writer(sys.stdout)
        w.writerow(COLUMNS)
        for e in rows:
            w.writerow([e.kind, e.value, spreadsheet_safe(e.reason), e.until or "",
                        f"{e.added_at:%Y-%m-%d %H:%M:%S}", spreadsheet_safe(e.added_by), spreadsheet_safe(e.source),
                        f"{e.removed_at:%Y-%m-%d %H:%M:%S}" if e.removed_at else "",
                        spreadsheet_safe(e.removed_by), spreadsheet_safe(e.removed_reason)])
        return 0
    print(f"{'KIND':<8} {'NUMBER / ACCOUNT':<18} {'SINCE':<10} {'UNTIL':<10} {'BY':<16} REASON")
    for e in rows:
        value = e.value if e.kind == "account" or args.full_numbers else mask_number(e.value)
        state = ""
        if e.removed_at:
            state = f"  [removed {e.removed_at:%Y-%m-%d} by {e.removed_by}" + (
                f": {e.removed_reason}]" if e.removed_reason else "]")
        elif e.until and e.until < today:
            state = "  [lapsed]"
        print(f"{e.kind:<8} {value:<18} {e.added_at:%Y-%m-%d} {str(e.until or '-'):<10} {e.added_by[:16]:<16} "
              f"{e.reason}{state}")
    what = "entries ever made" if args.all else "entries in force today"
    print(f"\n{len(rows)} {what}", file=sys.stderr)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    cfg, _db = load(args)
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), console=Console(stderr=True),
                  transient=True) as progress:
        task = progress.add_task(f"reading {args.file}", total=None)
        result = dnc.import_file(cfg, args.file, audit.cli_actor(), default_reason=args.reason or "",
                                 progress=lambda done, total: progress.update(task, completed=done, total=total))
    for line, why in result.problems:
        print(f"{args.file} line {line}: {why}", file=sys.stderr)
    print(f"{args.file}: {result.rows} rows; {len(result.added)} added to the do-not-call list, "
          f"{len(result.already)} already on it, {len(result.problems)} not applied")
    return 3 if result.problems else 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dnc", help="the do-not-call list: add, remove, list, import",
                       description="The local do-not-call list: numbers and accounts never called, with who, when "
                                   "and why. Every change goes to the audit log.")
    dsub = p.add_subparsers(dest="dnc_command", metavar="ACTION", required=True)

    def target(x: argparse.ArgumentParser) -> None:
        x.add_argument("target", metavar="NUMBER|ACCOUNT",
                       help="a phone number (any usual form, normalised with locale.country) or an account number")
        g = x.add_mutually_exclusive_group()
        g.add_argument("--number", action="store_true", help="read the target as a phone number")
        g.add_argument("--account", action="store_true",
                       help="read the target as an account number (also one not imported yet)")
        x.add_argument("--full-numbers", action="store_true", help="show phone numbers unmasked")

    a = dsub.add_parser("add", help="put a number or an account on the list",
                        description="Put a phone number or an account on the do-not-call list. An account known to "
                                    "the ledger is taken as an account, anything else as a phone number, unless "
                                    "--number or --account says which.")
    target(a)
    a.add_argument("--reason", required=True, metavar="TEXT", help="why (said to whoever asks later)")
    a.add_argument("--until", type=iso_date, metavar="YYYY-MM-DD",
                   help="last day the entry applies (default: for good)")
    a.set_defaults(func=cmd_add)

    r = dsub.add_parser("remove", help="take a number or an account off the list (the history is kept)",
                        description="End the do-not-call entry of a number or account. Nothing is deleted: the "
                                    "entry keeps who removed it, when and why.")
    target(r)
    r.add_argument("--reason", metavar="TEXT", help="why it is removed")
    r.set_defaults(func=cmd_remove)

    ls = dsub.add_parser("list", help="the entries in force (or every entry ever made)",
                         description="List the do-not-call entries in force today, numbers masked; --all adds "
                                     "removed and lapsed ones; --csv writes every field with full numbers.")
    ls.add_argument("--all", action="store_true", help="also removed and lapsed entries")
    ls.add_argument("--csv", action="store_true", help="CSV to standard output (full numbers)")
    ls.add_argument("--full-numbers", action="store_true", help="show phone numbers unmasked")
    ls.set_defaults(func=cmd_list)

    i = dsub.add_parser("import", help="add many entries from a CSV file",
                        description="Add the rows of a CSV file whose header names number and/or account, reason "
                                    "and optionally until (each row one number or one account). Rows in error are "
                                    "listed by line and skipped, every good row is applied; exit status 3 when "
                                    "any row was not applied.")
    i.add_argument("file", metavar="FILE", help="the CSV file")
    i.add_argument("--reason", metavar="TEXT", help="reason for rows that give none")
    i.set_defaults(func=cmd_import)
