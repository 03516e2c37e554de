#!/usr/bin/env python3
"""Benchmark: a whole campaign of 10,000 accounts through the real dialer against `ivr sim` in its own process.

Three processes: the simulator (`ivr sim`, sharing one ScaledClock through --start/--real-start/--scale), the
controller (this script with --role controller: the real Dialer, queue, call flow and ESL client; messages are
silent WAVs so TTS does not count), and this orchestrator, which prepares the database, watches the channels
FreeSWITCH-side (its own event-socket connection: CHANNEL_CREATE / CHANNEL_HANGUP_COMPLETE) and reports:

- sustained new calls per (simulated) second: attempts started between the 10th and 90th percentile start time,
  divided by that span; peak calls per second in any one second;
- peak concurrent calls, seen by the simulator (channels created and not yet hung up) and by the dialer;
- controller CPU seconds per 1,000 calls (resource.getrusage of the controller process: user + system);
- cap violations: moments the simulator had more live channels than the cap (must be 0);
- channel utilisation (live channels on average over the cap, from the simulator's events), SQL statements and
  transactions per call (counted in the controller), the controller's memory at the start, peak and after the
  calls ended.

It exits non-zero with a `BENCH FAILED: ...` line when a call flow failed, an originate could not be sent, an
attempt never finished, the cap was exceeded, or pay-now / callback outcomes fall below 80 % of the debtors of the
script's mix who press for them (keys lost by a flow too slow to listen). `--accounts` may be any size (inserts
are chunked).

Targets for one controller on a 2-core machine: 1,000 concurrent calls, 100 new calls/s sustained, 0 violations.
Call lengths are shortened (message 5 s, prompts 1 s, menu timeout 2 s, originate timeout 10 s) so the 1,000
cap and 100 calls/s can both bind at once (Little's law: 1,000 channels / ~12 s average call ≈ 85 calls/s).

    .venv/bin/python scripts/bench_campaign.py                      # 10,000 accounts, scale 1
    .venv/bin/python scripts/bench_campaign.py --accounts 3000 --scale 2 --profile
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from sim_rig import DAY, ROOT, START

from ivr.speech.silent import SilentSpeech

sys.path.insert(0, str(ROOT))




def config_dict(work: Path, args: argparse.Namespace, port: int = 8021) -> dict:
    return {
        "database": {"url": args.db_url or f"sqlite:///{work / 'bench.sqlite3'}"},
        "freeswitch": {"port": port, "outbound_bind_port": 8084, "command_timeout": 30.0},
        "dialing": {"originate_timeout": 10},
        "pacing": {"channels": args.channels, "cps": args.cps},
        "callflow": {"menu_timeout_ms": 2000, "digit_timeout_ms": 1000, "menu_rounds": 1},
        # short retry delays so the evening's second round follows within a minute (the load stays up)
        "retry": {"max_attempts_per_day": 2, "early_hangup_pause_seconds": 30, "default_delay": 60,
                  "delays": {c: 60 for c in ("USER_BUSY", "NO_ANSWER", "NO_USER_RESPONSE", "SUBSCRIBER_ABSENT",
                                             "NORMAL_TEMPORARY_FAILURE", "RECOVERY_ON_TIMER_EXPIRE",
                                             "NETWORK_OUT_OF_ORDER", "NORMAL_CIRCUIT_CONGESTION",
                                             "SWITCH_CONGESTION", "DESTINATION_OUT_OF_ORDER",
                                             "ORIGINATOR_CANCEL", "MEDIA_TIMEOUT", "ALLOTTED_TIMEOUT")}},
        "speech": {"cache_dir": str(work / "cache")},
        "logging": {"level": "WARNING"},
    }




# --- the controller process ----------------------------------------------------------------------------------

def controller(args: argparse.Namespace) -> int:
    import gc

    import gevent

    from ivr.campaign.queue import start_campaign
    from ivr.clock import ScaledClock
    from ivr.config import parse_config
    from ivr.dialer.dialer import Dialer
    from ivr.ledger.db import connect
    from ivr.ledger.models import database
    from ivr.ledger.sqlcount import StatementCounter
    from ivr.logs import setup_logging
    from ivr.switch.esl import EslClient

    work = Path(args.workdir)
    cfg = parse_config(config_dict(work, args, args.port), base_dir=work, env={})
    setup_logging("WARNING", True, str(work / f"controller-{args.node}.log"))
    connect(cfg.database.url, work)
    clock = ScaledClock(start=START, scale=args.scale, real_start=args.real_start)
    camp = start_campaign(cfg, DAY, clock)
    esl = EslClient("127.0.0.1", args.port, cfg.freeswitch.password, 30.0, 2.0)
    esl.start()
    dialer = Dialer(cfg, esl, clock, SilentSpeech(work, args.message_s, args.prompt_s), node=args.node,
                    outbound_port=0)
    dialer.start()
    t0 = time.monotonic()
    rss0 = _rss_kb()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    prof = Sampler() if args.profile else None
    if prof is not None:
        prof.start()
    rss_waves = []
    # the peak while calls run, with the calls in progress then (ru_maxrss also counts the campaign's start)
    calls_peak = {"kb": rss0, "in_flight": 0}

    def sample_rss() -> None:
        while True:
            gevent.sleep(0.25)
            kb = _rss_kb()
            if kb > calls_peak["kb"]:
                calls_peak.update(kb=kb, in_flight=len(dialer.tracker.flights))

    sampler = gevent.spawn(sample_rss)
    with StatementCounter(database.obj) as counted:
        # --waves N: the evening in N parts in this one process (each ends when its calls have ended), so that
        # memory kept after one part can be seen to be reused by the next rather than to grow
        for wave in range(1, args.waves + 1):
            stop_at = START + timedelta(seconds=args.max_sim_seconds * wave / args.waves)
            g = gevent.spawn(dialer.run, camp, until=stop_at)
            g.join()
            if not g.successful():
                break
            gc.collect()
            rss_waves.append(_rss_kb())
    sampler.kill()
    if prof is not None:
        prof.stop()
        (work / f"controller_profile-{args.node}.json").write_text(json.dumps(prof.report()))
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    gc.collect()
    out = {
        "statements": counted.statements, "transactions": counted.transactions, "kinds": counted.top(12),
        "rss_start_kb": rss0, "rss_peak_kb": r1.ru_maxrss, "rss_end_kb": _rss_kb(), "rss_waves_kb": rss_waves,
        "rss_calls_peak_kb": calls_peak["kb"], "in_flight_at_rss_peak": calls_peak["in_flight"],
        "in_flight_end": len(dialer.tracker.flights),
        "setup_failures": dialer._outbound.setup_failures if dialer._outbound is not None else 0,
        "placed": dialer.stats.placed, "outcomes": dialer.stats.outcomes,
        "peak_in_flight": dialer.stats.peak_in_flight, "wall_s": time.monotonic() - t0,
        "cpu_s": (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime),
        "flow_errors": dialer.stats.flow_errors, "originate_errors": dialer.stats.originate_errors,
        "slowdowns": dialer.pacer.slowdowns, "ok": g.successful(),
        "objects_end": _object_census(),
    }
    dialer.stop()
    esl.stop()
    (work / f"controller-{args.node}.json").write_text(json.dumps(out))
    return 0


class Sampler:
    """A sampling CPU profiler: SIGPROF every `interval` CPU seconds records the interrupted Python stack.

    cProfile does not fit here: with greenlets a wall-clock profile charges every wait to whoever switched, and
    with a CPU-time timer its own overhead (a clock read per call) triples the controller's CPU. A sample costs
    a stack walk a few hundred times a second and lands in whichever greenlet was running."""

    def __init__(self, interval: float = 0.003) -> None:
        from collections import Counter

        self.interval = interval
        self.samples = 0
        self.own: Counter[str] = Counter()
        self.cum: Counter[str] = Counter()
        self.modules: Counter[str] = Counter()
        self.project: Counter[str] = Counter()  # the innermost project function (libraries charged to it)

    def start(self) -> None:
        import signal

        signal.signal(signal.SIGPROF, self._sample)
        signal.setitimer(signal.ITIMER_PROF, self.interval, self.interval)

    def stop(self) -> None:
        import signal

        signal.setitimer(signal.ITIMER_PROF, 0, 0)
        signal.signal(signal.SIGPROF, signal.SIG_DFL)

    def _sample(self, _sig: int, frame) -> None:
        self.samples += 1
        seen = set()
        first = own_project = True
        while frame is not None:
            code = frame.f_code
            key = f"{_short(code.co_filename)}:{code.co_firstlineno}({code.co_name})"
            if first:
                self.own[key] += 1
                self.modules[_short(code.co_filename)] += 1
                first = False
            if own_project and "/ivr/" in code.co_filename:
                self.project[key] += 1
                own_project = False
            if key not in seen:
                seen.add(key)
                self.cum[key] += 1
            frame = frame.f_back

    def report(self, n: int = 40) -> dict:
        return {"samples": self.samples, "interval": self.interval, "own": self.own.most_common(n),
                "cumulative": self.cum.most_common(n), "modules": self.modules.most_common(25),
                "project": self.project.most_common(n)}


def _short(path: str) -> str:
    for mark in ("/site-packages/", "/ivr/", "/lib/python3"):
        if mark in path:
            return (mark.strip("/") + "/" if mark == "/ivr/" else "") + path.split(mark, 1)[1]
    return path


def print_profile(data: dict) -> None:
    total = max(1, data["samples"])
    print(f"\ncontroller CPU profile: {data['samples']} samples, one per {data['interval'] * 1000:g} ms of CPU")
    for title, rows in (("where the CPU went (own time, by module)", data["modules"]),
                        ("own time, by function", data["own"]),
                        ("own time with the libraries it called, by project function", data.get("project", [])),
                        ("inclusive time, by function", data["cumulative"])):
        print(f"  {title}:")
        for name, count in rows:
            print(f"    {count / total * 100:5.1f} %  {name}")


# --- the orchestrator ----------------------------------------------------------------------------------------

def prepare(work: Path, args: argparse.Namespace) -> list[str]:
    from ivr.config import parse_config
    from ivr.ledger.db import connect
    from ivr.ledger.sample import seed_debtors

    cfg = parse_config(config_dict(work, args), base_dir=work, env={})
    db = connect(cfg.database.url, work)
    numbers = seed_debtors(args.accounts, DAY, prefix="BN")
    db.close()
    SilentSpeech.write_files(work, args.message_s, args.prompt_s)
    return numbers


def debtor_script(work: Path, numbers: list[str], message_s: float) -> tuple[Path, object]:
    """The realistic random mix, with early hang-ups and key presses placed for the short message."""
    from ivr.sim.script import Debtor, Script

    mix = Script.random_mix(numbers, seed=7, message_s=message_s + 2)
    mix.default = Debtor.listen()
    return mix.dump(work / "debtors.yaml"), mix


def _expected_keys(mix, called: set[str]) -> dict[str, int]:
    """How many debtors of the mix who were called press 1 (pay now) and 2 (callback) after the message: the
    outcomes the evening must show (each of them answers; a flow too slow to listen loses their keys). Only the
    numbers the evening reached count: a run stopped by --max-sim-seconds never called the others."""
    out = {"pay_now": 0, "callback": 0}
    reached = {n.lstrip("+") for n in called}  # the script keys numbers by their digits
    for number, d in mix.debtors.items():
        if number.lstrip("+") not in reached:
            continue
        digits = {str(p[0]) for p in d.presses} | ({d.menu_press} if d.menu_press else set())
        if "1" in digits:
            out["pay_now"] += 1
        elif "2" in digits:
            out["callback"] += 1
    return out


def start_sim(work: Path, args: argparse.Namespace, script: Path, real_start: float) -> tuple[subprocess.Popen, int]:
    from ivr.sim.process import start_sim_process

    return start_sim_process(work, scale=args.scale, start=START, real_start=real_start, script=script, cwd=ROOT)


def watch(port: int, cap: int, result: dict, latency: bool = False) -> None:
    """Count live channels from the simulator's own events; every moment above the cap is a violation.

    With `latency`, also how long an answered debtor waits for the call flow's first application (the answer's
    and the first non-socket CHANNEL_EXECUTE's timestamps, both the switch's clock): the outbound socket's set-up
    plus the flow's start, what a debtor hears as silence."""
    from ivr.switch.esl import EslClient

    live: set[str] = set()
    answered: dict[str, int] = {}
    result.update(peak=0, violations=0, created=0, area=0.0, first=None, last=None, waits_ms=[],
                  gone_before_flow=0)

    def on(ev) -> None:
        now = time.monotonic()
        if result["last"] is not None:  # channel-seconds (real time), for the utilisation of the cap
            result["area"] += len(live) * (now - result["last"])
        result["last"] = now
        if result["first"] is None:
            result["first"] = now
        if ev.name == "CHANNEL_CREATE":
            live.add(ev.uuid)
            result["created"] += 1
            result["peak"] = max(result["peak"], len(live))
            if len(live) > cap:
                result["violations"] += 1
        elif ev.name == "CHANNEL_HANGUP_COMPLETE":
            live.discard(ev.uuid)
            if answered.pop(ev.uuid, None) is not None:
                result["gone_before_flow"] += 1
        elif ev.name == "CHANNEL_ANSWER":
            answered[ev.uuid] = int(ev.get("Event-Date-Timestamp") or 0)
        elif ev.name == "CHANNEL_EXECUTE" and ev.get("Application") != "socket" and ev.uuid in answered:
            result["waits_ms"].append((int(ev.get("Event-Date-Timestamp") or 0) - answered.pop(ev.uuid)) / 1000)

    esl = EslClient("127.0.0.1", port, "ClueCon", 30.0, 2.0)
    esl.add_handler(on)
    esl.subscribe(["CHANNEL_CREATE", "CHANNEL_HANGUP_COMPLETE"]
                  + (["CHANNEL_ANSWER", "CHANNEL_EXECUTE"] if latency else []))
    esl.start()
    result["esl"] = esl


