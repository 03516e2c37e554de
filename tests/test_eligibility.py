"""Eligibility: remaining debt, the threshold and calendar-month overdue rules, the exclusions, the reasons,
and `ivr eligible --why/--excluded`."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from decimal import Decimal

import pytest

from ivr.cli import main
from ivr.ledger import eligibility
from ivr.ledger.eligibility import (
    add_months,
    check_account,
    evaluate,
    matching,
    months_overdue,
    remaining_debt,
)
from ivr.ledger.models import (
    Account,
    Balance,
    ImportRun,
    InstallmentDue,
    InstallmentPlan,
    Payment,
    Phone,
)

DAY = date(2026, 11, 23)
_refs = iter(range(1, 10_000))


def acct(number: str, amount: str | None = "500.00", as_of: date = date(2026, 11, 20),
         overdue: date | None = None, phones: tuple[str, ...] = ("+380501234567",), **fields) -> Account:
    a = Account.create(number=number, name=f"Name {number}", **fields)
    for pos, e164 in enumerate(phones):
        valid = e164.startswith("+")
        Phone.create(account=a, position=pos, raw=e164, e164=e164 if valid else "", valid=valid,
                     invalid_reason="" if valid else "too short")
    if amount is not None:
        Balance.create(account=a, as_of=as_of, amount=Decimal(amount), currency="UAH", overdue_since=overdue)
    return a


def pay(a: Account, amount: str, on: date) -> None:
    Payment.create(account=a, reference=f"P-{next(_refs)}", amount=Decimal(amount), paid_on=on)


def by_number(cfg, day=DAY) -> dict[str, eligibility.Verdict]:
    return {v.number: v for v in evaluate(cfg, day)}


def test_calendar_months():
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert add_months(date(2026, 11, 15), 3) == date(2027, 2, 15)
    assert months_overdue(date(2026, 10, 31), date(2026, 11, 29)) == 0
    assert months_overdue(date(2026, 10, 31), date(2026, 11, 30)) == 1
    assert months_overdue(date(2026, 1, 31), date(2026, 2, 28)) == 1
    assert months_overdue(date(2026, 9, 23), date(2026, 11, 22)) == 1
    assert months_overdue(date(2026, 9, 23), date(2026, 11, 23)) == 2
    assert months_overdue(date(2026, 12, 1), date(2026, 11, 23)) == 0


def test_threshold_is_strictly_above(cfg, db):
    acct("HIGH", "100.01")
    acct("EXACT", "100.00")
    acct("ZERO", "0.00")
    acct("CREDIT", "-20.00")
    v = by_number(cfg)
    assert v["HIGH"].eligible and "above the threshold 100.00" in v["HIGH"].reasons[0]
    assert not v["EXACT"].eligible and "not above the threshold" in v["EXACT"].reasons[0]
    assert not v["ZERO"].eligible and v["ZERO"].reasons[0].startswith("nothing owed")
    assert not v["CREDIT"].eligible and v["CREDIT"].remaining == Decimal("-20.00")


def test_small_debt_qualifies_once_overdue_a_full_calendar_month(cfg, db):
    acct("SMALL", "50.00", overdue=date(2026, 10, 31))
    assert not check_account(cfg, "SMALL", date(2026, 11, 29)).eligible
    v = check_account(cfg, "SMALL", date(2026, 11, 30))
    assert v.eligible and v.overdue_months == 1
    assert "overdue 1 month(s) since 2026-10-31" in v.reasons[0]
    # the rule switched off: a small debt never qualifies
    off = cfg.replace(eligibility=type(cfg.eligibility)(threshold=100.0, overdue_months=0))
    assert not check_account(off, "SMALL", date(2027, 5, 1)).eligible
    # a stricter rule: three months
    three = cfg.replace(eligibility=type(cfg.eligibility)(threshold=100.0, overdue_months=3))
    assert not check_account(three, "SMALL", date(2027, 1, 30)).eligible
    assert check_account(three, "SMALL", date(2027, 1, 31)).eligible


def test_payments_after_the_balance_date_are_subtracted(cfg, db):
    a = acct("PAID", "150.00", as_of=date(2026, 11, 20))
    pay(a, "10.00", date(2026, 11, 19))    # before the balance date: already in the balance
    pay(a, "60.00", date(2026, 11, 21))    # after: subtracted
    pay(a, "90.00", date(2026, 11, 24))    # after the day judged: not yet
    assert remaining_debt(a, DAY) == Decimal("90.00")
    v = check_account(cfg, a, DAY)
    assert not v.eligible and "paid 60.00 since" in v.reasons[0]
    assert remaining_debt(a, date(2026, 11, 24)) == Decimal("0.00")
    assert not check_account(cfg, a, date(2026, 11, 24)).eligible


def _same_day(cfg, included: bool):
    return cfg.replace(eligibility=dataclasses.replace(cfg.eligibility,
                                                       balance_includes_same_day_payments=included))


def test_a_payment_on_the_balance_date_reduces_the_debt_by_default(cfg, db):
    """The field case: balance 21.05 on 30.11, 21.05 paid on 30.11 -> not called."""
    assert cfg.eligibility.balance_includes_same_day_payments is False
    a = acct("SAME", "21.05", as_of=date(2026, 11, 30), overdue=date(2026, 9, 1))
    b = acct("SAME-2", "21.05", as_of=date(2026, 11, 30), overdue=date(2026, 9, 1))  # did not pay
    pay(a, "21.05", date(2026, 11, 30))
    day = date(2026, 12, 2)
    v = check_account(cfg, a, day)
    assert not v.eligible and v.remaining == Decimal("0.00") and v.reasons[0].startswith("nothing owed")
    assert remaining_debt(a, day, cfg) == remaining_debt(a, day) == Decimal("0.00")
    assert check_account(cfg, b, day).eligible  # the rule is about the payment, not the small debt
    assert {v.number: v.eligible for v in evaluate(cfg, day)} == {"SAME": False, "SAME-2": True}
    # a billing system whose balance already counts the day's payments says so in config
    included = _same_day(cfg, True)
    v = check_account(included, a, day)
    assert v.eligible and v.remaining == Decimal("21.05")
    assert remaining_debt(a, day, included) == Decimal("21.05")
    assert {v.number: v.eligible for v in evaluate(included, day)} == {"SAME": True, "SAME-2": True}
    # the console's lists follow the same rule as the dialer's verdicts
    assert [v.number for v in matching(cfg, day)] == ["SAME-2"]
    assert [v.number for v in matching(included, day)] == ["SAME", "SAME-2"]


def test_the_message_says_the_same_amount_as_the_verdict(cfg, db):
    from ivr.speech.facts import _remaining_debt, facts_for_account

    a = acct("SAY", "300.00", as_of=date(2026, 11, 20))
    pay(a, "100.00", date(2026, 11, 20))
    assert facts_for_account(cfg, a, DAY).amount == Decimal("200.00") == check_account(cfg, a, DAY).remaining
    assert _remaining_debt(a, DAY) == Decimal("200.00")  # the speech fallback keeps the same rule
    included = _same_day(cfg, True)
    assert facts_for_account(included, a, DAY).amount == Decimal("300.00")
    assert _remaining_debt(a, DAY, True) == Decimal("300.00")


def test_the_latest_balance_on_or_before_the_day_counts(cfg, db):
    a = acct("HIST", "500.00", as_of=date(2026, 11, 1))
    Balance.create(account=a, as_of=date(2026, 11, 20), amount=Decimal("40.00"), currency="UAH")
    Balance.create(account=a, as_of=date(2026, 11, 30), amount=Decimal("900.00"), currency="UAH")
    assert remaining_debt(a, DAY) == Decimal("40.00")
    assert remaining_debt(a, date(2026, 11, 10)) == Decimal("500.00")
    assert check_account(cfg, a, date(2026, 11, 10)).eligible
    assert not check_account(cfg, a, DAY).eligible


def test_exclusions_carry_their_reasons(cfg, db):
    acct("DNC", do_not_call=True)
    acct("BADNUM", phones=("12345",))
    acct("NOPHONE", phones=())
    acct("SECOND", phones=("050", "+380671112233"))
    acct("NOBAL", amount=None)
    v = by_number(cfg)
    assert not v["DNC"].eligible and v["DNC"].excluded_by == ["do-not-call"]
    assert not v["BADNUM"].eligible and v["BADNUM"].excluded_by[0].startswith("no valid number ('12345': too short")
    assert not v["NOPHONE"].eligible and v["NOPHONE"].excluded_by == ["no phone number on file"]
    assert v["SECOND"].eligible and v["SECOND"].e164 == "+380671112233"
    assert not v["NOBAL"].eligible and "no balance" in v["NOBAL"].reasons[0]
    assert "excluded: do-not-call" in v["DNC"].reasons


def test_installment_plan_up_to_date_excludes_and_behind_does_not(cfg, db):
    ok = acct("PLAN-OK", "900.00")
    behind = acct("PLAN-LATE", "900.00")
    for a, paid in ((ok, "200.00"), (behind, "50.00")):
        plan = InstallmentPlan.create(account=a, starts_on=date(2026, 10, 1))
        InstallmentDue.create(plan=plan, due_on=date(2026, 10, 15), amount=Decimal("100.00"))
        InstallmentDue.create(plan=plan, due_on=date(2026, 11, 15), amount=Decimal("100.00"))
        InstallmentDue.create(plan=plan, due_on=date(2026, 12, 15), amount=Decimal("100.00"))  # not due yet
        pay(a, paid, date(2026, 10, 14))
    v = by_number(cfg)
    assert not v["PLAN-OK"].eligible
    assert v["PLAN-OK"].excluded_by == ["installment plan up to date (paid 200.00 of 200.00 due since 2026-10-01)"]
    assert v["PLAN-LATE"].eligible
    assert any("installment plan behind: paid 50.00 of 200.00" in r for r in v["PLAN-LATE"].reasons)


def test_already_paid_claim_holds_until_the_next_payments_import(cfg, db):
    a = acct("CLAIM")
    ImportRun.create(kind="payments", finished_at=datetime(2026, 11, 22, 8))
    Account.update(claimed_paid_at=datetime(2026, 11, 22, 19, 5)).where(Account.id == a.id).execute()
    v = check_account(cfg, a, DAY)
    assert not v.eligible and v.excluded_by[0].startswith("said already paid (key 3) at 2026-11-22 19:05")
    ImportRun.create(kind="accounts", finished_at=datetime(2026, 11, 23, 8))  # not a payments file
    assert not check_account(cfg, a, DAY).eligible
    ImportRun.create(kind="payments", finished_at=datetime(2026, 11, 23, 8))
    assert check_account(cfg, a, DAY).eligible


def test_evaluate_and_check_account_agree(cfg, db):
    for i in range(30):
        a = acct(f"X-{i}", f"{i * 9}.50", overdue=date(2026, 8, 1) if i % 3 else None,
                 phones=("+380501234567",) if i % 5 else ("bad",), do_not_call=(i == 7))
        if i % 4 == 0:
            pay(a, "20.00", date(2026, 11, 21))
    all_v = evaluate(cfg, DAY)
    assert len(all_v) == 30 and 0 < sum(v.eligible for v in all_v) < 30
    for v in all_v:
        one = check_account(cfg, v.account_id, DAY)
        assert (one.eligible, one.remaining, one.reasons) == (v.eligible, v.remaining, v.reasons)


def test_the_dialers_batch_check_agrees_with_the_one_account_check(cfg, db):
    """check_accounts (the queue's pre-dial check of a whole claim, with the Account rows it already holds) gives
    each account the verdict check_account gives it, said-paid claims and plans and the full export included."""
    ImportRun.create(kind="payments", finished_at=datetime(2026, 11, 22, 8))
    full = ImportRun.create(kind="accounts", full=True, status="applied", started_at=datetime(2026, 11, 22, 6),
                            finished_at=datetime(2026, 11, 22, 7), file="accounts.csv")
    ids = []
    for i in range(12):
        a = acct(f"B-{i}", f"{i * 40}.00", overdue=date(2026, 8, 1) if i % 2 else None, do_not_call=(i == 3),
                 seen_run=full.id if i != 5 else None)
        if i % 4 == 0:
            pay(a, "30.00", date(2026, 11, 21))
        ids.append(a.id)
    Account.update(claimed_paid_at=datetime(2026, 11, 22, 19, 5)).where(Account.number == "B-6").execute()
    plan = InstallmentPlan.create(account=ids[9], starts_on=date(2026, 10, 1))
    InstallmentDue.create(plan=plan, due_on=date(2026, 10, 15), amount=Decimal("100.00"))
    loaded = list(Account.select().where(Account.id.in_(ids)).order_by(Account.id))
    batch, _listed = eligibility.check_accounts(cfg, ids, DAY, loaded=loaded)
    assert set(batch) == set(ids)
    assert 0 < sum(v.eligible for v in batch.values()) < len(ids)
    for i in ids:
        one = check_account(cfg, i, DAY)
        got = batch[i]
        assert (got.eligible, got.remaining, got.reasons, got.currency) == (
            one.eligible, one.remaining, one.reasons, one.currency)


@pytest.fixture
def config_file(cfg, tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(f"database:\n  url: {cfg.database.url}\n", encoding="utf-8")
    return str(path)


def test_cli_why_explains_one_account(cfg, db, config_file, capsys):
    a = acct("WHY-1", "80.00", overdue=date(2026, 9, 1), phones=("12345", "+380501234567"))
    pay(a, "10.00", date(2026, 11, 21))
    assert main(["--config", config_file, "eligible", "--date", "2026-11-23", "--why", "WHY-1"]) == 0
    out = capsys.readouterr().out
    assert "account WHY-1 (Name WHY-1) on 2026-11-23: ELIGIBLE" in out
    assert "remaining debt: 70.00" in out
    assert "overdue 2 month(s) since 2026-09-01" in out
    assert "phone 1: '12345' -> - (invalid: too short)" in out
    assert main(["--config", config_file, "eligible", "--why", "NOPE"]) == 1
    assert "no account 'NOPE'" in capsys.readouterr().err


def test_cli_lists_eligible_and_excluded_with_reasons(cfg, db, config_file, capsys):
    acct("E-1", "300.00")
    acct("D-1", "300.00", do_not_call=True)
    acct("S-1", "20.00")
    acct("P-1", "0.00")
    assert main(["--config", config_file, "eligible", "--date", "2026-11-23"]) == 0
    captured = capsys.readouterr()
    assert "E-1" in captured.out and "D-1" not in captured.out and "+38050***4567" in captured.out
    assert "1 of 4 accounts eligible on 2026-11-23" in captured.err
    assert main(["--config", config_file, "eligible", "--date", "2026-11-23", "--excluded"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert set(lines) == {"D-1", "S-1"}  # owe money but are not called; P-1 owes nothing
    assert "do-not-call" in lines["D-1"] and "not above the threshold" in lines["S-1"]
    assert main(["--config", config_file, "eligible", "--date", "2026-11-23", "--csv"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0] == "account,eligible,remaining,overdue_months,number,reasons"
    assert rows[1].startswith("E-1,yes,300.00,0,+380501234567,")
