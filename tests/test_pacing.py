"""Pacing: the shared channel cap, the calls-per-second bucket, live Control changes, congestion back-off."""

from __future__ import annotations

import random
import uuid

import factories
import pytest

from ivr.clock import ManualClock
from ivr.dialer.pacing import Pacer, claim_slots, count_in_flight, read_control
from ivr.ledger.models import Account, Attempt


def _pacer(cfg, clock, **over):
    pc = cfg.pacing.__class__(**{**cfg.pacing.__dict__, **over})
    return Pacer(pc, clock)


def _rows(account, n):
    return [{"uuid": str(uuid.uuid4()), "account": account.id, "e164": f"+38050{i:07d}", "node": "t"}
            for i in range(n)]


def _set(key, value):
    factories.set_control(key, value)


@pytest.fixture
def account(db):
    return Account.create(number="A1", name="N")


def test_bucket_gives_cps_calls_per_second(cfg, db):
    clock = ManualClock()
    p = _pacer(cfg, clock, cps=5.0, channels=1000)
    started = 0
    for _ in range(100):  # 10 s in steps of 0.1 s
        n = p.allowance(0)
        p.spend(n)
        started += n
        clock.advance(0.1)
    assert 45 <= started <= 55
    assert p.allowance(1000) == 0  # cap reached: no token is enough


def test_allowance_never_exceeds_free_channels(cfg, db):
    clock = ManualClock()
    p = _pacer(cfg, clock, cps=100.0, channels=10)
    clock.advance(5)
    assert p.allowance(7) == 3
    assert p.allowance(10) == 0
    assert p.allowance(12) == 0


def test_claim_slots_enforces_cap_in_database(cfg, db, account):
    got = claim_slots(3, _rows(account, 5))
    assert len(got) == 3 and count_in_flight() == 3
    assert all(a.state == "created" for a in got)
    assert claim_slots(3, _rows(account, 2)) == []
    # a terminal event frees a slot; only then can another row be written
    Attempt.update(state="ended").where(Attempt.id == got[0].id).execute()
    assert len(claim_slots(3, _rows(account, 2))) == 1
    assert count_in_flight() == 3


def test_cap_holds_under_random_event_order(cfg, db, account):
    """Random interleaving of claims and terminal events never lets the in-flight count pass the cap."""
    rnd = random.Random(7)
    cap = 4
    live: list[int] = []
    for _ in range(300):
        if rnd.random() < 0.55:
            for a in claim_slots(cap, _rows(account, rnd.randint(1, 3))):
                live.append(a.id)
        elif live:
            aid = live.pop(rnd.randrange(len(live)))
            # duplicated / out-of-order terminal events are harmless: the row leaves the in-flight states once
            for _ in range(rnd.randint(1, 2)):
                Attempt.update(state="ended").where(Attempt.id == aid).execute()
        assert count_in_flight() <= cap
        assert count_in_flight() == len(live)


def test_control_changes_take_effect_at_next_poll(cfg, db):
    clock = ManualClock()
    p = _pacer(cfg, clock, cps=2.0, channels=5)
    assert p.allowance(0) >= 1 and p.channels == 5
    _set("channels", "50")
    _set("cps", "20")
    clock.advance(0.5)
    p.allowance(0)
    assert p.channels == 5  # not re-read within the same second
    clock.advance(0.6)
    p.allowance(0)
    assert (p.channels, p.cps) == (50, 20.0)
    clock.advance(1.0)
    assert p.allowance(0) == 5  # the new rate's burst: a quarter second of 20/s
    started = 0
    for _ in range(50):  # 5 s at the new rate
        n = p.allowance(0)
        p.spend(n)
        started += n
        clock.advance(0.1)
    assert 95 <= started <= 105


def test_bad_control_values_keep_defaults_and_say_why(cfg, db):
    _set("channels", "lots")
    _set("cps", "-3")
    _set("command", "explode")
    v = read_control(cfg.pacing)
    assert (v.channels, v.cps, v.command) == (cfg.pacing.channels, cfg.pacing.cps, "")
    assert any("channels='lots'" in p for p in v.problems)
    assert any("cps='-3'" in p for p in v.problems)
    assert any("command='explode'" in p for p in v.problems)


def test_command_is_read(cfg, db):
    _set("command", "Pause")
    clock = ManualClock()
    p = _pacer(cfg, clock)
    p.poll(force=True)
    assert p.command == "pause" and p.command_at is not None


def test_congestion_slows_down_then_recovers_step_by_step(cfg, db):
    clock = ManualClock()
    p = _pacer(cfg, clock, cps=10.0, congestion_threshold=3, congestion_window_seconds=10.0,
               slowdown_factor=0.5, recovery_seconds=30.0)
    p.note_cause("USER_BUSY")
    p.note_cause("NORMAL_CLEARING")
    assert p.rate == 10.0
    for _ in range(2):
        p.note_cause("NORMAL_CIRCUIT_CONGESTION")
        clock.advance(1)
    assert p.rate == 10.0  # below the threshold
    p.note_cause("SWITCH_CONGESTION")
    assert p.rate == 5.0
    for _ in range(3):
        p.note_cause("NORMAL_TEMPORARY_FAILURE")
    assert p.rate == 2.5
    clock.advance(29)
    p.tokens()
    assert p.rate == 2.5
    clock.advance(2)
    p.tokens()
    assert p.rate == 5.0  # one step back up, not all the way
    clock.advance(30)
    p.tokens()
    assert p.rate == 10.0
    clock.advance(300)
    p.tokens()
    assert p.rate == 10.0  # never above the configured rate


def test_congestion_outside_window_does_not_count(cfg, db):
    clock = ManualClock()
    p = _pacer(cfg, clock, cps=10.0, congestion_threshold=3, congestion_window_seconds=5.0)
    for _ in range(6):
        p.note_cause("SWITCH_CONGESTION")
        clock.advance(3)
    assert p.rate == 10.0


def test_slowed_rate_limits_tokens(cfg, db):
    clock = ManualClock()
    p = _pacer(cfg, clock, cps=10.0, channels=1000, congestion_threshold=1, slowdown_factor=0.5,
               recovery_seconds=1000)
    p.note_cause("SWITCH_CONGESTION")
    started = 0
    for _ in range(100):
        n = p.allowance(0)
        p.spend(n)
        started += n
        clock.advance(0.1)
    assert 45 <= started <= 55  # 5/s, not 10/s


def test_live_nodes_share_the_trunks_rate(cfg, db):
    from datetime import timedelta

    from ivr.ledger.models import DialerNode, utcnow

    clock = ManualClock()
    p = _pacer(cfg, clock, cps=30.0)
    p.poll(force=True)
    assert p.rate == 30.0  # alone (no heartbeat yet counts as one node)
    for name in ("box-a", "box-b", "box-c"):
        DialerNode.create(name=name, started_at=utcnow(), heartbeat_at=utcnow())
    DialerNode.create(name="dead", started_at=utcnow(), heartbeat_at=utcnow() - timedelta(minutes=5))
    p.poll(force=True)
    assert p.share == 3 and p.rate == pytest.approx(10.0)  # the dead node's share is not kept
