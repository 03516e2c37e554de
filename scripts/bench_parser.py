#!/usr/bin/env python
"""Events per second decoded by the project's ESL parser and by greenswitch 0.0.19's, same bytes, one run.

The byte stream: every `text/event-plain` frame FreeSWITCH sent in the real transcripts (tests/fixtures,
average ~5.4 KB per event), concatenated and repeated to about --mb megabytes. Events only, because greenswitch
pairs every reply frame with a command it sent and would fail on unsolicited replies.

How each side is measured (best of --rounds, wall-clock, gc left on, same process):
- greenswitch: its own code path, unmodified — `ESLProtocol.receive_events()` (readline per header line, UTF-8
  decode, `ESLEvent` = unquote the whole block + splitlines + split/strip every line, `_read_socket` for the
  body, queue put) reading from an `io.BytesIO` holding the whole stream. BytesIO is kinder to greenswitch than a
  socket (no syscalls, no short reads), so its figure is an upper bound. Its events end in its queue; counted.
- ours: `FrameParser.feed()` on 64 KB chunks (what one recv() gives), `parse_event()` on each frame, then the
  reads a dispatcher does on every event (`Event-Name`, `Unique-ID`) — the headline figure. Also shown: a
  "typical" pass that adds what the dialer and call flow read per event type (TYPICAL_READS: Job-UUID and the
  body of BACKGROUND_JOB, Hangup-Cause of hang-ups, Application-UUID of executions, ...), a "worst" pass that
  reads ten headers of EVERY event (most of them absent, so each is a full scan), and an "everything" pass that
  decodes every header of every event (`items()`), which is not what runs in production but shows the price of
  decoding what nobody reads — exactly what greenswitch always pays.

A second, end-to-end pair (skip with --no-socket): the same stream sent by a tiny server over loopback TCP
after `api go`, read by greenswitch's `InboundESL` (its reader and dispatcher greenlets, a '*' handler reading
Event-Name and Unique-ID) and by `EslClient` (reader, dispatcher, the same handler); timed from the `api go`
reply to the handler seeing the last event.

Usage: .venv/bin/python scripts/bench_parser.py [--mb 40] [--rounds 5] [--no-socket]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from greenswitch.esl import ESLProtocol  # noqa: E402

from ivr.switch.framing import FrameParser, parse_event  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"
CHUNK = 64 * 1024
# what the dialer and the call flow read, per event name, after Event-Name and Unique-ID
TYPICAL_READS = {
    "BACKGROUND_JOB": ("Job-UUID",),
    "CHANNEL_ANSWER": ("variable_ivr_attempt_id",),
    "CHANNEL_HANGUP": ("Hangup-Cause", "variable_ivr_attempt_id"),
    "CHANNEL_HANGUP_COMPLETE": ("Hangup-Cause", "variable_ivr_attempt_id", "variable_billsec",
                                "variable_sip_term_status"),
    "CHANNEL_EXECUTE": ("Application-UUID",),
    "CHANNEL_EXECUTE_COMPLETE": ("Application-UUID", "Application", "Application-Response"),
    "PLAYBACK_STOP": ("Playback-Status", "variable_playback_last_offset_pos", "variable_playback_ms"),
    "DTMF": ("DTMF-Digit",),
}
WORST_READS = ("Event-Name", "Unique-ID", "Job-UUID", "Application", "Application-UUID", "Application-Response",
               "Hangup-Cause", "Playback-Status", "variable_ivr_attempt_id", "variable_playback_last_offset_pos")


def event_frames() -> list[bytes]:
    frames = []
    for path in sorted(FIXTURES.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines()[1:]:
            rec = json.loads(line)
            if rec["dir"] == "in" and rec["data"].startswith("Content-Length:") and \
                    "Content-Type: text/event-plain\n\n" in rec["data"][:60]:
                frames.append(rec["data"].encode("utf-8"))
    return frames


class _NullSock:
    def close(self) -> None:
        pass


def run_greenswitch(stream: bytes) -> int:
    proto = ESLProtocol()
    proto.sock = _NullSock()
    proto.sock_file = io.BytesIO(stream)
    proto.connected = True
    proto.receive_events()
    return proto._esl_event_queue.qsize()


def run_ours(stream: bytes, mode: str) -> int:
    parser = FrameParser()
    count = 0
    for i in range(0, len(stream), CHUNK):
        for frame in parser.feed(stream[i:i + CHUNK]):
            ev = parse_event(frame)
            if mode == "lazy":
                _ = ev.name, ev.uuid
            elif mode == "typical":
                name, _ = ev.name, ev.uuid
                for h in TYPICAL_READS.get(name, ()):
                    ev.get(h)
                if name == "BACKGROUND_JOB":
                    _ = ev.body
            elif mode == "worst":
                for h in WORST_READS:
                    ev.get(h)
            else:
                ev.items()
            count += 1
    return count


def serve_stream(stream: bytes):
    """A loopback 'FreeSWITCH' that authenticates anyone and sends `stream` right after replying to `api go`."""
    from gevent.server import StreamServer

    def handle(sock, _addr):
        f = sock.makefile("rb")
        sock.sendall(b"Content-Type: auth/request\n\n")
        while True:
            lines = []
            while (line := f.readline()) not in (b"\n", b""):
                lines.append(line)
            if not line:
                return
            cmd = lines[0].strip() if lines else b""
            if cmd.startswith(b"auth"):
                sock.sendall(b"Content-Type: command/reply\nReply-Text: +OK accepted\n\n")
            elif cmd.startswith(b"event"):
                sock.sendall(b"Content-Type: command/reply\nReply-Text: +OK event listener enabled plain\n\n")
            elif cmd == b"api go":
                sock.sendall(b"Content-Type: api/response\nContent-Length: 4\n\n+OK\n" + stream)

    server = StreamServer(("127.0.0.1", 0), handle)
    server.start()
    return server


def over_socket_greenswitch(stream: bytes, total: int) -> float:
    import gevent.event
    from greenswitch.esl import InboundESL

    server = serve_stream(stream)
    done, count = gevent.event.Event(), [0]

    def handler(ev):
        _ = ev.headers.get("Event-Name"), ev.headers.get("Unique-ID")
        count[0] += 1
        if count[0] == total:
            done.set()

    client = InboundESL("127.0.0.1", server.server_port, "ClueCon")
    client.connect()
    client.register_handle("*", handler)
    t0 = time.perf_counter()
    client.send("api go")
    done.wait(600)
    elapsed = time.perf_counter() - t0
    client._run = False
    client.sock.close()
    server.stop(timeout=1)
    return elapsed


def over_socket_ours(stream: bytes, total: int) -> float:
    import gevent.event

    from ivr.switch.esl import EslClient

    server = serve_stream(stream)
    done, count = gevent.event.Event(), [0]

    def handler(ev):
        _ = ev.name, ev.uuid
        count[0] += 1
        if count[0] == total:
            done.set()

    client = EslClient("127.0.0.1", server.server_port, "ClueCon", timeout=60)
    client.add_handler(handler)
    client.start()
    t0 = time.perf_counter()
    client.api("go")
    done.wait(600)
    elapsed = time.perf_counter() - t0
    client.stop()
    server.stop(timeout=1)
    return elapsed


def timed(fn, *args, rounds: int) -> tuple[float, int]:
    best, n = float("inf"), 0
    for _ in range(rounds):
        t0 = time.perf_counter()
        n = fn(*args)
        best = min(best, time.perf_counter() - t0)
    return best, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=40.0, help="size of the byte stream in megabytes (default 40)")
    ap.add_argument("--rounds", type=int, default=5, help="best of this many runs per parser (default 5)")
    ap.add_argument("--no-socket", action="store_true", help="skip the end-to-end runs over loopback TCP")
    args = ap.parse_args()
    frames = event_frames()
    one = b"".join(frames)
    stream = one * max(1, int(args.mb * 1e6 / len(one)))
    total = len(frames) * (len(stream) // len(one))
    print(f"stream: {len(stream) / 1e6:.1f} MB, {total} events from {len(frames)} real frames "
          f"(average {len(one) / len(frames):.0f} bytes/event)")
    g_time, g_n = timed(run_greenswitch, stream, rounds=args.rounds)
    assert g_n == total, (g_n, total)
    g_rate = g_n / g_time
    print(f"greenswitch 0.0.19 receive_events : {g_rate:10.0f} events/s ({g_time:.2f} s)")
    for mode, label in (("lazy", "ours, name+uuid read          "),
                        ("typical", "ours, + what the dialer reads "),
                        ("worst", "ours, 10 headers of every ev. "),
                        ("all", "ours, every header decoded    ")):
        t, n = timed(run_ours, stream, mode, rounds=args.rounds)
        assert n == total, (n, total)
        print(f"{label}: {n / t:10.0f} events/s ({t:.2f} s)  ratio {n / t / g_rate:5.1f}x")
    if not args.no_socket:
        g_sock = total / over_socket_greenswitch(stream, total)
        o_sock = total / over_socket_ours(stream, total)
        print(f"end to end over TCP, greenswitch InboundESL : {g_sock:10.0f} events/s")
        print(f"end to end over TCP, EslClient              : {o_sock:10.0f} events/s  ratio {o_sock / g_sock:5.1f}x")


if __name__ == "__main__":
    main()
