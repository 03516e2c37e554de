"""The heard rule against REAL FreeSWITCH 1.10 events (tests/fixtures), parsed by the project parser."""

from __future__ import annotations

import pytest
from callflow_support import ExecResult, edited, events, group, one

from ivr.callflow.heard import judge, offset_ms

SHARE = 0.9
MSG_MS = 6000  # msg_6s.wav


def test_message_played_to_the_end_is_heard():
    r = one("outbound_call_heard", "playback", 0)
    h = judge(r, MSG_MS, SHARE)
    assert h.heard and h.heard_ms == 6000 and h.key == ""


@pytest.mark.parametrize("name", ["outbound_early_hangup", "outbound_early_hangup_linger5"])
def test_early_hangup_is_not_heard_although_status_says_done(name):
    r = one(name, "playback", 0)
    # what a naive rule would trust: the real server said done
    assert r.playback_stop.get("Playback-Status") == "done"
    h = judge(r, MSG_MS, SHARE)
    assert not h.heard
    assert "PLAYBACK ERROR" in h.why
    # the true position, not playback_ms (2048): 15840 / 16000 samples
    assert h.heard_ms == {"outbound_early_hangup": 1980, "outbound_early_hangup_linger5": 2000}[name]
    assert r.complete.get("variable_playback_ms") == "2048"


def test_hangup_before_stop_alone_means_not_heard():
    heard = one("outbound_call_heard", "playback", 0)
    r = ExecResult(app="playback", response="FILE PLAYED", complete=heard.complete,
                   playback_stop=heard.playback_stop, hangup_seen_before_stop=True, hungup=True, dtmf=[])
    h = judge(r, MSG_MS, SHARE)
    assert not h.heard and "hung up" in h.why


def test_missing_playback_stop_cannot_prove_heard():
    heard = one("outbound_call_heard", "playback", 0)
    r = ExecResult(app="playback", response="FILE PLAYED", complete=heard.complete, playback_stop=None,
                   hangup_seen_before_stop=False, hungup=False, dtmf=[])
    assert not judge(r, MSG_MS, SHARE).heard


def test_no_complete_is_not_heard():
    r = ExecResult(app="playback", response="", complete=None, playback_stop=None,
                   hangup_seen_before_stop=False, hungup=True, dtmf=[])
    assert not judge(r, MSG_MS, SHARE).heard


def test_position_short_of_the_share_is_not_heard():
    heard = one("outbound_call_heard", "playback", 0)
    short = edited(heard.complete, variable_playback_last_offset_pos="40000")  # 5000 ms of 6000
    stop = edited(heard.playback_stop, variable_playback_last_offset_pos="40000")
    r = ExecResult(app="playback", response="FILE PLAYED", complete=short, playback_stop=stop,
                   hangup_seen_before_stop=False, hungup=False, dtmf=[])
    assert not judge(r, MSG_MS, 0.9).heard          # 5000 < 5400
    assert judge(r, MSG_MS, 0.8).heard              # 5000 >= 4800
    assert judge(r, MSG_MS, 0.9).heard_ms == 5000


def test_stored_duration_decides_not_the_file():
    # the same real events judged against a longer stored message: 6 s of 10 s is not heard
    r = one("outbound_call_heard", "playback", 0)
    assert not judge(r, 10000, SHARE).heard


def test_file_not_found_is_not_heard():
    r = one("outbound_file_not_found", "playback", 0)
    h = judge(r, MSG_MS, SHARE)
    assert not h.heard and "FILE NOT FOUND" in h.why and h.heard_ms == 0


def test_barge_in_key_1_is_heard_by_key():
    r = one("outbound_dtmf_during_message", "playback", 0, conn="a")  # playback_terminators=1, key 1 at ~2.2 s
    h = judge(r, MSG_MS, SHARE, keys="12")
    assert h.heard and h.key == "1"
    assert h.heard_ms == 2200  # 17600 samples


def test_break_without_barge_in_falls_back_to_the_position():
    r = one("outbound_dtmf_during_message", "playback", 0, conn="a")
    h = judge(r, MSG_MS, SHARE, keys="")
    assert not h.heard and h.key == ""


def test_break_by_a_key_not_allowed_is_not_attention():
    r = one("outbound_dtmf_during_message", "playback", 0, conn="a")
    assert not judge(r, MSG_MS, SHARE, keys="2").heard


def test_default_terminators_key_does_not_stop_the_message():
    r = one("outbound_dtmf_during_message", "playback", 0, conn="b")
    assert r.dtmf == ["1"]
    h = judge(r, MSG_MS, SHARE, keys="12")
    assert h.heard and h.key == ""  # heard by position: the digit did not end it


def test_later_playback_after_a_barge_in_is_judged_on_its_own():
    # conn a: after the key-1 break, goodbye.wav played out; its events no longer carry the terminator used
    r = one("outbound_dtmf_during_message", "playback", 1, conn="a")
    assert r.complete.get("variable_playback_terminator_used") is None
    h = judge(r, 2000, SHARE, keys="12")
    assert h.heard and h.key == ""


# -- segment lists: file_string:// (inbound socket transcript, one START/STOP for the whole list) --------------
def _file_string_results():
    evs = events("inbound_file_string")
    uuids = []
    for ev in evs:
        if ev.name == "CHANNEL_ANSWER" and ev.uuid not in uuids:
            uuids.append(ev.uuid)
    return [one_playback(group([e for e in evs if e.uuid == u])) for u in uuids]


def one_playback(results):
    (r,) = [x for x in results if x.app == "playback"]
    return r


def test_segment_list_listened_to_is_heard_against_the_total():
    listened, _ = _file_string_results()
    assert listened.complete.get("Application-Data", "").startswith("file_string://")
    assert listened.playback_stop.get("Playback-File-Path", "").startswith("file_string://")
    h = judge(listened, 11000, SHARE)  # 6 + 3 + 2 s
    assert h.heard
    assert offset_ms(listened) == 11250 and h.heard_ms == 11000  # capped at the stored length


def test_segment_list_hangup_at_3s_is_not_heard_even_by_position():
    _, hung = _file_string_results()
    assert hung.hangup_seen_before_stop and hung.playback_stop.get("Playback-Status") == "done"
    h = judge(hung, 11000, SHARE)
    assert not h.heard
    assert offset_ms(hung) == 2980  # 23840 samples, while playback_ms says 4346
    assert hung.complete.get("variable_playback_ms") == "4346"
    # even a lenient share would not turn it into heard: FILE PLAYED is missing and the hangup came first
    assert not judge(hung, 11000, 0.1).heard
