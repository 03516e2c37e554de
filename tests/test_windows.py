"""Calling windows: weekday / weekend / holiday / quiet dates in the debtor's own zone, across DST changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.campaign.windows import CallWindows, first_instant_at
from ivr.config import parse_config
from ivr.errors import IvrError

KYIV = "Europe/Kyiv"


def U(*a) -> datetime:
    return datetime(*a, tzinfo=UTC)


def windows(**over) -> CallWindows:
    locale = over.pop("locale", {})
    return CallWindows(parse_config({"windows": over, "locale": locale}, env={}))


def test_weekday_window_in_kyiv_winter_time():
    w = windows()
    # Monday 2026-11-23, EET (+2): 18:00-21:00 local = 16:00-19:00 UTC
    assert not w.is_open(KYIV, U(2026, 11, 23, 15, 59, 59))
    assert w.is_open(KYIV, U(2026, 11, 23, 16, 0))
    assert w.is_open(KYIV, U(2026, 11, 23, 18, 59, 59))
    assert not w.is_open(KYIV, U(2026, 11, 23, 19, 0))  # the end is not a start
    assert w.window_end(KYIV, U(2026, 11, 23, 17, 0)) == U(2026, 11, 23, 19, 0)
    assert w.window_end(KYIV, U(2026, 11, 23, 20, 0)) is None


def test_weekend_window():
    w = windows()
    # Saturday 2026-11-28: 09:00-20:00 local = 07:00-18:00 UTC
    assert w.day_kind(date(2026, 11, 28)) == "weekend"
    assert w.is_open(KYIV, U(2026, 11, 28, 7, 0))
    assert not w.is_open(KYIV, U(2026, 11, 28, 6, 59))
    assert w.is_open(KYIV, U(2026, 11, 28, 17, 30))  # 19:30 local: closed on a weekday, open on Saturday
    assert not w.is_open(KYIV, U(2026, 11, 28, 18, 0))


def test_holiday_takes_precedence_over_weekday():
    # Bulgaria, Tuesday 2026-03-03 is Liberation Day: holiday windows, not weekday ones
    w = windows(holiday=["10:00-12:00"], locale={"country": "BG", "timezone": "Europe/Sofia"})
    assert w.day_kind(date(2026, 3, 3)) == "holiday"
    assert "Liberation" in w.holiday_name(date(2026, 3, 3))
    sofia = "Europe/Sofia"
    assert w.is_open(sofia, U(2026, 3, 3, 8, 30))  # 10:30 local
    assert not w.is_open(sofia, U(2026, 3, 3, 16, 30))  # 18:30 local: the weekday window does not apply
    assert w.is_open(sofia, U(2026, 3, 4, 16, 30))  # the next day is an ordinary Wednesday


def test_holiday_with_no_windows_means_no_calls():
    w = windows(holiday=[], locale={"country": "BG", "timezone": "Europe/Sofia"})
    assert w.spans("Europe/Sofia", date(2026, 3, 3)) == ()
    # next_open skips the whole holiday to the Wednesday evening (18:00 EET = 16:00 UTC)
    assert w.next_open("Europe/Sofia", U(2026, 3, 3, 6, 0)) == U(2026, 3, 4, 16, 0)


def test_quiet_date_has_no_calls_and_next_open_skips_it():
    w = windows(quiet_dates=["2026-11-24"])
    assert w.day_kind(date(2026, 11, 24)) == "quiet"
    assert not w.is_open(KYIV, U(2026, 11, 24, 16, 30))
    assert w.next_open(KYIV, U(2026, 11, 24, 16, 30)) == U(2026, 11, 25, 16, 0)


def test_account_in_another_time_zone():
    w = windows()
    at = U(2026, 11, 23, 9, 30)  # 18:30 in Tokyo, 11:30 in Kyiv
    assert w.is_open("Asia/Tokyo", at)
    assert not w.is_open(KYIV, at)
    assert w.next_open(KYIV, at) == U(2026, 11, 23, 16, 0)
    assert w.local_day("Asia/Tokyo", U(2026, 11, 23, 15, 30)) == date(2026, 11, 24)
    assert w.local_day(KYIV, U(2026, 11, 23, 15, 30)) == date(2026, 11, 23)
    # '' means the default zone (locale.timezone)
    assert w.is_open("", U(2026, 11, 23, 16, 30))


def test_early_start_waits_for_the_window():
    w = windows()
    # Monday 10:00 local: the next start is the same evening; open now -> now itself
    assert w.next_open(KYIV, U(2026, 11, 23, 8, 0)) == U(2026, 11, 23, 16, 0)
    assert w.next_open(KYIV, U(2026, 11, 23, 16, 5)) == U(2026, 11, 23, 16, 5)
    # Friday after the window -> Saturday 09:00 local
    assert w.next_open(KYIV, U(2026, 11, 27, 19, 30)) == U(2026, 11, 28, 7, 0)
    # next local day's window (used when a daily cap is hit) even when a window is open now
    assert w.next_day_open(KYIV, U(2026, 11, 23, 16, 5)) == U(2026, 11, 24, 16, 0)


def test_same_local_time_moves_in_utc_across_dst():
    w = windows()
    # Kyiv: EET (+2) until 2026-03-29, EEST (+3) after; back to EET on 2026-10-25.
    assert w.spans(KYIV, date(2026, 3, 28))[0].start == U(2026, 3, 28, 7, 0)
    assert w.spans(KYIV, date(2026, 3, 29))[0].start == U(2026, 3, 29, 6, 0)
    assert w.spans(KYIV, date(2026, 10, 24))[0].start == U(2026, 10, 24, 6, 0)
    assert w.spans(KYIV, date(2026, 10, 25))[0].start == U(2026, 10, 25, 7, 0)
    # a server thinking in UTC would be an hour off in summer: 18:00 local on a summer Monday is 15:00 UTC
    assert w.is_open(KYIV, U(2026, 6, 1, 15, 0))
    assert not w.is_open(KYIV, U(2026, 6, 1, 18, 30))


def test_spring_forward_window_containing_the_missing_hour():
    w = windows(weekend=["02:30-04:30"])
    # 2026-03-29 03:00 local does not exist (clocks jump 03:00 EET -> 04:00 EEST at 01:00 UTC)
    (span,) = w.spans(KYIV, date(2026, 3, 29))
    assert span.start == U(2026, 3, 29, 0, 30)  # 02:30 EET
    assert span.end == U(2026, 3, 29, 1, 30)  # 04:30 EEST: the window lasts one hour, not two
    assert w.is_open(KYIV, U(2026, 3, 29, 0, 59, 59))  # 02:59:59 local
    assert w.is_open(KYIV, U(2026, 3, 29, 1, 0))  # 04:00 local, straight after the gap
    assert not w.is_open(KYIV, U(2026, 3, 29, 1, 30))


def test_spring_forward_window_starting_in_the_gap():
    w = windows(weekend=["03:30-05:00"])
    (span,) = w.spans(KYIV, date(2026, 3, 29))
    assert span.start == U(2026, 3, 29, 1, 0)  # 03:30 does not exist: the window opens at the jump (04:00)
    assert span.end == U(2026, 3, 29, 2, 0)  # 05:00 EEST
    assert not w.is_open(KYIV, U(2026, 3, 29, 0, 59))  # 02:59 local is before the window
    z = ZoneInfo(KYIV)
    assert first_instant_at(date(2026, 3, 29), datetime(2026, 3, 29, 3, 30).time(), z) == U(2026, 3, 29, 1, 0)


def test_fall_back_window_containing_the_repeated_hour():
    w = windows(weekend=["02:30-04:30"])
    # 2026-10-25: 04:00 EEST -> 03:00 EET at 01:00 UTC; 03:00-04:00 local happens twice
    (span,) = w.spans(KYIV, date(2026, 10, 25))
    assert span.start == U(2026, 10, 24, 23, 30)  # 02:30 EEST
    assert span.end == U(2026, 10, 25, 2, 30)  # 04:30 EET: three hours of real time
    assert span.end - span.start == timedelta(hours=3)
    # both passes through 03:15 local are inside the window
    assert w.is_open(KYIV, U(2026, 10, 25, 0, 15))
    assert w.is_open(KYIV, U(2026, 10, 25, 1, 15))
    assert not w.is_open(KYIV, U(2026, 10, 25, 2, 30))


def test_fall_back_window_ending_in_the_repeated_hour_ends_at_its_first_pass():
    w = windows(weekend=["01:00-03:30"])
    (span,) = w.spans(KYIV, date(2026, 10, 25))
    assert span.end == U(2026, 10, 25, 0, 30)  # the first 03:30 (EEST); no call starts at a later 03:xx
    assert not w.is_open(KYIV, U(2026, 10, 25, 1, 15))  # second pass of 03:15 local


def test_next_open_across_the_dst_weekend():
    w = windows()
    # Friday 2026-03-27 after the window -> Saturday 09:00 EET (07:00 UTC)
    assert w.next_open(KYIV, U(2026, 3, 27, 20, 0)) == U(2026, 3, 28, 7, 0)
    # Saturday after the window -> Sunday 09:00 EEST (06:00 UTC)
    assert w.next_open(KYIV, U(2026, 3, 28, 19, 0)) == U(2026, 3, 29, 6, 0)
    # Sunday 2026-10-25 after the window -> Monday 18:00 EET (16:00 UTC)
    assert w.next_open(KYIV, U(2026, 10, 25, 18, 30)) == U(2026, 10, 26, 16, 0)


def test_window_to_midnight():
    w = windows(weekday=["22:00-24:00"])
    (span,) = w.spans(KYIV, date(2026, 11, 23))
    assert span.end == U(2026, 11, 23, 22, 0)  # next local midnight
    assert w.is_open(KYIV, U(2026, 11, 23, 21, 59))


def test_no_window_at_all_is_a_clear_error():
    w = windows(weekday=[], weekend=[], holiday=[])
    with pytest.raises(IvrError, match="no calling window"):
        w.next_open(KYIV, U(2026, 11, 23, 16, 0))


def test_unknown_zone_is_a_clear_error():
    with pytest.raises(IvrError, match="Mars/Olympus"):
        windows().is_open("Mars/Olympus", U(2026, 11, 23, 16, 0))


ZONES = ["Europe/Kyiv", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu", "America/Santiago"]


@settings(max_examples=300, deadline=None)
@given(zone_name=st.sampled_from(ZONES),
       minute=st.integers(min_value=0, max_value=366 * 24 * 60),
       windows_spec=st.sampled_from([["18:00-21:00"], ["01:30-03:30"], ["00:00-02:30", "02:45-04:00"],
                                     ["02:00-24:00"]]))
def test_property_no_call_outside_local_window_and_next_open_is_open(zone_name, minute, windows_spec):
    """For any instant of 2026 in zones with odd DST rules (30-min shifts, southern hemisphere, +05:45):
    open => the local wall time lies in one of that date's windows; next_open is open and not earlier."""
    w = windows(weekday=windows_spec, weekend=windows_spec, holiday=windows_spec)
    at = U(2026, 1, 1) + timedelta(minutes=minute, seconds=17)
    local = at.astimezone(ZoneInfo(zone_name))
    wall = local.time()
    in_window = any(a <= wall and (b is None or wall < b) for a, b in w.windows_of(local.date()))
    if w.is_open(zone_name, at):
        assert in_window
    nxt = w.next_open(zone_name, at)
    assert nxt >= at and w.is_open(zone_name, nxt)
    if nxt > at:  # nothing was open in between: a minute earlier is closed (or before `at`)
        before = nxt - timedelta(minutes=1)
        assert before < at or not w.is_open(zone_name, before)
