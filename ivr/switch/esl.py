"""The inbound event-socket client the dialer talks to FreeSWITCH through.

Shape of greenswitch's `InboundESL` (connect/auth, send a command, register handlers, stop), but a small own
reader on gevent sockets instead of greenswitch's socket loop, because that loop is where its defects live
(esl-reference §6: whole-block URL-decoding, no inner bodies, JSON or a handler exception kills the reader, sends
without timeout that are never released). Here:
- every command has a timeout; pending commands and bgapi jobs fail at once with EslDisconnected on a drop;
- the connection is re-established with exponential back-off (capped by `reconnect_max_delay`) and the event
  subscription and filters are sent again after each reconnect;
- bgapi jobs carry our own `Job-UUID:` header, so the job is known before its reply, and the BACKGROUND_JOB inner
  body (`+OK <uuid>\\n` / `-ERR CAUSE\\n`) resolves the AsyncResult of whoever asked;
- handlers run in their own greenlet, in order; their exceptions are logged and never stop anything;
- a wrong password gives EslAuthError with a clear message and no retry; the password never reaches a log line.
"""

from __future__ import annotations

import logging
import re
import uuid as uuidlib
from collections.abc import Callable, Iterable, Iterator

import gevent
import gevent.event
import gevent.queue
from gevent import socket

from ivr.switch.connection import EslConnection, check_line
from ivr.switch.errors import EslAuthError, EslDisconnected, EslError, EslTimeout, ProtocolError, UnsafeValue
from ivr.switch.framing import Event, Frame, parse_event

__all__ = ["EslClient", "EslError", "EslTimeout", "EslDisconnected", "EslAuthError", "ProtocolError"]

log = logging.getLogger("ivr.switch.esl")

STATES = ("connecting", "connected", "disconnected", "auth_failed")
_EVENT_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$|^[A-Za-z0-9_]+::[A-Za-z0-9_:.-]+$")
_FILTER_HEADER = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


class BgapiJob(gevent.event.AsyncResult):
    """The AsyncResult of one bgapi job; `job_uuid` is the Job-UUID it was sent with."""

    job_uuid = ""


def backoff_delays(first: float, cap: float) -> Iterator[float]:
    """Seconds to wait before each reconnect try: doubling from `first`, never above `cap`."""
    delay = first
    while True:
        yield delay
        delay = min(delay * 2, cap)


class _Barrier:
    """A marker in the handler queue (see EslClient.barrier)."""

    __slots__ = ("done",)

    def __init__(self, done: gevent.event.Event) -> None:
        self.done = done


