"""The heartbeat of a dialer process: its DialerNode row, refreshed every couple of (real) seconds.

`ivr status` reads these rows: in-flight calls, event-socket state, the effective rate after congestion
back-off, and a JSON snapshot (`stats`) of the campaign as this process sees it. Reconciliation treats a node
whose heartbeat is older than reconcile.DEAD_NODE_SECONDS as gone and takes over its in-flight rows.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

import gevent

from ivr.ledger.models import DialerNode, utcnow

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
        "clock_now": dialer.clock.now().isoformat(timespec="seconds"),
    }


def beat(dialer: Dialer) -> None:
    """Write this node's row once."""
    snap = snapshot(dialer)
    now = utcnow()
    DialerNode.insert(name=dialer.node, started_at=dialer._started_at, heartbeat_at=now,
                      in_flight=snap["in_flight"], esl_state=str(getattr(dialer.esl, "state", "")),
                      rate=snap["rate"], stats=json.dumps(snap, sort_keys=True)).on_conflict(
        conflict_target=[DialerNode.name],
        update={DialerNode.heartbeat_at: now, DialerNode.in_flight: snap["in_flight"],
                DialerNode.esl_state: str(getattr(dialer.esl, "state", "")), DialerNode.rate: snap["rate"],
                DialerNode.stats: json.dumps(snap, sort_keys=True)}).execute()


def heartbeat_loop(dialer: Dialer, every: float = HEARTBEAT_REAL_SECONDS) -> None:
    """Runs in its own greenlet until killed; a failed write is logged and retried next time."""
    while True:
        try:
            beat(dialer)
        except Exception as exc:
            log.warning("event=heartbeat_failed error=%s", exc)
        gevent.sleep(every)


def start_heartbeat(dialer: Dialer) -> gevent.Greenlet:
    return gevent.spawn(heartbeat_loop, dialer)
