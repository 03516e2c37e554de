"""EslClient against a scripted FreeSWITCH over real sockets (frames from the real transcripts)."""

from __future__ import annotations

import logging
import re

import gevent
import gevent.event
import pytest
from esl_fakes import FakeServer, Peer, api_response, in_frames, reply
from gevent import socket
from hypothesis import given, settings
from hypothesis import strategies as st
from waiting import CEILING

from ivr.switch.connection import EslConnection
from ivr.switch.errors import EslAuthError, EslDisconnected, EslError, EslTimeout, UnsafeValue
from ivr.switch.esl import EslClient, backoff_delays

AUTH_OK = in_frames("inbound_auth_ok_api.jsonl")
STATUS_BODY = AUTH_OK[2].split(b"\n\n", 1)[1]
BYE_NOTICE = AUTH_OK[-1]
JOB_TEMPLATE = next(f for f in in_frames("inbound_originate_failures.jsonl") if b"BACKGROUND_JOB" in f[:200])
JOB_HEAD = JOB_TEMPLATE.split(b"\n\n", 1)[1].split(b"Content-Length: ", 1)[0]


def background_job(job_uuid: str, body: str) -> bytes:
    """A real BACKGROUND_JOB frame with its Job-UUID and inner body replaced (lengths recomputed)."""
    head = re.sub(rb"Job-UUID: [0-9a-f-]+\n", f"Job-UUID: {job_uuid}\n".encode(), JOB_HEAD)
    inner = body.encode()
    plain = head + b"Content-Length: %d\n\n" % len(inner) + inner
    return b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % len(plain) + plain


class FreeSwitch:
    """Inbound ESL as the transcripts show it; per-test hooks decide what unusual things happen."""

    def __init__(self, password: str = "ClueCon", on_command=None) -> None:
        self.password = password
        self.on_command = on_command          # fn(peer, cmd, conn_no) -> True if it handled the command
        self.jobs: list[str] = []
        self.server = FakeServer(self.serve)
        self.port = self.server.port

    def serve(self, peer: Peer, conn_no: int) -> None:
        peer.send(b"Content-Type: auth/request\n\n")
        while True:
            cmd = peer.read(timeout=30)
            if cmd is None:
                return
            if self.on_command and self.on_command(peer, cmd, conn_no):
                continue
            if cmd.word == "auth":
                if cmd.line == f"auth {self.password}":
                    peer.send(reply("+OK accepted"))
                else:
                    peer.send(reply("-ERR invalid") + BYE_NOTICE)
                    return
            elif cmd.line.startswith("event plain"):
                peer.send(reply("+OK event listener enabled plain"))
            elif cmd.word == "filter":
                _, header, value = cmd.line.split(" ", 2)
                peer.send(reply(f"+OK filter added. [{header}]=[{value}]"))
            elif cmd.line == "api status":
                peer.send(AUTH_OK[2])
            elif cmd.word == "api":
                name = cmd.line.split(" ")[1]
                peer.send(api_response(f"-ERR {name} Command not found!\n".encode()))
            elif cmd.word == "bgapi":
                job = cmd.headers["Job-UUID"]
                self.jobs.append(job)
                peer.send(reply(f"+OK Job-UUID: {job}", Job_UUID=job))
            elif cmd.word == "exit":
                peer.send(reply("+OK bye") + BYE_NOTICE)
                return

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture
def fs_factory():
    made: list[tuple[FreeSwitch, list[EslClient]]] = []

    def make(password: str = "ClueCon", on_command=None) -> FreeSwitch:
        fs = FreeSwitch(password, on_command)
        made.append((fs, []))
        return fs

    yield make
    for fs, _ in made:
        fs.stop()


