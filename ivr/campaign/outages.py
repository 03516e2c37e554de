"""Outage notices: outages by supply point, who is told what and when, corrections, and the dispatchers' files.

An Outage (planned or emergency) covers supply points; the accounts fed from them (SupplyLink, `ivr import
supply-points`) are its audience, except accounts on life support (ivr.campaign.lifesupport: a person tells
them). Each local evening `due_campaigns` starts one campaign per message that is due, named by its ref:

- planned `O<id>-v<version>-n<days>`: the notice `outage.notice_days` before the start (default 10 and 3). The
  notice due is the latest stage whose day has come (an outage entered late gets its first notice at once);
  whoever has not heard this stage of this version is called, inside the normal windows, until the outage starts;
- emergency `O<id>-v<version>-now`: at once, inside `outage.emergency_windows`, until the outage ends;
- correction `O<id>-v<version>-fix`: a planned outage moved or cancelled (its version went up) is corrected to
  everyone who heard an earlier version and has not heard this one ('moved' with the new dates, or 'cancelled').

"Heard" is the debt rule: the queue entry of that campaign ended done (heard, or a menu choice after it). Nothing
here places calls: the campaigns go to the dialer with the others of the evening (ivr.campaign.evening).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from ivr.campaign import kinds, lifesupport
from ivr.campaign.windows import as_zone, aware_utc
from ivr.clock import Clock
from ivr.config import Config
from ivr.errors import IvrError
from ivr.ledger import audit, listimport
from ivr.ledger.importer import ImportReport, RowError
from ivr.ledger.models import (
    Account,
    Attempt,
    Campaign,
    Outage,
    OutagePoint,
    QueueEntry,
    SupplyLink,
    database,
    utcnow,
)

log = logging.getLogger(__name__)

POINT_RE = re.compile(r"^[A-Za-z0-9_.:/-]{1,64}$")
CODE_RE = re.compile(r"^[A-Za-z0-9_.:/-]{1,64}$")
OUTAGE_KINDS = ("planned", "emergency")
_REF_RE = re.compile(r"^O(\d+)-v(\d+)-(n\d+|now|fix)$")
DONE = ("heard", "pay_now", "callback", "already_paid", "opted_out")  # the queue's DONE_OUTCOMES


def parse_points(text: str) -> list[str]:
    """'P1,P2' (or separated by spaces, ';' or '|') -> ['P1', 'P2']; IvrError naming a malformed one."""
    out: list[str] = []
    for p in re.split(r"[\s,;|]+", text.strip()):
        if not p:
            continue
        if not POINT_RE.match(p):
            raise IvrError(f"supply point {p!r}: use letters, digits and _ . : / - (at most 64)")
        if p not in out:
            out.append(p)
    if not out:
        raise IvrError("no supply point given")
    return out


def _check(kind: str, starts_at: datetime, ends_at: datetime) -> None:
    if kind not in OUTAGE_KINDS:
        raise IvrError(f"outage kind {kind!r}: expected planned or emergency")
    if ends_at <= starts_at:
        raise IvrError(f"the outage must end after it starts ({starts_at:%Y-%m-%d %H:%M} .. {ends_at:%Y-%m-%d %H:%M} "
                       "UTC)")


def add(points: list[str], starts_at: datetime, ends_at: datetime, kind: str, *, reason: str = "", code: str = "",
        actor: str) -> Outage:
    """Record an outage (times naive UTC) of `points`; audited. `code` '' = O<id>."""
    _check(kind, starts_at, ends_at)
    if code and not CODE_RE.match(code):
        raise IvrError(f"outage id {code!r}: use letters, digits and _ . : / - (at most 64)")
    if code and Outage.get_or_none(Outage.code == code) is not None:
        raise IvrError(f"outage {code!r} exists already (move or cancel it instead)")
    with database.atomic():
        o = Outage.create(code=code or f"new-{utcnow().timestamp()}", kind=kind, starts_at=starts_at,
                          ends_at=ends_at, reason=reason[:400], created_by=actor[:100])
        if not code:
            o.code = f"O{o.id}"
            o.save()
        OutagePoint.insert_many([{"outage": o.id, "point": p} for p in points]).execute()
        audit.record(actor, "outage.add", o.code, {"kind": kind, "points": points, "from": str(starts_at),
                                                   "to": str(ends_at), "reason": reason})
    log.info("event=outage_added outage=%s kind=%s points=%d accounts=%d", o.code, kind, len(points),
             len(affected_accounts(o)))
    return o


def get(code: str) -> Outage:
    o = Outage.get_or_none(Outage.code == code)
    if o is None:
        raise IvrError(f"no outage {code!r} (ivr outage list)")
    return o


def move(o: Outage, starts_at: datetime, ends_at: datetime, *, actor: str) -> Outage:
    """New times: the version goes up, so whoever heard the old times gets a correction."""
    _check(o.kind, starts_at, ends_at)
    if o.status == "cancelled":
        raise IvrError(f"outage {o.code} is cancelled; add a new one")
    if (o.starts_at, o.ends_at) == (starts_at, ends_at):
        return o
    old = (str(o.starts_at), str(o.ends_at))
    o.starts_at, o.ends_at, o.version, o.updated_at = starts_at, ends_at, o.version + 1, utcnow()
    o.save()
    audit.record(actor, "outage.move", o.code, {"from": old, "to": (str(starts_at), str(ends_at)),
                                                "version": o.version})
    return o


def cancel(o: Outage, *, actor: str) -> Outage:
    """Cancelled: the version goes up; whoever heard a notice gets a correction."""
    if o.status == "cancelled":
        return o
    o.status, o.version, o.updated_at = "cancelled", o.version + 1, utcnow()
    o.save()
    audit.record(actor, "outage.cancel", o.code, {"version": o.version})
    return o


def points_of(o: Outage) -> list[str]:
    return [p for (p,) in OutagePoint.select(OutagePoint.point).where(OutagePoint.outage == o.id).tuples()]


def affected_accounts(o: Outage, only: list[int] | None = None) -> list[Account]:
    """Accounts fed from the outage's points (life-support ones too: `audiences` leaves them out); `only`: of
    these account ids (the pre-dial re-check of a page)."""
    pts = OutagePoint.select(OutagePoint.point).where(OutagePoint.outage == o.id)
    q = Account.select().where(Account.id.in_(SupplyLink.select(SupplyLink.account).where(SupplyLink.point.in_(pts))))
    if only is not None:
        q = q.where(Account.id.in_(only))
    return list(q.order_by(Account.id))


# --- who is told what -------------------------------------------------------------------------------------------

def ref_parts(ref: str) -> tuple[int, int, str] | None:
    m = _REF_RE.match(ref)
    return (int(m[1]), int(m[2]), m[3]) if m else None


@dataclass(frozen=True)
class Told:
    version: int
    what: str  # n<days> | now | fix
    day: date


def told(o: Outage, only: list[int] | None = None) -> dict[int, list[Told]]:
    """Per account: every message of this outage it heard (its queue entry ended done, or it called back and
    heard the notice again: ivr.dialer.inbound)."""
    out: dict[int, list[Told]] = {}
    q1 = (QueueEntry.select(QueueEntry.account, Campaign.ref, Campaign.day).join(Campaign)
          .where(Campaign.outage_id == o.id, QueueEntry.state == "done", QueueEntry.outcome.in_(DONE)))
    q2 = (Attempt.select(Attempt.account, Campaign.ref, Campaign.day).join(Campaign)
          .where(Campaign.outage_id == o.id, Attempt.kind == "inbound", Attempt.outcome.in_(DONE)))
    if only is not None:
        q1, q2 = q1.where(QueueEntry.account.in_(only)), q2.where(Attempt.account.in_(only))
    rows = list(q1.tuples()) + list(q2.tuples())
    for acc, ref, day in rows:
        parts = ref_parts(ref)
        if parts is not None:
            out.setdefault(acc, []).append(Told(parts[1], parts[2], day))
    return out


def local_day(cfg: Config, at_naive_utc: datetime) -> date:
    return aware_utc(at_naive_utc).astimezone(as_zone(cfg.locale.timezone)).date()


def notice_stage(cfg: Config, start_day: date, day: date) -> int | None:
    """The planned notice due on `day`: the latest of outage.notice_days whose day has come (None: too early)."""
    due = [n for n in cfg.outage.notice_days if start_day - timedelta(days=n) <= day]
    return min(due) if due else None


def audiences(cfg: Config, o: Outage, day: date, now: datetime | None = None,
              only: list[int] | None = None) -> dict[str, dict[int, str]]:
    """ref -> {account id: why called} of every message of outage `o` due on the local evening `day` (`only`:
    for these account ids alone, as the pre-dial re-check asks)."""
    accounts = [a for a in affected_accounts(o, only) if lifesupport.may_call_robot(a, "outage", cfg=cfg)]
    heard = told(o, only)
    v = o.version
    out: dict[str, dict[int, str]] = {}

    def versions(a: int) -> set[int]:
        return {t.version for t in heard.get(a, [])}

    if o.kind == "emergency":
        over = aware_utc(now) >= aware_utc(o.ends_at) if now is not None else local_day(cfg, o.ends_at) < day
        if o.status == "scheduled" and not over:
            out[f"O{o.id}-v{v}-now"] = {a.id: "emergency outage" for a in accounts if v not in versions(a.id)}
        return out
    start_day = local_day(cfg, o.starts_at)
    if day > start_day:
        return out
    earlier = {a.id for a in accounts if any(x < v for x in versions(a.id)) and v not in versions(a.id)}
    if earlier:
        what = "cancelled" if o.status == "cancelled" else "moved"
        out[f"O{o.id}-v{v}-fix"] = {a: f"heard an earlier notice; the outage is {what}" for a in sorted(earlier)}
    if o.status == "scheduled":
        stage = notice_stage(cfg, start_day, day)
        if stage is not None:
            since = start_day - timedelta(days=stage)
            done = {a for a, ts in heard.items() if any(t.version == v and t.day >= since for t in ts)}
            out[f"O{o.id}-v{v}-n{stage}"] = {a.id: f"planned outage, notice {stage} days before"
                                             for a in accounts if a.id not in done and a.id not in earlier}
    return out


def recheck(cfg: Config, camp: Campaign, account_ids: list[int], day: date,
            now: datetime | None = None) -> dict[int, kinds.AudienceVerdict]:
    """Right before dialing: still in this campaign's audience (not cancelled or moved meanwhile, not on life
    support, not told yet)?"""
    o = Outage.get_or_none(Outage.id == camp.outage_id)
    aud = audiences(cfg, o, camp.day, now, only=list(account_ids)).get(camp.ref, {}) if o is not None else {}
    why = "no longer due: the outage changed, or this account was told already, or is on life support"
    return {a: kinds.AudienceVerdict(a, a in aud, [] if a in aud else [why]) for a in account_ids}


def text_of(camp: Campaign) -> str:
    """Which outage text a campaign says: planned | emergency | moved | cancelled."""
    parts = ref_parts(camp.ref)
    if parts is None:
        raise IvrError(f"campaign {camp.id}: {camp.ref!r} is no outage ref")
    if parts[2] == "now":
        return "emergency"
    if parts[2] == "fix":
        o = Outage.get_or_none(Outage.id == camp.outage_id)
        return "cancelled" if o is not None and o.status == "cancelled" else "moved"
    return "planned"


def message_values(cfg: Config, camp: Campaign, account: Account) -> dict[str, Any]:
    """The values of one account's outage message: its address, the dates and hours in its own time zone."""
    o = Outage.get_by_id(camp.outage_id)
    tz = as_zone(account.timezone or cfg.locale.timezone)
    s = aware_utc(o.starts_at).astimezone(tz)
    e = aware_utc(o.ends_at).astimezone(tz)
    emergency = o.kind == "emergency"
    return {"account": account.number, "name": account.name, "address": account.address or None,
            "from_date": s.date(), "from_time": s.time().replace(second=0, microsecond=0),
            "to_date": e.date() if emergency or e.date() != s.date() else None,
            "to_time": e.time().replace(second=0, microsecond=0), "reason": o.reason or None}


