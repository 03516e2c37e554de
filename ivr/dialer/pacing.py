"""Pacing: how many new calls may start now, for the whole trunk.

Two limits, both live from the Control table (keys 'channels' and 'cps'; defaults from cfg.pacing), re-read at
most once a (real) second and applied at the next claim:

- a hard cap on concurrent channels, SHARED by every dialer process through the database. A slot is an Attempt
  row in state created/originated/answered. Rows are inserted only by `claim_slots`, inside one write
  transaction that counts those rows first (SQLite `BEGIN IMMEDIATE`, PostgreSQL an advisory transaction lock),
  so two processes can never both take the last slot. A slot is freed only when its row leaves those states,
  which happens on a terminal event (CHANNEL_HANGUP_COMPLETE, BACKGROUND_JOB -ERR) or by reconciliation. A late,
  lost or out-of-order event can make the count too high for a while, never too low: the cap cannot be exceeded.
- a token bucket of new calls per second (burst of at most a quarter second's worth), the trunk's rate divided by
  the number of live dialer nodes (fresh heartbeats; each node drives its own FreeSWITCH box), multiplied by a congestion
  factor: `congestion_threshold` congestion causes within `congestion_window_seconds` multiply the rate by
  `slowdown_factor`; after `recovery_seconds` without congestion it steps back up one factor at a time.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import peewee as pw

from ivr.clock import Clock
from ivr.config import PacingConfig
from ivr.ledger.models import ATTEMPT_IN_FLIGHT, Attempt, Control, DialerNode, database, utcnow

log = logging.getLogger("ivr.dialer.pacing")

COMMANDS = ("run", "resume", "pause", "stop")
BURST_SECONDS = 0.25
MIN_FACTOR = 0.01  # the congestion back-off never stops dialing completely
INSERT_CHUNK = 500  # rows per INSERT: SQLite allows 32,766 bound values per statement
_PG_LOCK_KEY = 0x1D1A1E2  # advisory lock id guarding the shared channel cap on PostgreSQL


@dataclass
class ControlValues:
    """What the Control table says now (bad values are reported and replaced by the defaults)."""

    channels: int
    cps: float
    command: str = ""
    command_at: datetime | None = None
    problems: list[str] = field(default_factory=list)


def read_control(defaults: PacingConfig) -> ControlValues:
    """Read channels, cps and command from the Control table in one query."""
    rows = {r.key: r for r in Control.select()}
    out = ControlValues(defaults.channels, defaults.cps)
    if (r := rows.get("channels")) is not None:
        try:
            v = int(r.value)
            if not 1 <= v <= 10000:
                raise ValueError
            out.channels = v
        except ValueError:
            out.problems.append(f"control channels={r.value!r} is not a whole number 1..10000; using {out.channels}")
    if (r := rows.get("cps")) is not None:
        try:
            f = float(r.value)
            if not 0.1 <= f <= 1000 or math.isnan(f):
                raise ValueError
            out.cps = f
        except ValueError:
            out.problems.append(f"control cps={r.value!r} is not a number 0.1..1000; using {out.cps}")
    if (r := rows.get("command")) is not None:
        cmd = r.value.strip().lower()
        if cmd in COMMANDS:
            out.command, out.command_at = cmd, r.updated_at
        else:
            out.problems.append(f"control command={r.value!r} is not one of {', '.join(COMMANDS)}; ignored")
    return out


def live_nodes() -> int:
    """Dialer nodes whose heartbeat is fresh (they share the trunk's calls-per-second rate)."""
    from ivr.dialer.node import HEARTBEAT_REAL_SECONDS

    since = utcnow() - timedelta(seconds=HEARTBEAT_REAL_SECONDS * 3)
    return DialerNode.select().where(DialerNode.heartbeat_at >= since).count()


def count_in_flight() -> int:
    """Attempt rows holding a channel slot, across every dialer process (uses the index on state)."""
    from ivr.ledger import prebuilt

    return prebuilt.execute("pacing.count_in_flight", lambda: Attempt.select(pw.fn.COUNT(Attempt.id)).where(
        Attempt.state.in_(ATTEMPT_IN_FLIGHT)), ATTEMPT_IN_FLIGHT).fetchone()[0]


@contextmanager
def slot_transaction() -> Iterator[None]:
    """A write transaction that serializes slot claims between processes."""
    db = database.obj
    if isinstance(db, pw.SqliteDatabase):
        with db.atomic(lock_type="IMMEDIATE"):
            yield
    else:
        with db.atomic():
            db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (_PG_LOCK_KEY,))
            yield


