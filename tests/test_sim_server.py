"""The simulator over real sockets: trunk limits, DTMF and codecs, channel control, filters, faults, restart."""

from __future__ import annotations

import gc
import uuid as uuidlib
import wave
import weakref
from datetime import UTC, datetime

import gevent
import pytest
from waiting import CEILING

from ivr.clock import ScaledClock
from ivr.sim import Debtor, Script, SimServer, Trunk
from ivr.sim.probe import FrameConn, OutboundProbe

SCALE = 10.0  # sub-second far-end timings (a key at 0.5 s) stay tens of real ms apart under load
LISTENER = "+380501110001"
PRESSER = "+380501110002"
MACHINE = "+380501110003"
RINGS = "+380501110004"


def make_sim(scale: float = SCALE, press_at: float = 0.5, **kw) -> SimServer:
    clock = ScaledClock(start=datetime(2026, 11, 23, 18, 0, tzinfo=UTC), scale=scale)
    script = (Script().add(LISTENER, Debtor.listen()).add(PRESSER, Debtor.answer(press=("1", press_at)))
              .add(MACHINE, Debtor.machine(listen_s=1.0)).add(RINGS, Debtor.no_answer()))
    return SimServer(clock=clock, script=script, **kw).start()


@pytest.fixture
def sim():
    s = make_sim()
    yield s
    s.stop()


def inbound(sim: SimServer, events: str = "ALL") -> FrameConn:
    conn = FrameConn.connect("127.0.0.1", sim.port)
    assert conn.next().content_type == "auth/request"
    assert conn.command("auth ClueCon").reply_text == "+OK accepted"
    if events:
        assert conn.command(f"event plain {events}").reply_text == "+OK event listener enabled plain"
    return conn


def originate(conn: FrameConn, number: str, app: str = "&park()", vars_: str = "absolute_codec_string=PCMU",
              uuid: str | None = None) -> tuple[str, str]:
    uuid = uuid or str(uuidlib.uuid4())
    reply = conn.command(f"bgapi originate {{origination_uuid={uuid},{vars_}}}sofia/gateway/trunk/{number} {app}")
    return uuid, reply.headers["Job-UUID"]


def wait_true(cond, timeout: float = CEILING) -> bool:
    """Wait for a condition set by another greenlet (a probe flow); False on timeout."""
    with gevent.Timeout(timeout, False):
        while not cond():
            gevent.sleep(0.005)
    return cond()


def seen(conn: FrameConn, name: str, uuid: str | None = None, timeout: float = CEILING):
    """The first recorded event `name` (for `uuid`), waiting for it; frames read by other helpers count too."""
    def find():
        return next((e for e in conn.events() if e.name == name and (uuid is None or e.uuid == uuid)), None)
    assert conn.wait_until(lambda: find() is not None, timeout), f"no {name} for {uuid}"
    return find()


def job_result(conn: FrameConn, job: str, timeout: float = CEILING) -> str:
    def find():
        return next((e.body for e in conn.events() if e.name == "BACKGROUND_JOB" and e.get("Job-UUID") == job),
                    None)
    assert conn.wait_until(lambda: find() is not None, timeout), f"no BACKGROUND_JOB {job}"
    return find()


def names_for(conn: FrameConn, uuid: str) -> list[str]:
    return [e.name for e in conn.events() if e.uuid == uuid]


def test_channel_limit_answers_congestion_like_a_trunk():
    sim = make_sim(trunk=Trunk(channels=1))
    conn = inbound(sim)
    try:
        u1, j1 = originate(conn, LISTENER)
        assert job_result(conn, j1) == f"+OK {u1}\n"
        u2, j2 = originate(conn, LISTENER)
        assert job_result(conn, j2) == "-ERR NORMAL_CIRCUIT_CONGESTION\n"
        seen(conn, "CHANNEL_DESTROY", u2)
        assert "CHANNEL_ANSWER" not in names_for(conn, u2)
        assert conn.command(f"api uuid_kill {u1}").body == b"+OK\n"
        seen(conn, "CHANNEL_DESTROY", u1)
        u3, j3 = originate(conn, LISTENER)  # the channel is free again
        assert job_result(conn, j3) == f"+OK {u3}\n"
    finally:
        conn.close()
        sim.stop()


