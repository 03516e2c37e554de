"""OutboundServer + CallSession against FreeSWITCH's side of the real outbound-socket transcripts, over sockets."""

from __future__ import annotations

import gc
import logging
import uuid as uuidlib
import weakref

import gevent
import gevent.event
import pytest
from esl_fakes import Peer, frame_where, in_frames, replay_outbound, reply, swap
from gevent import socket
from waiting import CEILING, wait_until

from ivr.errors import IvrError
from ivr.switch.errors import UnsafeValue
from ivr.switch.outbound import CallSession, ExecResult, OutboundServer

HEARD_UUID = "3606c8ee-569a-444b-a8ee-316b5f2920c6"
MSG = "/var/lib/ivr/prompts/msg_6s.wav"
GOODBYE = "/var/lib/ivr/prompts/goodbye.wav"
MENU = "/var/lib/ivr/prompts/menu.wav"
PAGD = "1 1 2 5000 # /var/lib/ivr/prompts/menu.wav /var/lib/ivr/prompts/invalid.wav ivr_choice [12] 3000"


class Call:
    """Run one handler against one scripted FreeSWITCH connection; wait for the whole session to end."""

    def __init__(self, handler, **server_kw) -> None:
        self.results: list[ExecResult] = []
        self.sessions: list[CallSession] = []
        self.ended = gevent.event.Event()
        self.error: list[BaseException] = []

        def wrapped(session: CallSession) -> None:
            self.sessions.append(session)
            handler(session, self.results)

        self.server = OutboundServer("127.0.0.1", 0, wrapped, on_finished=lambda s: self.ended.set(),
                                     **server_kw)
        self.server.start()

    def connect(self) -> Peer:
        return Peer(socket.create_connection(("127.0.0.1", self.server.port)))

    def replay(self, name: str, conn: str = "") -> tuple[Peer, list[str]]:
        peer = self.connect()
        mismatches = replay_outbound(peer, name, conn)
        peer.close()   # FreeSWITCH closes after its last frame (the disconnect notice)
        assert self.ended.wait(CEILING), "the session did not finish"
        return peer, mismatches

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture
def calls():
    made: list[Call] = []

    def make(handler, **kw) -> Call:
        c = Call(handler, **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        c.stop()


def words(peer: Peer) -> list[str]:
    return [c.word if c.word != "sendmsg" else f"sendmsg:{c.headers.get('call-command')}" for c in peer.commands]


def test_heard_call_executes_match_their_application_uuid_and_end_with_exit(calls):
    def handler(s, out):
        out.append(s.execute("playback", MSG))
        out.append(s.execute("playback", GOODBYE))
        s.hangup()

    call = calls(handler)
    peer, mismatches = call.replay("outbound_call_heard")
    assert mismatches == []
    assert words(peer) == ["connect", "myevents", "linger", "event", "sendmsg:execute", "sendmsg:execute",
                           "sendmsg:hangup", "exit"]
    assert peer.commands[3].line == "event plain PLAYBACK_START PLAYBACK_STOP"
    for cmd, res in zip(peer.commands[4:6], call.results, strict=True):
        assert cmd.headers["event-lock"] == "true"
        assert cmd.headers["event-uuid"] == res.app_uuid
        assert res.complete is not None and res.complete["Application-UUID"] == res.app_uuid
        assert res.execute is not None and res.response == "FILE PLAYED"
        assert res.playback_stop["Playback-Status"] == "done"
        assert not res.hungup and not res.hangup_seen_before_stop
    first = call.results[0]
    assert first.complete["Application-Data"] == MSG and first.playback_stop.variable("playback_ms") == "6000"
    s = call.sessions[0]
    assert s.uuid == HEARD_UUID and s.variable("ivr_attempt_id") == "42"
    assert s.channel_data["Reply-Text"] == "+OK\n"
    assert s.hungup and s.hangup_complete is not None and s.hangup_event.name == "CHANNEL_HANGUP"
    assert [e.name for e in s.events][-1] == "CHANNEL_HANGUP_COMPLETE"


def test_early_hangup_returns_with_the_facts_of_an_unheard_message(calls):
    call = calls(lambda s, out: out.append(s.execute("playback", MSG)))
    peer, mismatches = call.replay("outbound_early_hangup")
    assert mismatches == []
    (res,) = call.results
    assert res.hungup and res.hangup_seen_before_stop
    assert res.response == "PLAYBACK ERROR"
    assert res.playback_stop["Playback-Status"] == "done"          # 'done' although the caller hung up
    assert res.playback_stop.variable("playback_last_offset_pos") == "15840"
    assert words(peer) == ["connect", "myevents", "linger", "event", "sendmsg:execute", "exit"]  # no hangup


def test_linger5_socket_closed_by_freeswitch_is_fine(calls):
    call = calls(lambda s, out: out.append(s.execute("playback", MSG)))
    peer, mismatches = call.replay("outbound_early_hangup_linger5")
    assert mismatches == ["got 'linger' {} want 'linger 5'"]
    assert call.results[0].hungup and call.results[0].response == "PLAYBACK ERROR"
    assert call.sessions[0].closed


def test_dtmf_terminator_stops_playback_and_digits_are_recorded(calls):
    def handler(s, out):
        out.append(s.set("playback_terminators", "1"))
        out.append(s.execute("playback", MSG))
        out.append(s.execute("playback", GOODBYE))
        s.hangup()

    call = calls(handler)
    _, mismatches = call.replay("outbound_dtmf_during_message", "a")
    assert mismatches == []
    _, msg, bye = call.results
    assert msg.dtmf == ["1"] and msg.playback_stop["Playback-Status"] == "break"
    assert msg.response == "FILE PLAYED" and not msg.hungup
    assert msg.playback_stop.variable("playback_last_offset_pos") == "17600"
    assert bye.dtmf == [] and call.sessions[0].dtmf_seen == ["1"]


def test_menu_digit_and_read_result(calls):
    def handler(s, out):
        out.append(s.execute("playback", MSG))
        out.append(s.execute("play_and_get_digits", PAGD))
        out.append(s.execute("playback", GOODBYE))
        s.hangup()

    call = calls(handler)
    _, mismatches = call.replay("outbound_heard_press1")
    assert mismatches == []
    menu = call.results[1]
    assert menu.dtmf == ["1"] and menu.complete.variable("read_result") == "success"
    assert menu.complete.variable("ivr_choice") == "1" and menu.response == "_none_"
    assert menu.playback_stop["Playback-Status"] == "break"
    assert call.sessions[0].variable("ivr_choice") == "1"


def test_missing_file_has_no_playback_events(calls):
    def handler(s, out):
        out.append(s.execute("playback", "/var/lib/ivr/prompts/no_such_file.wav"))
        out.append(s.execute("playback", GOODBYE))
        s.hangup()

    call = calls(handler)
    _, mismatches = call.replay("outbound_file_not_found")
    assert mismatches == []
    res = call.results[0]
    assert res.response == "FILE NOT FOUND" and res.playback_stop is None and not res.hungup
    assert not res.hangup_seen_before_stop


def test_transfer_keeps_the_call_and_tolerates_linger_before_hangup_complete(calls):
    def handler(s, out):
        out.append(s.execute("playback", MENU))
        out.append(s.execute("transfer", "8200 XML public"))

    call = calls(handler)
    peer, mismatches = call.replay("outbound_transfer_paynow")
    assert mismatches == []
    assert words(peer) == ["connect", "myevents", "linger", "event", "sendmsg:execute", "sendmsg:execute", "exit"]
    s = call.sessions[0]
    assert s.hands_off and call.results[1].response == "_none_" and not call.results[1].hungup
    assert s.linger_notice is not None and s.hangup_complete is not None
    names = [e.name for e in s.events]
    assert names[-1] == "CHANNEL_HANGUP_COMPLETE"


def test_hangup_app_via_execute(calls):
    def handler(s, out):
        out.append(s.execute("playback", MSG))
        out.append(s.execute("play_and_get_digits", PAGD))
        out.append(s.execute("playback", GOODBYE))
        out.append(s.execute("hangup", "NORMAL_CLEARING"))

    call = calls(handler)
    _, mismatches = call.replay("outbound_press2_callback")
    assert mismatches == []
    assert call.results[1].dtmf == ["2"]
    last = call.results[3]
    assert last.hungup and last.complete is not None and last.response == "_none_"


# -- the channel going away at awkward moments -------------------------------------------------------------------

def setup_frames(name: str = "outbound_early_hangup") -> list[bytes]:
    frames = in_frames(name)
    return frames[:3]  # connect reply, +OK myevents, +OK linger


def scripted_call(calls, handler, after_sendmsg, **kw):
    """Connect, answer the set-up, then on the first sendmsg run `after_sendmsg(peer, cmd)`."""
    call = calls(handler, **kw)
    peer = call.connect()
    for f in setup_frames():
        assert peer.read() is not None
        peer.send(f)
    assert peer.read().line.startswith("event plain")
    peer.send(b"Content-Type: command/reply\nReply-Text: +OK event listener enabled plain\n\n")
    cmd = peer.read()
    after_sendmsg(peer, cmd)
    return call, peer


def early_events(cmd) -> dict[str, bytes]:
    frames = in_frames("outbound_early_hangup")
    ours = cmd.headers["event-uuid"]
    old = "5818558b-9d6b-4da4-98dd-d07f909dd6d6"
    pick = {}
    for f in frames:
        for name in ("CHANNEL_EXECUTE\n", "PLAYBACK_START\n", "CHANNEL_HANGUP\n", "CHANNEL_HANGUP_COMPLETE\n"):
            if b"Event-Name: " + name.encode() in f:
                pick.setdefault(name.strip(), swap(f, old, ours))
    return pick


def test_hangup_without_the_apps_completion_returns_after_the_grace(calls):
    got = gevent.event.AsyncResult()

    def handler(s, out):
        got.set(s.execute("playback", MSG, timeout=60))

    def fs(peer, cmd):
        ev = early_events(cmd)
        peer.send(b"Content-Type: command/reply\nReply-Text: +OK\n\n")
        peer.send(ev["CHANNEL_EXECUTE"] + ev["PLAYBACK_START"] + ev["CHANNEL_HANGUP"])

    call, peer = scripted_call(calls, handler, fs, hangup_grace=0.2, hangup_wait=0.2)
    res = got.get(timeout=5)  # far less than the 60 s exec timeout
    assert res.hungup and res.hangup_seen_before_stop and res.complete is None and res.response == ""
    peer.close()
    assert call.ended.wait(CEILING)


def test_hangup_before_the_app_started_returns_at_once(calls):
    got = gevent.event.AsyncResult()

    def handler(s, out):
        got.set(s.execute("playback", MSG, timeout=60))

    def fs(peer, cmd):
        ev = early_events(cmd)
        peer.send(b"Content-Type: command/reply\nReply-Text: +OK\n\n" + ev["CHANNEL_HANGUP"])

    call, peer = scripted_call(calls, handler, fs, hangup_grace=60, hangup_wait=0.2)
    res = got.get(timeout=5)
    assert res.hungup and res.execute is None and res.complete is None
    peer.close()


def test_socket_closing_mid_execution_returns(calls):
    got = gevent.event.AsyncResult()

    def handler(s, out):
        got.set(s.execute("playback", MSG, timeout=60))
        out.append(s.execute("playback", GOODBYE))   # after the channel is gone: no send, no wait

    def fs(peer, cmd):
        ev = early_events(cmd)
        peer.send(b"Content-Type: command/reply\nReply-Text: +OK\n\n" + ev["CHANNEL_EXECUTE"] + ev["PLAYBACK_START"])
        peer.close()

    call, peer = scripted_call(calls, handler, fs, hangup_grace=60)
    res = got.get(timeout=5)
    assert res.hungup and res.hangup_seen_before_stop and res.execute is not None and res.complete is None
    assert call.ended.wait(CEILING)
    assert call.results[0].hungup and call.results[0].execute is None


def test_handler_exception_hangs_up_that_call_only(calls, caplog):
    other = str(uuidlib.uuid4())

    def handler(s, out):
        if s.uuid == other:
            raise RuntimeError("bug in the call flow")
        out.append(s.execute("playback", MSG))
        out.append(s.execute("playback", GOODBYE))
        s.hangup()

    call = calls(handler)
    ended = []
    call.server.on_finished = lambda s: ended.append(s.uuid) or (len(ended) == 2 and call.ended.set())

    def broken_call() -> Peer:
        peer = call.connect()
        for f in setup_frames("outbound_call_heard"):
            peer.read()
            peer.send(swap(f, HEARD_UUID, other))
        peer.read()
        peer.send(b"Content-Type: command/reply\nReply-Text: +OK event listener enabled plain\n\n")
        cmd = peer.read()
        assert cmd.headers == {"call-command": "hangup", "hangup-cause": "NORMAL_CLEARING"}
        peer.send(b"Content-Type: command/reply\nReply-Text: +OK\n\n")
        for needle in ("Event-Name: CHANNEL_HANGUP\n", "Event-Name: CHANNEL_HANGUP_COMPLETE\n"):
            peer.send(swap(frame_where("outbound_call_heard", needle), HEARD_UUID, other))
        assert peer.read().line == "exit"
        peer.send(reply("+OK bye"))
        peer.close()
        return peer

    with caplog.at_level(logging.ERROR, logger="ivr.switch.outbound"):
        bad = gevent.spawn(broken_call)
        good_peer = call.connect()
        mismatches = replay_outbound(good_peer, "outbound_call_heard")
        good_peer.wait_eof(5)
        good_peer.close()
        bad.get(timeout=5)
        assert call.ended.wait(CEILING)
    assert mismatches == [] and [r.response for r in call.results] == ["FILE PLAYED", "FILE PLAYED"]
    assert any(other in r.getMessage() and "handler failed" in r.getMessage() for r in caplog.records)


def test_the_set_up_is_one_round_trip(calls):
    """connect, myevents, linger and the PLAYBACK_* subscription go out before any reply is read: a debtor who
    hangs up a second after answering still gets the call flow when the machine is slow."""
    call = calls(lambda s, out: out.append(s.uuid))
    peer = call.connect()
    got = [peer.read() for _ in range(4)]  # FreeSWITCH has not answered anything yet
    assert [c.line.split(" ", 1)[0] if c else None for c in got] == ["connect", "myevents", "linger", "event"]
    for f in setup_frames():
        peer.send(f)
    peer.send(b"Content-Type: command/reply\nReply-Text: +OK event listener enabled plain\n\n")
    after = peer.read()  # the handler ran and left the call up: the server hangs it up
    assert after.line == "sendmsg" and after.headers.get("call-command") == "hangup"
    peer.close()
    assert call.ended.wait(CEILING)
    assert call.sessions[0].uuid and call.server.setup_failures == 0


def test_a_connection_that_dies_during_setup_does_not_stop_the_server(calls):
    call = calls(lambda s, out: out.append(s.execute("playback", MSG)))
    dead = call.connect()
    assert dead.read().line == "connect"
    dead.close()
    assert call.ended.wait(CEILING)
    call.ended.clear()
    _, mismatches = call.replay("outbound_early_hangup")
    assert mismatches == [] and call.results[0].response == "PLAYBACK ERROR"


def test_unsafe_arguments_are_refused_before_sending(calls):
    errors = []

    def handler(s, out):
        for app, arg in (("playback", "x.wav\nexecute-app-name: hangup"), ("play back", "x"), ("playback", "a\rb")):
            try:
                s.execute(app, arg)
            except UnsafeValue as exc:
                errors.append(str(exc))
        try:
            s.set("a=b", "c")
        except UnsafeValue as exc:
            errors.append(str(exc))
        out.append(s.execute("playback", MSG))

    call = calls(handler)
    peer, mismatches = call.replay("outbound_early_hangup")
    assert len(errors) == 4 and mismatches == []
    assert [c.word for c in peer.commands].count("sendmsg") == 1


def test_port_taken_is_a_clear_error():
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    try:
        server = OutboundServer("127.0.0.1", port, lambda s: None)
        with pytest.raises(IvrError) as err:
            server.start()
        assert str(port) in str(err.value) and "in use" in str(err.value)
    finally:
        holder.close()


def test_a_finished_call_is_freed_without_the_cycle_collector(calls):
    # A finished call's session holds every frame of the call (~140 KB). If only the cyclic collector can free it,
    # those frames pile up through a busy evening (it runs rarely): refcounting alone must free it at once.
    refs: list[weakref.ref] = []

    def handler(s, out):
        refs.extend((weakref.ref(s), weakref.ref(s._conn)))
        out.append(s.execute("playback", MSG))
        out.append(s.execute("playback", GOODBYE))
        s.hangup()

    gc.collect()
    gc.disable()
    try:
        call = calls(handler)
        call.sessions = _NotKept()  # the helper's own list would keep the session alive
        _, mismatches = call.replay("outbound_call_heard")
        assert mismatches == []
        assert len(refs) == 2 and [r.response for r in call.results] == ["FILE PLAYED", "FILE PLAYED"]
        call.results.clear()  # results hold events, not the session
        wait_until(lambda: refs[0]() is None and refs[1]() is None, "the finished session to be freed")
    finally:
        gc.enable()


class _NotKept(list):
    def append(self, _item) -> None:
        pass
