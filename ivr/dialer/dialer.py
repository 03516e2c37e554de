"""The dialer loop of one process: window → queue → pacing → Attempt row → bgapi originate → call flow → result.

Order of writes (never lose a result):
1. the Attempt row is inserted (state created) inside the slot transaction BEFORE its originate is sent;
2. events update it as they arrive (tracker.py);
3. the call flow's facts (heard, digits, callback request, claimed payment, wrong number, opt-out onto the
   do-not-call list) are written the moment `run_call` returns, in one short transaction (plain facts of a call
   whose channel is already gone ride on step 4's first statement instead);
4. the outcome and `campaign.record_result` are written together once the channel is gone (finalize).
The row is not marked 'originated' when the originate goes out: nothing tells 'created' and 'originated' apart
(reconciliation asks FreeSWITCH either way), and the write cost a statement per call.
A crash anywhere leaves rows that reconciliation (reconcile.py) can finish.

Concurrency: everything runs in gevent greenlets in ONE OS thread and the library never monkey-patches; database
calls are short and never yield inside a transaction, so greenlets cannot interleave inside one. One greenlet per
originate (waiting for its BACKGROUND_JOB) and one per answered call (OutboundServer); an exception in one call
is logged and finalizes only that call.

Fencing (lease.py): the process holds a lease on its node name, renewed by the heartbeat and by this loop. It
starts a call only while the lease is valid (checked right before each claim and each originate, and in the
claim's transaction); every write of a result checks that the call is still its own. When the lease is lost
(another process took the calls over while this one was frozen or cut off) it stops dialing, forgets those calls
without writing, sends `exit` on their sockets and rejoins under a new node name.

Control (pacing.py polls the Control table once a second): 'command' pause / resume (or run) / stop, 'channels',
'cps'. While the ESL connection is down no call is started; after it comes back in-flight calls are reconciled.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
import uuid as uuidlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import gevent
import gevent.event

from ivr.clock import Clock
from ivr.config import Config
from ivr.dialer import lease as leases
from ivr.dialer.originate import originate_command
from ivr.dialer.pacing import Pacer, claim_slots, count_in_flight
from ivr.dialer.tracker import (
    SET_ENDED_OUTCOME,
    SET_FACTS_OUTCOME,
    SET_OUTCOME,
    WATCHED_EVENTS,
    Flight,
    Tracker,
    clock_utc,
)
from ivr.ledger import dnc
from ivr.ledger.models import (
    ATTEMPT_IN_FLIGHT,
    Account,
    Attempt,
    CallbackRequest,
    Campaign,
    Phone,
    QueueEntry,
    database,
    utcnow,
)
from ivr.logs import shown_number

log = logging.getLogger("ivr.dialer")

ORPHAN_CHECK_REAL_SECONDS = 5.0  # how often (at most) to look for a dead dialer process's calls to take over
DB_ERROR_NAP_REAL_SECONDS = 1.0  # after a database error in the loop (connection dropped …), before trying again
IDLE_REAL_SECONDS = 0.05  # how long the loop naps when there is nothing to do right now (real time)
BATCH_REAL_SECONDS = 0.02  # the shortest nap between two claims (real time): calls are claimed in batches
IN_FLIGHT_REFRESH_REAL_SECONDS = 0.5  # how often the other nodes' share of the cap is re-counted
MAX_BATCH_WAIT_REAL_SECONDS = 0.5  # the longest a free slot waits for others to claim them together
BATCH_SHARE_OF_CAP = 10  # with every channel busy, a claim waits for a tenth of the cap to be free (at most 50)
CAMPAIGN_REFRESH_REAL_SECONDS = 30.0  # how often a running evening looks for newly due campaigns (an emergency)


def release_memory() -> None:
    """Give the memory of finished calls back to the system: a cycle collection, then glibc's malloc_trim (freed
    heap pages stay mapped to the process otherwise; without glibc it is only the collection)."""
    import ctypes
    import ctypes.util
    import gc

    gc.collect()
    global _libc
    if _libc is None:
        try:
            _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _libc.malloc_trim.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):
            _libc = False
    if _libc:
        _libc.malloc_trim(0)


_libc = None


def default_node_name() -> str:
    return f"{socket.gethostname()[:40]}-{os.getpid()}"


@dataclass
class DialerStats:
    placed: int = 0
    originate_errors: int = 0
    flow_errors: int = 0
    reconciled_lost: int = 0
    reconciled_alive: int = 0
    peak_in_flight: int = 0
    trunk_faults: int = 0
    fenced: int = 0  # times this process lost its lease and rejoined
    taken_over: int = 0  # calls of other (dead) processes this one took over and settled
    db_errors: int = 0
    started_mono: float = 0.0
    outcomes: dict[str, int] = field(default_factory=dict)


class CampaignQueue:
    """The campaign part the dialer uses (ivr.campaign.queue); a seam for tests."""

    def __init__(self, cfg: Config) -> None:
        from ivr.campaign import queue

        self._q = queue
        self.cfg = cfg
        self._by_campaign: dict[int, Config] = {}

    def cfg_for(self, campaign_id: int | None) -> Config:
        """The config narrowed to the campaign's kind (its windows and caps: ivr.campaign.kinds)."""
        from ivr.campaign import kinds

        if campaign_id is None:
            return self.cfg
        got = self._by_campaign.get(campaign_id)
        if got is None:
            camp = Campaign.get_or_none(Campaign.id == campaign_id)
            got = self.cfg if camp is None else kinds.config_for_campaign(self.cfg, camp)
            self._by_campaign[campaign_id] = got
        return got

    def next_candidates(self, campaign: Campaign, clock: Clock, limit: int, busy_accounts: set[int],
                        busy_numbers: set[str]) -> list[Any]:
        return self._q.next_candidates(campaign, clock, limit, busy_accounts, busy_numbers,
                                       cfg=self.cfg_for(campaign.id))

    def record_result(self, entry: QueueEntry, outcome: str, cause: str, clock: Clock,
                      attempt: Attempt | None = None) -> None:
        self._q.record_result(entry, outcome, cause, clock, attempt, cfg=self.cfg_for(entry.campaign_id))

    def release(self, entries: list[QueueEntry], clock: Clock) -> None:
        """Claimed entries that were not dialed after all (the shared cap filled up meanwhile)."""
        self._q.release(entries, clock)

    def next_wakeup(self, campaign: Campaign) -> datetime | None:
        return self._q.next_wakeup(campaign)


