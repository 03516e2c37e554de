#!/usr/bin/env python3
"""Benchmark: the campaign queue on 100,000 entries — start_campaign, next_candidates + claim, record_result.

Builds a fresh SQLite ledger (accounts, one number each, a balance), starts the campaign (eligibility refresh and
queue build), keeps `--in-flight` calls in flight like a busy dialer (Attempt rows), then times next_candidates
(which claims what it returns) one call at a time and in batches, and record_result after each call.
Usage: .venv/bin/python scripts/bench_queue.py [--accounts N] [--calls N] [--batch N] [--in-flight N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ivr.campaign import queue  # noqa: E402
from ivr.clock import ManualClock  # noqa: E402
from ivr.config import parse_config  # noqa: E402
from ivr.ledger import eligibility  # noqa: E402
from ivr.ledger.db import connect  # noqa: E402
from ivr.ledger.models import Account, Attempt, Balance, Phone, QueueEntry, database  # noqa: E402

DAY = date(2026, 11, 23)
OPEN = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)  # 18:00 in Kyiv


def build(n: int) -> None:
    chunk = 2000
    with database.atomic():
        for start in range(0, n, chunk):
            ids = range(start, min(n, start + chunk))
            Account.insert_many([{"number": f"A{i:07d}", "name": f"Debtor {i}"} for i in ids]).execute()
        acc_ids = [a for (a,) in Account.select(Account.id).tuples()]
        for start in range(0, n, chunk):
            part = acc_ids[start:start + chunk]
            Phone.insert_many([{"account": a, "position": 0, "raw": f"+38050{a:07d}", "e164": f"+38050{a:07d}"}
                               for a in part]).execute()
            Balance.insert_many([{"account": a, "as_of": date(2026, 11, 20), "amount": "500.00", "currency": "UAH"}
                                 for a in part]).execute()


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p * len(s)))]


def report(name: str, secs: list[float], per: int = 1) -> None:
    ms = [s * 1000 for s in secs]
    print(f"{name:<44} n={len(ms):>5}  mean={statistics.mean(ms):7.2f} ms  p50={pct(ms, .5):7.2f} ms  "
          f"p99={pct(ms, .99):7.2f} ms  per call={statistics.mean(ms) / per:6.2f} ms")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=100_000)
    ap.add_argument("--calls", type=int, default=1000, help="single next_candidates calls to time")
    ap.add_argument("--batch", type=int, default=20, help="limit for the batched runs")
    ap.add_argument("--in-flight", type=int, default=500, help="Attempt rows kept in flight meanwhile")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = parse_config({"database": {"url": f"sqlite:///{tmp}/bench.sqlite3"}}, base_dir=Path(tmp), env={})
        connect(cfg.database.url, cfg.base_dir)
        clock = ManualClock(OPEN)
        t = time.perf_counter()
        build(args.accounts)
        print(f"ledger of {args.accounts} accounts built in {time.perf_counter() - t:.1f} s")

        t = time.perf_counter()
        camp = queue.start_campaign(cfg, DAY, clock)
        print(f"start_campaign: {time.perf_counter() - t:.2f} s, eligible={camp.eligible_count}, "
              f"entries={QueueEntry.select().count()}")

        # a busy evening: calls in flight on the trunk (the claim re-checks them)
        held = queue.next_candidates(camp, clock, args.in_flight)
        Attempt.insert_many([{"uuid": str(uuid.uuid4()), "campaign": camp.id, "account": c.account.id,
                              "e164": c.e164, "state": "answered"} for c in held]).execute()
        busy_acc = {c.account.id for c in held}
        busy_num = {c.e164 for c in held}

        single, batched, results = [], [], []
        cpu0 = time.process_time()
        n_single = 0
        for _ in range(args.calls):
            t = time.perf_counter()
            got = queue.next_candidates(camp, clock, 1, busy_acc, busy_num)
            single.append(time.perf_counter() - t)
            n_single += len(got)
            for c in got:
                t = time.perf_counter()
                queue.record_result(c.entry, "no_answer", "NO_ANSWER", clock)
                results.append(time.perf_counter() - t)
        cpu_single = time.process_time() - cpu0
        cpu0 = time.process_time()
        for _ in range(max(1, args.calls // args.batch)):
            t = time.perf_counter()
            got = queue.next_candidates(camp, clock, args.batch, busy_acc, busy_num)
            batched.append(time.perf_counter() - t)
            assert len(got) == args.batch
        cpu_batched = time.process_time() - cpu0
        print(f"entries waiting: {QueueEntry.select().where(QueueEntry.state == 'waiting').count()}, "
              f"in flight: {len(held)}")
        report("next_candidates(limit=1) incl. claim", single)
        report(f"next_candidates(limit={args.batch}) incl. claim", batched, args.batch)
        report("record_result(no_answer)", results)
        print(f"CPU per candidate: {cpu_single / n_single * 1000:.2f} ms one at a time (with record_result), "
              f"{cpu_batched / (len(batched) * args.batch) * 1000:.2f} ms in batches of {args.batch}")
        rate = 1000 / (statistics.mean(batched) * 1000 / args.batch)
        print(f"=> about {rate:.0f} candidates/s in batches of {args.batch} on one core")
        sample = list(Account.select().limit(500))
        t = time.process_time()
        for a in sample:
            eligibility.check_account(cfg, a, DAY)
        share = (time.process_time() - t) / len(sample) * 1000
        print(f"   of which eligibility.check_account (the re-check before dialing): {share:.2f} ms CPU per candidate")
        plan = database.obj.execute_sql(
            "EXPLAIN QUERY PLAN SELECT id FROM queue_entry WHERE campaign_id=? AND state='waiting' "
            "AND not_before<=? ORDER BY priority, not_before, id LIMIT 40", (camp.id, OPEN.replace(tzinfo=None)))
        print("plan:", " | ".join(r[-1] for r in plan.fetchall()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
