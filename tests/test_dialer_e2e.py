"""End to end: the real dialer, queue, call flow, speech (with a fake TTS engine) and event-socket client against
the simulated FreeSWITCH, on one fast ScaledClock shared by both. Small campaigns of a few accounts each.

The evening is Monday 2026-11-23, Europe/Kyiv (window 18:00-21:00); the clock starts a little before 18:00.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from decimal import Decimal

import factories
import gevent
import pytest
from fault_support import DAY, KYIV, SimWorld, local
from speech_fakes import FakeEngine
from waiting import join, wait_until

from ivr.clock import ScaledClock
from ivr.dialer.dialer import Dialer
from ivr.ledger.models import Account, Attempt, CallbackRequest, Campaign, Payment, Phone, QueueEntry
from ivr.sim.script import Debtor, Script
from ivr.sim.server import SimServer
from ivr.sim.trunk import Trunk
from ivr.speech import Speech
from ivr.switch.esl import EslClient

pytestmark = pytest.mark.slow

SCALE = 100.0


def as_local(naive_utc: datetime) -> datetime:
    return naive_utc.replace(tzinfo=UTC).astimezone(KYIV)


class World(SimWorld):
    """One simulator + dialer set-up over the test database."""

    def __init__(self, cfg, *, start: datetime | None = None, channels: int = 10, cps: float = 20.0,
                 gateway: str = "trunk", scale: float = SCALE, delays: dict[str, int] | None = None,
                 sessions_per_second: float | None = None, pacing: dict | None = None, **retry) -> None:
        super().__init__()
        self.clock = ScaledClock(start=start or local(17, 59, 50), scale=scale)
        # at x100 a call-second is 10 real ms: a loaded machine can stretch a call past the 300-s listen cap and
        # the dialer's 300-s call limit, so both are an hour here (they are not what these tests check)
        self.script = Script(default=Debtor.listen(), listen_cap_s=3600.0)
        self.sim = SimServer(clock=self.clock, script=self.script, trunk=Trunk(gateways={"trunk"},
                                                                          sessions_per_second=sessions_per_second)
                             ).start()
        self.cfg = cfg.replace(
            pacing=dataclasses.replace(cfg.pacing, channels=channels, cps=cps, **(pacing or {})),
            dialing=dataclasses.replace(cfg.dialing, gateway=gateway, max_call_seconds=3600),
            retry=dataclasses.replace(cfg.retry, **{"early_hangup_pause_seconds": 60, **retry},
                                      delays={**cfg.retry.delays, "USER_BUSY": 120, **(delays or {})}),
            freeswitch=dataclasses.replace(cfg.freeswitch, port=self.sim.port, command_timeout=5.0,
                                           reconnect_max_delay=1.0))
        self.speech = Speech(self.cfg, engine=FakeEngine())
        self.samples: list[int] = []
        self.overlaps: list[str] = []
        self._sampler = gevent.spawn(self._sample)
        real_originate = self.sim.originate

        def counted(args: str, result_cb) -> None:  # the exact count right after each new channel
            real_originate(args, result_cb)
            self.samples.append(sum(1 for c in self.sim.calls.values() if not c.hung))

        self.sim.originate = counted

    def _sample(self) -> None:
        """From the simulator's side: channels up (not hung up) at once, and no number in two live calls."""
        while True:
            calls = [c for c in self.sim.calls.values() if not c.hung]
            self.samples.append(len(calls))
            numbers = [c.chan.number for c in calls]
            dup = {n for n in numbers if numbers.count(n) > 1}
            if dup:
                self.overlaps.extend(dup)
            gevent.sleep(0.002)

    def dialer(self, node: str = "node-a") -> Dialer:
        esl = EslClient("127.0.0.1", self.sim.port, "ClueCon", 5.0, 1.0)
        esl.start()
        d = Dialer(self.cfg, esl, self.clock, self.speech, node=node, outbound_port=0)
        d.start()
        return self._keep(d, esl)

    def random_debtors(self, numbers: list[str], seed: int, message_s: float) -> None:
        """An account per number, each debtor answering (or not) as the seeded random mix has it."""
        mix = Script.random_mix(numbers, seed=seed, message_s=message_s)
        for n in numbers:
            factories.account(phone=n)
            self.script.add(n, mix.for_number(n))

    def run(self, node: str = "node-a") -> Dialer:
        d = self.dialer(node)
        join(gevent.spawn(d.run, self.campaign()), "the campaign to finish")
        return d


