"""Leases and fencing of dialer nodes over the ledger (SQLite and PostgreSQL): a node whose heartbeat went stale is
fenced and its unsettled calls move to the node that takes over, in one transaction; the fenced node can then
write nothing for them, claims no slot, and learns it lost its lease at its next renewal. A restart under the
same name fences the earlier incarnation at once. The processes themselves: tests/test_faults_nodes.py."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import factories
import pytest

from ivr.dialer import lease as leases
from ivr.dialer.pacing import claim_slots
from ivr.ledger.models import Attempt, DialerNode, database, utcnow

TIMEOUT = 30.0


def _attempt(acc, lease: leases.Lease, **kw) -> Attempt:
    return Attempt.create(uuid=str(uuid.uuid4()), account=acc, e164="+380501234567", node=lease.node,
                          epoch=lease.epoch, state=kw.pop("state", "answered"), **kw)


def _stale(node: str, seconds: float = TIMEOUT + 5) -> None:
    DialerNode.update(heartbeat_at=utcnow() - timedelta(seconds=seconds)).where(DialerNode.name == node).execute()


def test_takeover_fences_the_stale_node_and_moves_only_its_unsettled_calls(db):
    acc = factories.account()
    a = leases.register("node-a", TIMEOUT)
    b = leases.register("node-b", TIMEOUT)
    up = _attempt(acc, a)
    done = _attempt(acc, a, state="ended", outcome="heard")
    ended_unfinished = _attempt(acc, a, state="ended")
    assert leases.take_over(b) == []  # node-a is alive: nothing is taken
    _stale("node-a")
    assert sorted(leases.take_over(b)) == sorted([up.id, ended_unfinished.id])
    row = DialerNode.get_by_id("node-a")
    assert row.fenced_at is not None and row.fenced_by == "node-b"
    assert {(x.node, x.epoch) for x in Attempt.select().where(Attempt.id.in_([up.id, ended_unfinished.id]))} == {
        ("node-b", b.epoch)}
    assert Attempt.get_by_id(done.id).node == "node-a"  # a finished call stays with who finished it
    assert leases.take_over(b) == []  # fenced once


def test_a_fenced_node_writes_nothing_claims_nothing_and_loses_its_lease(db):
    acc = factories.account()
    a = leases.register("node-a", TIMEOUT)
    b = leases.register("node-b", TIMEOUT)
    call = _attempt(acc, a)
    _stale("node-a")
    leases.take_over(b)
    # node-a wakes up: its lease still looks valid by its own clock, but every write checks the owner
    with pytest.raises(leases.LeaseLost), database.atomic():
        leases.claim_row(call.id, a.node, a.epoch, outcome="heard")
    assert Attempt.get_by_id(call.id).outcome == ""
    rows = [{"uuid": str(uuid.uuid4()), "account": acc.id, "e164": "+380501111111", "node": a.node,
             "epoch": a.epoch}]
    assert claim_slots(10, rows, a) == [] and a.lost  # no slot for a fenced node, and it knows now
    assert not a.valid()
    assert Attempt.select().where(Attempt.e164 == "+380501111111").count() == 0
    # the heartbeat's renewal fails too (a fresh Lease object with the same identity, as after a restart of
    # the greenlet), and says who fenced it
    again = leases.Lease("node-a", a.epoch, TIMEOUT)
    assert leases.renew(again) is False and again.lost and "node-b" in again.lost_reason
    # the owner writes normally
    with database.atomic():
        leases.claim_row(call.id, b.node, b.epoch, outcome="heard")
    assert Attempt.get_by_id(call.id).outcome == "heard"


def test_a_node_that_beats_in_time_is_never_fenced(db):
    a = leases.register("node-a", TIMEOUT)
    b = leases.register("node-b", TIMEOUT)
    _stale("node-a")
    assert leases.renew(a) and a.valid()  # it beat just before anyone looked
    assert leases.take_over(b) == [] and DialerNode.get_by_id("node-a").fenced_at is None


def test_restart_under_the_same_name_fences_the_earlier_incarnation(db):
    acc = factories.account()
    old = leases.register("node-a", TIMEOUT)
    call = _attempt(acc, old)
    new = leases.register("node-a", TIMEOUT)
    assert new.epoch == old.epoch + 1
    assert leases.renew(old) is False and old.lost  # the earlier process, if still alive, stops at its next beat
    assert leases.renew(new)
    # its calls are taken only once its lease can no longer be valid
    assert not leases.earlier_incarnation_takeable(new)
    assert leases.take_over(new) == []
    later = utcnow() + timedelta(seconds=new.seconds + 2)
    assert leases.earlier_incarnation_takeable(new, later)
    assert leases.take_over(new, later) == [call.id]
    assert Attempt.get_by_id(call.id).epoch == new.epoch


def test_a_lease_expires_by_the_monotonic_clock_without_a_renewal(db, monkeypatch):
    a = leases.register("node-a", 3.0)
    assert a.valid() and a.seconds == pytest.approx(1.0)
    now = leases.time.monotonic()
    monkeypatch.setattr(leases.time, "monotonic", lambda: now + 1.5)  # a pause longer than the lease
    assert not a.valid() and not a.lost  # expired, not lost: a renewal may bring it back
    assert leases.renew(a) and a.valid()


@pytest.mark.postgres
@pytest.mark.parametrize("db_backend", ["postgres"])
def test_takeover_waits_for_a_result_being_written_and_then_leaves_it(db):
    """PostgreSQL, two connections: the old owner's result transaction holds the row; the takeover waits for it
    and, re-checking after that commit, does not take the finished call."""
    import psycopg2

    acc = factories.account()
    a = leases.register("node-a", TIMEOUT)
    b = leases.register("node-b", TIMEOUT)
    call = _attempt(acc, a)
    _stale("node-a")
    params = dict(database.connect_params, dbname=database.database)
    params.pop("application_name", None)
    other = psycopg2.connect(**params)
    try:
        cur = other.cursor()  # node-a's result transaction: owner check first (row locked), not committed yet
        cur.execute("UPDATE attempt SET outcome = 'heard', state = 'ended' WHERE id = %s AND node = %s "
                    "AND epoch = %s", (call.id, a.node, a.epoch))
        assert cur.rowcount == 1
        taken: list = []
        t = threading.Thread(target=lambda: taken.append(leases.take_over(b)))
        t.start()
        t.join(timeout=1.0)
        assert t.is_alive(), "the takeover should wait for the row held by the result transaction"
        other.commit()
        t.join(timeout=60)
        assert not t.is_alive()
    finally:
        other.close()
    assert taken == [[]]
    row = Attempt.get_by_id(call.id)
    assert (row.node, row.outcome) == ("node-a", "heard")
    assert DialerNode.get_by_id("node-a").fenced_at is not None


def test_a_node_that_ends_cleanly_is_shown_stopped_not_dead_and_nobody_takes_it_over(db, cfg):
    """`leave` at a clean exit: status says stopped (not dead, not running), no other node fences it or shares the
    trunk's rate with it, and a restart under the name starts a fresh lease. Refused while a call is unsettled."""
    from ivr.admin.status import snapshot

    acc = factories.account()
    a = leases.register("node-a", TIMEOUT)
    b = leases.register("node-b", TIMEOUT)
    call = _attempt(acc, a)
    assert leases.leave(a) is False and not a.lost  # a call of its own is still up: others take it over later
    Attempt.update(state="ended", outcome="heard").where(Attempt.id == call.id).execute()
    assert leases.leave(a) is True and a.lost
    assert leases.live_nodes("node-b", TIMEOUT) == set()
    _stale("node-a")
    assert leases.take_over(b) == [] and DialerNode.get_by_id("node-a").fenced_by == ""
    nodes = {n.name: n for n in snapshot(cfg).nodes}
    assert (nodes["node-a"].state, nodes["node-a"].alive) == ("stopped", False)
    assert not leases.renew(a)  # its heartbeat cannot bring it back
    again = leases.register("node-a", TIMEOUT)
    assert again.epoch == a.epoch + 1 and leases.renew(again)
    assert {n.name: n.state for n in snapshot(cfg).nodes}["node-a"] == "alive"
