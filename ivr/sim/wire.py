"""Frame encoding exactly as FreeSWITCH 1.10 writes it (see shared/freeswitch/README.md).

Owns: URL-encoding of header values (the same characters FreeSWITCH escapes — comma, slash, quote and
parentheses stay literal), the fixed reply frames, and event frames in plain and JSON form. Everything here
is pure: str/bytes in, bytes out, so it is cheap to call thousands of times per second.
"""

from __future__ import annotations

import json
import re
from datetime import datetime

# FreeSWITCH escapes control bytes, bytes above '~', and these characters; everything else stays literal.
_UNSAFE = set('\r\n "#%&+:;<=>?@[\\]^`{|}')
_ENC_TABLE = {}
for _b in range(256):
    _c = chr(_b)
    _ENC_TABLE[_b] = f"%{_b:02X}" if (_b < 0x20 or _b > 0x7E or _c in _UNSAFE) else _c
_NEEDS = re.compile(r'[\x00-\x1f\x7f-\U0010ffff\r\n "#%&+:;<=>?@\[\\\]^`{|}]')

DISCONNECT_TEXT = b"Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"
AUTH_REQUEST = b"Content-Type: auth/request\n\n"


def url_encode(value: str) -> str:
    """Percent-encode one header value the way FreeSWITCH does (UTF-8 byte by byte, uppercase hex)."""
    if not _NEEDS.search(value):
        return value
    return "".join(_ENC_TABLE[b] for b in value.encode("utf-8"))


_lines: dict[tuple[str, str], str] = {}
# Bounded small: unique values (uuids, timestamps) pass through too, and at 200,000 entries the memo alone held
# ~60 MB, which a soak of the demo (simulator and dialer in one process) saw as RSS growing for ~12,000 calls.
# The values that do repeat are a few thousand at most, so a clear now and then costs nothing measurable.
_LINES_MAX = 20_000


def header_line(name: str, value: str) -> str:
    """`Name: encoded-value\n`, memoized: most header values repeat from event to event."""
    key = (name, value)
    line = _lines.get(key)
    if line is None:
        if len(_lines) > _LINES_MAX:
            _lines.clear()
        line = _lines[key] = f"{name}: {url_encode(value)}\n"
    return line


def command_reply(text: str, extra: tuple[tuple[str, str], ...] = ()) -> bytes:
    """A `command/reply` frame; `text` must already be a single line."""
    lines = [f"Content-Type: command/reply\nReply-Text: {text}\n"]
    lines.extend(f"{k}: {v}\n" for k, v in extra)
    lines.append("\n")
    return "".join(lines).encode("utf-8")


def api_response(body: str) -> bytes:
    data = body.encode("utf-8")
    return b"Content-Type: api/response\nContent-Length: %d\n\n" % len(data) + data


def disconnect_notice(session_uuid: str | None = None) -> bytes:
    """The goodbye notice sent before FreeSWITCH closes a socket (outbound sockets name their session)."""
    head = "Content-Type: text/disconnect-notice\n"
    if session_uuid:
        head += f"Controlled-Session-UUID: {session_uuid}\nContent-Disposition: disconnect\n"
    return head.encode() + b"Content-Length: %d\n\n" % len(DISCONNECT_TEXT) + DISCONNECT_TEXT


def linger_notice(session_uuid: str, channel_name: str, linger_time: int) -> bytes:
    # The channel name is NOT URL-encoded in this frame (outbound_heard_press1).
    return (f"Content-Type: text/disconnect-notice\nControlled-Session-UUID: {session_uuid}\n"
            f"Content-Disposition: linger\nChannel-Name: {channel_name}\nLinger-Time: {linger_time}\n"
            f"Content-Length: 0\n\n").encode()


def plain_event(block: str, inner_body: str | None = None) -> bytes:
    """An event frame: `block` is the encoded header block (lines ending in \\n) without the blank line."""
    if inner_body is None:
        data = (block + "\n").encode("utf-8")
    else:
        inner = inner_body.encode("utf-8")
        data = (block + f"Content-Length: {len(inner)}\n\n").encode("utf-8") + inner
    return b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % len(data) + data


def json_event(pairs: list[tuple[str, str]], inner_body: str | None = None) -> bytes:
    """An event frame in JSON: raw (not URL-encoded) UTF-8 values, all strings, no trailing newline."""
    obj: dict[str, str] = {}
    for k, v in pairs:
        obj.setdefault(k, v)  # a repeated header (Hangup-Cause) appears once in JSON
    if inner_body is not None:
        obj["Content-Length"] = str(len(inner_body.encode("utf-8")))
        obj["_body"] = inner_body
    data = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return b"Content-Length: %d\nContent-Type: text/event-json\n\n" % len(data) + data


_date_cache: dict[int, tuple[str, str, str]] = {}


def event_dates(now: datetime) -> tuple[str, str, str, str]:
    """(Event-Date-Local, Event-Date-GMT, Event-Date-Timestamp, the first two as encoded header lines);
    the simulated server runs on UTC."""
    ts = int(now.timestamp() * 1_000_000)
    sec = ts // 1_000_000
    cached = _date_cache.get(sec)
    if cached is None:
        if len(_date_cache) > 64:
            _date_cache.clear()
        local, gmt = now.strftime("%Y-%m-%d %H:%M:%S"), now.strftime("%a, %d %b %Y %H:%M:%S GMT")
        cached = (local, gmt, f"Event-Date-Local: {url_encode(local)}\nEvent-Date-GMT: {url_encode(gmt)}\n")
        _date_cache[sec] = cached
    return cached[0], cached[1], str(ts), cached[2]