@pytest.fixture
def world(cfg, db):
    made: list[World] = []

    def make(**kw) -> World:
        w = World(cfg, **kw)
        made.append(w)
        return w

    yield make
    for w in made:
        w.close()


def debtor(number: str, behaviour: Debtor | None, w: World, **kw) -> Account:
    acc = factories.account(phone=number, **kw)
    if behaviour is not None:
        w.script.add(number, behaviour)
    return acc


def press_in_menu(w: World, acc: Account, digit: str) -> None:
    """The debtor presses `digit` when the menu starts, as a person reacting to it would. Not at a call-second:
    at x100 a few real milliseconds of scheduling delay on a busy machine are seconds of call time, enough to
    move a timed key out of the menu."""
    w.script.add(acc.phones[0].e164, Debtor.answer(menu_press=digit))


def attempts_of(acc: Account) -> list[Attempt]:
    return list(Attempt.select().where(Attempt.account == acc).order_by(Attempt.id))


def entry_of(acc: Account) -> QueueEntry:
    return QueueEntry.get(QueueEntry.account == acc)


def test_heard_pay_now_callback_and_paid_debtor_not_called(world):
    w = world()
    heard = debtor("+380501110001", Debtor.listen(ring=1), w)
    pay = debtor("+380501110002", None, w)
    cb = debtor("+380501110003", None, w, district="Podil")
    press_in_menu(w, pay, "1")
    press_in_menu(w, cb, "2")
    paid = debtor("+380501110004", Debtor.listen(), w)
    Payment.create(account=paid, reference="P-1", amount=Decimal("500.00"), paid_on=date(2026, 11, 22))
    w.run()

    a = attempts_of(heard)
    assert [x.outcome for x in a] == ["heard"] and a[0].heard and a[0].heard_ms >= 0.9 * a[0].message_ms > 0
    assert a[0].state == "ended" and a[0].hangup_cause == "NORMAL_CLEARING" and a[0].billsec_s > 0
    assert entry_of(heard).state == "done"
    assert [x.outcome for x in attempts_of(pay)] == ["pay_now"] and "1" in attempts_of(pay)[0].digits
    assert [x.outcome for x in attempts_of(cb)] == ["callback"]
    req = CallbackRequest.get(CallbackRequest.account == cb)
    assert (req.e164, req.district) == ("+380501110003", "Podil")
    assert attempts_of(paid) == []  # paid since the balance: never called
    assert Attempt.select().where(Attempt.outcome == "").count() == 0
    for x in Attempt.select():  # no call before the window opened (clock started 17:59:50)
        assert as_local(x.created_at).time() >= datetime(2026, 1, 1, 18, 0).time()


def test_early_hangup_goes_to_front_and_is_called_again(world):
    w = world()
    quitter = debtor("+380501120001", Debtor.answer(hangup_after=1.0), w)
    debtor("+380501120002", Debtor.listen(), w)
    d = w.dialer()
    camp = w.campaign()
    g = gevent.spawn(d.run, camp)
    wait_until(lambda: attempts_of(quitter) and attempts_of(quitter)[0].outcome != "", "the first call's result")
    first = attempts_of(quitter)[0]
    assert first.outcome == "early_hangup" and not first.heard
    e = entry_of(quitter)
    assert e.priority == -1  # the front of the queue
    # this debtor answers then listens on the next call
    w.script.add("+380501120001", Debtor.listen())
    join(g, "the evening to finish")
    a = attempts_of(quitter)
    assert [x.outcome for x in a] == ["early_hangup", "heard"]
    gap = (a[1].created_at - a[0].ended_at).total_seconds()
    assert gap >= 55  # retry.early_hangup_pause_seconds = 60 (simulated), minus clock granularity
    assert entry_of(quitter).state == "done"


