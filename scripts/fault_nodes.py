#!/usr/bin/env python3
"""Fault: two dialer nodes on one PostgreSQL and one (simulated) FreeSWITCH, and one node fails (issue 13).

"Node A" is whichever of the two nodes has calls up first (the shared cap goes to whoever claims first).

Real processes: a simulator (`ivr sim`), two dialer processes (each does what `ivr run` does, on a ScaledClock
shared with the simulator through --start/--real-start/--scale) and PostgreSQL. Once the first node has calls up
and results written, one of:

- kill9:    SIGKILL of node A; node B takes its calls over once A's heartbeat is stale;
- sigstop:  SIGSTOP of node A until node B has fenced it (longer than dialing.node_timeout_seconds), then SIGCONT:
            A must find its lease lost, write nothing for the calls it no longer owns, let go of their sockets
            and rejoin as a new node;
- dropconn: every database connection of node A is cut (pg_terminate_backend), twice: A reconnects and goes on.

Checked for each (exit code 1 if any fails):
- the evening ends: both dialer processes exit by themselves (the killed one excepted);
- every debtor ends with one outcome: each queue entry is `done`, with exactly one attempt that delivered the
  message (`heard`), and no attempt is left without an outcome;
- nobody is called twice at once, from the simulator's own events seen on an event socket of this script: a
  number's call starts at CHANNEL_CREATE and the debtor's line is free at CHANNEL_HANGUP;
- the channel cap is never exceeded across both nodes (channels live on the switch, same events);
- the fault really happened mid-call: node A had calls up when it failed, and (kill9, sigstop) node B took over
  (sigstop) hung up the ones still up with uuid_kill, and node A lost its lease and rejoined. (After a kill -9
  the switch ends the dead process's calls itself when their sockets close: they are taken over as gone.)

    .venv/bin/python scripts/fault_nodes.py                           # all three, with a throwaway cluster
    .venv/bin/python scripts/fault_nodes.py --scenario sigstop --db-url postgresql://ivr@127.0.0.1:5432/x
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

from sim_rig import DAY, ROOT, START, Watch, add_role_options, dialer_command, run_dialer, stop_sim

sys.path.insert(0, str(ROOT))

SCENARIOS = ("kill9", "sigstop", "dropconn")


def config_dict(work: Path, args: argparse.Namespace, db_url: str, port: int = 8021) -> dict:
    return {
        "database": {"url": db_url},
        "freeswitch": {"port": port, "outbound_bind_port": 8084, "command_timeout": 5.0,
                       "reconnect_max_delay": 1.0},
        "dialing": {"originate_timeout": 15, "node_timeout_seconds": args.node_timeout},
        "pacing": {"channels": args.channels, "cps": args.cps},
        "callflow": {"menu_timeout_ms": 3000, "digit_timeout_ms": 1000, "menu_rounds": 1},
        "retry": {"max_attempts_per_day": 6, "early_hangup_pause_seconds": 20, "default_delay": 30},
        "speech": {"cache_dir": str(work / "cache")},
        "logging": {"level": "WARNING"},
    }


# --- a dialer process (what `ivr run` does, on the shared scaled clock) --------------------------------------

def dialer_role(args: argparse.Namespace) -> int:
    from ivr.config import parse_config

    work = Path(args.workdir)
    cfg = parse_config(config_dict(work, args, args.db_url, args.port), base_dir=work, env={})
    run_dialer(cfg, work, args, args.node, args.node)
    return 0


# --- the orchestrator ----------------------------------------------------------------------------------------

def prepare(work: Path, args: argparse.Namespace, db_url: str) -> list[str]:
    from ivr.ledger.db import connect
    from ivr.ledger.sample import seed_debtors
    from ivr.sim.script import Debtor, Script
    from ivr.speech.silent import SilentSpeech

    work.mkdir(parents=True, exist_ok=True)
    db = connect(db_url, work)
    numbers = seed_debtors(args.accounts, DAY)
    db.close()
    SilentSpeech.write_files(work, args.message_s, args.prompt_s)
    # everyone listens to the end: the only reasons to call someone twice are the faults themselves
    Script(default=Debtor.listen(ring=1.0)).dump(work / "debtors.yaml")
    return numbers


def start_sim(work: Path, args: argparse.Namespace, real_start: float) -> tuple[subprocess.Popen, int]:
    from ivr.sim.process import start_sim_process

    return start_sim_process(work, scale=args.scale, start=START, real_start=real_start,
                             script=work / "debtors.yaml", seed=7, cwd=ROOT)


def spawn_dialer(work: Path, args: argparse.Namespace, db_url: str, port: int, real_start: float,
                 node: str) -> subprocess.Popen:
    cmd = dialer_command(__file__, work, args, port, real_start, node)
    return subprocess.Popen(cmd + ["--db-url", db_url, "--node-timeout", str(args.node_timeout)], cwd=ROOT)


def wait_for(cond, timeout: float, what: str, procs: tuple = ()) -> None:
    """Poll `cond` (every 20 ms) until true; a generous ceiling so only a real hang fails."""
    import gevent

    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")
        for p in procs:
            if p.poll() is not None and p.returncode != 0:
                raise SystemExit(f"a dialer process failed (exit {p.returncode}) while waiting for {what}")
        gevent.sleep(0.02)


def terminate_connections(pid: int) -> int:
    from ivr.ledger.models import database

    rows = database.execute_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                                (f"ivr-{pid}",)).fetchall()
    return sum(1 for (ok,) in rows if ok)


def scenario(name: str, work: Path, args: argparse.Namespace, db_url: str) -> dict:
    import gevent

    from ivr.ledger.db import connect
    from ivr.ledger.models import Attempt, DialerNode, QueueEntry

    numbers = prepare(work, args, db_url)
    real_start = time.time() + 2.0
    sim, port = start_sim(work, args, real_start)
    watch = Watch(port, "CHANNEL_HANGUP")
    res: dict = {"scenario": name, "accounts": len(numbers)}
    procs: list[subprocess.Popen] = []
    t0 = time.monotonic()
    try:
        a = spawn_dialer(work, args, db_url, port, real_start, "node-a")
        b = spawn_dialer(work, args, db_url, port, real_start, "node-b")
        procs = [a, b]
        connect(db_url, work)

        # the shared cap goes to whichever node claims first, so either may carry most calls: the node that
        # fails ("node A" below) is the one with calls up once results are being written. Only calls answered in
        # the last half message count: the others may be ending just now, and a fault must cut into live calls.
        def busy_node() -> str:
            if Attempt.select().where(Attempt.outcome != "").count() < 3:
                return ""
            now = START.replace(tzinfo=None) + timedelta(seconds=(time.time() - real_start) * args.scale)
            fresh = now - timedelta(seconds=args.message_s / 2)
            up = Counter(x.node for x in Attempt.select(Attempt.node).where(
                (Attempt.state == "answered") & (Attempt.answered_at >= fresh)))
            node, n = max(up.items(), key=lambda kv: kv[1], default=("", 0))
            return node if n >= 2 else ""

        wait_for(busy_node, args.timeout, "a node to have calls up and results written", (a, b))
        victim = busy_node() or "node-a"
        survivor = "node-b" if victim == "node-a" else "node-a"
        if victim == "node-b":
            a, b = b, a
        res.update(victim=victim, survivor=survivor)
        res["a_calls_up_at_fault"] = Attempt.select().where(
            (Attempt.node == victim) & Attempt.state.in_(("originated", "answered"))).count()
        if name == "kill9":
            os.kill(a.pid, signal.SIGKILL)
            a.wait()
            procs = [b]
        elif name == "sigstop":
            os.kill(a.pid, signal.SIGSTOP)
            frozen = list(Attempt.select(Attempt.id, Attempt.uuid, Attempt.state).where(
                (Attempt.node == victim) & (Attempt.outcome == "")))
            frozen_calls = [x.id for x in frozen]
            t_stop = time.monotonic()
            wait_for(lambda: DialerNode.get_by_id(victim).fenced_at is not None, args.timeout,
                     "node B to fence the frozen node A", (b,))
            # stay frozen until node B has settled every call it took (as a 90 s freeze would): woken earlier,
            # A could let go of its sockets first and leave B nothing to hang up
            wait_for(lambda: not Attempt.select().where(Attempt.id.in_(frozen_calls) & (Attempt.outcome == "")
                                                        ).exists(), args.timeout,
                     "node B to settle the frozen node's calls", (b,))
            res["stopped_s"] = round(time.monotonic() - t_stop, 1)
            # each frozen call: its state then, and its hang-up (cause, seconds after the freeze) as the switch saw it
            res["frozen_calls"] = {x.uuid[:8]: [x.state, *((e[0], round(e[1] - t_stop, 1)) if (
                e := watch.ended.get(x.uuid)) else ("up",))] for x in frozen}
            os.kill(a.pid, signal.SIGCONT)
        else:
            res["connections_cut"] = terminate_connections(a.pid)
            wait_for(lambda: Attempt.select().where(Attempt.outcome != "").count() >= res["accounts"] // 2,
                     args.timeout, "half the evening", (a, b))
            res["connections_cut"] += terminate_connections(a.pid)
        for p in procs:
            deadline = time.monotonic() + args.timeout
            while p.poll() is None and time.monotonic() < deadline:
                gevent.sleep(0.1)  # never time.sleep here: the watcher greenlet must keep reading events
            if p.poll() is None:
                p.kill()
                res.setdefault("hung", []).append(p.args[p.args.index("--node") + 1])
        res["evening_s"] = round(time.monotonic() - t0, 1)
        # the watcher has read the switch's events to the end once every channel it saw created is hung up
        wait_for(lambda: not watch.live, 60, "the watcher to see every channel hung up")
        res["exit_codes"] = [p.returncode for p in procs]
        res["dialers"] = {}
        for node in ("node-a", "node-b"):
            f = work / f"dialer-{node}.json"
            if f.exists():
                res["dialers"][node] = json.loads(f.read_text())
        entries = list(QueueEntry.select())
        res["entry_states"] = dict(Counter(f"{e.state}/{e.outcome}" for e in entries))
        heard = Counter(a.account_id for a in Attempt.select().where(Attempt.outcome == "heard"))
        res["heard_not_once"] = sorted(e.account_id for e in entries if heard.get(e.account_id, 0) != 1)
        res["unfinalized"] = Attempt.select().where(Attempt.outcome == "").count()
        res["outcomes"] = dict(Counter(x.outcome for x in Attempt.select(Attempt.outcome)))
        res["taken_over_killed"] = Attempt.select().where(Attempt.hangup_cause == "TAKEN_OVER").count()
        res["nodes"] = {n.name: {"epoch": n.epoch, "fenced_by": n.fenced_by} for n in DialerNode.select()}
    finally:
        for p in procs:
            if p.poll() is None:
                with_cont = name == "sigstop"
                if with_cont:
                    os.kill(p.pid, signal.SIGCONT)
                p.kill()
        res.update(overlaps=watch.overlaps, sim_peak=watch.peak, sim_created=watch.created)
        watch.stop()
        stop_sim(sim)
    return res


def checks_for(res: dict, args: argparse.Namespace) -> dict[str, bool]:
    name = res["scenario"]
    dialers = res.get("dialers", {})
    victim, survivor = res.get("victim", "node-a"), res.get("survivor", "node-b")
    ok = {
        "the evening ended (every dialer process exited by itself)": not res.get("hung") and
        all(c == 0 for c in res.get("exit_codes", [1])),
        "every debtor ends with one outcome (entry done, exactly one heard call)":
            res.get("entry_states") == {"done/heard": res["accounts"]} and not res.get("heard_not_once"),
        "no attempt left without an outcome": res.get("unfinalized") == 0,
        "nobody called twice at once (simulator's events)": not res["overlaps"] and res["sim_created"] > 0,
        "channel cap never exceeded across nodes": res["sim_peak"] <= args.channels,
        "node A had calls up when it failed": res.get("a_calls_up_at_fault", 0) >= 1,
    }
    if name == "kill9":
        # a dead process's sockets close, so the switch ends its calls itself: they are gone, not killed
        ok["node B took node A's calls over"] = dialers.get(survivor, {}).get("taken_over", 0) >= 1
    if name == "sigstop":
        ok["node B took node A's calls over and hung up the live ones (uuid_kill)"] = (
            dialers.get(survivor, {}).get("taken_over", 0) >= 1 and res.get("taken_over_killed", 0) >= 1)
    if name == "sigstop":
        a = dialers.get(victim, {})
        ok["node A found its lease lost and rejoined as a new node"] = (
            a.get("fenced", 0) >= 1 and a.get("node", victim) != victim and
            res.get("nodes", {}).get(victim, {}).get("fenced_by") == survivor)
    if name == "dropconn":
        ok["node A's connections were cut and it carried on"] = (
            res.get("connections_cut", 0) >= 1 and dialers.get(victim, {}).get("ok", False))
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_role_options(ap)
    ap.add_argument("--scenario", choices=(*SCENARIOS, "all"), default="all")
    ap.add_argument("--accounts", type=int, default=60)
    ap.add_argument("--scale", type=float, default=10.0, help="clock scale shared by the dialers and the simulator")
    ap.add_argument("--channels", type=int, default=8, help="the shared cap across both nodes")
    ap.add_argument("--cps", type=float, default=20.0)
    ap.add_argument("--message-s", type=float, default=40.0, help="message length (clock seconds): long enough for calls to be up when a node fails")
    ap.add_argument("--prompt-s", type=float, default=1.0)
    ap.add_argument("--node-timeout", type=float, default=4.0, help="dialing.node_timeout_seconds (real seconds)")
    ap.add_argument("--timeout", type=float, default=180.0, help="ceiling on each wait (real seconds)")
    ap.add_argument("--db-url", default="", help="an empty PostgreSQL database (default: a throwaway cluster with "
                                                 "one database per scenario)")
    ap.add_argument("--json", metavar="FILE", help="also write every figure to FILE")
    args = ap.parse_args()
    if args.role == "dialer":
        return dialer_role(args)

    names = SCENARIOS if args.scenario == "all" else (args.scenario,)
    if args.db_url and len(names) > 1:
        ap.error("--db-url names one database: give one --scenario with it")
    base = Path(args.workdir or tempfile.mkdtemp(prefix="fault_nodes_"))
    cluster = None
    if not args.db_url:
        sys.path.insert(0, str(ROOT / "tests"))
        from pg_cluster import start_cluster

        cluster = start_cluster()
    results, all_ok = [], True
    try:
        for name in names:
            url = args.db_url or cluster.create_database(empty=True)
            print(f"{name}: {args.accounts} accounts, two nodes, cap {args.channels}, clock x{args.scale:g}, "
                  f"node timeout {args.node_timeout:g} s …", flush=True)
            res = scenario(name, base / name, args, url)
            res["checks"] = checks_for(res, args)
            results.append(res)
            print(f"  node A = {res.get('victim')}; {res.get('evening_s', '?')} s; outcomes {res.get('outcomes')}; peak {res['sim_peak']} "
                  f"channels; taken over and hung up {res.get('taken_over_killed')}; dialers "
                  f"{ {k: {x: v.get(x) for x in ('node', 'placed', 'fenced', 'taken_over', 'db_errors')} for k, v in res.get('dialers', {}).items()} }",
                  flush=True)
            for check, ok in res["checks"].items():
                print(f"  [{'ok' if ok else 'FAIL'}] {check}")
                all_ok &= ok
    finally:
        if cluster is not None:
            cluster.stop()
    if args.json:
        Path(args.json).write_text(json.dumps(results, default=str, indent=1))
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
