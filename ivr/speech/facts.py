"""What one debtor's message says (MessageFacts) and how to build it from the ledger for a given day.

The amount said is what is still owed today: the latest balance on or before the day minus the payments booked
since that balance's date (on the date itself too, unless `eligibility.balance_includes_same_day_payments`).
`ivr.ledger.eligibility.remaining_debt` is used when the ledger part provides it; `_remaining_debt` below is the
same rule for when it does not (yet).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from ivr.config import Config


@dataclass(frozen=True)
class MessageFacts:
    name: str
    account: str
    amount: Decimal
    currency: str
    overdue_months: int
    due_date: date | None
    company: str
    office_phone: str
    lang: str


def company_name(cfg: Config, lang: str) -> str:
    """The company as said in `lang`: company.names[lang], else company.name."""
    return cfg.company.names.get(lang) or cfg.company.name


def _remaining_debt(account, day: date, same_day_included: bool = False) -> Decimal:
    """Latest balance on or before `day` minus payments dated since it (never below zero)."""
    from ivr.ledger.models import Balance, Payment

    bal = (Balance.select().where((Balance.account == account) & (Balance.as_of <= day))
           .order_by(Balance.as_of.desc()).first())
    if bal is None:
        return Decimal("0.00")
    paid = sum((Decimal(p.amount) for p in Payment.select().where(
        (Payment.account == account) & ((Payment.paid_on > bal.as_of) if same_day_included
                                        else (Payment.paid_on >= bal.as_of)) & (Payment.paid_on <= day))),
        Decimal("0"))
    return max(Decimal(bal.amount) - paid, Decimal("0.00")).quantize(Decimal("0.01"))


def remaining_debt(account, day: date, cfg: Config | None = None) -> Decimal:
    try:
        from ivr.ledger.eligibility import remaining_debt as ledger_rule
    except ImportError:
        included = cfg is not None and cfg.eligibility.balance_includes_same_day_payments
        return _remaining_debt(account, day, included)
    return max(Decimal(ledger_rule(account, day, cfg)), Decimal("0.00"))


def months_between(since: date, day: date) -> int:
    """Whole calendar months from `since` to `day` (0 when `day` is earlier); the ledger's rule when present."""
    try:
        from ivr.ledger.eligibility import months_overdue
    except ImportError:
        pass
    else:
        return months_overdue(since, day)
    months = (day.year - since.year) * 12 + (day.month - since.month)
    if day.day < since.day:
        months -= 1
    return max(months, 0)


def facts_for_account(cfg: Config, account, day: date, amount: Decimal | None = None) -> MessageFacts:
    """The message facts of one account on `day` (`amount` when the caller already knows the remaining debt)."""
    from ivr.ledger.models import Balance

    bal = (Balance.select().where((Balance.account == account) & (Balance.as_of <= day))
           .order_by(Balance.as_of.desc()).first())
    due = bal.overdue_since if bal is not None else None
    return MessageFacts(
        name=account.name,
        account=account.number,
        amount=remaining_debt(account, day, cfg) if amount is None else amount,
        currency=(bal.currency if bal is not None and bal.currency else cfg.locale.currency),
        overdue_months=months_between(due, day) if due else 0,
        due_date=due,
        company=company_name(cfg, account.language or cfg.locale.language),
        office_phone=cfg.company.phone,
        lang=account.language or cfg.locale.language,
    )


def facts_from_verdict(cfg: Config, account, verdict) -> MessageFacts:
    """The message facts from the eligibility verdict the dialer's pre-dial check just computed for this account
    (the same rule as `facts_for_account`, without reading the ledger again)."""
    return MessageFacts(
        name=account.name,
        account=account.number,
        amount=max(Decimal(verdict.remaining), Decimal("0.00")),
        currency=verdict.currency or cfg.locale.currency,
        overdue_months=verdict.overdue_months,
        due_date=verdict.overdue_since,
        company=company_name(cfg, account.language or cfg.locale.language),
        office_phone=cfg.company.phone,
        lang=account.language or cfg.locale.language,
    )
