"""A dialer process dies mid-campaign and another one (a new node name, as a restarted `ivr run` has) carries on
(issue 7). At the new process's start the dead one's heartbeat is still fresh, so its calls cannot be taken over
yet; once the heartbeat is stale they must be — in the same run — settled as unknown, re-queued, called again,
and the evening must not end while they are unsettled. Nobody is called twice at once meanwhile."""

from __future__ import annotations

from datetime import timedelta

import gevent
import pytest
from fault_support import FaultWorld, attempts_of, entry_of, finished
from waiting import join

from ivr.ledger.models import Attempt, Campaign, DialerNode, utcnow

pytestmark = pytest.mark.slow


@pytest.fixture
def world(cfg, db):
    w = FaultWorld(cfg)
    yield w
    w.close()


def test_new_process_takes_over_a_dead_dialers_calls(world):
    w = world
    first = w.dialer("node-a")
    camp = w.campaign(first)
    DialerNode.create(name="node-a", heartbeat_at=utcnow())
    g = gevent.spawn(first.run, camp)
    w.wait(lambda: len(finished()) >= 2 and sum(f.answered for f in first.tracker.flights.values()) >= 2,
           what="results written and calls answered")
    # the crash: every greenlet of that process dies at once, its sockets close, nothing more is written
    # (closing the sockets would otherwise let the dying flows finish and write their outcomes, which a
    # kill -9 never does; no greenlet switch happens between the wait above and these lines)
    g.kill()
    first.tracker.maybe_finalize = lambda flight: None
    w.esls[0].stop()
    first.stop()
    before = finished()
    cut = {a.uuid: a.account_id for a in Attempt.select().where(Attempt.outcome == "")}
    assert cut and all(Attempt.get(Attempt.uuid == u).node == "node-a" for u in cut)

    second = w.dialer("node-b")
    g2 = gevent.spawn(second.run, Campaign.get_by_id(camp.id))
    w.wait(lambda: second.campaign is not None, what="the second process to start its run")
    # its start-up reconciliation saw node-a alive; now node-a's heartbeat goes stale
    DialerNode.update(heartbeat_at=utcnow() - timedelta(seconds=120)).where(DialerNode.name == "node-a").execute()
    join(g2, "the second process to finish the evening")

    for aid, outcome in before.items():
        assert Attempt.get_by_id(aid).outcome == outcome
    assert Attempt.select().where(Attempt.outcome == "").count() == 0
    for uuid, account_id in cut.items():
        # node-a is dead, so only node-b can have settled these: as lost (unknown, re-queued), as alive and
        # then hung up, or as ended-but-unfinished (the crash fell between the hangup and the result)
        att = Attempt.get(Attempt.uuid == uuid)
        assert att.state in ("unknown", "ended") and att.outcome
        if att.outcome == "unknown":
            assert Attempt.select().where((Attempt.account == account_id) & (Attempt.id > att.id)).count() >= 1
    for acc in w.accounts:
        assert entry_of(acc).state == "done", (acc.number, [(a.outcome, a.node) for a in attempts_of(acc)])
    assert not w.overlaps
