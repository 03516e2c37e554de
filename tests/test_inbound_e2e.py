"""Debtors who call back (issue 14 part 2): the simulator places an inbound call to the caller-ID number, which the
shipped dialplan sends to the dialer's call-flow socket; the dialer recognises the caller by number.
Same world as test_dialer_e2e (real dialer, queue, call flow, speech with a fake engine, simulated FreeSWITCH)."""

from __future__ import annotations

from datetime import UTC, date
from zoneinfo import ZoneInfo

import gevent
import pytest
from test_dialer_e2e import attempts_of, debtor, world  # noqa: F401  (world is a fixture)
from waiting import join, wait_until

from ivr.campaign import rules
from ivr.ledger.models import Attempt
from ivr.sim.script import CallBackPlan, Debtor

pytestmark = pytest.mark.slow
DID = "+380441234567"  # the caller-ID number the dialer calls from


def callback_attempts(acc):
    return [a for a in attempts_of(acc) if a.kind == "inbound"]


def test_debtor_who_hung_up_calls_back_and_hears_the_message(world):  # noqa: F811
    w = world(max_attempts_per_day=1)
    acc = debtor("+380501119001", Debtor.answer(hangup_after=1.0), w)
    d = w.run()
    assert [a.outcome for a in attempts_of(acc)] == ["early_hangup"]
    w.script.add("+380501119001", Debtor.listen())  # the same person, now listening
    host, port = d.socket_address
    w.sim.callback("+380501119001", DID, host, port)
    wait_until(lambda: [a.outcome for a in callback_attempts(acc)] in (["heard"],), "the callback's result")
    (cb,) = callback_attempts(acc)
    assert cb.heard and cb.state == "ended" and cb.e164 == "+380501119001" and cb.message_ms > 0
    # the callback is not an attempt against the outbound caps
    phones = [p.e164 for p in acc.phones]
    assert rules.attempts_between(acc.id, phones, cb.created_at.replace(hour=0), cb.created_at.replace(hour=23)) == 1


def test_unknown_caller_is_sent_to_the_office(world):  # noqa: F811
    w = world()
    d = w.dialer()
    host, port = d.socket_address
    seen = []
    real = w.sim.publish

    def spy(ev):
        if ev.name == "CHANNEL_EXECUTE" and ev.get("Application") == "transfer":
            seen.append(ev.get("Application-Data"))
        real(ev)

    w.sim.publish = spy
    w.sim.callback("+380501119999", DID, host, port)
    wait_until(lambda: seen, "the transfer to the office")
    assert seen == [w.cfg.inbound.fallback_transfer]
    assert Attempt.select().count() == 0  # nobody's call: nothing written


def test_caller_number_is_validated_before_any_lookup(world):  # noqa: F811
    from ivr.dialer.inbound import caller_e164

    class S:
        def __init__(self, number):
            self.channel_data = {"Caller-Caller-ID-Number": number}

    assert caller_e164(S("+380501119001"), "UA") == "+380501119001"
    assert caller_e164(S("0501119001"), "UA") == "+380501119001"
    for bad in ("", "anonymous", "123'; DROP", "+38050\n111", "1" * 30, "sip:evil@x"):
        assert caller_e164(S(bad), "UA") == ""


def test_scripted_debtor_calls_back_at_its_time(world):  # noqa: F811
    w = world(max_attempts_per_day=1)
    acc = debtor("+380501119002", Debtor.no_answer(), w)  # misses the call; the same phone calls back and listens
    d = w.dialer()
    w.sim.schedule_callback(CallBackPlan("+380501119002", "18:05", "Europe/Kyiv"))
    join(gevent.spawn(d.run, w.campaign()), "the campaign to finish")
    wait_until(lambda: [a.outcome for a in callback_attempts(acc)] == ["heard"], "the 18:05 callback's result")
    assert [a.outcome for a in attempts_of(acc) if a.kind == "campaign"] == ["no_answer"]
    (cb,) = callback_attempts(acc)
    local = cb.created_at.replace(tzinfo=UTC).astimezone(ZoneInfo("Europe/Kyiv"))
    assert (local.date(), local.hour, local.minute) == (date(2026, 11, 23), 18, 5)
