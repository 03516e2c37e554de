"""Answering-machine detection at the start of a call (cfg.callflow.machine_detection), and what a machine gets.

A machine must never hear the amount or the account: the flow asks `detect(call)` BEFORE the first word that
names the debtor, and a machine gets only `machine_message` (company and office number) or nothing.

`avmd` — FreeSWITCH's mod_avmd. `avmd_start` puts a beep detector on the channel; on a beep the module fires a
CUSTOM event `Event-Subclass: avmd::beep` (headers Unique-ID, `Call-command: avmd`, `Beep-Status: DETECTED`,
Frequency, Frequency-variance, Amplitude, Amplitude-variance, Detection-time, Detector-*) and sets the channel
variable `avmd_detect=TRUE`; `avmd_stop` fires `avmd::stop` (`Beep-Status: DETECTED|NOTDETECTED`). CUSTOM events
are not part of `myevents`: the socket subscribes with `event plain CUSTOM avmd::beep avmd::stop` (subclass names
follow the word CUSTOM). (From mod_avmd.c and mod_event_socket.c of FreeSWITCH 1.10; no capture of our own.)
The flow plays the greeting, then waits in `sleep` steps (timed by FreeSWITCH, so a scaled simulator clock
agrees) until `machine_wait_ms` after the answer; a beep by then = machine. A machine whose greeting outlasts the
window is not caught (the window is the price a person pays in silence): the heuristic fits long greetings better.

`heuristic` — no module: the core app `wait_for_silence <thresh> <silence_hits> <listen_hits> <timeout_ms>`
(switch_ivr.c) listens in 20 ms frames; it returns once `listen_hits` loud frames were heard and then
`silence_hits` quiet ones in a row (+25 frames), setting `wait_for_silence_timeout=false`, or at the timeout
with `wait_for_silence_timeout=true` and `wait_for_silence_listenhits` = loud frames heard. So, right after the
answer and before we say anything:
1. speech that ends within `machine_greeting_ms` ("Алло?") = a person;
   speech for most of that time and still going = a machine's greeting;
   silence = not known yet:
2. the `are_you_there` prompt ("Алло, ви мене чуєте?"), then listen `machine_reply_ms`: a reply that ends = a person,
   no reply (or talk that never stops) = a machine.
After a machine's greeting the flow waits (bounded) for it to end, so the message lands on the recording.
The variables are read from the EXECUTE_COMPLETE of that very execution (they persist on the channel, and the
app sets `listenhits` only on a timeout).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("ivr.callflow")

FRAME_MS = 20            # wait_for_silence counts 20 ms frames (ptime 20)
SILENCE_FRAMES = 40      # 800 ms of quiet ends an utterance (a pause inside a machine greeting is shorter)
LISTEN_FRAMES = 5        # 100 ms of sound before anything counts as speech (clicks, line noise)
GREETING_END_WAIT_MS = 15000  # how long to wait for a machine's greeting (and beep) to end before the message
SLEEP_STEP_MS = 500      # avmd: the window is slept in steps so a beep ends it early
AVMD_EVENTS = ("CUSTOM", "avmd::beep", "avmd::stop")


@dataclass(frozen=True)
class Verdict:
    machine: bool
    why: str
    greeted: bool = False          # the greeting was already played during detection
    greeting_running: bool = False  # a machine's greeting was still going when we decided


def _beep_seen(session: Any, start: int) -> bool:
    for ev in session.events[start:]:
        if ev.name == "CUSTOM" and ev.get("Event-Subclass") == "avmd::beep":
            return True
    return False


def _listen(call: Any, timeout_ms: int) -> tuple[str, int]:
    """One wait_for_silence: ('ended', 0) when speech came and stopped, ('timeout', loud_ms) otherwise."""
    s = call.s
    arg = f"{s.machine_silence_threshold} {SILENCE_FRAMES} {LISTEN_FRAMES} {timeout_ms}"
    res = call.exec("wait_for_silence", arg, timeout_ms / 1000)
    ev = res.complete
    if ev is None:
        return "timeout", 0
    if ev.get("variable_wait_for_silence_timeout") == "false":
        return "ended", 0
    hits = ev.get("variable_wait_for_silence_listenhits") or "0"
    return "timeout", (int(hits) * FRAME_MS if hits.isdigit() else 0)


def heuristic(call: Any) -> Verdict:
    s = call.s
    how, loud_ms = _listen(call, s.machine_greeting_ms)
    if how == "ended":
        return Verdict(False, "a short answer, then quiet")
    if loud_ms >= s.machine_greeting_ms // 2:
        return Verdict(True, f"a greeting still going after {s.machine_greeting_ms} ms ({loud_ms} ms of speech)",
                       greeting_running=True)
    call.play("are_you_there")
    how, loud_ms = _listen(call, s.machine_reply_ms)
    if how == "ended":
        return Verdict(False, "replied to hello")
    if loud_ms >= s.machine_reply_ms // 2:
        return Verdict(True, f"talked through hello without a pause ({loud_ms} ms)", greeting_running=True)
    return Verdict(True, "no reply to hello")


def avmd(call: Any) -> Verdict:
    s = call.s
    session = call.session
    subscribe = getattr(session, "subscribe", None)
    if subscribe is not None:
        subscribe(*AVMD_EVENTS)
    start = len(session.events)
    call.exec("avmd_start", "", 5.0)
    call.play("greeting")
    waited = call.ctx.prompt("greeting").duration_ms  # call time since the answer, as FreeSWITCH counts it
    while not _beep_seen(session, start) and waited < s.machine_wait_ms:
        step = min(SLEEP_STEP_MS, s.machine_wait_ms - waited)
        call.exec("sleep", str(step), step / 1000)
        waited += step
    beep = _beep_seen(session, start)
    call.exec("avmd_stop", "", 5.0)  # the detector costs CPU on the switch; the decision is made
    if beep:
        return Verdict(True, "avmd: beep", greeted=True)
    return Verdict(False, f"avmd: no beep within {s.machine_wait_ms} ms", greeted=True)


def detect(call: Any) -> Verdict:
    """Run the configured detector on the answered call (raises the flow's _CallerGone on a hang-up)."""
    mode = call.s.machine_detection
    verdict = avmd(call) if mode == "avmd" else heuristic(call)
    log.info("call=%s attempt=%s event=machine_detection mode=%s machine=%s why=%s", call.session.uuid,
             call.ctx.attempt, mode, verdict.machine, verdict.why)
    return verdict


def answer_machine(call: Any, verdict: Verdict) -> None:
    """What a machine gets: the machine_message after its greeting ended (bounded wait), or nothing."""
    if call.s.machine_action != "message":
        return
    if verdict.greeting_running:
        _listen(call, GREETING_END_WAIT_MS)
    call.play("machine_message")
