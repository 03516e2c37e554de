"""The outbound-socket server: FreeSWITCH connects here once per answered call (`socket(host:port async full)`).

One greenlet per connection runs: `connect` (the reply is the channel data), `myevents`, `linger`,
`event plain PLAYBACK_START PLAYBACK_STOP` (myevents alone does not deliver them — transcript README; the four are
written at once and their replies read in order, one round trip), then the
handler with a `CallSession`, then waits (bounded) for CHANNEL_HANGUP_COMPLETE and sends `exit` (with plain
`linger` FreeSWITCH never closes the socket itself). A second greenlet per connection reads the socket.

`CallSession.execute()` runs ONE application and waits for THAT execution: the sendmsg carries our own
`event-uuid` (FreeSWITCH echoes it as Application-UUID on CHANNEL_EXECUTE/EXECUTE_COMPLETE) and `event-lock: true`
(otherwise a second queued app runs nested inside a playback). It returns as soon as that EXECUTE_COMPLETE comes,
or when the channel is gone: CHANNEL_HANGUP before the app started (FreeSWITCH will not start it), CHANNEL_HANGUP
and then its EXECUTE_COMPLETE (which always follows within ms; bounded by `hangup_grace`), or the socket closing.
It records the PLAYBACK_STOP(s) and DTMF seen during the execution and whether CHANNEL_HANGUP came before the
PLAYBACK_STOP — the facts the heard rule needs (Playback-Status is `done` even after an early hang-up).

Choices where the contract was silent:
- a handler that returns while the call is still up gets the call hung up for it (NORMAL_CLEARING), except
  after a successful `transfer`/`bridge`, where the call now belongs to the dialplan or the other leg: then the
  socket just stays until CHANNEL_HANGUP_COMPLETE (bounded by `transfer_wait`), as the transfer transcript shows;
- a handler exception is logged with the call's uuid and the call is hung up; other calls are untouched;
- events whose Unique-ID is not this channel's are ignored (defence; none were seen on a real outbound socket).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import re
import time
import uuid as uuidlib
from collections.abc import Callable
from dataclasses import dataclass, field

import gevent
import gevent.event
from gevent.server import StreamServer

from ivr.errors import IvrError
from ivr.switch.connection import EslConnection, check_line
from ivr.switch.errors import EslDisconnected, EslError, EslTimeout, ProtocolError, UnsafeValue
from ivr.switch.framing import Event, Frame, parse_event

__all__ = ["OutboundServer", "CallSession", "ExecResult"]

log = logging.getLogger("ivr.switch.outbound")

_APP = re.compile(r"^[a-z][a-z0-9_]*$")
_VAR = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_CAUSE = re.compile(r"^[A-Z][A-Z0-9_]*$")
_EVENT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(::[A-Za-z0-9_]+)?$")
_HANDS_OFF_APPS = ("transfer", "bridge")
ACCEPT_BACKLOG = 1024


@dataclass
class ExecResult:
    """What one execution of an application did."""

    app: str
    response: str                      # Application-Response of THIS execution ('' if it never completed)
    complete: Event | None             # its CHANNEL_EXECUTE_COMPLETE
    playback_stop: Event | None        # the last PLAYBACK_STOP seen while it ran
    hangup_seen_before_stop: bool      # CHANNEL_HANGUP arrived before any PLAYBACK_STOP of this execution
    hungup: bool                       # the channel was gone when it returned
    dtmf: list[str]                    # DTMF digits seen while it ran, in order
    execute: Event | None = None       # its CHANNEL_EXECUTE (None: it never started)
    playback_stops: list[Event] = field(default_factory=list)
    app_uuid: str = ""


@dataclass
class _Execution:
    app: str
    app_uuid: str
    done: gevent.event.Event = field(default_factory=gevent.event.Event)
    execute: Event | None = None
    complete: Event | None = None
    stops: list[Event] = field(default_factory=list)
    dtmf: list[str] = field(default_factory=list)
    hangup_before_stop: bool = False
    hungup_at_end: bool | None = None   # channel state when the execution ended (later events may follow fast)
    grace: gevent.Greenlet | None = None

    def end(self, hungup: bool) -> None:
        if not self.done.is_set():
            self.hungup_at_end = hungup
            self.done.set()


class CallSession:
    """One answered call on its outbound socket. Use from the handler's greenlet only (one command at a time)."""

    def __init__(self, sock, address=None, *, command_timeout: float = 10.0, exec_timeout: float = 600.0,
                 hangup_grace: float = 2.0) -> None:
        self.address = address
        self.command_timeout = command_timeout
        self.exec_timeout = exec_timeout
        self.hangup_grace = hangup_grace
        self.uuid = ""
        self.channel_data: Event | None = None
        self.events: list[Event] = []
        self.dtmf_seen: list[str] = []                  # every digit of the call, inside executions or not
        self.hungup = False
        self.hangup_event: Event | None = None          # CHANNEL_HANGUP
        self.hangup_complete: Event | None = None       # CHANNEL_HANGUP_COMPLETE (carries billsec, causes)
        self.linger_notice: Frame | None = None
        self.disconnect_notice: Frame | None = None
        self.hands_off = False                          # transferred/bridged: not ours to hang up any more
        self.hangup_requested = False
        self._exec: _Execution | None = None
        self._changed = gevent.event.Event()
        self._conn = EslConnection(sock, self._on_frame, label="outbound", on_close=self._on_close)

    def __repr__(self) -> str:
        return f"CallSession({self.uuid or '?'}, hungup={self.hungup})"

    @property
    def closed(self) -> bool:
        return self._conn.closed

    # -- set-up and tear-down (driven by OutboundServer) -----------------------------------------------------
    def handshake(self) -> None:
        """connect, myevents, linger, the PLAYBACK_* subscription. Raises EslError if the channel is gone."""
        self._conn.start()
        # the four commands in one write, their replies awaited in order: one round trip instead of four before
        # the call can be played to (a debtor who hangs up during a slow set-up gets no call flow at all)
        lines = ("connect", "myevents", "linger", "event plain PLAYBACK_START PLAYBACK_STOP")
        replies = self._conn.pipeline(list(lines), self.command_timeout)
        reply = replies[0]
        if not reply.reply_text.startswith("+OK"):
            raise EslError(f"outbound connect refused: {reply.reply_text.strip()[:80]}")
        data = parse_event(reply)
        self.channel_data = data
        self.uuid = data.get("Unique-ID") or data.get("Channel-Unique-ID") or ""
        self._conn.label = f"outbound call={self.uuid}"
        for line, got in zip(lines[1:], replies[1:], strict=True):
            text = got.reply_text
            if not text.startswith("+OK"):
                raise EslError(f"call={self.uuid} {line.split(' ', 1)[0]} refused: {text.strip()[:80]}")

    def finish(self, hangup_wait: float = 10.0, after_linger: float = 2.0) -> None:
        """Wait (bounded) for CHANNEL_HANGUP_COMPLETE, then `exit` and close. The linger notice may come before
        HANGUP_COMPLETE (seen on the real server), so it only shortens the wait to `after_linger`."""
        deadline = time.monotonic() + hangup_wait
        linger_deadline: float | None = None
        while self.hangup_complete is None and not self._conn.closed:
            now = time.monotonic()
            if self.linger_notice is not None and linger_deadline is None:
                linger_deadline = now + after_linger
            end = deadline if linger_deadline is None else min(deadline, linger_deadline)
            if now >= end:
                log.warning("call=%s no CHANNEL_HANGUP_COMPLETE within the wait; closing", self.uuid)
                break
            self._changed.clear()
            self._changed.wait(end - now)
        if not self._conn.closed and self.disconnect_notice is None:
            with contextlib.suppress(EslError):
                self._conn.command("exit", min(self.command_timeout, 2.0))
                # FreeSWITCH answers +OK bye, sends the disconnect notice, then closes
                end = time.monotonic() + 2.0
                while self.disconnect_notice is None and not self._conn.closed and time.monotonic() < end:
                    self._changed.clear()
                    self._changed.wait(end - time.monotonic())
        self.close()

    def close(self) -> None:
        self._conn.close("session closed")

    def let_go(self, timeout: float = 2.0) -> None:
        """Send `exit` (bounded wait for its reply) and close, whatever state the call is in: another process owns
        it now (ivr.dialer.lease). FreeSWITCH then ends the socket application."""
        if not self._conn.closed and self.disconnect_notice is None:
            with contextlib.suppress(EslError):
                self._conn.command("exit", min(self.command_timeout, timeout))
        self.close()

    # -- commands --------------------------------------------------------------------------------------------
    def execute(self, app: str, arg: str = "", timeout: float | None = None) -> ExecResult:
        """Run `app arg` and wait for that execution to end (or the channel to go). Raises EslTimeout when
        neither happens within `timeout` (default `exec_timeout`)."""
        if not _APP.match(app):
            raise UnsafeValue(f"not an application name: {app[:40]!r}")
        check_line(arg, f"{app} argument")
        x = _Execution(app, str(uuidlib.uuid4()))
        if self.hungup or self._conn.closed:
            return self._result(x)
        headers = [("call-command", "execute"), ("execute-app-name", app)]
        if arg:
            headers.append(("execute-app-arg", arg))
        headers += [("event-uuid", x.app_uuid), ("event-lock", "true")]
        self._exec = x
        try:
            try:
                reply = self._conn.command("sendmsg", self.command_timeout, headers)
            except EslDisconnected:
                return self._result(x)
            text = reply.reply_text
            if not text.startswith("+OK"):
                if self.hungup or "invalid session" in text:
                    self.hungup = True
                    return self._result(x)
                raise EslError(f"call={self.uuid} sendmsg {app} refused: {text.strip()[:120]}")
            if not x.done.wait(self.exec_timeout if timeout is None else timeout):
                raise EslTimeout(f"call={self.uuid} {app} did not complete within "
                                 f"{self.exec_timeout if timeout is None else timeout:g}s")
        finally:
            self._exec = None
            if x.grace is not None:
                x.grace.kill(block=False)
        if app in _HANDS_OFF_APPS and x.complete is not None and not x.hungup_at_end:
            self.hands_off = True
        return self._result(x)

    def subscribe(self, *names: str) -> None:
        """Add event names to this socket's subscription (`event plain NAMES`; for CUSTOM events the subclass
        names follow the word CUSTOM, e.g. `CUSTOM avmd::beep`, as mod_event_socket reads them)."""
        for name in names:
            if not _EVENT_NAME.match(name):
                raise UnsafeValue(f"not an event name: {name[:40]!r}")
        text = self._conn.command("event plain " + " ".join(names), self.command_timeout).reply_text
        if not text.startswith("+OK"):
            raise EslError(f"call={self.uuid} event subscription refused: {text.strip()[:80]}")

    def set(self, var: str, value: str) -> ExecResult:
        if not _VAR.match(var):
            raise UnsafeValue(f"not a channel variable name: {var[:40]!r}")
        check_line(value, f"value of {var}")
        return self.execute("set", f"{var}={value}")

    def hangup(self, cause: str = "NORMAL_CLEARING") -> None:
        """Ask FreeSWITCH to hang up (sendmsg call-command: hangup). Returns once the request is acknowledged."""
        if not _CAUSE.match(cause):
            raise UnsafeValue(f"not a hangup cause: {cause[:40]!r}")
        if self._conn.closed:
            return
        self.hangup_requested = True
        with contextlib.suppress(EslDisconnected):
            self._conn.command("sendmsg", self.command_timeout,
                               [("call-command", "hangup"), ("hangup-cause", cause)])

    def variable(self, name: str, default: str | None = None) -> str | None:
        """The newest value of a channel variable seen on this call (events, then the connect reply)."""
        key = "variable_" + name
        for ev in reversed(self.events):
            v = ev.get(key)
            if v is not None:
                return v
        if self.channel_data is not None:
            return self.channel_data.get(key, default)
        return default

    # -- incoming --------------------------------------------------------------------------------------------
    def _on_frame(self, frame: Frame) -> None:
        ct = frame.content_type
        if ct == "text/disconnect-notice":
            if frame.headers.get("Content-Disposition") == "linger":
                self.linger_notice = frame
            else:
                self.disconnect_notice = frame
            self._changed.set()
            return
        if not ct.startswith("text/event-"):
            return
        try:
            ev = parse_event(frame)
        except ProtocolError as exc:
            log.error("call=%s undecodable event skipped: %s", self.uuid, exc)
            return
        owner = ev.get("Unique-ID")
        if owner and self.uuid and owner != self.uuid:
            log.debug("call=%s event of another channel ignored: %s", self.uuid, ev.name)
            return
        self.events.append(ev)
        name = ev.name
        x = self._exec
        if name == "DTMF":
            digit = ev.get("DTMF-Digit")
            if digit:
                self.dtmf_seen.append(digit)
        if name == "CHANNEL_HANGUP":
            self.hungup = True
            self.hangup_event = ev
            if x is not None:
                if not x.stops:
                    x.hangup_before_stop = True
                if x.execute is None:
                    x.end(True)        # FreeSWITCH does not start an app on a channel that is hanging up
                else:
                    x.grace = gevent.spawn_later(self.hangup_grace, x.end, True)
        elif name == "CHANNEL_HANGUP_COMPLETE":
            self.hungup = True
            self.hangup_complete = ev
            if self.hangup_event is None:
                self.hangup_event = ev
            if x is not None:
                x.end(True)
        elif x is not None:
            if name == "CHANNEL_EXECUTE_COMPLETE":
                if ev.get("Application-UUID") == x.app_uuid:
                    x.complete = ev
                    x.end(self.hungup)
            elif name == "CHANNEL_EXECUTE":
                if ev.get("Application-UUID") == x.app_uuid:
                    x.execute = ev
            elif name == "PLAYBACK_STOP":
                x.stops.append(ev)
            elif name == "DTMF":
                digit = ev.get("DTMF-Digit")
                if digit:
                    x.dtmf.append(digit)
        self._changed.set()

    def _on_close(self, reason: str) -> None:
        self.hungup = True
        x = self._exec
        if x is not None:
            if not x.stops:
                x.hangup_before_stop = True
            x.end(True)
        self._changed.set()

    def _result(self, x: _Execution) -> ExecResult:
        complete = x.complete
        hungup = self.hungup if x.hungup_at_end is None else x.hungup_at_end
        return ExecResult(
            app=x.app,
            response=(complete.get("Application-Response") or "") if complete is not None else "",
            complete=complete,
            playback_stop=x.stops[-1] if x.stops else None,
            hangup_seen_before_stop=x.hangup_before_stop or (hungup and not x.stops),
            hungup=hungup,
            dtmf=list(x.dtmf),
            execute=x.execute,
            playback_stops=list(x.stops),
            app_uuid=x.app_uuid,
        )