def test_busy_retried_later_and_invalid_never_retried(world):
    w = world()
    busy = debtor("+380501130001", Debtor.busy(), w)
    bad = debtor("+380501130002", Debtor.unallocated(), w)
    d = w.dialer()
    g = gevent.spawn(d.run, w.campaign())
    wait_until(lambda: len(attempts_of(busy)) >= 2 and attempts_of(busy)[1].outcome != "", "the second busy")
    w.script.add("+380501130001", Debtor.listen())
    join(g, "the evening to finish")
    b = attempts_of(busy)
    assert [x.outcome for x in b][:2] == ["busy", "busy"] and b[-1].outcome == "heard"
    assert (b[1].created_at - b[0].ended_at).total_seconds() >= 115  # USER_BUSY retry delay 120 s
    i = attempts_of(bad)
    assert [x.outcome for x in i] == ["invalid_number"] and i[0].hangup_cause == "UNALLOCATED_NUMBER"
    assert Phone.get(Phone.account == bad).valid is False
    assert entry_of(bad).state == "given_up"


def test_window_respected_and_none_outside(world):
    w = world(start=local(17, 57))
    acc = debtor("+380501140001", Debtor.listen(), w)
    w.run()
    a = attempts_of(acc)
    assert len(a) == 1 and as_local(a[0].created_at) >= local(18, 0)
    # evening over: a campaign started at 21:00:05 calls nobody and ends
    late = world(start=local(21, 0, 5))
    acc2 = debtor("+380501140002", Debtor.listen(), late)
    late.run()
    assert attempts_of(acc2) == []
    assert entry_of(acc2).state == "waiting"  # carried over to the next evening


def cfg_causes() -> list[str]:
    from ivr.config import RetryConfig

    return list(RetryConfig().delays)


def test_concurrency_cap_never_exceeded_under_random_timings(world):
    # short retry delays and two attempts a day keep the evening short; the timings stay random
    w = world(channels=4, cps=50.0, scale=200.0, delays={c: 30 for c in cfg_causes()}, default_delay=30,
              max_attempts_per_day=2)
    numbers = [f"+38050115{i:04d}" for i in range(40)]
    w.random_debtors(numbers, seed=11, message_s=4.0)
    d = w.run()
    assert d.stats.placed >= 40
    assert max(w.samples) <= 4
    assert max(w.samples) >= 3  # the cap was actually reached, so the check means something
    assert not w.overlaps
    assert Attempt.select().where(Attempt.outcome == "").count() == 0


def test_switch_rate_refusals_are_retried_at_once_and_never_counted(world):
    """The switch refuses sessions past its rate before any channel exists (DESTINATION_OUT_OF_ORDER /
    NORMAL_TEMPORARY_FAILURE): those calls go back at their place, uncounted, while the dialer slows down. With
    one attempt a day allowed and the 600 s retry delays of those causes, everybody still hears the message
    this evening only if no refusal was counted or delayed."""
    # the burst that slows the rate down is counted on the evening's clock: at x100 a 10 s window is 0.1 real s,
    # which a loaded machine's spread-out refusals may never fill; an hour's window counts them all
    w = world(channels=20, cps=40.0, sessions_per_second=4, max_attempts_per_day=1, max_attempts_per_campaign=1,
              pacing={"congestion_window_seconds": 3600.0})
    accounts = [debtor(f"+38050118{i:04d}", Debtor.listen(), w) for i in range(25)]
    d = w.run()
    refused = Attempt.select().where(Attempt.outcome == "rate_limited")
    assert refused.count() > 0  # the switch did refuse, so the check means something
    assert all(x.state == "ended" and x.hangup_cause in ("DESTINATION_OUT_OF_ORDER", "NORMAL_TEMPORARY_FAILURE")
               for x in refused)
    assert d.pacer.slowdowns >= 1  # and the rate backed off
    for acc in accounts:
        e = entry_of(acc)
        assert (e.state, e.attempts) == ("done", 1), (acc.number, [x.outcome for x in attempts_of(acc)])
    assert not w.overlaps