@pytest.fixture
def clients():
    made: list[EslClient] = []

    def make(port: int, password: str = "ClueCon", **kw) -> EslClient:
        kw.setdefault("timeout", 2.0)
        c = EslClient("127.0.0.1", port, password, reconnect_min_delay=0.01, **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        c.stop()


def test_connect_authenticate_subscribe_and_api(fs_factory, clients):
    fs = fs_factory()
    client = clients(fs.port)
    client.start()
    assert client.state == "connected" and client.connected
    peer = fs.server.next_peer()
    assert [c.line for c in peer.commands] == ["auth ClueCon", "event plain BACKGROUND_JOB"]
    client.subscribe(["CHANNEL_ANSWER", "CHANNEL_HANGUP_COMPLETE", "BACKGROUND_JOB"])
    assert peer.commands[-1].line == "event plain CHANNEL_ANSWER CHANNEL_HANGUP_COMPLETE"
    assert client.api("status") == STATUS_BODY.decode()
    assert client.api("no_such_command") == "-ERR no_such_command Command not found!\n"


def test_bgapi_results_go_to_whoever_asked_by_job_uuid(fs_factory, clients):
    first_job_seen = gevent.event.Event()

    def on_command(peer, cmd, _n):
        if cmd.word != "bgapi":
            return False
        job = cmd.headers["Job-UUID"]
        if "8110" in cmd.line:
            # the result of this job comes BEFORE its reply: the job must already be known
            peer.send(background_job(job, "-ERR USER_BUSY\n"))
            peer.send(reply(f"+OK Job-UUID: {job}", Job_UUID=job))
            first_job_seen.set()
        else:
            peer.send(reply(f"+OK Job-UUID: {job}", Job_UUID=job))
            peer.send(background_job("00000000-0000-0000-0000-000000000000", "+OK stray\n"))
            peer.send(background_job(job, "+OK 3606c8ee-569a-444b-a8ee-316b5f2920c6\n"))
        return True

    fs = fs_factory(on_command=on_command)
    client = clients(fs.port)
    client.start()
    busy = client.bgapi("originate {origination_uuid=x}sofia/gateway/trunk/8110 &park()")
    ok = client.bgapi("originate sofia/gateway/trunk/8100 &park()")
    assert ok.get(timeout=5) == "+OK 3606c8ee-569a-444b-a8ee-316b5f2920c6\n"
    assert busy.get(timeout=5) == "-ERR USER_BUSY\n"
    peer = fs.server.next_peer()
    sent = [c for c in peer.commands if c.word == "bgapi"]
    assert [c.headers["Job-UUID"] for c in sent] == [busy.job_uuid, ok.job_uuid]
    assert busy.job_uuid != ok.job_uuid


def test_events_reach_handlers_in_order_and_a_failing_handler_is_only_logged(fs_factory, clients, caplog):
    events = [f for f in in_frames("inbound_call_heard.jsonl") if b"text/event-plain" in f[:60]]

    def on_command(peer, cmd, _n):
        if cmd.line == "event plain BACKGROUND_JOB CHANNEL_ANSWER":
            peer.send(reply("+OK event listener enabled plain") + b"".join(events))
            return True
        return False

    fs = fs_factory(on_command=on_command)
    client = clients(fs.port)
    seen: list[str] = []
    answers: list[str] = []
    done = gevent.event.Event()

    def angry(ev):
        if ev.name == "CHANNEL_ANSWER":
            raise ValueError("handler bug")

    def collect(ev):
        seen.append(ev.name)
        if len(seen) == len(events):
            done.set()

    client.add_handler(angry)
    client.add_handler(collect)
    client.register_handle("CHANNEL_ANSWER", lambda ev: answers.append(ev.uuid))
    client.subscribe("CHANNEL_ANSWER")
    with caplog.at_level(logging.ERROR, logger="ivr.switch.esl"):
        client.start()
        assert done.wait(CEILING)
    expected = [re.search(rb"\nEvent-Name: (\w+)", f).group(1).decode() for f in events]
    assert seen == expected
    assert len(answers) == expected.count("CHANNEL_ANSWER") == 2
    assert sum("handler bug" in (r.exc_text or "") or "failed" in r.getMessage() for r in caplog.records) == 2
    assert client.api("status").startswith("UP ")     # the reader is alive


def test_json_events_and_a_broken_json_event_do_not_kill_the_reader(fs_factory, clients, caplog):
    json_frames = [f for f in in_frames("inbound_json_sample.jsonl") if b"text/event-json" in f[:60]]
    broken = b"Content-Length: 9\nContent-Type: text/event-json\n\n{\"Event-N"

    def on_command(peer, cmd, _n):
        if cmd.word == "api" and "go" in cmd.line:
            peer.send(api_response(b"+OK\n") + json_frames[0] + broken + b"".join(json_frames[1:]))
            return True
        return False

    fs = fs_factory(on_command=on_command)
    client = clients(fs.port)
    got: list[str] = []
    done = gevent.event.Event()

    def collect(ev):
        got.append(ev.name)
        if len(got) == len(json_frames):
            done.set()

    client.add_handler(collect)
    client.start()
    with caplog.at_level(logging.ERROR):
        assert client.api("go") == "+OK\n"
        assert done.wait(CEILING)
    assert got[0] == "CHANNEL_OUTGOING" and "BACKGROUND_JOB" in got and len(got) == len(json_frames)
    assert any("undecodable event" in r.getMessage() for r in caplog.records)
    assert client.connected and client.reconnects == 0


def test_command_timeout_and_the_late_reply_is_not_given_to_the_next_command(fs_factory, clients):
    def on_command(peer, cmd, _n):
        if cmd.line == "api slow":
            return True                                   # no reply yet
        if cmd.line == "api status":
            peer.send(api_response(b"late reply of slow\n") + AUTH_OK[2])
            return True
        return False

    fs = fs_factory(on_command=on_command)
    client = clients(fs.port)
    client.start()
    with pytest.raises(EslTimeout, match="no reply to api"):
        client.api("slow", timeout=0.2)
    assert client.api("status") == STATUS_BODY.decode()
    assert client.connected


def test_disconnect_fails_pending_commands_and_jobs_at_once(fs_factory, clients):
    def on_command(peer, cmd, _n):
        if cmd.line == "api hang":
            peer.close()
            return True
        return False

    fs = fs_factory(on_command=on_command)
    client = clients(fs.port, timeout=30.0)
    client.start()
    job = client.bgapi("originate sofia/gateway/trunk/8100 &park()")
    with gevent.Timeout(20):                              # well below the 30 s command timeout
        with pytest.raises(EslDisconnected):
            client.api("hang")
        with pytest.raises(EslDisconnected):
            job.get()


def test_reconnect_resubscribes_events_and_filters(fs_factory, clients):
    def on_command(peer, cmd, n):
        if n == 1 and cmd.line == "filter Unique-ID abc":
            peer.send(reply("+OK filter added. [Unique-ID]=[abc]"))
            gevent.spawn_later(0.05, peer.close)
            return True
        return False

    fs = fs_factory(on_command=on_command)
    client = clients(fs.port)
    states: list[str] = []
    back = gevent.event.Event()
    client.on_state(lambda s: (states.append(s), s == "connected" and len(states) > 2 and back.set()))
    client.subscribe(["CHANNEL_HANGUP_COMPLETE", "CHANNEL_ANSWER"])
    client.add_filter("Unique-ID", "abc")
    client.start()
    assert back.wait(CEILING)
    assert states == ["connecting", "connected", "disconnected", "connecting", "connected"]
    assert client.reconnects == 1
    fs.server.next_peer()
    second = fs.server.next_peer()
    assert [c.line for c in second.commands] == [
        "auth ClueCon", "event plain BACKGROUND_JOB CHANNEL_ANSWER CHANNEL_HANGUP_COMPLETE",
        "filter Event-Name BACKGROUND_JOB", "filter Unique-ID abc"]
    assert client.api("status").startswith("UP ")


def test_backoff_doubles_and_is_capped():
    gen = backoff_delays(0.5, 30.0)
    assert [next(gen) for _ in range(9)] == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]


