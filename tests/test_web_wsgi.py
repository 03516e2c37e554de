"""Serving the console: the gunicorn entry (ivr.web.wsgi) reads $IVR_CONFIG, brings the schema up to date and opens
and closes the database around each request; `ivr web` on a port in use says so; the session key is kept."""

from __future__ import annotations

import importlib
import socket
import sys

import pytest

from ivr.errors import IvrError
from ivr.ledger import models
from ivr.web.server import make_server, secret_key


def test_wsgi_app_serves_with_a_connection_per_request(tmp_path, monkeypatch):
    cfg_file = tmp_path / "config.yaml"
    cfg_file.write_text("database:\n  url: sqlite:///ivr.sqlite3\nweb:\n  secret_key_file: key.txt\n",
                        encoding="utf-8")
    monkeypatch.setenv("IVR_CONFIG", str(cfg_file))
    sys.modules.pop("ivr.web.wsgi", None)
    wsgi = importlib.import_module("ivr.web.wsgi")
    try:
        assert (tmp_path / "ivr.sqlite3").exists() and (tmp_path / "key.txt").stat().st_mode & 0o777 == 0o600
        resp = wsgi.app.test_client().get("/login")
        assert resp.status_code == 200 and "csrf_token" in resp.get_data(as_text=True)
        assert models.database.is_closed()  # closed again after the request
        assert wsgi.app.test_client().get("/tonight").status_code == 302
    finally:
        sys.modules.pop("ivr.web.wsgi", None)
        if not models.database.is_closed():
            models.database.close()


def test_a_port_in_use_is_a_clear_error(cfg, db):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(IvrError, match=f"web: cannot listen on 127.0.0.1:{port}: .*change web.port"):
            make_server(cfg, "127.0.0.1", port)


def test_the_generated_session_key_is_kept_and_reused(cfg):
    first = secret_key(cfg, env={})
    assert len(first) == 64 and secret_key(cfg, env={}) == first
    assert secret_key(cfg, env={"IVR_WEB_SECRET_KEY": "from-the-environment"}) == "from-the-environment"
    assert (cfg.path(cfg.web.secret_key_file).stat().st_mode & 0o777) == 0o600