def rates(work: Path, args: argparse.Namespace) -> dict:
    from collections import Counter

    from ivr.config import parse_config
    from ivr.ledger.db import connect
    from ivr.ledger.models import Attempt

    cfg = parse_config(config_dict(work, args), base_dir=work, env={})
    connect(cfg.database.url, work)
    starts = sorted(a.created_at for a in Attempt.select(Attempt.created_at))
    called = {a.e164 for a in Attempt.select(Attempt.e164).distinct()}
    if len(starts) < 10:
        return {"attempts": len(starts), "called": called}
    t10, t90 = starts[len(starts) // 10], starts[len(starts) * 9 // 10]
    span = max(1e-9, (t90 - t10).total_seconds())
    per_second = Counter(s.replace(microsecond=0) for s in starts)
    unfinished = Attempt.select().where(Attempt.outcome == "").count()
    return {"attempts": len(starts), "sustained_cps": (len(starts) * 0.8) / span,
            "peak_cps_1s": max(per_second.values()), "busy_span_s": span, "unfinished": unfinished,
            "called": called}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--role", choices=("orchestrator", "controller"), default="orchestrator",
                    help=argparse.SUPPRESS)
    ap.add_argument("--accounts", type=int, default=10_000)
    ap.add_argument("--scale", type=float, default=1.0, help="clock scale shared by dialer and simulator")
    ap.add_argument("--channels", type=int, default=1000)
    ap.add_argument("--cps", type=float, default=100.0)
    ap.add_argument("--message-s", type=float, default=5.0)
    ap.add_argument("--prompt-s", type=float, default=1.0)
    ap.add_argument("--max-sim-seconds", type=float, default=3 * 3600, help="stop the campaign after this")
    ap.add_argument("--latency", action="store_true",
                    help="also measure how long answered debtors wait for the flow's first application (more "
                         "events from the simulator: keep it off for throughput figures)")
    ap.add_argument("--waves", type=int, default=1,
                    help="run the evening in this many parts in one controller process and print its memory "
                         "after each (kept memory must be reused, not grow)")
    ap.add_argument("--profile", action="store_true", help="sample the controller's CPU (SIGPROF) and print where "
                    "it went")
    ap.add_argument("--nodes", type=int, default=1, help="dialer processes sharing the database and the cap "
                    "(more than one needs PostgreSQL: --pg or --db-url)")
    ap.add_argument("--pg", action="store_true", help="a throwaway PostgreSQL cluster (tests/pg_cluster.py) instead "
                    "of SQLite")
    ap.add_argument("--db-url", default="", help="an existing, empty database instead of SQLite in the work folder")
    ap.add_argument("--node", default="bench-1", help=argparse.SUPPRESS)
    ap.add_argument("--workdir", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--real-start", type=float, default=0.0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.role == "controller":
        return controller(args)
    if args.nodes > 1 and not (args.pg or args.db_url.startswith("postgres")):
        ap.error("--nodes above 1 needs PostgreSQL (--pg or --db-url postgresql://…): SQLite is one machine's")
    cluster = None
    if args.pg and not args.db_url:
        sys.path.insert(0, str(ROOT / "tests"))
        from pg_cluster import start_cluster

        cluster = start_cluster()
        args.db_url = cluster.create_database(empty=True)
    try:
        return orchestrate(args)
    finally:
        if cluster is not None:
            cluster.stop()


def orchestrate(args: argparse.Namespace) -> int:
    import gevent

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_campaign_"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"preparing {args.accounts} accounts in {work} ({_shown_db(args)})", flush=True)
    numbers = prepare(work, args)
    script, mix = debtor_script(work, numbers, args.message_s)
    real_start = time.time() + 3.0
    sim, port = start_sim(work, args, script, real_start)
    watched: dict = {}
    watch(port, args.channels, watched, latency=args.latency)
    nodes = [f"bench-{i + 1}" for i in range(args.nodes)]
    ctls = []
    print(f"simulator on port {port}; {len(nodes)} controller(s) starting on {_shown_db(args)} (scale "
          f"x{args.scale:g}, cap {args.channels}, {args.cps:g} calls/s)", flush=True)
    t0 = time.monotonic()
    for node in nodes:
        ctl_cmd = [sys.executable, __file__, "--role", "controller", "--workdir", str(work), "--port", str(port),
                   "--real-start", repr(real_start), "--scale", str(args.scale), "--channels", str(args.channels),
                   "--cps", str(args.cps), "--message-s", str(args.message_s), "--prompt-s", str(args.prompt_s),
                   "--max-sim-seconds", str(args.max_sim_seconds), "--node", node, "--waves", str(args.waves),
                   *(["--db-url", args.db_url] if args.db_url else []), *(["--profile"] if args.profile else [])]
        ctls.append(subprocess.Popen(ctl_cmd, cwd=ROOT))
    sim_cpu0 = _proc_cpu(sim.pid)
    while any(c.poll() is None for c in ctls):
        gevent.sleep(1.0)
        elapsed = time.monotonic() - t0
        if int(elapsed) % 10 == 0:
            print(f"  {elapsed:5.0f} s: sim channels created {watched.get('created', 0)}, "
                  f"peak live {watched.get('peak', 0)}, violations {watched.get('violations', 0)}", flush=True)
    sim_cpu = _proc_cpu(sim.pid) - sim_cpu0
    watched["esl"].stop()
    sim.terminate()
    sim.wait(timeout=10)
    res = _merge([json.loads((work / f"controller-{n}.json").read_text()) for n in nodes])
    r = rates(work, args)
    per_k = res["cpu_s"] / max(1, res["placed"]) * 1000
    print("\nresults")
    expected = _expected_keys(mix, r.pop("called", set()))
    print(f"  the script's mix: of the debtors called, {expected['pay_now']} press 1 (pay now), "
          f"{expected['callback']} press 2 (callback)")
    print(f"  accounts {args.accounts}, attempts {r.get('attempts')}, unfinished {r.get('unfinished')}, "
          f"controller ok {res['ok']}, flow errors {res['flow_errors']}, outbound set-up failures "
          f"{res['setup_failures']}, originate errors {res['originate_errors']}")
    print(f"  outcomes {json.dumps(res['outcomes'], sort_keys=True)}")
    print(f"  sustained new calls/s (sim): {r.get('sustained_cps', 0):.1f}   peak in one second: "
          f"{r.get('peak_cps_1s')}   busy span {r.get('busy_span_s', 0):.0f} s (sim)")
    shown = "dialer" if args.nodes == 1 else "sum of the nodes' own peaks"
    print(f"  peak concurrent: simulator {watched['peak']}, {shown} {res['peak_in_flight']} (cap {args.channels})")
    print(f"  cap violations: {watched['violations']}")
    if args.latency:
        waits = sorted(watched["waits_ms"])
        if waits:
            def pct(q: float) -> float:
                return waits[min(len(waits) - 1, int(q * len(waits)))]
            print(f"  answer to the flow's first application: p50 {pct(0.5):.0f} ms, p95 {pct(0.95):.0f} ms, "
                  f"p99 {pct(0.99):.0f} ms, max {waits[-1]:.0f} ms over {len(waits)} calls; "
                  f"{watched['gone_before_flow']} answered calls ended before it")
    span_real = max(1e-9, (watched["last"] or 0) - (watched["first"] or 0))
    util = watched["area"] / span_real / max(1, args.channels) * 100
    placed = max(1, res["placed"])
    print(f"  channel utilisation: {util:.0f} % of the cap on average while calls ran "
          f"({watched['area'] / span_real:.0f} channels of {args.channels})")
    print(f"  SQL: {res['statements'] / placed:.1f} statements and {res['transactions'] / placed:.2f} "
          f"transactions per call ({res['statements']} / {res['transactions']}); top: {res['kinds'][:6]}")
    print(f"  controller memory: RSS {res['rss_start_kb'] / 1024:.0f} MB at the start, peak "
          f"{res['rss_peak_kb'] / 1024:.0f} MB, {res['rss_end_kb'] / 1024:.0f} MB after the calls ended "
          f"({res['in_flight_end']} still tracked); most live objects then: {res.get('objects_end')}")
    if res.get("rss_calls_peak_kb"):
        grown = res["rss_calls_peak_kb"] - res["rss_start_kb"]
        print(f"  controller memory while calls ran: peak {res['rss_calls_peak_kb'] / 1024:.0f} MB with "
              f"{res['in_flight_at_rss_peak']} calls in progress (about "
              f"{grown / max(1, res['in_flight_at_rss_peak']):.0f} KB per call above the start)")
    if len(res.get("rss_waves_kb") or []) > 1:
        print("  controller memory after each wave: "
              + ", ".join(f"{kb / 1024:.0f} MB" for kb in res["rss_waves_kb"]))
    if "per_node" in res:
        print(f"  per node (calls placed, CPU s): {res['per_node']}")
    print(f"  controller CPU {res['cpu_s']:.1f} s over {res['wall_s']:.1f} s wall = {per_k:.2f} CPU s per 1,000 "
          f"calls ({res['cpu_s'] / max(1e-9, res['wall_s']) * 100:.0f} % of one core); simulator CPU "
          f"{sim_cpu:.1f} s; congestion slow-downs {res['slowdowns']}")
    if args.profile:
        for node in nodes:
            print(f"\n{node}:", end="")
            print_profile(json.loads((work / f"controller_profile-{node}.json").read_text()))
    failures = _failures(res, r, watched, expected)
    for f in failures:
        print(f"BENCH FAILED: {f}", flush=True)
    if not failures:
        print("bench ok: no flow failures, key outcomes as the script's mix, cap held")
    return 1 if failures else 0


def _merge(parts: list[dict]) -> dict:
    """The controllers' reports as one: counts and CPU summed, memory the largest, wall the longest."""
    if len(parts) == 1:
        return parts[0]
    from collections import Counter

    out: dict = {"ok": all(p["ok"] for p in parts), "kinds": [], "outcomes": {}}
    for key in ("statements", "transactions", "in_flight_end", "setup_failures", "placed", "flow_errors",
                "originate_errors", "slowdowns", "cpu_s", "peak_in_flight"):
        out[key] = sum(p[key] for p in parts)
    for key in ("rss_start_kb", "rss_peak_kb", "rss_end_kb", "wall_s"):
        out[key] = max(p[key] for p in parts)
    out["objects_end"] = parts[0].get("objects_end")
    kinds: Counter = Counter()
    outcomes: Counter = Counter()
    for p in parts:
        kinds.update(dict(p["kinds"]))
        outcomes.update(p["outcomes"])
    out["kinds"], out["outcomes"] = kinds.most_common(12), dict(outcomes)
    out["per_node"] = [{"placed": p["placed"], "cpu_s": round(p["cpu_s"], 1)} for p in parts]
    return out


def _shown_db(args: argparse.Namespace) -> str:
    if not args.db_url:
        return "SQLite"
    return "PostgreSQL" if args.db_url.startswith("postgres") else args.db_url.split(":", 1)[0]


def _failures(res: dict, r: dict, watched: dict, expected: dict[str, int]) -> list[str]:
    """What makes the run a failure, each in a line a person can act on."""
    out = []
    if not res["ok"]:
        out.append("the controller's dialer loop raised (see controller-NODE.log)")
    if res["flow_errors"]:
        out.append(f"{res['flow_errors']} call flows failed")
    if res["setup_failures"]:
        out.append(f"{res['setup_failures']} outbound sockets failed to set up (their calls got no flow)")
    if res["originate_errors"]:
        out.append(f"{res['originate_errors']} originates could not be sent")
    if r.get("unfinished"):
        out.append(f"{r['unfinished']} attempts never finished")
    if watched["violations"]:
        out.append(f"the cap was exceeded {watched['violations']} times")
    for key, want in expected.items():
        got = res["outcomes"].get(key, 0)
        if want >= 10 and got < 0.8 * want:  # keys lost: the flow did not listen in time
            out.append(f"{key} collapsed: {got} calls, the script's mix has {want} debtors who press for it")
    return out


def _object_census(n: int = 8) -> list[tuple[str, int]]:
    """The most numerous live Python objects by type (after the calls ended: what memory is still held by)."""
    import gc
    from collections import Counter

    return Counter(type(o).__name__ for o in gc.get_objects()).most_common(n)


def _rss_kb() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


if __name__ == "__main__":
    sys.exit(main())
