"""Small builders of realistic ledger rows for tests: accounts with a number and a balance, campaigns, queue
entries, attempts as the dialer writes them, payments and callback requests.

Times passed as aware datetimes are stored as naive UTC (the ledger's form); naive ones are taken as UTC.
Every builder returns the created model so tests can refer to it.
"""

from __future__ import annotations

import itertools
import uuid as uuidlib
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from ivr.ledger.models import (
    Account,
    Attempt,
    Balance,
    CallbackRequest,
    Campaign,
    Control,
    DialerNode,
    Payment,
    Phone,
    QueueEntry,
)

_seq = itertools.count(1)

# outcomes for which the callee answered the phone
ANSWERED_OUTCOMES = {"heard", "early_hangup", "not_heard", "pay_now", "callback", "already_paid", "wrong_number",
                     "opted_out"}
# outcomes that carry a heard message (a key press on the menu proves it was heard)
HEARD_OUTCOMES = {"heard", "pay_now", "callback", "already_paid"}
DIGIT_OF = {"pay_now": "1", "callback": "2", "already_paid": "3", "wrong_number": "9", "opted_out": "8"}


def utc(value: datetime) -> datetime:
    """Naive UTC, as the ledger stores it."""
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def account(number: str | None = None, *, name: str = "", district: str = "Center", address: str = "",
            timezone: str = "", phone: str | None = "+380501234567", debt: Decimal | str | None = "500.00",
            as_of: date = date(2026, 11, 20)) -> Account:
    n = next(_seq)
    acc = Account.create(number=number or f"ACC-{n:06d}", name=name or f"Debtor {n}", district=district,
                         address=address or f"{n} Main Street", timezone=timezone)
    if phone is not None:
        Phone.create(account=acc, position=0, raw=phone, e164=phone, valid=True)
    if debt is not None:
        Balance.create(account=acc, as_of=as_of, amount=Decimal(str(debt)), currency="UAH")
    return acc


def campaign(day: date = date(2026, 11, 23), *, status: str = "done", eligible_count: int = 0) -> Campaign:
    return Campaign.create(day=day, status=status, eligible_count=eligible_count)


def enqueue(camp: Campaign, acc: Account, *, state: str = "done", outcome: str = "", attempts: int = 0
            ) -> QueueEntry:
    return QueueEntry.create(campaign=camp, account=acc, state=state, outcome=outcome, attempts=attempts)


def attempt(camp: Campaign | None, acc: Account, at: datetime, outcome: str, *, state: str | None = None,
            heard: bool | None = None, digits: str | None = None, e164: str | None = None,
            answered: bool | None = None, hangup_cause: str = "", duration_s: int = 0, node: str = "node-1",
            accounts: str = "", kind: str = "campaign") -> Attempt:
    """One call as the dialer leaves it: answered/heard/digits follow from the outcome unless given."""
    if answered is None:
        answered = outcome in ANSWERED_OUTCOMES
    if heard is None:
        heard = outcome in HEARD_OUTCOMES
    if digits is None:
        digits = DIGIT_OF.get(outcome, "")
    if state is None:
        state = "ended" if outcome else "originated"
    if e164 is None:
        phone = Phone.select().where(Phone.account == acc).order_by(Phone.position).first()
        e164 = phone.e164 if phone else "+380500000000"
    created = utc(at)
    return Attempt.create(
        uuid=str(uuidlib.uuid4()), campaign=camp, account=acc, accounts=accounts or acc.number, e164=e164,
        node=node, state=state, outcome=outcome, created_at=created,
        answered_at=created + timedelta(seconds=8) if answered else None,
        ended_at=created + timedelta(seconds=8 + duration_s) if state in ("ended", "unknown") else None,
        hangup_cause=hangup_cause, heard=heard, heard_ms=6000 if heard else 0, message_ms=6000, digits=digits,
        duration_s=duration_s, kind=kind)


def payment(acc: Account, amount: Decimal | str, paid_on: date, *, reference: str | None = None) -> Payment:
    return Payment.create(account=acc, reference=reference or f"PAY-{next(_seq)}", amount=Decimal(str(amount)),
                          paid_on=paid_on)


def callback(acc: Account, att: Attempt | None, *, at: datetime | None = None, district: str | None = None,
             handled: bool = False) -> CallbackRequest:
    created = utc(at) if at else (att.created_at + timedelta(seconds=40) if att else datetime(2026, 11, 23, 17))
    return CallbackRequest.create(account=acc, attempt=att, e164=att.e164 if att else "+380501234567",
                                  district=acc.district if district is None else district, created_at=created,
                                  handled_at=created + timedelta(hours=12) if handled else None)


def node(name: str = "node-1", *, heartbeat_at: datetime, esl_state: str = "connected", in_flight: int = 0,
         rate: float = 0.0, stats: str = "{}") -> DialerNode:
    return DialerNode.create(name=name, started_at=utc(heartbeat_at) - timedelta(minutes=5),
                             heartbeat_at=utc(heartbeat_at), esl_state=esl_state, in_flight=in_flight, rate=rate,
                             stats=stats)


def control(key: str, value: str) -> Control:
    return Control.create(key=key, value=value)


def set_control(key: str, value: str) -> None:
    """Write a Control value whether or not the key exists yet (an upsert both SQLite and PostgreSQL accept)."""
    now = datetime.now(UTC).replace(tzinfo=None)
    (Control.insert(key=key, value=value, updated_at=now)
     .on_conflict(conflict_target=[Control.key], update={Control.value: value, Control.updated_at: now}).execute())
