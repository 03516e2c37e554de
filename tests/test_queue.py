"""The evening queue over a real SQLite ledger: order, re-checks, retries per cause, numbers, caps, shared numbers,
claims that never double-call (also from two processes), carry-over to the next evening."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, date, datetime, timedelta

import factories
import pytest
from campaign_support import acc, new_number, place, retry

from ivr.campaign import queue
from ivr.campaign.queue import next_candidates, record_result, start_campaign
from ivr.clock import ManualClock
from ivr.ledger.models import Account, Attempt, Campaign, Phone, QueueEntry

DAY = date(2026, 11, 23)  # a Monday; Kyiv is EET (+2): the 18:00-21:00 window is 16:00-19:00 UTC
OPEN = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)


@pytest.fixture
def clock():
    return ManualClock(OPEN)


@pytest.fixture
def env(db, cfg, clock):
    return cfg, clock


def entry_of(a: Account, camp=None) -> QueueEntry:
    q = QueueEntry.select().where(QueueEntry.account == a)
    if camp is not None:
        q = q.where(QueueEntry.campaign == camp)
    return q.order_by(QueueEntry.id.desc()).get()


def take(camp, clock, limit=10, **kw):
    return next_candidates(camp, clock, limit, **kw)


# --- start ---------------------------------------------------------------------------------------------------------

def test_start_queues_only_eligible_accounts_and_counts_them(env):
    cfg, clock = env
    a, b, paid = acc(), acc(), acc()
    factories.payment(paid, "500.00", date(2026, 11, 22))
    camp = start_campaign(cfg, DAY, clock)
    assert camp.eligible_count == 2
    assert camp.status == "running"
    assert {e.account_id for e in QueueEntry.select()} == {a.id, b.id}


def test_resume_same_evening_adds_nothing_twice_and_keeps_done(env):
    cfg, clock = env
    a, b = acc(), acc()
    camp = start_campaign(cfg, DAY, clock)
    (c1,) = take(camp, clock, 1)
    place(camp, c1, "heard", "NORMAL_CLEARING", clock)
    again = start_campaign(cfg, DAY, clock)
    assert again.id == camp.id
    assert QueueEntry.select().count() == 2
    assert entry_of(c1.account).state == "done"
    assert [c.account.id for c in take(again, clock)] == [b.id if c1.account.id == a.id else a.id]


def test_campaign_started_early_waits_for_the_window(env):
    cfg, clock = env
    clock.current = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # 10:00 in Kyiv
    a = acc()
    camp = start_campaign(cfg, DAY, clock)
    assert take(camp, clock) == []
    assert queue.next_wakeup(camp) == OPEN  # every entry of the zone now waits for 18:00 local
    assert entry_of(a).state == "waiting"
    clock.current = OPEN
    assert [c.account.id for c in take(camp, clock)] == [a.id]


def test_other_time_zone_waits_while_kyiv_is_called(env):
    cfg, clock = env
    kyiv, tokyo = acc(), acc(tz="Asia/Tokyo")  # 16:00 UTC is 01:00 in Tokyo
    camp = start_campaign(cfg, DAY, clock)
    assert [c.account.id for c in take(camp, clock)] == [kyiv.id]
    assert entry_of(tokyo).not_before == datetime(2026, 11, 24, 9, 0)  # 18:00 JST next day, naive UTC


# --- order and the front of the queue -------------------------------------------------------------------------------

def test_order_is_priority_then_not_before_then_id(env):
    cfg, clock = env
    a, b, c = acc(), acc(), acc()
    camp = start_campaign(cfg, DAY, clock)
    QueueEntry.update(not_before=datetime(2026, 11, 23, 15, 0)).where(QueueEntry.account == c).execute()
    QueueEntry.update(priority=-1).where(QueueEntry.account == b).execute()
    assert [x.account.id for x in take(camp, clock)] == [b.id, c.id, a.id]


def test_early_hangup_goes_to_the_front_after_the_pause(env):
    cfg, clock = env
    a, b, _c = acc(), acc(), acc()
    camp = start_campaign(cfg, DAY, clock)
    (first,) = take(camp, clock, 1)
    assert first.account.id == a.id
    place(camp, first, "early_hangup", "NORMAL_CLEARING", clock)
    e = entry_of(a)
    assert (e.state, e.priority, e.attempts) == ("waiting", -1, 1)
    assert e.not_before == (OPEN + timedelta(seconds=cfg.retry.early_hangup_pause_seconds)).replace(tzinfo=None)
    clock.advance(cfg.retry.early_hangup_pause_seconds - 1)
    assert take(camp, clock, 1)[0].account.id == b.id  # still pausing
    clock.advance(1)
    nxt = take(camp, clock, 1)[0]
    assert nxt.account.id == a.id and nxt.e164 == first.e164  # ahead of c, on the same number
    place(camp, nxt, "not_heard", "NORMAL_CLEARING", clock)
    assert entry_of(a).priority == -1
    clock.advance(cfg.retry.early_hangup_pause_seconds)
    again = take(camp, clock, 1)[0]
    assert again.account.id == a.id
    place(camp, again, "heard", "NORMAL_CLEARING", clock)
    assert entry_of(a).state == "done" and entry_of(a).outcome == "heard"


@pytest.mark.parametrize("outcome,cause,delay", [
    ("busy", "USER_BUSY", 900),
    ("no_answer", "NO_ANSWER", 1800),
    ("failed", "NETWORK_OUT_OF_ORDER", 900),
    ("failed", "SOMETHING_ELSE", 1234),  # not listed: default_delay
])
def test_retry_delay_per_cause(env, outcome, cause, delay):
    cfg, clock = env
    cfg = retry(cfg, default_delay=1234)
    a = acc()
    camp = start_campaign(cfg, DAY, clock)
    (c,) = take(camp, clock, cfg=cfg)
    place(camp, c, outcome, cause, clock, cfg=cfg)
    e = entry_of(a)
    assert (e.state, e.attempts, e.priority) == ("waiting", 1, 0)
    assert e.not_before == (OPEN + timedelta(seconds=delay)).replace(tzinfo=None)
    clock.advance(delay - 1)
    assert take(camp, clock, cfg=cfg) == []
    clock.advance(1)
    assert len(take(camp, clock, cfg=cfg)) == 1


def test_retry_past_the_window_waits_for_the_next_evening(env):
    cfg, clock = env
    a = acc()
    clock.current = datetime(2026, 11, 23, 18, 45, tzinfo=UTC)  # 20:45 local
    camp = start_campaign(cfg, DAY, clock)
    (c,) = take(camp, clock)
    place(camp, c, "no_answer", "NO_ANSWER", clock)  # +30 min would be 21:15 local
    assert entry_of(a).not_before == datetime(2026, 11, 24, 16, 0)


def test_congestion_and_trunk_errors_are_not_attempts_on_the_debtor(env):
    cfg, clock = env
    a = acc()
    camp = start_campaign(cfg, DAY, clock)
    (c,) = take(camp, clock)
    place(camp, c, "congestion", "NORMAL_CIRCUIT_CONGESTION", clock)
    e = entry_of(a)
    assert (e.state, e.attempts) == ("waiting", 0)
    assert e.not_before == (OPEN + timedelta(seconds=300)).replace(tzinfo=None)
    clock.advance(300)
    (c,) = take(camp, clock)
    place(camp, c, "trunk_error", "INVALID_GATEWAY", clock)
    e = entry_of(a)
    assert (e.state, e.attempts, e.priority) == ("waiting", 0, 0)
    assert len(take(camp, clock)) == 1  # immediately available again once the trunk is fixed


def test_rate_limited_call_goes_back_at_its_place_uncounted(env):
    """Refused by our own switch for our rate: same place, same number, no delay, no attempt on the debtor."""
    cfg, clock = env
    cfg = retry(cfg, max_attempts_per_day=1, max_attempts_per_campaign=1)
    a = acc(phones=2)
    b, c = acc(), acc()
    camp = start_campaign(cfg, DAY, clock)
    first = take(camp, clock, 1, cfg=cfg)[0]
    assert first.account.id == a.id
    before = entry_of(a)
    place(camp, first, "rate_limited", "DESTINATION_OUT_OF_ORDER", clock, cfg=cfg)
    e = entry_of(a)
    assert (e.state, e.attempts, e.priority, e.phone_index) == ("waiting", 0, before.priority, before.phone_index)
    assert e.not_before == before.not_before  # not pushed back by retry.delays
    again = take(camp, clock, 3, cfg=cfg)  # still first in line, on the same number, despite the daily cap of 1
    assert [x.account.id for x in again] == [a.id, b.id, c.id]
    assert again[0].e164 == first.e164


def test_unknown_outcome_is_requeued_at_the_front_and_counted(env):
    cfg, clock = env
    a, b = acc(), acc()
    camp = start_campaign(cfg, DAY, clock)
    (c,) = take(camp, clock, 1)
    record_result(c.entry, "unknown", "", clock)
    e = entry_of(a)
    assert (e.state, e.priority, e.attempts) == ("waiting", -1, 1)
    assert [x.account.id for x in take(camp, clock)] == [a.id, b.id]


def test_late_duplicate_result_changes_nothing(env):
    cfg, clock = env
    a = acc()
    camp = start_campaign(cfg, DAY, clock)
    (c,) = take(camp, clock)
    place(camp, c, "heard", "NORMAL_CLEARING", clock)
    record_result(c.entry, "unknown", "", clock)  # e.g. a reconciliation after the fact
    e = entry_of(a)
    assert (e.state, e.outcome, e.attempts) == ("done", "heard", 1)


# --- numbers ---------------------------------------------------------------------------------------------------------

def test_invalid_number_is_flagged_and_never_dialed_again(env):
    cfg, clock = env
    a = acc(phones=2)
    other = acc(phones=[Phone.get(Phone.account == a, Phone.position == 0).e164])  # same number, other account
    camp = start_campaign(cfg, DAY, clock)
    cands = take(camp, clock)
    (c,) = [x for x in cands if x.account.id == a.id] or cands
    first = c.e164
    place(camp, c, "invalid_number", "UNALLOCATED_NUMBER", clock)
    flagged = list(Phone.select().where(Phone.e164 == first))
    assert len(flagged) == 2 and all(not p.valid and p.invalid_reason == "UNALLOCATED_NUMBER" for p in flagged)
    assert entry_of(a).state == "waiting" and entry_of(a).phone_index == 1
    assert entry_of(other).state == "given_up" and entry_of(other).reason.startswith("no callable number")
    clock.advance(86400 * 2)  # whatever happens later, the flagged number is never returned
    dialed = [x.e164 for x in take(camp, clock)]
    assert first not in dialed and len(dialed) == 1


def test_numbers_are_tried_in_position_order_and_rotate(env):
    cfg, clock = env
    cfg = retry(cfg, max_attempts_per_day=10, max_attempts_per_campaign=10)
    a = acc(phones=3)
    order = [p.e164 for p in Phone.select().where(Phone.account == a).order_by(Phone.position)]
    camp = start_campaign(cfg, DAY, clock)
    seen = []
    for _ in range(4):
        (c,) = take(camp, clock, cfg=cfg)
        seen.append(c.e164)
        place(camp, c, "no_answer", "NO_ANSWER", clock, cfg=cfg)
        clock.current = queue.next_wakeup(camp)
    assert seen == [order[0], order[1], order[2], order[0]]


def test_invalid_first_number_is_skipped(env):
    cfg, clock = env
    a = acc(phones=2)
    Phone.update(valid=False, invalid_reason="bad format").where(Phone.account == a, Phone.position == 0).execute()
    camp = start_campaign(cfg, DAY, clock)
    (c,) = take(camp, clock)
    assert c.phone.position == 1


def test_never_retry_cause_gives_up_that_number(env):
    cfg, clock = env
    a = acc(phones=1)
    camp = start_campaign(cfg, DAY, clock)
    (c,) = take(camp, clock)
    place(camp, c, "rejected", "CALL_REJECTED", clock)
    p = Phone.get(Phone.account == a)
    assert p.flagged_at is not None and p.invalid_reason == "CALL_REJECTED"
    assert entry_of(a).state == "given_up"


def test_wrong_number_is_flagged_for_this_account_only(env):
    cfg, clock = env
    shared = new_number()
    a = acc(phones=[shared, new_number()])
    b = acc(phones=[new_number(), shared])
    camp = start_campaign(cfg, DAY, clock)
    QueueEntry.update(state="done").where(QueueEntry.account == b).execute()  # only a is called now
    (c,) = take(camp, clock)
    assert c.e164 == shared and c.accounts_sharing_number == []
    place(camp, c, "wrong_number", "NORMAL_CLEARING", clock)
    pa = Phone.get(Phone.account == a, Phone.e164 == shared)
    pb = Phone.get(Phone.account == b, Phone.e164 == shared)
    assert not pa.valid and "wrong number" in pa.invalid_reason
    assert pb.valid and pb.flagged_at is None
    assert entry_of(a).state == "waiting" and entry_of(a).phone_index == 1


# --- re-check just before dialing ---------------------------------------------------------------------------------

def test_paid_debtor_is_dropped_at_the_recheck(env):
    cfg, clock = env
    a, b = acc(), acc()
    camp = start_campaign(cfg, DAY, clock)
    factories.payment(a, "500.00", DAY)  # paid after the list was made
    assert [c.account.id for c in take(camp, clock)] == [b.id]
    e = entry_of(a)
    assert (e.state, e.outcome) == ("given_up", "not_eligible")
    assert e.reason


def test_do_not_call_and_said_paid_are_dropped(env):
    cfg, clock = env
    a, b, c = acc(), acc(), acc()
    camp = start_campaign(cfg, DAY, clock)
    Account.update(do_not_call=True).where(Account.id == a.id).execute()
    Account.update(claimed_paid_at=datetime(2026, 11, 23, 10)).where(Account.id == b.id).execute()
    assert [x.account.id for x in take(camp, clock)] == [c.id]
    assert entry_of(a).state == entry_of(b).state == "given_up"


def test_already_paid_marks_the_account(env):
    cfg, clock = env
    a = acc()
    camp = start_campaign(cfg, DAY, clock)
    (c,) = take(camp, clock)
    place(camp, c, "already_paid", "NORMAL_CLEARING", clock)
    assert Account.get_by_id(a.id).claimed_paid_at is not None
    assert entry_of(a).state == "done"


# --- caps -------------------------------------------------------------------------------------------------------------

def test_daily_attempt_cap_waits_for_the_next_local_day(env):
    cfg, clock = env
    cfg = retry(cfg, max_attempts_per_day=2, max_attempts_per_campaign=8)
    a = acc()
    camp = start_campaign(cfg, DAY, clock)
    for _ in range(2):
        (c,) = take(camp, clock, cfg=cfg)
        place(camp, c, "busy", "USER_BUSY", clock, cfg=cfg)
        clock.current = queue.next_wakeup(camp)
    e = entry_of(a)
    assert e.state == "waiting" and "for the day" in e.reason
    assert e.not_before == datetime(2026, 11, 24, 16, 0)  # Tuesday 18:00 local


def test_campaign_attempt_cap_gives_up(env):
    cfg, clock = env
    cfg = retry(cfg, max_attempts_per_day=4, max_attempts_per_campaign=2)
    a = acc()
    camp = start_campaign(cfg, DAY, clock)
    for _ in range(2):
        (c,) = take(camp, clock, cfg=cfg)
        place(camp, c, "early_hangup", "NORMAL_CLEARING", clock, cfg=cfg)
        clock.advance(cfg.retry.early_hangup_pause_seconds)
    e = entry_of(a)
    assert e.state == "given_up" and "campaign" in e.reason and e.attempts == 2
    assert take(camp, clock, cfg=cfg) == []


def test_collection_preset_allows_one_answered_contact_a_day(env):
    cfg, clock = env
    cfg = retry(cfg, contact_caps="collection")
    a, b = acc(), acc()
    camp = start_campaign(cfg, DAY, clock)
    (c,) = take(camp, clock, 1, cfg=cfg)
    place(camp, c, "early_hangup", "NORMAL_CLEARING", clock, cfg=cfg)  # answered: that is today's contact
    e = entry_of(a)
    assert e.priority == -1 and "contact cap for the day" in e.reason
    assert e.not_before == datetime(2026, 11, 24, 16, 0)
    (c,) = take(camp, clock, 1, cfg=cfg)
    place(camp, c, "no_answer", "NO_ANSWER", clock, cfg=cfg)  # not answered: no contact counted
    assert entry_of(b).not_before == (OPEN + timedelta(seconds=1800)).replace(tzinfo=None)


# --- shared numbers and claims ---------------------------------------------------------------------------------------

def test_shared_number_is_called_once_with_all_its_accounts(env):
    cfg, clock = env
    shared = new_number()
    a, b, c = acc(phones=[shared]), acc(phones=[shared]), acc(phones=[new_number(), shared])
    d = acc()
    camp = start_campaign(cfg, DAY, clock)
    cands = take(camp, clock)
    on_shared = [x for x in cands if x.e164 == shared]
    assert len(on_shared) == 1
    (call,) = on_shared
    assert call.account.id == a.id
    assert {x.account_id for x in call.accounts_sharing_number} == {b.id, c.id}
    assert {x.account.id for x in cands} == {a.id, d.id}
    assert all(x.state == "dialing" for x in call.entries)
    assert QueueEntry.select().where(QueueEntry.state == "dialing").count() == 4
    place(camp, call, "heard", "NORMAL_CLEARING", clock)
    assert {entry_of(x).state for x in (a, b, c)} == {"done"}
    assert take(camp, clock) == []
    assert Attempt.get(Attempt.e164 == shared).accounts == ",".join([a.number, b.number, c.number])


def test_busy_accounts_numbers_and_inflight_attempts_are_skipped(env):
    cfg, clock = env
    a, b, c, d = acc(), acc(), acc(), acc()
    camp = start_campaign(cfg, DAY, clock)
    num_b = Phone.get(Phone.account == b).e164
    factories.attempt(camp, c, OPEN, "", state="answered")  # another process is talking to c right now
    got = take(camp, clock, busy_accounts={a.id}, busy_numbers={num_b})
    assert [x.account.id for x in got] == [d.id]
    assert entry_of(a).state == entry_of(b).state == entry_of(c).state == "waiting"


def test_a_claimed_entry_is_not_returned_twice_and_release_gives_it_back(env):
    cfg, clock = env
    a = acc()
    camp = start_campaign(cfg, DAY, clock)
    (c,) = take(camp, clock)
    assert take(camp, clock) == []
    assert queue.release([c.entry], clock) == 1
    assert [x.account.id for x in take(camp, clock)] == [a.id]
    assert entry_of(a).attempts == 0


def test_orphaned_claims_are_released_on_restart(env):
    cfg, clock = env
    a, b, c = acc(), acc(), acc()
    camp = start_campaign(cfg, DAY, clock)
    got = {x.account.id: x for x in take(camp, clock, 3)}
    factories.attempt(camp, b, OPEN, "", state="originated", e164=got[b.id].e164)  # b still on the line
    # c's channel has ended, its outcome not written yet (the flow finishing): its claim is not an orphan
    factories.attempt(camp, c, OPEN, "", state="ended", e164=got[c.id].e164)
    clock.advance(queue.ORPHAN_SECONDS + 1)
    start_campaign(cfg, DAY, clock)  # a restarted dialer
    assert entry_of(a).state == "waiting" and entry_of(a).priority == -1
    assert entry_of(b).state == "dialing" and entry_of(c).state == "dialing"


def _claimer(url: str, base_dir: str, camp_id: int, cfg, start, out) -> None:
    from ivr.ledger.db import connect
    connect(url, base_dir)
    clock = ManualClock(OPEN)
    camp = Campaign.get_by_id(camp_id)
    got = []
    start.wait(timeout=30)  # both processes read the same head of the queue at once
    while True:
        cands = next_candidates(camp, clock, 1, cfg=cfg)
        if not cands:
            break
        got += [(x.id, x.account_id, c.e164) for c in cands for x in c.entries]
    out.put(got)


def test_two_processes_never_claim_the_same_account_or_number(env):
    cfg, clock = env
    shared = [new_number() for _ in range(10)]
    accounts = [acc() for _ in range(120)] + [acc(phones=[n]) for n in shared for _ in range(2)]
    camp = start_campaign(cfg, DAY, clock)
    ctx = multiprocessing.get_context("spawn")  # fork would copy the gevent hub and open sockets
    out, start = ctx.Queue(), ctx.Barrier(2)
    procs = [ctx.Process(target=_claimer, args=(cfg.database.url, str(cfg.base_dir), camp.id, cfg, start, out))
             for _ in range(2)]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    claimed = results[0] + results[1]
    ids = [x[0] for x in claimed]
    assert len(ids) == len(set(ids)) == len(accounts)  # every entry claimed exactly once
    owner: dict[str, set[int]] = {}
    for proc_no, res in enumerate(results):
        for _eid, _acc, num in res:
            owner.setdefault(num, set()).add(proc_no)
    assert all(len(v) == 1 for v in owner.values())  # a number went to one process only
    assert QueueEntry.select().where(QueueEntry.state == "dialing").count() == len(accounts)


# --- carry-over ------------------------------------------------------------------------------------------------------

def test_carry_over_to_the_next_evening(env):
    cfg, clock = env
    hung_up, heard, busy, paid = acc(), acc(), acc(), acc()
    camp = start_campaign(cfg, DAY, clock)
    cands = {c.account.id: c for c in take(camp, clock)}
    place(camp, cands[hung_up.id], "early_hangup", "NORMAL_CLEARING", clock)
    place(camp, cands[heard.id], "heard", "NORMAL_CLEARING", clock)
    place(camp, cands[busy.id], "busy", "USER_BUSY", clock)
    place(camp, cands[paid.id], "no_answer", "NO_ANSWER", clock)
    factories.payment(paid, "500.00", DAY + timedelta(days=1))

    clock.current = OPEN + timedelta(days=1)
    nxt = start_campaign(cfg, DAY + timedelta(days=1), clock)
    old = {e.account_id: e for e in QueueEntry.select().where(QueueEntry.campaign == camp)}
    assert (old[hung_up.id].state, old[hung_up.id].outcome) == ("given_up", "carried_over")
    assert (old[busy.id].state, old[busy.id].outcome) == ("given_up", "carried_over")
    assert (old[paid.id].state, old[paid.id].outcome) == ("given_up", "not_eligible")
    assert old[heard.id].state == "done"
    new = {e.account_id: e for e in QueueEntry.select().where(QueueEntry.campaign == nxt)}
    assert set(new) == {hung_up.id, heard.id, busy.id}  # heard yesterday, still owes: called again today
    assert (new[hung_up.id].priority, new[hung_up.id].attempts) == (-1, 0)
    assert new[busy.id].priority == 0
    assert nxt.eligible_count == 3
    assert take(nxt, clock)[0].account.id == hung_up.id  # the front stays the front


def test_next_wakeup_is_the_earliest_due_entry_across_priorities(env):
    cfg, clock = env
    a, b, c = acc(), acc(), acc()
    camp = start_campaign(cfg, DAY, clock)
    QueueEntry.update(priority=-1, not_before=datetime(2026, 11, 23, 17, 30)).where(QueueEntry.account == a).execute()
    QueueEntry.update(not_before=datetime(2026, 11, 23, 17, 10)).where(QueueEntry.account == b).execute()
    QueueEntry.update(priority=3, not_before=datetime(2026, 11, 23, 17, 20)).where(QueueEntry.account == c).execute()
    assert queue.next_wakeup(camp) == datetime(2026, 11, 23, 17, 10, tzinfo=UTC)
    QueueEntry.update(state="done").execute()
    assert queue.next_wakeup(camp) is None
    assert queue.counts(camp) == {"done": 3}


def test_carry_over_skipping_an_evening_closes_every_earlier_copy(env):
    cfg, clock = env
    a = acc()
    first = factories.campaign(DAY - timedelta(days=2), status="done")
    second = factories.campaign(DAY - timedelta(days=1), status="done")
    QueueEntry.create(campaign=first, account=a, state="waiting", priority=0, phone_index=0)
    QueueEntry.create(campaign=second, account=a, state="waiting", priority=-1, phone_index=0)
    camp = start_campaign(cfg, DAY, clock)
    olds = list(QueueEntry.select().where(QueueEntry.campaign.in_([first, second])))
    assert [(e.state, e.outcome) for e in olds] == [("given_up", "carried_over")] * 2
    (new,) = QueueEntry.select().where(QueueEntry.campaign == camp)
    assert new.priority == -1  # the latest evening's copy wins


# --- answering machines (callflow.machine_detection) ------------------------------------------------------------------

def test_machine_is_retried_like_no_answer(env):
    cfg, clock = env
    cfg = retry(cfg, default_delay=1234)  # the machine's hangup cause is NORMAL_CLEARING: not its delay
    a = acc()
    camp = start_campaign(cfg, DAY, clock)
    (c,) = take(camp, clock, cfg=cfg)
    place(camp, c, "machine", "NORMAL_CLEARING", clock, cfg=cfg)
    e = entry_of(a)
    assert (e.state, e.attempts, e.priority, e.outcome) == ("waiting", 1, 0, "machine")
    assert e.not_before == (OPEN + timedelta(seconds=cfg.retry.delays["NO_ANSWER"])).replace(tzinfo=None)


def test_machine_is_no_answered_contact(env):
    cfg, clock = env
    cfg = retry(cfg, contact_caps="collection")  # one answered contact a day
    a = acc()
    camp = start_campaign(cfg, DAY, clock)
    (c,) = take(camp, clock, 1, cfg=cfg)
    att = factories.attempt(camp, c.account, clock.now(), "machine", e164=c.e164, hangup_cause="NORMAL_CLEARING",
                            answered=True, accounts=",".join(c.account_numbers))
    queue.record_candidate_result(c, "machine", "NORMAL_CLEARING", clock, att, cfg=cfg)
    e = entry_of(a)
    assert "contact cap" not in e.reason  # a machine picked up, not the debtor: the day's contact is still open
    assert e.not_before == (OPEN + timedelta(seconds=1800)).replace(tzinfo=None)
