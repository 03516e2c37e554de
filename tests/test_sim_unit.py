"""The simulator's pure parts: URL-encoding, originate parsing, scripted debtors, media lengths, the trunk."""

from __future__ import annotations

import json
import re
import wave
from collections import Counter

import pytest
from conftest import load_transcript

from ivr.errors import IvrError
from ivr.sim import wire
from ivr.sim.media import Media, playback_vars, resolve
from ivr.sim.originate import OriginateError, parse_originate, split_args
from ivr.sim.script import Debtor, Script
from ivr.sim.trunk import Trunk

NAME = "Иванов, Иван Петрович"


def test_url_encode_matches_every_value_of_a_real_frame():
    """Decode each header value of real frames and re-encode it: the bytes must be identical."""
    from urllib.parse import unquote

    checked = 0
    for name in ("inbound_call_heard", "inbound_unicode_vars", "outbound_heard_press1", "inbound_bridge"):
        for rec in load_transcript(name).records:
            if rec.dir != "in" or "text/event-plain" not in rec.data[:60]:
                continue
            body = rec.data.split("\n\n", 1)[1]
            for line in body.split("\n"):
                if ": " not in line or line.startswith("Content-Length"):
                    continue
                _, raw = line.split(": ", 1)
                assert wire.url_encode(unquote(raw)) == raw, line
                checked += 1
    assert checked > 5000


def test_url_encode_keeps_the_literal_characters():
    assert wire.url_encode("a,b/c'(d)~!*$-._") == "a,b/c'(d)~!*$-._"
    assert wire.url_encode("{a=b}:@&\\^;") == "%7Ba%3Db%7D%3A%40%26%5C%5E%3B"
    assert wire.url_encode("x y\n") == "x%20y%0A"
    assert wire.url_encode(NAME).startswith("%D0%98%D0%B2")


def test_fixed_frames_are_byte_exact():
    t = load_transcript("inbound_auth_ok_api")
    real = [r.data.encode() for r in t.records if r.dir == "in"]
    assert real[0] == wire.AUTH_REQUEST
    assert wire.command_reply("+OK accepted") == real[1]
    assert wire.api_response("-ERR no_such_command Command not found!\n") == real[3]
    assert wire.disconnect_notice() == real[-1]
    press1 = load_transcript("outbound_heard_press1")
    notices = [r.data.encode() for r in press1.records if r.dir == "in" and "disconnect-notice" in r.data]
    uuid = "6236afaf-f1b9-4a14-817b-65085a7a0fac"
    assert wire.linger_notice(uuid, "sofia/external/8103@127.0.0.1:5080", -1) == notices[0]
    assert wire.disconnect_notice(uuid) == notices[1]


def test_json_event_counts_bytes_and_keeps_utf8():
    frame = wire.json_event([("Event-Name", "X"), ("variable_n", NAME)], "+OK\n")
    head, body = frame.split(b"\n\n", 1)
    assert int(head.split(b"\n")[0].split(b": ")[1]) == len(body)
    obj = json.loads(body)
    assert obj["variable_n"] == NAME and obj["_body"] == "+OK\n" and obj["Content-Length"] == "4"


# -- originate parsing: the escaping forms of inbound_unicode_vars ----------------------------------------------------
def _originate(block: str) -> str:
    return (f"{{origination_uuid=u1,ivr_attempt_id=42,{block}}}sofia/external/8100@127.0.0.1:5080 "
            "'&socket(127.0.0.1:8084 async full)'")


@pytest.mark.parametrize("block, value", [
    ("ivr_debtor_name='Иванов\\, Иван Петрович'", NAME),  # F1
    ("ivr_debtor_name=Иванов\\,\\sИван\\sПетрович", NAME),  # F6
    ("ivr_debtor_name='Иванов, Иван Петрович'", "Иванов"),  # F4: truncated, call proceeds
])
def test_escaping_forms(block, value):
    o = parse_originate(_originate(block))
    assert o.var("ivr_debtor_name") == value
    assert o.var("ivr_attempt_id") == "42" and o.var("origination_uuid") == "u1"


def test_caret_separator_form():  # F2
    o = parse_originate("{^^;origination_uuid=u2;ivr_debtor_name='Иванов, Иван Петрович'}"
                        "sofia/external/8100@127.0.0.1:5080 '&socket(127.0.0.1:8084 async full)'")
    assert o.var("ivr_debtor_name") == NAME and o.var("origination_uuid") == "u2"


@pytest.mark.parametrize("text", [
    "{^^;origination_uuid=u3;ivr_debtor_name=Иванов, Иван Петрович}sofia/external/8100@h '&park()'",  # F3
    "{origination_uuid=u5,ivr_debtor_name=Иванов\\, Иван Петрович}sofia/external/8100@h '&park()'",  # F5
])
def test_unquoted_spaces_give_destination_out_of_order(text):
    with pytest.raises(OriginateError) as exc:
        parse_originate(text)
    assert exc.value.reply() == "-ERR DESTINATION_OUT_OF_ORDER\n"


