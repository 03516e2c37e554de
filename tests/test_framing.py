"""Every real FreeSWITCH transcript through FrameParser/parse_event: framing, decoded headers and bodies."""

from __future__ import annotations

import json
import random

import pytest
from conftest import FIXTURES, load_transcript

from ivr.switch.framing import Event, Frame, FrameParser, ProtocolError, decode_value, parse_event

ALL = sorted(p.name for p in FIXTURES.glob("*.jsonl"))
CASES = [(name, conn) for name in ALL for conn in load_transcript(name).conns]


def frames_of(name: str, conn: str | None = None) -> list[Frame]:
    t = load_transcript(name)
    return FrameParser().feed(t.stream("in", t.conns[0] if conn is None else conn))


def events_of(name: str, conn: str | None = None) -> list[Event]:
    return [parse_event(f) for f in frames_of(name, conn)]


@pytest.mark.parametrize("name,conn", CASES)
def test_every_transcript_frames_match_the_records_byte_for_byte(name, conn):
    t = load_transcript(name)
    records = [r.data.encode("utf-8") for r in t.records if r.dir == "in" and r.conn == conn]
    stream = t.stream("in", conn)
    frames = FrameParser().feed(stream)
    assert [f.raw for f in frames] == records
    assert b"".join(f.raw for f in frames) == stream
    for f in frames:
        if "Content-Length" in f.headers:
            assert len(f.body) == int(f.headers["Content-Length"])  # bytes, not characters
        else:
            assert f.body == b""


@pytest.mark.parametrize("name,conn", CASES)
def test_random_chunking_gives_the_same_frames(name, conn):
    stream = load_transcript(name).stream("in", conn)
    whole = [f.raw for f in FrameParser().feed(stream)]
    rng = random.Random(f"{name}/{conn}")
    for top in (7, 300, 9000):
        parser, got, i = FrameParser(), [], 0
        while i < len(stream):
            n = rng.randint(1, top)
            got += parser.feed(stream[i:i + n])
            i += n
        assert [f.raw for f in got] == whole
        assert parser.buffered == 0


def test_one_byte_at_a_time_and_every_split_point_of_a_frame():
    stream = load_transcript("outbound_event_uuid").stream("in")
    parser = FrameParser()
    got = []
    for i in range(len(stream)):
        got += parser.feed(stream[i:i + 1])
    assert b"".join(f.raw for f in got) == stream
    bg = [r.data.encode() for r in load_transcript("inbound_originate_failures").records
          if r.dir == "in" and "BACKGROUND_JOB" in r.data[:200]][0]
    for cut in range(1, len(bg)):
        p = FrameParser()
        assert p.feed(bg[:cut]) == []
        (frame,) = p.feed(bg[cut:])
        assert frame.raw == bg


def test_auth_and_api_replies():
    f = frames_of("inbound_auth_ok_api.jsonl")
    assert f[0].content_type == "auth/request" and f[0].body == b""
    assert f[1].reply_text == "+OK accepted"
    assert f[2].content_type == "api/response" and f[2].body.startswith(b"UP 0 years")
    assert len(f[2].body) == 372
    assert f[3].body == b"-ERR no_such_command Command not found!\n"
    assert f[6].reply_text == "+OK filter deleted. [all][]"
    assert f[-1].content_type == "text/disconnect-notice"
    assert parse_event(f[-1]).body == "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"
    bad = frames_of("inbound_auth_fail.jsonl")
    assert [x.content_type for x in bad] == ["auth/request", "command/reply", "text/disconnect-notice"]
    assert bad[1].reply_text == "-ERR invalid"


