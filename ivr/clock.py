"""The one clock the dialer, the call flow and the simulated FreeSWITCH share.

Everything that asks "what time is it" or "wait N seconds" goes through a Clock, so a three-hour evening can
run in minutes (ScaledClock) and tests can step time by hand (ManualClock). Times are aware UTC datetimes;
local time is always derived per debtor from their time zone, never from the server's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import gevent


class Clock:
    """Real wall-clock time."""

    scale: float = 1.0

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        """Seconds on this clock's time line (simulated seconds for a scaled clock)."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        gevent.sleep(max(0.0, seconds))

    def real_seconds(self, seconds: float) -> float:
        """How many real seconds `seconds` of this clock's time take."""
        return seconds


@dataclass
class ScaledClock(Clock):
    """Time that starts at `start` and runs `scale` times faster than real time.

    Two processes given the same `start`, `real_start` (a Unix timestamp) and `scale` agree on the time,
    which is how the dialer and a simulator in another process share one evening.
    """

    start: datetime
    scale: float = 60.0
    real_start: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        if self.start.tzinfo is None:
            raise ValueError("ScaledClock start must be timezone-aware")
        if self.scale <= 0:
            raise ValueError("ScaledClock scale must be > 0")
        self._mono_offset = time.time() - time.monotonic()

    def _elapsed(self) -> float:
        return (time.monotonic() + self._mono_offset - self.real_start) * self.scale

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self._elapsed())

    def monotonic(self) -> float:
        return self._elapsed()

    def sleep(self, seconds: float) -> None:
        gevent.sleep(max(0.0, seconds) / self.scale)

    def real_seconds(self, seconds: float) -> float:
        return seconds / self.scale


@dataclass
class ManualClock(Clock):
    """A clock that moves only when told to (tests)."""

    current: datetime = field(default_factory=lambda: datetime(2026, 11, 23, 18, 0, tzinfo=UTC))
    _mono: float = 0.0

    def now(self) -> datetime:
        return self.current

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)
        self._mono += seconds

    def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))
        gevent.sleep(0)

    def real_seconds(self, seconds: float) -> float:
        return 0.0
