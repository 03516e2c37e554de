"""The console's Flask application: sessions, CSRF, roles, languages, and the blueprints of its pages.

`create_app(cfg, secret_key)` builds it. Security lives here, once for every page:
- every view is declared with `@requires(role, ...)` (or `@public`); a test walks the URL map to check none is
  left undeclared, and the role is checked on the server for every request;
- sessions are signed cookies (HttpOnly, SameSite=Lax, Secure when `web.cookie_secure`), end after
  `web.session_minutes` without a request (checked on the server, not only by the cookie's expiry), and end
  at once when the user is disabled;
- Flask-WTF's CSRFProtect refuses any POST without the session's token.

Database: the models' connection is opened once per process (gevent's pywsgi without monkey-patching runs
every request on one thread, and database calls do not yield); `per_request_db=True` opens and closes it
around each request instead, for gunicorn's gevent workers where each greenlet has its own connection.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from pathlib import Path
from typing import Any

from flask import Flask, abort, current_app, g, redirect, render_template, request, session, url_for
from flask_wtf.csrf import CSRFError, CSRFProtect
from markupsafe import Markup

from ivr.config import Config
from ivr.web.i18n import LANGUAGE_NAMES, LANGUAGES, gettext

HERE = Path(__file__).parent
ROLE_NAMES = ("admin", "manager", "operator")
ALL_ROLES = ROLE_NAMES


def requires(*roles: str) -> Callable:
    """Only logged-in users with one of `roles` may use the view (others: login page, or 403)."""
    unknown = set(roles) - set(ROLE_NAMES)
    if not roles or unknown:
        raise ValueError(f"requires: roles must be among {ROLE_NAMES}, got {roles}")

    def deco(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if g.user is None:
                if request.headers.get("HX-Request"):
                    return "", 401, {"HX-Redirect": url_for("auth.login")}
                return redirect(url_for("auth.login", next=request.full_path if request.args else request.path))
            if g.user.role not in roles:
                abort(403)
            return view(*args, **kwargs)
        wrapped.allowed_roles = roles  # type: ignore[attr-defined]
        return wrapped
    return deco


def public(view: Callable) -> Callable:
    """A view anyone may open (the login page)."""
    view.allowed_roles = ()  # type: ignore[attr-defined]
    return view


def actor() -> str:
    """The audit actor of the current request: the console user's name."""
    return g.user.name


def _(text: str, **values: object) -> str:
    return gettext(text, g.get("lang", "en"), **values)


def create_app(cfg: Config, secret_key: str, *, per_request_db: bool = False, testing: bool = False) -> Flask:
    app = Flask("ivr.web", template_folder=str(HERE / "templates"), static_folder=str(HERE / "static"))
    app.config.update(
        SECRET_KEY=secret_key,
        SESSION_COOKIE_NAME="ivr_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=cfg.web.cookie_secure,
        # the cookie outlives the idle limit so the server's own check (below) can say the session ended;
        # the signed timestamp still refuses a cookie older than this
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=cfg.web.session_minutes * 2),
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session (which expires on its own)
        MAX_CONTENT_LENGTH=512 * 1024 * 1024,  # a full accounts export of a big utility
        TESTING=testing,
    )
    app.extensions["ivr_config"] = cfg
    CSRFProtect(app)

    from ivr.web import (
        auth,
        pages_debtor,
        pages_import,
        pages_ladder,
        pages_lists,
        pages_live,
        pages_texts,
        pages_work,
    )
    app.register_blueprint(auth.bp)
    app.register_blueprint(pages_import.bp)
    app.register_blueprint(pages_debtor.bp)
    app.register_blueprint(pages_texts.bp)
    app.register_blueprint(pages_live.bp)
    app.register_blueprint(pages_work.bp)
    app.register_blueprint(pages_lists.bp)
    app.register_blueprint(pages_ladder.bp)

    @app.before_request
    def load_user() -> Any:
        from ivr.admin.users import active_user
        from ivr.ledger import models
        if per_request_db:
            models.database.connect(reuse_if_open=True)
        g.cfg = cfg
        g.user = None
        g.lang = session.get("lang") if session.get("lang") in LANGUAGES else cfg.locale.language
        name = session.get("user")
        if not name:
            return None
        now = time.time()
        if now - float(session.get("seen", 0)) > cfg.web.session_minutes * 60:
            session.clear()
            if g.lang != cfg.locale.language:
                session["lang"] = g.lang
            session["flash_key"] = "Your session has ended; please log in again."
            return None
        user = active_user(name)
        if user is None:  # disabled (or removed) since logging in: the session ends now
            session.clear()
            return None
        g.user = user
        session["seen"] = now
        session.permanent = True
        return None

    @app.teardown_request
    def close_db(_exc: BaseException | None) -> None:
        if per_request_db:
            from ivr.ledger import models
            if not models.database.is_closed():
                models.database.close()

    @app.after_request
    def headers(resp: Any) -> Any:
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("X-Frame-Options", "DENY")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        resp.headers.setdefault("Content-Security-Policy",
                                "default-src 'self'; img-src 'self' data:; media-src 'self' blob:; "
                                "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
        if request.endpoint != "static":
            resp.headers.setdefault("Cache-Control", "no-store")
        return resp

    @app.context_processor
    def helpers() -> dict[str, Any]:
        return {"_": _, "user": g.get("user"), "lang": g.get("lang", "en"), "languages": LANGUAGE_NAMES,
                "nav": _nav(), "fmt_dt": _fmt_dt, "fmt_money": _fmt_money, "outcome_label": _outcome_label}

    @app.errorhandler(403)
    def forbidden(_e: Any) -> Any:
        return render_template("error.html", message=_("You may not open this page.")), 403

    @app.errorhandler(404)
    def not_found(_e: Any) -> Any:
        return render_template("error.html", message=_("Page not found.")), 404

    @app.errorhandler(CSRFError)
    def csrf_refused(_e: Any) -> Any:
        return render_template("error.html", message=_("The form has expired; please try again.")), 400

    @app.route("/")
    @requires(*ALL_ROLES)
    def home() -> Any:
        return redirect(url_for("live.tonight"))

    return app


NAV = [  # endpoint, English title, roles that see it
    ("live.tonight", "Tonight", ALL_ROLES),
    ("live.controls", "Controls", ("admin",)),
    ("work.callbacks", "Callbacks", ALL_ROLES),
    ("debtor.search", "Debtors", ALL_ROLES),
    ("lists.eligible", "Who will be called", ("admin", "manager")),
    ("lists.reports", "Reports", ("admin", "manager")),
    ("ladder.court", "Court list", ("admin", "manager")),
    ("imports.import_form", "Import", ("admin", "manager")),
    ("texts.messages", "Messages", ("admin", "manager")),
    ("lists.audit_log", "Audit log", ("admin", "manager")),
    ("auth.users", "Users", ("admin",)),
]


def _nav() -> list[tuple[str, str, bool]]:
    user = g.get("user")
    if user is None:
        return []
    return [(url_for(ep), _(title), request.endpoint == ep) for ep, title, roles in NAV
            if user.role in roles and ep in current_app.view_functions]


def _fmt_dt(value: Any, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A naive-UTC ledger time (or an aware one) in locale.timezone."""
    if value is None:
        return ""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(ZoneInfo(g.cfg.locale.timezone))
    return value.strftime(fmt)


def _outcome_label(code: str) -> str:
    """A ledger outcome code as the report's English label (the catalogue then translates it)."""
    from ivr.report.data import LABELS
    return LABELS.get(code, code)


def _fmt_money(value: Any) -> Markup | str:
    from ivr.report.html import money
    return money(value)
