"""Counting the SQL statements and transactions a piece of work sends to the database.

The controller's budget per call is a number of statements (deterministic, unlike timing), so the benchmark prints
it and a test holds it. `StatementCounter(db)` wraps the database object's `execute_sql` and `begin` while it is
entered (every peewee query and every plain-SQL statement of the hot path goes through `execute_sql`; bulk inserts
through `executemany` are counted by `count_executemany`).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import peewee as pw

_WORDS = re.compile(r"^\s*(\w+)(?:.*?\b(?:FROM|INTO|UPDATE)\s+\"?(\w+)\"?)?", re.S | re.I)


_KINDS: dict[str, str] = {}  # the hot path sends the same few texts again and again: classify each once


def kind_of(sql: str) -> str:
    """'SELECT attempt', 'UPDATE queue_entry', 'SAVEPOINT': the verb and the first table named."""
    kind = _KINDS.get(sql)
    if kind is None:
        if len(_KINDS) > 4096:
            _KINDS.clear()
        kind = _KINDS[sql] = _kind_of(sql)
    return kind


def _kind_of(sql: str) -> str:
    m = _WORDS.match(sql)
    if m is None:
        return "?"
    verb = m[1].upper()
    if verb == "UPDATE":
        table = sql.split()[1].strip('"')
        return f"UPDATE {table}"
    return f"{verb} {m[2]}" if m[2] else verb


class StatementCounter:
    """Counts statements (by kind) and transactions sent through `db` while entered; re-entrant use is not
    supported (one counter per database at a time)."""

    def __init__(self, db: pw.Database) -> None:
        self.db = db
        self.statements = 0
        self.transactions = 0
        self.kinds: Counter[str] = Counter()

    def __enter__(self) -> StatementCounter:
        db = self.db
        real_execute, real_begin = db.execute_sql, db.begin

        def execute_sql(sql: str, params: Any = None, *args: Any, **kw: Any) -> Any:
            self.statements += 1
            self.kinds[kind_of(sql)] += 1
            return real_execute(sql, params, *args, **kw)

        def begin(*args: Any, **kw: Any) -> Any:
            self.transactions += 1
            return real_begin(*args, **kw)

        db.execute_sql, db.begin = execute_sql, begin
        return self

    def count_executemany(self, sql: str) -> None:
        self.statements += 1
        self.kinds[kind_of(sql)] += 1

    def __exit__(self, *exc: Any) -> None:
        del self.db.execute_sql, self.db.begin  # the class's methods again

    def top(self, n: int = 15) -> list[tuple[str, int]]:
        return self.kinds.most_common(n)
