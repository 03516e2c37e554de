"""Read-only lists for managers and admins: the audit log, who will be called (eligibility), the reports.

Each reads through its domain module (ivr.ledger.audit, ivr.ledger.eligibility, ivr.report) and pages
its rows, so no page grows with the ledger.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request

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