def test_invalid_gateway_pauses_campaign(world):
    w = world(gateway="nosuchgw")
    acc = debtor("+380501160001", Debtor.listen(), w)
    d = w.dialer()
    camp = w.campaign()
    turns = [0]
    d.on_tick = lambda _d: turns.__setitem__(0, turns[0] + 1)
    g = gevent.spawn(d.run, camp)
    wait_until(lambda: Campaign.get_by_id(camp.id).status == "paused", "the campaign to pause")
    c = Campaign.get_by_id(camp.id)
    assert c.status_reason.startswith("INVALID_GATEWAY") and "nosuchgw" in c.status_reason
    seen = turns[0]  # a few turns of the loop while paused: a dialer that went on would dial again in them
    wait_until(lambda: turns[0] >= seen + 3, "three more turns of the paused dialer loop")
    e = entry_of(acc)
    assert e.attempts == 0 and e.state == "waiting"  # a trunk fault is not an attempt on the debtor
    assert all(x.outcome == "trunk_error" for x in attempts_of(acc))
    assert len(attempts_of(acc)) == 1  # and it stopped dialing
    d.stop()
    join(g, "the dialer to stop")


def test_crash_and_restart_loses_nothing_and_calls_nobody_twice(world):
    w = world(channels=6, cps=50.0)
    accounts = [debtor(f"+38050117{i:04d}", Debtor.listen(), w) for i in range(12)]
    first = w.dialer("node-a")
    camp = w.campaign()
    g = gevent.spawn(first.run, camp)
    wait_until(lambda: Attempt.select().where(Attempt.outcome != "").count() >= 3 and first.tracker.flights,
               "some calls finished, some in the middle of their message")
    done_before = {a.id: a.outcome for a in Attempt.select().where(Attempt.outcome != "")}
    in_flight = [f.uuid for f in first.tracker.flights.values()]
    assert in_flight
    # the crash: every greenlet of the dialer dies at once, its sockets close
    g.kill()
    first.stop()
    w.esls[0].stop()
    second = w.dialer("node-a")  # the same node restarted
    g2 = gevent.spawn(second.run, Campaign.get_by_id(camp.id))
    join(g2, "the restarted dialer to finish the evening")
    for aid, outcome in done_before.items():  # results written before the crash are intact
        assert Attempt.get_by_id(aid).outcome == outcome
    assert Attempt.select().where(Attempt.outcome == "").count() == 0
    for uuid in in_flight:  # calls cut by the crash were settled, not forgotten
        assert Attempt.get(Attempt.uuid == uuid).state in ("ended", "unknown")
    for acc in accounts:  # everybody heard the message in the end
        assert entry_of(acc).state == "done", (acc.number, [x.outcome for x in attempts_of(acc)])
    assert not w.overlaps  # nobody was called twice at once (checked from the simulator's side)
    assert max(w.samples) <= 6


def test_ivr_call_places_one_staff_call(world):
    """`ivr call ACCOUNT --to NUMBER`: that account's message to another phone, outside any campaign/window."""
    from ivr.dialer.single import place_test_call

    w = world(start=local(23, 30))  # outside the window: a staff test call is not a campaign call
    acc = debtor("+380501180001", None, w)
    w.script.add("+380671234567", Debtor.listen())
    esl = EslClient("127.0.0.1", w.sim.port, "ClueCon", 5.0, 1.0)
    esl.start()
    w.esls.append(esl)
    att = place_test_call(w.cfg, esl, w.clock, w.speech, acc, "+380671234567", outbound_port=0)
    assert att.e164 == "+380671234567" and att.account_id == acc.id and att.campaign_id is None
    assert att.outcome == "heard" and att.heard and att.kind == "test"
    assert attempts_of(acc) == [att]


