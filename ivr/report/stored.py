"""Morning reports kept in the database, so the console's Reports page never builds one while a person waits.

`build(cfg, day)` builds the report (ivr.report.data.build_report, the same facts as `ivr report`), then stores
its figures (JSON, ivr.report.codec), its two charts, the evening's trends row, and its person table one row per
person in the report's order, searchable text included. The page reads the figures back and pages and searches
the person table by SQL (`people_page`), so it costs the same for 1,000 people as for 1,000,000.

A stored report says when it was built; with it goes a watermark of what it was built from (the campaign's calls
per outcome and queue per state from the trigger-kept tallies, the latest payment, balance and message, the
campaign's status). When the watermark has moved the report is out of date: the console shows the stored one with
that said and rebuilds it in the background. Not seen by the watermark: a person's name or district changed in
billing, a payment's amount corrected in place; the next build shows them.

`ivr report` stores what it builds, so the morning's report is there before anyone opens the page.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

import peewee as pw

from ivr.config import Config
from ivr.ledger import background, tally, trigram
from ivr.ledger.db import insert_rows
from ivr.ledger.models import Balance, Campaign, Message, Payment, ReportCache, ReportPerson, database
from ivr.report import codec
from ivr.report import data as report_data
from ivr.report.data import ReportData, get_campaign
from ivr.report.trends import Evening, evening


def watermark(camp: Campaign) -> str:
    """What a report of `camp` is built from, in a few indexed reads (see the module's docstring)."""
    parts = [camp.status, camp.status_reason, camp.eligible_count, camp.holdout_count,
             sorted(tally.counts("outcome", camp.id).items()), sorted(tally.counts("queue", camp.id).items()),
             Payment.select(pw.fn.MAX(Payment.id)).scalar(), Balance.select(pw.fn.MAX(Balance.id)).scalar(),
             Message.select(pw.fn.MAX(Message.id)).where(Message.campaign == camp).scalar()]
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()


def _summary(data: ReportData) -> str:
    """The report's figures without its people (they go to report_person, one row each)."""
    return json.dumps(codec.dump(dataclasses.replace(data, people=[])))


def _charts(data: ReportData) -> list[str]:
    from ivr.report.html import chart_money, chart_outcomes
    return [c for c in (chart_outcomes(data), chart_money(data)) if c]


def build(cfg: Config, day: date) -> ReportData:
    """Build the report of the campaign of `day` and store it (replacing the stored one); returns it."""
    camp = get_campaign(day)
    mark = watermark(camp)  # before building: a change made meanwhile leaves the stored report out of date
    data = report_data.build_report(cfg, day)
    save(camp, data, mark)
    return data


def save(camp: Campaign, data: ReportData, mark: str) -> None:
    """Store `data` (a report of `camp` built from the ledger as `mark` says)."""
    charts = json.dumps(_charts(data))
    row = json.dumps(codec.dump(evening(camp)))
    with database.atomic():
        ReportPerson.delete().where(ReportPerson.campaign == camp).execute()
        fields = [ReportPerson.campaign, ReportPerson.pos, ReportPerson.account_id, ReportPerson.account,
                  ReportPerson.name, ReportPerson.district, ReportPerson.number_masked, ReportPerson.debt,
                  ReportPerson.calls, ReportPerson.final_label, ReportPerson.paid, ReportPerson.search]
        insert_rows(fields, [
            (camp.id, i, p.account_id, p.account, p.name, p.district, p.number_masked, str(p.debt),
             json.dumps([[a.at_local.strftime("%H:%M"), a.label] for a in p.attempts]), p.final_label,
             # \x1f between the parts: SQLite's LIKE stops at a NUL
             str(p.paid), "\x1f".join((p.account, p.name, p.district, p.number_masked)).lower())
            for i, p in enumerate(data.people)])
        trigram.add(ReportPerson.search, "campaign_id = ?", [camp.id])
        ReportCache.delete().where(ReportCache.campaign == camp).execute()
        ReportCache.create(campaign=camp, generated_at=datetime.now(UTC).replace(tzinfo=None), watermark=mark,
                           summary=_summary(data), charts=charts, evening=row, people=len(data.people))


@dataclass
class Stored:
    """A stored report: its figures (people left out: see `people_page`), charts, when, and whether the ledger
    has moved since."""

    campaign_id: int
    data: ReportData
    charts: list[str]
    generated_at: datetime  # naive UTC
    people: int
    stale: bool


def stored(day: date) -> Stored | None:
    """The stored report of the campaign of `day` (None: never built). Raises IvrError for no such campaign."""
    camp = get_campaign(day)
    row = ReportCache.get_or_none(ReportCache.campaign == camp)
    if row is None:
        return None
    return Stored(camp.id, codec.load(ReportData, json.loads(row.summary)), json.loads(row.charts),
                  row.generated_at, row.people, row.watermark != watermark(camp))


@dataclass(slots=True)
class PersonLine:
    """A person row of the Reports page."""

    account: str
    name: str
    district: str
    number_masked: str
    debt: Decimal
    calls: list[tuple[str, str]]  # (local HH:MM, outcome label)
    final_label: str
    paid: Decimal


def people_page(campaign_id: int, q: str = "", offset: int = 0, limit: int = 50,
                total: int | None = None) -> tuple[list[PersonLine], int]:
    """One page of a stored report's person table, in the report's order, and how many match: `q` matches a
    part of the account, name, district or masked number, in any case. `total`: the people of the report,
    when known, saves counting them without a search."""
    cond = ReportPerson.campaign == campaign_id
    needle = q.strip().lower()
    if needle:
        cond &= trigram.contains(ReportPerson.search, needle, recheck=True)
        query = ReportPerson.select().where(cond).order_by(ReportPerson.pos).limit(limit).offset(offset)
    else:  # the positions are 0..n-1: a page is a range of the primary key
        query = (ReportPerson.select().where(cond & (ReportPerson.pos >= offset) & (ReportPerson.pos < offset + limit))
                 .order_by(ReportPerson.pos))
    if total is None or needle:
        total = ReportPerson.select(pw.fn.COUNT(pw.SQL("*"))).where(cond).scalar() or 0
    rows = [PersonLine(p.account, p.name, p.district, p.number_masked, p.debt,
                       [tuple(c) for c in json.loads(p.calls)], p.final_label, p.paid) for p in query]
    return rows, total


def evenings(limit: int = 14) -> list[Evening]:
    """The trends over the latest `limit` evenings, newest first (ivr.report.trends.trends's rows): each
    evening's row as stored with its report while that report is up to date, else counted from the ledger."""
    camps = list(Campaign.select().where(Campaign.kind == "debt").order_by(Campaign.day.desc()).limit(limit))
    kept = {c: (e, w) for c, e, w in ReportCache.select(ReportCache.campaign, ReportCache.evening,
                                                         ReportCache.watermark)
            .where(ReportCache.campaign.in_([c.id for c in camps])).tuples() if e}
    out = []
    for c in camps:
        row, mark = kept.get(c.id, ("", ""))
        out.append(codec.load(Evening, json.loads(row)) if row and mark == watermark(c) else evening(c))
    return out


def build_in_background(cfg: Config, day: date) -> float:
    """Start building the report of `day` in a thread (unless that runs); returns when it started."""
    return background.start(("report", day), lambda: build(cfg, day))


def building(day: date) -> float | None:
    """When the running background build of `day`'s report started (None: none runs)."""
    return background.running(("report", day))
