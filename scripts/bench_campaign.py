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
        "database": {"url": f"sqlite:///{work / 'bench.sqlite3'}"},
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
    setup_logging("WARNING", True, str(work / "controller.log"))
    connect(cfg.database.url, work)
    clock = ScaledClock(start=START, scale=args.scale, real_start=args.real_start)
    camp = start_campaign(cfg, DAY, clock)
    esl = EslClient("127.0.0.1", args.port, cfg.freeswitch.password, 30.0, 2.0)
    esl.start()
    dialer = Dialer(cfg, esl, clock, SilentSpeech(work, args.message_s, args.prompt_s), node="bench",
                    outbound_port=0)
    dialer.start()
    t0 = time.monotonic()
    rss0 = _rss_kb()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    stop_at = START + timedelta(seconds=args.max_sim_seconds)
    g = gevent.spawn(dialer.run, camp, until=stop_at)
    with StatementCounter(database.obj) as counted:
        g.join()
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    gc.collect()
    out = {
        "statements": counted.statements, "transactions": counted.transactions, "kinds": counted.top(12),
        "rss_start_kb": rss0, "rss_peak_kb": r1.ru_maxrss, "rss_end_kb": _rss_kb(),
        "in_flight_end": len(dialer.tracker.flights),
        "setup_failures": dialer._outbound.setup_failures if dialer._outbound is not None else 0,
        "placed": dialer.stats.placed, "outcomes": dialer.stats.outcomes,
        "peak_in_flight": dialer.stats.peak_in_flight, "wall_s": time.monotonic() - t0,
        "cpu_s": (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime),
        "flow_errors": dialer.stats.flow_errors, "originate_errors": dialer.stats.originate_errors,
        "slowdowns": dialer.pacer.slowdowns, "ok": g.successful(),
    }
    dialer.stop()
    esl.stop()
    (work / "controller.json").write_text(json.dumps(out))
    return 0


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


def debtor_script(work: Path, numbers: list[str], message_s: float) -> tuple[Path, dict[str, int]]:
    """The realistic random mix, with early hang-ups and key presses placed for the short message."""
    from ivr.sim.script import Debtor, Script

    mix = Script.random_mix(numbers, seed=7, message_s=message_s + 2)
    mix.default = Debtor.listen()
    return mix.dump(work / "debtors.yaml"), _expected_keys(mix)


def _expected_keys(mix) -> dict[str, int]:
    """How many debtors of the mix press 1 (pay now) and 2 (callback) after the message: the outcomes the
    evening must show (each of them answers; a flow too slow to listen loses their keys)."""
    out = {"pay_now": 0, "callback": 0}
    for d in mix.debtors.values():
        digits = {str(p[0]) for p in d.presses} | ({d.menu_press} if d.menu_press else set())
        if "1" in digits:
            out["pay_now"] += 1
        elif "2" in digits:
            out["callback"] += 1
    return out


def start_sim(work: Path, args: argparse.Namespace, script: Path, real_start: float) -> tuple[subprocess.Popen, int]:
    from ivr.sim.process import start_sim_process

    return start_sim_process(work, scale=args.scale, start=START, real_start=real_start, script=script, cwd=ROOT)