def due_campaigns(cfg: Config, day: date, clock: Clock) -> list[Campaign]:
    """Start (or resume) every outage campaign due on the local evening `day`; return those with anyone to call.
    A campaign of the day whose message is no longer due (cancelled, moved) is refreshed too: its waiting
    entries close."""
    from ivr.campaign.queue import start_kind_campaign

    z = as_zone(cfg.locale.timezone)
    day_start = datetime.combine(day, datetime.min.time(), z).astimezone(UTC).replace(tzinfo=None)
    now = clock.now()
    out: list[Campaign] = []
    for o in Outage.select().where(Outage.ends_at >= day_start).order_by(Outage.id):
        aud = audiences(cfg, o, day, now)
        existing = {c.ref for c in Campaign.select(Campaign.ref).where(
            Campaign.day == day, Campaign.kind == "outage", Campaign.outage_id == o.id)}
        for ref in sorted(set(aud) | existing):
            who = aud.get(ref, {})
            if not who and ref not in existing:
                continue
            camp = start_kind_campaign(cfg, day, clock, "outage", ref, who,
                                       priority=kinds.priority_of("outage", o.kind == "emergency"),
                                       outage_id=o.id)
            if who:
                out.append(camp)
            else:
                Campaign.update(status="done", finished_at=utcnow()).where(Campaign.id == camp.id).execute()
    return out