def test_background_job_inner_bodies_and_blocking_api_originate():
    evs = events_of("inbound_originate_failures.jsonl")
    bodies = [e.body for e in evs if e.name == "BACKGROUND_JOB"]
    assert bodies == ["-ERR USER_BUSY\n", "-ERR UNALLOCATED_NUMBER\n", "-ERR CALL_REJECTED\n", "-ERR NO_ANSWER\n",
                      "-ERR INVALID_GATEWAY\n"]
    job = next(e for e in evs if e.name == "BACKGROUND_JOB")
    assert job["Content-Length"] == "15"          # the inner one, not glued to the body as in greenswitch
    assert job["Job-Command"] == "originate"
    assert "8110" in job["Job-Command-Arg"]
    api = [f for f in frames_of("inbound_originate_failures.jsonl") if f.content_type == "api/response"]
    assert [a.body for a in api] == [b"-ERR USER_BUSY\n"]


def test_background_job_ok_carries_the_a_leg_uuid_and_matches_the_reply_job_uuid():
    t = load_transcript("inbound_call_heard")
    frames = FrameParser().feed(t.stream("in"))
    reply = next(f for f in frames if f.reply_text.startswith("+OK Job-UUID"))
    job = next(parse_event(f) for f in frames if parse_event(f).name == "BACKGROUND_JOB")
    a_uuid = "3606c8ee-569a-444b-a8ee-316b5f2920c6"
    assert job.body == f"+OK {a_uuid}\n"
    assert job["Job-UUID"] == reply.headers["Job-UUID"] == reply.reply_text.split(": ")[1]
    answers = [e for e in map(parse_event, frames) if e.name == "CHANNEL_ANSWER"]
    assert a_uuid in {e.uuid for e in answers}
    a = next(e for e in answers if e.uuid == a_uuid)
    assert a["Channel-State"] == "CS_CONSUME_MEDIA" and a["Answer-State"] == "answered"
    assert a.variable("ivr_attempt_id") == "42" and a.variable("ivr_account") == "ACC-0001"


def test_repeated_hangup_cause_and_hangup_complete_variables():
    evs = events_of("outbound_early_hangup.jsonl")
    hc = next(e for e in evs if e.name == "CHANNEL_HANGUP_COMPLETE")
    assert hc.get_all("Hangup-Cause") == ["NORMAL_CLEARING", "NORMAL_CLEARING"]
    assert hc["Hangup-Cause"] == "NORMAL_CLEARING"
    assert hc.variable("sip_hangup_disposition") == "recv_bye"
    assert hc.get_all("No-Such-Header") == []
    assert len([k for k, _ in hc.items() if k == "Hangup-Cause"]) == 2


def test_early_hangup_playback_facts():
    evs = events_of("outbound_early_hangup.jsonl")
    names = [e.name for e in evs if e.name]
    assert names.index("CHANNEL_HANGUP") < names.index("PLAYBACK_STOP")
    stop = next(e for e in evs if e.name == "PLAYBACK_STOP")
    assert stop["Playback-Status"] == "done"
    assert stop.variable("playback_last_offset_pos") == "15840"
    assert stop["Playback-File-Path"] == "/var/lib/ivr/prompts/msg_6s.wav"
    done = next(e for e in evs if e.name == "CHANNEL_EXECUTE_COMPLETE" and e["Application"] == "playback")
    assert done["Application-Response"] == "PLAYBACK ERROR"


def test_connect_reply_channel_data_decoded_per_value():
    frames = frames_of("outbound_heard_press1.jsonl")
    connect = frames[0]
    assert connect.content_type == "command/reply" and connect.body == b""
    assert connect.headers["Reply-Text"] == "%2BOK%0A"       # outer headers are kept as sent
    data = parse_event(connect)
    assert data["Reply-Text"] == "+OK\n"
    assert connect.reply_text == "+OK\n"
    assert data.name == "CHANNEL_DATA"
    assert data["Socket-Mode"] == "async" and data["Control"] == "full"
    assert data.variable("ivr_attempt_id") == "42" and data.variable("ivr_account") == "ACC-0001"
    assert data["Channel-State"] == "CS_EXECUTE" and data["Answer-State"] == "answered"
    assert data.uuid and data.uuid == data.variable("uuid")
    assert len(data.items()) > 150


