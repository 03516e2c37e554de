"""Confidence intervals for the report's hold-out comparison (pure arithmetic, no I/O).

The difference of two proportions (share of contacted debtors who paid minus share of held-out debtors who paid)
gets Newcombe's hybrid score interval (Newcombe 1998, method 10): each proportion's Wilson score interval,
combined. Chosen over the Wald interval because the hold-out group is small (5 % of an evening) and payment rates
within a day are often near 0, where Wald's interval is too narrow and can leave [-1, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.959963984540054  # two-sided 95 %
METHOD = "95 % Newcombe hybrid score interval (Wilson intervals of each share)"


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of k successes out of n (n > 0)."""
    if n <= 0:
        raise ValueError("wilson needs n > 0")
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Difference:
    p1: float
    p2: float
    diff: float
    low: float
    high: float

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def newcombe(k1: int, n1: int, k2: int, n2: int, z: float = Z95) -> Difference | None:
    """p1 - p2 with its Newcombe interval; None when either group is empty."""
    if n1 <= 0 or n2 <= 0:
        return None
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson(k1, n1, z)
    l2, u2 = wilson(k2, n2, z)
    d = p1 - p2
    low = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return Difference(p1, p2, d, max(-1.0, low), min(1.0, high))
