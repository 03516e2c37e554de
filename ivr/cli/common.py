"""What every subcommand does first: load the config, set up logging, open and upgrade the database."""

from __future__ import annotations

import argparse

import peewee as pw

from ivr.config import Config, load_config
from ivr.ledger.db import connect
from ivr.logs import setup_logging


def load(args: argparse.Namespace, with_db: bool = True) -> tuple[Config, pw.Database | None]:
    cfg = load_config(getattr(args, "config", None))
    setup_logging(cfg.logging.level, cfg.logging.mask_numbers, cfg.logging.file)
    db = connect(cfg.database.url, cfg.base_dir) if with_db else None
    return cfg, db
