"""Trends over evenings: per campaign, how many were eligible, called, reached and heard, and what the reached
debtors paid within 7 days of the evening — a few aggregate queries for all evenings at once.

A coarser cut than the morning report (data.py), which anchors each debtor's money on their own first heard
call: here every reached debtor's window starts on the campaign day, so evenings compare on one rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import peewee as pw

from ivr.ledger.models import Attempt, Campaign, Payment

PAID_DAYS = 7
ANSWERED = ("heard", "early_hangup", "not_heard", "pay_now", "callback", "already_paid", "wrong_number")


@dataclass
class Evening:
    day: date
    status: str
    eligible: int
    called: int
    reached: int
    heard: int
    paid_accounts: int  # reached debtors who paid anything within PAID_DAYS of the evening
    paid: Decimal


def trends(limit: int = 14) -> list[Evening]:
    """The latest `limit` evenings, newest first."""
    return [evening(c) for c in Campaign.select().where(Campaign.kind == "debt").order_by(Campaign.day.desc())
            .limit(limit)]


def evening(c: Campaign) -> Evening:
    """One campaign's row (a few aggregate queries over its calls and its reached debtors' payments)."""
    answered = Attempt.answered_at.is_null(False) | Attempt.outcome.in_(ANSWERED)
    heard = (Attempt.heard == True) | (Attempt.outcome == "heard")  # noqa: E712
    called, reached, heard_n = (
        Attempt.select(pw.fn.COUNT(Attempt.account.distinct()),
                       pw.fn.COUNT(pw.Case(None, [(answered, Attempt.account)]).distinct()),
                       pw.fn.COUNT(pw.Case(None, [(heard, Attempt.account)]).distinct()))
        .where(Attempt.campaign == c.id).tuples().get())
    reached_ids = (Attempt.select(Attempt.account).distinct()
                   .where((Attempt.campaign == c.id) & answered))
    paid_n, paid_sum = (Payment.select(pw.fn.COUNT(Payment.account.distinct()),
                                       pw.fn.COALESCE(pw.fn.SUM(Payment.amount), 0))
                        .where(Payment.account.in_(reached_ids), Payment.paid_on >= c.day,
                               Payment.paid_on <= c.day + timedelta(days=PAID_DAYS)).tuples().get())
    return Evening(c.day, c.status, c.eligible_count, called or 0, reached or 0, heard_n or 0, paid_n,
                   Decimal(str(paid_sum)).quantize(Decimal("0.01")))
