"""Leases and fencing of dialer nodes: which process owns which call, and proof that it still does.

Several dialer processes share one database. Each holds a LEASE on its DialerNode row: `register` starts a new
epoch under its name; every heartbeat renews the lease with an UPDATE that matches (name, epoch, not fenced). A
process may start a call only while its lease is valid by its own monotonic clock (`Lease.valid`): a lease lasts
a third of `dialing.node_timeout_seconds` from the start of the last successful renewal, so a process frozen
(SIGSTOP, a stalled VM, a blocked disk) stops dialing long before anyone takes its calls.

Another process takes a node's calls over only when that node's heartbeat is older than the node timeout
(`take_over`): in ONE transaction it fences the node (sets `fenced_at`, which makes the node's next renewal fail)
and moves every unsettled Attempt of that node to itself (node and epoch). Every write of a call's result checks
the owner in the same transaction (`owned`: `Attempt.node = me AND Attempt.epoch = my epoch`), so a node that
wakes up after being taken over writes nothing for calls it no longer owns; it learns it lost its lease at its
next renewal, drops its calls, sends `exit` on their sockets and rejoins under a new name (dialer.py).

A restart under the same name (an `ivr run --node X` restarted by systemd) bumps the epoch: the previous
incarnation is fenced at once (its renewals no longer match), and its calls are taken once its lease has run out.

Clocks: heartbeat ages are compared with this machine's UTC clock; several machines must keep time (NTP), the
node timeout (30 s by default) is far above the skew NTP allows.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ivr.ledger.models import Attempt, DialerNode, attempt_unsettled, database, utcnow

log = logging.getLogger("ivr.dialer.lease")

LEASE_SHARE = 3.0  # the lease lasts node_timeout / LEASE_SHARE; heartbeats come several times per lease


class LeaseLost(Exception):
    """This process no longer owns the call (or node) it was about to write for."""


@dataclass
class Lease:
    """This process's hold on its node name: (name, epoch), valid until `valid_until` (time.monotonic)."""

    node: str
    epoch: int
    timeout_s: float
    valid_until: float = 0.0
    lost: bool = False
    lost_reason: str = ""
    previous_heartbeat: datetime | None = None  # the previous incarnation's last heartbeat (same-name restart)

    @property
    def seconds(self) -> float:
        return self.timeout_s / LEASE_SHARE

    def valid(self) -> bool:
        """May this process start a call now? (No database round-trip: called right before each originate.)"""
        return not self.lost and time.monotonic() < self.valid_until


def unsettled(q: Any) -> Any:
    """Attempt rows not finished yet: in flight, or ended without an outcome."""
    return q.where(attempt_unsettled())


def register(node: str, timeout_s: float, started_at: datetime | None = None) -> Lease:
    """Start a new epoch under `node` (insert or take the row) and return the lease."""
    t0 = time.monotonic()
    now = utcnow()
    with database.atomic():
        row = DialerNode.get_or_none(DialerNode.name == node)
        epoch = (row.epoch if row is not None else 0) + 1
        prev = row.heartbeat_at if row is not None and row.fenced_at is None else None
        fields = {DialerNode.started_at: started_at or now, DialerNode.heartbeat_at: now, DialerNode.epoch: epoch,
                  DialerNode.fenced_at: None, DialerNode.fenced_by: "", DialerNode.in_flight: 0}
        DialerNode.insert({DialerNode.name: node, **fields}).on_conflict(
            conflict_target=[DialerNode.name], update=fields).execute()
    lease = Lease(node, epoch, timeout_s, valid_until=t0 + timeout_s / LEASE_SHARE, previous_heartbeat=prev)
    log.info("event=lease_registered node=%s epoch=%d lease_s=%.1f", node, epoch, lease.seconds)
    return lease


