"""One ESL socket on gevent: a reader greenlet, commands answered strictly in order, every wait bounded.

Shared by the inbound client (esl.py) and each outbound call session (outbound.py). FreeSWITCH answers the
commands of one connection one at a time and in order, so a FIFO of pending replies is the whole matching rule.
A command that times out keeps its place in that FIFO: its late reply is consumed by it instead of being
handed to the next command. When the socket closes (or sends bytes that break framing) every pending command
fails at once with EslDisconnected — nobody waits forever (greenswitch's send has no timeout and is never
released, esl-reference §6).
"""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from collections.abc import Callable, Iterable

import gevent
import gevent.event
import gevent.lock
from gevent import socket

from ivr.switch.errors import EslDisconnected, EslTimeout, ProtocolError, UnsafeValue
from ivr.switch.framing import Frame, FrameParser

log = logging.getLogger("ivr.switch")

REPLY_TYPES = frozenset(("command/reply", "api/response"))
# Every frame FreeSWITCH sends has one of these; anything else means we are reading mid-frame (out of step)
KNOWN_TYPES = REPLY_TYPES | frozenset(("auth/request", "text/event-plain", "text/event-json", "text/event-xml",
                                       "text/disconnect-notice", "text/rude-rejection", "log/data"))
READ_SIZE = 256 * 1024


def check_line(text: str, what: str = "command") -> str:
    """Refuse anything that would end the ESL line early and start a second command (CR, LF, NUL)."""
    if "\n" in text or "\r" in text or "\0" in text:
        raise UnsafeValue(f"{what} contains a line break or NUL, refused: {text[:60]!r}")
    return text


def _dropped(_frame: Frame) -> None:
    """Where frames go once the connection is closed."""


