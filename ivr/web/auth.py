"""Logging in and out, the session's language, and the users page (admin): the web side of ivr.admin.users."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlparse

from flask import Blueprint, g, redirect, render_template, request, session, url_for

from ivr.admin import users
from ivr.web.app import _, actor, public, requires
from ivr.web.i18n import LANGUAGES

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    """Only a path on this site (never another host: an open redirect would help phishing)."""
    if not target:
        return url_for("live.tonight")
    u = urlparse(target)
    if u.scheme or u.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("live.tonight")
    return target


@bp.route("/login", methods=["GET", "POST"])
@public
def login() -> Any:
    error = session.pop("flash_key", "")
    error = _(error) if error else ""
    if request.method == "POST":
        name = request.form.get("name", "")
        result = users.authenticate(name, request.form.get("password", ""), g.cfg.web.login_attempts,
                                    g.cfg.web.login_block_minutes)
        if result.ok:
            lang = session.get("lang")
            session.clear()  # a fresh session: nothing from before the login survives (fixation)
            if lang:
                session["lang"] = lang
            session["user"] = result.user.name
            session["seen"] = time.time()
            session.permanent = True
            return redirect(_safe_next(request.args.get("next")))
        if result.blocked_until is not None:
            from ivr.web.app import _fmt_dt
            error = _("Too many wrong passwords: try again after {time}.", time=_fmt_dt(result.blocked_until,
                                                                                      "%H:%M"))
            return render_template("login.html", error=error, name=name), 429
        error = _("Wrong user name or password.")
        return render_template("login.html", error=error, name=name), 401
    return render_template("login.html", error=error, name="")


@bp.route("/logout", methods=["POST"])
@public
def logout() -> Any:
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    return redirect(url_for("auth.login"))


@bp.route("/lang/<code>")
@public
def set_language(code: str) -> Any:
    """Only changes how the console speaks to this browser, so a plain link is enough (no form)."""
    if code in LANGUAGES:
        session["lang"] = code
    return redirect(_safe_next(request.referrer and urlparse(request.referrer).path))


@bp.route("/users", endpoint="users", methods=["GET", "POST"])
@requires("admin")
def users_page() -> Any:
    error = ""
    if request.method == "POST":
        try:
            if request.form.get("action") == "disable":
                users.disable_user(request.form.get("name", ""), actor())
            else:
                users.add_user(request.form.get("name", ""), request.form.get("role", ""),
                               request.form.get("password", ""), actor())
            return redirect(url_for("auth.users"))
        except users.UserError as exc:
            error = str(exc)
    return render_template("users.html", users=users.list_users(), roles=users.ROLES, error=error), (
        400 if error else 200)