def test_reconnects_keep_trying_while_freeswitch_is_down(clients):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    port = holder.getsockname()[1]
    holder.close()                                        # nothing listens there now
    client = clients(port, reconnect_max_delay=0.05)
    tries = gevent.event.Event()
    count = []
    client.on_state(lambda s: s == "connecting" and (count.append(s), len(count) >= 3 and tries.set()))
    client.start(wait=False)
    assert tries.wait(CEILING) and client.state in ("connecting", "disconnected")
    with pytest.raises(EslDisconnected, match="not connected"):
        client.bgapi("originate x &park()")             # no call is started while disconnected


def test_wrong_password_is_a_clear_error_without_retry_and_never_logged(fs_factory, clients, caplog):
    secret = "Sup3r-S3cret-pw"
    fs = fs_factory(password="ClueCon")
    client = clients(fs.port, password=secret)
    with caplog.at_level(logging.DEBUG), pytest.raises(EslAuthError) as err:
        client.start()
    assert "refused the event-socket password" in str(err.value)
    assert secret not in str(err.value) and secret not in repr(client)
    assert client.state == "auth_failed" and fs.server.count == 1
    assert caplog.records and all(secret not in r.getMessage() for r in caplog.records)
    assert secret not in caplog.text


def test_password_not_logged_on_success_either(fs_factory, clients, caplog):
    fs = fs_factory(password="An0ther-Secret")
    client = clients(fs.port, password="An0ther-Secret")
    with caplog.at_level(logging.DEBUG):
        client.start()
        client.api("status")
        client.stop()
    assert "connected" in caplog.text and "An0ther-Secret" not in caplog.text


