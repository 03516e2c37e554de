"""The callback worklist (operators, managers, admins): the web side of ivr.ledger.callbacks, with the
life-support accounts a person must inform first (ivr.campaign.lifesupport) at its top.

The only page where an operator sees full phone numbers: they dial them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, g, redirect, render_template, request, session, url_for

from ivr.campaign import lifesupport
from ivr.ledger import callbacks
from ivr.web.app import ALL_ROLES, _, actor, requires

bp = Blueprint("work", __name__)
PAGE_SIZE = 100


def _local_to_utc(text: str) -> datetime | None:
    """A datetime-local field (YYYY-MM-DDTHH:MM, locale.timezone) as naive UTC; '' = None."""
    text = text.strip()
    if not text:
        return None
    try:
        local = datetime.fromisoformat(text)
    except ValueError:
        raise callbacks.CallbackError(f"{text!r} is not a date and time (YYYY-MM-DD HH:MM)") from None
    return local.replace(tzinfo=ZoneInfo(g.cfg.locale.timezone)).astimezone(UTC).replace(tzinfo=None)


def _date(text: str) -> date | None:
    text = text.strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise callbacks.CallbackError(f"{text!r} is not a date (YYYY-MM-DD)") from None


@bp.route("/callbacks", endpoint="callbacks")
@requires(*ALL_ROLES)
def callbacks_list() -> Any:
    from ivr.web.pages_lists import page_number
    district = request.args.get("district", "")
    page = page_number()
    total = callbacks.count_open(district or None)
    pages = max(1, -(-total // PAGE_SIZE))
    items = callbacks.worklist(district or None, PAGE_SIZE, (page - 1) * PAGE_SIZE)
    today = datetime.now(ZoneInfo(g.cfg.locale.timezone)).date()
    life = lifesupport.pending(g.cfg, today, district or None) if page == 1 else []
    return render_template("callbacks.html", items=items, districts=callbacks.districts(), district=district,
                           error=session.pop("work_error", ""), me=g.user.name, total=total, page=page,
                           pages=pages, more=page < pages, life=life, done=session.pop("work_done", ""))


@bp.route("/callbacks/life-support/informed", methods=["POST"])
@requires(*ALL_ROLES)
def life_support_informed() -> Any:
    """An operator informed a life-support account in person: who (the user), when (the form, or now), which
    kind. From then on `life_support.after_informed` decides whether the robot may follow."""
    form = request.form
    account = form.get("account", "")
    try:
        lifesupport.record_informed(account, form.get("kind", "debt"), actor(),
                                    at=_local_to_utc(form.get("informed_at", "")), note=form.get("note", ""))
    except (lifesupport.LifeSupportError, callbacks.CallbackError) as exc:
        session["work_error"] = str(exc)
    else:
        session["work_done"] = account
    return redirect(url_for("work.callbacks"))



@bp.route("/callbacks/<int:rid>")
@requires(*ALL_ROLES)
def callback_detail(rid: int) -> Any:
    try:
        item = callbacks.get(rid)
    except callbacks.CallbackError:
        return render_template("error.html", message=_("Page not found.")), 404
    return render_template("callback.html", item=item, notes=callbacks.history(rid), results=callbacks.RESULTS,
                           error=session.pop("work_error", ""), me=g.user.name)


@bp.route("/callbacks/<int:rid>/take", methods=["POST"])
@requires(*ALL_ROLES)
def take(rid: int) -> Any:
    try:
        callbacks.take(rid, actor())
    except callbacks.CallbackError as exc:
        session["work_error"] = str(exc)
        return redirect(url_for("work.callbacks"))
    return redirect(url_for("work.callback_detail", rid=rid))


@bp.route("/callbacks/<int:rid>/release", methods=["POST"])
@requires(*ALL_ROLES)
def release(rid: int) -> Any:
    try:
        callbacks.release(rid, actor())
    except callbacks.CallbackError as exc:
        session["work_error"] = str(exc)
    return redirect(url_for("work.callbacks"))


@bp.route("/callbacks/<int:rid>/result", methods=["POST"])
@requires(*ALL_ROLES)
def record(rid: int) -> Any:
    form = request.form
    try:
        callbacks.record(rid, actor(), form.get("result", ""), promised_on=_date(form.get("promised_on", "")),
                         next_call_at=_local_to_utc(form.get("next_call_at", "")), note=form.get("note", ""),
                         close=form.get("close") == "1")
    except callbacks.CallbackError as exc:
        session["work_error"] = str(exc)
        return redirect(url_for("work.callback_detail", rid=rid))
    if form.get("close") == "1":
        return redirect(url_for("work.callbacks"))
    return redirect(url_for("work.callback_detail", rid=rid))