def watch(port: int, cap: int, result: dict) -> None:
    """Count live channels from the simulator's own events; every moment above the cap is a violation."""
    from ivr.switch.esl import EslClient

    live: set[str] = set()
    result.update(peak=0, violations=0, created=0, area=0.0, first=None, last=None)

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

    esl = EslClient("127.0.0.1", port, "ClueCon", 30.0, 2.0)
    esl.add_handler(on)
    esl.subscribe(["CHANNEL_CREATE", "CHANNEL_HANGUP_COMPLETE"])
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
    if len(starts) < 10:
        return {"attempts": len(starts)}
    t10, t90 = starts[len(starts) // 10], starts[len(starts) * 9 // 10]
    span = max(1e-9, (t90 - t10).total_seconds())
    per_second = Counter(s.replace(microsecond=0) for s in starts)
    unfinished = Attempt.select().where(Attempt.outcome == "").count()
    return {"attempts": len(starts), "sustained_cps": (len(starts) * 0.8) / span,
            "peak_cps_1s": max(per_second.values()), "busy_span_s": span, "unfinished": unfinished}


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
    ap.add_argument("--profile", action="store_true", help="run the controller under cProfile")
    ap.add_argument("--workdir", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--real-start", type=float, default=0.0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.role == "controller":
        return controller(args)

    import gevent

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_campaign_"))
    print(f"preparing {args.accounts} accounts in {work}", flush=True)
    numbers = prepare(work, args)
    script, expected = debtor_script(work, numbers, args.message_s)
    real_start = time.time() + 3.0
    sim, port = start_sim(work, args, script, real_start)
    watched: dict = {}
    watch(port, args.channels, watched)
    ctl_cmd = [sys.executable]
    if args.profile:
        ctl_cmd += ["-m", "cProfile", "-o", str(work / "controller.prof")]
    ctl_cmd += [__file__, "--role", "controller", "--workdir", str(work), "--port", str(port),
                "--real-start", repr(real_start), "--scale", str(args.scale), "--channels", str(args.channels),
                "--cps", str(args.cps), "--message-s", str(args.message_s), "--prompt-s", str(args.prompt_s),
                "--max-sim-seconds", str(args.max_sim_seconds)]
    print(f"simulator on port {port}; controller starting (scale x{args.scale:g}, cap {args.channels}, "
          f"{args.cps:g} calls/s)", flush=True)
    t0 = time.monotonic()
    ctl = subprocess.Popen(ctl_cmd, cwd=ROOT)
    sim_cpu0 = _proc_cpu(sim.pid)
    while ctl.poll() is None:
        gevent.sleep(1.0)
        elapsed = time.monotonic() - t0
        if int(elapsed) % 10 == 0:
            print(f"  {elapsed:5.0f} s: sim channels created {watched.get('created', 0)}, "
                  f"peak live {watched.get('peak', 0)}, violations {watched.get('violations', 0)}", flush=True)
    sim_cpu = _proc_cpu(sim.pid) - sim_cpu0
    watched["esl"].stop()
    sim.terminate()
    sim.wait(timeout=10)
    res = json.loads((work / "controller.json").read_text())
    r = rates(work, args)
    per_k = res["cpu_s"] / max(1, res["placed"]) * 1000
    print("\nresults")
    print(f"  the script's mix: {expected['pay_now']} debtors press 1 (pay now), {expected['callback']} press 2 "
          "(callback)")
    print(f"  accounts {args.accounts}, attempts {r.get('attempts')}, unfinished {r.get('unfinished')}, "
          f"controller ok {res['ok']}, flow errors {res['flow_errors']}, outbound set-up failures "
          f"{res['setup_failures']}, originate errors {res['originate_errors']}")
    print(f"  outcomes {json.dumps(res['outcomes'], sort_keys=True)}")
    print(f"  sustained new calls/s (sim): {r.get('sustained_cps', 0):.1f}   peak in one second: "
          f"{r.get('peak_cps_1s')}   busy span {r.get('busy_span_s', 0):.0f} s (sim)")
    print(f"  peak concurrent: simulator {watched['peak']}, dialer {res['peak_in_flight']} (cap {args.channels})")
    print(f"  cap violations: {watched['violations']}")
    span_real = max(1e-9, (watched["last"] or 0) - (watched["first"] or 0))
    util = watched["area"] / span_real / max(1, args.channels) * 100
    placed = max(1, res["placed"])
    print(f"  channel utilisation: {util:.0f} % of the cap on average while calls ran "
          f"({watched['area'] / span_real:.0f} channels of {args.channels})")
    print(f"  SQL: {res['statements'] / placed:.1f} statements and {res['transactions'] / placed:.2f} "
          f"transactions per call ({res['statements']} / {res['transactions']}); top: {res['kinds'][:6]}")
    print(f"  controller memory: RSS {res['rss_start_kb'] / 1024:.0f} MB at the start, peak "
          f"{res['rss_peak_kb'] / 1024:.0f} MB, {res['rss_end_kb'] / 1024:.0f} MB after the calls ended "
          f"({res['in_flight_end']} still tracked)")
    print(f"  controller CPU {res['cpu_s']:.1f} s over {res['wall_s']:.1f} s wall = {per_k:.2f} CPU s per 1,000 "
          f"calls ({res['cpu_s'] / max(1e-9, res['wall_s']) * 100:.0f} % of one core); simulator CPU "
          f"{sim_cpu:.1f} s; congestion slow-downs {res['slowdowns']}")
    if args.profile:
        import pstats

        print("\ncontroller profile (top 30 by cumulative time):")
        pstats.Stats(str(work / "controller.prof")).sort_stats("cumulative").print_stats(30)
    failures = _failures(res, r, watched, expected)
    for f in failures:
        print(f"BENCH FAILED: {f}", flush=True)
    if not failures:
        print("bench ok: no flow failures, key outcomes as the script's mix, cap held")
    return 1 if failures else 0


def _failures(res: dict, r: dict, watched: dict, expected: dict[str, int]) -> list[str]:
    """What makes the run a failure, each in a line a person can act on."""
    out = []
    if not res["ok"]:
        out.append("the controller's dialer loop raised (see controller.log)")
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
