"""Installment reminders (ivr.campaign.installments): the plans import and its bad rows, who is reminded of which
due (installment.remind_days_before) and who is called about a missed one (missed_days_after), the amount and
date said in words, the debt rule (a plan kept to: no debt call; a due missed: back), and DST-exact windows."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from decimal import Decimal

import factories
import pytest
from speech_fakes import FakeEngine

from ivr.campaign import installments, kinds
from ivr.campaign.windows import CallWindows
from ivr.clock import ManualClock
from ivr.ledger import eligibility
from ivr.ledger.models import AuditEvent, InstallmentDue, InstallmentPlan, Payment
from ivr.speech import Speech

ACTOR = "cli:test"


def plans_file(tmp_path, body: str, encoding: str = "utf-8"):
    f = tmp_path / "plans.csv"
    f.write_text(body, encoding=encoding)
    return f


@pytest.fixture
def planned(cfg, db, tmp_path):
    """Account 2001 owes 1500, on a plan of three 500 dues from 2026-12-05, started 2026-11-01."""
    acc = factories.account("2001", debt="1500.00")
    f = plans_file(tmp_path, "plan,account,due_date,amount,starts_on\n"
                             "PL-1,2001,2026-12-05,500.00,2026-11-01\n"
                             "PL-1,2001,2027-01-05,500.00,2026-11-01\n"
                             "PL-1,2001,2027-02-05,500.00,2026-11-01\n")
    rep = installments.import_plans(cfg, f, ACTOR)
    assert (rep.loaded, rep.rejected) == (1, [])
    return acc


def test_plans_import_rejects_bad_rows_by_line_and_reimports_nothing(cfg, db, tmp_path):
    factories.account("2001")
    factories.account("2002")
    body = ("plan;Account;Due_Date;Amount\n"
            "PL-1;2001;05.12.2026;500,00\n"
            "PL-1;2001;05.12.2026;500,00\n"
            "PL-1;2002;05.01.2027;500,00\n"
            "PL-2;9999;05.01.2027;100,00\n"
            "PL-3;2002;31.02.2027;100,00\n"
            "PL-3;2002;05.03.2027;-5\n"
            "PL-3;2002;05.04.2027;250,50\n")
    f = plans_file(tmp_path, body, "cp1251")
    rep = installments.import_plans(cfg, f, ACTOR)
    assert [r.line for r in rep.rejected] == [3, 4, 5, 6, 7]
    reasons = [r.reason for r in rep.rejected]
    assert "lists 2026-12-05 twice" in reasons[0] and "is for account 2001 (line 2), not 2002" in reasons[1]
    assert "not in the ledger" in reasons[2] and "does not exist" in reasons[3] and "above zero" in reasons[4]
    assert rep.rejects_file is not None and len(rep.rejects_file.read_text(encoding="cp1251").splitlines()) == 6
    assert (rep.loaded, rep.updated, rep.unchanged) == (2, 0, 0)
    pl3 = InstallmentPlan.get(InstallmentPlan.reference == "PL-3")
    assert [(d.due_on, d.amount) for d in pl3.dues] == [(date(2027, 4, 5), Decimal("250.50"))]
    assert installments.import_plans(cfg, f, ACTOR).unchanged == 2
    assert AuditEvent.select().where(AuditEvent.action == "import.plans").count() == 2


def test_reminders_before_the_due_and_a_missed_call_the_day_after(cfg, planned):
    def called(day):
        got = installments.dues_called(cfg, day)
        return {ref: {(d.due_on, d.amount) for d in v.values()} for ref, v in got.items() if v}

    assert called(date(2026, 12, 1)) == {}
    assert called(date(2026, 12, 2)) == {"remind": {(date(2026, 12, 5), Decimal("500.00"))}}  # 3 days before
    assert called(date(2026, 12, 3)) == {}
    assert called(date(2026, 12, 5)) == {"remind": {(date(2026, 12, 5), Decimal("500.00"))}}  # on the day
    assert called(date(2026, 12, 6)) == {"missed": {(date(2026, 12, 5), Decimal("500.00"))}}
    Payment.create(account=planned, reference="PAY-1", amount=Decimal("200.00"), paid_on=date(2026, 12, 4))
    assert called(date(2026, 12, 5)) == {"remind": {(date(2026, 12, 5), Decimal("300.00"))}}  # what is still open
    assert called(date(2026, 12, 6)) == {"missed": {(date(2026, 12, 5), Decimal("300.00"))}}
    Payment.create(account=planned, reference="PAY-2", amount=Decimal("300.00"), paid_on=date(2026, 12, 6))
    assert called(date(2026, 12, 6)) == {}
    assert called(date(2027, 1, 2)) == {"remind": {(date(2027, 1, 5), Decimal("500.00"))}}


def test_campaigns_start_and_the_recheck_drops_a_paid_installment(cfg, planned):
    clock = ManualClock(datetime(2026, 12, 2, 12, 0, tzinfo=UTC))
    [camp] = installments.due_campaigns(cfg, date(2026, 12, 2), clock)
    assert (camp.kind, camp.ref, camp.priority, camp.eligible_count) == ("installment", "remind",
                                                                         kinds.PRIORITY["installment"], 1)
    assert installments.recheck(cfg, camp, [planned.id], date(2026, 12, 2))[planned.id].eligible
    Payment.create(account=planned, reference="PAY-1", amount=Decimal("500.00"), paid_on=date(2026, 12, 2))
    v = installments.recheck(cfg, camp, [planned.id], date(2026, 12, 2))[planned.id]
    assert not v.eligible and "paid" in v.reasons[0]


def test_the_message_says_the_due_amount_and_date_in_words(cfg, planned):
    camp = installments.due_campaigns(cfg, date(2026, 12, 6), ManualClock(datetime(2026, 12, 6, tzinfo=UTC)))[0]
    values = installments.message_values(cfg, camp, planned, date(2026, 12, 6))
    speech = Speech(cfg, engine=FakeEngine())
    text = " ".join(p.text for p in speech.plan("en", "installment.missed", **values) if p.text)
    assert "five hundred" in text and "December fifth, twenty twenty-six" in text and "2001" not in text
    uk = " ".join(p.text for p in speech.plan("uk", "installment.missed", **values) if p.text)
    assert "п'ятсот гривень" in uk and "п'ятого грудня" in uk


def test_keeping_to_the_plan_keeps_the_account_out_of_debt_calls_until_a_due_is_missed(cfg, planned):
    def eligible(day):
        return {v.account_id for v in eligibility.evaluate(cfg, day) if v.eligible}

    Payment.create(account=planned, reference="PAY-1", amount=Decimal("500.00"), paid_on=date(2026, 12, 4))
    assert planned.id not in eligible(date(2026, 12, 10))  # kept to the plan
    assert planned.id in eligible(date(2027, 1, 6))  # the January due was missed: back among the debtors
    assert InstallmentDue.select().count() == 3


def test_installment_windows_are_dst_exact(cfg):
    """Kyiv falls back on 2026-10-25 (04:00 -> 03:00): a 09:00 window opens at 06:00 UTC the day before and at
    07:00 UTC that day."""
    narrowed = kinds.config_for(cfg.replace(installment=dataclasses.replace(cfg.installment,
                                                                          windows=["09:00-12:00"])), "installment")
    w = CallWindows(narrowed)
    assert w.next_open("Europe/Kyiv", datetime(2026, 10, 24, 0, 0, tzinfo=UTC)) == datetime(2026, 10, 24, 6, 0,
                                                                                           tzinfo=UTC)
    assert w.next_open("Europe/Kyiv", datetime(2026, 10, 25, 0, 0, tzinfo=UTC)) == datetime(2026, 10, 25, 7, 0,
                                                                                           tzinfo=UTC)
    assert w.is_open("Europe/Kyiv", datetime(2026, 10, 25, 9, 59, tzinfo=UTC))  # 11:59 local, a Sunday


def test_prerender_skips_an_installment_paid_since_the_campaign_started(cfg, planned):
    from ivr.campaign.evening import prerender

    [camp] = installments.due_campaigns(cfg, date(2026, 12, 2), ManualClock(datetime(2026, 12, 2, tzinfo=UTC)))
    speech = Speech(cfg, engine=FakeEngine())
    assert prerender(cfg, speech, [camp]) == 1
    Payment.create(account=planned, reference="PAY-9", amount=Decimal("500.00"), paid_on=date(2026, 12, 2))
    assert prerender(cfg, speech, [camp]) == 0  # no error: the pre-dial re-check closes the entry


def test_a_life_support_account_gets_no_robot_reminder_until_informed(cfg, planned):
    from ivr.campaign import lifesupport

    planned.life_support = True
    planned.save()
    assert installments.dues_called(cfg, date(2026, 12, 2)) == {"remind": {}, "missed": {}}
    lifesupport.record_informed(planned, "installment", "olga")  # after_informed.installment: robot
    assert set(installments.dues_called(cfg, date(2026, 12, 2))["remind"]) == {planned.id}