def test_sessions_per_second_limit_refuses_before_any_channel():
    # real time: five originates in a row must fall inside one second of the trunk's rate window, however busy
    # the machine (at x50 that second is 20 real ms)
    sim = make_sim(trunk=Trunk(sessions_per_second=2), scale=1.0)
    conn = inbound(sim)
    try:
        started = [originate(conn, LISTENER) for _ in range(5)]
        results = [job_result(conn, job) for _, job in started]
        assert results[:2] == [f"+OK {started[0][0]}\n", f"+OK {started[1][0]}\n"]
        assert set(results[2:]) <= {"-ERR DESTINATION_OUT_OF_ORDER\n", "-ERR NORMAL_TEMPORARY_FAILURE\n"}
        for uuid, _ in started[2:]:
            assert names_for(conn, uuid) == []
    finally:
        conn.close()
        sim.stop()


def test_dtmf_only_with_a_pcm_codec_and_on_both_sockets(tmp_path):
    """inbound_dtmf_codec_check: default codecs (opus) give no DTMF event; PCMU does, on both sockets."""
    # The key must come after the flow's `myevents` (events before it are not the socket's): at x10 the 0.5 s
    # press was 50 real ms after the answer, which a garbage collection or a busy machine outlasts. Real time here,
    # the key 1.5 s in, while the flow's sleep runs 2.5 s.
    sim = make_sim(scale=1.0, press_at=1.5)
    dtmf_by_call: dict[str, list[str]] = {}

    def flow(c: FrameConn) -> None:
        reply = c.command("connect")
        uuid = reply.headers["Unique-ID"]
        c.command("myevents")
        c.command("linger")
        c.command("sendmsg\ncall-command: execute\nexecute-app-name: sleep\nexecute-app-arg: 2500")
        c.wait_event("CHANNEL_EXECUTE_COMPLETE", timeout=CEILING)
        c.command("sendmsg\ncall-command: hangup\nhangup-cause: NORMAL_CLEARING")
        c.wait_event("CHANNEL_HANGUP_COMPLETE", timeout=CEILING)
        dtmf_by_call[uuid] = [e.get("DTMF-Digit") for e in c.events() if e.name == "DTMF"]
        c.send("exit\n\n")

    probe = OutboundProbe(flow).start()
    conn = inbound(sim)
    try:
        app = f"'&socket(127.0.0.1:{probe.port} async full)'"
        opus, _ = originate(conn, PRESSER, app, vars_="ivr_attempt_id=1")
        pcmu, _ = originate(conn, PRESSER, app, vars_="absolute_codec_string=PCMU")
        for u in (opus, pcmu):
            seen(conn, "CHANNEL_DESTROY", u)
        assert wait_true(lambda: len(dtmf_by_call) == 2 or bool(probe.errors))
        assert not probe.errors
        assert dtmf_by_call == {opus: [], pcmu: ["1"]}
        dtmf = [e for e in conn.events() if e.name == "DTMF"]
        assert [(e.uuid, e["DTMF-Digit"], e["DTMF-Duration"], e["DTMF-Source"]) for e in dtmf] == [
            (pcmu, "1", "2080", "RTP")]
        answer = {e.uuid: e for e in conn.events() if e.name == "CHANNEL_ANSWER"}
        assert answer[opus]["Channel-Read-Codec-Name"] == "opus"
        assert answer[opus].variable("rtp_2833_send_payload") == "103"
        assert answer[pcmu].variable("rtp_2833_send_payload") == "101"
    finally:
        conn.close()
        probe.stop()
        sim.stop()


def test_no_answer_machine_and_uuid_kill_order(sim):
    conn = inbound(sim)
    try:
        u, j = originate(conn, RINGS, vars_="originate_timeout=2")
        assert job_result(conn, j) == "-ERR NO_ANSWER\n"
        seen(conn, "CHANNEL_DESTROY", u)
        assert names_for(conn, u) == ["CHANNEL_OUTGOING", "CHANNEL_CREATE", "CHANNEL_ORIGINATE",
                                      "CHANNEL_PROGRESS", "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE",
                                      "CHANNEL_DESTROY"]
        m, jm = originate(conn, MACHINE)
        assert job_result(conn, jm) == f"+OK {m}\n"
        hup = seen(conn, "CHANNEL_HANGUP_COMPLETE", m)
        assert hup.variable("hangup_cause") == "NORMAL_CLEARING"
        assert hup.variable("sip_hangup_disposition") == "recv_bye"
        assert not [e for e in conn.events() if e.name == "DTMF" and e.uuid == m]
        # it hung up after listening 1 s, not after a machine's default 40 s (at x10 each late 100 real ms is a
        # billed second more, so the bound is loose)
        assert 0 <= int(hup.variable("billsec")) < 10
        k, jk = originate(conn, LISTENER)
        job_result(conn, jk)
        n_before = len(conn.frames)
        reply = conn.command(f"api uuid_kill {k}")
        assert reply.body == b"+OK\n"
        assert conn.frames.index(reply) == n_before  # the reply came before the kill's events
        hc = seen(conn, "CHANNEL_HANGUP_COMPLETE", k)
        assert hc.get_all("Hangup-Cause") == ["NORMAL_CLEARING", "NORMAL_CLEARING"]
        assert conn.command(f"api uuid_exists {k}").body == b"false"
        assert conn.command(f"api uuid_kill {k}").body == b"-ERR No such channel!\n"
    finally:
        conn.close()


