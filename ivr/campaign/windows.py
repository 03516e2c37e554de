"""When calls may start: the calling windows of one local date, in a debtor's own time zone.

A date is a quiet date (no calls), else a public holiday (the `holidays` package for locale.country/subdivision;
holidays win over weekday/weekend), else a weekday (Mon-Fri) or a weekend day; each kind has its list of
'HH:MM-HH:MM' windows. Windows are wall-clock times of the debtor's LOCAL date, converted to UTC per date with
zoneinfo, so daylight-saving changes are exact: on a spring-forward night a window containing the missing hour is
an hour shorter, on a fall-back night an hour longer.

A wall time that does not exist (inside the spring-forward gap) or exists twice (fall-back) is taken as "the first
instant at which the local clock shows that time or later": a window never starts or goes on at a wall time
outside its bounds. All datetimes in and out are aware UTC.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

from ivr.config import Config
from ivr.errors import IvrError

SEARCH_DAYS = 400  # how far next_open looks before deciding no window will ever open
_SPAN_CACHE_MAX = 20_000


@dataclass(frozen=True)
class Span:
    """One calling window of one local date, as UTC instants [start, end)."""

    start: datetime
    end: datetime


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    """The ZoneInfo for an IANA name; a clear error for an unknown one."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise IvrError(f"unknown time zone {name!r}: use an IANA name such as Europe/Kyiv") from None


def as_zone(tz: str | tzinfo) -> tzinfo:
    return zone(tz) if isinstance(tz, str) else tz


def aware_utc(at: datetime) -> datetime:
    """An aware UTC datetime; naive input is taken as UTC (the ledger's form)."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def first_instant_at(day: date, wall: time | None, tz: tzinfo) -> datetime:
    """The first UTC instant whose local wall time on `day` is `wall` or later (`None` = 24:00, next midnight).

    Ordinary times map one to one. A repeated time (fall-back) gives its first occurrence. A time in a
    spring-forward gap gives the transition instant (the first moment after the gap).
    """
    if wall is None:
        day, wall = day + timedelta(days=1), time(0, 0)
    naive = datetime.combine(day, wall)
    cands = []
    for fold in (0, 1):
        local = naive.replace(tzinfo=tz, fold=fold)
        utc = local.astimezone(UTC)
        if utc.astimezone(tz).replace(tzinfo=None) == naive:
            cands.append(utc)
    if cands:
        return min(cands)
    # In a gap: the local clock jumps over `naive`. Find the transition by bisection on whole seconds between
    # the two readings (a gap is at most a few hours, so about fifteen steps).
    a = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
    b = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
    lo, hi = min(a, b), max(a, b)
    while (hi - lo) > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        mid = mid.replace(microsecond=0)
        if mid.astimezone(tz).replace(tzinfo=None) >= naive:
            hi = mid
        else:
            lo = mid
    return hi


def _parse_windows(values: Iterable[str], key: str) -> tuple[tuple[time, time | None], ...]:
    out = []
    for v in values:
        try:
            a, b = v.split("-")
            start = time(int(a[:2]), int(a[3:5]))
            end = None if b == "24:00" else time(int(b[:2]), int(b[3:5]))
        except (ValueError, IndexError):
            raise IvrError(f"{key}: {v!r} is not a window 'HH:MM-HH:MM'") from None
        out.append((start, end))
    return tuple(sorted(out, key=lambda w: w[0]))


class CallWindows:
    """The calling windows of config, for any time zone and date."""

    def __init__(self, cfg: Config) -> None:
        w = cfg.windows
        self.weekday = _parse_windows(w.weekday, "windows.weekday")
        self.weekend = _parse_windows(w.weekend, "windows.weekend")
        self.holiday = _parse_windows(w.holiday, "windows.holiday")
        self.quiet = {date.fromisoformat(d) for d in w.quiet_dates}
        self.default_tz = cfg.locale.timezone
        try:
            self._holidays = holidays.country_holidays(cfg.locale.country, subdiv=cfg.locale.subdivision or None)
        except NotImplementedError:
            raise IvrError(f"locale.country/subdivision: the holidays package does not know "
                           f"{cfg.locale.country!r}/{cfg.locale.subdivision!r}") from None
        self._spans: dict[tuple[str, date], tuple[Span, ...]] = {}

    # --- what kind of day -------------------------------------------------------------------------------------

    def day_kind(self, day: date) -> str:
        """quiet | holiday | weekend | weekday."""
        if day in self.quiet:
            return "quiet"
        if day in self._holidays:
            return "holiday"
        return "weekend" if day.weekday() >= 5 else "weekday"

    def holiday_name(self, day: date) -> str:
        return str(self._holidays.get(day) or "")

    def windows_of(self, day: date) -> tuple[tuple[time, time | None], ...]:
        kind = self.day_kind(day)
        return () if kind == "quiet" else getattr(self, kind)

    def spans(self, tz: str | tzinfo, day: date) -> tuple[Span, ...]:
        """The windows of the local date `day` in `tz`, as UTC spans (cached)."""
        z = as_zone(tz or self.default_tz)
        key = (str(z), day)
        got = self._spans.get(key)
        if got is None:
            got = tuple(s for s in (Span(first_instant_at(day, a, z), first_instant_at(day, b, z))
                                    for a, b in self.windows_of(day)) if s.end > s.start)
            if len(self._spans) >= _SPAN_CACHE_MAX:
                self._spans.clear()
            self._spans[key] = got
        return got

    # --- the questions the queue and the dialer ask -----------------------------------------------------------

    def local_day(self, tz: str | tzinfo, at_utc: datetime) -> date:
        """The debtor's local calendar date at `at_utc`."""
        return aware_utc(at_utc).astimezone(as_zone(tz or self.default_tz)).date()

    def _span_at(self, tz: str | tzinfo, at: datetime) -> Span | None:
        d = self.local_day(tz, at)
        # A window ends by the next local midnight, so only today's (and, to be safe, yesterday's) can hold `at`.
        for day in (d, d - timedelta(days=1)):
            for s in self.spans(tz, day):
                if s.start <= at < s.end:
                    return s
        return None

    def is_open(self, tz: str | tzinfo, at_utc: datetime) -> bool:
        """True when a call may start now in this time zone."""
        return self._span_at(tz, aware_utc(at_utc)) is not None

    def window_end(self, tz: str | tzinfo, at_utc: datetime) -> datetime | None:
        """The end (aware UTC) of the window open at `at_utc`, or None when none is open."""
        s = self._span_at(tz, aware_utc(at_utc))
        return s.end if s else None

    def next_open(self, tz: str | tzinfo, at_utc: datetime) -> datetime:
        """`at_utc` itself when a window is open, else the start of the next window (possibly days later).

        Raises IvrError when no window opens within SEARCH_DAYS (e.g. every window list is empty).
        """
        at = aware_utc(at_utc)
        if self._span_at(tz, at) is not None:
            return at
        d = self.local_day(tz, at)
        for i in range(SEARCH_DAYS):
            for s in self.spans(tz, d + timedelta(days=i)):
                if s.start >= at:
                    return s.start
        raise IvrError(f"no calling window opens within {SEARCH_DAYS} days: check windows.weekday, "
                       "windows.weekend, windows.holiday and windows.quiet_dates")

    def next_day_open(self, tz: str | tzinfo, at_utc: datetime) -> datetime:
        """The first window start on a LATER local date than the one at `at_utc` (a daily cap was hit)."""
        z = as_zone(tz or self.default_tz)
        d = self.local_day(z, at_utc)
        return self.next_open(z, first_instant_at(d + timedelta(days=1), time(0, 0), z))
