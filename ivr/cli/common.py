"""What every subcommand does first (load the config, set up logging, open and upgrade the database), and what
many share: the --date type, today in the company's time zone, a progress bar on stderr, the lines of reasons
a step skipped debtors."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime
from zoneinfo import ZoneInfo

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


def local_today(cfg: Config) -> date:
    """Today in the company's time zone (locale.timezone): the default of every --date."""
    return datetime.now(ZoneInfo(cfg.locale.timezone)).date()


@contextmanager
def progress_bar(label: str, show: bool = True) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr, given as the `progress(done, total)` callback the domain functions take; drawn
    only when `show` (no --no-progress) and stderr is a terminal, and gone when the work ends."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), console=Console(stderr=True),
                  transient=True, disable=not (show and sys.stderr.isatty())) as progress:
        task = progress.add_task(label, total=None)
        yield lambda done, total: progress.update(task, completed=done, total=total)


def print_skipped(skipped: Mapping[str, int], what: str) -> None:
    """One line per reason debtors were left out, most first: `  WHAT: N - reason`."""
    for why, n in sorted(skipped.items(), key=lambda kv: -kv[1]):
        print(f"  {what}: {n} - {why}")


def add_send_options(p: argparse.ArgumentParser) -> None:
    """--date, --limit, --no-progress: the options of every `send` step (sms, email)."""
    p.add_argument("--date", type=iso_date, default=None, help="the campaign day YYYY-MM-DD (default: today)")
    p.add_argument("--limit", type=int, default=None, help="send at most N messages")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