def test_filters_job_uuid_header_and_noevents(sim):
    conn = inbound(sim)
    try:
        reply = conn.command("bgapi status\nJob-UUID: my-job-1")
        assert reply.headers["Job-UUID"] == "my-job-1" and reply.reply_text == "+OK Job-UUID: my-job-1"
        job = seen(conn, "BACKGROUND_JOB")
        assert job.get("Job-UUID") == "my-job-1" and job.body.startswith("UP ")
        keep = str(uuidlib.uuid4())
        assert conn.command(f"filter Unique-ID {keep}").reply_text == f"+OK filter added. [Unique-ID]=[{keep}]"
        other, jo = originate(conn, LISTENER)
        mine, jm = originate(conn, LISTENER, uuid=keep)
        seen(conn, "CHANNEL_ANSWER", keep)
        conn.command(f"api uuid_kill {other}")
        conn.command(f"api uuid_kill {keep}")
        seen(conn, "CHANNEL_DESTROY", keep)
        assert conn.command("noevents").reply_text == "+OK no longer listening for events"
        assert {e.uuid for e in conn.events() if e.name != "BACKGROUND_JOB"} == {keep}
        # the Unique-ID filter drops BACKGROUND_JOB too (esl-reference §7)
        assert [e.get("Job-UUID") for e in conn.events() if e.name == "BACKGROUND_JOB"] == ["my-job-1"]
        n = len(conn.frames)
        u, _ = originate(conn, LISTENER)
        conn.command(f"api uuid_kill {u}")
        assert conn.command("api show channels count").body.decode().endswith(" total.\n")
        assert not [f for f in conn.frames[n:] if f.content_type.startswith("text/event")]
    finally:
        conn.close()


def test_client_vanishing_mid_call_hangs_up_and_server_lives_on(sim, tmp_path):
    wav = tmp_path / "long.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * 8000 * 30)

    def flow(c: FrameConn) -> None:
        c.command("connect")
        c.command("myevents")
        c.command(f"sendmsg\ncall-command: execute\nexecute-app-name: playback\nexecute-app-arg: {wav}")
        c.wait_event("CHANNEL_EXECUTE")
        c.close()  # the call-flow server crashes

    probe = OutboundProbe(flow).start()
    conn = inbound(sim)
    try:
        u, _ = originate(conn, LISTENER, f"'&socket(127.0.0.1:{probe.port} async full)'")
        seen(conn, "CHANNEL_DESTROY", u)
        names = names_for(conn, u)
        assert names.index("CHANNEL_HANGUP") < names.index("PLAYBACK_STOP") < names.index("CHANNEL_DESTROY")
        assert u not in sim.calls
        assert conn.command("api status").body.startswith(b"UP ")
    finally:
        conn.close()
        probe.stop()


def test_without_linger_the_socket_closes_at_the_hangup(sim):
    got: list = []

    def flow(c: FrameConn) -> None:
        c.command("connect")
        c.command("myevents")
        c.command("sendmsg\ncall-command: hangup\nhangup-cause: NORMAL_CLEARING")
        c.wait_closed()
        got.extend(c.frames)

    probe = OutboundProbe(flow).start()
    conn = inbound(sim)
    try:
        u, _ = originate(conn, LISTENER, f"'&socket(127.0.0.1:{probe.port} async full)'")
        seen(conn, "CHANNEL_DESTROY", u)
        assert wait_true(lambda: bool(got))
        last = got[-1]
        assert last.content_type == "text/disconnect-notice"
        assert last.headers["Content-Disposition"] == "disconnect"
    finally:
        conn.close()
        probe.stop()


def test_hangup_before_the_client_spoke_still_closes_and_destroys(sim):
    sim.script.add("+380501110009", Debtor.answer(hangup_after=0.0))
    got: list = []

    def flow(c: FrameConn) -> None:
        c.wait_closed(5)
        got.extend(c.frames)

    probe = OutboundProbe(flow).start()
    conn = inbound(sim)
    try:
        u, _ = originate(conn, "+380501110009", f"'&socket(127.0.0.1:{probe.port} async full)'")
        seen(conn, "CHANNEL_DESTROY", u)
        assert wait_true(lambda: bool(got))
        assert got[-1].headers.get("Content-Disposition") == "disconnect"
        names = names_for(conn, u)
        assert names.index("CHANNEL_HANGUP") < names.index("CHANNEL_HANGUP_COMPLETE") < names.index(
            "CHANNEL_DESTROY")
    finally:
        conn.close()
        probe.stop()


