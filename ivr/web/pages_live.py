"""The Tonight page (everyone) and the Controls page (admin): the web side of `ivr status` and `ivr set/pause/...`.

Both read and write through ivr.admin.status and ivr.admin.control, the functions the CLI uses; the Tonight
panel refreshes itself with htmx every few seconds and costs one `snapshot` (what `ivr status` costs) plus
one indexed audit-log read for "paused by whom".
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, redirect, render_template, request, session, url_for

from ivr.admin import control
from ivr.admin.status import RATE_WINDOW_SECONDS, Headline, headline, snapshot
from ivr.web.app import ALL_ROLES, _, _fmt_dt, actor, requires

bp = Blueprint("live", __name__)
REFRESH_SECONDS = 3


def headline_text(h: Headline) -> str:
    """The campaign's state in the reader's language."""
    at = _fmt_dt(h.at, "%H:%M") if h.at else ""
    if h.code == "no_campaign":
        return _("No campaign yet.")
    if h.code == "calling":
        return _("Calling")
    if h.code == "waiting_window":
        return _("Waiting: the calling window opens at {time}", time=at) if at else _(
            "Waiting for the calling window")
    if h.code == "paused":
        if h.by:
            return _("Paused by {who} at {time}", who=h.by, time=at)
        return _("Paused: {reason}", reason=h.reason) if h.reason else _("Paused")
    if h.code == "stopping":
        return (_("Stopping: asked by {who} at {time}; calls in progress finish", who=h.by, time=at) if h.by
                else _("Stopping; calls in progress finish"))
    if h.code == "no_dialer":
        return (_("No dialer alive for {minutes} min", minutes=h.minutes) if h.minutes is not None
                else _("No dialer is running"))
    if h.code == "stopped":
        return _("Stopped")
    return _("Finished")


def _panel_context() -> dict[str, Any]:
    snap = snapshot(g.cfg)
    head = headline(g.cfg, snap)
    return {"snap": snap, "head": head, "head_text": headline_text(head), "rate_window": RATE_WINDOW_SECONDS,
            "refresh": REFRESH_SECONDS}


@bp.route("/tonight")
@requires(*ALL_ROLES)
def tonight() -> Any:
    return render_template("tonight.html", **_panel_context())


@bp.route("/tonight/panel")
@requires(*ALL_ROLES)
def tonight_panel() -> Any:
    return render_template("_tonight_panel.html", **_panel_context())


@bp.route("/controls", methods=["GET"])
@requires("admin")
def controls() -> Any:
    state = control.read_state()
    message = session.pop("controls_message", "")
    error = session.pop("controls_error", "")
    return render_template("controls.html", state=state, pacing=g.cfg.pacing, message=message, error=error,
                           head_text=headline_text(headline(g.cfg, snapshot(g.cfg))))


@bp.route("/controls", methods=["POST"])
@requires("admin")
def controls_change() -> Any:
    what = request.form.get("action", "")
    try:
        if what == "channels":
            control.set_channels(request.form.get("value", ""), actor())
        elif what == "cps":
            control.set_cps(request.form.get("value", ""), actor())
        elif what in ("pause", "resume", "stop"):
            getattr(control, what)(actor())
        elif what == "defaults":
            control.reset_pacing(actor())
        else:
            raise control.ControlValueError(f"action {what!r} is not one of channels, cps, pause, resume, stop, "
                                            "defaults")
        session["controls_message"] = _("Done.")
    except control.ControlValueError as exc:
        session["controls_error"] = str(exc)
    return redirect(url_for("live.controls"))
