"""Stored eligibility verdicts (ivr.ledger.verdicts): after every kind of change a refresh leaves exactly the rows a
from-scratch evaluation gives (imports, payments, do-not-call changes, the dialer's call results, plans, a deleted
account), another day or other rules rebuild, and the stored lists page and filter like eligibility.listing."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from ivr.ledger import dnc, eligibility, importer, verdicts
from ivr.ledger.models import (
    Account,
    Balance,
    InstallmentDue,
    InstallmentPlan,
    Payment,
    Phone,
    StoredVerdict,
    VerdictDirty,
)

DAY = date(2026, 11, 23)
_refs = iter(range(1, 10_000))


def acct(number: str, amount: str | None = "500.00", district: str = "North", phone: str = "+380501234567",
         overdue: date | None = None) -> Account:
    a = Account.create(number=number, name=f"Name {number}", district=district)
    Phone.create(account=a, position=0, raw=phone, e164=phone, valid=True)
    if amount is not None:
        Balance.create(account=a, as_of=date(2026, 11, 20), amount=Decimal(amount), currency="UAH",
                       overdue_since=overdue)
    return a


def pay(a: Account, amount: str, on: date = date(2026, 11, 21)) -> None:
    Payment.create(account=a, reference=f"P-{next(_refs)}", amount=Decimal(amount), paid_on=on)


def assert_up_to_date(cfg, *, incremental: bool = True) -> None:
    done = verdicts.refresh(cfg, DAY)
    if incremental:
        assert done is not None and not done.rebuilt, "expected a refresh of the marked accounts, not a rebuild"
    else:
        assert done is None  # the change needs a rebuild
        verdicts.ensure(cfg, DAY)
    assert verdicts.stored_rows(DAY) == verdicts.expected_rows(cfg, DAY)
    state = verdicts.stored_day(cfg)  # the counts kept with the rows equal counting them
    for kw in ({}, {"excluded": True}, {"district": "North"}, {"excluded": True, "district": "South"}):
        assert verdicts.listing(DAY, state=state, **kw).total == verdicts.listing(DAY, **kw).total, kw


@pytest.fixture
def ledger(db):
    accs = [acct(f"A-{i}", str(150 + 100 * i), district="North" if i % 2 else "South",
                 phone=f"+38050123450{i}") for i in range(6)]
    acct("SMALL", "20.00", phone="+380501111111")
    acct("OVERDUE", "20.00", overdue=date(2026, 8, 1), phone="+380501111112")
    acct("NONE", None, phone="+380501111113")
    return accs


def test_a_build_equals_evaluate_and_stores_only_the_two_lists(cfg, ledger):
    assert verdicts.build(cfg, DAY) == len(verdicts.expected_rows(cfg, DAY))
    assert verdicts.stored_rows(DAY) == verdicts.expected_rows(cfg, DAY)
    stored = {n for (n,) in StoredVerdict.select(StoredVerdict.number).tuples()}
    assert "NONE" not in stored and "SMALL" in stored and "OVERDUE" in stored  # no balance: on neither list
    assert VerdictDirty.select().count() == 0


def test_refresh_follows_payments_dnc_and_the_dialers_results(cfg, ledger):
    verdicts.build(cfg, DAY)
    a0, a1, a2, a3, a4, a5 = ledger
    pay(a0, "100.00")  # a payment: A-0 owes 50, leaves the eligible list for the excluded one... or neither
    assert_up_to_date(cfg)
    dnc.add(cfg, "+380501234501", "asked on the phone", "test", kind="number")  # a number listed
    assert_up_to_date(cfg)
    dnc.add(cfg, "A-2", "complaint", "test", kind="account")  # an account listed
    assert_up_to_date(cfg)
    dnc.remove(cfg, "A-2", "test", "resolved", kind="account")
    assert_up_to_date(cfg)
    # the dialer's results: "already paid" (key 3) and a wrong number flagged on a phone
    Account.update(claimed_paid_at=datetime(2026, 11, 22, 17, 0)).where(Account.id == a3.id).execute()
    Phone.update(valid=False, invalid_reason="wrong number (9)").where(Phone.account == a4.id).execute()
    assert_up_to_date(cfg)
    assert "A-3" in {r.verdict.number for r in verdicts.listing(DAY, excluded=True).rows}
    # an installment plan kept up to date, then a due it misses
    plan = InstallmentPlan.create(account=a5, starts_on=date(2026, 11, 1))
    assert_up_to_date(cfg)
    InstallmentDue.create(plan=plan, due_on=date(2026, 11, 10), amount=Decimal("50.00"))
    assert_up_to_date(cfg)
    Balance.update(amount=Decimal("10.00")).where(Balance.account == a1.id).execute()
    assert_up_to_date(cfg)
    # life support: flagged, the robot waits for a person; then a person informs them
    from ivr.campaign import lifesupport
    Account.update(life_support=True).where(Account.id == a3.id).execute()
    assert_up_to_date(cfg)
    assert any("life support" in r for r in verdicts.listing(DAY, excluded=True, reason="life support").rows[0]
               .verdict.reasons)
    lifesupport.record_informed(Account.get_by_id(a3.id), "debt", "anna", at=datetime(2026, 11, 22, 10, 0))
    assert_up_to_date(cfg)
    a2.delete_instance(recursive=True)  # cascades to its phone and balance
    assert_up_to_date(cfg)
    acct("NEW", "999.00", phone="+380509999999")
    assert_up_to_date(cfg)
    assert "NEW" in {r.verdict.number for r in verdicts.listing(DAY).rows}


def _csv(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_refresh_follows_imports(cfg, db, tmp_path):
    header = "account,name,phone,balance,balance_date\n"
    rows = "A-1,Olena,0501234567,500,2026-11-20\nA-2,Ivan,0501234568,600,2026-11-20\n"
    importer.import_accounts(cfg, _csv(tmp_path, "a.csv", header + rows), progress=False)
    verdicts.build(cfg, DAY)
    # "already paid" on a call, then the payments import that settles the claim
    Account.update(claimed_paid_at=datetime(2026, 11, 22, 17, 0)).where(Account.number == "A-1").execute()
    assert_up_to_date(cfg)
    importer.import_payments(cfg, _csv(tmp_path, "p.csv", "account,amount,date,reference\n"
                                                            "A-2,550,2026-11-21,R-1\n"), progress=False)
    assert_up_to_date(cfg)
    # a full export that leaves A-2 out: every account's verdict may change, so the refresh declines
    importer.import_accounts(cfg, _csv(tmp_path, "b.csv", header + rows.splitlines(keepends=True)[0]),
                             progress=False)
    assert_up_to_date(cfg, incremental=False)
    assert "A-2" not in {r.verdict.number for r in verdicts.listing(DAY).rows}


def test_another_day_or_other_rules_rebuild(cfg, ledger):
    verdicts.build(cfg, DAY)
    assert verdicts.refresh(cfg, date(2026, 11, 24)) is None  # another day: not stored
    stricter = dataclasses.replace(cfg, eligibility=dataclasses.replace(cfg.eligibility, threshold=400.0))
    assert verdicts.stored_day(stricter) is None and verdicts.refresh(stricter, DAY) is None
    assert verdicts.ensure(stricter, DAY).rebuilt
    assert verdicts.stored_rows(DAY) == verdicts.expected_rows(stricter, DAY)
    assert verdicts.refresh(cfg, DAY) is None  # and back


def test_too_many_changes_rebuild_and_keep_the_marks_until_then(cfg, ledger):
    verdicts.build(cfg, DAY)
    for a in ledger:
        pay(a, "1.00")
    assert verdicts.refresh(cfg, DAY, limit=3) is None
    assert VerdictDirty.select().count() == len(ledger)  # declined: nothing taken
    assert_up_to_date(cfg)


def test_stored_listing_pages_and_filters_like_the_live_one(cfg, ledger):
    dnc.add(cfg, "A-3", "complaint", "test", kind="account")
    verdicts.build(cfg, DAY)
    cases = [{}, {"district": "North"}, {"excluded": True}, {"excluded": True, "reason": "DO-NOT-CALL"},
             {"amount_min": Decimal("350"), "amount_max": Decimal("550")}, {"offset": 2, "limit": 2},
             {"reason": "100%_"}]
    for kw in cases:
        live, stored = eligibility.listing(cfg, DAY, **kw), verdicts.listing(DAY, **kw)
        assert stored.total == live.total, kw
        assert [(r.verdict.number, r.verdict.remaining, r.verdict.reasons, r.name, r.district)
                for r in stored.rows] == [(r.verdict.number, r.verdict.remaining, r.verdict.reasons, r.name,
                                           r.district) for r in live.rows], kw


def test_no_marks_while_nothing_is_stored_and_one_for_a_full_export(cfg, db, tmp_path):
    acct("A-1")
    pay(Account.get(Account.number == "A-1"), "5.00")
    assert VerdictDirty.select().count() == 0  # nobody has asked for the lists: nothing to keep up to date
    verdicts.build(cfg, DAY)
    rows = "".join(f"B-{i},Name,050123{i:04d},500,2026-11-20\n" for i in range(50))
    importer.import_accounts(cfg, _csv(tmp_path, "full.csv", "account,name,phone,balance,balance_date\n" + rows),
                             progress=False)
    marks = [m for (m,) in VerdictDirty.select(VerdictDirty.account_id).tuples()]
    assert None in marks and len(marks) <= 2  # the full export's one mark, not one per row it wrote
    assert_up_to_date(cfg, incremental=False)


def test_a_change_made_while_building_is_judged_by_the_next_refresh(cfg, ledger, monkeypatch):
    real = eligibility.evaluate

    def evaluate_then_change(*args, **kwargs):
        out = real(*args, **kwargs)
        pay(ledger[4], "1000.00")  # after the evaluation read it: the stored row is already out of date
        return out

    monkeypatch.setattr(eligibility, "evaluate", evaluate_then_change)
    verdicts.build(cfg, DAY)
    monkeypatch.setattr(eligibility, "evaluate", real)
    assert verdicts.stored_rows(DAY) != verdicts.expected_rows(cfg, DAY)
    assert_up_to_date(cfg)