def test_fault_hooks_and_restart():
    sim = make_sim()
    port = sim.port
    try:
        a = inbound(sim)
        assert sim.drop_inbound_connections() == 1
        a.wait_closed()
        b = inbound(sim)
        sim.set_unresponsive(True)
        b.send("api status\n\n")
        with pytest.raises(TimeoutError):
            b.reply(timeout=0.3)
        sim.set_unresponsive(False)
        assert b.command("api uuid_exists nothing").body == b"false"
        u, _ = originate(b, LISTENER)
        seen(b, "CHANNEL_ANSWER", u)
        sim.restart()
        assert sim.port == port
        b.wait_closed()
        assert sim.calls == {}
        c = inbound(sim)
        assert c.command("api show channels count").body == b"\n0 total.\n"
        c.close()
    finally:
        sim.stop()
    with pytest.raises(OSError):
        FrameConn.connect("127.0.0.1", port)


def test_port_in_use_is_a_clear_error(sim):
    from ivr.errors import IvrError

    with pytest.raises(IvrError, match=str(sim.port)):
        SimServer(port=sim.port).start()


def test_many_concurrent_calls_complete(sim):
    """A burst of 200 socket calls with a trivial client: every one ends with HANGUP_COMPLETE and DESTROY."""
    def flow(c: FrameConn) -> None:
        c.command("connect")
        c.command("myevents")
        c.command("linger")
        c.command("sendmsg\ncall-command: execute\nexecute-app-name: sleep\nexecute-app-arg: 500")
        c.wait_event("CHANNEL_EXECUTE_COMPLETE")
        c.command("sendmsg\ncall-command: hangup\nhangup-cause: NORMAL_CLEARING")
        c.wait_event("CHANNEL_HANGUP_COMPLETE")
        c.send("exit\n\n")
        c.wait_closed()

    probe = OutboundProbe(flow).start()
    conn = inbound(sim, "CHANNEL_DESTROY BACKGROUND_JOB")
    try:
        uuids = [originate(conn, LISTENER, f"'&socket(127.0.0.1:{probe.port} async full)'")[0] for _ in range(200)]
        assert conn.wait_until(lambda: len([e for e in conn.events() if e.name == "CHANNEL_DESTROY"]) == 200, 20)
        assert {e.uuid for e in conn.events() if e.name == "CHANNEL_DESTROY"} == set(uuids)
        assert not probe.errors
        assert sim.calls == {} and sim.trunk.in_use == 0
    finally:
        conn.close()
        probe.stop()
    gevent.sleep(0)


def test_inbound_myevents_for_one_channel(sim):
    ctl = inbound(sim, events="")
    mine = str(uuidlib.uuid4())
    watch = inbound(sim, events="")
    try:
        assert watch.command(f"myevents {mine}").reply_text == "+OK Events Enabled"
        other, _ = originate(ctl, LISTENER)
        originate(ctl, LISTENER, uuid=mine)
        seen(watch, "CHANNEL_ANSWER", mine)
        ctl.command(f"api uuid_kill {other}")
        ctl.command(f"api uuid_kill {mine}")
        seen(watch, "CHANNEL_DESTROY", mine)
        assert {e.uuid for e in watch.events()} == {mine}
    finally:
        ctl.close()
        watch.close()


def test_an_ended_call_is_freed_without_the_cycle_collector(sim):
    # The simulator runs inside many tests and beside every benchmark: if its ended calls wait for the cyclic
    # collector, the pauses grow with the evening and show up as the dialer's latency.
    def flow(c: FrameConn) -> None:
        c.command("connect")
        c.command("myevents")
        c.command("linger")
        c.command("sendmsg\ncall-command: hangup\nhangup-cause: NORMAL_CLEARING")
        c.wait_event("CHANNEL_HANGUP_COMPLETE")
        c.send("exit\n\n")

    probe = OutboundProbe(flow).start()
    conn = inbound(sim)
    gc.collect()
    gc.disable()
    try:
        u, _ = originate(conn, PRESSER, f"'&socket(127.0.0.1:{probe.port} async full)'")
        assert wait_true(lambda: u in sim.calls)
        call = weakref.ref(sim.calls[u])
        seen(conn, "CHANNEL_DESTROY", u)
        assert wait_true(lambda: call() is None), "the ended call is still held"
        assert not probe.errors
    finally:
        gc.enable()
        conn.close()
        probe.stop()
