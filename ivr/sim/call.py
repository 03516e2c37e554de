"""One simulated outbound call: ringing, the scripted debtor's answer, the socket/park application, the
applications the call-flow server asks for, and the hang-up sequence — in the real server's event order.

Order on the dialer's A leg (inbound_call_heard, outbound_* transcripts): CHANNEL_OUTGOING, CREATE, ORIGINATE,
[PROGRESS], ANSWER, BACKGROUND_JOB `+OK uuid`, EXECUTE socket, PARK, then per app EXECUTE … EXECUTE_COMPLETE.
On hang-up: CHANNEL_HANGUP first, then the running app's PLAYBACK_STOP (`done`) and EXECUTE_COMPLETE
(`PLAYBACK ERROR`), CHANNEL_UNPARK, EXECUTE_COMPLETE socket (last app's response), CHANNEL_STATE CS_HANGUP,
CS_REPORTING, CHANNEL_HANGUP_COMPLETE, the linger notice; CHANNEL_DESTROY only once the outbound socket is
closed. One greenlet runs the call; hang-ups and digits from other greenlets arrive through `inbox`.
"""

from __future__ import annotations

import logging
import re
import uuid as uuidlib
from collections import deque
from typing import TYPE_CHECKING

import gevent
from gevent.queue import Empty, Queue

from ivr.logs import shown_number
from ivr.sim import media
from ivr.sim.channel import SIP_STATUS, Channel, make_event
from ivr.sim.originate import Originate, OriginateError, parse_endpoint, split_block, split_vars

if TYPE_CHECKING:
    from ivr.sim.outbound import OutboundSession
    from ivr.sim.server import SimServer

log = logging.getLogger("ivr.sim")

DEFAULT_TIMEOUT_S = 60.0
FRAME_MS = 20  # wait_for_silence reads 20 ms frames
SPEECH_LEVEL = 2000  # the energy score speech would have; a wait_for_silence threshold above it hears nothing
TRANSFER_DIALPLAN = [("set", "outside_call=true"), ("export", "RFC2822_DATE={date}"), ("answer", ""),
                     ("sleep", "5000"), ("hangup", "")]


class Hangup(Exception):
    """Raised inside an app wait when the channel hung up."""