class Pacer:
    """Cap and rate for one dialer process; the cap itself is enforced in the database by `claim_slots`."""

    def __init__(self, cfg: PacingConfig, clock: Clock, poll_real_seconds: float = 1.0) -> None:
        self.cfg = cfg
        self.clock = clock
        self.channels = cfg.channels
        self.cps = cfg.cps
        self.command = ""
        self.command_at: datetime | None = None
        self.factor = 1.0
        self.share = 1  # live dialer nodes sharing the trunk's rate (this one included)
        self.slowdowns = 0
        # polls are spaced in real time: a scaled clock must not turn "once a second" into 600 queries a second
        self._poll_every = poll_real_seconds * max(getattr(clock, "scale", 1.0), 1e-9)
        self._next_poll = -math.inf
        self._tokens = 1.0
        self._last_refill = clock.monotonic()
        self._congestion: deque[float] = deque()
        self._last_change = clock.monotonic()
        self._reported: set[str] = set()

    # --- live settings -----------------------------------------------------------------------------------------

    def poll(self, force: bool = False) -> bool:
        """Re-read the Control table if a second has passed; True when it was read."""
        now = self.clock.monotonic()
        if not force and now < self._next_poll:
            return False
        self._next_poll = now + self._poll_every
        values = read_control(self.cfg)
        for p in values.problems:
            if p not in self._reported:  # say it once, not every second
                log.warning("event=control_invalid %s", p)
                self._reported.add(p)
        if (values.channels, values.cps) != (self.channels, self.cps):
            log.info("event=pacing_changed channels=%d cps=%g", values.channels, values.cps)
        self.channels, self.cps = values.channels, values.cps
        self.command, self.command_at = values.command, values.command_at
        share = max(1, live_nodes())
        if share != self.share:
            log.info("event=rate_shared nodes=%d cps=%g this_node=%.2f", share, self.cps, self.cps / share)
            self.share = share
        return True

    @property
    def rate(self) -> float:
        """New calls per second this node may start now: the trunk's rate shared evenly by the live dialer nodes
        (their heartbeats in the database), after congestion back-off."""
        return max(self.cps * self.factor / self.share, 0.01)

    # --- token bucket ------------------------------------------------------------------------------------------

    @property
    def burst(self) -> float:
        """Bucket size: a quarter second of calls (at least one), so no calendar second sees much more than
        1.25 x the rate (a switch's own sessions-per-second limit counts per second)."""
        return max(1.0, self.rate * BURST_SECONDS)

    def _refill(self) -> None:
        now = self.clock.monotonic()
        self._recover(now)
        elapsed = max(0.0, now - self._last_refill)
        self._last_refill = now
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate)

    def tokens(self) -> int:
        self._refill()
        return int(self._tokens)

    def allowance(self, in_flight: int) -> int:
        """How many calls may start now given `in_flight` channels already in use (never negative)."""
        self.poll()
        return max(0, min(self.tokens(), self.channels - in_flight))

    def spend(self, n: int) -> None:
        self._tokens -= n

    def wait_hint(self) -> float:
        """Clock seconds until the next token (for the dialer's sleep)."""
        self._refill()
        missing = 1.0 - self._tokens
        return max(0.0, missing / self.rate) if missing > 0 else 0.0

    # --- congestion ----------------------------------------------------------------------------------------------

    def note_cause(self, cause: str) -> None:
        """Feed every hangup / originate-failure cause; congestion bursts slow the rate down."""
        if cause not in self.cfg.congestion_causes:
            return
        now = self.clock.monotonic()
        self._congestion.append(now)
        while self._congestion and now - self._congestion[0] > self.cfg.congestion_window_seconds:
            self._congestion.popleft()
        if len(self._congestion) >= self.cfg.congestion_threshold:
            self._congestion.clear()  # the next slow-down needs a new burst
            self._refill()
            self.factor = max(MIN_FACTOR, self.factor * self.cfg.slowdown_factor)
            self._last_change = now
            self.slowdowns += 1
            self._tokens = min(self._tokens, self.burst)
            log.warning("event=congestion_slowdown cause=%s rate=%.2f factor=%.3f", cause, self.rate, self.factor)

    def _recover(self, now: float) -> None:
        while self.factor < 1.0 and now - self._last_change >= self.cfg.recovery_seconds:
            self._last_change += self.cfg.recovery_seconds
            self.factor = min(1.0, self.factor / self.cfg.slowdown_factor)
            log.info("event=congestion_recovery rate=%.2f factor=%.3f", self.rate, self.factor)


def claim_slots(cap: int, rows: list[dict], lease: Any = None) -> list[Attempt]:
    """Insert as many of `rows` (Attempt field dicts, state 'created') as the shared cap allows.

    Counting and inserting happen in one serialized write transaction, so the rows returned hold real slots; the
    caller sends their originates only after this returns (the row is always written first). With `lease`
    (ivr.dialer.lease) the same transaction checks the node still holds it (a takeover fences under the same
    lock): a fenced node gets nothing, and its lease is marked lost.
    """
    if not rows:
        return []
    from ivr.dialer.lease import lose, still_holds
    from ivr.ledger import prebuilt

    ids: dict[str, int] = {}
    with slot_transaction():
        if lease is not None and not still_holds(lease):
            lose(lease, "fenced (found at a slot claim)")
            return []
        free = cap - count_in_flight()
        take = rows[:max(0, free)]
        for i in range(0, len(take), INSERT_CHUNK):  # RETURNING: no second statement to learn the ids
            chunk = [{**r, "state": "created"} for r in take[i:i + INSERT_CHUNK]]
            keys = tuple(sorted(chunk[0]))
            values = [v for r in chunk for v in _insert_values(r)]
            cursor = prebuilt.execute(("pacing.claim_slots", len(chunk), keys),
                                      lambda chunk=chunk: Attempt.insert_many(chunk).returning(Attempt.id, Attempt.uuid),
                                      values)
            ids.update((u, k) for k, u in cursor.fetchall())
    return [Attempt(id=ids[r["uuid"]], state="created", **r) for r in take]


def _insert_values(row: dict) -> list:
    """One claimed row's values in the order peewee's INSERT lists Attempt's columns (the fields given, and
    those with a default; never the primary key); ivr.ledger.prebuilt checks the order against peewee's."""
    out = []
    for f in Attempt._meta.sorted_fields:
        if f.primary_key:
            continue
        if f.name in row:
            v = row[f.name]
        elif f.default is not None:
            v = f.default() if callable(f.default) else f.default
        else:
            continue
        out.append(f.db_value(v))
    return out
