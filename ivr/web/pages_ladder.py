"""The escalation ladder in the console (managers and admins): the court candidates with their evidence, the
accounts per stage, a CSV for the legal department and moves by hand. The web side of ivr.campaign.ladder: the
same functions as `ivr court-list` and `ivr ladder move`.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, current_app, g, redirect, render_template, request, session, url_for

from ivr.campaign import ladder
from ivr.ledger.importer import spreadsheet_safe
from ivr.web.app import actor, requires

bp = Blueprint("ladder", __name__)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text.strip()) if text.strip() else datetime.now(
            ZoneInfo(g.cfg.locale.timezone)).date()
    except ValueError:
        return datetime.now(ZoneInfo(g.cfg.locale.timezone)).date()


@bp.route("/court", endpoint="court")
@requires("admin", "manager")
def court() -> Any:
    from ivr.web.pages_lists import _cached
    day = _day(request.args.get("day", ""))
    cfg = g.cfg  # the build may run in a worker thread (seconds on a large ledger), outside the request
    items = _cached(("court", day), lambda: ladder.positions(cfg, day))
    candidates = [p for p in items if p.stage == "court" and p.heard]  # ladder.court_candidates' own guard
    return render_template("court.html", day=day, items=candidates, counts=ladder.counts(items),
                           labels=ladder.LABELS, stages=ladder.STAGES, error=session.pop("ladder_error", ""),
                           done=session.pop("ladder_done", ""))


@bp.route("/court.csv")
@requires("admin", "manager")
def court_csv() -> Any:
    """The court list as `ivr court-list --format csv` writes it (UTF-8 with a BOM)."""
    day = _day(request.args.get("day", ""))
    buf = io.StringIO()
    buf.write("\ufeff")
    w = csv.writer(buf)
    w.writerow(ladder.COURT_COLUMNS)
    for row in ladder.court_rows(ladder.court_candidates(g.cfg, day), day):
        w.writerow([spreadsheet_safe(c) if i in ladder.BILLING_TEXT else c for i, c in enumerate(row)])
    return Response(buf.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="court-{day}.csv"'})


@bp.route("/ladder/move", methods=["POST"])
@requires("admin", "manager")
def move() -> Any:
    form = request.form
    day = _day(form.get("day", ""))
    try:
        ladder.move(g.cfg, form.get("account", ""), form.get("stage", ""), actor(), form.get("reason", ""), day)
    except ladder.LadderError as exc:
        session["ladder_error"] = str(exc)
    else:
        session["ladder_done"] = form.get("account", "")
        cache = current_app.extensions.get("ivr_page_cache", {})
        for key in [k for k in cache if k[0] == "court"]:  # the move shows at once, not after the cache's minute
            cache.pop(key, None)
    return redirect(url_for("ladder.court", day=day.isoformat()))
