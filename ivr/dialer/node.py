"""The heartbeat of a dialer process: its DialerNode row, refreshed every couple of (real) seconds.

`ivr status` reads these rows: in-flight calls, event-socket state, the effective rate after congestion
back-off, and a JSON snapshot (`stats`) of the campaign as this process sees it. Each beat also renews the
process's lease (lease.py); a beat that finds the lease lost makes the dialer let go of its calls and rejoin.
Another process treats a node whose heartbeat is older than `dialing.node_timeout_seconds` as gone, fences it and
takes over its calls.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

import gevent

if TYPE_CHECKING:
    from ivr.dialer.dialer import Dialer

log = logging.getLogger("ivr.dialer.node")

HEARTBEAT_REAL_SECONDS = 2.0


def snapshot(dialer: Dialer) -> dict[str, Any]:
    s = dialer.stats
    camp = dialer.campaign
    return {
        "campaign": str(camp.day) if camp is not None else "",
        "campaign_status": getattr(camp, "status", ""),
        "status_reason": getattr(camp, "status_reason", ""),
        "paused": dialer.paused,
        "channels": dialer.pacer.channels,
        "cps": dialer.pacer.cps,
        "rate": round(dialer.pacer.rate, 3),
        "slowdowns": dialer.pacer.slowdowns,
        "in_flight": len(dialer.tracker.flights),
        "peak_in_flight": s.peak_in_flight,
        "placed": s.placed,
        "outcomes": dict(s.outcomes),
        "originate_errors": s.originate_errors,
        "flow_errors": s.flow_errors,
        "trunk_faults": s.trunk_faults,
        "reconciled_lost": s.reconciled_lost,
        "reconnects": int(getattr(dialer.esl, "reconnects", 0) or 0),
        "fenced": s.fenced,
        "taken_over": s.taken_over,
        "db_errors": s.db_errors,
        "epoch": dialer.lease.epoch if dialer.lease is not None else 0,
        "clock_now": dialer.clock.now().isoformat(timespec="seconds"),
    }


def beat(dialer: Dialer) -> None:
    """Write this node's row once, renewing its lease; a lost lease is handed to the dialer."""
    from ivr.dialer.lease import renew

    lease = dialer.ensure_lease()
    snap = snapshot(dialer)
    ok = renew(lease, in_flight=snap["in_flight"], esl_state=str(getattr(dialer.esl, "state", ""))[:32],
               rate=snap["rate"], stats=json.dumps(snap, sort_keys=True))
    if not ok:
        dialer.on_lease_lost()


def heartbeat_loop(dialer: Dialer, every: float | None = None) -> None:
    """Runs in its own greenlet until killed; a failed write is logged and retried next time. Beats come at least
    four times per lease (a short node timeout in tests beats faster than every 2 s)."""
    if every is None:
        every = min(HEARTBEAT_REAL_SECONDS, dialer.node_timeout / 12)
    while True:
        try:
            beat(dialer)
        except Exception as exc:
            log.warning("event=heartbeat_failed error=%s", exc)
        gevent.sleep(every)


def start_heartbeat(dialer: Dialer) -> gevent.Greenlet:
    return gevent.spawn(heartbeat_loop, dialer)