class OutboundServer:
    """Listens for FreeSWITCH's outbound-socket connections; `handler(session)` runs once per call."""

    def __init__(self, host: str, port: int, handler: Callable[[CallSession], None], *,
                 command_timeout: float = 10.0, exec_timeout: float = 600.0, hangup_grace: float = 2.0,
                 hangup_wait: float = 10.0, transfer_wait: float = 3600.0,
                 on_finished: Callable[[CallSession], None] | None = None) -> None:
        self.host = host
        self.on_finished = on_finished  # called after each connection is fully closed (metrics, tests)
        self.requested_port = int(port)
        self.handler = handler
        self.command_timeout = command_timeout
        self.exec_timeout = exec_timeout
        self.hangup_grace = hangup_grace
        self.hangup_wait = hangup_wait
        self.transfer_wait = transfer_wait
        self.sessions: set[CallSession] = set()
        self.calls_served = 0
        self.setup_failures = 0  # connections that never became a call session (handshake failed)
        self._server: StreamServer | None = None

    @property
    def port(self) -> int:
        return self._server.server_port if self._server is not None else self.requested_port

    def start(self) -> None:
        # FreeSWITCH connects once per answered call: at a 2,000-channel cap well over a hundred a second, more
        # than the default accept backlog holds while this process is busy (a refused connect loses the call)
        server = StreamServer((self.host, self.requested_port), self._serve, backlog=ACCEPT_BACKLOG)
        try:
            server.start()
        except OSError as exc:
            why = "the port is already in use (another `ivr run`?)" if exc.errno == errno.EADDRINUSE else str(exc)
            raise IvrError(f"cannot listen for FreeSWITCH's outbound sockets on {self.host}:{self.requested_port}: "
                           f"{why}; change freeswitch.outbound_bind_port or stop the other process") from None
        self._server = server
        log.info("outbound socket server listening on %s:%d", self.host, self.port)

    def stop(self, timeout: float = 5.0) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for session in list(self.sessions):
            session.close()
        server.stop(timeout=timeout)

    def _serve(self, sock, address) -> None:
        session = CallSession(sock, address, command_timeout=self.command_timeout,
                              exec_timeout=self.exec_timeout, hangup_grace=self.hangup_grace)
        self.sessions.add(session)
        try:
            try:
                session.handshake()
            except EslError as exc:
                self.setup_failures += 1
                log.warning("call=%s outbound socket set-up failed: %s", session.uuid or "?", exc)
                return
            self.calls_served += 1
            try:
                self.handler(session)
            except Exception:
                log.exception("call=%s call handler failed; hanging up this call", session.uuid)
                if not session.hungup:
                    self._hangup_quietly(session)
            if not (session.hungup or session.hangup_requested or session.hands_off):
                self._hangup_quietly(session)
            wait = self.transfer_wait if session.hands_off else self.hangup_wait
            session.finish(hangup_wait=wait)
        except Exception:
            log.exception("call=%s outbound session failed", session.uuid or "?")
        finally:
            session.close()
            self.sessions.discard(session)
            if self.on_finished is not None:
                try:
                    self.on_finished(session)
                except Exception:
                    log.exception("call=%s on_finished callback failed", session.uuid or "?")

    @staticmethod
    def _hangup_quietly(session: CallSession) -> None:
        try:
            session.hangup("NORMAL_CLEARING")
        except EslError as exc:
            log.warning("call=%s hangup failed: %s", session.uuid, exc)
