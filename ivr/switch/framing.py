"""ESL wire framing: bytes in, frames out, and events decoded lazily per header value.

Owns the byte-level rules of FreeSWITCH's event socket (docs: shared/docs/esl-reference.md §1, transcripts in
tests/fixtures): a frame is a header block of `Name: value\\n` lines ended by an empty line, then exactly
`Content-Length` BYTES of body when that header is present. No `\\r` is ever sent by FreeSWITCH and none is
accepted as a line end here.

Why it looks like this:
- `FrameParser.feed()` is incremental: a frame split across any byte boundary comes out whole, once.
- Header lines are split BEFORE any URL-decoding, and each value is decoded on its own, only when read: a value
  that decodes to "\\n" + "Name: x" stays inside its value and can never forge a header (greenswitch decodes the
  whole block first, esl-reference §6).
- Speed: an event body (~5 KB, ~150 lines) is kept as raw bytes; a header is found by searching for
  `\\nName: ` inside the header block and decoded when first asked for, then cached. A dialer reads a handful of
  headers per event, so the other ~145 lines are never split or decoded.
- Malformed input raises `ProtocolError` (never anything else) and the parser refuses further input until
  `reset()`: after a framing fault the stream position is unknown, so the connection has to be dropped.

Semantics the callers rely on:
- `Frame.headers` holds the OUTER header lines as sent (not URL-decoded; FreeSWITCH only encodes them on the
  outbound `connect` reply); the first of a repeated outer header wins. Use `parse_event(frame)` for decoded
  values: it works for every content type (events, the connect reply's channel data, replies, notices).
- `Event[h]` / `Event.get(h)`: the first occurrence, URL-decoded (UTF-8). `Event.get_all(h)`: every occurrence in
  order (CHANNEL_HANGUP_COMPLETE carries Hangup-Cause twice).
- `_undef_` is what FreeSWITCH writes for a header whose value is empty/NULL: such a header is PRESENT with the
  value "" (`"h" in event` is True, `event.get(h, default)` gives ""). `Event.raw(h)` shows the wire value.
- `Event.body`: the inner body (BACKGROUND_JOB result, api event text) as str, "" when there is none; for JSON
  events the `_body` member. A plain event whose inner Content-Length is bad raises ProtocolError on `.body`.
- Header names are matched exactly (case-sensitive), as FreeSWITCH writes them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import NoReturn
from urllib.parse import unquote

from ivr.switch.errors import ProtocolError

__all__ = ["Frame", "Event", "FrameParser", "ProtocolError", "parse_event", "decode_value", "UNDEF"]

UNDEF = "_undef_"
MAX_HEADER_BYTES = 1 << 20   # a connect reply is ~7.4 KB; 1 MB of header lines means the stream is garbage
MAX_BODY_BYTES = 64 << 20    # the largest api reply we could plausibly ask for (show channels of thousands)

_SEP = b": "
_EOL = b"\n"
_END = b"\n\n"
_CL = b"Content-Length"


def decode_value(raw: bytes) -> str:
    """One header value from the wire: UTF-8 percent-decoding; `_undef_` -> ''. Never raises."""
    if b"%" not in raw:
        text = raw.decode("utf-8", "replace")
    else:
        text = unquote(raw.decode("utf-8", "replace"), errors="replace")
    return "" if text == UNDEF else text


class Frame:
    """One whole frame: the outer header lines (raw text) and the body bytes exactly as received."""

    __slots__ = ("headers", "body", "head")

    def __init__(self, headers: dict[str, str], body: bytes = b"", head: bytes = b"") -> None:
        self.headers = headers
        self.body = body
        self.head = head  # the header block as received, without the terminating empty line

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")

    @property
    def raw(self) -> bytes:
        """The frame's bytes as they were on the wire."""
        return self.head + _END + self.body

    @property
    def reply_text(self) -> str:
        """Reply-Text URL-decoded (the connect reply sends `%2BOK%0A`), '' when absent."""
        value = self.headers.get("Reply-Text")
        return "" if value is None else decode_value(value.encode("utf-8"))

    def __repr__(self) -> str:
        return f"Frame({self.content_type or '?'}, {len(self.head)}+{len(self.body)} bytes)"