class EslConnection:
    """A connected ESL socket. `on_frame` gets every non-reply frame (events, notices) in wire order."""

    def __init__(self, sock: socket.socket, on_frame: Callable[[Frame], None], label: str = "esl",
                 on_close: Callable[[str], None] | None = None) -> None:
        self.sock = sock
        # a command is one small write awaited by its reply: Nagle's wait for an ACK must not delay it
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._on_close = on_close
        self.label = label
        self.parser = FrameParser()
        self.closed = False
        self.close_reason = ""
        self.closed_event = gevent.event.Event()
        self._on_frame = on_frame
        self._pending: deque[tuple[gevent.event.AsyncResult, str]] = deque()
        self._send_lock = gevent.lock.Semaphore()
        self._reader: gevent.Greenlet | None = None

    def start(self) -> None:
        self._reader = gevent.spawn(self._read_loop)

    # -- sending ---------------------------------------------------------------------------------------------
    def command(self, line: str, timeout: float, headers: Iterable[tuple[str, str]] = (),
                log_as: str | None = None) -> Frame:
        """Send one command (first line + optional header lines) and return its reply frame.

        `log_as` replaces the command in every message (the auth line carries the password). `api` expects an
        api/response, everything else a command/reply: a reply of the other kind means the stream is out of
        step, and the connection is dropped.
        """
        shown = log_as or line.split(" ", 1)[0]
        slot = self._send([(line, list(headers))], shown, timeout)[0]
        return self._wait(slot, shown, timeout)

    def pipeline(self, lines: list[str], timeout: float) -> list[Frame]:
        """Send several header-less commands in one write and return their replies in order: one round trip
        instead of len(lines) (FreeSWITCH reads a connection's commands one after another from its stream)."""
        shown = "+".join(line.split(" ", 1)[0] for line in lines)
        slots = self._send([(line, []) for line in lines], shown, timeout)
        return [self._wait(slot, shown, timeout) for slot in slots]

    @staticmethod
    def _encode(line: str, headers: list[tuple[str, str]], shown: str) -> str:
        check_line(line, shown)
        if not line.strip():
            raise UnsafeValue("empty command line: the header lines after it would form a second command")
        parts = [line, "\n"]
        for name, value in headers:
            check_line(name, "header name")
            if not name or ": " in name or name != name.strip():
                raise UnsafeValue(f"bad header name {name[:40]!r}")
            check_line(value, f"header {name}")
            parts.append(f"{name}: {value}\n")
        parts.append("\n")
        return "".join(parts)

    def _send(self, commands: list[tuple[str, list[tuple[str, str]]]], shown: str, timeout: float
              ) -> list[gevent.event.AsyncResult]:
        """Queue a reply slot per command and write them all at once (see `command`)."""
        data = "".join(self._encode(line, headers, shown) for line, headers in commands).encode("utf-8")
        slots = [gevent.event.AsyncResult() for _ in commands]
        if not self._send_lock.acquire(timeout=timeout):
            raise EslTimeout(f"{self.label}: could not send {shown} within {timeout:g}s (socket busy)")
        try:
            if self.closed:
                raise EslDisconnected(f"{self.label}: not connected ({self.close_reason}); {shown} not sent")
            for slot, (line, _) in zip(slots, commands, strict=True):
                self._pending.append((slot, "api/response" if line.startswith("api ") else "command/reply"))
            try:
                try:  # a command fits the socket buffer almost always: one send that never waits, no timer
                    sent = self.sock.send(data, 0, 0.0)
                except BlockingIOError:
                    sent = 0
                data = data[sent:]
                if data:
                    with gevent.Timeout(timeout, False):
                        self.sock.sendall(data)
                        data = b""
            except OSError as exc:
                self.close(f"send failed: {exc}")
                raise EslDisconnected(f"{self.label}: connection lost while sending {shown}") from None
            if data:
                # a half-written command leaves the stream in an unknown state: the connection must go
                self.close(f"send of {shown} timed out")
                raise EslTimeout(f"{self.label}: sending {shown} took longer than {timeout:g}s")
        finally:
            self._send_lock.release()
        return slots

    def _wait(self, slot: gevent.event.AsyncResult, shown: str, timeout: float) -> Frame:
        # wait() rather than get(timeout=): a caller's own gevent.Timeout must pass through untouched
        slot.wait(timeout)
        if not slot.ready():
            gevent.spawn(self._watch_late_reply, slot, shown, timeout)
            raise EslTimeout(f"{self.label}: no reply to {shown} within {timeout:g}s")
        return slot.get()

    def _watch_late_reply(self, slot: gevent.event.AsyncResult, shown: str, timeout: float) -> None:
        # The slot keeps its place, so a late reply is absorbed by it. If even a second timeout passes, the
        # stream is stuck or out of step (bytes that looked like the start of a huge frame, say): drop it and
        # let the owner reconnect rather than have every later command time out too.
        slot.wait(timeout)
        if not slot.ready() and not self.closed:
            log.error("%s: still no reply to %s after %gs; dropping the connection", self.label, shown, 2 * timeout)
            self.close(f"no reply to {shown} within {2 * timeout:g}s")

    def send_raw(self, data: bytes, timeout: float) -> bool:
        """Write bytes with no reply expected (`exit` during shutdown); False if they could not be sent."""
        if self.closed:
            return False
        with gevent.Timeout(timeout, False), contextlib.suppress(OSError):
            self.sock.sendall(data)
            return True
        return False

    # -- reading ---------------------------------------------------------------------------------------------
    def _read_loop(self) -> None:
        reason = "closed by FreeSWITCH"
        sock = self.sock
        feed = self.parser.feed
        while True:
            try:
                data = sock.recv(READ_SIZE)
            except OSError as exc:
                reason = "closed" if self.closed else f"read failed: {exc}"
                break
            if not data:
                break
            try:
                frames = feed(data)
            except ProtocolError as exc:
                self._route(exc.frames)
                reason = f"protocol error: {exc}"
                log.error("%s: dropping the connection after a framing error: %s", self.label, exc)
                break
            self._route(frames)
        self.close(reason)

    def _route(self, frames: list[Frame]) -> None:
        for frame in frames:
            ct = frame.content_type
            if ct not in KNOWN_TYPES:
                self._out_of_step(f"frame with unknown Content-Type {ct[:40]!r}")
                return
            if ct in REPLY_TYPES:
                if not self._pending:
                    log.warning("%s: a reply nobody asked for was dropped: %r", self.label, frame)
                    continue
                slot, expected = self._pending.popleft()
                if ct != expected:
                    slot.set_exception(EslDisconnected(f"{self.label}: got {ct} where {expected} was due"))
                    self._out_of_step(f"{ct} where {expected} was due")
                    return
                slot.set(frame)
                continue
            try:
                self._on_frame(frame)
            except Exception:  # the reader must survive whatever a consumer does
                log.exception("%s: frame consumer failed on %r", self.label, frame)

    def _out_of_step(self, what: str) -> None:
        log.error("%s: stream out of step (%s); dropping the connection", self.label, what)
        self.close(f"protocol error: {what}")

    def close(self, reason: str = "closed") -> None:
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        with contextlib.suppress(OSError):
            self.sock.close()
        while self._pending:
            slot, _ = self._pending.popleft()
            slot.set_exception(EslDisconnected(f"{self.label}: connection lost ({reason})"))
        self.closed_event.set()
        on_close, self._on_close = self._on_close, None
        # The owner (a call's session) holds this connection and these callbacks hold the owner: a cycle that only
        # the cyclic collector frees, which runs rarely, so every finished call's frames (~140 KB) piled up until
        # the evening ended. Nothing may be delivered after close anyway: let go of the owner.
        self._on_frame = _dropped
        if on_close is not None:
            try:
                on_close(reason)
            except Exception:
                log.exception("%s: close callback failed", self.label)
