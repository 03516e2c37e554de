"""The callback worklist: open requests (a debtor pressed 2) that operators work by district, oldest first.

An operator takes a request (so two do not call the same person), calls the number, and records a result:
reached, promised to pay by a date, paid, not reachable, refused; may plan a second call; and closes the
request. Only a person closes one (the dialer never does). Each result is kept as a CallbackNote (the
request's history); the close is also written to the audit log. The list shows what the account has paid
since the request was made, read from the ledger's payments.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import peewee as pw

from ivr.errors import IvrError
from ivr.ledger import audit
from ivr.ledger.models import Account, Balance, CallbackNote, CallbackRequest, Payment, database, utcnow

RESULTS = ("reached", "promised", "paid", "not_reachable", "refused")


class CallbackError(IvrError):
    """A worklist action that cannot be done (taken by someone else, closed already, a bad date...)."""

    exit_code = 2


@dataclass(slots=True)
class WorkItem:
    id: int
    district: str
    account_id: int
    account: str
    name: str
    number: str  # full E.164: the operator dials it
    address: str
    created_at: datetime  # naive UTC
    taken_by: str
    taken_at: datetime | None
    result: str
    promised_on: date | None
    next_call_at: datetime | None  # naive UTC
    debt: Decimal
    paid_since: Decimal  # payments dated on or after the request's day
    closed_at: datetime | None = None
    closed_by: str = ""


def districts() -> list[str]:
    """Districts that have open requests, sorted."""
    if not _unfiled_open():  # every open request names its district: read them off the open-requests index
        return sorted(d for (d,) in CallbackRequest.select(CallbackRequest.district).distinct()
                      .where(CallbackRequest.handled_at.is_null()).tuples())
    district_of = pw.fn.COALESCE(pw.fn.NULLIF(CallbackRequest.district, ""), Account.district)
    rows = (CallbackRequest.select(district_of.alias("d")).join(Account)
            .where(CallbackRequest.handled_at.is_null()).group_by(district_of).tuples())
    return sorted(r[0] or "" for r in rows)


def _unfiled_open() -> bool:
    """Whether an open request has no district of its own (it then goes by its account's district, so the lists
    must join every open request to its account). The dialer files each request under its account's district,
    so normally none: the lists then page the index of open requests (district, time) alone (migration 11)."""
    return (CallbackRequest.select(CallbackRequest.id)
            .where(CallbackRequest.handled_at.is_null() & (CallbackRequest.district == "")).exists())


def _items(cond: pw.Expression, order: list, limit: int | None = None, offset: int = 0) -> list[WorkItem]:
    district_of = pw.fn.COALESCE(pw.fn.NULLIF(CallbackRequest.district, ""), Account.district)
    q = (CallbackRequest.select(CallbackRequest.id, district_of, Account.id, Account.number, Account.name,
                                CallbackRequest.e164, Account.address, CallbackRequest.created_at,
                                CallbackRequest.taken_by, CallbackRequest.taken_at, CallbackRequest.result,
                                CallbackRequest.promised_on, CallbackRequest.next_call_at,
                                CallbackRequest.handled_at, CallbackRequest.closed_by)
         .join(Account).where(cond).order_by(*order))
    if limit:
        q = q.limit(limit).offset(offset)
    items = []
    for (rid, dist, aid, number, name, e164, address, created, taken_by, taken_at, result, promised, next_at,
         handled, closed_by) in q.tuples():
        items.append(WorkItem(rid, dist or "", aid, number, name, e164, address, created, taken_by, taken_at,
                              result, promised, next_at, Decimal("0.00"), Decimal("0.00"), handled, closed_by))
    _attach_money(items)
    return items


def _attach_money(items: list[WorkItem]) -> None:
    """The latest balance and the payments since each request (two queries for the whole list)."""
    if not items:
        return
    ids = list({i.account_id for i in items})
    latest = (Balance.select(Balance.account.alias("acc"), pw.fn.MAX(Balance.as_of).alias("last"))
              .where(Balance.account.in_(ids)).group_by(Balance.account).alias("latest"))
    debts = {aid: Decimal(str(amount)) for aid, amount in
             Balance.select(Balance.account, Balance.amount)
             .join(latest, on=((Balance.account == latest.c.acc) & (Balance.as_of == latest.c.last))).tuples()}
    earliest = min(i.created_at for i in items).date()
    payments: dict[int, list[tuple[date, Decimal]]] = {}
    for aid, amount, paid_on in (Payment.select(Payment.account, Payment.amount, Payment.paid_on)
                                 .where(Payment.account.in_(ids), Payment.paid_on >= earliest).tuples()):
        payments.setdefault(aid, []).append((paid_on, Decimal(str(amount))))
    for i in items:
        i.debt = debts.get(i.account_id, Decimal("0.00"))
        since = i.created_at.date()
        i.paid_since = sum((a for d, a in payments.get(i.account_id, []) if d >= since), Decimal("0.00"))


def _open_cond(district: str | None) -> pw.Expression:
    district_of = pw.fn.COALESCE(pw.fn.NULLIF(CallbackRequest.district, ""), Account.district)
    cond = CallbackRequest.handled_at.is_null()
    return cond & (district_of == district) if district else cond


def worklist(district: str | None = None, limit: int = 500, offset: int = 0) -> list[WorkItem]:
    """Open requests, by district then oldest first (`limit` of them from `offset`)."""
    if not _unfiled_open():
        cond = CallbackRequest.handled_at.is_null()
        if district:
            cond &= CallbackRequest.district == district
        return _items(cond, [CallbackRequest.district, CallbackRequest.created_at, CallbackRequest.id], limit,
                      offset)
    district_of = pw.fn.COALESCE(pw.fn.NULLIF(CallbackRequest.district, ""), Account.district)
    return _items(_open_cond(district), [district_of, CallbackRequest.created_at, CallbackRequest.id], limit,
                  offset)


def count_open(district: str | None = None) -> int:
    if not _unfiled_open():  # no join: the open-requests index alone
        cond = CallbackRequest.handled_at.is_null()
        if district:
            cond &= CallbackRequest.district == district
        return CallbackRequest.select().where(cond).count()
    return CallbackRequest.select().join(Account).where(_open_cond(district)).count()


def get(request_id: int) -> WorkItem:
    items = _items(CallbackRequest.id == request_id, [CallbackRequest.id])
    if not items:
        raise CallbackError(f"no callback request {request_id}")
    return items[0]


def history(request_id: int) -> list[CallbackNote]:
    return list(CallbackNote.select().where(CallbackNote.request == request_id)
                .order_by(CallbackNote.at, CallbackNote.id))


def _open(request_id: int) -> CallbackRequest:
    req = CallbackRequest.get_or_none(CallbackRequest.id == request_id)
    if req is None:
        raise CallbackError(f"no callback request {request_id}")
    if req.handled_at is not None:
        raise CallbackError(f"callback request {request_id} was closed by {req.closed_by or 'someone'} already")
    return req


def take(request_id: int, actor: str, now: datetime | None = None) -> CallbackRequest:
    """Take a request to work on it. Refused when another person holds it (they release it, or it is closed)."""
    if not actor:
        raise CallbackError("a callback request is taken by a person: actor missing")
    with database.atomic():
        req = _open(request_id)
        if req.taken_by and req.taken_by != actor:
            raise CallbackError(f"callback request {request_id} is taken by {req.taken_by}")
        # a conditional update: of two operators clicking at once, one wins
        n = (CallbackRequest.update(taken_by=actor, taken_at=now or utcnow())
             .where((CallbackRequest.id == request_id) & CallbackRequest.handled_at.is_null()
                    & ((CallbackRequest.taken_by == "") | (CallbackRequest.taken_by == actor))).execute())
        if n != 1:
            raise CallbackError(f"callback request {request_id} was taken by someone else just now")
    return CallbackRequest.get_by_id(request_id)


def release(request_id: int, actor: str) -> None:
    """Give a taken request back to the list (only its holder does)."""
    req = _open(request_id)
    if req.taken_by != actor:
        raise CallbackError(f"callback request {request_id} is not yours to release")
    CallbackRequest.update(taken_by="", taken_at=None).where(CallbackRequest.id == request_id).execute()


def record(request_id: int, actor: str, result: str, *, promised_on: date | None = None,
           next_call_at: datetime | None = None, note: str = "", close: bool = False,
           now: datetime | None = None) -> CallbackNote:
    """Record what came of a call (taking the request if nobody holds it); `close` ends the request.

    `next_call_at` (naive UTC) plans a second call and cannot be combined with closing; `promised` needs the
    date promised, not in the past.
    """
    now = now or utcnow()
    if result not in RESULTS:
        raise CallbackError(f"result {result!r} is not allowed; allowed: {', '.join(RESULTS)}")
    if result == "promised" and promised_on is None:
        raise CallbackError("result promised: the date the debtor promised to pay by is missing")
    if promised_on is not None and promised_on < now.date():
        raise CallbackError(f"promised to pay by {promised_on}: that date is in the past")
    if next_call_at is not None and next_call_at <= now:
        raise CallbackError(f"second call at {next_call_at:%Y-%m-%d %H:%M}: that time is in the past")
    if close and next_call_at is not None:
        raise CallbackError("a request with a second call planned stays open: remove the time or do not close")
    note = note.replace("\r", " ").replace("\n", " ").strip()[:500]
    with database.atomic():
        req = _open(request_id)
        if req.taken_by and req.taken_by != actor:
            raise CallbackError(f"callback request {request_id} is taken by {req.taken_by}")
        fields = {"result": result, "promised_on": promised_on, "next_call_at": next_call_at,
                  "taken_by": actor, "taken_at": req.taken_at or now}
        if close:
            fields.update(handled_at=now, closed_by=actor)
        CallbackRequest.update(**fields).where(CallbackRequest.id == request_id).execute()
        entry = CallbackNote.create(request=request_id, at=now, actor=actor, result=result, promised_on=promised_on,
                                    next_call_at=next_call_at, note=note, closed=close)
        if close:
            audit.record(actor, "callback.close", str(request_id),
                         {"result": result, "promised_on": promised_on.isoformat() if promised_on else None})
    return entry