def test_socket_app_endpoint_and_usage():
    o = parse_originate("{a=1}sofia/gateway/trunk/+380501234567 '&socket(10.0.0.5:8084 async full)'")
    assert (o.endpoint.kind, o.endpoint.gateway, o.endpoint.number) == ("gateway", "trunk", "+380501234567")
    assert (o.app, o.socket_host, o.socket_port, o.socket_async, o.socket_full) == ("socket", "10.0.0.5", 8084,
                                                                                    True, True)
    o = parse_originate("loopback/8100 &park()")
    assert (o.endpoint.kind, o.app) == ("loopback", "park")
    with pytest.raises(OriginateError) as exc:
        parse_originate("sofia/gateway/trunk/123")
    assert exc.value.reply().startswith("-USAGE: ")
    with pytest.raises(OriginateError):
        parse_originate("sofia/gateway/trunk/123,sofia/gateway/trunk/999 &park()")  # a second leg
    with pytest.raises(OriginateError):
        parse_originate("sofia/gateway/trunk/12;3 &park()")


def test_brace_depth_and_quotes_in_split():
    assert split_args("{a='x y',b={c}}sofia/x/1 '&socket(h:1 async full)'") == [
        "{a=x y,b={c}}sofia/x/1", "&socket(h:1 async full)"]
    o = parse_originate("{a={x},b=2}sofia/external/1@h &park")
    assert o.var("a") == "{x}" and o.var("b") == "2"


# -- scripted debtors --------------------------------------------------------------------------------------------------
def test_script_lookup_ignores_plus_and_has_a_default():
    s = Script().add("+380501234567", Debtor.busy())
    assert s.for_number("380501234567").failure_cause == "USER_BUSY"
    assert s.for_number("+380501234567").kind == "busy"
    assert s.for_number("+380000000000").answers
    assert Debtor.machine().hangup_at() == 40.0 and not Debtor.machine().presses


def test_debtor_rejects_bad_values():
    with pytest.raises(ValueError):
        Debtor("sings")
    with pytest.raises(ValueError):
        Debtor.answer(press=("x", 1.0))
    with pytest.raises(ValueError):
        Debtor.answer(press=("1", -1.0))
    with pytest.raises(ValueError):
        Debtor.answer(menu_press="12")
    with pytest.raises(ValueError):
        Debtor.answer(hangup_in_playback=(0, 1.0))
    with pytest.raises(ValueError):
        Debtor.answer(press_in_playback=(1, "12", 1.0))
    with pytest.raises(ValueError):
        Debtor.answer(press_in_playback=(0, "1", 1.0))


def test_random_mix_is_seeded_and_realistic():
    numbers = [f"+38050{i:07d}" for i in range(4000)]
    a, b = Script.random_mix(numbers, seed=3), Script.random_mix(numbers, seed=3)
    assert a.debtors == b.debtors
    assert Script.random_mix(numbers, seed=4).debtors != a.debtors
    kinds = Counter()
    for d in a.debtors.values():
        if d.kind != "answer":
            kinds[d.kind] += 1
        elif d.menu_press:
            kinds["press" + d.menu_press] += 1
        elif d.hangup_after is not None:
            kinds["hangup_early"] += 1
        else:
            kinds["listen"] += 1
    share = {k: v / len(numbers) for k, v in kinds.items()}
    assert 0.12 < share["no_answer"] < 0.18 and 0.06 < share["busy"] < 0.10
    assert 0.30 < share["listen"] < 0.40 and 0.08 < share["press1"] < 0.12 and 0.05 < share["press2"] < 0.09
    assert 0.017 < share["unallocated"] < 0.045 and 0.17 < share["hangup_early"] < 0.23
    with pytest.raises(ValueError):
        Script.random_mix(numbers, seed=1, weights={"dance": 1})


def test_a_mix_and_a_script_can_have_debtors_press_8(tmp_path):
    numbers = [f"+38050{i:07d}" for i in range(50)]
    mix = Script.random_mix(numbers, seed=1, weights={"press8": 1, "listen": 1}, message_s=10.0)
    pressing = [d for d in mix.debtors.values() if d.menu_press]
    assert pressing and all(d.menu_press == "8" and not d.presses for d in pressing)
    path = tmp_path / "s.yaml"
    path.write_text('numbers:\n  "+380501234504": {press: [[8, 40.0]]}\n', encoding="utf-8")
    assert Script.load(path).for_number("+380501234504").presses == (("8", 40.0),)
    assert Script.load(mix.dump(tmp_path / "mix.yaml")).debtors == mix.debtors


