"""Accounts on life support: who the robot may call about what.

`may_call_robot(account, kind)` is the one question every audience asks. Here it is only the flag check: an
account flagged life-support is never called by the robot about an outage (a person tells them, first). The
operator worklist, the "informed" record and the debt-side rule are built on the same function elsewhere
(issue 15 point 4).
"""

from __future__ import annotations

from typing import Any


def may_call_robot(account: Any, kind: str) -> bool:
    """False for a life-support account and an outage notice; True otherwise."""
    return not (kind == "outage" and bool(getattr(account, "life_support", False)))