class Call:
    def __init__(self, server: SimServer, orig: Originate, result_cb) -> None:
        self.server = server
        self.clock = server.clock
        self.orig = orig
        self.result_cb = result_cb  # called once with "+OK <uuid>\n" or "-ERR CAUSE\n"
        self.uuid = orig.var("origination_uuid") or str(uuidlib.uuid4())
        ep = orig.endpoint
        self.number = ep.number
        self.debtor = server.script.for_number(ep.number)
        codec = (orig.var("absolute_codec_string") or "").split(",")[0].split("@")[0].strip()
        codec = {"pcmu": "PCMU", "pcma": "PCMA", "g722": "G722", "opus": "opus"}.get(codec.lower(), codec or "opus")
        if ep.kind == "gateway":
            name = f"sofia/gateway/{ep.gateway}/{ep.number}"  # unverified: real gateway channel naming
            ep_vars = [("sip_profile_name", "external"), ("sip_gateway_name", ep.gateway),
                       ("sip_destination_url", f"sip:{ep.number}@{ep.gateway}")]
        elif ep.kind == "external":
            name = f"sofia/external/{ep.number}@{ep.host}"
            ep_vars = [("sip_local_network_addr", "127.0.0.1"), ("sip_profile_name", "external"),
                       ("sip_destination_url", f"sip:{ep.number}@{ep.host}")]
        else:
            name = f"loopback/{ep.number}-a"
            ep_vars = []
        self.ep_vars = ep_vars
        self.chan = Channel(self.uuid, name, ep.number, self.clock.now(),
                            cid_number=orig.var("origination_caller_id_number") or "0000000000",
                            cid_name=orig.var("origination_caller_id_name"), codec=codec,
                            session_id=server.next_session_id())
        self.dtmf_ok = codec != "opus"  # inbound_dtmf_codec_check: no DTMF events with opus
        self.inbox: Queue = Queue()
        self.pending: deque = deque()
        self.session: OutboundSession | None = None
        self.hung = False
        self.answered = False
        self.transferred = False
        self.linger_sent = False
        self.last_response = "_none_"
        self.current_app = ""
        self.current_arg = ""
        self.seized = False
        self.greenlet: gevent.Greenlet | None = None
        self._far_end: gevent.Greenlet | None = None
        self._result_sent = False
        self._menu_pressed = False
        # What the far end says, as intervals of sim-monotonic seconds (see _start_far_end_speech); read by
        # wait_for_silence and mod_avmd's beep detector. A person's reply is owed after each prompt we play.
        self._speech: list[tuple[float, float]] = []
        self._beep_at: float | None = None
        self._speech_anchor: float | None = None
        self._reply_owed = False
        self._avmd_on = False
        self._avmd_beeped = False
        self._avmd_started = 0.0
        self._avmd_g: gevent.Greenlet | None = None
        self._playbacks = 0  # PLAYBACK_STARTs so far (Debtor.hangup_in_playback counts them)

    # -- plumbing ------------------------------------------------------------------------------------
    def fire(self, name: str, extra=None, pre=None, to_session: bool = True) -> None:
        ev = make_event(self.server.switch, name, self.clock.now(), self.chan, extra, pre)
        self.server.publish(ev)
        if to_session and self.session is not None:
            self.session.deliver(ev)

    def _result(self, text: str) -> None:
        if not self._result_sent:
            self._result_sent = True
            self.result_cb(text)

    def start(self) -> None:
        self.server.calls[self.uuid] = self
        log.debug("sim call uuid=%s number=%s debtor=%s", self.uuid, shown_number(self.number), self.debtor.kind)
        self.greenlet = gevent.spawn(self._run)

    def kill(self) -> None:
        for g in (self._far_end, self._avmd_g, self.greenlet):
            if g is not None:
                g.kill(block=False)

    def _run(self) -> None:
        try:
            self._originate()
        except gevent.GreenletExit:
            pass
        except Exception:  # a simulator bug must not take the server down
            log.exception("sim call %s failed", self.uuid)
            self._result("-ERR NORMAL_TEMPORARY_FAILURE\n")
        finally:
            for g in (self._far_end, self._avmd_g):
                if g is not None:
                    g.kill(block=False)
            if self.session is not None:
                self.session.close()
            if self.seized:
                self.server.trunk.release()
            self.server.calls.pop(self.uuid, None)
            # A killed greenlet keeps its GreenletExit's traceback, whose frames hold this call: without these
            # links cut, every ended call waits for the cyclic collector (a pause that grows with the evening).
            self._far_end = self._avmd_g = None
            self.session = None  # it points back here (session.call)

    # -- signals from other greenlets --------------------------------------------------------------------
    def hangup(self, cause: str = "NORMAL_CLEARING", disposition: str = "send_bye") -> None:
        """Hang the channel up now (any greenlet); the call greenlet finishes the sequence."""
        if self.hung:
            return
        self.hung = True
        ch = self.chan
        if not self.answered:
            self.inbox.put(("cancel", cause))
            return
        ch.hangup_cause = cause
        ch.hungup_at = self.clock.now()
        ch.set_state(number="10", answer_state="hangup")
        ch.set_var("sip_hangup_disposition", disposition)
        if disposition == "recv_bye":
            ch.set_var("sip_term_status", "200")
        self.fire("CHANNEL_HANGUP")
        if self.session is not None:
            self.session.on_hangup()
        self.inbox.put(("hangup",))

    def far_end_dtmf(self, digit: str) -> None:
        if self.hung or not self.dtmf_ok:
            return
        self.fire("DTMF", extra=[("DTMF-Digit", digit), ("DTMF-Duration", "2080"), ("DTMF-Source", "RTP")])
        self.inbox.put(("dtmf", digit))

    def execute_later(self, app: str, arg: str, event_uuid: str | None) -> None:
        self.inbox.put(("exec", (app, arg, event_uuid)))

    # -- phases ----------------------------------------------------------------------------------------
    def _wait_s(self, seconds: float) -> tuple:
        """Wait up to `seconds` (sim time) for an inbox item; ("timeout",) when none came."""
        try:
            return self.inbox.get(timeout=max(0.0, self.clock.real_seconds(seconds)))
        except Empty:
            return ("timeout",)

    def _originate(self) -> None:
        ch = self.chan
        self.fire("CHANNEL_OUTGOING")
        ch.create_vars(self.orig.variables, self.ep_vars, self.server.rng)
        ch.set_state("CS_INIT", "DOWN", "2")
        self.fire("CHANNEL_CREATE")
        self.fire("CHANNEL_ORIGINATE")
        d = self.debtor
        try:
            timeout = float(self.orig.var("originate_timeout") or DEFAULT_TIMEOUT_S)
        except ValueError:
            timeout = DEFAULT_TIMEOUT_S
        if not self.server.trunk.seize():
            return self._fail("NORMAL_CIRCUIT_CONGESTION", self._wait_s(0.02))
        self.seized = True
        cause = d.failure_cause
        if cause:
            return self._fail(cause, self._wait_s(max(d.ring_s, 0.02)))
        if not d.answers or d.ring_s >= timeout:
            ch.progress = self.clock.now()
            ch.set_state("CS_CONSUME_MEDIA", "DOWN", "7")
            self.fire("CHANNEL_PROGRESS")
            item = self._wait_s(timeout)
            return self._fail("NO_ANSWER" if item[0] == "timeout" else item[1], item, ringing=True)
        if d.ring_s > 0:
            ch.progress = self.clock.now()
            ch.set_state("CS_CONSUME_MEDIA", "DOWN", "7")
            self.fire("CHANNEL_PROGRESS")
            item = self._wait_s(d.ring_s)
            if item[0] == "cancel":
                return self._fail(item[1], item, ringing=True)
        self._answer()

    def _fail(self, cause: str, item: tuple, ringing: bool = False) -> None:
        if item[0] == "cancel":  # killed while ringing (uuid_kill / stop): unverified cause
            cause = item[1]
        ch = self.chan
        self.hung = True
        ch.hangup_cause = cause
        ch.hungup_at = self.clock.now()
        ch.set_state("CS_CONSUME_MEDIA", "RINGING" if ringing else "DOWN", "10", "hangup")
        if cause == "NO_ANSWER" or item[0] == "cancel":
            ch.set_var("sip_hangup_disposition", "send_cancel")
        else:
            status = SIP_STATUS.get(cause, "500")
            ch.set_vars([("sip_term_status", status), ("proto_specific_hangup_cause", f"sip:{status}"),
                         ("sip_hangup_disposition", "recv_refuse")])
        self.fire("CHANNEL_HANGUP")
        if ringing:  # NO_ANSWER: the job result came between HANGUP and HANGUP_COMPLETE
            self._result(f"-ERR {cause}\n")
        ch.hangup_vars(self.clock.now())
        ch.set_state("CS_REPORTING", "HANGUP", "11")
        self.fire("CHANNEL_HANGUP_COMPLETE", pre=[("Hangup-Cause", cause)])
        self._result(f"-ERR {cause}\n")
        ch.set_state(number="12")
        self.fire("CHANNEL_DESTROY")

    def _answer(self) -> None:
        ch = self.chan
        self.answered = True
        ch.answered = self.clock.now()
        ch.media = True
        ch.callee_name = self.number
        ch.set_state("CS_CONSUME_MEDIA", "DOWN", "7", "answered")
        ch.answer_vars(self.server.rng)
        self.fire("CHANNEL_ANSWER")
        self._result(f"+OK {self.uuid}\n")
        self._far_end = gevent.spawn(self._play_debtor)
        ch.set_state("CS_EXECUTE", "ACTIVE", "4")
        ch.hit_dialplan = "true"
        ch.cid_flipped = True
        ch.set_vars([("endpoint_disposition", "ANSWER"), ("pre_transfer_caller_id_number", ch.cid_number),
                     ("channel_cid_flipped", "yes")])
        if self.orig.app == "socket":
            self._socket_app()
        elif self.orig.app in APPS:
            self._inline_app(self.orig.app, self.orig.app_arg)
        else:
            self._park_app(self.orig.app if self.orig.app != "extension" else "park", self.orig.app_arg)

    def _inline_app(self, app: str, arg: str) -> None:
        """`originate … &playback(…)`: the app runs, then the call ends (inbound_file_string)."""
        self.run_app(app, arg)
        if not self.hung:
            self.hangup("NORMAL_CLEARING", "send_bye")
        self._finish()

    def _play_debtor(self) -> None:
        """The far end: presses digits and hangs up on the debtor's schedule (seconds after the answer)."""
        d = self.debtor
        t = 0.0
        for digit, at in sorted(d.presses, key=lambda p: p[1]):
            if at >= d.hangup_at(self.server.script.listen_cap_s):
                break
            self.clock.sleep(at - t)
            t = at
            self.far_end_dtmf(digit)
        self.clock.sleep(max(0.0, d.hangup_at(self.server.script.listen_cap_s) - t))
        self.hangup("NORMAL_CLEARING", "recv_bye")

    def _park_app(self, app: str, arg: str) -> None:
        app_uuid = str(uuidlib.uuid4())
        self._set_current(app, arg)
        self.fire("CHANNEL_EXECUTE", extra=self._app_headers(app, arg, app_uuid))
        self.fire("CHANNEL_PARK")
        while not self.hung:
            self.inbox.get()
        self.fire("CHANNEL_UNPARK")
        self.fire("CHANNEL_EXECUTE_COMPLETE", extra=self._app_headers(app, arg, app_uuid, "_none_"))
        self._finish()

    def _socket_app(self) -> None:
        from ivr.sim.outbound import OutboundSession

        o = self.orig
        app_uuid = self.socket_app_uuid = str(uuidlib.uuid4())
        arg = o.app_arg
        self._set_current("socket", arg)
        self.chan.set_var("socket_host", o.socket_host)
        self.fire("CHANNEL_EXECUTE", extra=self._app_headers("socket", arg, app_uuid))
        sock = self.server.connect_outbound(o.socket_host, o.socket_port)
        if sock is None:  # unverified: socket app failed to connect -> app ends, the call is hung up
            self.fire("CHANNEL_EXECUTE_COMPLETE", extra=self._app_headers("socket", arg, app_uuid, "_none_"))
            self.hangup("NORMAL_CLEARING", "send_bye")
            self._drain_hangup()
            self._finish(socket_done=True)
            return
        self.session = OutboundSession(self, sock, o.socket_async, o.socket_full)
        if not self.hung:
            self.fire("CHANNEL_PARK")
        self._app_loop()
        if self.transferred and not self.hung:
            self._after_transfer()
            return
        self._drain_hangup()
        if not self.transferred:
            self.fire("CHANNEL_UNPARK")
            self.fire("CHANNEL_EXECUTE_COMPLETE",
                      extra=self._app_headers("socket", arg, app_uuid, self.last_response))
        self._finish()

    def _drain_hangup(self) -> None:
        while not self.hung:
            self.inbox.get()

    def _app_loop(self) -> None:
        while not self.hung and not self.transferred:
            if self.pending:
                app, arg, event_uuid = self.pending.popleft()
                self.run_app(app, arg, event_uuid)
                continue
            item = self.inbox.get()
            if item[0] == "exec":
                self.pending.append(item[1])
            # digits outside a collecting app are dropped; "hangup" ends the loop via self.hung

    def _finish(self, socket_done: bool = False) -> None:
        ch = self.chan
        ch.set_state("CS_HANGUP", number="10")
        self.fire("CHANNEL_STATE")
        if self.transferred:
            self._linger_notice()  # outbound_transfer_paynow: notice between the two CHANNEL_STATEs
        ch.set_state("CS_REPORTING", "HANGUP", "11")
        self.fire("CHANNEL_STATE")
        ch.hangup_vars(self.clock.now())
        self.fire("CHANNEL_HANGUP_COMPLETE", pre=[("Hangup-Cause", ch.hangup_cause or "NORMAL_CLEARING")])
        self._linger_notice()
        if self.session is not None:
            if self.session.linger is None:
                self.session.on_hangup()  # hung up before the session existed or without linger: close now
            self.session.wait_closed(self.server.linger_cap_s)
        ch.set_state(number="12")
        self.fire("CHANNEL_DESTROY", to_session=False)

    def _linger_notice(self) -> None:
        if not self.linger_sent and self.session is not None:
            self.linger_sent = True
            self.session.after_hangup()

    # -- applications ------------------------------------------------------------------------------------
    def _set_current(self, app: str, arg: str) -> None:
        self.current_app, self.current_arg = app, arg
        self.chan.set_vars([("current_application_data", arg), ("current_application", app)])

    @staticmethod
    def _app_headers(app: str, arg: str, app_uuid: str, response: str | None = None) -> list:
        h = [("Application", app)]
        if arg:
            h.append(("Application-Data", arg))
        if response is not None:
            h.append(("Application-Response", response))
        h.append(("Application-UUID", app_uuid))
        return h

    def run_app(self, app: str, arg: str, event_uuid: str | None = None) -> None:
        if self.hung:
            return
        if self._speech_anchor is None and self.session is not None:
            self._start_far_end_speech()
        app_uuid = event_uuid or str(uuidlib.uuid4())
        self._set_current(app, arg)
        self.fire("CHANNEL_EXECUTE", extra=self._app_headers(app, arg, app_uuid))
        handler = APPS.get(app, Call.app_unknown)
        response = handler(self, arg)
        self.last_response = response
        self.chan.set_var("current_application_response", response)
        if app == "bridge" and self.hung:
            self._linger_notice()  # outbound_bridge: the notice came before the bridge's EXECUTE_COMPLETE
        self.fire("CHANNEL_EXECUTE_COMPLETE", extra=self._app_headers(app, arg, app_uuid, response))

    def wait(self, seconds: float, on_digit=None) -> tuple[str, float, str | None]:
        """Let `seconds` of media time pass; ("done"|"hangup"|"dtmf", elapsed_s, digit)."""
        clock = self.clock
        start = clock.monotonic()
        deadline = start + seconds
        while True:
            if self.hung:
                return "hangup", clock.monotonic() - start, None
            remaining = deadline - clock.monotonic()
            if remaining <= 0:
                return "done", seconds, None
            try:
                item = self.inbox.get(timeout=clock.real_seconds(remaining))
            except Empty:
                return "done", seconds, None
            kind = item[0]
            if kind == "exec":
                self.pending.append(item[1])
            elif kind == "dtmf" and on_digit is not None and on_digit(item[1]):
                return "dtmf", clock.monotonic() - start, item[1]

    def play(self, m: media.Media, terminators: str, in_menu: bool = False) -> tuple[str, str | None]:
        """PLAYBACK_START … PLAYBACK_STOP for one media; ("done"|"hangup"|"dtmf", digit)."""
        ch = self.chan
        ch.unset_var("playback_terminator_used")
        started = self.clock.monotonic()  # the START event's moment: a stopped playback's offset counts from it
        self.fire("PLAYBACK_START", extra=[("Playback-File-Path", m.path)])
        self._playbacks += 1
        length = m.ms / 1000.0
        cut = self.debtor.hangup_in_playback
        cut_at = cut[1] if cut is not None and cut[0] == self._playbacks and cut[1] < length else None
        key = self.debtor.press_in_playback
        if key is not None and key[0] == self._playbacks:
            gevent.spawn_later(self.clock.real_seconds(key[2]), self.far_end_dtmf, key[1])
        status, elapsed, digit = self.wait(length if cut_at is None else cut_at,
                                           (lambda d: d in terminators) if terminators else None)
        if cut_at is not None and status == "done":  # the debtor hangs up right there, in media time
            self.hangup("NORMAL_CLEARING", "recv_bye")
            status, elapsed = "hangup", cut_at
        if status == "dtmf":  # the media ran on until the stop was handled (a busy process handles it late)
            elapsed = self.clock.monotonic() - started
        ch.set_vars(media.playback_vars(m, None if status == "done" else elapsed, in_menu))
        if status == "dtmf" and not in_menu:
            ch.set_var("playback_terminator_used", digit)
        self.fire("PLAYBACK_STOP", extra=[("Playback-File-Path", m.path),
                                           ("Playback-Status", "break" if status == "dtmf" else "done")])
        if status == "done" and not in_menu:
            self._reply_owed = True  # a person says something back when a prompt ends and we fall quiet
        return status, digit

    def app_playback(self, arg: str) -> str:
        m = media.resolve(arg, self.server.sound_dir)
        if m is None:
            return "FILE NOT FOUND"
        terms = self.chan.vars.get("playback_terminators", "*")
        if terms == "none":
            terms = ""
        status, _ = self.play(m, terms)
        return "PLAYBACK ERROR" if status == "hangup" else "FILE PLAYED"

    def app_play_and_get_digits(self, arg: str) -> str:
        parts = arg.split()
        if len(parts) < 9:
            return "_none_"  # unverified: FreeSWITCH logs a usage error and returns
        try:
            mn, mx, tries, timeout = int(parts[0]), int(parts[1]), int(parts[2]), int(parts[3])
            digit_timeout = int(parts[9]) if len(parts) > 9 else timeout
        except ValueError:
            return "_none_"
        terminators, prompt, invalid, var, regexp = parts[4], parts[5], parts[6], parts[7], parts[8]
        ch = self.chan
        matched = False
        if self.debtor.menu_press and not self._menu_pressed:
            self._menu_pressed = True
            self.far_end_dtmf(self.debtor.menu_press)  # heard the menu begin: the key is in before it ends
        for _ in range(max(1, tries)):
            ch.unset_var("read_result")
            digits = ""
            pm = media.resolve(prompt, self.server.sound_dir)
            if pm is not None:
                status, digit = self.play(pm, "0123456789*#ABCD", in_menu=True)
                if status == "hangup":
                    break
                if digit and digit not in terminators:
                    digits = digit
            done = False
            while len(digits) < mx and not done:
                wait_ms = digit_timeout if digits else timeout
                status, _, d = self.wait(wait_ms / 1000.0, lambda _d: True)
                if status == "dtmf" and d not in terminators:
                    digits += d
                else:
                    done = True
            if self.hung:
                break
            if digits and len(digits) >= mn and _regex_ok(regexp, digits):
                ch.set_vars([(var, digits), ("read_result", "success")])
                matched = True
                break
            if digits:
                ch.set_vars([(var + "_invalid", digits), ("read_result", "success")])
            else:
                ch.set_var("read_result", "failure")
            im = media.resolve(invalid, self.server.sound_dir)
            if im is not None and self.play(im, "", in_menu=True)[0] == "hangup":
                break
        if not matched:
            ch.set_var("read_result", "failure")
        return "_none_"

    # -- the far end's voice (answering-machine detection) -----------------------------------------------
    def _start_far_end_speech(self) -> None:
        """Lay out what the far end says. Anchored at the first application the call-flow server runs, not at
        the answer: at real speed the two are ~50 ms apart, but at x100 scheduling delay between the answer and
        the socket's first command is seconds of call time, which would eat a greeting before anyone listens.
        A person says "Алло?" (opening_s); a machine plays its greeting, then (beep) a 0.4 s tone."""
        d = self.debtor
        now = self._speech_anchor = self.clock.monotonic()
        length = d.opening_s
        if d.kind == "machine":
            if length > 0:
                self._speech.append((now, now + length))
            if d.beep:
                self._beep_at = now + length + 0.2
                self._speech.append((self._beep_at, self._beep_at + 0.4))
        elif length > 0:
            self._speech.append((now + 0.15, now + 0.15 + length))

    def _speaking(self, t: float) -> bool:
        return any(a <= t < b for a, b in self._speech)

    def app_wait_for_silence(self, arg: str) -> str:
        """switch_ivr_wait_for_silence over the far end's speech, frame by frame (20 ms): ends `listen_hits` loud
        frames + `silence_hits` quiet ones in a row + 25 frames later (`wait_for_silence_timeout=false`), or at
        the timeout (`true`, with listenhits / silence_hits). Energy is not simulated: speech counts as loud
        when the threshold is at most SPEECH_LEVEL. Application-Response `_none_` is unverified."""
        parts = arg.split()
        try:
            thresh, silence_hits, listen_hits, timeout_ms = (int(p) for p in parts[:4])
        except ValueError:
            return "_none_"  # unverified: the real app logs its usage and returns
        start = self.clock.monotonic()
        if self._reply_owed and self.debtor.talks_back:
            self._reply_owed = False  # the person answers the question now that we are quiet
            self._speech.append((start + 0.4, start + 1.3))
        loud_enough = thresh <= SPEECH_LEVEL
        frames = max(1, timeout_ms // FRAME_MS) if timeout_ms else 30 * 60 * 50
        listening, left, countdown, end, timed_out = 0, silence_hits, 0, frames, True
        for i in range(frames):
            if countdown:
                countdown -= 1
                if not countdown:
                    end, timed_out = i + 1, False
                    break
                continue
            loud = loud_enough and self._speaking(start + (i + 0.5) * FRAME_MS / 1000)
            if loud:
                listening += 1
            if listening > listen_hits and not loud:
                left -= 1
                if not left:
                    countdown = 25
            else:
                left = silence_hits
        if self.wait(end * FRAME_MS / 1000)[0] == "hangup":
            return "_none_"
        if timed_out:
            self.chan.set_vars([("wait_for_silence_timeout", "true"),
                                ("wait_for_silence_listenhits", str(listening)),
                                ("wait_for_silence_silence_hits", str(left))])
        else:
            self.chan.set_var("wait_for_silence_timeout", "false")
        return "_none_"

    def _custom(self, subclass: str, headers: list[tuple[str, str]]) -> None:
        """A CUSTOM event as mod_avmd fires it: no channel block, Event-Subclass after the common headers."""
        ev = make_event(self.server.switch, "CUSTOM", self.clock.now(), None,
                        extra=[("Unique-ID", self.uuid), ("Call-command", "avmd"), *headers],
                        pre=[("Event-Subclass", subclass)])
        self.server.publish(ev)
        if self.session is not None:
            self.session.deliver(ev)

    def app_avmd_start(self, arg: str) -> str:
        """mod_avmd: a beep detector on the channel. Fires avmd::start; avmd::beep (and avmd_detect=TRUE) when
        the machine's beep plays while it runs. Header values beyond the names are made up (no capture)."""
        if self._avmd_on:
            return "_none_"
        self._avmd_on = True
        self._avmd_started = self.clock.monotonic()
        self._custom("avmd::start", [("Start-time", str(int(self.clock.now().timestamp() * 1_000_000)))])
        beep_at = self._beep_at
        if beep_at is not None and not self._avmd_beeped and beep_at >= self._avmd_started:
            self._avmd_g = gevent.spawn(self._avmd_beep, beep_at)
        return "_none_"

    def _avmd_beep(self, at: float) -> None:
        self.clock.sleep(max(0.0, at - self.clock.monotonic()) + 0.1)  # detection takes ~100 ms of tone
        if self.hung or not self._avmd_on or self._avmd_beeped:
            return
        self._avmd_beeped = True
        self.chan.set_vars([("avmd_total_time", f"[{int((self.clock.monotonic() - self._avmd_started) * 1000)}]"),
                            ("avmd_detect", "TRUE")])
        self._custom("avmd::beep", [("Beep-Status", "DETECTED"), ("Frequency", "1000.000000"),
                                    ("Frequency-variance", "0.000010"), ("Amplitude", "8000.000000"),
                                    ("Amplitude-variance", "0.000100"), ("Detection-time", "100000"),
                                    ("Detector-resolution", "0"), ("Detector-offset", "0"),
                                    ("Detector-index", "0")])

    def app_avmd_stop(self, arg: str) -> str:
        if self._avmd_on:
            self._avmd_on = False
            total = int((self.clock.monotonic() - self._avmd_started) * 1_000_000)
            self._custom("avmd::stop", [("Beep-Status", "DETECTED" if self._avmd_beeped else "NOTDETECTED"),
                                        ("Total-time", str(total))])
        return "_none_"

    def app_sleep(self, arg: str) -> str:
        try:
            ms = int(arg.strip() or "0")
        except ValueError:
            ms = 0
        self.wait(ms / 1000.0)
        return "_none_"

    def app_set(self, arg: str) -> str:
        name, eq, value = arg.partition("=")
        if name.strip():
            if eq and value != "":
                self.chan.set_var(name.strip(), value)
            else:
                self.chan.unset_var(name.strip())
        return "_none_"

    def app_unset(self, arg: str) -> str:
        self.chan.unset_var(arg.strip())
        return "_none_"

    def app_answer(self, arg: str) -> str:
        return "_none_"  # already answered: no new CHANNEL_ANSWER (Addendum 2)

    def app_hangup(self, arg: str) -> str:
        cause = arg.strip() or "NORMAL_CLEARING"
        self.hangup(cause if re.fullmatch(r"[A-Z_]+", cause) else "NORMAL_CLEARING", "send_bye")
        return "_none_"

    def app_transfer(self, arg: str) -> str:
        parts = arg.split()
        if not parts:
            return "_none_"
        ext = parts[0]
        context = parts[2] if len(parts) > 2 else "default"
        ch = self.chan
        now = self.clock.now()
        ch.destination = ext
        ch.context = context
        ch.transferred = now
        ch.changed()
        hist = f"{int(now.timestamp())}:{uuidlib.uuid4()}:bl_xfer:{ext}/{context}/XML"
        ch.set_vars([("transfer_history", hist), ("transfer_source", hist)])
        self.transferred = True
        self.transfer_ext = ext
        return "_none_"

    def _after_transfer(self) -> None:
        """Addendum 2: socket app ends (UNPARK, EXECUTE_COMPLETE socket `_none_`), the socket stays open,
        CS_ROUTING → CS_EXECUTE, then the target extension's dialplan runs on the same channel."""
        ch = self.chan
        self.fire("CHANNEL_UNPARK")
        self.fire("CHANNEL_EXECUTE_COMPLETE",
                  extra=self._app_headers("socket", self.orig.app_arg, self.socket_app_uuid, "_none_"))
        ch.set_state("CS_ROUTING")
        self.fire("CHANNEL_STATE")
        ch.set_state("CS_EXECUTE")
        self.fire("CHANNEL_STATE")
        date = self.clock.now().strftime("%a, %d %b %Y %H:%M:%S +0000")
        plan = self.server.dialplan.get(self.transfer_ext, TRANSFER_DIALPLAN)
        for app, arg in plan:
            if self.hung:
                break
            self.run_app(app, arg.replace("{date}", date))
        self.pending.clear()  # unverified: sendmsg executes after a transfer are not run
        self._drain_hangup()
        self._finish()

    def app_bridge(self, arg: str) -> str:
        """Addendum 2 (one transcript): C leg events go to inbound sockets only; CHANNEL_BRIDGE/UNBRIDGE on A."""
        try:
            block, rest = split_block(arg.strip())
            ep = parse_endpoint(rest)
        except OriginateError as exc:
            self.chan.set_var("originate_disposition", exc.cause)
            return "_none_"
        leg_vars = split_vars(block) if block else []
        c = BridgeLeg(self, ep, leg_vars)
        return c.run()

    def app_unknown(self, arg: str) -> str:
        return "_none_"  # unverified: the real server logs "Invalid Application" and hangs up


def _regex_ok(pattern: str, digits: str) -> bool:
    try:
        return re.search(pattern, digits) is not None
    except re.error:
        return False


APPS = {
    "playback": Call.app_playback, "play_and_get_digits": Call.app_play_and_get_digits,
    "sleep": Call.app_sleep, "set": Call.app_set, "export": Call.app_set, "unset": Call.app_unset,
    "answer": Call.app_answer, "pre_answer": Call.app_answer, "hangup": Call.app_hangup,
    "transfer": Call.app_transfer, "bridge": Call.app_bridge, "wait_for_silence": Call.app_wait_for_silence,
    "avmd_start": Call.app_avmd_start, "avmd_stop": Call.app_avmd_stop,
}


class BridgeLeg:
    """The C leg of a `bridge` (e.g. an operator). Unverified beyond the single Addendum 2 transcript."""

    def __init__(self, call: Call, ep, leg_vars: list[tuple[str, str]]) -> None:
        self.call = call
        self.ep = ep
        self.debtor = call.server.script.for_number(ep.number)
        host = ep.host or ep.gateway
        name = f"sofia/external/{ep.number}@{host}" if host else f"loopback/{ep.number}-a"
        self.chan = Channel(str(uuidlib.uuid4()), name, ep.number, call.clock.now(),
                            cid_number=call.chan.cid_number, session_id=call.server.next_session_id())
        self.leg_vars = leg_vars

    def fire(self, name: str, extra=None, pre=None) -> None:
        ev = make_event(self.call.server.switch, name, self.call.clock.now(), self.chan, extra, pre)
        self.call.server.publish(ev)

    def _end(self, cause: str, answered: bool) -> None:
        c = self.chan
        c.hangup_cause = cause
        c.hungup_at = self.call.clock.now()
        c.set_state("CS_EXCHANGE_MEDIA" if answered else "CS_CONSUME_MEDIA", None, "10", "hangup")
        self.fire("CHANNEL_HANGUP")
        c.hangup_vars(self.call.clock.now())
        c.set_state("CS_REPORTING", "HANGUP", "11")
        self.fire("CHANNEL_HANGUP_COMPLETE", pre=[("Hangup-Cause", cause)])

    def run(self) -> str:
        call, a, c, d = self.call, self.call.chan, self.chan, self.debtor
        call.server.calls_extra[c.uuid] = c
        c.other_leg = [("Other-Leg-Unique-ID", a.uuid)]
        self.fire("CHANNEL_OUTGOING")
        c.create_vars(self.leg_vars, [("sip_profile_name", "external")], call.server.rng)
        c.set_state("CS_INIT", "DOWN", "2")
        self.fire("CHANNEL_CREATE")
        self.fire("CHANNEL_ORIGINATE")
        cause = d.failure_cause or (None if d.answers else "NO_ANSWER")
        status, _, _ = call.wait(min(max(d.ring_s, 0.02), 60.0))
        if status == "hangup":
            cause = "ORIGINATOR_CANCEL"
        if cause:
            self._end(cause, False)
            self._destroy()
            a.set_var("originate_disposition", cause)
            return "_none_"
        now = call.clock.now()
        c.answered = now
        c.media = True
        c.set_state("CS_CONSUME_MEDIA", "DOWN", "7", "answered")
        self.fire("CHANNEL_ANSWER")
        c.set_state("CS_EXCHANGE_MEDIA", "ACTIVE", "5")
        a.bridged = now
        a.other_leg = [("Other-Type", "originatee")] + [
            ("Other-Leg-" + k[len("Caller-"):], v) for k, v in c.caller_profile("Caller-")
            if k not in ("Caller-Profile-Index",)]
        a.changed()
        a.set_vars([("originate_disposition", "SUCCESS"), ("signal_bond", c.uuid)])
        bridge_hdrs = [("Bridge-A-Unique-ID", a.uuid), ("Bridge-B-Unique-ID", c.uuid)]
        call.fire("CHANNEL_BRIDGE", pre=bridge_hdrs)
        a.set_vars([("last_bridge_to", c.uuid), ("bridge_channel", c.name), ("bridge_uuid", c.uuid),
                    ("last_bridge_role", "originator")])
        status, _, _ = call.wait(d.hangup_at(call.server.script.listen_cap_s))
        self._end("NORMAL_CLEARING", True)
        a.set_var("bridge_hangup_cause", "NORMAL_CLEARING")
        call.fire("CHANNEL_UNBRIDGE", pre=bridge_hdrs)
        if status != "hangup":  # the other side hung up first: A goes on (hangup_after_bridge unset)
            self._destroy()
        else:  # inbound_bridge: C's DESTROY came after A's EXECUTE_COMPLETE bridge
            gevent.spawn_later(0, self._destroy)
        return "_none_"

    def _destroy(self) -> None:
        self.chan.set_state(number="12")
        self.fire("CHANNEL_DESTROY")
        self.call.server.calls_extra.pop(self.chan.uuid, None)
