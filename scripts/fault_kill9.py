#!/usr/bin/env python3
"""Fault: `kill -9` of the dialer in the middle of a campaign, then a restart (issue 7). Real processes.

Two evenings of the same seeded debtor script, each with its own database and its own simulator process
(`ivr sim`, sharing one ScaledClock with the dialer through --start/--real-start/--scale):

1. clean: one dialer process runs the campaign to the end;
2. crash: a dialer process runs it until some calls have finished and others are up, gets SIGKILL, and a new
   dialer process is started on the same database and simulator (a new node name, as a restarted `ivr run`
   would have, or the same name with --same-node) and runs the campaign to the end.

Checked (exit code 1 if any fails):
- nobody is called twice at once: the simulator's own CHANNEL_CREATE / CHANNEL_HANGUP_COMPLETE events, seen on
  an event-socket connection of this script, never show two live channels to one number;
- no result written before the kill is lost or changed (outcomes snapshotted just before the kill);
- every attempt ends with an outcome ('' = not finalized is a failure); those cut by the kill are `unknown`
  (or the call flow's verdict if it had been written) and their accounts were re-queued and called again,
  the attempt counted on the queue entry;
- the final outcome per account (queue entry state and outcome) equals the clean run's, except accounts that
  had an `unknown` attempt, which are listed and counted.

    .venv/bin/python scripts/fault_kill9.py                         # 300 accounts, x20 clock
    .venv/bin/python scripts/fault_kill9.py --accounts 60 --scale 30 --same-node
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
from pathlib import Path

from sim_rig import DAY, ROOT, START, Watch, add_role_options, dialer_command, run_dialer, stop_sim

from ivr.speech.silent import SilentSpeech

sys.path.insert(0, str(ROOT))


def config_dict(work: Path, args: argparse.Namespace, port: int = 8021) -> dict:
    return {
        "database": {"url": f"sqlite:///{work / 'ivr.sqlite3'}"},
        "freeswitch": {"port": port, "outbound_bind_port": 8084, "command_timeout": 5.0,
                       "reconnect_max_delay": 1.0},
        "dialing": {"originate_timeout": 15},
        "pacing": {"channels": args.channels, "cps": args.cps},
        "callflow": {"menu_timeout_ms": 5000, "digit_timeout_ms": 1000, "menu_rounds": 1},
        "retry": {"max_attempts_per_day": 4, "early_hangup_pause_seconds": 30, "default_delay": 60,
                  "delays": {c: 60 for c in ("USER_BUSY", "NO_ANSWER", "NO_USER_RESPONSE", "ORIGINATOR_CANCEL",
                                             "NORMAL_TEMPORARY_FAILURE", "NORMAL_CIRCUIT_CONGESTION")}},
        "speech": {"cache_dir": str(work / "cache")},
        "logging": {"level": "WARNING"},
    }






# --- the dialer process (what `ivr run` does, on the shared scaled clock) ----------------------------------------

def dialer_role(args: argparse.Namespace) -> int:
    from ivr.config import parse_config

    work = Path(args.workdir)
    cfg = parse_config(config_dict(work, args, args.port), base_dir=work, env={})
    run_dialer(cfg, work, args, args.node or None, str(os.getpid()))
    return 0


# --- the orchestrator ----------------------------------------------------------------------------------------

def prepare(work: Path, args: argparse.Namespace) -> list[str]:
    from ivr.config import parse_config
    from ivr.ledger.db import connect
    from ivr.ledger.sample import seed_debtors

    work.mkdir(parents=True, exist_ok=True)
    cfg = parse_config(config_dict(work, args), base_dir=work, env={})
    db = connect(cfg.database.url, work)
    numbers = seed_debtors(args.accounts, DAY)
    db.close()
    SilentSpeech.write_files(work, args.message_s, args.prompt_s)
    return numbers


def debtor_script(work: Path, numbers: list[str], args: argparse.Namespace) -> Path:
    """The seeded realistic mix (answers, hang-ups, key presses, busy, no answer, invalid, machines) as YAML."""

    from ivr.sim.script import Debtor, Script

    mix = Script.random_mix(numbers, seed=args.seed, message_s=args.message_s + 2)
    mix.default = Debtor.listen()  # pressing debtors press when the menu starts: a clean run is repeatable
    return mix.dump(work / "debtors.yaml")


def start_sim(work: Path, args: argparse.Namespace, script: Path, real_start: float) -> tuple[subprocess.Popen, int]:
    from ivr.sim.process import start_sim_process

    return start_sim_process(work, scale=args.scale, start=START, real_start=real_start, script=script,
                             seed=args.seed, cwd=ROOT)


def spawn_dialer(work: Path, args: argparse.Namespace, port: int, real_start: float, node: str) -> subprocess.Popen:
    return subprocess.Popen(dialer_command(__file__, work, args, port, real_start, node), cwd=ROOT)


def db_open(work: Path, args: argparse.Namespace):
    from ivr.config import parse_config
    from ivr.ledger.db import connect

    cfg = parse_config(config_dict(work, args), base_dir=work, env={})
    return connect(cfg.database.url, work)


def finals(work: Path, args: argparse.Namespace) -> dict[str, tuple[str, str]]:
    from ivr.ledger.models import Account, QueueEntry

    db = db_open(work, args)
    out = {a.number: (e.state, e.outcome) for e, a in
           ((e, e.account) for e in QueueEntry.select(QueueEntry, Account).join(Account))}
    db.close()
    return out


def wait_proc(proc: subprocess.Popen, timeout: float, what: str) -> None:
    import gevent

    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        if time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"{what} did not finish within {timeout:.0f} s")
        gevent.sleep(0.2)


def evening(work: Path, args: argparse.Namespace, crash: bool) -> dict:
    """One evening; with `crash`, kill -9 the dialer mid-campaign and start another."""
    import gevent

    numbers = prepare(work, args)
    script = debtor_script(work, numbers, args)
    real_start = time.time() + 2.0
    sim, port = start_sim(work, args, script, real_start)
    watch = Watch(port, "CHANNEL_HANGUP_COMPLETE")
    result: dict = {"work": str(work)}
    try:
        first = spawn_dialer(work, args, port, real_start, "node-a")
        if not crash:
            wait_proc(first, args.timeout, "the clean run")
        else:
            from ivr.ledger.models import Attempt

            db = db_open(work, args)
            deadline = time.monotonic() + args.timeout
            while True:  # until enough results are written and enough calls are up
                done = Attempt.select().where(Attempt.outcome != "").count()
                up = Attempt.select().where(Attempt.state.in_(("originated", "answered"))).count()
                if done >= args.kill_after and up >= min(args.channels, 3):
                    break
                if first.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the first dialer ended before it could be killed: use more --accounts")
                gevent.sleep(0.02)
            os.kill(first.pid, signal.SIGKILL)
            first.wait()
            # the snapshot after the process is dead: nothing can be written between snapshot and kill
            snap = {a.uuid: a.outcome for a in Attempt.select().where(Attempt.outcome != "")}
            cut = {a.uuid: a.state for a in Attempt.select().where(Attempt.outcome == "")}
            result.update(snapshot=len(snap), cut=len(cut), cut_states=dict(Counter(cut.values())),
                          live_at_kill=len(watch.live))
            db.close()
            print(f"  killed the dialer (pid {first.pid}): {len(snap)} results written, {len(cut)} attempts "
                  f"not finalized ({dict(Counter(cut.values()))}), {len(watch.live)} channels up on the switch",
                  flush=True)
            node = "node-a" if args.same_node else "node-b"
            t_restart = time.monotonic()
            second = spawn_dialer(work, args, port, real_start, node)
            wait_proc(second, args.timeout, "the restarted dialer")
            result["restart_run_s"] = time.monotonic() - t_restart
            db = db_open(work, args)
            lost = [u for u, o in snap.items() if Attempt.get(Attempt.uuid == u).outcome != o]
            result["results_lost_or_changed"] = lost
            after = {a.uuid: (a.state, a.outcome, a.account_id, a.id) for a in
                     Attempt.select().where(Attempt.uuid.in_(list(cut)))}
            result["cut_after"] = dict(Counter(f"{s}/{o or '-'}" for s, o, _, _ in after.values()))
            unknown_accounts = set()
            not_requeued = []
            from ivr.ledger.models import QueueEntry

            for _uuid, (_s, outcome, acc_id, att_id) in after.items():
                if outcome == "unknown":
                    unknown_accounts.add(acc_id)
                    later = Attempt.select().where((Attempt.account == acc_id) & (Attempt.id > att_id)).count()
                    entry = QueueEntry.get(QueueEntry.account == acc_id)
                    counted = entry.attempts == Attempt.select().where(
                        (Attempt.account == acc_id) & (Attempt.outcome != "trunk_error")).count()
                    if not (later or entry.state == "given_up") or not counted:
                        not_requeued.append(acc_id)
            from ivr.ledger.models import Account

            result["unknown_accounts"] = sorted(Account.get_by_id(i).number for i in unknown_accounts)
            result["unknown_not_requeued"] = not_requeued
            db.close()
        db = db_open(work, args)
        from ivr.ledger.models import Attempt

        result["attempts"] = Attempt.select().count()
        result["unfinalized"] = Attempt.select().where(Attempt.outcome == "").count()
        result["outcomes"] = dict(Counter(a.outcome for a in Attempt.select(Attempt.outcome)))
        db.close()
    finally:
        result.update(overlaps=watch.overlaps, sim_peak=watch.peak, sim_created=watch.created)
        watch.stop()
        stop_sim(sim)
    result["finals"] = finals(work, args)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_role_options(ap)
    ap.add_argument("--accounts", type=int, default=300)
    ap.add_argument("--scale", type=float, default=20.0, help="clock scale shared by the dialers and the simulator")
    ap.add_argument("--channels", type=int, default=30)
    ap.add_argument("--cps", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=7, help="seed of the debtor mix and the simulator")
    ap.add_argument("--message-s", type=float, default=8.0)
    ap.add_argument("--prompt-s", type=float, default=1.0)
    ap.add_argument("--kill-after", type=int, default=20, help="kill once this many results are written")
    ap.add_argument("--same-node", action="store_true", help="restart under the same node name")
    ap.add_argument("--timeout", type=float, default=600.0, help="real seconds each dialer may take")
    ap.add_argument("--json", metavar="FILE", help="also write every figure to FILE")
    args = ap.parse_args()
    if args.role == "dialer":
        return dialer_role(args)

    base = Path(args.workdir or tempfile.mkdtemp(prefix="fault_kill9_"))
    print(f"{args.accounts} accounts, clock x{args.scale:g}, cap {args.channels}, {args.cps:g} calls/s; in {base}",
          flush=True)
    t0 = time.monotonic()
    print("clean run …", flush=True)
    clean = evening(base / "clean", args, crash=False)
    print(f"  {clean['attempts']} attempts in {time.monotonic() - t0:.0f} s; outcomes {clean['outcomes']}", flush=True)
    t1 = time.monotonic()
    print("crash run …", flush=True)
    crash = evening(base / "crash", args, crash=True)
    print(f"  {crash['attempts']} attempts in {time.monotonic() - t1:.0f} s; outcomes {crash['outcomes']}", flush=True)

    unknown = set(crash["unknown_accounts"])
    differ = {n: (clean["finals"].get(n), f) for n, f in crash["finals"].items()
              if n not in unknown and clean["finals"].get(n) != f}
    differ_unknown = {n: (clean["finals"].get(n), crash["finals"].get(n)) for n in unknown
                      if clean["finals"].get(n) != crash["finals"].get(n)}
    checks = {
        "no number called twice at once (simulator side), clean run": not clean["overlaps"],
        "no number called twice at once (simulator side), crash run": not crash["overlaps"],
        "no result written before the kill lost or changed": not crash["results_lost_or_changed"],
        "every attempt finalized (clean)": clean["unfinalized"] == 0,
        "every attempt finalized (crash)": crash["unfinalized"] == 0,
        "unknown attempts re-queued and counted": not crash["unknown_not_requeued"],
        "same final outcome per account as the clean run (accounts without an unknown attempt)": not differ,
        "concurrency cap held on the switch": crash["sim_peak"] <= args.channels and clean["sim_peak"] <= args.channels,
    }
    print("\nresults")
    print(f"  killed with {crash['snapshot']} results written and {crash['cut']} attempts not finalized "
          f"{crash['cut_states']}; {crash['live_at_kill']} channels up on the switch")
    print(f"  those {crash['cut']} attempts afterwards (state/outcome): {crash['cut_after']}")
    print(f"  accounts with an unknown attempt (re-queued, counted): {len(unknown)}; of them with a final outcome "
          f"different from the clean run: {len(differ_unknown)} {differ_unknown if differ_unknown else ''}")
    print(f"  accounts compared: {len(crash['finals'])}; different final outcome: {len(differ)} "
          f"{dict(list(differ.items())[:10]) if differ else ''}")
    print(f"  attempts: clean {clean['attempts']}, crash {crash['attempts']}; restarted dialer ran "
          f"{crash['restart_run_s']:.1f} s; peak channels on the switch: clean {clean['sim_peak']}, "
          f"crash {crash['sim_peak']} (cap {args.channels})")
    for name, ok in checks.items():
        print(f"  [{'ok' if ok else 'FAIL'}] {name}")
    if args.json:
        Path(args.json).write_text(json.dumps({"clean": {k: v for k, v in clean.items() if k != "finals"},
                                               "crash": {k: v for k, v in crash.items() if k != "finals"},
                                               "differ": differ, "differ_unknown": differ_unknown,
                                               "checks": checks}, default=str, indent=1))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