def renew(lease: Lease, **fields: Any) -> bool:
    """Renew the lease (and write the heartbeat's `fields`); False, and the lease marked lost, when the row is no
    longer ours (fenced by another process, or our name restarted elsewhere)."""
    if lease.lost:
        return False
    t0 = time.monotonic()
    n = (DialerNode.update({DialerNode.heartbeat_at: utcnow(), **fields})
         .where((DialerNode.name == lease.node) & (DialerNode.epoch == lease.epoch) & DialerNode.fenced_at.is_null())
         .execute())
    if n != 1:
        row = DialerNode.get_or_none(DialerNode.name == lease.node)
        why = ("fenced by " + row.fenced_by if row is not None and row.fenced_by and row.epoch == lease.epoch
               else "the name was registered again" if row is not None else "the node row is gone")
        lose(lease, why)
        return False
    lease.valid_until = t0 + lease.seconds
    return True


def lose(lease: Lease, why: str) -> None:
    if not lease.lost:
        lease.lost, lease.lost_reason = True, why
        log.error("event=lease_lost node=%s epoch=%d why=%s; this process stops dialing and rejoins", lease.node,
                  lease.epoch, why)


def leave(lease: Lease) -> bool:
    """A clean exit: the node's row says it stopped, so nobody waits for its heartbeat or takes it over, the trunk's
    rate is no longer shared with it, and `ivr status` shows it stopped rather than dead. Not while it still owns
    an unsettled call (that one is taken over as after a crash)."""
    if lease.lost:
        return False
    with database.atomic():
        if unsettled(Attempt.select(Attempt.id).where(Attempt.node == lease.node)).exists():
            return False
        n = (DialerNode.update(fenced_at=utcnow(), fenced_by="", esl_state="stopped", in_flight=0)
             .where((DialerNode.name == lease.node) & (DialerNode.epoch == lease.epoch) &
                    DialerNode.fenced_at.is_null()).execute())
    if n == 1:
        lease.lost, lease.lost_reason = True, "stopped"
        log.info("event=node_stopped node=%s epoch=%d", lease.node, lease.epoch)
    return n == 1


def still_holds(lease: Lease) -> bool:
    """The lease as the database sees it (inside a transaction: the fencing check of a claim)."""
    from ivr.ledger import prebuilt

    return prebuilt.execute("lease.still_holds", lambda: DialerNode.select(DialerNode.name).where(
        (DialerNode.name == lease.node) & (DialerNode.epoch == lease.epoch) & DialerNode.fenced_at.is_null()),
        [lease.node, lease.epoch]).fetchone() is not None


def owned(attempt_id: int, node: str, epoch: int) -> Any:
    """The WHERE of every write for a call: this attempt, still owned by (node, epoch)."""
    return (Attempt.id == attempt_id) & (Attempt.node == node) & (Attempt.epoch == epoch)


_FACT_COLUMNS = ("heard", "heard_ms", "message_ms", "digits", "detail")
_FACT_ORDER = sorted(_FACT_COLUMNS, key=lambda c: Attempt._meta.fields[c]._sort_key)  # peewee's SET order


def claim_row(attempt_id: int, node: str, epoch: int, **fields: Any) -> None:
    """First statement of a result transaction: touch the attempt row under the owner check (this locks it on
    PostgreSQL until commit, so a takeover waits for us and then sees the row as it is). Raises LeaseLost."""
    if set(fields) == set(_FACT_COLUMNS):  # the call flow's facts: once a call, the statement prebuilt
        from ivr.ledger import prebuilt

        n = prebuilt.execute(("lease.claim_row", _FACT_COLUMNS), lambda: Attempt.update(**fields).where(
            owned(attempt_id, node, epoch)), [*(fields[c] for c in _FACT_ORDER), attempt_id, node, epoch]).rowcount
    else:
        q = Attempt.update(**fields) if fields else Attempt.update(epoch=epoch)
        n = q.where(owned(attempt_id, node, epoch)).execute()
    if n != 1:
        raise LeaseLost(f"attempt {attempt_id} is no longer owned by {node}#{epoch}")


