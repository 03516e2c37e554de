"""What every subcommand does first: load the config, set up logging, open and upgrade the database."""

from __future__ import annotations

import argparse
from datetime import date

import peewee as pw

from ivr.config import Config, load_config
from ivr.ledger.db import connect
from ivr.logs import setup_logging


def load(args: argparse.Namespace, with_db: bool = True) -> tuple[Config, pw.Database | None]:
    cfg = load_config(getattr(args, "config", None), node=getattr(args, "node", None))
    setup_logging(cfg.logging.level, cfg.logging.mask_numbers, cfg.logging.file)
    db = connect(cfg.database.url, cfg.base_dir) if with_db else None
    return cfg, db


def iso_date(text: str) -> date:
    """argparse type for every --date option: YYYY-MM-DD, or a clear usage error naming the value."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date; expected YYYY-MM-DD, e.g. 2026-11-23") from None
