"""The simulated SIP trunk and the switch's own session-rate limit.

`Trunk(gateways, channels, sessions_per_second)`: an unknown gateway gives `-ERR INVALID_GATEWAY`; more calls
than `channels` at once are refused by the carrier (NORMAL_CIRCUIT_CONGESTION, SIP 503); more new sessions per
second than `sessions_per_second` are refused by FreeSWITCH itself before a channel exists, as
DESTINATION_OUT_OF_ORDER or, now and then, NORMAL_TEMPORARY_FAILURE (README Addendum 3: 19 vs 4 of 23).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass
class Trunk:
    gateways: set[str] = field(default_factory=lambda: {"trunk"})
    channels: int | None = None
    sessions_per_second: float | None = None
    in_use: int = 0
    _starts: deque = field(default_factory=deque)
    _refused: int = 0

    def knows(self, gateway: str) -> bool:
        return gateway in self.gateways

    def rate_refusal(self, now_s: float) -> str | None:
        """The cause when a new session now would pass the switch's sessions-per-second limit, else None."""
        if not self.sessions_per_second:
            return None
        while self._starts and now_s - self._starts[0] >= 1.0:
            self._starts.popleft()
        if len(self._starts) >= self.sessions_per_second:
            self._refused += 1
            return "NORMAL_TEMPORARY_FAILURE" if self._refused % 5 == 0 else "DESTINATION_OUT_OF_ORDER"
        self._starts.append(now_s)
        return None

    def seize(self) -> bool:
        """Take a trunk channel; False when the carrier has none left."""
        if self.channels is not None and self.in_use >= self.channels:
            return False
        self.in_use += 1
        return True

    def release(self) -> None:
        self.in_use = max(0, self.in_use - 1)
