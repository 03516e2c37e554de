"""A tiny gevent ESL client for driving the simulator from tests and benchmarks (not the product's client).

`FrameConn` wraps a socket, cuts frames with the project's parser (ivr.switch.framing) and records every
frame in arrival order; `reply()` waits for the next command/reply or api/response, keeping events seen on
the way. `OutboundProbe` is a throw-away outbound-socket server running one function per connection.
"""

from __future__ import annotations

import contextlib

import gevent
from gevent import socket as gsocket
from gevent.event import Event as GEvent
from gevent.queue import Empty, Queue
from gevent.server import StreamServer

from ivr.sim.conn import no_delay
from ivr.switch.framing import Frame, FrameParser, parse_event

REPLY_TYPES = ("command/reply", "api/response")
# How long a wait may take before it counts as a hang. Generous: tests run two suites at once on two cores, and a
# wait that is meant to time out passes its own short timeout.
WAIT_S = 30.0


class FrameConn:
    def __init__(self, sock) -> None:
        self.sock = sock
        no_delay(sock)
        self.frames: list[Frame] = []  # everything received, in order
        self.sent: list[str] = []
        self.closed = False
        self.changed = GEvent()  # set whenever a frame arrives or the socket closes
        self._q: Queue = Queue()
        self._g = gevent.spawn(self._read)

    @classmethod
    def connect(cls, host: str, port: int) -> FrameConn:
        return cls(gsocket.create_connection((host, port), timeout=5))

    def _read(self) -> None:
        parser = FrameParser()
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    break
                for frame in parser.feed(data):
                    self.frames.append(frame)
                    self._q.put(frame)
                self.changed.set()
        except OSError:
            pass
        finally:
            self.closed = True
            self._q.put(None)
            self.changed.set()

    def send(self, text: str) -> None:
        self.sent.append(text)
        self.sock.sendall(text.encode("utf-8"))

    def next(self, timeout: float = WAIT_S) -> Frame | None:
        """The next frame; None when the socket closed. Raises TimeoutError when nothing came."""
        try:
            frame = self._q.get(timeout=timeout)
        except Empty:
            raise TimeoutError(f"no frame within {timeout:.1f}s") from None
        if frame is None:
            self._q.put(None)
        return frame

    def reply(self, timeout: float = WAIT_S) -> Frame:
        while True:
            frame = self.next(timeout)
            if frame is None:
                raise ConnectionError("closed before the reply")
            if frame.content_type in REPLY_TYPES:
                return frame

    def command(self, text: str, timeout: float = WAIT_S) -> Frame:
        self.send(text if text.endswith("\n\n") else text + "\n\n")
        return self.reply(timeout)

    def wait_event(self, name: str, timeout: float = WAIT_S, uuid: str | None = None):
        """Read until an event named `name` (optionally for `uuid`) arrives; returns it parsed."""
        while True:
            frame = self.next(timeout)
            if frame is None:
                raise ConnectionError(f"closed before {name}")
            if frame.content_type.startswith("text/event-"):
                ev = parse_event(frame)
                if ev.name == name and (uuid is None or ev.uuid == uuid):
                    return ev

    def wait_closed(self, timeout: float = WAIT_S) -> None:
        while True:
            if self.next(timeout) is None:
                return

    def wait_until(self, cond, timeout: float = WAIT_S) -> bool:
        """Wait (without polling) until cond() is true; re-checked whenever a frame arrives."""
        with gevent.Timeout(timeout, False):
            while True:
                self.changed.clear()
                if cond():
                    return True
                self.changed.wait()
        return cond()

    def events(self) -> list:
        return [parse_event(f) for f in self.frames if f.content_type.startswith("text/event-")]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
        self._g.kill(block=False)


class OutboundProbe:
    """Listens like the call-flow server; runs `script(conn)` for each connection FreeSWITCH opens."""

    def __init__(self, script) -> None:
        self.script = script
        self.conns: Queue = Queue()
        self.errors: list[BaseException] = []
        self._server = StreamServer(("127.0.0.1", 0), self._handle)

    def start(self) -> OutboundProbe:
        self._server.start()
        return self

    @property
    def port(self) -> int:
        return self._server.server_port

    def _handle(self, sock, _addr) -> None:
        conn = FrameConn(sock)
        self.conns.put(conn)
        try:
            self.script(conn)
        except Exception as exc:  # surfaced to the test through `errors`
            self.errors.append(exc)
        conn.done = True

    def next_conn(self, timeout: float = WAIT_S) -> FrameConn:
        return self.conns.get(timeout=timeout)

    def stop(self) -> None:
        self._server.stop(timeout=0)