def test_unreachable_freeswitch_is_a_clear_error(clients):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    port = holder.getsockname()[1]
    holder.close()
    client = clients(port)
    with pytest.raises(EslDisconnected, match=f"cannot reach the FreeSWITCH event socket at 127.0.0.1:{port}"):
        client.start()


def test_rude_rejection_is_an_auth_error():
    def script(peer, _n):
        peer.send(b"Content-Type: text/rude-rejection\nContent-Length: 24\n\nAccess Denied, go away.\n")

    server = FakeServer(script)
    try:
        client = EslClient("127.0.0.1", server.port, "ClueCon", timeout=2.0)
        with pytest.raises(EslAuthError, match="Access Denied"):
            client.start()
    finally:
        server.stop()


def test_line_breaks_never_reach_the_socket(fs_factory, clients):
    fs = fs_factory()
    client = clients(fs.port)
    client.start()
    for bad in (lambda: client.api("status\nexit"), lambda: client.bgapi("originate x\r\napi kill"),
                lambda: client.subscribe(["CHANNEL_ANSWER\nexit"]), lambda: client.add_filter("Unique-ID", "a b"),
                lambda: client.send("api x\n")):
        with pytest.raises(UnsafeValue):
            bad()
    with pytest.raises(UnsafeValue) as err:
        EslClient("127.0.0.1", 1, "pw-Secret\nexit")
    assert "pw-Secret" not in str(err.value)
    peer = fs.server.next_peer()
    assert [c.word for c in peer.commands] == ["auth", "event"]


def test_stop_fails_pending_jobs(fs_factory, clients):
    fs = fs_factory()
    client = clients(fs.port)
    client.start()
    job = client.bgapi("originate sofia/gateway/trunk/8100 &park()")
    client.stop()
    with pytest.raises(EslDisconnected):
        job.get(timeout=2)
    assert client.state == "disconnected"
    peer = fs.server.next_peer()
    assert peer.closed.wait(CEILING) and peer.commands[-1].line == "exit"


class _CapturingSocket:
    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.conn: EslConnection | None = None

    def sendall(self, data: bytes) -> None:
        self.sent.append(data)
        gevent.spawn(self.conn.close, "test done")   # end the wait for a reply at once

    def send(self, data: bytes, flags: int = 0, timeout: float | None = None) -> int:
        self.sendall(data)  # as gevent's socket: all of a small command fits the buffer
        return len(data)

    def close(self) -> None:
        pass


text_with_breaks = st.lists(st.sampled_from(["a", " ", "\n", "\r", "\r\n", "\n\n", "\x00", ": ", "api x", "Иван",
                                             "Content-Length: 5", "\u2028"]), max_size=8).map("".join)


@settings(max_examples=200, deadline=None)
@given(line=st.one_of(text_with_breaks, st.text(max_size=20)), name=st.one_of(text_with_breaks, st.text(max_size=8)),
       value=st.one_of(text_with_breaks, st.text(max_size=20)))
def test_no_text_can_start_a_second_esl_command(line, name, value):
    sock = _CapturingSocket()
    conn = EslConnection(sock, lambda frame: None)
    sock.conn = conn
    try:
        conn.command(line, 5.0, headers=[(name, value)])
    except UnsafeValue:
        assert sock.sent == []
        return
    except EslError:
        pass
    (data,) = sock.sent
    assert b"\r" not in data and b"\x00" not in data
    assert data.endswith(b"\n\n") and data.count(b"\n\n") == 1 and not data.startswith(b"\n")
    assert data.count(b"\n") == 3                     # command line, one header line, the empty line
