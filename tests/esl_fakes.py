"""Small scripted FreeSWITCH stand-ins over real sockets (port 0), replaying the transcripts' own bytes.

Used by test_esl_client.py and test_outbound.py. Deliberately independent of ivr.switch's parser: commands are
read line by line, frames are the transcripts' recorded bytes (uuids swapped for equal-length ones so every
Content-Length stays right).
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field

import gevent
import gevent.event
import gevent.queue
from conftest import load_transcript
from gevent import socket
from gevent.server import StreamServer
from waiting import CEILING

APP_UUID = re.compile(rb"Application-UUID: ([0-9a-f-]{36})")


@dataclass
class Command:
    line: str
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def word(self) -> str:
        return self.line.split(" ", 1)[0]


class Peer:
    """One end of a socket as the fake sees it: read commands, send raw frames."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.file = sock.makefile("rb")
        self.commands: list[Command] = []
        self.raw_in = bytearray()
        self.closed = gevent.event.Event()

    def read(self, timeout: float = CEILING) -> Command | None:
        lines: list[str] = []
        with gevent.Timeout(timeout):
            while True:
                try:
                    line = self.file.readline()
                except (OSError, ValueError):   # ValueError: the file was closed by close()
                    return None
                if not line:
                    return None
                self.raw_in += line
                if line == b"\n":
                    if lines:
                        break
                    continue
                lines.append(line[:-1].decode("utf-8"))
        cmd = Command(lines[0], dict(x.split(": ", 1) for x in lines[1:]))
        self.commands.append(cmd)
        return cmd

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        try:
            # shutdown wakes a greenlet blocked reading this socket; the makefile holds a reference to the
            # socket, so it must be closed too (unless that reader is still inside it)
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(RuntimeError):
                self.file.close()
            self.sock.close()
        finally:
            self.closed.set()

    def wait_eof(self, timeout: float = CEILING) -> bool:
        """Read (and record) commands until the other side closes; True if it did within the timeout."""
        try:
            while self.read(timeout) is not None:
                pass
        except gevent.Timeout:
            return False
        return True


class FakeServer:
    """TCP server on 127.0.0.1:0; `script(peer)` runs per connection; peers are queued for the test."""

    def __init__(self, script) -> None:
        self.script = script
        self.peers: gevent.queue.Queue = gevent.queue.Queue()
        self.count = 0
        self.server = StreamServer(("127.0.0.1", 0), self._handle)
        self.server.start()
        self.port = self.server.server_port

    def _handle(self, sock, _addr) -> None:
        self.count += 1
        peer = Peer(sock)
        self.peers.put(peer)
        try:
            self.script(peer, self.count)
        except (OSError, gevent.Timeout):
            pass
        finally:
            peer.close()

    def next_peer(self, timeout: float = CEILING) -> Peer:
        return self.peers.get(timeout=timeout)

    def stop(self) -> None:
        self.server.stop(timeout=1)


# -- frames taken from the transcripts ---------------------------------------------------------------------------

def in_frames(name: str, conn: str = "") -> list[bytes]:
    t = load_transcript(name)
    return [r.data.encode("utf-8") for r in t.records if r.dir == "in" and r.conn == conn]


def frame_where(name: str, needle: str, conn: str = "") -> bytes:
    return next(f for f in in_frames(name, conn) if needle.encode() in f)


def reply(text: str, **headers: str) -> bytes:
    extra = "".join(f"{k.replace('_', '-')}: {v}\n" for k, v in headers.items())
    return f"Content-Type: command/reply\nReply-Text: {text}\n{extra}\n".encode()


def api_response(body: bytes) -> bytes:
    return b"Content-Type: api/response\nContent-Length: %d\n\n" % len(body) + body


def swap(frame: bytes, old: str, new: str) -> bytes:
    assert len(old) == len(new)
    return frame.replace(old.encode(), new.encode())


def replay_outbound(peer: Peer, name: str, conn: str = "") -> list[str]:
    """Play FreeSWITCH's side of an outbound-socket transcript against whoever connected.

    For each command the transcript's client sent, read one command and send the frames that followed it.
    The Application-UUID FreeSWITCH generated for an execution is replaced by the event-uuid our client sent.
    Set-up commands the transcript's client did not send (`event plain PLAYBACK_*`) get a plain +OK.
    Returns the mismatches (command sent vs command expected) for the test to assert on.
    """
    t = load_transcript(name)
    records = [r for r in t.records if r.conn == conn]
    first: list[bytes] = []
    groups: list[tuple[str, list[bytes]]] = []
    for r in records:
        if r.dir == "out":
            groups.append((r.data, []))
        else:
            (groups[-1][1] if groups else first).append(r.data.encode("utf-8"))
    for f in first:
        peer.send(f)
    mapping: dict[bytes, bytes] = {}
    mismatches: list[str] = []
    i = 0
    while i < len(groups):
        out_text, frames = groups[i]
        cmd = peer.read()
        if cmd is None:
            return mismatches
        want = out_text.split("\n", 1)[0]
        if cmd.line != want:
            if cmd.line.startswith("event plain"):
                peer.send(reply("+OK event listener enabled plain"))
                continue
            mismatches.append(f"got {cmd.line!r} {cmd.headers} want {want!r}")
        if cmd.headers.get("call-command") == "execute" and "event-uuid" in cmd.headers:
            app = cmd.headers.get("execute-app-name", "")
            for f in frames:
                m = APP_UUID.search(f)
                if m and b"Event-Name: CHANNEL_EXECUTE\n" in f and f"Application: {app}\n".encode() in f:
                    mapping[m.group(1)] = cmd.headers["event-uuid"].encode()
                    break
        for f in frames:
            for old, new in mapping.items():
                f = f.replace(old, new)
            peer.send(f)
        i += 1
    return mismatches
