"""Logging set-up: one greppable line per event, phone numbers masked by default.

Lines look like `2026-11-23 18:00:01,123 INFO ivr.dialer attempt=… account=… number=+38050***4567 …`.
Masking is done by a filter on every handler, so no module can leak a full number by forgetting to mask it.
"""

from __future__ import annotations

import logging
import re
import sys

# 8+ digits, optionally led by '+', not part of a longer token (UUIDs and amounts with dots stay intact)
_NUMBER_RE = re.compile(r"(?<![\w.-])(\+?)(\d{3,5})(\d{2,})(\d{4})(?![\w.])")

_masking = True


def mask_number(number: str) -> str:
    """'+380501234567' -> '+38050***4567'; short or odd values keep only their last 2 characters."""
    if not number:
        return ""
    m = _NUMBER_RE.fullmatch(number)
    if m:
        return f"{m[1]}{m[2]}***{m[4]}"
    return "***" + number[-2:] if len(number) > 4 else "***"


def shown_number(number: str) -> str:
    """The number as a log line may show it: masked unless masking was turned off in config."""
    return mask_number(number) if _masking else number


class _CurrentStderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the moment of the log call, not the one at set-up time.

    A handler bound to the stderr of set-up time breaks when that stream is replaced and closed (test capture,
    a daemonized process): every later log line then prints a '--- Logging error ---' traceback instead."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self):  # noqa: ANN201
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:  # noqa: ANN001
        pass


class MaskNumbersFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if _masking:
            msg = record.getMessage()
            masked = _NUMBER_RE.sub(lambda m: f"{m[1]}{m[2]}***{m[4]}", msg)
            if masked != msg:
                record.msg, record.args = masked, ()
        return True


def setup_logging(level: str = "INFO", mask_numbers: bool = True, file: str = "") -> None:
    global _masking
    _masking = mask_numbers
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handlers: list[logging.Handler] = [_CurrentStderrHandler()]
    if file:
        handlers.append(logging.FileHandler(file, encoding="utf-8"))
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    for h in handlers:
        h.setFormatter(fmt)
        h.addFilter(MaskNumbersFilter())
        root.addHandler(h)
    root.setLevel(level)
