"""Calls in flight: events from the inbound event socket turned into Attempt row updates.

One `Flight` per call this process placed. Row updates are conditional on the row's state, so duplicated,
late or out-of-order events cannot move a row backwards (an ANSWER after the HANGUP_COMPLETE changes nothing).

- CHANNEL_ANSWER            -> state answered, answered_at
- CHANNEL_HANGUP_COMPLETE   -> state ended, hangup cause, duration, billsec, ended_at   (frees the channel slot)
- BACKGROUND_JOB -ERR CAUSE -> state ended with that cause                             (frees the channel slot)
  When no call flow runs at that moment the call is finalized at once, and the end is written in the same
  statement as the outcome (one UPDATE instead of two; nothing reads a row between the two).
- BACKGROUND_JOB -ERR with a congestion cause and no CHANNEL_CREATE seen -> outcome rate_limited: the switch
  refused the session for our rate before any channel existed (FreeSWITCH sessions-per-second gives
  DESTINATION_OUT_OF_ORDER / NORMAL_TEMPORARY_FAILURE); the queue puts the entry back at its place, uncounted.
- -ERR INVALID_GATEWAY / GATEWAY_DOWN -> a trunk fault, not an attempt on the debtor: `on_trunk_fault` is called
  (the dialer pauses the campaign).

Every write is conditional on the row's owner (node and lease epoch, ivr.dialer.lease): a process whose calls
were taken over by another writes nothing for them.

A call is *finalized* (outcome written, campaign.record_result called, in one transaction) once its slot is
released AND its call-flow session (if one started) has written its facts. The attempt's `outcome` column is
written only there, so `outcome == ''` on a row means "not finalized yet" — which is what reconciliation looks
for after a crash. The call flow's own verdict is kept in `detail` as `flow=<outcome>` until then.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ivr.clock import Clock
from ivr.dialer.lease import LeaseLost, owned
from ivr.dialer.pacing import Pacer
from ivr.ledger.models import ATTEMPT_IN_FLIGHT, Attempt, database
from ivr.logs import shown_number

log = logging.getLogger("ivr.dialer")

TRUNK_FAULTS = ("INVALID_GATEWAY", "GATEWAY_DOWN")
WATCHED_EVENTS = ("CHANNEL_CREATE", "CHANNEL_ANSWER", "CHANNEL_HANGUP_COMPLETE", "BACKGROUND_JOB")

_CAUSE_OUTCOME = {
    "USER_BUSY": "busy",
    "NO_ANSWER": "no_answer", "NO_USER_RESPONSE": "no_answer", "ORIGINATOR_CANCEL": "no_answer",
    "SUBSCRIBER_ABSENT": "no_answer", "PROGRESS_TIMEOUT": "no_answer", "ALLOTTED_TIMEOUT": "no_answer",
    "UNALLOCATED_NUMBER": "invalid_number", "INVALID_NUMBER_FORMAT": "invalid_number",
    "NO_ROUTE_DESTINATION": "invalid_number",
    "CALL_REJECTED": "rejected",
    "INVALID_GATEWAY": "trunk_error", "GATEWAY_DOWN": "trunk_error",
}


def outcome_for_cause(cause: str, answered: bool, congestion: tuple[str, ...] | list[str] = ()) -> str:
    """The outcome of a call that produced no call-flow verdict, from its hangup cause."""
    if answered:
        return "early_hangup"  # answered, but nothing was played to the end
    if cause in congestion:
        return "congestion"
    return _CAUSE_OUTCOME.get(cause, "failed")


def clock_utc(clock: Clock) -> datetime:
    """Naive UTC on the shared clock: attempt times follow the (possibly simulated) evening, not the server."""
    return clock.now().astimezone(UTC).replace(tzinfo=None)


class Compiled:
    """A statement whose SQL peewee builds once; each run only binds new values.

    At 100 calls a second each call's four or five row updates were spending more time in peewee's query
    building than in SQLite; the SQL text is rebuilt if the database behind the proxy changes."""

    def __init__(self, build: Any, columns: tuple[str, ...] = ()) -> None:
        self._build = build
        self._columns = columns
        self._db: Any = None
        self._sql = ""

    def __call__(self, *values: Any) -> int:
        """Run with `values`; the number of rows changed."""
        db = database.obj
        if db is not self._db:
            self._sql = self.sql()
            self._db = db
        return db.execute_sql(self._sql, values).rowcount

    def sql(self) -> str:
        """The statement's SQL. peewee writes the SET columns in the MODEL's field order, not as passed: when
        `columns` is given, it must be that order (the values are bound by position), else ValueError."""
        sql, _ = self._build().sql()
        if self._columns:
            head = sql.split(" WHERE ", 1)[0]
            found = [c.strip().split(" = ")[0].strip('"') for c in head.split(" SET ", 1)[1].split(", ")]
            if found != list(self._columns):
                raise ValueError(f"bound values would not match the SET columns: {found} != {list(self._columns)}")
        return sql


_T0 = datetime(2000, 1, 1)
# the parameter order is the SET columns as written, then the WHERE values: id, owner node, owner epoch, states
_MINE = (Attempt.id == 0) & (Attempt.node == "") & (Attempt.epoch == 0)
SET_ANSWERED = Compiled(lambda: Attempt.update(state="answered", answered_at=_T0).where(
    _MINE & Attempt.state.in_(("created", "originated"))), ("state", "answered_at"))
SET_HANGUP = Compiled(lambda: Attempt.update(state="ended", ended_at=_T0, hangup_cause="", duration_s=0,
                                             billsec_s=0).where(_MINE & (Attempt.state != "unknown")),
                      ("state", "ended_at", "hangup_cause", "duration_s", "billsec_s"))
SET_JOB_FAILED = Compiled(lambda: Attempt.update(state="ended", ended_at=_T0, hangup_cause="").where(
    _MINE & Attempt.state.in_(ATTEMPT_IN_FLIGHT)), ("state", "ended_at", "hangup_cause"))
SET_OUTCOME = Compiled(lambda: Attempt.update(outcome="").where(_MINE), ("outcome",))
# the channel's end and the outcome in one statement: a call whose slot frees when nothing else is pending (no
# call flow running) is finalized at once, so the row never needs to be seen 'ended' without its outcome
SET_ENDED_OUTCOME = Compiled(lambda: Attempt.update(state="ended", outcome="", ended_at=_T0, hangup_cause="",
                                                    duration_s=0, billsec_s=0).where(
    _MINE & Attempt.state.in_(ATTEMPT_IN_FLIGHT)),
    ("state", "outcome", "ended_at", "hangup_cause", "duration_s", "billsec_s"))
# the call flow's facts and the outcome in one statement: the flow ended after the channel was already gone
SET_FACTS_OUTCOME = Compiled(lambda: Attempt.update(outcome="", heard=False, heard_ms=0, message_ms=0, digits="",
                                                    detail="").where(_MINE),
                             ("outcome", "heard", "heard_ms", "message_ms", "digits", "detail"))


def _int(value: str) -> int:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return 0


@dataclass
class Flight:
    """One call of this process, from the Attempt row until it is finalized."""

    attempt_id: int
    uuid: str
    account_id: int
    e164: str
    node: str = ""  # the owner (node name and lease epoch) this process wrote the row under
    epoch: int = 0
    entry: Any = None  # the QueueEntry (or entries, for a shared number) behind the call
    sharing: list[Any] = field(default_factory=list)  # other accounts whose message this call carries
    sharing_entries: list[Any] = field(default_factory=list)  # their queue entries, in the same order
    candidate: Any = None
    created_real: float = field(default_factory=time.monotonic)  # when the row was written (real seconds)
    answered: bool = False
    released: bool = False  # slot freed: terminal event seen (or reconciled)
    cause: str = ""
    trunk_fault: bool = False
    created: bool = False  # CHANNEL_CREATE seen: the switch made a channel (not refused for our rate)
    rate_limited: bool = False  # refused by the switch before any channel existed, with a congestion cause
    lost: bool = False  # gone without a HANGUP_COMPLETE seen (reconciliation)
    session_active: bool = False
    flow_outcome: str = ""
    result: Any = None  # the call flow's CallResult, once written
    ending: tuple | None = None  # the end of the channel (ended_at, cause, duration, billsec), still to be
    #                              written with the outcome (finalize writes both in one statement)
    facts: tuple | None = None  # the flow's facts (heard, heard_ms, message_ms, digits, detail), still to be
    #                             written with the outcome
    finalized: bool = False
    outcome: str = ""
    fenced: bool = False  # taken over by another process: nothing more is written for it here


class Tracker:
    """Flights of this process, updated from ESL events; finalizes each call exactly once."""

    def __init__(self, clock: Clock, pacer: Pacer,
                 finalize: Callable[[Flight, str], None],
                 on_trunk_fault: Callable[[Flight, str], None]) -> None:
        self.clock = clock
        self.pacer = pacer
        self._finalize = finalize
        self._on_trunk_fault = on_trunk_fault
        self.flights: dict[str, Flight] = {}
        self.busy_accounts: dict[int, int] = {}
        self.busy_numbers: dict[str, int] = {}
        self.counts: dict[str, int] = {}

    # --- registry ----------------------------------------------------------------------------------------------

    owner: tuple[str, int] = ("", 0)  # (node, epoch) given to flights added without one
    on_write_failed: Callable[[], None] | None = None  # a database write failed: ask for a reconciliation

    def add(self, flight: Flight) -> None:
        if not flight.node:
            flight.node, flight.epoch = self.owner
        self.flights[flight.uuid] = flight
        for acc in [flight.account_id, *[getattr(s, "id", s) for s in flight.sharing]]:
            self.busy_accounts[acc] = self.busy_accounts.get(acc, 0) + 1
        self.busy_numbers[flight.e164] = self.busy_numbers.get(flight.e164, 0) + 1

    def _remove(self, flight: Flight) -> None:
        if self.flights.pop(flight.uuid, None) is None:
            return
        for acc in [flight.account_id, *[getattr(s, "id", s) for s in flight.sharing]]:
            if self.busy_accounts.get(acc, 0) <= 1:
                self.busy_accounts.pop(acc, None)
            else:
                self.busy_accounts[acc] -= 1
        if self.busy_numbers.get(flight.e164, 0) <= 1:
            self.busy_numbers.pop(flight.e164, None)
        else:
            self.busy_numbers[flight.e164] -= 1

    # --- events ------------------------------------------------------------------------------------------------

    def handle_event(self, ev: Any) -> None:
        """EslClient handler: every event passes here; only our own calls' channel events matter."""
        name = ev.name
        if name not in ("CHANNEL_CREATE", "CHANNEL_ANSWER", "CHANNEL_HANGUP_COMPLETE"):
            return
        flight = self.flights.get(ev.uuid or "")
        if flight is None:
            return
        if name == "CHANNEL_CREATE":
            flight.created = True
        elif name == "CHANNEL_ANSWER":
            self.answered(flight)
        else:
            cause = ev.get("Hangup-Cause", "") or ev.get("variable_hangup_cause", "")
            self.hangup(flight, cause, _int(ev.get("variable_duration", "0")),
                        _int(ev.get("variable_billsec", "0")))

    def answered(self, flight: Flight) -> None:
        if flight.answered or flight.released:
            return
        flight.answered = True
        SET_ANSWERED("answered", clock_utc(self.clock), flight.attempt_id, flight.node, flight.epoch, "created",
                     "originated")

    def _final_now(self, flight: Flight) -> bool:
        """Will releasing this flight finalize it at once (so its end can be written with the outcome)?"""
        return not (flight.released or flight.finalized or flight.fenced or flight.session_active)

    def hangup(self, flight: Flight, cause: str, duration: int = 0, billsec: int = 0) -> None:
        """CHANNEL_HANGUP_COMPLETE: the channel is gone; free the slot and finalize if the flow is done."""
        self.pacer.note_cause(cause)
        if billsec > 0:
            flight.answered = True
        if self._final_now(flight):
            flight.ending = (clock_utc(self.clock), cause[:64], duration, billsec)
        else:
            SET_HANGUP("ended", clock_utc(self.clock), cause[:64], duration, billsec, flight.attempt_id,
                       flight.node, flight.epoch, "unknown")
        self._release(flight, cause)

    def job_result(self, flight: Flight, body: str) -> None:
        """The BACKGROUND_JOB body of our originate: '+OK <uuid>' or '-ERR CAUSE'."""
        text = body.strip()
        if text.startswith("+OK"):
            return
        cause = text[4:].strip().split()[0] if text.startswith("-ERR") and len(text) > 4 else "FAILED"
        cause = "".join(c for c in cause if c.isalnum() or c == "_")[:64] or "FAILED"
        if cause in TRUNK_FAULTS:
            flight.trunk_fault = True
            with database.atomic():
                Attempt.update(state="ended", ended_at=clock_utc(self.clock), hangup_cause=cause, outcome="").where(
                    owned(flight.attempt_id, flight.node, flight.epoch) & Attempt.state.in_(ATTEMPT_IN_FLIGHT)
                ).execute()
            self._on_trunk_fault(flight, cause)
            self._release(flight, cause)
            return
        if flight.released:
            return
        self.pacer.note_cause(cause)
        if not flight.created and cause in self.pacer.cfg.congestion_causes:
            flight.rate_limited = True
        if self._final_now(flight):
            flight.ending = (clock_utc(self.clock), cause, 0, 0)
        else:
            SET_JOB_FAILED("ended", clock_utc(self.clock), cause, flight.attempt_id, flight.node, flight.epoch,
                           *ATTEMPT_IN_FLIGHT)
        self._release(flight, cause)

    def lost(self, flight: Flight) -> None:
        """Reconciliation: FreeSWITCH no longer has the channel and we never saw it end."""
        flight.lost = True
        Attempt.update(state="unknown", ended_at=clock_utc(self.clock)).where(
            owned(flight.attempt_id, flight.node, flight.epoch) & Attempt.state.in_(ATTEMPT_IN_FLIGHT)).execute()
        self._release(flight, flight.cause)

    def killed(self, flight: Flight) -> None:
        """A call taken over from another process and hung up here (uuid_kill): over for the debtor now, whatever
        its socket still does on the switch. Answered and cut -> early hang-up (front of the queue), never
        answered -> unknown; a verdict its call flow had written stands."""
        Attempt.update(state="ended", ended_at=clock_utc(self.clock), hangup_cause="TAKEN_OVER").where(
            owned(flight.attempt_id, flight.node, flight.epoch) & Attempt.state.in_(ATTEMPT_IN_FLIGHT)).execute()
        flight.lost = not flight.answered
        self._release(flight, "")

    def drop_all(self) -> list[Flight]:
        """The lease is lost: forget every call (another process owns them now) without writing anything."""
        dropped = list(self.flights.values())
        for flight in dropped:
            flight.fenced = True
        self.flights.clear()
        self.busy_accounts.clear()
        self.busy_numbers.clear()
        return dropped

    def _release(self, flight: Flight, cause: str) -> None:
        if flight.released:
            return
        flight.released = True
        flight.cause = flight.cause or cause
        self.maybe_finalize(flight)

    # --- the call flow's side ------------------------------------------------------------------------------------

    def session_started(self, flight: Flight) -> None:
        flight.session_active = True

    def session_done(self, flight: Flight, flow_outcome: str) -> None:
        flight.session_active = False
        flight.flow_outcome = flow_outcome
        self.maybe_finalize(flight)

    def _write_ending_alone(self, flight: Flight) -> None:
        """The finalize that was to carry the channel's end failed: try the end by itself (the row then reads
        ended without an outcome, which reconciliation finishes from the cause); a second failure is left to
        reconciliation (it asks FreeSWITCH)."""
        if flight.ending is None:
            return
        at, cause, duration, billsec = flight.ending
        try:
            SET_HANGUP("ended", at, cause, duration, billsec, flight.attempt_id, flight.node, flight.epoch,
                       "unknown")
        except Exception as exc:
            log.warning("event=end_write_failed attempt=%s error=%s", flight.uuid, type(exc).__name__)

    def maybe_finalize(self, flight: Flight) -> None:
        if flight.finalized or flight.fenced or not flight.released or flight.session_active:
            return
        if flight.trunk_fault:
            outcome = "trunk_error"
        elif flight.rate_limited:
            outcome = "rate_limited"
        elif flight.flow_outcome:
            outcome = flight.flow_outcome
        elif flight.lost:
            outcome = "unknown"
        else:
            outcome = outcome_for_cause(flight.cause, flight.answered, self.pacer.cfg.congestion_causes)
        flight.outcome = outcome
        try:
            self._finalize(flight, outcome)
            flight.finalized = True
        except LeaseLost as exc:
            flight.fenced = True  # another process took this call over: its result is theirs to write
            log.warning("event=result_fenced attempt=%s number=%s outcome=%s; %s", flight.uuid,
                        shown_number(flight.e164), outcome, exc)
            self._remove(flight)
            return
        except Exception:
            # the row keeps outcome '' so reconciliation finishes it; the slot is already free
            log.exception("event=finalize_failed attempt=%s number=%s", flight.uuid, shown_number(flight.e164))
            self._write_ending_alone(flight)
            if self.on_write_failed is not None:
                self.on_write_failed()
        finally:
            self._remove(flight)
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
