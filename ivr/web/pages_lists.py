"""Read-only lists for managers and admins: the audit log, who will be called (eligibility), the reports.

Each reads through its domain module (ivr.ledger.audit, ivr.ledger.eligibility, ivr.report) and pages
its rows, so no page grows with the ledger.
"""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, abort, current_app, g, render_template, request

from ivr.ledger import audit
from ivr.web.app import requires

bp = Blueprint("lists", __name__)
PAGE_SIZE = 50


def page_number() -> int:
    try:
        return max(1, int(request.args.get("page", "1")))
    except ValueError:
        return 1


@bp.route("/audit")
@requires("admin", "manager")
def audit_log() -> Any:
    page = page_number()
    who = request.args.get("actor", "").strip()
    action = request.args.get("action", "").strip()
    rows = audit.recent(PAGE_SIZE + 1, (page - 1) * PAGE_SIZE, action_prefix=action, actor=who)
    return render_template("audit.html", rows=rows[:PAGE_SIZE], page=page, more=len(rows) > PAGE_SIZE,
                           actor=who, action=action)


def _day_arg(name: str = "day") -> date | None:
    text = request.args.get(name, "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _amount(name: str) -> Decimal | None:
    text = request.args.get(name, "").strip().replace(",", ".").replace(" ", "")
    if not text:
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{text!r} is not an amount") from None


@bp.route("/eligible")
@requires("admin", "manager")
def eligible() -> Any:
    from ivr.ledger import eligibility, verdicts
    day = _day_arg() or datetime.now(ZoneInfo(g.cfg.locale.timezone)).date()
    page = page_number()
    excluded = request.args.get("list") == "excluded"
    district = request.args.get("district", "")
    reason = request.args.get("reason", "")
    error = ""
    try:
        lo, hi = _amount("min"), _amount("max")
    except ValueError as exc:
        error, lo, hi = str(exc), None, None
    state = _stored_verdicts(day)
    if state is None:  # being built in the background: say so rather than show a list that is not up to date
        started = verdicts.building(day)
        return render_template("eligible.html", result=None, day=day, excluded=excluded, district=district,
                               reason=reason, districts=eligibility.districts(), page=1, pages=1, more=False,
                               error=error, state=None,
                               started=datetime.fromtimestamp(started or time.time(), UTC).astimezone(
                                   ZoneInfo(g.cfg.locale.timezone)))
    result = verdicts.listing(day, excluded=excluded, district=district, reason=reason, amount_min=lo,
                              amount_max=hi, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE, state=state)
    pages = max(1, -(-result.total // PAGE_SIZE))
    return render_template("eligible.html", result=result, day=day, excluded=excluded, district=district,
                           reason=reason, districts=eligibility.districts(), page=page, pages=pages,
                           more=page < pages, error=error, state=state, started=None)


# More changed accounts than this and the lists are brought up to date in the background, not in the request.
SYNC_REFRESH_LIMIT = 2_000


def _stored_verdicts(day: date) -> Any:
    """The stored verdicts' state once they are up to date for `day` (ivr.ledger.verdicts), else None while a
    background build or refresh runs (started here if need be). Without IVR_OFFLOAD (tests, tools) the build
    runs in the request."""
    from ivr.ledger import verdicts
    cfg = g.cfg
    background = bool(current_app.config.get("IVR_OFFLOAD"))
    if verdicts.building(day) is not None:
        return None
    if verdicts.refresh(cfg, day, limit=SYNC_REFRESH_LIMIT if background else verdicts.INCREMENTAL_LIMIT) is None:
        if background:
            verdicts.build_in_background(cfg, day)
            return None
        verdicts.ensure(cfg, day)
    return verdicts.stored_day(cfg)


# A morning report or an eligibility pass over a large ledger takes seconds: the pages of one list, and the CSV,
# reuse one build for a minute (per application), so paging through it does not rebuild it each time.
CACHE_TTL_SECONDS = 60.0
CACHE_ENTRIES = 4


def offload(build: Any) -> Any:
    """Run a build of seconds in gevent's thread pool, so `ivr web` (one thread, not monkey-patched) answers the
    other pages meanwhile; the worker thread opens its own database connection and closes it when done."""
    import gevent

    from ivr.ledger import models

    def job() -> Any:
        try:
            return build()
        finally:
            if not models.database.is_closed():
                models.database.close()  # this thread's connection only (peewee keeps one per thread)
    return gevent.get_hub().threadpool.spawn(job).get()


def _cached(key: tuple, build: Any) -> Any:
    cache: dict[tuple, tuple[float, Any]] = current_app.extensions.setdefault("ivr_page_cache", {})
    hit = cache.get(key)
    if hit and time.monotonic() - hit[0] < CACHE_TTL_SECONDS:
        return hit[1]
    value = offload(build) if current_app.config.get("IVR_OFFLOAD") else build()
    if len(cache) >= CACHE_ENTRIES:
        cache.pop(min(cache, key=lambda k: cache[k][0]))
    cache[key] = (time.monotonic(), value)
    return value


def _report(day: date) -> Any:
    from ivr.report.data import build_report
    cfg = g.cfg
    return _cached(("report", day), lambda: build_report(cfg, day))


def _campaign_days() -> list[date]:
    from ivr.ledger.models import Campaign
    return [c.day for c in Campaign.select(Campaign.day).where(Campaign.kind == "debt").order_by(Campaign.day.desc()).limit(60)]


@bp.route("/reports")
@requires("admin", "manager")
def reports() -> Any:
    from ivr.errors import IvrError
    from ivr.report import stored
    from ivr.report.html import percent, ratio
    from ivr.report.trends import PAID_DAYS
    days = _campaign_days()
    day = _day_arg() or (days[0] if days else None)
    if day is None:
        return render_template("reports.html", days=days, day=None, data=None, rows=[], error="")
    try:
        report = _stored_report(day)
    except IvrError as exc:
        return render_template("reports.html", days=days, day=day, data=None, rows=[], error=str(exc)), 404
    if report is None:  # the first build runs in the background: say so
        started = stored.building(day) or time.time()
        return render_template("reports.html", days=days, day=day, data=None, rows=[], error="",
                               started=datetime.fromtimestamp(started, UTC).astimezone(
                                   ZoneInfo(g.cfg.locale.timezone)))
    q = request.args.get("q", "").strip()
    page = page_number()
    rows, total = stored.people_page(report.campaign_id, q, (page - 1) * PAGE_SIZE, PAGE_SIZE, report.people)
    pages = max(1, -(-total // PAGE_SIZE))
    first = page == 1 and not q
    return render_template("reports.html", days=days, day=day, data=report.data, rows=rows, q=q, page=page,
                           pages=pages, more=page < pages, total=total, charts=report.charts if first else [],
                           percent=percent, ratio=ratio, error="", paid_days=PAID_DAYS,
                           evenings=stored.evenings() if first else [], report=report,
                           rebuilding=report.stale and stored.building(day) is not None)


def _stored_report(day: date) -> Any:
    """The stored report of `day` (ivr.report.stored), rebuilt when the ledger has moved since it was built: in the
    background as `ivr web` serves it (the stored one is shown meanwhile, marked out of date; None when there is
    none yet), in the request without IVR_OFFLOAD (tests, tools)."""
    from ivr.report import stored
    report = stored.stored(day)
    if report is not None and not report.stale:
        return report
    if current_app.config.get("IVR_OFFLOAD"):
        stored.build_in_background(g.cfg, day)
        return report
    stored.build(g.cfg, day)
    return stored.stored(day)


@bp.route("/reports/<day>.csv")
@requires("admin", "manager")
def report_csv(day: str) -> Any:
    """The report as CSV (`ivr report --format csv`'s rows). UTF-8 with a BOM; `?excel=1`: ';'-separated with
    a decimal comma when locale.language writes one (every language here but English), account numbers kept as
    text (leading zeros)."""
    from ivr.errors import IvrError
    from ivr.report.csvout import REPORT_COLUMNS, report_rows, spreadsheet_rows
    try:
        data = _report(date.fromisoformat(day))
    except (ValueError, IvrError):
        abort(404)
    excel = request.args.get("excel") == "1"
    buf = io.StringIO()
    buf.write("\ufeff")  # a spreadsheet then reads the names' Cyrillic as UTF-8
    w = csv.writer(buf, delimiter=";" if excel else ",")
    w.writerow(REPORT_COLUMNS)
    w.writerows(spreadsheet_rows(report_rows(data), decimal_comma=excel and g.cfg.locale.language != "en",
                                 excel=excel))
    suffix = "-excel" if excel else ""
    return Response(buf.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="report-{data.day}{suffix}.csv"'})