def test_linger_and_disconnect_notices():
    frames = frames_of("outbound_call_heard.jsonl")
    notices = [f for f in frames if f.content_type == "text/disconnect-notice"]
    assert [n.headers["Content-Disposition"] for n in notices] == ["linger", "disconnect"]
    linger, bye = notices
    assert linger.headers["Linger-Time"] == "-1" and linger.body == b"" and linger.headers["Content-Length"] == "0"
    assert linger.headers["Controlled-Session-UUID"] == "3606c8ee-569a-444b-a8ee-316b5f2920c6"
    assert bye.body.startswith(b"Disconnected, goodbye.")
    l5 = [f for f in frames_of("outbound_early_hangup_linger5.jsonl") if f.content_type == "text/disconnect-notice"]
    assert l5[0].headers["Linger-Time"] == "5"


def test_cyrillic_variable_in_plain_events_and_connect_reply():
    evs = events_of("inbound_unicode_vars.jsonl")
    values = {e.variable("ivr_debtor_name") for e in evs} - {None}
    assert "Иванов, Иван Петрович" in values      # F1/F2/F6 forms
    assert "Иванов" in values                     # F4: quotes without \, truncates
    t = load_transcript("outbound_unicode_connect")
    for conn in t.conns:
        data = parse_event(FrameParser().feed(t.stream("in", conn))[0])
        assert data.variable("ivr_debtor_name") in ("Иванов, Иван Петрович", "Иванов")


def test_json_events_flat_object_and_body():
    frames = frames_of("inbound_json_sample.jsonl")
    evs = [parse_event(f) for f in frames if f.content_type == "text/event-json"]
    assert evs and all(e.content_type == "text/event-json" for e in evs)
    create = next(e for e in evs if e.name == "CHANNEL_CREATE")
    raw = create.frame.body
    assert int(create.frame.headers["Content-Length"]) == len(raw) > len(raw.decode("utf-8"))
    named = [e for e in evs if e.variable("ivr_debtor_name")]
    assert named and named[0].variable("ivr_debtor_name") == "Иванов, Иван Петрович"
    job = next(e for e in evs if e.name == "BACKGROUND_JOB")
    assert job.body == "+OK c62eccfe-74c2-42fb-8743-2fb9fecf2a8f\n"
    assert job["Content-Length"] == "41" and "_body" not in job and job.keys().count("_body") == 0
    hc = next(e for e in evs if e.name == "CHANNEL_HANGUP_COMPLETE")
    assert hc["Hangup-Cause"] == "NORMAL_CLEARING"
    assert json.loads(raw)["Event-Name"] == "CHANNEL_CREATE"


def test_event_plain_items_roundtrip_against_a_naive_split():
    # the lazy lookups agree with a plain split-then-decode of every line, for every event of a call
    for ev in events_of("inbound_call_heard.jsonl"):
        if ev.content_type != "text/event-plain":
            continue
        head = ev.frame.body.split(b"\n\n", 1)[0]
        naive: dict[str, str] = {}
        for line in head.split(b"\n"):
            k, _, v = line.partition(b": ")
            naive.setdefault(k.decode(), decode_value(v))
        for k, v in naive.items():
            assert ev[k] == v
        assert ev.keys() == list(naive)


# -- hostile and malformed input -------------------------------------------------------------------------------

def plain_event(lines: list[str], inner: bytes | None = None) -> bytes:
    body = "".join(f"{line}\n" for line in lines).encode()
    body += b"Content-Length: %d\n\n" % len(inner) + inner if inner is not None else b"\n"
    return b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % len(body) + body