class Dialer:
    """Places the calls of one campaign from this process (see module docstring)."""

    def __init__(self, cfg: Config, esl: Any, clock: Clock, speech: Any = None, *,
                 node: str | None = None, queue: Any = None,
                 run_call: Callable[[Any, Any], Any] | None = None,
                 context_factory: Callable[[Flight], Any] | None = None,
                 outbound_port: int | None = None, attempt_kind: str = "campaign") -> None:
        self.cfg = cfg
        # 'test' (`ivr call`): the calls are written as test attempts and what the person on the line chooses
        # changes nothing of the debtor's (no callback request, no "already paid", no number flagged or listed)
        self.attempt_kind = attempt_kind
        self.esl = esl
        self.clock = clock
        self.speech = speech
        self.node = node or default_node_name()
        self.base_node = self.node
        self.lease: leases.Lease | None = None
        self.node_timeout = float(getattr(cfg.dialing, "node_timeout_seconds", 30.0))
        self.queue = queue if queue is not None else CampaignQueue(cfg)
        if run_call is None:
            from ivr.callflow.flow import run_call as real_run_call

            run_call = real_run_call
        self.run_call = run_call
        self.context_factory = context_factory or self._context
        self.pacer = Pacer(cfg.pacing, clock)
        self.tracker = Tracker(clock, self.pacer, self._finalize, self._trunk_fault)
        self.tracker.on_write_failed = lambda: self.reconcile_later(DB_ERROR_NAP_REAL_SECONDS)
        self.stats = DialerStats()
        self.campaign: Campaign | None = None  # the first (highest-priority) of `campaigns`
        self.campaigns: list[Campaign] = []  # the evening's campaigns, served by priority on one cap
        # asked every CAMPAIGN_REFRESH_REAL_SECONDS while the evening runs: campaigns that became due since it
        # started (an emergency outage entered mid-evening) join it at their priority; None = the list is fixed
        self.campaign_source: Callable[[], list[Campaign]] | None = None
        self._campaigns_at = 0.0
        self.paused = False
        self.pause_reason = ""
        self.stopping = False
        self._last_command: tuple[str, datetime | None] | None = None
        self._started_at = utcnow()
        self._wake = gevent.event.Event()
        self._esl_up = gevent.event.Event()
        self._need_reconcile = False
        self._reconcile_at = 0.0  # real monotonic time before which a requested reconciliation waits
        self._outbound = None
        self._outbound_port = outbound_port if outbound_port is not None else cfg.freeswitch.outbound_bind_port
        self._greenlets: set[gevent.Greenlet] = set()
        self._in_flight_db = 0
        self.on_tick: Callable[[Dialer], None] | None = None
        self._prompts: dict[tuple, Any] = {}  # CallContext's per-process prompt cache

    # --- start / stop ------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the call-flow server and listen to the event socket (the caller starts `esl`)."""
        from ivr.switch.outbound import OutboundServer

        self._outbound = OutboundServer(self.cfg.freeswitch.outbound_bind_host, self._outbound_port,
                                        self._on_session)
        self._outbound.start()
        self._outbound_port = self._outbound.port
        self.attach_esl()

    def attach_esl(self) -> None:
        self.esl.add_handler(self._handle_event)
        self.esl.on_state(self._on_esl_state)
        if hasattr(self.esl, "subscribe"):
            try:
                self.esl.subscribe(list(WATCHED_EVENTS))
            except Exception as exc:  # subscribed again on connect by the client itself
                log.debug("event=subscribe_deferred error=%s", exc)
        if getattr(self.esl, "state", "") == "connected":
            self._esl_up.set()

    # --- the lease ---------------------------------------------------------------------------------------------

    def ensure_lease(self) -> leases.Lease:
        """Register this process's node (a new epoch) once; every flight is written under it."""
        if self.lease is None:
            self.lease = leases.register(self.node, self.node_timeout, self._started_at)
            self.tracker.owner = (self.lease.node, self.lease.epoch)
        return self.lease

    def lease_ok(self) -> bool:
        """May a call start now? Valid by the monotonic clock, else renewed now; a lost lease rejoins."""
        lease = self.ensure_lease()
        if lease.valid():
            return True
        if not lease.lost:
            try:
                leases.renew(lease)
            except Exception as exc:
                log.warning("event=lease_renew_failed node=%s error=%s", self.node, exc)
                return False
        if lease.lost:
            self.on_lease_lost()
            return False
        return lease.valid()

    _renew_at = 0.0

    def _renew_if_due(self) -> None:
        """Renew from the loop as well as from the heartbeat (which callers may not run)."""
        now = time.monotonic()
        if self.lease is None or now < self._renew_at:
            return
        self._renew_at = now + self.lease.seconds / 4
        if not leases.renew(self.lease):
            self.on_lease_lost()

    def on_lease_lost(self) -> None:
        """Another process owns our calls now: drop them unwritten, let go of their sockets, rejoin as a new node."""
        lease = self.lease
        if lease is None or not lease.lost or lease.lost_reason == "stopped":
            return
        dropped = self.tracker.drop_all()
        self.stats.fenced += 1
        mine = {f.uuid for f in dropped}
        if self._outbound is not None:
            for session in list(self._outbound.sessions):
                if session.uuid in mine:
                    gevent.spawn(_let_go, session)
        old = self.node
        self.node = f"{self.base_node}-r{self.stats.fenced}"[:64]
        self.lease = None
        self.ensure_lease()
        log.error("event=node_rejoined old=%s new=%s dropped_calls=%d why=%s", old, self.node, len(dropped),
                  lease.lost_reason)

    def finish_and_stop(self) -> None:
        """A graceful stop (SIGTERM from systemd): start no new call, let the calls in progress finish."""
        log.warning("event=stopping reason=signal in_flight=%d; calls in progress finish first",
                    len(self.tracker.flights))
        self.stopping = True
        self._stopped_by_signal = True  # the campaign is not over: its status is left as it is
        self._wake.set()

    _stopped_by_signal = False

    def stop(self) -> None:
        self.stopping = True
        self._wake.set()
        if self.lease is not None and not self.tracker.flights:
            try:
                leases.leave(self.lease)
            except Exception as exc:  # the database is gone at exit: the row goes stale, others see it dead
                log.warning("event=leave_failed node=%s error=%s", self.node, exc)
        if self._outbound is not None:
            self._outbound.stop()
        for g in list(self._greenlets):
            g.kill(block=False)

    def _handle_event(self, ev: Any) -> None:
        """Every ESL event; a failed database write (a dropped connection) leaves the call to reconciliation."""
        try:
            self.tracker.handle_event(ev)
        except Exception as exc:
            self.stats.db_errors += 1
            log.error("event=event_write_failed event_name=%s error=%s: %s; reconciling", getattr(ev, "name", "?"),
                      type(exc).__name__, str(exc).strip()[:200])
            self.reconcile_later(DB_ERROR_NAP_REAL_SECONDS)

    def reconcile_later(self, real_seconds: float) -> None:
        """Ask for another reconciliation pass once `real_seconds` have passed."""
        self._need_reconcile = True
        self._reconcile_at = time.monotonic() + real_seconds

    @property
    def socket_address(self) -> tuple[str, int]:
        return self.cfg.freeswitch.outbound_advertise_host, self._outbound_port

    def _on_esl_state(self, state: str) -> None:
        if state == "connected":
            if not self._esl_up.is_set():
                self._need_reconcile = True
            self._esl_up.set()
        else:
            if self._esl_up.is_set() and not self.stopping:  # (our own stop closes it too: no warning then)
                log.warning("event=esl_down state=%s in_flight=%d; no new calls until it is back",
                            state, len(self.tracker.flights))
            self._esl_up.clear()
        self._wake.set()

    @property
    def esl_connected(self) -> bool:
        return self._esl_up.is_set() and getattr(self.esl, "state", "connected") == "connected"

    # --- the loop ----------------------------------------------------------------------------------------------

    def run(self, campaign: Campaign | list[Campaign] | None, *, until: datetime | None = None) -> DialerStats:
        """Dial `campaign` (or several campaigns of one evening) until their queues are exhausted for the
        evening, `until` (clock time) or a stop command.

        Several campaigns share this process's slots and the trunk's cap by priority (ivr.campaign.kinds):
        each free slot is offered to the campaigns in priority order, so a lower one is dialed only while the
        higher ones have nobody who may be called right now. Calls in progress when the loop ends are waited for
        (they finish normally)."""
        from ivr.dialer.reconcile import reconcile

        camps = campaign if isinstance(campaign, list) else [campaign] if campaign is not None else []
        self.campaigns = sorted(camps, key=lambda c: (c.priority, c.id))
        self.campaign = self.campaigns[0] if self.campaigns else None
        self.stats.started_mono = self.clock.monotonic()
        self.ensure_lease()
        self._set_status("running", "")
        if self.esl_connected:
            reconcile(self)
        while not self.stopping:
            try:
                if self._step(until) == "break":
                    break
            except Exception as exc:
                # a dropped database connection (or a busy one) must not end the evening: try again shortly
                self.stats.db_errors += 1
                log.error("event=loop_error error=%s: %s; retrying", type(exc).__name__, str(exc).strip()[:200])
                self.reconcile_later(DB_ERROR_NAP_REAL_SECONDS)
                self._nap(DB_ERROR_NAP_REAL_SECONDS)
        self._drain()
        release_memory()
        if self.campaign is not None and not self.paused and not self._stopped_by_signal:
            final = "stopped" if self._stopped_by_command else "done"
            self._set_status(final, "" if final == "done" else "stopped by command")
        return self.stats

    def _step(self, until: datetime | None) -> str:
        """One turn of the loop: 'break' when the evening is over for this process."""
        from ivr.dialer.reconcile import reconcile

        self._renew_if_due()
        self.pacer.poll()
        self._apply_command()
        if self.stopping:
            return "break"
        if self.on_tick:
            self.on_tick(self)
        if until is not None and self.clock.now() >= until:
            return "break"
        if not self.esl_connected:
            self._nap(0.2)
            return ""
        if self._need_reconcile and time.monotonic() >= self._reconcile_at:
            self._need_reconcile = False
            reconcile(self)
        self._give_back_unplaced()
        self._take_over_dead_nodes()
        self._refresh_campaigns()
        if self.paused:
            self._nap(0.2)
            return ""
        started = self._dial_some()
        if started:
            # let tokens and freed slots gather for a moment: a claim of several calls costs the database
            # about what a claim of one does (the rate is kept: the bucket holds a quarter second)
            self._nap(BATCH_REAL_SECONDS)
        else:
            if not self.tracker.flights and self._evening_over() and not self._others_unsettled():
                return "break"
            if self._token_bound:  # wake for the next token, not a fixed nap (a scaled clock runs fast)
                self._nap(max(BATCH_REAL_SECONDS,
                              min(IDLE_REAL_SECONDS, self.clock.real_seconds(self.pacer.wait_hint()))))
            else:
                self._nap()
        return ""

    _stopped_by_command = False
    _orphan_check_at = 0.0
    _others_wait_until: float | None = None

    def _take_over_dead_nodes(self) -> None:
        """Now and then: take over the calls of processes whose heartbeat stopped (lease.take_over fences them
        first), and of our own name's earlier incarnation once its lease has run out; give back queue claims a
        crashed process left without a call. Reconciliation at start-up cannot do all of it: a dead process's
        heartbeat only goes stale node_timeout_seconds later."""
        from ivr.campaign.queue import release_orphans
        from ivr.dialer.reconcile import reconcile

        if time.monotonic() < self._orphan_check_at:
            return
        self._orphan_check_at = time.monotonic() + min(ORPHAN_CHECK_REAL_SECONDS, self.node_timeout / 2)
        lease = self.ensure_lease()
        if leases.stale_nodes(self.node, self.node_timeout) or leases.earlier_incarnation_takeable(lease):
            reconcile(self)
        if isinstance(self.queue, CampaignQueue):
            for camp in self.campaigns or ([self.campaign] if self.campaign is not None else []):
                release_orphans(camp, self.clock)

    def _others_unsettled(self) -> bool:
        """Whether to keep the evening open for calls of other processes still unsettled in this campaign (a
        crashed one's re-queue the account when taken over). While their owner is a registered node the wait is
        open-ended (it settles them, or dies and they are taken over here); rows of unknown owners get a
        bounded wait."""
        from ivr.dialer.reconcile import foreign_owners, foreign_unsettled

        ids = [c.id for c in self.campaigns] or [self.campaign.id if self.campaign is not None else None]
        if not any(foreign_unsettled(self.ensure_lease(), i) for i in ids):
            self._others_wait_until = None
            return False
        if any(foreign_owners(self.ensure_lease(), i) for i in ids):
            # a registered node still owns calls of tonight: it settles them, or its heartbeat stops and they
            # are taken over here (the orphan check runs on every turn of this loop): no deadline needed
            return True
        now = time.monotonic()
        if self._others_wait_until is None:
            self._others_wait_until = now + self.node_timeout + 3 * ORPHAN_CHECK_REAL_SECONDS
            log.warning("event=waiting_for_other_nodes; calls of another dialer process are not settled yet")
        return now < self._others_wait_until

    def _nap(self, real: float = IDLE_REAL_SECONDS) -> None:
        self._wake.clear()
        self._wake.wait(timeout=real)

    def _drain(self, real_timeout: float | None = None) -> None:
        """Wait for the calls in progress (bounded by the longest a call may last)."""
        limit = real_timeout if real_timeout is not None else self.clock.real_seconds(
            self.cfg.dialing.originate_timeout + self.cfg.dialing.max_call_seconds + 30)
        deadline = gevent.get_hub().loop.now() + limit
        while self.tracker.flights and gevent.get_hub().loop.now() < deadline:
            if self.esl_connected and self._need_reconcile and time.monotonic() >= self._reconcile_at:
                from ivr.dialer.reconcile import reconcile

                self._need_reconcile = False
                reconcile(self)
            gevent.sleep(0.05)
        if self.tracker.flights:
            log.warning("event=drain_timeout in_flight=%d; left for reconciliation at the next start",
                        len(self.tracker.flights))

    _token_bound = False
    _in_flight_at = 0.0
    _others_in_flight = 0
    _claimed_at = 0.0
    _unplaced: tuple = ()  # queue entries claimed here that got no call yet: given back on the next turn

    def _dial_some(self) -> int:
        local = len(self.tracker.flights)
        self._token_bound = False
        box = self.cfg.freeswitch.max_channels  # this node's own box: its calls are this process's flights
        if self.pacer.allowance(local) <= 0 or (box and local >= box):
            self._token_bound = local < self.pacer.channels and not (box and local >= box)
            return 0
        if not self.lease_ok():
            return 0
        now = time.monotonic()
        # several nodes on one cap: a node below its fair share (cap / live nodes) looks at the others' calls on
        # every turn and claims at once; one at or above it claims freed slots only every refresh, so a faster
        # node cannot take every slot the moment it frees and starve the others
        nodes = max(1, int(self.pacer.share))
        under = nodes > 1 and local < self.pacer.channels / nodes
        if now >= self._in_flight_at:  # other nodes' calls (the cap itself is enforced inside claim_slots)
            self._in_flight_at = now + (IDLE_REAL_SECONDS if under else IN_FLIGHT_REFRESH_REAL_SECONDS)
            self._others_in_flight = max(0, count_in_flight() - local)
        if nodes > 1 and not under and local and now - self._claimed_at < IN_FLIGHT_REFRESH_REAL_SECONDS:
            return 0
        self._in_flight_db = local + self._others_in_flight
        n = self.pacer.allowance(self._in_flight_db)
        if box:
            n = min(n, box - local)
        if n <= 0:
            return 0
        # with every channel busy, slots free one call at a time: wait (briefly) for several, so one claim's
        # queries serve many calls (a claim costs about 15 statements and most of the controller's CPU went to
        # claims of 2-3 calls); never for more than the token bucket can give at once
        want = max(1, min(self.pacer.channels // BATCH_SHARE_OF_CAP, 50, int(self.pacer.burst)))
        wait = min(MAX_BATCH_WAIT_REAL_SECONDS, self.clock.real_seconds(MAX_BATCH_WAIT_REAL_SECONDS))
        if n < want and local and now - self._claimed_at < wait:  # (a time-compressed evening waits less)
            return 0
        self._claimed_at = now
        cands = self._candidates(n)
        if not cands:
            return 0
        rows = []
        lease = self.ensure_lease()
        for c in cands:
            rows.append({"uuid": str(uuidlib.uuid4()),
                         "campaign": c.entry.campaign_id if c.entry is not None else None,
                         "account": c.account.id,
                         "accounts": ",".join(c.account_numbers)[:400], "e164": c.phone.e164,
                         "node": lease.node, "epoch": lease.epoch, "created_at": clock_utc(self.clock),
                         "kind": self.attempt_kind})
        try:
            attempts = claim_slots(self.pacer.channels, rows, lease)
        except Exception:
            # the queue's claim is committed but the calls' rows are not (a dropped database connection): these
            # entries would stay 'dialing' with no call, and the evening could end without them. Give them back
            # first thing next turn (`_give_back_unplaced`), before anything else is claimed or the end decided.
            self._unplaced = (*self._unplaced, *(e for c in cands for e in c.entries if e is not None))
            raise
        if lease.lost:
            # fenced between the queue claim and the slot claim: those claims are released by whoever owns the
            # evening now (release_orphans); this process rejoins and writes nothing more for them
            self.on_lease_lost()
            return 0
        self.pacer.spend(len(attempts))
        left = [e for c in cands[len(attempts):] for e in c.entries]
        if left:
            self._in_flight_at = 0.0  # the cap is fuller than we thought: count again next time
            self._unplaced = (*self._unplaced, *left)  # the shared cap filled up meanwhile (another node)
            self._give_back_unplaced()
        for att, c in zip(attempts, cands, strict=False):
            flight = Flight(attempt_id=att.id, uuid=att.uuid, account_id=c.account.id, e164=c.phone.e164,
                            node=lease.node, epoch=lease.epoch, entry=c.entry, sharing=[e.account for e in c.accounts_sharing_number],
                            sharing_entries=list(c.accounts_sharing_number), candidate=c)
            self.tracker.add(flight)
            self._spawn(self._originate, flight, c.account.number)
        self.stats.placed += len(attempts)
        self.stats.peak_in_flight = max(self.stats.peak_in_flight, len(self.tracker.flights))
        return len(attempts)

    def _give_back_unplaced(self) -> None:
        """Release queue claims that got no call; kept (and retried every turn) while the database refuses."""
        if self._unplaced:
            self.queue.release(list(self._unplaced), self.clock)
            self._unplaced = ()

    def _refresh_campaigns(self) -> None:
        """Now and then: add the campaigns `campaign_source` says are due and this evening does not serve yet."""
        now = time.monotonic()
        if self.campaign_source is None or now < self._campaigns_at:
            return
        self._campaigns_at = now + CAMPAIGN_REFRESH_REAL_SECONDS
        known = {c.id for c in self.campaigns}
        new = [c for c in self.campaign_source() if c.id not in known]
        if not new:
            return
        self.campaigns = sorted([*self.campaigns, *new], key=lambda c: (c.priority, c.id))
        self.campaign = self.campaigns[0]
        for c in new:
            Campaign.update(status="running", status_reason="").where(Campaign.id == c.id).execute()
            c.status = "running"
            log.warning("event=campaign_joined campaign=%s kind=%s ref=%s priority=%s audience=%s", c.id, c.kind,
                        c.ref or "-", c.priority, c.eligible_count)

    def _candidates(self, n: int) -> list[Any]:
        """Up to `n` claimed candidates, asked of the campaigns in priority order: a campaign gets what the
        higher ones left. The busy sets grow with each campaign's claims, and the queue's claim re-checks every
        live call and claimed entry of ANY campaign, so nobody is in two calls at once across campaigns."""
        busy_acc, busy_num = set(self.tracker.busy_accounts), set(self.tracker.busy_numbers)
        out: list[Any] = []
        for camp in self.campaigns or [self.campaign]:
            if len(out) >= n:
                break
            got = self.queue.next_candidates(camp, self.clock, n - len(out), busy_acc, busy_num)
            for c in got:  # (a staff test call's candidate has no queue entry)
                busy_acc.add(c.account.id)
                busy_acc.update(e.account_id for e in c.entries if e is not None)
                busy_num.add(c.e164)
            out.extend(got)
        return out

    def _may_send(self, flight: Flight) -> bool:
        """Right before (and right after) an originate goes out: is this call still ours to place?"""
        if flight.fenced:
            return False
        lease = self.lease
        if lease is not None and lease.node == flight.node and lease.epoch == flight.epoch and lease.valid():
            return True
        return self.lease_ok() and self.lease is not None and self.lease.node == flight.node and \
            self.lease.epoch == flight.epoch and not flight.fenced

    def _kill_sent(self, uuid: str, job: Any, within_real_s: float = 10.0) -> None:
        """Hang up a call we sent but no longer own. The channel appears a moment after the bgapi (FreeSWITCH
        creates it on its own thread): until then uuid_kill answers -ERR No such channel, so ask again until it
        is killed, the originate's job ends (it failed or was answered and then killed), or `within_real_s`."""
        from ivr.dialer.reconcile import kill_channel

        deadline = time.monotonic() + within_real_s
        while True:
            if kill_channel(self.esl, uuid):
                log.warning("event=fenced_call_killed attempt=%s", uuid)
                return
            if getattr(job, "ready", lambda: False)() or time.monotonic() > deadline:
                log.warning("event=fenced_call_not_found attempt=%s; its originate ended by itself", uuid)
                return
            gevent.sleep(0.05)

    def _spawn(self, fn: Callable[..., Any], *args: Any) -> None:
        g = gevent.spawn(fn, *args)
        self._greenlets.add(g)
        g.link(self._greenlets.discard)  # a set: hundreds of calls in flight, removal must not scan a list

    def _originate(self, flight: Flight, account_number: str) -> None:
        from ivr.switch.errors import EslDisconnected, UnsafeValue

        host, port = self.socket_address
        try:
            cmd = originate_command(self.cfg, attempt_uuid=flight.uuid, attempt_id=flight.attempt_id,
                                    account=account_number, e164=flight.e164, socket_host=host, socket_port=port)
        except (UnsafeValue, ValueError) as exc:
            log.error("event=originate_refused attempt=%s number=%s why=%s", flight.uuid,
                      shown_number(flight.e164), exc)
            Attempt.update(detail=f"refused: {exc}"[:400]).where(
                leases.owned(flight.attempt_id, flight.node, flight.epoch)).execute()
            self.tracker.job_result(flight, "-ERR INVALID_NUMBER_FORMAT")
            return
        if flight.fenced or not self._may_send(flight):
            return  # no longer ours to place: whoever took it over settles its row
        if not self.esl_connected:
            # the connection dropped between the claim and this greenlet's turn: nothing is sent; the slot is
            # settled by reconciliation after the reconnect, like a send that failed
            log.warning("event=originate_not_sent attempt=%s reason=event_socket_down", flight.uuid)
            self.stats.originate_errors += 1
            self._need_reconcile = True
            return
        try:
            job = self.esl.bgapi(f"originate {cmd}")
        except Exception as exc:
            # maybe sent, maybe not: reconciliation asks FreeSWITCH (uuid_exists) before anything else happens
            log.warning("event=originate_send_failed attempt=%s error=%s: %s", flight.uuid,
                        type(exc).__name__, exc)
            self.stats.originate_errors += 1
            self._need_reconcile = True
            return
        if not self._may_send(flight):
            # frozen between the check and the send: this call is no longer ours; end it before it rings
            self._kill_sent(flight.uuid, job)
            return
        log.debug("event=originate attempt=%s account=%s number=%s", flight.uuid, account_number,
                  shown_number(flight.e164))
        wait = self.clock.real_seconds(self.cfg.dialing.originate_timeout + 60) + 30
        try:
            body = job.get(timeout=wait)
        except EslDisconnected:
            self._need_reconcile = True
            return
        except gevent.Timeout:
            log.warning("event=originate_no_job_result attempt=%s", flight.uuid)
            self._need_reconcile = True
            return
        except Exception as exc:
            log.warning("event=originate_job_failed attempt=%s error=%s", flight.uuid, exc)
            self._need_reconcile = True
            return
        body = str(body)
        if body.startswith("-ERR") and not flight.created and hasattr(self.esl, "barrier"):
            # a CHANNEL_CREATE read before this result may still wait for the handler greenlet: whether one came
            # decides between "refused for our rate" and a failure of the debtor's line (tracker.job_result)
            self.esl.barrier()
        self.tracker.job_result(flight, body)

    # --- one answered call ---------------------------------------------------------------------------------------

    def _on_session(self, session: Any) -> None:
        from ivr.dialer import inbound

        if inbound.is_inbound(session):  # a debtor calling back (freeswitch/dialplan/ivr_inbound.xml)
            try:
                inbound.handle(self, session)
            except Exception as exc:
                log.exception("event=inbound_error call=%s error=%s", session.uuid, exc)
            return
        flight = self.tracker.flights.get(session.uuid or "")
        if flight is None or str(session.variable("ivr_attempt_id") or "") != str(flight.attempt_id):
            log.warning("event=unknown_session uuid=%s; hanging up", session.uuid)
            with contextlib.suppress(Exception):  # the channel may already be gone
                session.hangup("NORMAL_CLEARING")
            return
        self.tracker.session_started(flight)
        if not flight.answered:
            self.tracker.answered(flight)
        outcome = ""
        try:
            ctx = self.context_factory(flight)
            result = self.run_call(session, ctx)
            self._write_result(flight, result)
            outcome = result.outcome
        except leases.LeaseLost as exc:
            log.warning("event=result_fenced attempt=%s; %s", flight.uuid, exc)
        except Exception as exc:
            if flight.fenced:  # we let go of its socket: the flow's failure is ours to forget, not to record
                log.info("event=callflow_abandoned attempt=%s error=%s", flight.uuid, type(exc).__name__)
                return
            self.stats.flow_errors += 1
            log.exception("event=callflow_error attempt=%s error=%s", flight.uuid, exc)
            try:
                Attempt.update(detail=f"call flow error: {type(exc).__name__}: {exc}"[:400]).where(
                    leases.owned(flight.attempt_id, flight.node, flight.epoch)).execute()
                if not session.hungup:
                    session.hangup("NORMAL_TEMPORARY_FAILURE")
            except Exception:
                pass
        finally:
            self.tracker.session_done(flight, outcome)

    def _accounts_of(self, flight: Flight) -> list[Account]:
        main = flight.candidate.account if flight.candidate is not None else Account.get_by_id(flight.account_id)
        return [main, *flight.sharing]

    def _context(self, flight: Flight) -> Any:
        """The call flow's context: this call's messages, and the prompts every call of the process shares.

        `shared` lets CallContext ask Speech once per process for prompts that do not name the debtor (a cache
        lookup still costs milliseconds, which a 100-calls-a-second evening cannot spend); prompts whose text
        says {name} (the shipped menu does) are rendered per call, so nobody hears another debtor's name."""
        from ivr.callflow.context import CallContext
        from ivr.speech.facts import facts_for_account, facts_from_verdict

        camp = self._campaign_of(flight)
        day = camp.day if camp is not None else self.clock.now().date()
        if camp is not None and camp.kind != "debt":
            from ivr.campaign import messages

            return messages.context(self.cfg, self.speech, camp, self._accounts_of(flight), day,
                                    attempt=flight.uuid, shared=self._prompts)
        verdicts = getattr(flight.candidate, "verdicts", None) or {}
        # the pre-dial check's verdicts say the amount, currency and months overdue: no second ledger read
        facts = [facts_from_verdict(self.cfg, acc, verdicts[acc.id]) if acc.id in verdicts
                 else facts_for_account(self.cfg, acc, day) for acc in self._accounts_of(flight)]
        return CallContext.from_speech(self.cfg, self.speech, facts, attempt=flight.uuid, shared=self._prompts)

    def _campaign_of(self, flight: Flight) -> Campaign | None:
        cid = flight.entry.campaign_id if flight.entry is not None else None
        for c in self.campaigns:
            if c.id == cid:
                return c
        return self.campaign

    def prepare_speech(self, accounts: list[Account], day: date,
                       progress: Callable[[int], None] | None = None) -> int:
        """Render, before dialing, everything the calls of `accounts` will play, through the same path the calls
        use (so a call never waits for TTS); returns the average message length in ms."""
        from ivr.callflow.context import CallContext, prompt_keys
        from ivr.speech.facts import facts_for_account

        total = 0
        for i, acc in enumerate(accounts):
            facts = facts_for_account(self.cfg, acc, day)
            ctx = CallContext.from_speech(self.cfg, self.speech, [facts], shared=self._prompts)
            total += ctx.message(acc.number).duration_ms
            for key in prompt_keys(self.cfg.callflow):
                ctx.prompt(key)
            if progress is not None:
                progress(i + 1)
            if i % 50 == 0:
                gevent.sleep(0)
        return total // max(1, len(accounts))

    def _write_result(self, flight: Flight, result: Any) -> None:
        """The call flow's facts, written at once (before the channel is even gone); when the channel is gone
        already, the finalize that follows writes them with the outcome."""
        flight.result = result
        now = clock_utc(self.clock)
        accounts = self._accounts_of(flight)
        detail = f"flow={result.outcome}" + (f"; {result.detail}" if getattr(result, "detail", "") else "")
        more = self.attempt_kind != "test" and (
            getattr(result, "callback", False) or getattr(result, "opted_out", False)
            or result.outcome in ("callback", "already_paid", "wrong_number", "opted_out"))
        facts = (bool(result.heard), int(result.heard_ms or 0), int(result.message_ms or 0),
                 (result.digits or "")[:32], detail[:400])
        if not more and self.attempt_kind != "test" and flight.released and not flight.finalized \
                and not flight.fenced:
            # the channel is gone already: finalize follows at once (session_done) and writes these facts with
            # the outcome, in the same statement (its owner check covers them)
            flight.facts = facts
            self._log_result(flight, accounts, result)
            return
        # one conditional UPDATE is atomic by itself; the writes that go with it need the transaction
        with database.atomic() if more else contextlib.nullcontext():
            # first statement: the owner check (raises LeaseLost, nothing of this call is written)
            leases.claim_row(flight.attempt_id, flight.node, flight.epoch, heard=facts[0], heard_ms=facts[1],
                             message_ms=facts[2], digits=facts[3], detail=facts[4])
            if self.attempt_kind == "test":
                log.info("event=test_call_result attempt=%s account=%s outcome=%s digits=%s; changes nothing of "
                         "the debtor's", flight.uuid, accounts[0].number, result.outcome, result.digits)
                return
            if getattr(result, "callback", False) or result.outcome == "callback":
                for acc in accounts:
                    CallbackRequest.create(account=acc.id, attempt=flight.attempt_id, e164=flight.e164,
                                           district=acc.district, created_at=now)
            if result.outcome == "already_paid":
                Account.update(claimed_paid_at=now).where(Account.id.in_([a.id for a in accounts])).execute()
            if result.outcome == "wrong_number":
                Phone.update(valid=False, invalid_reason="wrong number (key 9)", flagged_at=now).where(
                    Phone.account.in_([a.id for a in accounts]) & (Phone.e164 == flight.e164)).execute()
            if getattr(result, "opted_out", False) or result.outcome == "opted_out":
                # on the list before the channel is even gone: no other process dials this number again
                dnc.opt_out(flight.e164, attempt_uuid=flight.uuid, key=self.cfg.callflow.optout_key,
                            accounts=[a.number for a in accounts], at=now)
        self._log_result(flight, accounts, result)

    @staticmethod
    def _log_result(flight: Flight, accounts: list[Account], result: Any) -> None:
        if log.isEnabledFor(logging.INFO):
            log.info("event=call_result attempt=%s account=%s number=%s outcome=%s heard=%s heard_ms=%d "
                     "digits=%s", flight.uuid, accounts[0].number, shown_number(flight.e164), result.outcome,
                     result.heard, result.heard_ms, result.digits)

    # --- finalize / faults ---------------------------------------------------------------------------------------

    def _finalize(self, flight: Flight, outcome: str) -> None:
        """Outcome and campaign.record_result in one transaction (see tracker.py)."""
        per_account: dict[str, str] = {}
        if flight.result is not None:
            per_account = {k: getattr(v, "outcome", outcome) for k, v in
                           (getattr(flight.result, "accounts", None) or {}).items()}
        accounts = self._accounts_of(flight)
        entries = [(flight.entry, accounts[0]), *zip(flight.sharing_entries, accounts[1:], strict=False)]
        attempt = Attempt(id=flight.attempt_id, uuid=flight.uuid, e164=flight.e164)
        mine = (flight.attempt_id, flight.node, flight.epoch)
        with database.atomic():
            # the first statement is the owner check; the channel's end or the flow's facts ride along when they
            # were left for it (see tracker.py); a row whose state moved meanwhile gets the outcome alone
            n = 0
            if flight.ending is not None:
                n = SET_ENDED_OUTCOME("ended", outcome, *flight.ending, *mine, *ATTEMPT_IN_FLIGHT)
            elif flight.facts is not None:
                n = SET_FACTS_OUTCOME(outcome, *flight.facts, *mine)
            if n != 1 and SET_OUTCOME(outcome, *mine) != 1:
                raise leases.LeaseLost(f"attempt {flight.attempt_id} is no longer owned by "
                                       f"{flight.node}#{flight.epoch}")
            for entry, acc in entries:
                if entry is not None:
                    self.queue.record_result(entry, per_account.get(acc.number, outcome), flight.cause,
                                             self.clock, attempt)
        self.stats.outcomes[outcome] = self.stats.outcomes.get(outcome, 0) + 1
        log.info("event=attempt_done attempt=%s number=%s outcome=%s cause=%s", flight.uuid,
                 shown_number(flight.e164), outcome, flight.cause or "-")

    def _trunk_fault(self, flight: Flight, cause: str) -> None:
        self.stats.trunk_faults += 1
        if self.paused and self.pause_reason.startswith(cause):
            return
        hint = {"INVALID_GATEWAY": f"FreeSWITCH has no gateway '{self.cfg.dialing.gateway}': check "
                                   "dialing.gateway / dialing.dial_string in config.yaml and the sofia gateway "
                                   "(sofia status gateway)",
                "GATEWAY_DOWN": f"gateway '{self.cfg.dialing.gateway}' is down (not registered / unreachable): "
                                "check the SIP trunk (sofia status gateway), then resume"}.get(cause, cause)
        reason = f"{cause}: {hint}"
        log.error("event=trunk_fault cause=%s attempt=%s campaign paused: %s", cause, flight.uuid, hint)
        self.paused = True
        self.pause_reason = reason
        self._set_status("paused", reason)

    def _set_status(self, status: str, reason: str) -> None:
        for camp in self.campaigns or ([self.campaign] if self.campaign is not None else []):
            fields: dict[str, Any] = {"status": status, "status_reason": reason[:400]}
            if status == "running" and camp.started_at is None:
                fields["started_at"] = clock_utc(self.clock)
            if status in ("done", "stopped"):
                fields["finished_at"] = clock_utc(self.clock)
            Campaign.update(**fields).where(Campaign.id == camp.id).execute()
            for k, v in fields.items():
                setattr(camp, k, v)

    # --- commands ----------------------------------------------------------------------------------------------

    def _apply_command(self) -> None:
        cmd, at = self.pacer.command, self.pacer.command_at
        if (cmd, at) == self._last_command or not cmd:
            return
        first = self._last_command is None
        self._last_command = (cmd, at)
        if first and cmd in ("stop", "run", "resume") and at is not None and at < self._started_at:
            return  # a stop left over from an earlier run does not end this one before it begins
        if cmd == "pause" and not self.paused:
            self.paused, self.pause_reason = True, "paused by command"
            self._set_status("paused", self.pause_reason)
            log.warning("event=campaign_paused by=command in_flight=%d", len(self.tracker.flights))
        elif cmd in ("run", "resume") and self.paused:
            self.paused, self.pause_reason = False, ""
            self._set_status("running", "")
            log.warning("event=campaign_resumed by=command")
        elif cmd == "stop":
            self.stopping = True
            self._stopped_by_command = True
            self.paused = False
            log.warning("event=campaign_stopping by=command in_flight=%d", len(self.tracker.flights))

    # --- end of the evening ------------------------------------------------------------------------------------

    def _evening_over(self) -> bool:
        """Nothing left to call tonight in any of the evening's campaigns (each by its own windows)."""
        camps = self.campaigns or [self.campaign]
        return all(self._campaign_over(c) for c in camps)

    def _campaign_over(self, camp: Campaign | None) -> bool:
        """Nothing left to call tonight: nothing waiting, or the earliest waiting entry is due on a later local
        day (retry delays and closed windows push `not_before` to the next window), or every window is closed."""
        if camp is None:
            return True
        wake = self.queue.next_wakeup(camp)
        if wake is None:
            return True
        from ivr.campaign.windows import CallWindows

        cache = self.__dict__.setdefault("_windows_by", {})
        cfg = self.queue.cfg_for(camp.id) if hasattr(self.queue, "cfg_for") else self.cfg
        windows = cache.get(camp.id)
        if windows is None:
            windows = cache[camp.id] = CallWindows(cfg)
        day: date = camp.day
        tz = self.cfg.locale.timezone
        if windows.local_day(tz, wake) > day:
            return True
        now = self.clock.now()
        if windows.is_open(tz, now):
            return False
        return windows.local_day(tz, windows.next_open(tz, now)) > day

    def in_flight(self) -> int:
        return len(self.tracker.flights)

    def elapsed(self) -> timedelta:
        return timedelta(seconds=self.clock.monotonic() - self.stats.started_mono)


def _let_go(session: Any) -> None:
    """Our lease is lost: `exit` on a call's socket (FreeSWITCH ends the socket application; with plain linger it
    never would by itself) and close it, without hanging up a call that is no longer ours to end."""
    with contextlib.suppress(Exception):
        session.let_go()
