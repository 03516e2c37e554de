"""Long builds run once at a time in a thread of their own (the console's stored lists and reports).

`start(key, job)` runs `job` in a daemon thread unless one for `key` is still running, and returns when the
running one started; `running(key)` says whether (and since when) one runs. The thread opens its own database
connection (peewee keeps one per thread) and closes it when done; a failure is logged, and the next `start`
tries again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable

from ivr.ledger.models import database

log = logging.getLogger("ivr.ledger.background")

_jobs: dict[Hashable, tuple[float, threading.Thread]] = {}
_lock = threading.Lock()


def start(key: Hashable, job: Callable[[], object]) -> float:
    """Run `job` in a thread unless one for `key` runs; returns when the running one started (time.time())."""
    with _lock:
        going = _jobs.get(key)
        if going is not None and going[1].is_alive():
            return going[0]
        started = time.time()

        def run() -> None:
            try:
                job()
            except Exception:  # noqa: BLE001 - logged; the next start tries again
                log.exception("event=background_failed job=%s", key)
            finally:
                if not database.is_closed():
                    database.close()  # this thread's connection only
        thread = threading.Thread(target=run, name=f"build-{key}", daemon=True)
        _jobs[key] = (started, thread)
        thread.start()
        return started


def running(key: Hashable) -> float | None:
    """When the running job for `key` started (None: none runs)."""
    going = _jobs.get(key)
    return going[0] if going is not None and going[1].is_alive() else None