def stale_nodes(me: str, timeout_s: float, now: datetime | None = None) -> list[DialerNode]:
    """Other nodes, not fenced yet, whose heartbeat is older than the node timeout."""
    cutoff = (now or utcnow()) - timedelta(seconds=timeout_s)
    return list(DialerNode.select().where((DialerNode.name != me) & DialerNode.fenced_at.is_null() &
                                          (DialerNode.heartbeat_at < cutoff)))


def live_nodes(me: str, timeout_s: float, now: datetime | None = None) -> set[str]:
    cutoff = (now or utcnow()) - timedelta(seconds=timeout_s)
    return {n.name for n in DialerNode.select(DialerNode.name).where(
        (DialerNode.name != me) & DialerNode.fenced_at.is_null() & (DialerNode.heartbeat_at >= cutoff))}


def take_over(lease: Lease, now: datetime | None = None) -> list[int]:
    """Fence every stale node and make its unsettled attempts ours; also those of our own earlier incarnations
    once their lease has run out. Returns the ids of the attempts taken (the caller settles them on the switch)."""
    from ivr.dialer.pacing import slot_transaction

    if lease.lost:
        return []
    now = now or utcnow()
    taken: list[int] = []
    for node in stale_nodes(lease.node, lease.timeout_s, now):
        cutoff = now - timedelta(seconds=lease.timeout_s)
        # the slot lock: a claim of that node (which checks its lease inside the same lock) cannot interleave
        with slot_transaction():
            fenced = (DialerNode.update(fenced_at=now, fenced_by=lease.node)
                      .where((DialerNode.name == node.name) & (DialerNode.epoch == node.epoch) &
                             DialerNode.fenced_at.is_null() & (DialerNode.heartbeat_at < cutoff)).execute())
            if fenced != 1:
                continue  # it came back (or someone else fenced it) meanwhile
            ids = _move(Attempt.node == node.name, lease)
        log.warning("event=node_taken_over node=%s epoch=%d by=%s calls=%d heartbeat_age_s=%.0f", node.name,
                    node.epoch, lease.node, len(ids), (now - node.heartbeat_at).total_seconds())
        taken += ids
    # our own name's earlier incarnations (a restart): theirs once their lease cannot be valid any more
    if lease.previous_heartbeat is None or now >= lease.previous_heartbeat + timedelta(seconds=lease.seconds + 1):
        with slot_transaction():
            ids = _move((Attempt.node == lease.node) & (Attempt.epoch != lease.epoch), lease)
            if ids:
                log.warning("event=earlier_incarnation_taken_over node=%s epoch=%d calls=%d", lease.node,
                            lease.epoch, len(ids))
        taken += ids
    return taken


def _move(whose: Any, lease: Lease) -> list[int]:
    """Make the unsettled attempts matching `whose` ours; the ids actually moved. The UPDATE repeats the
    "unsettled" test: on PostgreSQL a row the old owner finished meanwhile (its result transaction held the row)
    is re-checked after that commit and left alone."""
    ids = [a.id for a in unsettled(Attempt.select(Attempt.id).where(whose))]
    if not ids:
        return []
    unsettled(Attempt.update(node=lease.node, epoch=lease.epoch).where(Attempt.id.in_(ids) & whose)).execute()
    return [a.id for a in Attempt.select(Attempt.id).where(
        Attempt.id.in_(ids) & (Attempt.node == lease.node) & (Attempt.epoch == lease.epoch))]


def earlier_incarnation_takeable(lease: Lease, now: datetime | None = None) -> bool:
    """Unsettled calls of our own name's earlier incarnation whose lease can no longer be valid."""
    now = now or utcnow()
    if lease.previous_heartbeat is not None and now < lease.previous_heartbeat + timedelta(seconds=lease.seconds + 1):
        return False
    return unsettled(Attempt.select().where((Attempt.node == lease.node) & (Attempt.epoch != lease.epoch))).exists()

