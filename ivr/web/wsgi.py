"""The console for gunicorn's gevent workers: `gunicorn -k gevent -w 4 -b 127.0.0.1:8080 ivr.web.wsgi:app`.

Reads config from $IVR_CONFIG (or ./config.yaml); each request opens and closes its own database connection
(gevent's monkey-patching gives every greenlet its own peewee connection state).
"""

from __future__ import annotations

from ivr.config import load_config
from ivr.ledger.db import connect
from ivr.logs import setup_logging
from ivr.web.app import create_app
from ivr.web.server import secret_key

cfg = load_config()
setup_logging(cfg.logging.level, cfg.logging.mask_numbers, cfg.logging.file)
connect(cfg.database.url, cfg.base_dir).close()  # schema up to date before the first request
app = create_app(cfg, secret_key(cfg), per_request_db=True)
