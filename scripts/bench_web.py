"""Time every page of the staff console on a generated ledger (the issue's target: 1,000,000 accounts and
2,000,000 calls, every page under 300 ms).

    .venv/bin/python scripts/bench_web.py [--accounts 1000000] [--calls-per-account 2] [--repeat 5] [--keep DIR]
                                          [--postgres]

Builds the ledger by bulk SQL (scripts/bench_ledger.py; SQLite by default, `--postgres` in a throwaway cluster
as the tests start one), adds a live dialer heartbeat and console users, then runs what the night runs before
anyone opens the console (`ivr eligible --store`, `ivr report`: timed apart), and requests each page through
Flask's test client (the whole application: session, roles, templates; no network), as `ivr web` serves it
(long builds in the background). Per page: the first request, then the median and worst of `--repeat` more.
Then the same after a burst of changes (payments, do-not-call entries, call results): the lists judge the changed
accounts again in the request. Prints a table; exits 1 when a page's first view or median is over --budget ms.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ivr.config import parse_config
from ivr.ledger.db import connect

HERE = Path(__file__).parent


def _module(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def _database(args: argparse.Namespace, folder: Path) -> tuple[str, bool, object]:
    """(database url, whether it must be built, the PostgreSQL cluster to stop or None)."""
    if not args.postgres:
        path = folder / "ivr.sqlite3"
        return f"sqlite:///{path}", not path.exists(), None
    sys.path.insert(0, str(HERE.parent / "tests"))
    from pg_cluster import start_cluster
    cluster = start_cluster(str(folder))
    return cluster.create_database(empty=True), True, cluster


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--accounts", type=int, default=1_000_000)
    ap.add_argument("--calls-per-account", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--budget", type=float, default=300.0, help="ms a page may take (default 300)")
    ap.add_argument("--keep", metavar="DIR", help="build (or reuse, SQLite) the ledger in DIR, not a temp folder")
    ap.add_argument("--postgres", action="store_true", help="on PostgreSQL (a throwaway cluster in DIR)")
    args = ap.parse_args()
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-web-"))
    folder.mkdir(parents=True, exist_ok=True)
    url, fresh, cluster = _database(args, folder)
    try:
        return _run(args, url, fresh, folder)
    finally:
        if cluster is not None:
            cluster.stop()


def _run(args: argparse.Namespace, url: str, fresh: bool, folder: Path) -> int:
    cfg = parse_config({"database": {"url": url}}, base_dir=folder, env={})
    db = connect(cfg.database.url, cfg.base_dir)
    ledger = _module("bench_ledger", HERE / "bench_ledger.py")
    from ivr.admin import users
    from ivr.ledger import verdicts
    from ivr.ledger.models import Account, Attempt, DialerNode
    from ivr.report import stored
    day = ledger.DAY
    if fresh:
        t0 = time.perf_counter()
        ledger.build(db, args.accounts, args.calls_per_account)
        print(f"ledger built in {time.perf_counter() - t0:.1f} s: {Account.select().count()} accounts, "
              f"{Attempt.select().count()} calls ({folder})")
    from ivr.ledger.models import WebUser
    if not WebUser.select().where(WebUser.name == "anna").exists():
        for name, role in (("anna", "admin"), ("olga", "operator")):
            users.add_user(name, role, "bench password 1", "bench")
    now = datetime.now(UTC).replace(tzinfo=None)
    if not DialerNode.update(heartbeat_at=now).execute():
        DialerNode.create(name="bench", heartbeat_at=now, esl_state="connected")
    # the night's jobs: `ivr eligible --store` (after the imports) and `ivr report` (the morning report)
    t = _timed(lambda: verdicts.ensure(cfg, day))
    print(f"ivr eligible --store: {t / 1000:.1f} s")
    if stored.stored(day) is None or stored.stored(day).stale:
        t = _timed(lambda: stored.build(cfg, day))
        print(f"morning report built and stored: {t / 1000:.1f} s")

    from ivr.web.app import create_app
    app = create_app(cfg, "b" * 64)
    app.config["WTF_CSRF_ENABLED"] = False  # logging in by a plain post: the timings are of the pages
    app.config["IVR_OFFLOAD"] = True  # as `ivr web` serves it
    from ivr.web.server import warm_up
    warm_up(app, cfg)  # as `ivr web` starts
    client = app.test_client()
    assert client.post("/login", data={"name": "anna", "password": "bench password 1"}).status_code == 302
    last = Account.select().order_by(Account.id.desc()).first()
    d = day.isoformat()
    pages = ["/tonight", "/tonight/panel", "/controls", "/callbacks", "/callbacks?district=North", "/audit",
             f"/eligible?day={d}", f"/eligible?day={d}&page=9000", f"/eligible?day={d}&district=North",
             f"/eligible?day={d}&list=excluded", f"/eligible?day={d}&list=excluded&reason=do-not-call",
             f"/eligible?day={d}&min=4000&max=4100",
             f"/reports?day={d}", f"/reports?day={d}&page=7", f"/reports?day={d}&page=15000",
             f"/reports?day={d}&q=debtor 4242", "/accounts?by=name&q=Debtor 4242",
             f"/accounts?by=phone&q=%2B38050{last.id:07d}", f"/accounts/{last.number}", "/import", "/messages",
             "/users"]
    slow: list[str] = []

    def measure(title: str, urls: list[str], before=None) -> None:
        print(f"\n{title}\n{'page':60} {'first':>8} {'median':>8} {'worst':>8}  (ms)")
        for page in urls:
            if before is not None:
                before()
            times = []
            for _ in range(args.repeat + 1):
                t0 = time.perf_counter()
                resp = client.get(page)
                times.append((time.perf_counter() - t0) * 1000)
                assert resp.status_code in (200, 302), (page, resp.status_code)
                html = resp.get_data(as_text=True)
                assert 'id="preparing"' not in html and 'id="stale"' not in html, f"{page}: not up to date"
            first, rest = times[0], times[1:]
            med = statistics.median(rest)
            print(f"{page[:60]:60} {first:8.0f} {med:8.0f} {max(rest):8.0f}")
            if max(first, med) > args.budget:
                slow.append(page)

    measure("pages (after the night's jobs)", pages)
    from ivr.admin.status import snapshot
    times = [_timed(lambda: snapshot(cfg)) for _ in range(args.repeat)]
    print(f"{'ivr status snapshot alone':60} {'':8} {statistics.median(times):8.0f} {max(times):8.0f}")

    # a burst of changes between two views: payments, do-not-call entries, "already paid" on calls
    import random

    from ivr.ledger import dnc
    from ivr.ledger.models import Payment
    stamp = int(time.time())
    rnd = random.Random(stamp)  # other accounts on each run of the script over a kept ledger

    made: list[tuple[list[int], list, list[tuple[int, object]]]] = []  # to undo: payments, entries, claims

    def changes() -> None:
        ids = rnd.sample(range(1, last.id + 1), 20)
        with db.atomic():
            pays = [Payment.create(account=i, reference=f"BENCH-{stamp}-{i}", amount="5000", paid_on=day).id
                    for i in ids[:10]]
            entries = [dnc.add(cfg, f"ACC{i:07d}", "bench", "bench", kind="account") for i in ids[10:15]
                       if dnc.active_entry(dnc.resolve(cfg, f"ACC{i:07d}", "account")) is None]
            claims = list(Account.select(Account.id, Account.claimed_paid_at).where(Account.id.in_(ids[15:]))
                          .tuples())
            Account.update(claimed_paid_at=datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=1)).where(
                Account.id.in_(ids[15:])).execute()
        made.append((pays, entries, claims))

    try:
        measure("Who will be called after 20 accounts changed (payments, do-not-call, already paid)",
                [f"/eligible?day={d}", f"/eligible?day={d}&list=excluded"], before=changes)
    finally:  # the ledger as it was (a kept ledger's stored report stays up to date for the next run)
        from ivr.ledger.models import DncEntry
        with db.atomic():
            for pays, entries, claims in made:
                Payment.delete().where(Payment.id.in_(pays)).execute()
                DncEntry.delete().where(DncEntry.id.in_([e.id for e in entries])).execute()
                for acc_id, claimed in claims:
                    Account.update(claimed_paid_at=claimed).where(Account.id == acc_id).execute()
    print("\npages over " f"{args.budget:.0f} ms (first or median): " + (", ".join(slow) if slow else "none"))
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main())
