"""SQL text of the dialer's hot-path queries, built by peewee once per shape and then reused.

The controller asks the same few questions for every claim and every call, with new values each time; building
the query object and its SQL with peewee cost more CPU than SQLite took to answer (a profile of the campaign
bench: about a fifth of the controller's CPU). `execute(key, build, params)` keeps peewee as the one author of
the SQL text and only skips rebuilding it:

- the first time a `key` is seen (per database), `build()` makes the peewee query; the values peewee would bind
  are compared with `params`, the caller's own list in the order the caller believes it to be;
- equal: the text is kept for `key` and every later call binds `params` to it directly;
- different (a caller's order or conversion is wrong, or a peewee upgrade changed the SQL): nothing is cached,
  peewee's own values are used, and a warning names the key. A wrong order can never reach the database.

`key` must name everything that changes the SQL text (the number of values in an IN list, a flag that adds a
condition); the values themselves must not change it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from ivr.ledger.models import database

log = logging.getLogger("ivr.ledger.prebuilt")

MAX_SHAPES = 2048  # IN lists of every length a claim can have, for a handful of queries
_texts: dict[Any, tuple[Any, str]] = {}  # key -> (the database it was built for, the SQL text)
_refused: set[Any] = set()


def sql_for(key: Any, build: Callable[[], Any], params: Sequence[Any]) -> tuple[str, Sequence[Any]]:
    """The SQL text for `key` and the values to bind (see the module docstring)."""
    db = database.obj
    hit = _texts.get(key)
    if hit is not None and hit[0] is db:
        return hit[1], params
    text, built = build().sql()
    if list(built) != list(params):
        if key not in _refused:
            _refused.add(key)
            log.warning("event=prebuilt_refused key=%s; peewee binds other values than the caller computed, so "
                        "this query is built each time", key)
        return text, built
    if len(_texts) >= MAX_SHAPES:
        _texts.clear()
    _texts[key] = (db, text)
    return text, params


def execute(key: Any, build: Callable[[], Any], params: Sequence[Any]) -> Any:
    """Run the query for `key` with `params`; the driver's cursor."""
    text, values = sql_for(key, build, params)
    return database.obj.execute_sql(text, values)
