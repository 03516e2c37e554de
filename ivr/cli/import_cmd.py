"""`ivr import accounts|payments FILE` (billing exports into the ledger) and `ivr import sample` (demo data)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ivr.cli.common import iso_date, load
from ivr.errors import IvrError
from ivr.ledger import audit, importer
from ivr.ledger.sample import write_sample
from ivr.logs import shown_number

SHOW_REJECTS = 20
HELD_EXIT = 5  # an accounts export held by the anomaly guard: nothing applied

def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import", help="load billing exports (accounts, payments) or write sample files",
                       description="Load CSV exports from billing into the ledger. Bad rows are reported by line "
                                   "and written to a rejects file in the input's own format (fix it and import it "
                                   "as it is); every good row still loads; importing the same file again changes "
                                   "nothing. An accounts export far from the previous one is held (exit 5).")
    isub = p.add_subparsers(dest="import_command", metavar="WHAT", required=True)
    for kind, text in (("accounts", "accounts with phone numbers and balances"),
                       ("payments", "payments (clears 'already paid' claims of the accounts named)")):
        q = isub.add_parser(kind, help=f"import {text}",
                            description=f"Import {text} from a CSV export: delimiter , ; or tab, UTF-8 or "
                                        "Windows-1251, decimal comma or point; column names are mapped under "
                                        f"import.{kind[:-1]}_columns in config.yaml.")
        q.add_argument("file", metavar="FILE", help="the CSV export")
        q.add_argument("--no-progress", action="store_true", help="no progress bar")
        q.add_argument("--strict", action="store_true",
                       help="exit with status 3 when any row was rejected (payments for accounts not in the ledger "
                            "are listed, not rejected, unless import.unknown_accounts is reject)")
        if kind == "accounts":
            q.add_argument("--date", type=iso_date, metavar="YYYY-MM-DD",
                           help="balance date for rows that have none (default: today)")
            q.add_argument("--confirm-anomaly", action="store_true",
                           help="apply an export the anomaly guard holds (debts risen, accounts gone, …) anyway; "
                                "who and when go to the audit log")
            q.add_argument("--export", choices=("full", "changes"), default=None,
                           help="full: the file lists every account, and accounts it does not list are not called "
                                "until they reappear; changes: only changed accounts (default: "
                                "import.accounts_export)")
        q.set_defaults(func=cmd_import, kind=kind)
    for kind, text, cols in (
            ("plans", "installment plans (one row per due)", "plan, account, due_date, amount [, starts_on]"),
            ("supply-points", "which supply point feeds each account (the network scheme's export)",
             "account, point"),
            ("outages", "outages from the dispatchers' system", "outage, points, from, to, kind [, reason, status]")):
        q = isub.add_parser(kind, help=f"import {text}",
                            description=f"Import {text} from a CSV file with the columns {cols} (any case); "
                                        "encodings, delimiters and rejects as for accounts (bad rows are listed "
                                        "by line and written to a rejects file; every good row still loads).")
        q.add_argument("file", metavar="FILE", help="the CSV file")
        q.add_argument("--strict", action="store_true", help="exit with status 3 when any row was rejected")
        q.set_defaults(func=cmd_import_kind, kind=kind)
    s = isub.add_parser("sample", help="write realistic sample accounts.csv and payments.csv",
                        description="Write generated sample billing files (deterministic by --seed) for demos "
                                    "and trials; nothing is imported.")
    s.add_argument("--accounts", type=int, default=3000, metavar="N", help="number of accounts (default 3000)")
    s.add_argument("--out", default="data/sample", metavar="DIR", help="output folder (default data/sample)")
    s.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    s.add_argument("--date", type=iso_date, metavar="YYYY-MM-DD", help="the evening the data is for (default today)")
    s.add_argument("--style", choices=("utf8", "cp1251"), default="utf8",
                   help="utf8: ',' and decimal point; cp1251: Windows-1251, ';' and decimal comma")
    s.set_defaults(func=cmd_sample)


def _listed(lines: list[str], what: str, out) -> None:
    for text in lines[:SHOW_REJECTS]:
        print(f"  {text}", file=out)
    more = len(lines) - SHOW_REJECTS
    if more > 0:
        print(f"  … and {more} more {what}", file=out)


def print_report(report: importer.ImportReport, out=None) -> None:
    out = out or sys.stdout
    _listed([f"line {r.line}: {r.reason}" for r in report.rejected], "rejected row(s)", out)
    _listed([f"line {u.line}: account {u.account!r} is not in the ledger (payment {u.reference!r} not loaded)"
             for u in report.not_in_ledger], "payment(s) for accounts not in the ledger", out)
    _listed([f"line {p.line}: account {p.account}: phone {shown_number(p.raw)!r} will not be dialled: {p.reason}"
             for p in report.invalid_phones], "phone number(s) that will not be dialled", out)
    print(report.summary(), file=out)


def cmd_import(args: argparse.Namespace) -> int:
    cfg, _db = load(args)
    path = Path(args.file)
    if args.kind == "accounts":
        report = importer.import_accounts(cfg, path, progress=not args.no_progress and sys.stderr.isatty(),
                                          today=args.date, export=args.export,
                                          confirm_by=audit.cli_actor() if args.confirm_anomaly else None)
        if report.held:
            print(f"{path}: HELD, nothing applied: this export differs too much from the previous one")
            print(report.anomaly_table)
            print(report.summary())
            print(f"ivr: accounts import held; check the file with billing, then either import a corrected file or "
                  f"apply this one anyway: ivr import accounts {path} --confirm-anomaly", file=sys.stderr)
            return HELD_EXIT
    else:
        report = importer.import_payments(cfg, path, progress=not args.no_progress and sys.stderr.isatty())
    if report.confirmed_by:
        print(f"{path}: applied despite the anomaly guard, confirmed by {report.confirmed_by} (audit log):")
        print(report.anomaly_table)
    print_report(report)
    if report.rows and not report.ok:
        raise IvrError(f"no row of {path} could be loaded; see the reasons above")
    if args.strict and report.rejected:
        return 3
    return 0


def cmd_import_kind(args: argparse.Namespace) -> int:
    """`ivr import plans|supply-points|outages FILE` (ivr.campaign.installments, ivr.campaign.outages)."""
    cfg, _db = load(args)
    from ivr.campaign import installments, outages

    fn = {"plans": installments.import_plans, "supply-points": outages.import_supply_points,
          "outages": outages.import_outages}[args.kind]
    report = fn(cfg, Path(args.file), audit.cli_actor())
    print_report(report)
    if report.rows and not report.ok and report.rejected:
        raise IvrError(f"nothing of {args.file} could be loaded; see the reasons above")
    if args.strict and report.rejected:
        return 3
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    if args.accounts < 1:
        raise IvrError("--accounts must be at least 1")
    files = write_sample(args.out, accounts=args.accounts, seed=args.seed, day=args.date, style=args.style)
    print(f"wrote {files.accounts} ({files.accounts_count} accounts) and {files.payments} "
          f"({files.payments_count} payments)")
    return 0
