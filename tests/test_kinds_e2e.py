"""End to end: an emergency outage notice and the debt evening share one trunk cap, through the real dialer,
queue, call flow and speech (fake TTS) against the simulated FreeSWITCH (the set-up of test_dialer_e2e).

Monday 2026-11-23, Europe/Kyiv: the debt window opens at 18:00, the emergency windows (08:00-22:00) are open."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime

import factories
import gevent
import pytest
from test_dialer_e2e import World, as_local, local
from waiting import join, wait_until

from ivr.campaign import outages
from ivr.campaign.evening import prerender, start_evening
from ivr.ledger.models import Account, Attempt, Campaign, Outage, QueueEntry, SupplyLink
from ivr.sim.script import Debtor

pytestmark = pytest.mark.slow

DAY = date(2026, 11, 23)


@pytest.fixture
def world(cfg, db):
    made: list[World] = []

    def make(outage: dict | None = None, **kw) -> World:
        base = cfg.replace(outage=dataclasses.replace(cfg.outage, **outage)) if outage else cfg
        w = World(base, **kw)
        made.append(w)
        return w

    yield make
    for w in made:
        w.close()


def person(w: World, number: str, point: str | None = None, debt: str | None = "500.00") -> Account:
    acc = factories.account(phone=number, debt=debt, address=f"{number[-4:]} Shevchenko Street")
    w.script.add(number, Debtor.listen())
    if point:
        SupplyLink.create(account=acc, point=point)
    return acc


def evening(w: World) -> list[Campaign]:
    camps = start_evening(w.cfg, DAY, w.clock)
    d = w.dialers[-1]
    d.prepare_speech(list(Account.select()), DAY)
    prerender(w.cfg, w.speech, camps)
    return camps


def test_emergency_outage_is_served_first_on_the_shared_cap_and_nobody_is_called_twice_at_once(world):
    w = world(channels=2, start=local(17, 59, 55))
    out = [person(w, f"+38050333000{i}", "F-7", debt=None) for i in range(4)]  # owe nothing: outage only
    debtors = [person(w, f"+38050444000{i}") for i in range(4)]
    both = person(w, "+380505550001", "F-7")  # owes AND is fed from the feeder: two messages, never at once
    life = person(w, "+380505550002", "F-7", debt=None)
    life.life_support = True
    life.save()
    outages.add(["F-7"], local(17, 30), local(23, 0), "emergency", reason="cable damage", actor="cli:test")
    d = w.dialer()
    camps = evening(w)
    assert [c.kind for c in camps] == ["outage", "debt"]
    join(gevent.spawn(d.run, camps), "the evening to finish")

    outage_camp, debt_camp = camps
    notice = [a for a in Attempt.select().where(Attempt.campaign == outage_camp.id).order_by(Attempt.id)]
    debt = [a for a in Attempt.select().where(Attempt.campaign == debt_camp.id).order_by(Attempt.id)]
    assert {a.account_id for a in notice} == {x.id for x in [*out, both]}
    assert {a.account_id for a in debt} == {x.id for x in [*debtors, both]}
    assert all(a.outcome == "heard" and a.heard for a in notice + debt)
    # priority: every notice was placed before the first debt call (the cap was shared, not split)
    assert max(a.created_at for a in notice) <= min(a.created_at for a in debt)
    assert min(as_local(a.created_at).time() for a in debt) >= datetime(2026, 1, 1, 18, 0).time()
    # the cap held for both together; nobody (and no number) was in two calls at once
    assert max(w.samples) <= 2 and not w.overlaps
    assert Attempt.select().where(Attempt.account == life).count() == 0  # life support: never the robot
    assert {e.state for e in QueueEntry.select()} == {"done"}
    assert Campaign.get_by_id(outage_camp.id).status == "done" == Campaign.get_by_id(debt_camp.id).status
    from ivr.report import text_summary

    summary = text_summary(w.cfg, DAY)  # heard tracking of the notice in the morning summary, beside the debt
    assert f"emergency outage O{outage_camp.outage_id} notice (O{outage_camp.outage_id}-v1-now): audience 5, called 5, " \
           "heard 5, not heard yet 0, given up 0" in summary


def test_who_hung_up_on_an_outage_notice_calls_back_and_hears_that_notice(world):
    w = world(outage={"max_attempts_per_day": 1}, start=local(18, 0))
    acc = person(w, "+380506660001", "F-8", debt=None)
    w.script.add("+380506660001", Debtor.answer(hangup_after=1.0))
    outages.add(["F-8"], local(17, 0), local(23, 0), "emergency", actor="cli:test")
    d = w.dialer()
    camps = evening(w)
    join(gevent.spawn(d.run, camps), "the evening to finish")
    [first] = Attempt.select().where(Attempt.account == acc)
    assert first.outcome == "early_hangup" and first.campaign_id == camps[0].id
    w.script.add("+380506660001", Debtor.listen())
    host, port = d.socket_address
    w.sim.callback("+380506660001", "+380441234567", host, port)
    wait_until(lambda: Attempt.select().where(Attempt.account == acc, Attempt.kind == "inbound",
                                              Attempt.outcome == "heard").exists(), "the callback heard")
    cb = Attempt.get(Attempt.account == acc, Attempt.kind == "inbound")
    from ivr.campaign import messages

    notice_ms = messages.context(w.cfg, w.speech, camps[0], [acc], DAY).message(acc.number).duration_ms
    assert cb.campaign_id == camps[0].id and cb.message_ms == notice_ms > 0  # the notice, not a debt text
    # told now: not called about this outage again
    assert outages.audiences(w.cfg, Outage.get_by_id(camps[0].outage_id), DAY) == {camps[0].ref: {}}


def test_an_outage_call_offers_only_its_menu_keys_and_an_installment_call_its_own(world, tmp_path):
    """outage.menu [2, 0]: key 1 (pay now) is not accepted on an outage call, key 2 asks for a callback;
    installment.menu [1, 2, 3, 0]: key 1 transfers to the payment service."""
    from ivr.campaign import installments
    from ivr.ledger.models import CallbackRequest

    w = world(channels=3, start=local(18, 0))
    presses_one = person(w, "+380507770001", "F-9", debt=None)
    presses_two = person(w, "+380507770002", "F-9", debt=None)
    w.script.add("+380507770001", Debtor.answer(menu_press="1"))
    w.script.add("+380507770002", Debtor.answer(menu_press="2"))
    payer = person(w, "+380507770003", debt="900.00")
    w.script.add("+380507770003", Debtor.answer(menu_press="1"))
    plans = tmp_path / "plans.csv"
    plans.write_text(f"plan,account,due_date,amount,starts_on\nP-1,{payer.number},2026-11-26,300,2026-10-01\n",
                     encoding="utf-8")
    assert installments.import_plans(w.cfg, plans, "cli:test").loaded == 1
    outages.add(["F-9"], local(17, 0), local(23, 0), "emergency", actor="cli:test")
    d = w.dialer()
    camps = evening(w)
    assert [(c.kind, c.ref) for c in camps][:2] == [("outage", camps[0].ref), ("installment", "remind")]
    join(gevent.spawn(d.run, camps), "the evening to finish")

    def outcomes(acc, camp):
        return [a.outcome for a in Attempt.select().where(Attempt.account == acc, Attempt.campaign == camp.id)]

    assert outcomes(presses_one, camps[0]) == ["heard"]  # 1 is no key of the outage menu: no transfer
    assert outcomes(presses_two, camps[0]) == ["callback"]
    assert CallbackRequest.select().where(CallbackRequest.account == presses_two).count() == 1
    assert outcomes(payer, camps[1]) == ["pay_now"]  # the installment menu has 1: pay now


def test_an_emergency_entered_while_the_evening_runs_joins_it_first(world, monkeypatch):
    from ivr.dialer import dialer as dialer_mod

    monkeypatch.setattr(dialer_mod, "CAMPAIGN_REFRESH_REAL_SECONDS", 0.05)
    w = world(channels=1, start=local(18, 0))
    debtors = [person(w, f"+38050888000{i}") for i in range(4)]
    fed = person(w, "+380508889999", "F-5", debt=None)
    d = w.dialer()
    camps = evening(w)
    assert [c.kind for c in camps] == ["debt"]
    d.campaign_source = lambda: outages.due_campaigns(w.cfg, DAY, w.clock)
    g = gevent.spawn(d.run, camps)
    wait_until(lambda: Attempt.select().where(Attempt.outcome != "").count() >= 1, "the first debt call to end")
    outages.add(["F-5"], local(18, 0), local(23, 0), "emergency", actor="cli:test")
    join(g, "the evening to finish")
    [notice] = Attempt.select().where(Attempt.account == fed)
    debt = list(Attempt.select().where(Attempt.account.in_([x.id for x in debtors])).order_by(Attempt.id))
    assert notice.outcome == "heard" and Campaign.get_by_id(notice.campaign_id).kind == "outage"
    assert len(debt) == 4 and all(a.outcome == "heard" for a in debt)
    # it took the next free slot: placed before at least the last debt call (cap 1, four debt calls)
    assert notice.created_at < debt[-1].created_at
    assert max(w.samples) <= 1 and not w.overlaps
