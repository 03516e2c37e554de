"""The demo's simulated week of payments after the evening: drawn by outcome, never more than is owed."""

from datetime import date, timedelta
from decimal import Decimal

import factories as f

from ivr.dialer.demo import simulate_week_after
from ivr.ledger.models import Payment

DAY = date(2026, 11, 23)


def test_payments_follow_outcomes_and_stay_within_debt_and_week(cfg, db, tmp_path):
    camp = f.campaign(DAY)
    pay_now = [f.account(debt="300.00") for _ in range(60)]
    unreached = [f.account(debt="300.00") for _ in range(60)]
    for acc in pay_now:
        f.enqueue(camp, acc, outcome="pay_now")
    for acc in unreached:
        f.enqueue(camp, acc, outcome="no_answer")
    (tmp_path / "billing").mkdir()
    report = simulate_week_after(cfg, camp, tmp_path, seed=3)
    assert not report.rejected
    payments = list(Payment.select())
    assert payments and report.loaded == len(payments)
    for p in payments:
        assert Decimal("0") < p.amount <= Decimal("300.00")
        assert DAY < p.paid_on <= DAY + timedelta(days=7)
    payers = {p.account_id for p in payments}
    share_pay_now = len(payers & {a.id for a in pay_now}) / 60
    share_unreached = len(payers & {a.id for a in unreached}) / 60
    assert share_pay_now > 0.5 > 0.25 > share_unreached  # 70 % vs 8 % drawn: far apart even for 60 each
    again = simulate_week_after(cfg, camp, tmp_path, seed=3)  # same seed, same file: nothing new
    assert again.loaded == 0 and Payment.select().count() == len(payments)
