"""Reconciliation: what happened to calls we lost sight of (a crash, a dropped event socket).

Run at start-up and after every reconnect. For each attempt of this process (or of a dialer process whose
heartbeat stopped) still in state created/originated/answered, FreeSWITCH is asked `uuid_exists <uuid>`:
- `true`: the channel is up: keep tracking it (its CHANNEL_HANGUP_COMPLETE will finish it; the slot stays taken);
- `false`: it is gone and we never saw it end: state `unknown`, outcome `unknown` (or the call flow's verdict if
  one was written before the crash), and the campaign re-queues the account at the front (counted as an
  attempt). Nobody is called twice at once: an account is re-queued only once FreeSWITCH says its channel is gone.
Rows already ended but never finalized (outcome '') are finalized the same way. Queue entries left in 'dialing'
with no attempt behind them (claimed, then a crash before the row was written) go back to waiting.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ivr.dialer.pacing import IN_FLIGHT_STATES
from ivr.dialer.tracker import Flight
from ivr.ledger.models import Account, Attempt, DialerNode, QueueEntry, utcnow

if TYPE_CHECKING:
    from ivr.dialer.dialer import Dialer

log = logging.getLogger("ivr.dialer.reconcile")

DEAD_NODE_SECONDS = 30
YOUNG_SECONDS = 5.0  # a flight younger than this (real seconds) may have an originate still in transit  # a node whose heartbeat is older than this is considered gone (real seconds)


def dead_nodes(me: str) -> set[str]:
    cutoff = utcnow() - timedelta(seconds=DEAD_NODE_SECONDS)
    return {n.name for n in DialerNode.select(DialerNode.name).where(
        (DialerNode.name != me) & (DialerNode.heartbeat_at < cutoff))}


def live_other_nodes(me: str) -> set[str]:
    cutoff = utcnow() - timedelta(seconds=DEAD_NODE_SECONDS)
    return {n.name for n in DialerNode.select(DialerNode.name).where(
        (DialerNode.name != me) & (DialerNode.heartbeat_at >= cutoff))}


def _unsettled(me: str) -> Any:
    """Attempt rows of other dialer processes not finished yet (in flight, or ended without an outcome)."""
    return Attempt.select().where((Attempt.node != me) & (
        Attempt.state.in_(IN_FLIGHT_STATES) | (Attempt.state.in_(("ended", "unknown")) & (Attempt.outcome == ""))))


def orphaned_rows(me: str) -> int:
    """Unsettled rows of dialer processes whose heartbeat stopped: reconciliation takes them over."""
    dead = dead_nodes(me)
    return _unsettled(me).where(Attempt.node.in_(list(dead))).count() if dead else 0


def foreign_unsettled(me: str, campaign_id: int | None) -> int:
    """Unsettled rows of other processes in this campaign (their accounts may still come back to the queue)."""
    q = _unsettled(me)
    return (q.where(Attempt.campaign == campaign_id) if campaign_id is not None else q).count()


def channel_exists(esl: Any, uuid: str) -> bool | None:
    """True / False from `api uuid_exists`; None when FreeSWITCH could not be asked."""
    try:
        reply = str(esl.api(f"uuid_exists {uuid}")).strip().lower()
    except Exception as exc:
        log.warning("event=uuid_exists_failed attempt=%s error=%s", uuid, exc)
        return None
    if reply in ("true", "false"):
        return reply == "true"
    log.warning("event=uuid_exists_odd_reply attempt=%s reply=%r", uuid, reply[:80])
    return None


def channels_up(esl: Any) -> set[str] | None:
    """Unique-IDs of every channel FreeSWITCH has (`show channels as json`); None if that cannot be read."""
    try:
        reply = str(esl.api("show channels as json")).strip()
        data = json.loads(reply) if reply.startswith("{") else None
    except Exception as exc:
        log.debug("event=show_channels_failed error=%s", exc)
        return None
    if not isinstance(data, dict):
        return None
    rows = data.get("rows") or []
    return {str(r.get("uuid", "")) for r in rows if isinstance(r, dict)}


def _exists(esl: Any, uuid: str, up: set[str] | None) -> bool | None:
    if up is not None and uuid in up:
        return True
    return channel_exists(esl, uuid)  # absent from the list: make sure (it may have just been created)


def _flight_for_row(dialer: Dialer, att: Attempt) -> Flight:
    """A Flight rebuilt from a row left by a crash (its queue entry found by campaign and account)."""
    entry = None
    if att.campaign_id is not None:
        entry = QueueEntry.get_or_none((QueueEntry.campaign == att.campaign_id) &
                                       (QueueEntry.account == att.account_id))
    numbers = [n for n in (att.accounts or "").split(",") if n]
    sharing = list(Account.select().where(Account.number.in_(numbers[1:]))) if len(numbers) > 1 else []
    flight = Flight(attempt_id=att.id, uuid=att.uuid, account_id=att.account_id, e164=att.e164, entry=entry,
                    sharing=sharing, answered=att.answered_at is not None or att.state == "answered",
                    cause=att.hangup_cause)
    flight.sharing_entries = [
        QueueEntry.get_or_none((QueueEntry.campaign == att.campaign_id) & (QueueEntry.account == a.id))
        for a in sharing]
    if att.detail.startswith("flow="):
        flight.flow_outcome = att.detail[5:].split(";", 1)[0].strip()
    return flight


def reconcile(dialer: Dialer) -> dict[str, int]:
    """Settle every attempt whose fate we do not know; returns counts for the log and the tests."""
    counts = {"alive": 0, "lost": 0, "young": 0, "finalized": 0, "released_entries": 0, "unasked": 0}
    owners = {dialer.node, *dead_nodes(dialer.node)}
    tracker = dialer.tracker
    up = channels_up(dialer.esl)

    # 1. our own live flights (after a reconnect: events may have been missed while the socket was down)
    now_real = time.monotonic()
    for flight in list(tracker.flights.values()):
        exists = _exists(dialer.esl, flight.uuid, up)
        if exists is None:
            counts["unasked"] += 1
        elif exists:
            counts["alive"] += 1
        elif flight.released:
            continue
        elif now_real - flight.created_real < YOUNG_SECONDS:
            # its originate may still be on its way to FreeSWITCH: ask again later rather than risk a second call
            counts["young"] += 1
            dialer.reconcile_later(YOUNG_SECONDS)
        else:
            tracker.lost(flight)
            counts["lost"] += 1

    # 2. rows left in flight by a crash (ours from an earlier run, or a dead node's)
    known = set(tracker.flights)
    rows = (Attempt.select().where(Attempt.state.in_(IN_FLIGHT_STATES) & Attempt.node.in_(list(owners)))
            .order_by(Attempt.id))
    for att in rows:
        if att.uuid in known:
            continue
        exists = _exists(dialer.esl, att.uuid, up)
        if exists is None:
            counts["unasked"] += 1
            continue
        flight = _flight_for_row(dialer, att)
        if att.node != dialer.node:
            Attempt.update(node=dialer.node).where(Attempt.id == att.id).execute()
        tracker.add(flight)
        if exists:
            counts["alive"] += 1  # its HANGUP_COMPLETE will finish it
            log.info("event=reconcile_alive attempt=%s", att.uuid)
        else:
            tracker.lost(flight)
            counts["lost"] += 1
            log.warning("event=reconcile_lost attempt=%s outcome=%s; re-queued", att.uuid,
                        flight.outcome or "unknown")

    # 3. rows that ended but were never finalized (crash between the hangup and the result)
    rows = Attempt.select().where((Attempt.state.in_(("ended", "unknown"))) & (Attempt.outcome == "") &
                                  Attempt.node.in_(list(owners)))
    for att in rows:
        if att.uuid in tracker.flights:
            continue
        flight = _flight_for_row(dialer, att)
        flight.lost = att.state == "unknown"
        tracker.add(flight)
        flight.released = True
        tracker.maybe_finalize(flight)
        counts["finalized"] += 1

    # 4. entries claimed but never dialed (only safe when no other dialer process may be mid-claim)
    if dialer.campaign is not None and not live_other_nodes(dialer.node):
        busy = set(tracker.busy_accounts)
        pending = {a.account_id for a in Attempt.select(Attempt.account).where(
            Attempt.state.in_(IN_FLIGHT_STATES) | (Attempt.outcome == ""))}
        for entry in QueueEntry.select().where((QueueEntry.campaign == dialer.campaign.id) &
                                               (QueueEntry.state == "dialing")):
            if entry.account_id in busy or entry.account_id in pending:
                continue
            dialer.queue.release([entry], dialer.clock)
            counts["released_entries"] += 1
    dialer.stats.reconciled_lost += counts["lost"]
    dialer.stats.reconciled_alive += counts["alive"]
    if any(counts.values()):
        log.warning("event=reconciled %s", " ".join(f"{k}={v}" for k, v in counts.items()))
    return counts
