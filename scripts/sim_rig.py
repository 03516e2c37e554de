"""What the scripts that run a campaign against `ivr sim` in processes of their own share: the evening they dial
(fault_kill9.py, fault_nodes.py, bench_campaign.py); and for the two fault scripts, a dialer process doing what
`ivr run` does on the clock shared with the simulator, its command line and options, a watch on the simulator's
own channel events (the switch's side of the story: live channels per number, overlaps, peak) and the
simulator's stop."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

DAY = date(2026, 11, 23)  # a Monday; the clock starts at 18:00:05 Kyiv, inside the window
START = datetime(2026, 11, 23, 16, 0, 5, tzinfo=UTC)


def run_dialer(cfg, work: Path, args: argparse.Namespace, node: str | None, name: str) -> None:
    """Run the campaign of DAY to its end in this process, as `ivr run` would (a heartbeat, orphaned claims
    released on start), on the scaled clock of `args`; log to WORK/dialer-NAME.log and write the dialer's
    figures to WORK/dialer-NAME.json. `node` None: the dialer picks its own node name."""
    import gevent

    from ivr.campaign.queue import start_campaign
    from ivr.clock import ScaledClock
    from ivr.dialer.dialer import Dialer
    from ivr.dialer.node import start_heartbeat
    from ivr.ledger.db import connect
    from ivr.logs import setup_logging
    from ivr.speech.silent import SilentSpeech
    from ivr.switch.esl import EslClient

    setup_logging("WARNING", True, str(work / f"dialer-{name}.log"))
    connect(cfg.database.url, work)
    clock = ScaledClock(start=START, scale=args.scale, real_start=args.real_start)
    camp = start_campaign(cfg, DAY, clock)  # as `ivr run` does on every start (releases orphaned claims)
    esl = EslClient("127.0.0.1", args.port, cfg.freeswitch.password, 5.0, 1.0)
    esl.start()
    dialer = Dialer(cfg, esl, clock, SilentSpeech(work, args.message_s, args.prompt_s), node=node,
                    outbound_port=0)
    dialer.start()
    beat = start_heartbeat(dialer)
    g = gevent.spawn(dialer.run, camp)
    g.join()
    beat.kill()
    s = dialer.stats
    out = {"placed": s.placed, "outcomes": s.outcomes, "ok": g.successful(), "node": dialer.node,
           "reconciled_lost": s.reconciled_lost, "reconciled_alive": s.reconciled_alive, "fenced": s.fenced,
           "taken_over": s.taken_over, "db_errors": s.db_errors, "error": repr(g.exception) if g.exception else ""}
    dialer.stop()
    esl.stop()
    (work / f"dialer-{name}.json").write_text(json.dumps(out))


def add_role_options(ap: argparse.ArgumentParser) -> None:
    """The hidden options `dialer_command` passes: which role this process plays, its work folder, the
    simulator's port, the shared clock's real start and the node name (the script's own options give the rest)."""
    ap.add_argument("--role", choices=("orchestrator", "dialer"), default="orchestrator", help=argparse.SUPPRESS)
    ap.add_argument("--workdir", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--real-start", type=float, default=0.0, help=argparse.SUPPRESS)
    ap.add_argument("--node", default="", help=argparse.SUPPRESS)


def dialer_command(script: str, work: Path, args: argparse.Namespace, port: int, real_start: float,
                   node: str) -> list[str]:
    """The command line that starts `script` again in its dialer role, on the same clock and simulator."""
    return [sys.executable, script, "--role", "dialer", "--workdir", str(work), "--port", str(port),
            "--real-start", repr(real_start), "--scale", str(args.scale), "--channels", str(args.channels),
            "--cps", str(args.cps), "--message-s", str(args.message_s), "--prompt-s", str(args.prompt_s),
            "--node", node]


class Watch:
    """Live channels per number, from the simulator's own events on an event socket of the script.

    A number's call starts at CHANNEL_CREATE and its line is free at `hangup_event`; a CHANNEL_CREATE to a number
    that still has a live channel is an overlap (number, wall time). `ended` keeps each hang-up's cause and the
    monotonic time it was seen."""

    def __init__(self, port: int, hangup_event: str) -> None:
        from ivr.switch.esl import EslClient

        self.hangup_event = hangup_event
        self.live: dict[str, str] = {}  # uuid -> number
        self.overlaps: list[tuple[str, float]] = []
        self.created = 0
        self.peak = 0
        self.ended: dict[str, tuple[str, float]] = {}  # uuid -> (hangup cause, monotonic time seen)
        self.esl = EslClient("127.0.0.1", port, "ClueCon", 10.0, 1.0)
        self.esl.add_handler(self.on)
        self.esl.subscribe(["CHANNEL_CREATE", hangup_event])
        self.esl.start()

    def on(self, ev) -> None:
        if ev.name == "CHANNEL_CREATE":
            number = ev.get("Caller-Destination-Number", "") or ev.get("Caller-Callee-ID-Number", "")
            if number and number in self.live.values():
                self.overlaps.append((number, time.time()))
            self.live[ev.uuid] = number
            self.created += 1
            self.peak = max(self.peak, len(self.live))
        elif ev.name == self.hangup_event:
            self.live.pop(ev.uuid, None)
            self.ended[ev.uuid] = (ev.get("Hangup-Cause", ""), time.monotonic())

    def stop(self) -> None:
        self.esl.stop()


def stop_sim(sim: subprocess.Popen) -> None:
    """SIGTERM the simulator; SIGKILL if it has not gone within 10 s."""
    sim.terminate()
    try:
        sim.wait(timeout=10)
    except subprocess.TimeoutExpired:
        sim.kill()
