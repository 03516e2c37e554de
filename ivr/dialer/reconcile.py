"""Reconciliation: what happened to calls we lost sight of (a crash, a dropped event socket, a frozen process).

Run at start-up, after every reconnect, and whenever another dialer process's heartbeat has gone stale. First the
calls of stale processes (and of our own name's earlier incarnation) are taken over: lease.take_over fences their
owner and makes the rows ours in one transaction. Then for each of OUR attempts still in state
created/originated/answered that this process is not tracking, FreeSWITCH is asked (`show channels`, then
`uuid_exists <uuid>`):
- up: it is another process's call we now own, and nobody here runs its call flow: `uuid_kill` it, so nothing
  lingers, and settle it at once (answered -> early hang-up, front of the queue; never answered -> unknown; a
  verdict the call flow had written stands). Its socket may stay open on the switch until the old process lets
  go, but the debtor's line is free at the hang-up;
- gone: we never saw it end: state `unknown`, outcome `unknown` (or the call flow's verdict if one was written
  before the crash), and the campaign re-queues the account at the front (counted as an attempt).
Nobody is called twice at once: an account is re-queued only once FreeSWITCH says its channel is gone or killed,
and the old owner can no longer start a call (its lease ran out before anyone took over; see lease.py).
Our own live flights (after a reconnect) are asked about too: up -> keep tracking; gone -> lost.
Rows already ended but never finalized (outcome '') are finalized the same way. Queue entries left in 'dialing'
with no attempt behind them (claimed, then a crash before the row was written) go back to waiting.
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any

from ivr.dialer import lease as leases
from ivr.dialer.tracker import Flight
from ivr.ledger.models import ATTEMPT_IN_FLIGHT, Account, Attempt, DialerNode, QueueEntry

if TYPE_CHECKING:
    from ivr.dialer.dialer import Dialer

log = logging.getLogger("ivr.dialer.reconcile")

YOUNG_SECONDS = 5.0  # a flight younger than this (real seconds) may have an originate still in transit


def foreign_owners(lease: leases.Lease, campaign_id: int | None) -> set[str]:
    """Node names (not fenced) owning unsettled rows of this campaign other than ours: each either settles them
    itself or goes stale and has them taken over, so the evening stays open for them."""
    q = leases.unsettled(Attempt.select(Attempt.node).distinct()).where(
        ~((Attempt.node == lease.node) & (Attempt.epoch == lease.epoch)))
    if campaign_id is not None:
        q = q.where(Attempt.campaign == campaign_id)
    names = {a.node for a in q}
    if not names:
        return set()
    return {n.name for n in DialerNode.select(DialerNode.name).where(
        DialerNode.name.in_(list(names)) & DialerNode.fenced_at.is_null())}


def foreign_unsettled(lease: leases.Lease, campaign_id: int | None) -> int:
    """Unsettled rows in this campaign not owned by this process's lease (their accounts may still come back to
    the queue: a live process settles its own, a dead one's are taken over)."""
    q = leases.unsettled(Attempt.select()).where(~((Attempt.node == lease.node) & (Attempt.epoch == lease.epoch)))
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
    flight = Flight(attempt_id=att.id, uuid=att.uuid, account_id=att.account_id, e164=att.e164, node=att.node,
                    epoch=att.epoch, entry=entry,
                    sharing=sharing, answered=att.answered_at is not None or att.state == "answered",
                    cause=att.hangup_cause)
    flight.sharing_entries = [
        QueueEntry.get_or_none((QueueEntry.campaign == att.campaign_id) & (QueueEntry.account == a.id))
        for a in sharing]
    if att.detail.startswith("flow="):
        flight.flow_outcome = att.detail[5:].split(";", 1)[0].strip()
    return flight


def kill_channel(esl: Any, uuid: str) -> bool | None:
    """`uuid_kill`: True when it was up and is hung up now, False when it was gone already, None when FreeSWITCH
    could not be asked (replies as in the inbound_api_channel_control capture: `+OK`, `-ERR No such channel!`)."""
    try:
        reply = str(esl.api(f"uuid_kill {uuid}")).strip()
    except Exception as exc:
        log.warning("event=uuid_kill_failed attempt=%s error=%s", uuid, exc)
        return None
    if reply.startswith("+OK"):
        return True
    if reply.startswith("-ERR") and "no such channel" in reply.lower():
        return False
    log.warning("event=uuid_kill_odd_reply attempt=%s reply=%r", uuid, reply[:80])
    return None


def reconcile(dialer: Dialer) -> dict[str, int]:
    """Settle every attempt whose fate we do not know; returns counts for the log and the tests."""
    counts = {"alive": 0, "lost": 0, "young": 0, "finalized": 0, "released_entries": 0, "unasked": 0,
              "taken": 0, "killed": 0}
    lease = dialer.ensure_lease()
    counts["taken"] = len(leases.take_over(lease))
    dialer.stats.taken_over += counts["taken"]
    tracker = dialer.tracker
    up = channels_up(dialer.esl)
    mine = (Attempt.node == lease.node) & (Attempt.epoch == lease.epoch)

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

    # 2. rows in flight that are ours but not tracked here: taken over from a dead process (or our own name's
    #    earlier incarnation). Nobody runs their call flow: kill what is up, settle what is gone.
    known = set(tracker.flights)
    rows = Attempt.select().where(Attempt.state.in_(ATTEMPT_IN_FLIGHT) & mine).order_by(Attempt.id)
    for att in rows:
        if att.uuid in known:
            continue
        exists = _exists(dialer.esl, att.uuid, up)
        killed = kill_channel(dialer.esl, att.uuid) if exists else False
        if exists is None or killed is None:
            counts["unasked"] += 1
            dialer.reconcile_later(YOUNG_SECONDS)
            continue
        flight = _flight_for_row(dialer, att)
        tracker.add(flight)
        if killed:
            tracker.killed(flight)
            counts["killed"] += 1
            log.warning("event=reconcile_killed attempt=%s outcome=%s; hung up on the switch, re-queued", att.uuid,
                        flight.outcome or "-")
        else:
            tracker.lost(flight)
            counts["lost"] += 1
            log.warning("event=reconcile_lost attempt=%s outcome=%s; re-queued", att.uuid,
                        flight.outcome or "unknown")

    # 3. rows that ended but were never finalized (crash between the hangup and the result)
    rows = Attempt.select().where((Attempt.state.in_(("ended", "unknown"))) & (Attempt.outcome == "") & mine)
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
    camps = getattr(dialer, "campaigns", None) or ([dialer.campaign] if dialer.campaign is not None else [])
    if camps and not leases.live_nodes(lease.node, lease.timeout_s):
        busy = set(tracker.busy_accounts)
        pending = {a.account_id for a in Attempt.select(Attempt.account).where(
            Attempt.state.in_(ATTEMPT_IN_FLIGHT) | (Attempt.outcome == ""))}
        for entry in QueueEntry.select().where((QueueEntry.campaign.in_([c.id for c in camps])) &
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
