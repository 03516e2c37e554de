"""How an SMS text becomes SMPP parts: the alphabet, the number of parts and the concatenation header.

- Only characters of the GSM 03.38 default alphabet (and its extension table) -> data_coding 0, one septet per
  octet as SMPP carries them (the SMSC packs them): 160 septets in a single message, 153 per part when
  concatenated. An extension character (€, [, ], {, }, ^, ~, |, \\) costs two septets (ESC + code) and an ESC
  pair is never split across parts.
- Anything else (Cyrillic, for one) -> data_coding 8, UCS-2 (UTF-16BE): 70 characters single, 67 per part; a
  character outside the BMP (two UTF-16 units) is never split across parts.
- Parts carry a User Data Header (esm_class 0x40): IEI 00 (concatenation, 8-bit reference), total, sequence.
"""

from __future__ import annotations

from dataclasses import dataclass

from ivr.errors import IvrError

GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = {"\x0c": 0x0A, "^": 0x14, "{": 0x28, "}": 0x29, "\\": 0x2F, "[": 0x3C, "~": 0x3D, "]": 0x3E,
                 "|": 0x40, "€": 0x65}
_BASIC_CODE = {ch: i for i, ch in enumerate(GSM_BASIC) if ch != "\x1b"}
ESC = 0x1B

DC_GSM7 = 0x00
DC_UCS2 = 0x08
ESM_UDHI = 0x40
GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67
MAX_PARTS = 255


class SmsTooLong(IvrError):
    pass


@dataclass(frozen=True)
class Encoded:
    data_coding: int
    parts: list[bytes]  # short_message of each submit_sm, UDH included when there are several
    esm_class: int
    reference: int | None  # the concatenation reference (None for a single part)

    @property
    def count(self) -> int:
        return len(self.parts)


def is_gsm7(text: str) -> bool:
    return all(ch in _BASIC_CODE or ch in GSM_EXTENSION for ch in text)


def _gsm_units(text: str) -> list[bytes]:
    """One entry per character: its septet(s)."""
    return [bytes([_BASIC_CODE[ch]]) if ch in _BASIC_CODE else bytes([ESC, GSM_EXTENSION[ch]]) for ch in text]


def _ucs2_units(text: str) -> list[bytes]:
    return [ch.encode("utf-16-be") for ch in text]


def _pack(units: list[bytes], limit: int) -> list[bytes]:
    """Greedy split of whole characters into chunks of at most `limit` code units (octets / 2 for UCS-2)."""
    chunks: list[bytes] = []
    cur = bytearray()
    for u in units:
        if len(cur) + len(u) > limit:
            chunks.append(bytes(cur))
            cur = bytearray()
        cur += u
    if cur or not chunks:
        chunks.append(bytes(cur))
    return chunks


def length_in_units(text: str) -> tuple[int, int]:
    """(data_coding, length in septets or UTF-16 units) of a text."""
    if is_gsm7(text):
        return DC_GSM7, sum(len(u) for u in _gsm_units(text))
    return DC_UCS2, sum(len(u) for u in _ucs2_units(text)) // 2


def encode(text: str, reference: int = 0) -> Encoded:
    """The SMPP parts of `text`; `reference` (0..255) ties the parts of one concatenated message together."""
    if is_gsm7(text):
        units, dc, single, part, width = _gsm_units(text), DC_GSM7, GSM7_SINGLE, GSM7_PART, 1
    else:
        units, dc, single, part, width = _ucs2_units(text), DC_UCS2, UCS2_SINGLE, UCS2_PART, 2
    total = sum(len(u) for u in units)
    if total <= single * width:
        return Encoded(dc, [b"".join(units)], 0, None)
    chunks = _pack(units, part * width)
    if len(chunks) > MAX_PARTS:
        raise SmsTooLong(f"an SMS of {len(text)} characters needs {len(chunks)} parts (at most {MAX_PARTS})")
    ref = reference & 0xFF
    parts = [bytes([0x05, 0x00, 0x03, ref, len(chunks), i]) + c for i, c in enumerate(chunks, start=1)]
    return Encoded(dc, parts, ESM_UDHI, ref)


def decode(short_message: bytes, data_coding: int, esm_class: int) -> tuple[tuple[int, int, int] | None, str]:
    """(UDH concatenation (ref, total, seq) or None, text) of one received part (for the simulated SMSC)."""
    udh = None
    body = short_message
    if esm_class & ESM_UDHI:
        hl = short_message[0]
        header, body = short_message[1:1 + hl], short_message[1 + hl:]
        i = 0
        while i + 1 < len(header):
            iei, ln = header[i], header[i + 1]
            if iei == 0x00 and ln == 3:
                udh = (header[i + 2], header[i + 3], header[i + 4])
            elif iei == 0x08 and ln == 4:
                udh = ((header[i + 2] << 8) | header[i + 3], header[i + 4], header[i + 5])
            i += 2 + ln
    if data_coding == DC_UCS2:
        return udh, body.decode("utf-16-be")
    out, esc = [], False
    reverse_ext = {v: k for k, v in GSM_EXTENSION.items()}
    for b in body:
        if esc:
            out.append(reverse_ext.get(b, " "))
            esc = False
        elif b == ESC:
            esc = True
        else:
            out.append(GSM_BASIC[b] if b < len(GSM_BASIC) else "?")
    return udh, "".join(out)
