"""The debtor-protecting rules: caps counted in the debtor's local day / ISO week / month, presets, the
"may we call now" predicate and its explanation."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import factories
import pytest
from campaign_support import acc, new_number, retry

from ivr.campaign import rules
from ivr.campaign.windows import CallWindows
from ivr.ledger.models import Phone

KYIV = "Europe/Kyiv"


def U(*a) -> datetime:
    return datetime(*a, tzinfo=UTC)


def answered(a, at: datetime, **kw):
    return factories.attempt(None, a, at, "early_hangup", **kw)


def test_contact_limit_presets(cfg):
    assert rules.contact_limits(cfg) == rules.ContactLimits(0, 0, 0)  # off by default
    assert rules.contact_limits(retry(cfg, contact_caps="collection")) == rules.ContactLimits(1, 2, 8)
    custom = retry(cfg, contact_caps="custom", contacts_per_day=2, contacts_per_week=3, contacts_per_month=5)
    assert rules.contact_limits(custom) == rules.ContactLimits(2, 3, 5)


def test_local_day_lengths_across_dst():
    a, b = rules.day_range(KYIV, datetime(2026, 3, 29).date())
    assert b - a == timedelta(hours=23)
    a, b = rules.day_range(KYIV, datetime(2026, 10, 25).date())
    assert b - a == timedelta(hours=25)
    assert rules.day_range(KYIV, datetime(2026, 11, 23).date())[0] == datetime(2026, 11, 22, 22, 0)


def test_week_and_month_ranges_are_local():
    w0, w1 = rules.week_range(KYIV, datetime(2026, 11, 25).date())  # a Wednesday
    assert (w0, w1) == (datetime(2026, 11, 22, 22, 0), datetime(2026, 11, 29, 22, 0))  # Monday to Monday
    m0, m1 = rules.month_range(KYIV, datetime(2026, 3, 15).date())
    assert (m0, m1) == (datetime(2026, 2, 28, 22, 0), datetime(2026, 3, 31, 21, 0))  # April starts in summer time


def test_daily_attempt_cap_counts_the_debtors_local_day(db, cfg):
    cfg = retry(cfg, max_attempts_per_day=2)
    a = acc()
    factories.attempt(None, a, U(2026, 11, 23, 16, 0), "no_answer")
    factories.attempt(None, a, U(2026, 11, 23, 21, 30), "busy")  # 23:30 local: still Monday
    block = rules.cap_block(cfg, a.id, KYIV, U(2026, 11, 23, 21, 45))
    assert block is not None and "for the day" in block.reason
    assert block.until == U(2026, 11, 23, 22, 0)  # local midnight
    # 00:15 local on Tuesday: a new day
    assert rules.cap_block(cfg, a.id, KYIV, U(2026, 11, 23, 22, 15)) is None


def test_trunk_faults_do_not_count_but_shared_number_calls_do(db, cfg):
    cfg = retry(cfg, max_attempts_per_day=2)
    shared = new_number()
    a, b = acc(phones=[shared]), acc(phones=[shared])
    factories.attempt(None, a, U(2026, 11, 23, 16, 0), "congestion")
    factories.attempt(None, a, U(2026, 11, 23, 16, 5), "trunk_error")
    assert rules.cap_block(cfg, a.id, KYIV, U(2026, 11, 23, 17, 0)) is None
    factories.attempt(None, a, U(2026, 11, 23, 16, 10), "no_answer", e164=shared)
    factories.attempt(None, a, U(2026, 11, 23, 16, 40), "no_answer", e164=shared)
    # the calls were named on a's row, but b's message rode on the same number
    assert rules.cap_block(cfg, b.id, KYIV, U(2026, 11, 23, 17, 0)) is not None


def test_collection_preset_day_week_and_month(db, cfg):
    cfg = retry(cfg, contact_caps="collection", max_attempts_per_day=100)
    a = acc()
    answered(a, U(2026, 11, 23, 16, 0))  # Monday
    day = rules.cap_block(cfg, a.id, KYIV, U(2026, 11, 23, 17, 0))
    assert "for the day" in day.reason and day.until == U(2026, 11, 23, 22, 0)
    answered(a, U(2026, 11, 24, 16, 0))  # Tuesday: second contact this ISO week
    week = rules.cap_block(cfg, a.id, KYIV, U(2026, 11, 25, 16, 0))  # Wednesday
    assert "for the week" in week.reason and week.until == U(2026, 11, 29, 22, 0)


def test_collection_month_cap_of_eight(db, cfg):
    cfg = retry(cfg, contact_caps="collection", max_attempts_per_day=100)
    a = acc()
    # two contacts in each ISO week of November (8 in all), none this week
    for day in (3, 4, 10, 11, 17, 18, 24, 25):
        answered(a, U(2026, 11, day, 16, 0))
    at = U(2026, 11, 30, 16, 0)  # Monday 30th, a fresh ISO week
    block = rules.cap_block(cfg, a.id, KYIV, at)
    assert block is not None and "for the month" in block.reason and "8/8" in block.reason
    assert block.until == U(2026, 11, 30, 22, 0)  # 1 December, local midnight
    assert rules.cap_block(cfg, a.id, KYIV, U(2026, 11, 30, 22, 30)) is None


def test_custom_caps_and_off(db, cfg):
    a = acc()
    for h in (16, 17):
        answered(a, U(2026, 11, 23, h, 0))
    at = U(2026, 11, 23, 18, 0)
    assert rules.cap_block(retry(cfg, max_attempts_per_day=100), a.id, KYIV, at) is None  # caps off
    custom = retry(cfg, contact_caps="custom", contacts_per_day=3, max_attempts_per_day=100)
    assert rules.cap_block(custom, a.id, KYIV, at) is None
    custom = retry(cfg, contact_caps="custom", contacts_per_day=2, max_attempts_per_day=100)
    assert "(2/2)" in rules.cap_block(custom, a.id, KYIV, at).reason


def test_may_call_now_codes(db, cfg):
    w = CallWindows(cfg)
    open_at, closed_at = U(2026, 11, 23, 16, 30), U(2026, 11, 23, 10, 0)
    a = acc()
    assert rules.may_call_now(cfg, a, open_at, w).code == "ok"
    d = rules.may_call_now(cfg, a, closed_at, w)
    assert (d.code, d.final, d.not_before) == ("window", False, U(2026, 11, 23, 16, 0))
    assert rules.may_call_now(cfg, a, open_at, w, phones=[]).code == "no_number"
    a.claimed_paid_at = datetime(2026, 11, 23)
    assert rules.may_call_now(cfg, a, open_at, w).code == "said_paid"
    a.do_not_call = True
    d = rules.may_call_now(cfg, a, open_at, w)
    assert (d.code, d.final) == ("do_not_call", True)


def test_explain_names_the_day_and_the_reason(db, cfg):
    bg = cfg.replace(locale=dataclasses.replace(cfg.locale, country="BG", timezone="Europe/Sofia"),
                     dialing=dataclasses.replace(cfg.dialing, allowed_countries=["BG", "UA"]))  # acc() is in UA
    a = acc()
    lines = rules.explain(bg, a, U(2026, 3, 3, 6, 0))
    assert "holiday (Liberation Day)" in lines[0]
    assert "outside the calling window" in lines[1] and "09:00" in lines[1]


@pytest.mark.parametrize("index,expected", [(0, 0), (1, 2), (2, 2), (3, 0)])
def test_pick_phone_skips_flagged_and_wraps(db, index, expected):
    a = acc(phones=3)
    Phone.update(flagged_at=datetime(2026, 11, 1)).where(Phone.account == a, Phone.position == 1).execute()
    phones = rules.callable_phones(a.id)
    assert [p.position for p in phones] == [0, 2]
    assert rules.pick_phone(phones, index).position == expected
    assert rules.position_after(phones, 2) == 0 and rules.position_after(phones, 0) == 2
    assert rules.position_after([], 0) is None


def test_test_calls_count_against_no_cap(db, cfg):
    """`ivr call` to a staff phone with a debtor's message: neither an attempt nor a contact of that debtor."""
    cfg = retry(cfg, max_attempts_per_day=1, contact_caps="collection")
    a = acc()
    staff = "+380671234567"
    factories.attempt(None, a, U(2026, 11, 23, 16, 0), "already_paid", e164=staff, kind="test")
    factories.attempt(None, a, U(2026, 11, 23, 16, 5), "heard", e164=a.phones[0].e164, kind="test")
    assert rules.attempts_between(a.id, rules.account_numbers(a.id), U(2026, 11, 23, 0, 0).replace(tzinfo=None),
                                  U(2026, 11, 24, 0, 0).replace(tzinfo=None)) == 0
    assert rules.cap_block(cfg, a.id, KYIV, U(2026, 11, 23, 17, 0)) is None
    factories.attempt(None, a, U(2026, 11, 23, 16, 10), "heard")  # the same as a campaign call: counted
    assert rules.cap_block(cfg, a.id, KYIV, U(2026, 11, 23, 17, 0)) is not None


