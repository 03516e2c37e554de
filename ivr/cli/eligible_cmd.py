"""`ivr eligible`: who qualifies for a reminder call on a day, who owes but is excluded, and why."""

from __future__ import annotations

import argparse
import csv
import os
import sys
from collections import Counter
from datetime import date

from ivr.cli.common import iso_date, load, local_today
from ivr.ledger import eligibility
from ivr.ledger.importer import spreadsheet_safe
from ivr.ledger.models import Account, Phone
from ivr.logs import mask_number


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eligible", help="list the accounts that qualify for a call (or why not)",
                       description="List who qualifies for a reminder call: remaining debt (latest balance minus "
                                   "payments since) above eligibility.threshold, or owed and overdue at least "
                                   "eligibility.overdue_months calendar months; minus do-not-call, accounts "
                                   "without a valid (or allowed: dialing.allowed_countries/number_types) number, "
                                   "installment plans kept up to date, 'already paid' claims made since the last "
                                   "payments import and accounts missing from the latest full accounts export.")
    p.add_argument("--date", type=iso_date, metavar="YYYY-MM-DD", help="the day to judge (default: today, local)")
    p.add_argument("--why", metavar="ACCOUNT", help="explain one account's verdict")
    p.add_argument("--excluded", action="store_true",
                   help="list accounts that owe money but are not called, with the reasons")
    p.add_argument("--csv", action="store_true", help="write CSV to standard output (full numbers)")
    p.add_argument("--store", action="store_true",
                   help="bring the verdicts the console's Who will be called lists read up to date for the day "
                        "(judging again the accounts changed since, or every account; run it after the night's "
                        "imports so the console's first view is immediate)")
    p.set_defaults(func=cmd_eligible)


def cmd_eligible(args: argparse.Namespace) -> int:
    try:
        return _eligible(args)
    except BrokenPipeError:  # `ivr eligible | head`: the reader has seen enough
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - stays open until exit
        return 0


def _eligible(args: argparse.Namespace) -> int:
    cfg, _db = load(args)
    day = args.date or local_today(cfg)
    if args.why:
        return _why(cfg, args.why.strip(), day)
    if args.store:
        from ivr.ledger import verdicts
        done = verdicts.ensure(cfg, day, progress=lambda step: print(step, file=sys.stderr))
        what = "rebuilt" if done.rebuilt else "brought up to date"
        print(f"stored verdicts for {day} {what}: {done.changed} {'rows' if done.rebuilt else 'accounts judged'}")
        return 0
    verdicts = eligibility.evaluate(cfg, day)
    if args.excluded:
        chosen = [v for v in verdicts if not v.eligible and v.remaining > 0]
    else:
        chosen = [v for v in verdicts if v.eligible]
    if args.csv:
        w = csv.writer(sys.stdout)
        w.writerow(["account", "eligible", "remaining", "overdue_months", "number", "reasons"])
        for v in chosen:
            w.writerow([v.number, "yes" if v.eligible else "no", v.remaining, v.overdue_months, v.e164,
                        spreadsheet_safe("; ".join(v.reasons))])
        return 0
    info = {a: (d, n) for a, d, n in Account.select(Account.id, Account.district, Account.name).tuples()}
    if args.excluded:
        for v in chosen:
            why = "; ".join(v.excluded_by) or v.reasons[0]
            print(f"{v.number:<16} {v.remaining:>12} {info.get(v.account_id, ('', ''))[0]:<16} {why}")
    else:
        print(f"{'ACCOUNT':<16} {'REMAINING':>12} {'OVERDUE':>7}  {'NUMBER':<16} {'DISTRICT':<16} NAME")
        for v in chosen:
            district, name = info.get(v.account_id, ("", ""))
            print(f"{v.number:<16} {v.remaining:>12} {v.overdue_months:>5} m  {mask_number(v.e164):<16} "
                  f"{district[:16]:<16} {name[:40]}")
    _summary(verdicts, day)
    return 0


def _summary(verdicts: list[eligibility.Verdict], day: date) -> None:
    eligible = [v for v in verdicts if v.eligible]
    total = sum((v.remaining for v in eligible), eligibility.ZERO)
    owing = [v for v in verdicts if not v.eligible and v.remaining > 0]
    causes: Counter[str] = Counter()
    for v in owing:
        for e in v.excluded_by or ["below the threshold and not overdue long enough"]:
            causes[e.split(" (")[0].split(":")[0]] += 1
    print(f"\n{len(eligible)} of {len(verdicts)} accounts eligible on {day}, owing {total} in total; "
          f"{len(owing)} more owe money but are not called", file=sys.stderr)
    for cause, n in causes.most_common():
        print(f"  {n:>7}  {cause}", file=sys.stderr)


def _why(cfg, number: str, day: date) -> int:
    acc = Account.by_number(number)
    v = eligibility.check_account(cfg, acc, day)
    print(f"account {acc.number} ({acc.name}) on {day}: {'ELIGIBLE' if v.eligible else 'not eligible'}")
    print(f"  remaining debt: {v.remaining}" + (f" (balance as of {v.balance_date})" if v.balance_date else ""))
    for r in v.reasons:
        print(f"  - {r}")
    for ph in Phone.select().where(Phone.account == acc).order_by(Phone.position):
        state = "valid" if ph.valid and ph.e164 else f"invalid: {ph.invalid_reason or 'unknown'}"
        print(f"  phone {ph.position + 1}: {ph.raw!r} -> {ph.e164 or '-'} ({state})")
    return 0
