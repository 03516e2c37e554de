"""The Messages page (admin, manager): edit each language's texts with the validation of `ivr prompts check`,
see the problems next to their lines, hear a message or the start of a call for a real account.

The web side of ivr.speech.editing; saving is audited there.
"""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, g, render_template, request

from ivr.errors import IvrError
from ivr.speech import editing, templates
from ivr.web.app import actor, requires

bp = Blueprint("texts", __name__)


def _lang() -> str:
    lang = request.values.get("lang", "") or g.cfg.locale.language
    return lang if lang in templates.LANGS else g.cfg.locale.language


def _file() -> str:
    f = request.values.get("file", "") or "messages"
    return f if f in editing.FILES else "messages"


def _page(lang: str, text: str, problems: list, saved: bool, status: int = 200) -> Any:
    file = _file()
    lines = text.splitlines()
    by_line: dict[int, list[str]] = {}
    for p in problems:
        if p.line is not None:
            by_line.setdefault(p.line, []).append(p.text)
    return render_template("messages.html", lang=lang, langs=templates.LANGS, text=text, problems=problems,
                           lines=lines, by_line=by_line, saved=saved, keys=("call", *templates.KEYS),
                           file=file, files=editing.FILES,
                           history=editing.history(g.cfg, lang, file=file), account=request.args.get("account", ""),
                           key=request.args.get("key", "call")), status


@bp.route("/messages", methods=["GET"])
@requires("admin", "manager")
def messages() -> Any:
    lang, file = _lang(), _file()
    text = editing.read_text(g.cfg, lang, file)
    return _page(lang, text, editing.check_text(text, lang, file) if text else [], False)


@bp.route("/messages", methods=["POST"])
@requires("admin", "manager")
def messages_save() -> Any:
    lang, file = _lang(), _file()
    text = request.form.get("text", "").replace("\r\n", "\n")
    problems = editing.check_text(text, lang, file)
    if problems or request.form.get("action") != "save":
        return _page(lang, text, problems, False, 400 if problems else 200)
    editing.save_text(g.cfg, lang, text, actor(), file)
    return _page(lang, text, [], True)


@bp.route("/messages/preview.wav")
@requires("admin", "manager")
def preview() -> Any:
    day = datetime.now(ZoneInfo(g.cfg.locale.timezone)).date()
    with tempfile.TemporaryDirectory(prefix="ivr-preview-") as tmp:
        out = Path(tmp) / "preview.wav"
        try:
            editing.preview_wav(g.cfg, request.args.get("account", ""), request.args.get("key", "call"), day, out)
        except IvrError as exc:
            return str(exc), 404, {"Content-Type": "text/plain; charset=utf-8"}
        return Response(out.read_bytes(), mimetype="audio/wav")
