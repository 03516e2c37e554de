#!/usr/bin/env python3
"""Soak: the demo's moving parts at full speed for a long while (default 10 minutes); memory, file descriptors
and greenlets must stay flat (issue 7). Outside CI; tests/test_faults_soak.py runs a short version.

One process, as `ivr demo` runs: sample accounts imported the normal way, the simulated FreeSWITCH with the
realistic random debtor mix, the real EslClient, Dialer, queue and call flow, one ScaledClock shared by the
dialer and the simulator. The calling window is the whole day (so the scaled evening does not run out); each
time the campaign's queue is exhausted every entry is put back to waiting and the same campaign runs again
(a "round"), so calls never stop and the long-lived objects (client, servers, tracker, caches) see tens of
thousands of calls. Messages are silent WAVs of fixed length (TTS is measured by bench_speech.py).

Sampled: RSS (/proc/self/status VmRSS) every --every real seconds; open file descriptors (/proc/self/fd) and
live gevent greenlets (gc) at every round boundary, when no call is in flight — those must be equal from round
to round. Printed: RSS at start (after the first round: caches and pools warmed up), middle and end, the
figures per round, calls placed. Exit code 1 if fds or greenlets grew from round to round, or RSS grew by more
than --rss-slack MB over the second half of the run (the first half warms caches and allocator arenas up).

    .venv/bin/python scripts/soak.py                      # 10 minutes
    .venv/bin/python scripts/soak.py --minutes 1 --accounts 300
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from ivr.speech.silent import SilentSpeech

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DAY = date(2026, 11, 24)  # a Tuesday, no holiday


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def live_greenlets() -> int:
    """gevent Greenlets alive (spawned work: readers, servers, calls). gevent's own thread-pool workers (used for
    name resolution; the pool grows and shrinks by itself) and the hub are not spawned work and not counted."""
    import gevent

    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, gevent.Greenlet) and not o.dead)


def type_counts() -> dict[str, int]:
    from collections import Counter

    gc.collect()
    return dict(Counter(type(o).__qualname__ for o in gc.get_objects()))


def greenlet_kinds() -> dict[str, int]:
    """Live greenlets by what they run (for --diag)."""
    from collections import Counter

    import greenlet

    gc.collect()
    out: Counter = Counter()
    for o in gc.get_objects():
        if isinstance(o, greenlet.greenlet) and not o.dead:
            fn = getattr(o, "_run", None) or getattr(o, "run", None)
            out[getattr(fn, "__qualname__", type(o).__name__)] += 1
    return dict(out)






def config(work: Path, args: argparse.Namespace):
    from ivr.config import parse_config

    return parse_config({
        "database": {"url": f"sqlite:///{work / 'soak.sqlite3'}"},
        "import": {"rejects_dir": str(work / "rejects")},
        "speech": {"cache_dir": str(work / "cache")},
        "report": {"output_dir": str(work / "reports")},
        "logging": {"level": "WARNING", "file": str(work / "soak.log")},
        "windows": {"weekday": ["00:00-24:00"], "weekend": ["00:00-24:00"], "holiday": ["00:00-24:00"]},
        "pacing": {"channels": args.channels, "cps": args.cps},
        "dialing": {"originate_timeout": 20},
        "callflow": {"menu_timeout_ms": 3000, "digit_timeout_ms": 1000, "menu_rounds": 1},
        "retry": {"max_attempts_per_day": 100, "max_attempts_per_campaign": 2, "early_hangup_pause_seconds": 30,
                  "default_delay": 60, "delays": {c: 60 for c in ("USER_BUSY", "NO_ANSWER", "NO_USER_RESPONSE",
                                                                   "ORIGINATOR_CANCEL")}},
    }, base_dir=work, env={})


def next_round(campaign, clock) -> int:
    """Every entry of the campaign back to waiting, as if the evening started again."""
    from ivr.ledger.models import Account, Phone, QueueEntry

    now = clock.now().astimezone(UTC).replace(tzinfo=None)
    # what the debtors said last round must not shrink the list round after round
    Account.update(claimed_paid_at=None).execute()
    Phone.update(valid=True, invalid_reason="", flagged_at=None).where(Phone.e164 != "").execute()
    return QueueEntry.update(state="waiting", priority=0, not_before=now, attempts=0, outcome="", reason="",
                             phone_index=0, updated_at=now).where(QueueEntry.campaign == campaign.id).execute()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0, help="real minutes to run (default 10)")
    ap.add_argument("--accounts", type=int, default=2000)
    ap.add_argument("--scale", type=float, default=100.0, help="clock scale (default 100)")
    ap.add_argument("--channels", type=int, default=100)
    ap.add_argument("--cps", type=float, default=10.0, help="new calls per simulated second")
    ap.add_argument("--message-s", type=float, default=10.0)
    ap.add_argument("--every", type=float, default=10.0, help="real seconds between RSS samples")
    ap.add_argument("--rss-slack", type=float, default=5.0,
                    help="allowed RSS growth in MB over the second half of the run (default 5)")
    ap.add_argument("--max-rounds", type=int, default=0, help="stop after this many rounds (0 = by time)")
    ap.add_argument("--sqlite-shrink", action="store_true", help="PRAGMA shrink_memory before each round's figures")
    ap.add_argument("--diag", action="store_true", help="print which object types grew, per round")
    ap.add_argument("--json", metavar="FILE", help="also write the figures to FILE")
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()

    import gevent

    from ivr.campaign.queue import start_campaign
    from ivr.clock import ScaledClock
    from ivr.dialer.dialer import Dialer
    from ivr.ledger.db import connect
    from ivr.ledger.importer import import_accounts, import_payments
    from ivr.ledger.models import Attempt, Phone
    from ivr.ledger.sample import write_sample
    from ivr.logs import setup_logging
    from ivr.sim.script import Script
    from ivr.sim.server import SimServer
    from ivr.sim.trunk import Trunk
    from ivr.switch.esl import EslClient

    work = Path(args.workdir or tempfile.mkdtemp(prefix="soak_"))
    work.mkdir(parents=True, exist_ok=True)
    cfg = config(work, args)
    setup_logging("WARNING", True, str(work / "soak.log"))
    db = connect(cfg.database.url, work)
    files = write_sample(work / "billing", accounts=args.accounts, seed=7, day=DAY)
    import_accounts(cfg, files.accounts, progress=False, today=DAY)
    import_payments(cfg, files.payments, progress=False)
    tz = ZoneInfo(cfg.locale.timezone)
    clock = ScaledClock(start=datetime(DAY.year, DAY.month, DAY.day, 0, 0, 5, tzinfo=tz).astimezone(UTC),
                        scale=args.scale)
    campaign = start_campaign(cfg, DAY, clock)
    numbers = sorted({p.e164 for p in Phone.select(Phone.e164).where((Phone.valid == True) & (Phone.e164 != ""))})  # noqa: E712
    script = Script.random_mix(numbers, seed=7, message_s=args.message_s + 2)
    sim = SimServer(clock=clock, script=script, trunk=Trunk(gateways={cfg.dialing.gateway})).start()
    cfg = cfg.replace(freeswitch=dataclasses.replace(cfg.freeswitch, host="127.0.0.1", port=sim.port,
                                                     outbound_bind_host="127.0.0.1",
                                                     outbound_advertise_host="127.0.0.1"))
    esl = EslClient("127.0.0.1", sim.port, cfg.freeswitch.password, cfg.freeswitch.command_timeout,
                    cfg.freeswitch.reconnect_max_delay)
    esl.start()
    SilentSpeech.write_files(work, args.message_s, 1.0)
    dialer = Dialer(cfg, esl, clock, SilentSpeech(work, args.message_s, 1.0), node="soak", outbound_port=0)
    dialer.start()
    print(f"soak: {campaign.eligible_count} eligible of {args.accounts} accounts, clock x{args.scale:g}, cap "
          f"{args.channels}, {args.cps:g} calls/s (simulated), {args.minutes:g} min; in {work}", flush=True)

    t0 = time.monotonic()
    end = t0 + args.minutes * 60
    samples: list[dict] = []
    rounds: list[dict] = []

    def sampler() -> None:
        while True:
            samples.append({"t": round(time.monotonic() - t0, 1), "rss_mb": round(rss_mb(), 1),
                            "fds": open_fds(), "in_flight": len(dialer.tracker.flights),
                            "sim_calls": len(sim.calls), "calls": dialer.stats.placed})
            gevent.sleep(args.every)

    sg = gevent.spawn(sampler)
    first_counts: dict[str, int] = {}
    snap0 = None
    if args.diag:
        tracemalloc.start(4)
    base_fds, base_greenlets = open_fds(), live_greenlets()
    try:
        while time.monotonic() < end and not (args.max_rounds and len(rounds) >= args.max_rounds):
            dialer.run(campaign, until=clock.now() + timedelta(seconds=(end - time.monotonic()) * args.scale))
            dialer.stopping = False  # run() ends a finished campaign; the next round uses the same dialer
            with gevent.Timeout(60, False):  # calls still ringing when `until` hit are let finish
                while dialer.tracker.flights or sim.calls:
                    gevent.sleep(0.05)
            # and let the sockets of the last calls close on both sides before counting descriptors
            outbound = dialer._outbound
            with gevent.Timeout(30, False):
                while sim.sessions or (outbound is not None and outbound.sessions):
                    gevent.sleep(0.02)
            if args.sqlite_shrink:  # tells SQLite's own caches apart from a leak: free them before measuring
                db.execute_sql("PRAGMA shrink_memory")
            sg_pause = {"round": len(rounds) + 1, "t": round(time.monotonic() - t0, 1), "calls": dialer.stats.placed,
                        "rss_mb": round(rss_mb(), 1), "fds": open_fds(), "greenlets": live_greenlets(),
                        "in_flight": len(dialer.tracker.flights), "sim_calls": len(sim.calls),
                        "inbound": len(sim.inbound), "sessions": len(sim.sessions)}
            rounds.append(sg_pause)
            if args.diag:
                print(f"    greenlets: {greenlet_kinds()}")
                counts = type_counts()
                if len(rounds) == 1:
                    first_counts = counts
                    snap0 = tracemalloc.take_snapshot()
                else:
                    # the simulator's memo of header lines is bounded and cleared now and then: not a leak
                    noise = [tracemalloc.Filter(False, "*/ivr/sim/wire.py"), tracemalloc.Filter(False, "*/ivr/sim/channel.py"),
                             tracemalloc.Filter(False, tracemalloc.__file__)]
                    top = tracemalloc.take_snapshot().filter_traces(noise).compare_to(
                        snap0.filter_traces(noise), "lineno")[:10]
                    print("    allocations grown since round 1:\n      " + "\n      ".join(str(t) for t in top))
                    grew = sorted(((counts[k] - first_counts.get(k, 0), k) for k in counts), reverse=True)[:8]
                    print("    objects grown since round 1: " + ", ".join(f"{k} +{n}" for n, k in grew if n > 0))
            print(f"  round {sg_pause['round']:3d} at {sg_pause['t']:6.1f} s: calls {sg_pause['calls']:6d}, RSS "
                  f"{sg_pause['rss_mb']:.1f} MB, fds {sg_pause['fds']}, greenlets {sg_pause['greenlets']}, "
                  f"in flight {sg_pause['in_flight']}", flush=True)
            next_round(campaign, clock)
    finally:
        sg.kill()
        dialer.stop()
        esl.stop()
        sim.stop()
    attempts = Attempt.select().count()
    unfinal = Attempt.select().where(Attempt.outcome == "").count()
    db.close()
    wall = time.monotonic() - t0
    first = rounds[0] if rounds else {}
    mid = samples[len(samples) // 2] if samples else {}
    last = rounds[-1] if rounds else {}
    growth = last.get("rss_mb", 0) - first.get("rss_mb", 0)
    # steady state: the first half warms up (SQLite page cache, memo tables, allocator arenas); the second half
    # must not grow
    half = next((r for r in rounds if r["t"] >= wall / 2), last)
    steady = last.get("rss_mb", 0) - half.get("rss_mb", 0)
    fd_grew = any(r["fds"] > first["fds"] for r in rounds[1:])
    gl_grew = any(r["greenlets"] > first["greenlets"] for r in rounds[1:])
    print("\nresults")
    print(f"  ran {wall / 60:.1f} min, {len(rounds)} rounds, {dialer.stats.placed} calls placed "
          f"({dialer.stats.placed / max(1e-9, wall):.1f}/s real), attempts in the ledger {attempts}, "
          f"not finalized {unfinal}, outcomes {json.dumps(dialer.stats.outcomes, sort_keys=True)}")
    print(f"  RSS: before the first call {samples[0]['rss_mb'] if samples else '?'} MB, end of round 1 "
          f"{first.get('rss_mb')} MB, middle sample {mid.get('rss_mb')} MB (t={mid.get('t')} s), "
          f"end {last.get('rss_mb')} MB; growth after round 1: {growth:+.1f} MB; over the second half (from round "
          f"{half.get('round')} at {half.get('t')} s): {steady:+.1f} MB")
    print(f"  RSS per round (MB): {[r['rss_mb'] for r in rounds]}")
    print(f"  fds: before {base_fds}, per round {[r['fds'] for r in rounds]}")
    print(f"  greenlets: before {base_greenlets}, per round {[r['greenlets'] for r in rounds]}")
    ok = bool(rounds) and not fd_grew and not gl_grew and steady <= args.rss_slack and unfinal == 0
    print(f"  verdict: {'FLAT' if ok else 'GREW / FAILED'}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rounds": rounds, "samples": samples, "calls": dialer.stats.placed,
                                               "attempts": attempts, "unfinalized": unfinal, "ok": ok,
                                               "outcomes": dialer.stats.outcomes, "flow_errors": dialer.stats.flow_errors,
                                               "base_fds": base_fds, "base_greenlets": base_greenlets}, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