def test_script_yaml(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text('default: busy\nnumbers:\n  "+380501234500": listen\n  "380501234501": {hangup_after: 2}\n'
                    '  "+380501234502": {press: [[1, 8.5]], ring: 3}\n  "380501234503": no_answer\n',
                    encoding="utf-8")
    s = Script.load(path)
    assert s.for_number("+380501234501").hangup_after == 2.0
    assert s.for_number("380501234502").presses == (("1", 8.5),) and s.for_number("380501234502").ring_s == 3
    assert s.for_number("380501234503").kind == "no_answer"
    assert s.for_number("+1999").kind == "busy"


@pytest.mark.parametrize("text, words", [
    ('numbers:\n  "+380501": sings\n', "number +380501"),
    ('numbers:\n  "abc": busy\n', "'abc'"),
    ('numbers:\n  "+3805": {hangup: 2}\n', "unknown key"),
    ("- 1\n- 2\n", "mapping"),
])
def test_script_yaml_errors_name_the_entry(tmp_path, text, words):
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(IvrError, match=re.escape(words)):
        Script.load(path)


# -- media -----------------------------------------------------------------------------------------------------------
def test_playback_variables_follow_the_real_server():
    m = Media("/x/msg_6s.wav", 6000)
    assert dict(playback_vars(m, None)) == {"playback_last_offset_pos": "48000", "playback_seconds": "6",
                                           "playback_ms": "6000", "playback_samples": "48000"}
    early = dict(playback_vars(m, 1.99))  # outbound_early_hangup
    assert early["playback_ms"] == "2048" and early["playback_samples"] == "16384"
    assert early["playback_last_offset_pos"] == "15840"
    assert dict(playback_vars(m, 2.2))["playback_ms"] == "4096"  # dtmf conn a
    menu = dict(playback_vars(Media("/x/menu.wav", 3000), 2.22, in_menu=True))
    assert menu["playback_ms"] == "3000" and menu["playback_last_offset_pos"] == "17760"
    fs = Media("file_string://a!b!c", 11000, 3)  # inbound_file_string
    assert dict(playback_vars(fs, None))["playback_ms"] == "11250"
    assert dict(playback_vars(fs, None))["playback_last_offset_pos"] == "90000"
    assert dict(playback_vars(fs, 2.98))["playback_ms"] == "4346"


def test_resolve_reads_wav_headers(tmp_path):
    for name, secs in (("a.wav", 1.5), ("b.wav", 0.25)):
        with wave.open(str(tmp_path / name), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(16000)
            w.writeframes(b"\0\0" * int(16000 * secs))
    assert resolve(str(tmp_path / "a.wav")).ms == 1500
    assert resolve("b.wav", tmp_path).ms == 250
    lst = resolve(f"file_string://{tmp_path}/a.wav!{tmp_path}/b.wav")
    assert (lst.ms, lst.segments) == (1750, 2)
    assert resolve(str(tmp_path / "missing.wav")) is None
    (tmp_path / "junk.wav").write_bytes(b"not a wav")
    assert resolve(str(tmp_path / "junk.wav")) is None
    assert resolve("silence_stream://500").ms == 500


# -- trunk -----------------------------------------------------------------------------------------------------------
def test_trunk_channels_and_rate():
    t = Trunk(channels=2)
    assert t.seize() and t.seize() and not t.seize()
    t.release()
    assert t.seize()
    r = Trunk(sessions_per_second=3)
    causes = [r.rate_refusal(10.0) for _ in range(13)]
    assert causes[:3] == [None, None, None]
    assert Counter(causes[3:]) == {"DESTINATION_OUT_OF_ORDER": 8, "NORMAL_TEMPORARY_FAILURE": 2}
    assert r.rate_refusal(11.01) is None  # a second later the window is free again
    assert not Trunk().knows("nosuchgw") and Trunk().knows("trunk")


def test_script_dump_reads_back_the_same_debtors(tmp_path):
    from ivr.sim.script import Debtor, Script

    mix = Script.random_mix([f"+38050{i:07d}" for i in range(200)], seed=5, message_s=8.0)
    mix.default = Debtor.listen()
    mix.add("+380509999999", Debtor.answer(menu_press="2", ring=1.5))
    mix.add("+380509999998", Debtor.answer(hangup_in_playback=(2, 1.25)))
    mix.add("+380509999997", Debtor.answer(press_in_playback=(1, 1, 2.2)))
    back = Script.load(mix.dump(tmp_path / "debtors.yaml"))
    assert back.for_number("+380509999999").menu_press == "2"
    assert back.for_number("+380509999998").hangup_in_playback == (2, 1.25)
    assert back.for_number("+380509999997").press_in_playback == (1, "1", 2.2)
    assert back.debtors == mix.debtors and back.default == mix.default
    assert {d.kind for d in back.debtors.values()} >= {"answer", "busy", "no_answer"}
