"""Fuzzing the ESL parser with mutations of the real transcripts (issue 7): it raises nothing but ProtocolError,
never invents a header, and the client's reader survives garbage (stays up or reconnects)."""

from __future__ import annotations

import contextlib

import gevent
import gevent.event
from conftest import load_transcript
from esl_fakes import FakeServer, Peer, in_frames, reply
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from waiting import CEILING

from ivr.switch.errors import EslError, ProtocolError
from ivr.switch.esl import EslClient
from ivr.switch.framing import Event, FrameParser, parse_event

SOURCES = {
    "auth_ok_api": load_transcript("inbound_auth_ok_api").stream("in"),
    "event_uuid": load_transcript("outbound_event_uuid").stream("in"),
    "failures_head": load_transcript("inbound_originate_failures").stream("in")[:60000],
    "json_head": load_transcript("inbound_json_sample").stream("in")[:40000],
}
NASTY = [b"\n", b"\n\n", b": ", b"Content-Length: ", b"Content-Length: 99999999\n\n", b"Content-Length: -1\n",
         b"%0A", b"%0AEvent-Name: FORGED", b"\r\n", b"\x00", b"\xff\xfe", b"Content-Type: text/event-json\n",
         b"{", b"Event-Name: ", b"9", b"Content-Length: 0\n\n"]


@st.composite
def mutated_streams(draw) -> bytes:
    data = bytearray(SOURCES[draw(st.sampled_from(sorted(SOURCES)))])
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "duplicate"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            data[pos:pos] = draw(st.one_of(st.sampled_from(NASTY), st.binary(min_size=1, max_size=16)))
        elif op == "delete":
            del data[pos:pos + draw(st.integers(1, 64))]
        elif op == "truncate":
            del data[pos:]
        elif op == "duplicate":
            n = draw(st.integers(1, 512))
            data[pos:pos] = data[pos:pos + n]
    return bytes(data)


def read_everything(ev: Event) -> None:
    """Everything a consumer could touch; only ProtocolError may come out (from .body)."""
    _ = ev.name, ev.uuid, ev.variable("ivr_attempt_id"), ev.get("Hangup-Cause"), ev.get_all("Hangup-Cause")
    _ = ev.items(), ev.keys(), "Job-UUID" in ev, ev.raw("Event-Name")
    with contextlib.suppress(ProtocolError):
        _ = ev.body


def line_in(stream: bytes, line: bytes) -> bool:
    return line in stream


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=mutated_streams(), chunk=st.integers(1, 5000))
def test_mutated_streams_raise_only_protocol_error_and_invent_no_header(data, chunk):
    parser = FrameParser()
    frames = []
    for i in range(0, len(data), chunk):
        try:
            frames += parser.feed(data[i:i + chunk])
        except ProtocolError as exc:
            frames += exc.frames
            break
    for frame in frames:
        assert frame.raw in data
        for name, value in frame.headers.items():
            if "\ufffd" not in name + value:
                assert line_in(data, f"{name}: {value}".encode())
        try:
            ev = parse_event(frame)
        except ProtocolError:
            continue
        read_everything(ev)
        if ev.content_type == "text/event-json":
            continue
        for name, _ in ev.items():
            if "\ufffd" in name:      # bytes that are not UTF-8 cannot be looked up by name; nothing to check
                continue
            raw = ev.raw(name)
            assert raw is not None
            if "\ufffd" not in raw:
                # the header line exists in the input as it was sent: split first, decoded after
                assert line_in(data, f"{name}: {raw}".encode())


@settings(max_examples=200, deadline=None)
@given(headers=st.lists(st.tuples(st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{0,20}", fullmatch=True),
                                  st.text(max_size=30)), min_size=1, max_size=12),
       chunk=st.integers(1, 64))
def test_any_encoded_values_decode_back_exactly(headers, chunk):
    from urllib.parse import quote

    # FreeSWITCH percent-encodes every value; an empty value goes out as _undef_
    lines = "".join(f"{k}: {quote(v, safe='') or '_undef_'}\n" for k, v in headers).encode()
    body = lines + b"\n"
    stream = b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % len(body) + body
    parser = FrameParser()
    frames = []
    for i in range(0, len(stream), chunk):
        frames += parser.feed(stream[i:i + chunk])
    (frame,) = frames
    ev = parse_event(frame)
    assert ev.items() == [(k, v) for k, v in headers]
    first: dict[str, str] = {}
    for k, v in headers:
        first.setdefault(k, v)
    for k, v in first.items():
        assert ev[k] == v and ev.get_all(k) == [x for n, x in headers if n == k]


# -- the client's reader against garbage, over a socket --------------------------------------------------------

STATUS = in_frames("inbound_auth_ok_api.jsonl")[2]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                                  HealthCheck.function_scoped_fixture])
@given(garbage=st.one_of(mutated_streams(), st.binary(min_size=1, max_size=2000)))
def test_client_reader_survives_garbage(garbage):
    def script(peer: Peer, n: int) -> None:
        peer.send(b"Content-Type: auth/request\n\n")
        while True:
            cmd = peer.read(timeout=10)
            if cmd is None:
                return
            if cmd.word == "auth":
                peer.send(reply("+OK accepted"))
            elif cmd.word == "event":
                peer.send(reply("+OK event listener enabled plain"))
                if n == 1:
                    peer.send(garbage)
            elif cmd.line == "api status":
                peer.send(STATUS)

    server = FakeServer(script)
    client = EslClient("127.0.0.1", server.port, "ClueCon", timeout=0.3, reconnect_min_delay=0.01,
                       reconnect_max_delay=0.05)
    up = gevent.event.Event()
    client.on_state(lambda s: up.set() if s == "connected" else up.clear())
    client.add_handler(read_everything)
    try:
        client.start()
        # Garbage may hold reply frames that race with our command (ESL replies carry no id), may desync the
        # stream (then the command times out and the connection is dropped) or may break framing (dropped at
        # once); whichever happens, the client must end up answering again.
        answer = ""
        with gevent.Timeout(CEILING):
            while not answer.startswith("UP "):
                up.wait()
                try:
                    answer = client.api("status")
                except EslError:
                    answer = ""
                    gevent.sleep(0.01)
        assert client.connected
    finally:
        client.stop()
        server.stop()