def _parse_head(head: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in head.split(_EOL):
        name, sep, value = line.partition(_SEP)
        if not sep or not name:
            raise ProtocolError(f"header line without 'Name: value': {line[:80]!r}")
        key = name.decode("utf-8", "replace")
        if key not in headers:
            headers[key] = value.decode("utf-8", "replace")
    return headers


def _content_length(value: str | bytes, where: str) -> int:
    raw = value.encode("ascii", "replace") if isinstance(value, str) else value
    # bytes.isdigit is ASCII-only: no sign, no spaces, no '\r', no Unicode digits sneak through int()
    if not raw or not raw.isdigit() or len(raw) > 12:
        raise ProtocolError(f"bad {where} Content-Length: {raw[:40]!r}")
    n = int(raw)
    if n > MAX_BODY_BYTES:
        raise ProtocolError(f"{where} Content-Length {n} exceeds {MAX_BODY_BYTES}")
    return n


class FrameParser:
    """Incremental ESL frame parser: `feed(bytes) -> list[Frame]`, frames complete and in order."""

    __slots__ = ("_buf", "_need", "_scan", "_broken")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._need = 0      # bytes the buffered frame needs before parsing can make progress (0 = unknown)
        self._scan = 0      # where to resume looking for the header terminator in _buf
        self._broken: str | None = None

    def reset(self) -> None:
        """Forget everything buffered (use after a reconnect)."""
        self.__init__()

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame]:
        if self._broken is not None:
            raise ProtocolError(f"parser stopped after an earlier framing error ({self._broken})")
        if not data:
            return []
        buf = self._buf
        if buf:
            start_scan = len(buf) - 1
            buf += data
            if self._need:
                if len(buf) < self._need:
                    return []
            elif buf.find(_END, max(self._scan, start_scan)) < 0:
                if len(buf) > MAX_HEADER_BYTES:
                    self._fail(f"no end of header block within {MAX_HEADER_BYTES} bytes", [])
                self._scan = max(0, len(buf) - 1)
                return []
            view = bytes(buf)
            self._buf = bytearray()
        else:
            view = data
        return self._parse(view)

    def _fail(self, message: str, frames: list[Frame]) -> NoReturn:
        self._broken = message
        self._buf = bytearray()
        raise ProtocolError(message, frames)

    def _parse(self, view: bytes) -> list[Frame]:
        frames: list[Frame] = []
        pos = 0
        size = len(view)
        find = view.find
        while pos < size:
            # stray empty lines between frames carry nothing; skip them rather than call them a frame
            while pos < size and view[pos] == 10:
                pos += 1
            if pos >= size:
                break
            end = find(_END, pos)
            if end < 0:
                if size - pos > MAX_HEADER_BYTES:
                    self._fail(f"no end of header block within {MAX_HEADER_BYTES} bytes", frames)
                self._keep(view, pos, 0, size - pos - 1)
                return frames
            head = view[pos:end]
            try:
                headers = _parse_head(head)
                cl = headers.get("Content-Length")
                length = 0 if cl is None else _content_length(cl, "frame")
            except ProtocolError as exc:
                self._fail(str(exc), frames)
            body_start = end + 2
            body_end = body_start + length
            if body_end > size:
                self._keep(view, pos, body_end - pos, 0)
                return frames
            frames.append(Frame(headers, view[body_start:body_end] if length else b"", head))
            pos = body_end
        self._buf = bytearray()
        self._need = 0
        self._scan = 0
        return frames

    def _keep(self, view: bytes, pos: int, need: int, scan: int) -> None:
        self._buf = bytearray(view[pos:]) if pos else bytearray(view)
        self._need = need
        self._scan = max(0, scan)


