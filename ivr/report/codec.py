"""The report's dataclasses to JSON and back, guided by their type hints (no pickle: a database row must never be
able to run code in the console).

Handles what the report's figures are made of: dataclasses, lists, tuples, frozensets, dicts and Counters (keys
of any of these scalar types), `X | None`, Decimal, date, datetime (aware or naive), int, float, str, bool.
"""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from collections import Counter
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Any


def dump(value: Any) -> Any:
    """A JSON-ready form of `value`."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: dump(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return [[dump(k), dump(v)] for k, v in value.items()]
    if isinstance(value, list | tuple | frozenset | set):
        return [dump(v) for v in value]
    raise TypeError(f"cannot store a {type(value).__name__} in a report")


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, vars(sys.modules[cls.__module__]))


def load(tp: Any, value: Any) -> Any:
    """`value` (from `dump`) as type `tp`."""
    if value is None:
        return None
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return load(inner[0], value)
    if dataclasses.is_dataclass(tp):
        hints = _hints(tp)
        fields = {f.name for f in dataclasses.fields(tp) if f.init}
        return tp(**{k: load(hints[k], v) for k, v in value.items() if k in fields})
    if tp is Counter or origin is Counter:
        key, val = args if args else (str, int)
        return Counter({load(key, k): load(val, v) for k, v in value})
    if origin is dict:
        key, val = args
        return {load(key, k): load(val, v) for k, v in value}
    if origin is list:
        return [load(args[0], v) for v in value]
    if origin is frozenset:
        return frozenset(load(args[0], v) for v in value)
    if origin is tuple:
        return tuple(load(a, v) for a, v in zip(args, value, strict=True))
    if tp is Decimal:
        return Decimal(value)
    if tp is datetime:
        return datetime.fromisoformat(value)
    if tp is date:
        return date.fromisoformat(value)
    if tp is float:
        return float(value)
    return value