def test_caps_count_the_calls_about_the_same_matter_in_both_paths(db, cfg):
    """An evening of debt calls leaves an emergency outage notice free to go (and notices use up no debt call);
    installment reminders count with debt reminders. Call-backs and answering machines are no contact. The
    dialer's bulk read (`calls_concerning`) and the one-account read agree on all of it."""
    from ivr.campaign.kinds import config_for
    from ivr.ledger.models import Campaign

    day = U(2026, 11, 23, 14, 0).date()
    debt_camp = factories.campaign(day)
    plan_camp = Campaign.create(day=day, status="running", kind="installment", ref="plans")
    outage_camp = Campaign.create(day=day, status="running", kind="outage", ref="O1-v1-now")
    debt = retry(cfg, max_attempts_per_day=2, contact_caps="custom", contacts_per_day=1)
    outage = config_for(retry(cfg, max_attempts_per_day=2, contact_caps="custom", contacts_per_day=1), "outage",
                        emergency=True)
    a = acc()
    at = U(2026, 11, 23, 17, 0)

    def both(c) -> tuple[bool, bool]:
        numbers = [p.e164 for p in Phone.select().where(Phone.account == a.id)]
        bulk = rules.calls_concerning({a.id: numbers}, rules.caps_reach_back(c, KYIV, at))[a.id]
        return (rules.cap_block(c, a.id, KYIV, at) is None, rules.cap_block(c, a.id, KYIV, at, numbers, bulk) is None)

    factories.attempt(plan_camp, a, U(2026, 11, 23, 15, 0), "no_answer")
    factories.attempt(debt_camp, a, U(2026, 11, 23, 15, 30), "busy")
    assert both(debt) == (False, False)  # two collection calls today: the debt cap of 2 is reached
    assert both(outage) == (True, True)  # the outage notice counts outage calls only
    factories.attempt(outage_camp, a, U(2026, 11, 23, 16, 0), "machine", answered=True)
    factories.attempt(outage_camp, a, U(2026, 11, 23, 16, 5), "heard", kind="inbound")  # the debtor called back
    assert both(outage) == (True, True)  # one attempt counted; the machine and the call-back were no contact
    factories.attempt(outage_camp, a, U(2026, 11, 23, 16, 10), "heard")
    assert both(outage) == (False, False)  # now two attempts and one contact about the outage
