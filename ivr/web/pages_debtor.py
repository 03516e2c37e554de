"""A debtor's page and the search for one ("who called me?"): the web side of ivr.ledger.story and ivr.ledger.dnc.

Everyone may look an account up (operators check payments); numbers are shown in full to admins and managers
only (operators see full numbers in their worklist alone). Anyone may put a number or the account on the
do-not-call list (a debtor asks it of whoever answers); only admins and managers take an entry off. Both audited
by ivr.ledger.dnc.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, abort, g, redirect, render_template, request, session, url_for

from ivr.errors import IvrError
from ivr.ledger import dnc, story
from ivr.ledger.models import Account, Phone
from ivr.web.app import ALL_ROLES, actor, requires

bp = Blueprint("debtor", __name__)
SEARCH_KINDS = ("account", "phone", "name")


def _full_numbers() -> bool:
    return g.user.role in ("admin", "manager")


@bp.route("/accounts")
@requires(*ALL_ROLES)
def search() -> Any:
    q = request.args.get("q", "").strip()
    by = request.args.get("by", "name")
    by = by if by in SEARCH_KINDS else "name"
    found, error = [], ""
    if q:
        try:
            found = story.find_accounts(g.cfg, **{by: q})
        except IvrError as exc:
            error = str(exc)
        if len(found) == 1:
            return redirect(url_for("debtor.account", number=found[0].number))
    return render_template("search.html", q=q, by=by, kinds=SEARCH_KINDS, found=found, error=error)


@bp.route("/accounts/<path:number>")
@requires(*ALL_ROLES)
def account(number: str) -> Any:
    try:
        st = story.account_story(g.cfg, number, full_numbers=_full_numbers())
    except IvrError:
        abort(404)
    return render_template("account.html", st=st, number=number, error=session.pop("debtor_error", ""),
                           can_remove=_full_numbers())


def _target(number: str, which: str) -> dnc.Target:
    """'account' or 'phone:<position>' of this account: staff never type the number (nor see it, if operators)."""
    if which == "account":
        return dnc.Target("account", number)
    if which.startswith("phone:") and which[6:].isdigit():
        phone = (Phone.select().join(Account)
                 .where(Account.number == number, Phone.position == int(which[6:])).first())
        if phone is not None and phone.e164:
            return dnc.Target("number", phone.e164)
    raise dnc.DncError(f"{which!r} is not this account or one of its valid numbers")


@bp.route("/accounts/<path:number>/dnc", methods=["POST"])
@requires(*ALL_ROLES)
def dnc_change(number: str) -> Any:
    form = request.form
    try:
        target = _target(number, form.get("target", ""))
        if form.get("action") == "remove":
            if not _full_numbers():
                abort(403)
            dnc.remove(g.cfg, target, actor(), form.get("reason", ""))
        else:
            until = form.get("until", "").strip()
            try:
                until_day = date.fromisoformat(until) if until else None
            except ValueError:
                raise dnc.DncError(f"{until!r} is not a date (YYYY-MM-DD)") from None
            dnc.add(g.cfg, target, form.get("reason", ""), actor(), until=until_day, source="console")
    except dnc.DncError as exc:
        session["debtor_error"] = str(exc)
    return redirect(url_for("debtor.account", number=number))
