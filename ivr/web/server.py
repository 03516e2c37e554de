"""Serving the console: the session key, and gevent's WSGI server on web.bind:web.port.

The session key is `web.secret_key`, else the environment's IVR_WEB_SECRET_KEY, else a random key generated once
into `web.secret_key_file` (mode 600) so sessions survive a restart and several workers agree on it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from typing import Any

from ivr.config import Config
from ivr.errors import IvrError

log = logging.getLogger("ivr.web")
SECRET_ENV = "IVR_WEB_SECRET_KEY"


def secret_key(cfg: Config, env: dict[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    if cfg.web.secret_key:
        return cfg.web.secret_key
    if env.get(SECRET_ENV):
        return env[SECRET_ENV]
    path = cfg.path(cfg.web.secret_key_file)
    try:
        if path.exists():
            key = path.read_text(encoding="ascii").strip()
            if len(key) >= 32:
                return key
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_hex(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(key + "\n")
        log.info("event=web_secret_key_generated file=%s", path)
        return key
    except OSError as exc:
        raise IvrError(f"web.secret_key_file: cannot read or write {path}: {exc.strerror or exc}; "
                       "set web.secret_key or IVR_WEB_SECRET_KEY instead") from None


def make_server(cfg: Config, bind: str | None = None, port: int | None = None):  # -> WSGIServer
    """A started-not-yet gevent WSGIServer for the console (port 0 picks a free one: see server.server_port)."""
    from gevent.pywsgi import WSGIServer

    from ivr.web.app import create_app

    app = create_app(cfg, secret_key(cfg))
    app.config["IVR_OFFLOAD"] = True  # long list builds go to a worker thread: see pages_lists.offload
    warm_up(app, cfg)
    bind = bind or cfg.web.bind
    port = cfg.web.port if port is None else port
    server = WSGIServer((bind, port), app, log=None, error_log=logging.getLogger("ivr.web.server"))
    try:
        server.init_socket()
    except OSError as exc:
        raise IvrError(f"web: cannot listen on {bind}:{port}: {exc.strerror or exc}; change web.port (or --port) "
                       "or stop what uses it") from None
    return server


def warm_up(app: Any, cfg: Config) -> None:
    """Pay at start what the first view of each page would pay once per process: every template compiled, the
    holiday calendar of locale.country loaded (a debtor's page judges calling windows: 0.3 s), the modules the
    pages import on first use."""
    import ivr.ledger.story  # noqa: F401
    import ivr.report.html  # noqa: F401
    from ivr.campaign.windows import CallWindows

    for name in app.jinja_env.list_templates():
        app.jinja_env.get_template(name)
    with contextlib.suppress(IvrError):  # a config the pages will name themselves
        CallWindows(cfg)


def serve(cfg: Config, bind: str | None = None, port: int | None = None) -> None:
    server = make_server(cfg, bind, port)
    host, real_port = server.address[0], server.server_port
    log.info("event=web_listening bind=%s port=%d", host, real_port)
    print(f"staff console on http://{host}:{real_port}/ (Ctrl-C to stop)", flush=True)
    server.serve_forever()


__all__ = ["make_server", "secret_key", "serve", "warm_up"]
