"""Time the morning report, the exports and `ivr status` on a generated campaign of N accounts (default 100,000).

    .venv/bin/python scripts/bench_report.py [--accounts 100000] [--keep DIR]

Builds a throw-away SQLite ledger (one campaign, ~1.9 calls per account with a realistic outcome mix, 20 %
payers, 3 % callbacks) with bulk inserts, then times each step and prints the figures.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from ivr.config import parse_config
from ivr.ledger.db import connect
from ivr.ledger.models import (
    Account,
    Attempt,
    Balance,
    CallbackRequest,
    Campaign,
    Payment,
    Phone,
    QueueEntry,
    database,
)

DAY = date(2026, 11, 23)
OUTCOMES = ["heard"] * 30 + ["early_hangup"] * 8 + ["no_answer"] * 25 + ["busy"] * 10 + ["pay_now"] * 6 + \
    ["callback"] * 4 + ["invalid_number"] * 3 + ["wrong_number"] * 2 + ["already_paid"] * 2 + ["failed"] * 2
ANSWERED = {"heard", "early_hangup", "pay_now", "callback", "wrong_number", "already_paid"}
DISTRICTS = ["Center", "North", "South", "East", "West", "Old Town", "Riverside", "Hills"]


def _batches(rows: list, size: int = 2000):
    for i in range(0, len(rows), size):
        yield rows[i:i + size]


def generate(n: int, seed: int = 7) -> None:
    rnd = random.Random(seed)
    with database.atomic():
        for chunk in _batches([(f"ACC{i:07d}", f"Debtor {i}", f"{i} Main St", rnd.choice(DISTRICTS))
                               for i in range(n)]):
            Account.insert_many(chunk, fields=[Account.number, Account.name, Account.address,
                                               Account.district]).execute()
        ids = [a for (a,) in Account.select(Account.id).order_by(Account.id).tuples()]
        for chunk in _batches([(a, 0, f"+38050{a:07d}", f"+38050{a:07d}") for a in ids]):
            Phone.insert_many(chunk, fields=[Phone.account, Phone.position, Phone.raw, Phone.e164]).execute()
        for chunk in _batches([(a, DAY - timedelta(days=3), Decimal(rnd.randint(100, 5000))) for a in ids]):
            Balance.insert_many(chunk, fields=[Balance.account, Balance.as_of, Balance.amount]).execute()
        camp = Campaign.create(day=DAY, status="done", eligible_count=n)
        for chunk in _batches([(camp.id, a, "done") for a in ids]):
            QueueEntry.insert_many(chunk, fields=[QueueEntry.campaign, QueueEntry.account,
                                                  QueueEntry.state]).execute()
        start = datetime(2026, 11, 23, 16, 0)
        attempts, callbacks, payments = [], [], []
        for a in ids:
            for _ in range(rnd.choice((1, 1, 2, 2, 3))):
                outcome = rnd.choice(OUTCOMES)
                at = start + timedelta(seconds=rnd.randint(0, 3 * 3600))
                u = str(uuid.UUID(int=rnd.getrandbits(128)))
                attempts.append((u, camp.id, a, f"ACC{a - 1:07d}", f"+38050{a:07d}", "ended", outcome, at,
                                 at + timedelta(seconds=8) if outcome in ANSWERED else None,
                                 outcome in ("heard", "pay_now", "callback", "already_paid"),
                                 {"pay_now": "1", "callback": "2"}.get(outcome, "")))
                if outcome == "callback":
                    callbacks.append((a, f"+38050{a:07d}", at))
            if rnd.random() < 0.2:
                payments.append((a, f"P{a}", Decimal(rnd.randint(50, 3000)), DAY + timedelta(days=rnd.randint(0, 9))))
        for chunk in _batches(attempts):
            Attempt.insert_many(chunk, fields=[Attempt.uuid, Attempt.campaign, Attempt.account, Attempt.accounts,
                                               Attempt.e164, Attempt.state, Attempt.outcome, Attempt.created_at,
                                               Attempt.answered_at, Attempt.heard, Attempt.digits]).execute()
        for chunk in _batches(callbacks):
            CallbackRequest.insert_many(chunk, fields=[CallbackRequest.account, CallbackRequest.e164,
                                                       CallbackRequest.created_at]).execute()
        for chunk in _batches(payments):
            Payment.insert_many(chunk, fields=[Payment.account, Payment.reference, Payment.amount,
                                               Payment.paid_on]).execute()
    print(f"generated {n} accounts, {len(attempts)} calls, {len(callbacks)} callbacks, {len(payments)} payments")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=100_000)
    ap.add_argument("--keep", metavar="DIR", help="keep the database and outputs in DIR")
    ap.add_argument("--reuse", action="store_true", help="time again on the database already in --keep DIR")
    args = ap.parse_args()
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-report-"))
    folder.mkdir(parents=True, exist_ok=True)
    db_path = folder / "bench.sqlite3"
    reuse = args.reuse and db_path.exists()
    if not reuse:
        db_path.unlink(missing_ok=True)
    cfg = parse_config({"database": {"url": f"sqlite:///{db_path}"}, "report": {"output_dir": str(folder)}},
                       base_dir=folder, env={})
    connect(cfg.database.url, cfg.base_dir)
    if not reuse:
        t0 = time.perf_counter()
        generate(args.accounts)
        print(f"generation: {time.perf_counter() - t0:.1f} s")

    from ivr.admin.status import snapshot
    from ivr.report.csvout import write_callback_lists, write_report_csv
    from ivr.report.data import build_report, callback_rows
    from ivr.report.export import write_results
    from ivr.report.html import write_html

    def timed(label: str, fn):
        t, cpu = time.perf_counter(), time.process_time()
        out = fn()
        print(f"{label:<28} {time.perf_counter() - t:6.2f} s wall {time.process_time() - cpu:6.2f} s cpu")
        return out

    data = timed("build_report (queries)", lambda: build_report(cfg, DAY))
    html = timed("HTML render + charts", lambda: write_html(data, folder / "report.html"))
    timed("report CSV", lambda: write_report_csv(data, folder / "report.csv"))
    timed("export results CSV", lambda: write_results(data, folder / "results.csv"))
    rows = timed("callback_rows", lambda: callback_rows(cfg, DAY))
    timed("callback lists CSV", lambda: write_callback_lists(rows, folder / "callbacks"))
    timed("status snapshot", lambda: snapshot(cfg, datetime(2026, 11, 23, 19, 0, tzinfo=UTC)))
    print(f"HTML size: {html.stat().st_size / 1e6:.1f} MB; people {len(data.people)}, calls {data.totals.attempts}; "
          f"outputs in {folder}")


if __name__ == "__main__":
    main()
