"""The running counts `ivr status` reads (ivr.ledger.tally) always equal counting the rows themselves."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime

import factories as f

from ivr.admin.status import snapshot
from ivr.ledger import tally
from ivr.ledger.models import Account, Attempt, Campaign, QueueEntry

DAY = date(2026, 11, 23)


def _counted(camp: Campaign) -> tuple[dict[str, int], dict[str, int]]:
    outcomes = Counter(a.outcome for a in Attempt.select().where(Attempt.campaign == camp))
    queue = Counter(q.state for q in QueueEntry.select().where(QueueEntry.campaign == camp))
    return dict(outcomes), dict(queue)


def _tallied(camp: Campaign) -> tuple[dict[str, int], dict[str, int]]:
    return tally.counts("outcome", camp.id), tally.counts("queue", camp.id)


def test_tallies_follow_inserts_updates_moves_and_deletes(cfg, db):
    camp, other = f.campaign(DAY), f.campaign(date(2026, 11, 24))
    accounts = [f.account() for _ in range(4)]
    for a in accounts:
        f.enqueue(camp, a, state="waiting")
    calls = [f.attempt(camp, a, datetime(2026, 11, 23, 16, i), "no_answer") for i, a in enumerate(accounts)]
    assert _tallied(camp) == _counted(camp) == ({"no_answer": 4}, {"waiting": 4})
    Attempt.update(outcome="heard").where(Attempt.id == calls[0].id).execute()
    QueueEntry.update(state="done").where(QueueEntry.account == accounts[0].id).execute()
    Attempt.update(outcome="busy").where(Attempt.id.in_([calls[1].id, calls[2].id])).execute()
    Attempt.update(campaign=other).where(Attempt.id == calls[3].id).execute()  # moved to another evening
    assert _tallied(camp) == _counted(camp) == ({"heard": 1, "busy": 2}, {"waiting": 3, "done": 1})
    assert _tallied(other) == _counted(other) == ({"no_answer": 1}, {})
    Account.delete().where(Account.id == accounts[1].id).execute()  # cascades to its calls and queue entry
    assert _tallied(camp) == _counted(camp) == ({"heard": 1, "busy": 1}, {"waiting": 2, "done": 1})
    Attempt.update(campaign=None).where(Attempt.id == calls[0].id).execute()  # a call outside any campaign
    assert _tallied(camp) == _counted(camp) == ({"busy": 1}, {"waiting": 2, "done": 1})
    tally.recount(db)
    assert _tallied(camp) == _counted(camp) and _tallied(other) == _counted(other)


def test_status_reads_the_tallies(cfg, db):
    camp = f.campaign(DAY)
    for i in range(3):
        a = f.account()
        f.enqueue(camp, a, state="done")
        f.attempt(camp, a, datetime(2026, 11, 23, 16, i), "heard" if i else "")
    snap = snapshot(cfg)
    assert snap.outcomes == {"heard": 2, "in_progress": 1} and snap.attempts == 3
    assert snap.queue["done"] == 3 and snap.queue["waiting"] == 0


def test_migration_6_counts_the_calls_already_in_the_ledger(cfg, db):
    """An older ledger gets its tallies counted from its rows when upgraded; applying it again doubles nothing."""
    from ivr.ledger import db as ledger_db
    from ivr.ledger.models import SchemaVersion, Tally
    camp = f.campaign(DAY)
    a = f.account()
    f.enqueue(camp, a)
    f.attempt(camp, a, datetime(2026, 11, 23, 16, 0), "busy")
    Tally.delete().execute()  # as before migration 6: calls and queue rows, no tallies
    SchemaVersion.delete().where(SchemaVersion.version == 6).execute()
    assert ledger_db.upgrade(db) == [6]
    assert _tallied(camp) == _counted(camp) == ({"busy": 1}, {"done": 1})
    f.attempt(camp, a, datetime(2026, 11, 23, 17, 0), "busy")  # the triggers are there once, not twice
    assert _tallied(camp) == _counted(camp) == ({"busy": 2}, {"done": 1})
