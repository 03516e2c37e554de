"""The shared clock: scaled time runs faster by its factor, manual time moves only when told."""

from datetime import UTC, datetime, timedelta

import pytest

from ivr.clock import ManualClock, ScaledClock


def test_scaled_clock_agrees_across_instances_given_same_anchor():
    start = datetime(2026, 11, 23, 15, 55, tzinfo=UTC)
    a = ScaledClock(start=start, scale=60.0, real_start=1_000.0)
    b = ScaledClock(start=start, scale=60.0, real_start=1_000.0)
    assert abs((a.now() - b.now()).total_seconds()) < 60.0 * 0.05


def test_scaled_clock_runs_scale_times_faster():
    clock = ScaledClock(start=datetime(2026, 11, 23, tzinfo=UTC), scale=200.0)
    t0 = clock.monotonic()
    clock.sleep(20.0)  # 0.1 real seconds
    elapsed = clock.monotonic() - t0
    assert elapsed >= 19.0
    assert clock.real_seconds(20.0) == pytest.approx(0.1)


def test_scaled_clock_rejects_naive_start_and_bad_scale():
    with pytest.raises(ValueError):
        ScaledClock(start=datetime(2026, 11, 23), scale=2)
    with pytest.raises(ValueError):
        ScaledClock(start=datetime(2026, 11, 23, tzinfo=UTC), scale=0)


def test_manual_clock_moves_on_sleep_and_advance_only():
    clock = ManualClock()
    t = clock.now()
    assert clock.now() == t
    clock.sleep(90)
    clock.advance(30)
    assert clock.now() - t == timedelta(minutes=2)
    assert clock.monotonic() == 120