class EslClient:
    """Inbound ESL connection kept alive in the background.

    `start()` connects, authenticates, subscribes; a dropped connection is re-opened with back-off and the
    subscriptions are replayed. `BACKGROUND_JOB` is always subscribed: bgapi results depend on it.
    """

    def __init__(self, host: str, port: int, password: str, timeout: float = 10.0,
                 reconnect_max_delay: float = 30.0, *, reconnect_min_delay: float = 0.5,
                 keepalive: float = 15.0) -> None:
        if any(c in password for c in "\r\n\0"):
            # the message must not echo the value: it is the password
            raise UnsafeValue("the event-socket password contains a line break or NUL; refused")
        self.host = host
        self.port = int(port)
        self.timeout = float(timeout)
        self.reconnect_max_delay = max(float(reconnect_max_delay), reconnect_min_delay)
        self.reconnect_min_delay = reconnect_min_delay
        # a switch that stops answering sends nothing, so an idle client would never notice: probe it (0 = off)
        self.keepalive = float(keepalive)
        self.reconnects = 0
        self._password = password
        self._state = "disconnected"
        self._conn: EslConnection | None = None
        self._events: set[str] = {"BACKGROUND_JOB"}
        self._filters: list[tuple[str, str]] = []
        self._handlers: list[Callable[[Event], None]] = []
        self._state_fns: list[Callable[[str], None]] = []
        self._jobs: dict[str, BgapiJob] = {}
        self._queue: gevent.queue.Queue = gevent.queue.Queue()
        self._backlog_warn = 10_000
        self._stopping = False
        self._supervisor: gevent.Greenlet | None = None
        self._dispatcher: gevent.Greenlet | None = None
        self._first: gevent.event.AsyncResult | None = None

    def __repr__(self) -> str:  # never shows the password
        return f"EslClient({self.host}:{self.port}, state={self._state})"

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    # -- life cycle ------------------------------------------------------------------------------------------
    @property
    def state(self) -> str:
        return self._state

    @property
    def connected(self) -> bool:
        return self._state == "connected"

    def start(self, wait: bool = True) -> None:
        """Connect in the background. With `wait`, block until the first connection is up; if that first try
        fails, raise (EslAuthError / EslDisconnected / EslTimeout) and stop instead of retrying."""
        if self._supervisor is not None:
            return
        self._stopping = False
        self._first = gevent.event.AsyncResult()
        self._dispatcher = gevent.spawn(self._dispatch_loop)
        self._supervisor = gevent.spawn(self._supervise, wait)
        if wait:
            try:
                self._first.get()
            except EslError:
                self.stop()
                raise

    def stop(self) -> None:
        """Close the connection; pending commands and jobs fail with EslDisconnected."""
        self._stopping = True
        conn = self._conn
        if conn is not None and not conn.closed:
            conn.send_raw(b"exit\n\n", 1.0)
            conn.close("client stopped")
        sup, self._supervisor = self._supervisor, None
        if sup is not None and sup is not gevent.getcurrent():
            sup.kill(block=True, timeout=2)
        self._fail_jobs("client stopped")
        if self._dispatcher is not None:
            self._queue.put(None)
            self._dispatcher = None
        if self._state != "auth_failed":
            self._set_state("disconnected")

    def on_state(self, fn: Callable[[str], None]) -> None:
        self._state_fns.append(fn)

    def _set_state(self, state: str) -> None:
        if state == self._state:
            return
        self._state = state
        for fn in list(self._state_fns):
            try:
                fn(state)
            except Exception:
                log.exception("esl state callback failed state=%s", state)

    def _supervise(self, fail_fast: bool) -> None:
        delays = backoff_delays(self.reconnect_min_delay, self.reconnect_max_delay)
        first = True
        while not self._stopping:
            self._set_state("connecting")
            try:
                conn = self._open()
            except EslAuthError as exc:
                log.error("esl=%s %s", self.where, exc)
                self._set_state("auth_failed")
                self._first.set_exception(exc)
                return
            except (EslError, OSError) as exc:
                err = exc if isinstance(exc, EslError) else EslDisconnected(
                    f"cannot reach the FreeSWITCH event socket at {self.where}: {exc}")
                self._set_state("disconnected")
                if first and fail_fast:
                    self._first.set_exception(err)
                    return
                delay = next(delays)
                log.warning("esl=%s connect failed (%s); retry in %.1fs", self.where, err, delay)
                gevent.sleep(delay)
                continue
            if not first:
                self.reconnects += 1
            first = False
            delays = backoff_delays(self.reconnect_min_delay, self.reconnect_max_delay)
            self._conn = conn
            self._set_state("connected")
            log.info("esl=%s connected reconnects=%d", self.where, self.reconnects)
            self._first.set(True)
            prober = gevent.spawn(self._probe, conn) if self.keepalive > 0 else None
            conn.closed_event.wait()
            if prober is not None:
                prober.kill(block=False)
            self._conn = None
            self._fail_jobs(conn.close_reason)
            if self._stopping:
                break
            self._set_state("disconnected")
            delay = next(delays)
            log.warning("esl=%s connection lost (%s); reconnecting in %.1fs", self.where, conn.close_reason, delay)
            gevent.sleep(delay)

    def _probe(self, conn: EslConnection) -> None:
        """Every `keepalive` seconds a cheap `api version`; no reply within `timeout` drops the connection, so
        the reconnect (and the dialer's reconciliation) starts instead of waiting for events that never come."""
        while not conn.closed_event.wait(self.keepalive):
            try:
                conn.command("api version", self.timeout)
            except EslTimeout:
                log.warning("esl=%s no reply to a keep-alive within %gs; dropping the connection", self.where,
                            self.timeout)
                conn.close(f"no reply to a keep-alive within {self.timeout:g}s")
                return
            except EslError:
                return

    def _open(self) -> EslConnection:
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        sock.settimeout(None)
        greeted = gevent.event.Event()
        rejected: list[str] = []

        def during_handshake(frame: Frame) -> None:
            ct = frame.content_type
            if ct == "auth/request":
                greeted.set()
            elif ct == "text/rude-rejection":
                rejected.append(frame.body.decode("utf-8", "replace").strip())
                greeted.set()
            else:
                self._on_frame(frame)

        conn = EslConnection(sock, during_handshake, label=f"esl {self.where}")
        conn.start()
        try:
            if not greeted.wait(self.timeout):
                if conn.closed:
                    raise EslDisconnected(f"FreeSWITCH at {self.where} closed the connection before asking for auth")
                raise EslTimeout(f"FreeSWITCH at {self.where} sent no auth/request within {self.timeout:g}s")
            if rejected:
                why = rejected[0] or "rude rejection"
                raise EslAuthError(f"FreeSWITCH at {self.where} refused the connection ({why}): allow this host "
                                   "in event_socket.conf.xml apply-inbound-acl")
            reply = conn.command(f"auth {self._password}", self.timeout, log_as="auth")
            if reply.reply_text.strip() != "+OK accepted":
                raise EslAuthError(
                    f"FreeSWITCH at {self.where} refused the event-socket password "
                    f"(reply {reply.reply_text.strip()[:40]!r}); check freeswitch.password or IVR_ESL_PASSWORD")
            self._replay_subscriptions(conn)
        except BaseException:
            conn.close("handshake failed")
            raise
        return conn

    def _replay_subscriptions(self, conn: EslConnection) -> None:
        self._expect_ok(conn.command("event plain " + " ".join(sorted(self._events)), self.timeout), "event")
        for header, value in self._filters:
            self._expect_ok(conn.command(f"filter {header} {value}", self.timeout), "filter")

    @staticmethod
    def _expect_ok(frame: Frame, what: str) -> None:
        text = frame.reply_text
        if not text.startswith("+OK"):
            raise EslError(f"FreeSWITCH refused {what}: {text.strip()[:120]}")

    # -- commands --------------------------------------------------------------------------------------------
    def _live(self) -> EslConnection:
        conn = self._conn
        if conn is None or conn.closed:
            raise EslDisconnected(f"not connected to FreeSWITCH at {self.where} (state {self._state})")
        return conn

    def send(self, command: str, timeout: float | None = None) -> Frame:
        """Any single-line command; returns the reply frame (greenswitch's `send`, with a timeout)."""
        return self._live().command(command, self.timeout if timeout is None else timeout)

    def api(self, cmd: str, timeout: float | None = None) -> str:
        """`api <cmd>`: the response body as text (`-ERR …` is returned, not raised: it is not always an error)."""
        frame = self.send("api " + check_line(cmd), timeout)
        if frame.content_type != "api/response":
            raise EslError(f"api {cmd.split(' ', 1)[0]}: unexpected reply {frame.reply_text.strip()[:120]!r}")
        return frame.body.decode("utf-8", "replace")

    def bgapi(self, cmd: str, timeout: float | None = None) -> BgapiJob:
        """`bgapi <cmd>`: an AsyncResult resolved with the BACKGROUND_JOB body (`+OK …\\n` / `-ERR CAUSE\\n`),
        failed with EslDisconnected if the connection drops first. `timeout` bounds the command's reply only;
        wait for the job itself with `.get(timeout=…)`."""
        check_line(cmd)
        conn = self._live()
        job_uuid = str(uuidlib.uuid4())
        result = BgapiJob()
        result.job_uuid = job_uuid
        self._jobs[job_uuid] = result  # known before the reply, so a fast BACKGROUND_JOB cannot be missed
        try:
            frame = conn.command("bgapi " + cmd, self.timeout if timeout is None else timeout,
                                 headers=[("Job-UUID", job_uuid)])
        except EslError:
            self._jobs.pop(job_uuid, None)
            raise
        text = frame.reply_text.strip()
        if not text.startswith("+OK"):
            self._jobs.pop(job_uuid, None)
            result.set_exception(EslError(f"bgapi {cmd.split(' ', 1)[0]} refused: {text[:120]}"))
            return result
        given = frame.headers.get("Job-UUID")
        if given and given != job_uuid and not result.ready():
            # a server that ignored our Job-UUID header: follow the one it chose
            self._jobs[given] = self._jobs.pop(job_uuid, result)
            result.job_uuid = given
        return result

    def subscribe(self, names: Iterable[str] | str) -> None:
        """Add event names (plain format); sent now if connected and again after every reconnect."""
        wanted = names.split() if isinstance(names, str) else list(names)
        for name in wanted:
            if not _EVENT_NAME.match(name) and name != "CUSTOM":
                raise UnsafeValue(f"not an event name: {name[:60]!r}")
        new = [n for n in wanted if n not in self._events]
        self._events.update(new)
        if new and self.connected:
            self._expect_ok(self.send("event plain " + " ".join(new)), "event")

    def add_filter(self, header: str, value: str) -> None:
        """`filter <header> <value>`, replayed after reconnects. A BACKGROUND_JOB filter is added with the first
        one (once any filter exists, events that match none are dropped — bgapi results included)."""
        if not _FILTER_HEADER.match(header) or not value or any(c in value for c in " \r\n\0"):
            raise UnsafeValue(f"bad filter {header[:40]!r} {value[:60]!r}")
        pairs = [(header, value)]
        if not self._filters and (header, value) != ("Event-Name", "BACKGROUND_JOB"):
            pairs.insert(0, ("Event-Name", "BACKGROUND_JOB"))
        for pair in pairs:
            if pair in self._filters:
                continue
            self._filters.append(pair)
            if self.connected:
                self._expect_ok(self.send(f"filter {pair[0]} {pair[1]}"), "filter")

    # -- events ----------------------------------------------------------------------------------------------
    def add_handler(self, fn: Callable[[Event], None]) -> None:
        """`fn(event)` for every event, in order, from one dispatcher greenlet; exceptions are logged."""
        self._handlers.append(fn)

    def register_handle(self, name: str, fn: Callable[[Event], None]) -> None:
        """greenswitch-style: `fn` for events named `name` ('*' = all)."""
        if name == "*":
            self.add_handler(fn)
        else:
            self.add_handler(lambda ev: fn(ev) if ev.name == name else None)

    def _on_frame(self, frame: Frame) -> None:
        ct = frame.content_type
        if ct.startswith("text/event-"):
            try:
                event = parse_event(frame)
            except ProtocolError as exc:
                log.error("esl=%s undecodable event skipped: %s", self.where, exc)
                return
            if event.name == "BACKGROUND_JOB":
                self._finish_job(event)
            self._queue.put(event)
            backlog = self._queue.qsize()
            if backlog >= self._backlog_warn:
                # slow handlers: FreeSWITCH drops a listener that falls 100,000 events behind (esl-reference §7)
                log.warning("esl=%s %d events waiting for handlers", self.where, backlog)
                self._backlog_warn = backlog * 2
        elif ct == "text/disconnect-notice":
            log.info("esl=%s disconnect notice: %s", self.where, frame.body.decode("utf-8", "replace").strip())
        elif ct == "log/data":
            self._queue.put(parse_event(frame))
        else:
            log.debug("esl=%s frame ignored: %r", self.where, frame)

    def _finish_job(self, event: Event) -> None:
        result = self._jobs.pop(event.get("Job-UUID") or "", None)
        if result is None or result.ready():
            return
        try:
            result.set(event.body)
        except ProtocolError as exc:
            result.set_exception(exc)

    def _fail_jobs(self, reason: str) -> None:
        jobs, self._jobs = self._jobs, {}
        for result in jobs.values():
            if not result.ready():
                result.set_exception(EslDisconnected(f"connection to {self.where} lost before the job ended "
                                                     f"({reason})"))

    def barrier(self, timeout: float = 10.0) -> bool:
        """Wait until every event read before now has been through the handlers (False on timeout).

        A bgapi job is resolved by the reader at once, ahead of the events read before its BACKGROUND_JOB (those
        wait for the handler greenlet): a caller that must know whether, say, a CHANNEL_CREATE came first waits
        here."""
        done = gevent.event.Event()
        self._queue.put(_Barrier(done))
        return done.wait(timeout)

    def _dispatch_loop(self) -> None:
        queue = self._queue
        while True:
            event = queue.get()
            if event is None:
                return
            if isinstance(event, _Barrier):
                event.done.set()
                continue
            for fn in list(self._handlers):
                try:
                    fn(event)
                except Exception:
                    log.exception("esl event handler %s failed on %s", getattr(fn, "__name__", fn), event)