def test_a_decoded_newline_cannot_forge_a_header():
    frame = plain_event(["Event-Name: CHANNEL_ANSWER", "Unique-ID: abc",
                         "variable_name: x%0AEvent-Name: BACKGROUND_JOB%0AUnique-ID: evil%0A%0A+OK"])
    (f,) = FrameParser().feed(frame)
    ev = parse_event(f)
    assert ev.name == "CHANNEL_ANSWER" and ev.uuid == "abc"
    assert ev.variable("name") == "x\nEvent-Name: BACKGROUND_JOB\nUnique-ID: evil\n\n+OK"
    assert ev.get_all("Event-Name") == ["CHANNEL_ANSWER"]
    assert [k for k, _ in ev.items()] == ["Event-Name", "Unique-ID", "variable_name"]
    assert ev.body == ""


def test_header_name_inside_a_value_is_not_a_header():
    (f,) = FrameParser().feed(plain_event(["Event-Name: X", "variable_a: Unique-ID: forged", "variable_b: 1"]))
    ev = parse_event(f)
    assert ev.get("Unique-ID") is None and "Unique-ID" not in ev
    assert ev.variable("a") == "Unique-ID: forged"


def test_inner_body_lookup_stays_inside_the_header_block():
    (f,) = FrameParser().feed(plain_event(["Event-Name: BACKGROUND_JOB", "Job-UUID: j1"],
                                          b"Job-UUID: forged\nUnique-ID: x\n"))
    ev = parse_event(f)
    assert ev["Job-UUID"] == "j1" and ev.get("Unique-ID") is None
    assert ev.body == "Job-UUID: forged\nUnique-ID: x\n"


def test_undef_reads_as_present_and_empty():
    (f,) = FrameParser().feed(plain_event(["Event-Name: X", "Caller-Caller-ID-Name: _undef_"]))
    ev = parse_event(f)
    assert ev.get("Caller-Caller-ID-Name", "default") == "" and "Caller-Caller-ID-Name" in ev
    assert ev.raw("Caller-Caller-ID-Name") == "_undef_"


@pytest.mark.parametrize("length", [b"abc", b"-1", b"5\r", b" 5", b"\xd9\xa3", b"", b"99999999999999"])
def test_bad_content_length_is_a_protocol_error_and_earlier_frames_survive(length):
    good = b"Content-Type: command/reply\nReply-Text: +OK\n\n"
    parser = FrameParser()
    with pytest.raises(ProtocolError) as err:
        parser.feed(good + b"Content-Type: api/response\nContent-Length: " + length + b"\n\nxxxxx")
    assert [f.raw for f in err.value.frames] == [good]
    with pytest.raises(ProtocolError):
        parser.feed(good)                         # position unknown: refuse until reset
    parser.reset()
    assert [f.raw for f in parser.feed(good)] == [good]


def test_header_line_without_separator_and_runaway_header_are_protocol_errors():
    with pytest.raises(ProtocolError):
        FrameParser().feed(b"Content-Type: command/reply\nnot a header\n\n")
    parser = FrameParser()
    with pytest.raises(ProtocolError):
        for _ in range(40):
            parser.feed(b"X: " + b"y" * 65536)


def test_stray_blank_lines_between_frames_are_skipped():
    good = b"Content-Type: command/reply\nReply-Text: +OK\n\n"
    frames = FrameParser().feed(b"\n" + good + b"\n\n" + good)
    assert [f.raw for f in frames] == [good, good]


def test_bad_inner_content_length_and_bad_json():
    (f,) = FrameParser().feed(plain_event(["Event-Name: BACKGROUND_JOB", "Content-Length: 99"])[:-1] + b"\nab")
    with pytest.raises(ProtocolError):
        _ = parse_event(f).body
    for body in (b"{not json", b"[1, 2]", b"\xff\xfe"):
        frame = b"Content-Length: %d\nContent-Type: text/event-json\n\n" % len(body) + body
        (f,) = FrameParser().feed(frame)
        with pytest.raises(ProtocolError):
            parse_event(f)
