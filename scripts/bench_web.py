"""Time every page of the staff console on a generated ledger of N accounts (default 100,000; the issue's target
is 1,000,000 accounts and 2,000,000 calls, every page under 300 ms).

    .venv/bin/python scripts/bench_web.py [--accounts 100000] [--repeat 5] [--keep DIR]

Builds a throw-away SQLite ledger with scripts/bench_report.py's generator (one campaign, ~1.9 calls per account),
adds a live dialer heartbeat and console users, then requests each page through Flask's test client (the whole
application: session, roles, templates; no network) and prints the median and worst time per page. The first
request of a page is timed apart (the report page builds the morning report then; later pages reuse it).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from ivr.config import parse_config
from ivr.ledger.db import connect

HERE = Path(__file__).parent


def _generator():
    spec = importlib.util.spec_from_file_location("bench_report", HERE / "bench_report.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--accounts", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--keep", metavar="DIR", help="build (or reuse) the ledger in DIR instead of a temp folder")
    args = ap.parse_args()
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-web-"))
    folder.mkdir(parents=True, exist_ok=True)
    cfg = parse_config({"database": {"url": f"sqlite:///{folder / 'ivr.sqlite3'}"}}, base_dir=folder, env={})
    fresh = not (folder / "ivr.sqlite3").exists()
    connect(cfg.database.url, cfg.base_dir)
    gen = _generator()
    from ivr.admin import users
    from ivr.ledger.models import Account, Attempt, DialerNode
    if fresh:
        t0 = time.perf_counter()
        gen.generate(args.accounts)
        DialerNode.create(name="bench", heartbeat_at=datetime.now(UTC).replace(tzinfo=None), esl_state="connected")
        for name, role in (("anna", "admin"), ("olga", "operator")):
            users.add_user(name, role, "bench password 1", "bench")
        print(f"ledger built in {time.perf_counter() - t0:.1f} s: {Account.select().count()} accounts, "
              f"{Attempt.select().count()} calls ({folder})")
    DialerNode.update(heartbeat_at=datetime.now(UTC).replace(tzinfo=None)).execute()

    from ivr.web.app import create_app
    app = create_app(cfg, "b" * 64)
    app.config["WTF_CSRF_ENABLED"] = False  # logging in by a plain post: the timings are of the pages
    app.config["IVR_OFFLOAD"] = True  # as `ivr web` serves it
    client = app.test_client()
    assert client.post("/login", data={"name": "anna", "password": "bench password 1"}).status_code == 302
    acc = Account.select().order_by(Account.id.desc()).first()
    day = gen.DAY.isoformat()
    pages = ["/tonight", "/tonight/panel", "/controls", "/callbacks", "/callbacks?district=North", "/audit",
             f"/eligible?day={day}", f"/eligible?day={day}&district=North", f"/eligible?day={day}&list=excluded",
             f"/reports?day={day}", f"/reports?day={day}&page=7", f"/reports?day={day}&q=debtor 42",
             "/accounts?by=name&q=Debtor 4242", f"/accounts?by=phone&q=%2B38050{acc.id:07d}",
             f"/accounts/{acc.number}", "/import", "/messages", "/users"]
    print(f"{'page':55} {'first':>8} {'median':>8} {'worst':>8}  (ms)")
    slow = []
    for page in pages:
        times = []
        for _ in range(args.repeat + 1):
            t0 = time.perf_counter()
            resp = client.get(page)
            times.append((time.perf_counter() - t0) * 1000)
            assert resp.status_code in (200, 302), (page, resp.status_code)
        first, rest = times[0], times[1:]
        med = statistics.median(rest)
        print(f"{page[:55]:55} {first:8.0f} {med:8.0f} {max(rest):8.0f}")
        if med > 300:
            slow.append(page)
    # the Tonight page must cost the database no more than `ivr status`: its snapshot, timed alone
    from ivr.admin.status import snapshot
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        snapshot(cfg)
        times.append((time.perf_counter() - t0) * 1000)
    print(f"{'ivr status snapshot alone':55} {'':8} {statistics.median(times):8.0f} {max(times):8.0f}")
    print("pages over 300 ms (median): " + (", ".join(slow) if slow else "none"))


if __name__ == "__main__":
    main()
