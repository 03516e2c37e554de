"""Socket plumbing shared by the inbound and outbound sides: a queued writer and a command reader.

The writer keeps frames in order whoever produces them (command replies from the reader, events from call
greenlets) and batches what piles up into one send. The reader cuts client commands: a first line,
optional `Name: value` headers, a blank line, and a body when `Content-Length` is given.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field

import gevent
from gevent.queue import Queue

log = logging.getLogger("ivr.sim")

MAX_COMMAND = 1 << 20  # a client command larger than this is a protocol violation: drop the connection


def no_delay(sock) -> None:
    """Small frames must leave at once (Nagle + delayed ACK would add ~40 ms per round trip)."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class Writer:
    """Ordered, batched sends on one socket; `close()` sends what is queued, then closes."""

    def __init__(self, sock) -> None:
        self.sock = sock
        no_delay(sock)
        self.dead = False
        self._q: Queue = Queue()
        self._g = gevent.spawn(self._run)

    def send(self, data: bytes) -> None:
        if not self.dead:
            self._q.put(data)

    def close(self) -> None:
        """Flush what is queued, then close the socket."""
        if not self.dead:
            self._q.put(None)

    def join(self, timeout: float = 5.0) -> None:
        """Wait until the writer has sent everything and closed (the server closes the socket after us)."""
        self._g.join(timeout=timeout)

    def abort(self) -> None:
        """Close at once, dropping anything queued (fault injection, server stop)."""
        self.dead = True
        with contextlib.suppress(OSError):
            self.sock.close()
        self._g.kill(block=False)

    def _run(self) -> None:
        q = self._q
        try:
            while True:
                item = q.get()
                closing = item is None
                batch = [] if closing else [item]
                while not closing and not q.empty():
                    nxt = q.get_nowait()
                    if nxt is None:
                        closing = True
                        break
                    batch.append(nxt)
                if batch:
                    self.sock.sendall(b"".join(batch))
                if closing:
                    break
        except OSError:
            pass
        finally:
            self.dead = True
            with contextlib.suppress(OSError):
                self.sock.close()


@dataclass
class Command:
    line: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""


def read_commands(sock) -> Iterator[Command]:
    """Yield client commands until the peer closes (or sends garbage too large to be a command)."""
    buf = b""
    while True:
        while True:
            end = buf.find(b"\n\n")
            if end < 0:
                break
            head = buf[:end].decode("utf-8", "replace").replace("\r", "")
            lines = head.split("\n")
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if sep:
                    headers[name.strip()] = value.strip()
            length = 0
            if "Content-Length" in headers:
                try:
                    length = max(0, int(headers["Content-Length"]))
                except ValueError:
                    length = 0
            if len(buf) < end + 2 + length:
                break
            body = buf[end + 2:end + 2 + length].decode("utf-8", "replace")
            buf = buf[end + 2 + length:]
            first = lines[0].strip()
            if first:
                yield Command(first, headers, body)
        if len(buf) > MAX_COMMAND:
            return
        try:
            data = sock.recv(65536)
        except OSError:
            return
        if not data:
            return
        buf += data