class Event:
    """Headers of one event (or of a reply's header block), decoded per value on first read.

    Built by `parse_event`; never construct from untrusted text directly.
    """

    __slots__ = ("content_type", "_blk", "_hend", "_clean", "_cache", "_json", "_body", "frame")

    def __init__(self, block: bytes, content_type: str = "text/event-plain", *, body: bytes | None = None,
                 frame: Frame | None = None, data: dict | None = None) -> None:
        self.content_type = content_type
        self.frame = frame
        self._blk = block
        self._json = data
        self._cache: dict[str, str | None] = {}
        self._clean = 0
        if data is not None:
            self._hend = 0
            self._body: bytes | str | None = None
        elif body is None:
            # a plain event body: header block, empty line, optional inner body (bounded by its Content-Length).
            # Where the header block ends is found only when needed: scanning 5 KB for it on every event costs
            # more than the lookups a dispatcher makes.
            self._hend = -1
            self._body = None
        else:
            # a frame's own header block (connect reply, api/response, notices): the body is the frame's
            self._hend = len(block)
            self._body = body

    def _header_end(self) -> int:
        hend = self._hend
        if hend < 0:
            found = self._blk.find(_END, self._clean)
            hend = self._hend = len(self._blk) if found < 0 else found
        return hend

    # -- lookups ---------------------------------------------------------------------------------------------
    def _find_raw(self, name: str) -> bytes | None:
        blk = self._blk
        key = name.encode("utf-8", "replace") + _SEP
        if blk.startswith(key) and self._hend != 0:
            vs = len(key)
        else:
            p = blk.find(b"\n" + key)
            if p < 0 or not self._in_header_block(p):
                return None
            vs = p + 1 + len(key)
        ve = blk.find(_EOL, vs)
        return blk[vs:] if ve < 0 else blk[vs:ve]

    def _in_header_block(self, p: int) -> bool:
        """Does the line starting at p+1 belong to the header block (not to the inner body)?"""
        hend = self._hend
        if hend >= 0:
            return p < hend
        if p <= self._clean:
            return True
        # no empty line may start between the part already known clean and p
        if self._blk.find(_END, self._clean, p + 1) >= 0:
            self._header_end()
            return False
        self._clean = p
        return True

    def _json_value(self, name: str) -> str | None:
        v = self._json.get(name)  # type: ignore[union-attr]
        if v is None or name == "_body":  # the inner body is `.body`, not a header
            return None
        if isinstance(v, list):
            v = v[0] if v else ""
        text = v if isinstance(v, str) else json.dumps(v)
        return "" if text == UNDEF else text

    def get(self, name: str, default: str | None = None) -> str | None:
        cache = self._cache
        if name in cache:
            v = cache[name]
            return default if v is None else v
        if self._json is not None:
            v = self._json_value(name)
        else:
            raw = self._find_raw(name)
            v = None if raw is None else decode_value(raw)
        cache[name] = v
        return default if v is None else v

    def __getitem__(self, name: str) -> str:
        v = self.get(name)
        if v is None:
            raise KeyError(name)
        return v

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def raw(self, name: str) -> str | None:
        """The first value exactly as on the wire (not decoded, `_undef_` kept)."""
        if self._json is not None:
            v = None if name == "_body" else self._json.get(name)
            return None if v is None else (v if isinstance(v, str) else json.dumps(v))
        raw = self._find_raw(name)
        return None if raw is None else raw.decode("utf-8", "replace")

    def get_all(self, name: str) -> list[str]:
        """Every value of a header that may repeat, in wire order."""
        if self._json is not None:
            v = None if name == "_body" else self._json.get(name)
            if v is None:
                return []
            items = v if isinstance(v, list) else [v]
            return ["" if x == UNDEF else (x if isinstance(x, str) else json.dumps(x)) for x in items]
        blk = self._blk
        hend = self._header_end()
        key = name.encode("utf-8", "replace") + _SEP
        pat = b"\n" + key
        values: list[str] = []
        start = 0
        if blk.startswith(key):
            ve = blk.find(_EOL, len(key), hend)
            start = hend if ve < 0 else ve
            values.append(decode_value(blk[len(key):start]))
        while True:
            p = blk.find(pat, start, hend)
            if p < 0:
                return values
            vs = p + len(pat)
            ve = blk.find(_EOL, vs, hend)
            start = hend if ve < 0 else ve
            values.append(decode_value(blk[vs:start]))

    def _raw_lines(self) -> Iterator[tuple[str, bytes]]:
        hend = self._header_end()
        if hend == 0:
            return
        for line in self._blk[:hend].split(_EOL):
            name, sep, value = line.partition(_SEP)
            if sep and name:
                yield name.decode("utf-8", "replace"), value

    def items(self) -> list[tuple[str, str]]:
        """Every header (repeats included) decoded, in order: for debugging and conformance checks."""
        if self._json is not None:
            return [(k, v) for k in self._json if k != "_body" for v in self.get_all(k)]
        return [(k, decode_value(v)) for k, v in self._raw_lines()]

    def keys(self) -> list[str]:
        seen: dict[str, None] = {}
        for k, _ in (self._json.items() if self._json is not None else self._raw_lines()):
            if k != "_body" or self._json is None:
                seen.setdefault(k, None)
        return list(seen)

    # -- conveniences ----------------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.get("Event-Name") or ""

    @property
    def uuid(self) -> str:
        return self.get("Unique-ID") or ""

    def variable(self, name: str, default: str | None = None) -> str | None:
        return self.get("variable_" + name, default)

    @property
    def body(self) -> str:
        b = self._body
        if isinstance(b, str):
            return b
        if self._json is not None:
            v = self._json.get("_body", "")
            text = v if isinstance(v, str) else json.dumps(v)
        elif b is not None:
            text = b.decode("utf-8", "replace")
        else:
            text = self._inner_body()
        self._body = text
        return text

    def _inner_body(self) -> str:
        rest_start = self._header_end() + 2
        blk = self._blk
        if rest_start > len(blk):
            return ""
        cl = self._find_raw("Content-Length")
        if cl is None:
            return ""
        n = _content_length(cl, "inner")
        if rest_start + n > len(blk):
            raise ProtocolError(f"inner body shorter than its Content-Length {n}")
        return blk[rest_start:rest_start + n].decode("utf-8", "replace")

    def __repr__(self) -> str:
        return f"Event({self.name or self.content_type}, uuid={self.uuid or '-'})"


def parse_event(frame: Frame) -> Event:
    """The Event view of a frame; for JSON events the object is parsed now (bad JSON -> ProtocolError)."""
    ct = frame.content_type
    if ct == "text/event-plain":
        return Event(frame.body, ct, frame=frame)
    if ct == "text/event-json":
        try:
            data = json.loads(frame.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ProtocolError(f"text/event-json body is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ProtocolError("text/event-json body is not a JSON object")
        return Event(b"", ct, frame=frame, data=data)
    return Event(frame.head, ct, body=frame.body, frame=frame)
