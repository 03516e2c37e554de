"""Whole calls end to end: the simulated FreeSWITCH (ivr.sim) + EslClient bgapi originate + OutboundServer +
run_call, with real WAV prompts, scripted debtors and a scaled clock (call seconds run 20x faster).
Each case runs with the message as one WAV and as a `file_string://` segment list: the heard rule must give the
same answers for both (one PLAYBACK_START/STOP for the list, offset against the list's total length)."""

from __future__ import annotations

import pytest
from sim_calls import sim_call_rig

from ivr.sim import Debtor, Script
from ivr.speech import Rendered
from ivr.speech.silent import silent_wav

SCALE = 20.0
WAIT_S = 15.0  # real seconds: far above the longest call here (~12 call-seconds = 0.6 s real)
LENGTHS_MS = {"greeting": 500, "message": 3000, "menu": 1500, "invalid": 500, "pay_now": 500,
              "callback_confirmed": 500, "already_paid": 500, "wrong_number": 500, "optout_confirmed": 500,
              "no_input": 500,
              "goodbye": 500, "right_party": 1000}
# call-seconds after the answer: greeting 0-0.5, message 0.5-3.5, menu 3.5-5.0
LISTEN, HANG_UP_EARLY, PRESS_1, PRESS_2 = "+380501230001", "+380501230002", "+380501230003", "+380501230004"
CONFIRMS = "+380501230005"  # presses 1 at the right-party question
OPTS_OUT = "+380501230006"  # presses 8 (callflow.optout_key) in the menu


@pytest.fixture(params=["wav", "file_string"])
def rig(request, tmp_path, cfg):
    """A call placer; the message is one WAV, or a segment list of two WAVs (what Speech renders by default)."""
    rendered = {}
    if request.param == "file_string":
        halves = [tmp_path / "msg_a.wav", tmp_path / "msg_b.wav"]
        for half in halves:
            silent_wav(half, LENGTHS_MS["message"] // 2 / 1000)
        rendered["message"] = Rendered(playback="file_string://" + "!".join(map(str, halves)),
                                       duration_ms=LENGTHS_MS["message"])
    script = (Script()
              .add(LISTEN, Debtor.listen())
              .add(HANG_UP_EARLY, Debtor.answer(hangup_in_playback=(2, 1.0)))  # 1 s into the message
              # keys go in when the menu (or the right-party question) starts, as a listener's would: not at a
              # call-second, which scheduling delay on a loaded machine can move out of the menu
              .add(PRESS_1, Debtor.answer(menu_press="1"))
              .add(PRESS_2, Debtor.answer(menu_press="2"))
              .add(CONFIRMS, Debtor.answer(menu_press="1"))
              .add(OPTS_OUT, Debtor.answer(menu_press="8")))
    with sim_call_rig(tmp_path, cfg, script, LENGTHS_MS, scale=SCALE, wait_s=WAIT_S, rendered=rendered) as call:
        yield call


def test_heard_call(rig):
    result, session = rig(LISTEN)
    assert result.outcome == "heard" and result.heard
    assert result.heard_ms >= 0.9 * 3000 and result.message_ms == 3000
    assert result.choice == "" and not result.caller_hung_up
    menus = [ev.get("Application-Data") for ev in session.events
             if ev.name == "CHANNEL_EXECUTE" and ev.get("Application") == "play_and_get_digits"]
    assert len(menus) == 1 and menus[0].startswith("1 1 2 5000 # ") and "ivr_choice [123980] 3000" in menus[0]


def test_early_hangup_call(rig):
    result, _ = rig(HANG_UP_EARLY)
    assert result.outcome == "early_hangup" and not result.heard and result.caller_hung_up
    # the debtor hung up 1.0 call-second into the message: the position says so, not playback_ms
    assert 500 <= result.heard_ms <= 1500


def test_press_1_is_transferred(rig, cfg):
    result, session = rig(PRESS_1)
    assert result.outcome == "pay_now" and result.transferred and result.digits == "1" and result.heard
    transfers = [ev.get("Application-Data") for ev in session.events
                 if ev.name == "CHANNEL_EXECUTE" and ev.get("Application") == "transfer"]
    assert transfers == [cfg.callflow.paynow_transfer]


def test_press_2_asks_for_a_callback(rig):
    result, _ = rig(PRESS_2)
    assert result.outcome == "callback" and result.callback and result.digits == "2" and result.heard
    assert not result.caller_hung_up  # we ended the call after the confirmation


def test_press_8_opts_out_and_hears_the_confirmation(rig, tmp_path):
    result, session = rig(OPTS_OUT)
    assert result.outcome == "opted_out" and result.opted_out and result.digits == "8" and result.heard
    played = [ev.get("Application-Data") for ev in session.events
              if ev.name == "CHANNEL_EXECUTE" and ev.get("Application") == "playback"]
    assert played[-1] == str(tmp_path / "optout_confirmed.wav")
    assert not result.caller_hung_up  # we ended the call after the confirmation


def test_right_party_confirmed_hears_the_message(rig):
    result, session = rig(CONFIRMS, right_party_check=True)
    assert result.right_party is True and result.outcome == "heard" and result.heard
    assert result.digits == "1" and result.choice == ""


def test_right_party_silence_hears_no_amount(rig):
    result, session = rig(LISTEN, right_party_check=True)
    assert result.right_party is False and result.outcome == "not_heard" and result.message_ms == 0
    played = [ev.get("Application-Data") for ev in session.events
              if ev.name == "CHANNEL_EXECUTE" and ev.get("Application") == "playback"]
    assert not any("msg" in p or "message" in p for p in played)