def test_a_test_call_leaves_the_debtors_caps_and_outcomes_untouched(world):
    """Staff try a debtor's message on their phone before the evening and press 3 ("already paid") and 2: the
    debtor is still eligible, has no callback request, and is called that evening although one attempt a day and
    one answered contact a day are allowed."""
    from ivr.campaign import rules
    from ivr.dialer.single import place_test_call
    from ivr.ledger import eligibility

    w = world(max_attempts_per_day=1, contact_caps="collection")
    acc = debtor("+380501190001", Debtor.listen(), w)
    staff = "+380671234567"
    esl = EslClient("127.0.0.1", w.sim.port, "ClueCon", 5.0, 1.0)
    esl.start()
    w.esls.append(esl)
    w.dialer().prepare_speech([acc], DAY)  # as `ivr call` users would hear it, without TTS pauses at x100
    outcomes = []
    for key in ("3", "2"):
        w.script.add(staff, Debtor.answer(menu_press=key))  # as press_in_menu does, for the staff phone
        att = place_test_call(w.cfg, esl, w.clock, w.speech, acc, staff, outbound_port=0)
        outcomes.append(att.outcome)
        assert att.kind == "test" and att.answered_at is not None
    assert outcomes == ["already_paid", "callback"]  # the flow ran for real
    assert Account.get_by_id(acc.id).claimed_paid_at is None
    assert CallbackRequest.select().count() == 0
    assert eligibility.check_account(w.cfg, acc, DAY).eligible
    assert rules.cap_block(w.cfg, acc.id, "Europe/Kyiv", w.clock.now()) is None
    w.run()
    real = [a for a in attempts_of(acc) if a.kind == "campaign"]
    assert [a.outcome for a in real] == ["heard"] and real[0].e164 == "+380501190001"
    assert entry_of(acc).state == "done" and entry_of(acc).attempts == 1


def test_opt_out_key_lists_the_number_and_it_is_never_dialled_again(world):
    """The debtor presses 8 in the menu: confirmed to them, the number is on the do-not-call list at once (actor
    debtor:key), the evening is done for the account, and a later account holding the same number is not dialled."""
    from ivr.ledger import dnc, eligibility
    from ivr.ledger.models import AuditEvent, DncEntry

    w = world()
    number = "+380501200001"
    acc = debtor(number, None, w)
    other = debtor("+380501200002", Debtor.listen(), w)
    press_in_menu(w, acc, "8")
    w.run()
    (att,) = attempts_of(acc)
    assert att.outcome == "opted_out" and "8" in att.digits and att.kind == "campaign"
    assert entry_of(acc).state == "done" and entry_of(acc).outcome == "opted_out"
    entry = DncEntry.get(DncEntry.value == number)
    assert (entry.kind, entry.added_by, entry.removed_at) == ("number", "debtor:key", None)
    assert att.uuid in entry.source and acc.number in entry.source
    ev = AuditEvent.get(AuditEvent.action == "dnc.add")
    assert (ev.actor, ev.target) == ("debtor:key", number)
    assert [x.outcome for x in attempts_of(other)] == ["heard"]

    # later that evening billing adds another account on the same number: it is excluded, and nobody dials it
    w.script.add(number, Debtor.listen())
    family = debtor(number, None, w)
    v = eligibility.check_account(w.cfg, family, DAY)
    assert not v.eligible and any("every number on the do-not-call list" in r for r in v.reasons)
    assert dnc.listed_numbers([number], DAY)
    w.run()
    assert attempts_of(family) == [] and len(attempts_of(acc)) == 1
    assert Attempt.select().where(Attempt.e164 == number).count() == 1  # rows are written before any originate


def test_event_socket_drop_pauses_dialing_then_reconciles(world):
    """The inbound connection drops mid-campaign: no call starts while it is down; after the reconnect the
    calls in flight are reconciled and the evening finishes with every attempt settled."""
    w = world(channels=3, cps=20.0)
    accounts = [debtor(f"+38050119{i:04d}", Debtor.listen(), w) for i in range(8)]
    d = w.dialer()
    g = gevent.spawn(d.run, w.campaign())
    wait_until(lambda: Attempt.select().count() >= 3, "three calls placed")
    states: list[str] = []
    d.esl.on_state(states.append)
    w.sim.drop_inbound_connections()
    wait_until(lambda: not d.esl_connected, "the dialer to see the connection drop", step=0.001)
    placed_when_down = d.stats.placed

    def back() -> bool:
        assert d.stats.placed == placed_when_down  # nothing dialed while the socket is down
        return d.esl_connected

    wait_until(back, "the event socket to reconnect", step=0.001)
    join(g, "the evening to finish after the reconnect")
    assert "disconnected" in states or "connecting" in states
    assert Attempt.select().where(Attempt.outcome == "").count() == 0
    for acc in accounts:
        assert entry_of(acc).state == "done", [x.outcome for x in attempts_of(acc)]
    assert not w.overlaps and max(w.samples) <= 3
