"""Answering-machine detection end to end: the simulated FreeSWITCH (its far end speaks, mod_avmd beeps) +
EslClient originate + OutboundServer + run_call with callflow.machine_detection avmd / heuristic.

A machine must never hear the message; it gets machine_message (or nothing) and the outcome `machine`."""

from __future__ import annotations

import dataclasses

import pytest
from sim_calls import sim_call_rig

from ivr.sim import Debtor, Script

SCALE = 20.0
WAIT_S = 60.0  # real seconds; only a hang would take this long
LENGTHS_MS = {"greeting": 1000, "message": 3000, "menu": 1500, "invalid": 500, "pay_now": 500,
              "callback_confirmed": 500, "already_paid": 500, "wrong_number": 500, "optout_confirmed": 500,
              "no_input": 500, "goodbye": 500, "right_party": 1000, "machine_message": 2000, "are_you_there": 800}

PERSON = "+380501240001"          # "Алло?" 0.8 s, then listens
SILENT_PERSON = "+380501240002"   # says nothing until asked, then replies
LONG_MACHINE = "+380501240003"    # 10 s greeting, beep
SHORT_MACHINE = "+380501240004"   # 3 s greeting, beep
SILENT_MACHINE = "+380501240005"  # no greeting, no beep, records silence


@pytest.fixture
def rig(tmp_path, cfg):
    script = (Script()
              .add(PERSON, Debtor.listen())
              .add(SILENT_PERSON, dataclasses.replace(Debtor.listen(), greeting_s=0.0))
              .add(LONG_MACHINE, Debtor.machine(greeting_s=10.0))
              .add(SHORT_MACHINE, Debtor.machine(greeting_s=3.0))
              .add(SILENT_MACHINE, Debtor.machine(greeting_s=0.0, beep=False)))
    with sim_call_rig(tmp_path, cfg, script, LENGTHS_MS, scale=SCALE, wait_s=WAIT_S) as call:
        yield call, tmp_path


def played(session) -> list[str]:
    return [ev.get("Application-Data").rsplit("/", 1)[-1] for ev in session.events
            if ev.name == "CHANNEL_EXECUTE" and ev.get("Application") == "playback"]


def apps(session) -> list[str]:
    return [ev.get("Application") for ev in session.events if ev.name == "CHANNEL_EXECUTE"]


@pytest.mark.parametrize("number", [PERSON, SILENT_PERSON])
def test_heuristic_lets_people_hear_the_message(rig, number):
    call, _ = rig
    result, session = call(number, machine_detection="heuristic")
    assert not result.machine and result.outcome == "heard" and result.heard
    assert "message.wav" in played(session) and "machine_message.wav" not in played(session)
    assert apps(session).index("wait_for_silence") < apps(session).index("playback")  # listened before speaking
    if number == SILENT_PERSON:
        assert played(session)[0] == "are_you_there.wav"  # silence: asked, and the reply made it a person
    else:
        assert "are_you_there.wav" not in played(session)


@pytest.mark.parametrize("number, why", [(LONG_MACHINE, "greeting still going"),
                                         (SILENT_MACHINE, "no reply to hello")])
def test_heuristic_machine_never_hears_the_message(rig, number, why):
    call, _ = rig
    result, session = call(number, machine_detection="heuristic")
    assert result.machine and result.outcome == "machine" and not result.heard
    assert why in result.detail
    assert all(a.outcome == "machine" for a in result.accounts.values())
    assert "message.wav" not in played(session) and "menu.wav" not in played(session)
    assert played(session)[-1] == "machine_message.wav"
    assert result.message_ms == 0 and result.heard_ms == 0


def test_heuristic_machine_message_waits_for_the_end_of_the_greeting(rig):
    call, _ = rig
    result, session = call(LONG_MACHINE, machine_detection="heuristic")
    # listened until the greeting and beep (10.6 call-seconds) were over before speaking
    start = next(ev for ev in session.events if ev.name == "PLAYBACK_START")
    first_listen = next(ev for ev in session.events
                        if ev.name == "CHANNEL_EXECUTE" and ev.get("Application") == "wait_for_silence")
    gap_s = (int(start.get("Event-Date-Timestamp")) - int(first_listen.get("Event-Date-Timestamp"))) / 1e6
    assert gap_s >= 10.6
    assert result.outcome == "machine"


def test_machine_action_hangup_leaves_nothing(rig):
    call, _ = rig
    result, session = call(SILENT_MACHINE, machine_detection="heuristic", machine_action="hangup")
    assert result.outcome == "machine" and "machine_message.wav" not in played(session)
    assert played(session) == ["are_you_there.wav"]


def test_avmd_beep_marks_a_machine(rig):
    call, _ = rig
    result, session = call(SHORT_MACHINE, machine_detection="avmd")
    assert result.machine and result.outcome == "machine" and "avmd: beep" in result.detail
    beeps = [ev for ev in session.events if ev.name == "CUSTOM" and ev.get("Event-Subclass") == "avmd::beep"]
    assert len(beeps) == 1 and beeps[0].get("Beep-Status") == "DETECTED"
    assert beeps[0].get("Unique-ID") == session.uuid
    assert played(session) == ["greeting.wav", "machine_message.wav"]
    assert "avmd_start" in apps(session) and "avmd_stop" in apps(session)


def test_avmd_no_beep_in_the_window_is_a_person(rig):
    call, _ = rig
    result, session = call(PERSON, machine_detection="avmd")
    assert not result.machine and result.outcome == "heard"
    assert "no beep" in result.detail
    stops = [ev for ev in session.events if ev.name == "CUSTOM" and ev.get("Event-Subclass") == "avmd::stop"]
    assert stops and stops[0].get("Beep-Status") == "NOTDETECTED"
    assert played(session)[:2] == ["greeting.wav", "message.wav"]  # greeting once, not twice


def test_avmd_misses_a_beep_after_the_window_and_heuristic_catches_it(rig):
    call, _ = rig
    missed, _ = call(LONG_MACHINE, machine_detection="avmd")  # beep at 10.2 s, window 6 s: the known limit
    assert not missed.machine
    caught, _ = call(LONG_MACHINE, machine_detection="avmd", machine_wait_ms=12000)
    assert caught.machine and caught.outcome == "machine"


def test_detection_off_changes_nothing(rig):
    call, _ = rig
    result, session = call(SHORT_MACHINE)
    assert not result.machine and "wait_for_silence" not in apps(session) and "avmd_start" not in apps(session)
