"""Waiting, in tests, for something the code does: never for a fixed time.

A test waits for the event it needs (a row written, a call placed, a flag set) by polling a condition. The
ceiling is generous on purpose: it exists only to turn a real hang into a failure with a message, so a busy
machine (two suites on two cores) makes a test slower, never red. IVR_TEST_WAIT_CEILING overrides it.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import gevent

CEILING = float(os.environ.get("IVR_TEST_WAIT_CEILING", "90"))


def wait_until(cond: Callable[[], object], what: str, ceiling: float = CEILING, step: float = 0.005) -> None:
    """Poll `cond` (yielding to other greenlets) until it is true; AssertionError naming `what` after `ceiling`."""
    with gevent.Timeout(ceiling, AssertionError(f"timed out after {ceiling:g} s waiting for {what}")):
        while not cond():
            gevent.sleep(step)


def join(greenlet: gevent.Greenlet, what: str, ceiling: float = CEILING) -> object:
    """Wait for `greenlet` to end and return its value (re-raising its exception); fail only on a real hang."""
    greenlet.join(timeout=ceiling)
    assert greenlet.ready(), f"timed out after {ceiling:g} s waiting for {what}"
    return greenlet.get()
