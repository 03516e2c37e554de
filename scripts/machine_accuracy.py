#!/usr/bin/env python3
"""Measure answering-machine detection on the simulator's evening mix (Script.random_mix).

Every number of a seeded random_mix that answers (people and machines) gets a real call: simulator (wire
protocol, its far end's speech and mod_avmd beeps) + EslClient originate + OutboundServer + run_call with
callflow.machine_detection set; the call's verdict (CallResult.machine) is compared with what the number really
is (Debtor.kind). Prints the confusion counts, accuracy, how many machines heard the message (missed) and how
many people were taken for machines (lost calls). The mix's speech (greeting lengths, silent people, beeps) is
an assumption written in ivr/sim/script.py (_with_speech), not a measurement of real phones.

    .venv/bin/python scripts/machine_accuracy.py --numbers 3000 --seed 1 --mode heuristic
    .venv/bin/python scripts/machine_accuracy.py --mode avmd --machine-share 20
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import uuid as uuidlib
import wave
from datetime import UTC, datetime
from pathlib import Path

import gevent
from gevent.event import AsyncResult
from gevent.pool import Pool

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ivr.callflow import CallContext, run_call  # noqa: E402
from ivr.clock import ScaledClock  # noqa: E402
from ivr.config import Config  # noqa: E402
from ivr.sim import Script, SimServer  # noqa: E402
from ivr.sim.script import DEFAULT_WEIGHTS  # noqa: E402
from ivr.speech import Rendered  # noqa: E402
from ivr.switch.dialstring import build_originate  # noqa: E402
from ivr.switch.esl import EslClient  # noqa: E402
from ivr.switch.outbound import OutboundServer  # noqa: E402

LENGTHS_MS = {"greeting": 2500, "message": 4000, "menu": 1000, "invalid": 500, "pay_now": 500,
              "callback_confirmed": 500, "already_paid": 500, "wrong_number": 500, "optout_confirmed": 500,
              "no_input": 500, "goodbye": 500, "right_party": 1000, "machine_message": 3000, "are_you_there": 1200}


def _wav(path: Path, ms: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x00" * (8 * ms))


def measure(numbers: int, seed: int, mode: str, scale: float, machine_share: float | None,
            parallel: int) -> dict:
    weights = dict(DEFAULT_WEIGHTS)
    if machine_share is not None:
        weights["machine"] = machine_share
    nums = [f"+38050{4000000 + i:07d}" for i in range(numbers)]
    script = Script.random_mix(nums, seed=seed, weights=weights)
    answering = [n for n in nums if script.for_number(n).answers]
    tmp = Path(tempfile.mkdtemp(prefix="amd-"))
    rendered = {}
    for key, ms in LENGTHS_MS.items():
        _wav(tmp / f"{key}.wav", ms)
        rendered[key] = Rendered(playback=str(tmp / f"{key}.wav"), duration_ms=ms)
    settings = dataclasses.replace(Config().callflow, machine_detection=mode, menu_rounds=1, menu_timeout_ms=1000)
    clock = ScaledClock(start=datetime(2026, 11, 23, 17, 0, tzinfo=UTC), scale=scale)
    sim = SimServer(clock=clock, script=script).start()
    results: dict[str, AsyncResult] = {}

    def handler(session):
        ctx = CallContext(accounts=["ACC-1"], lang="en", settings=settings, messages={"ACC-1": rendered["message"]},
                          prompts=rendered, attempt="amd")
        results[session.uuid].set(run_call(session, ctx))

    out = OutboundServer("127.0.0.1", 0, handler, hangup_wait=5.0, transfer_wait=5.0)
    out.start()
    esl = EslClient("127.0.0.1", sim.port, "ClueCon", timeout=30.0)
    esl.start()
    counts = {"machine_as_machine": 0, "machine_as_person": 0, "person_as_person": 0, "person_as_machine": 0,
              "hung_up_first": 0}

    def one(number: str) -> None:
        uuid = str(uuidlib.uuid4())
        results[uuid] = AsyncResult()
        arg = build_originate(uuid=uuid, attempt_id=1, account="ACC-1", number=number, socket_host="127.0.0.1",
                              socket_port=out.port, gateway="trunk")
        job = esl.bgapi("originate " + arg).get(timeout=120)
        if not str(job).startswith("+OK"):
            return
        result = results[uuid].get(timeout=120)
        is_machine = script.for_number(number).kind == "machine"
        if not result.machine_checked:
            counts["hung_up_first"] += 1  # gone before any verdict: neither right nor wrong
            return
        key = ("machine" if is_machine else "person") + "_as_" + ("machine" if result.machine else "person")
        counts[key] += 1

    pool = Pool(parallel)
    for n in answering:
        pool.spawn(one, n)
    pool.join()
    esl.stop()
    out.stop()
    sim.stop()
    gevent.sleep(0)
    judged = sum(v for k, v in counts.items() if k != "hung_up_first")
    right = counts["machine_as_machine"] + counts["person_as_person"]
    machines = counts["machine_as_machine"] + counts["machine_as_person"]
    people = counts["person_as_person"] + counts["person_as_machine"]
    return {**counts, "numbers": numbers, "answering": len(answering), "judged": judged,
            "accuracy": right / judged if judged else 0.0,
            "machines_caught": counts["machine_as_machine"] / machines if machines else 0.0,
            "people_lost": counts["person_as_machine"] / people if people else 0.0}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--numbers", type=int, default=3000, help="numbers in the mix (default 3000)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--mode", choices=("heuristic", "avmd"), default="heuristic")
    p.add_argument("--scale", type=float, default=50.0, help="simulated seconds per real second (default 50)")
    p.add_argument("--machine-share", type=float, default=None,
                   help="weight of machines in the mix instead of the default evening's 2 (of 100)")
    p.add_argument("--parallel", type=int, default=200, help="calls at once (default 200)")
    a = p.parse_args()
    r = measure(a.numbers, a.seed, a.mode, a.scale, a.machine_share, a.parallel)
    for k, v in r.items():
        print(f"{k}: {v:.3f}" if isinstance(v, float) else f"{k}: {v}")


if __name__ == "__main__":
    main()
