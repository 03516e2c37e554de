"""Whole calls against the simulated FreeSWITCH, for the call-flow tests that dial one number at a time.

`sim_call_rig(tmp_path, cfg, script, lengths_ms)` writes a silent WAV per prompt (its length in `lengths_ms`),
starts a SimServer with the debtor `script` on a ScaledClock, an OutboundServer whose calls run `run_call` and an
EslClient; it yields `call(number, **callflow overrides)`, which originates one call and returns
(CallResult, session) once the call flow has ended. `rendered` overrides what a prompt plays (e.g. the message as
a `file_string://` list). Every wait is for the call's own result, with a ceiling only a hang reaches.
"""

from __future__ import annotations

import dataclasses
import uuid as uuidlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import gevent
from gevent.event import AsyncResult

from ivr.callflow import CallContext, run_call
from ivr.clock import ScaledClock
from ivr.sim import Script, SimServer
from ivr.speech import Rendered
from ivr.speech.silent import silent_wav
from ivr.switch.dialstring import build_originate
from ivr.switch.esl import EslClient
from ivr.switch.outbound import OutboundServer


def silent_prompts(tmp_path: Path, lengths_ms: dict[str, int]) -> dict[str, Rendered]:
    """A silent WAV per prompt key, `lengths_ms[key]` long, as Speech would have rendered it."""
    rendered = {}
    for key, ms in lengths_ms.items():
        path = tmp_path / f"{key}.wav"
        silent_wav(path, ms / 1000)
        rendered[key] = Rendered(playback=str(path), duration_ms=ms)
    return rendered


@contextmanager
def sim_call_rig(tmp_path: Path, cfg, script: Script, lengths_ms: dict[str, int], *, scale: float, wait_s: float,
                 rendered: dict[str, Rendered] | None = None) -> Iterator:
    prompts = {**silent_prompts(tmp_path, lengths_ms), **(rendered or {})}
    clock = ScaledClock(start=datetime(2026, 11, 23, 17, 0, tzinfo=UTC), scale=scale)
    sim = SimServer(clock=clock, script=script).start()
    results: dict[str, AsyncResult] = {}
    settings = {"now": cfg.callflow}

    def handler(session):
        ctx = CallContext(accounts=["ACC-0001"], lang="en", settings=settings["now"],
                          messages={"ACC-0001": prompts["message"]}, prompts=prompts, attempt="sim")
        result = run_call(session, ctx)
        results.setdefault(session.uuid, AsyncResult()).set((result, session))

    out = OutboundServer("127.0.0.1", 0, handler, hangup_wait=5.0, transfer_wait=5.0)
    out.start()
    esl = EslClient("127.0.0.1", sim.port, "ClueCon", timeout=5.0)
    esl.start()

    def call(number: str, **overrides):
        settings["now"] = dataclasses.replace(cfg.callflow, **overrides)
        uuid = str(uuidlib.uuid4())
        results[uuid] = AsyncResult()
        arg = build_originate(uuid=uuid, attempt_id=1, account="ACC-0001", number=number,
                              socket_host="127.0.0.1", socket_port=out.port, gateway="trunk")
        job = esl.bgapi("originate " + arg).get(timeout=wait_s)
        assert job.startswith("+OK"), job
        return results[uuid].get(timeout=wait_s)

    try:
        yield call
    finally:
        esl.stop()
        out.stop()
        sim.stop()
        gevent.sleep(0)