# --- the dispatchers' and the network scheme's files ---------------------------------------------------------------

SUPPLY_COLUMNS = {"account": "account", "point": "point"}
OUTAGE_COLUMNS = {"outage": "outage", "points": "points", "from": "from", "to": "to", "kind": "kind",
                  "reason": "reason", "status": "status"}


def import_supply_points(cfg: Config, path: str | Path, actor: str) -> ImportReport:
    """account -> supply point rows (the network scheme's export). The points listed for an account replace the
    ones it had (an account moved to another feeder is no longer called about the old one)."""
    started = listimport.started_now()
    cache: dict[str, Account | None] = {}
    seen: dict[int, set[str]] = {}

    def apply(line: int, v: dict[str, str]) -> str:
        acc = listimport.account_of(cfg, v.get("account", ""), cache)
        point = v.get("point", "")
        if not POINT_RE.match(point):
            raise RowError(f"point {point!r}: use letters, digits and _ . : / - (at most 64)")
        seen.setdefault(acc.id, set()).add(point)
        _, created = SupplyLink.get_or_create(account=acc.id, point=point)
        return "new" if created else "unchanged"

    with listimport.reading(cfg, path, "supply_points", SUPPLY_COLUMNS, ("account", "point")) as rows:
        with database.atomic():
            listimport.apply_rows(rows, apply)
            for acc_id, pts in seen.items():
                gone = SupplyLink.delete().where(SupplyLink.account == acc_id,
                                                 SupplyLink.point.not_in(sorted(pts))).execute()
                if gone:
                    rows.report.updated += 1
        listimport.record_run(rows, actor, started)
    return rows.report


