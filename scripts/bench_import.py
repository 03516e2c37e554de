#!/usr/bin/env python3
"""Benchmark: import a generated 1,000,000-row accounts file into a fresh SQLite database.

Prints rows/s, seconds and peak memory (ru_maxrss, so measuring costs nothing). The target is under 60 s with
flat memory. Usage: .venv/bin/python scripts/bench_import.py [--rows N] [--keep DIR] [--reimport]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ivr.config import parse_config  # noqa: E402
from ivr.ledger import eligibility, importer  # noqa: E402
from ivr.ledger.db import connect  # noqa: E402
from ivr.ledger.sample import write_sample  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the parsing workers): a figure that does not
    depend on what else the machine is doing, unlike the wall-clock seconds."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        u = resource.getrusage(who)
        total += u.ru_utime + u.ru_stime
    return total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="accounts in the generated file")
    ap.add_argument("--keep", metavar="DIR", help="work in DIR instead of a temporary folder (kept afterwards)")
    ap.add_argument("--reimport", action="store_true", help="also time a second import of the same file")
    ap.add_argument("--progress", action="store_true", help="show the progress bar")
    ap.add_argument("--workers", type=int, default=None, help="parsing processes (default: automatic)")
    ap.add_argument("--eligibility", action="store_true",
                    help="also import payments and time eligibility.evaluate over every account")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.keep or tmp)
        work.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        files = write_sample(work, accounts=args.rows, seed=7, day=date(2026, 11, 23),
                             payments=args.eligibility)
        size_mb = files.accounts.stat().st_size / 1e6
        print(f"generated {args.rows} rows ({size_mb:.0f} MB) in {time.perf_counter() - t0:.1f} s; "
              f"peak RSS so far {peak_rss_mb():.0f} MB")
        db_path = work / "bench.sqlite3"
        for suffix in ("", "-wal", "-shm"):
            Path(str(db_path) + suffix).unlink(missing_ok=True)
        cfg = parse_config({"database": {"url": f"sqlite:///{db_path}"},
                            "import": {"rejects_dir": str(work / "rejects")}}, base_dir=work, env={})
        db = connect(cfg.database.url, cfg.base_dir)
        runs = ["first import"] + (["re-import"] if args.reimport else [])
        for label in runs:
            t0, c0 = time.perf_counter(), cpu_seconds()
            report = importer.import_accounts(cfg, files.accounts, progress=args.progress,
                                              today=date(2026, 11, 23), workers=args.workers)
            secs, cpu = time.perf_counter() - t0, cpu_seconds() - c0
            print(f"{label}: {report.rows} rows in {secs:.1f} s = {report.rows / secs:,.0f} rows/s "
                  f"(CPU {cpu:.1f} s; load average {os.getloadavg()[0]:.1f}); "
                  f"{report.loaded} new, {report.updated} updated, {report.unchanged} unchanged, "
                  f"{len(report.rejected)} rejected; peak RSS {peak_rss_mb():.0f} MB")
        if args.eligibility:
            report = importer.import_payments(cfg, files.payments, progress=False)
            print(f"payments: {report.summary()}")
            t0 = time.perf_counter()
            verdicts = eligibility.evaluate(cfg, date(2026, 11, 23))
            secs = time.perf_counter() - t0
            print(f"eligibility.evaluate: {len(verdicts)} accounts in {secs:.2f} s, "
                  f"{sum(v.eligible for v in verdicts)} eligible; peak RSS {peak_rss_mb():.0f} MB")
        db.close()
        if not args.keep:
            print("(temporary files removed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
