"""The Import page (admin, manager): upload a billing export, see its first rows and the column mapping, import
it, read the result (counts, rejected lines, numbers that will not be dialled), and confirm an export the
anomaly guard holds. The web side of ivr.ledger.preview and ivr.ledger.importer (the confirmation is audited
there as `import.confirm_anomaly`).

Uploaded files are kept under `web.upload_dir` with a random name (the import run and the audit log refer to
them); a form names an upload only by that name, checked against the folder.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, g, render_template, request

from ivr.ledger import importer
from ivr.ledger.csvread import CsvFormatError
from ivr.ledger.preview import preview_file
from ivr.web.app import actor, requires

bp = Blueprint("imports", __name__)
KINDS = ("accounts", "payments")
_UPLOAD_RE = re.compile(r"^\d{8}T\d{6}-[0-9a-f]{12}-(accounts|payments)-[A-Za-z0-9._-]{1,80}$")
SHOW = 200  # rejected lines listed on the page (all of them are in the rejects file)


def _folder() -> Path:
    return g.cfg.path(g.cfg.web.upload_dir)


def _uploaded(name: str) -> Path | None:
    """The upload of that name, or None (never a path outside the upload folder)."""
    if not _UPLOAD_RE.match(name or ""):
        return None
    path = _folder() / name
    return path if path.is_file() else None


@bp.route("/import", methods=["GET"])
@requires("admin", "manager")
def import_form() -> Any:
    return render_template("import.html", kinds=KINDS, preview=None, report=None, upload="", error="",
                           export=g.cfg.imports.accounts_export)


@bp.route("/import", methods=["POST"])
@requires("admin", "manager")
def upload() -> Any:
    kind = request.form.get("kind", "")
    export = request.form.get("export", g.cfg.imports.accounts_export)
    file = request.files.get("file")
    if kind not in KINDS or file is None or not file.filename:
        return render_template("import.html", kinds=KINDS, preview=None, report=None, upload="", export=export,
                               error="choose the kind of export and a file"), 400
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(file.filename).name)[-80:] or "export.csv"
    name = f"{datetime.now():%Y%m%dT%H%M%S}-{secrets.token_hex(6)}-{kind}-{safe}"
    folder = _folder()
    folder.mkdir(parents=True, exist_ok=True)
    file.save(folder / name)
    try:
        preview = preview_file(g.cfg, folder / name, kind)
    except CsvFormatError as exc:
        return render_template("import.html", kinds=KINDS, preview=None, report=None, upload="", export=export,
                               error=str(exc).replace(str(folder / name), safe)), 400
    return render_template("import.html", kinds=KINDS, preview=preview, report=None, upload=name, export=export,
                           error="", filename=safe)


@bp.route("/import/run", methods=["POST"])
@requires("admin", "manager")
def run() -> Any:
    name = request.form.get("upload", "")
    path = _uploaded(name)
    if path is None:
        return render_template("import.html", kinds=KINDS, preview=None, report=None, upload="", export="",
                               error="that upload is gone; upload the file again"), 400
    kind = _UPLOAD_RE.match(name).group(1)
    export = request.form.get("export", "")
    confirm = request.form.get("confirm") == "1"
    try:
        if kind == "accounts":
            day = datetime.now(ZoneInfo(g.cfg.locale.timezone)).date()
            report = importer.import_accounts(g.cfg, path, progress=False, today=day,
                                              export=export if export in ("full", "changes") else None,
                                              confirm_by=actor() if confirm else None)
        else:
            report = importer.import_payments(g.cfg, path, progress=False)
    except CsvFormatError as exc:
        return render_template("import.html", kinds=KINDS, preview=None, report=None, upload="", export=export,
                               error=str(exc)), 400
    return render_template("import.html", kinds=KINDS, preview=None, report=report, upload=name, export=export,
                           error="", show=SHOW, filename=name.split("-", 3)[3])