def import_outages(cfg: Config, path: str | Path, actor: str) -> ImportReport:
    """Outages from the dispatchers' system: outage id, points, from, to (local 'YYYY-MM-DD HH:MM'), kind, and
    optionally reason and status (scheduled | cancelled). A known id with other times is moved, with status
    cancelled is cancelled (both send corrections); the same row again changes nothing."""
    started = listimport.started_now()

    def apply(line: int, v: dict[str, str]) -> str:
        code = v.get("outage", "")
        if not CODE_RE.match(code):
            raise RowError(f"outage {code!r}: use letters, digits and _ . : / - (at most 64)")
        try:
            points = parse_points(v.get("points", ""))
        except IvrError as exc:
            raise RowError(f"points: {exc}") from None
        s = listimport.local_moment(cfg, v.get("from", ""), "from")
        e = listimport.local_moment(cfg, v.get("to", ""), "to")
        kind = v.get("kind", "").lower()
        status = (v.get("status") or "scheduled").lower()
        if status not in ("scheduled", "cancelled"):
            raise RowError(f"status {status!r}: expected scheduled or cancelled")
        reason = listimport.text(v.get("reason", ""), "reason", 400)
        try:
            _check(kind, s, e)
            o = Outage.get_or_none(Outage.code == code)
            if o is None:
                o = add(points, s, e, kind, reason=reason, code=code, actor=actor)
                if status == "cancelled":
                    cancel(o, actor=actor)
                return "new"
            if o.kind != kind:
                raise RowError(f"outage {code}: kind {kind} but it was recorded as {o.kind}")
            changed = False
            if set(points) != set(points_of(o)):
                OutagePoint.delete().where(OutagePoint.outage == o.id).execute()
                OutagePoint.insert_many([{"outage": o.id, "point": p} for p in points]).execute()
                changed = True
            if status == "cancelled":
                changed |= o.status != "cancelled"
                cancel(o, actor=actor)
            elif (o.starts_at, o.ends_at) != (s, e):
                if o.status == "cancelled":
                    raise RowError(f"outage {code} is cancelled; give the new one another id")
                move(o, s, e, actor=actor)
                changed = True
            if o.reason != reason:
                Outage.update(reason=reason).where(Outage.id == o.id).execute()
                changed = True
            return "updated" if changed else "unchanged"
        except IvrError as exc:
            raise RowError(str(exc)) from None

    with listimport.reading(cfg, path, "outages", OUTAGE_COLUMNS, ("outage", "points", "from", "to", "kind")) as rows:
        with database.atomic():
            listimport.apply_rows(rows, apply)
        listimport.record_run(rows, actor, started)
    return rows.report
