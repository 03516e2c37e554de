"""Writing the Control table: `ivr set channels N`, `ivr set cps R`, `ivr pause`, `ivr resume`, `ivr stop`.

Each is one validated upsert of a Control row (key 'channels', 'cps' or 'command' = run | pause | stop). Every
dialer process re-reads the table about once a second, so a change acts within a second without a restart.
The allowed ranges are those of the matching `pacing` settings in config (one source of truth).
`reset_pacing` removes the channels and cps rows, so the dialers go back to config.yaml's values.

Given an `actor` (the CLI's `audit.cli_actor()`, a console user), each change is written to the audit log as
`control.channels | control.cps | control.pause | control.resume | control.stop | control.reset`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from ivr.config import PacingConfig
from ivr.errors import IvrError
from ivr.ledger import audit
from ivr.ledger.models import AuditEvent, Control, utcnow

COMMANDS = ("run", "pause", "stop")


class ControlValueError(IvrError):
    """A value the dialer must not be given; the message names it and the allowed range."""

    exit_code = 2


def _range(name: str) -> tuple[float, float]:
    meta = {f.name: f.metadata for f in dataclasses.fields(PacingConfig)}[name]
    return meta["min"], meta["max"]


CHANNELS_RANGE = tuple(int(x) for x in _range("channels"))
CPS_RANGE = _range("cps")


def parse_channels(raw: str | int) -> int:
    lo, hi = CHANNELS_RANGE
    text = str(raw).strip()
    try:
        value = int(text)
    except ValueError:
        raise ControlValueError(
            f"channels: {text!r} is not a whole number; allowed: a whole number from {lo} to {hi}") from None
    if not lo <= value <= hi:
        raise ControlValueError(f"channels: {value} is out of range; allowed: {lo} to {hi}")
    return value


def parse_cps(raw: str | float) -> float:
    lo, hi = CPS_RANGE
    text = str(raw).strip()
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if math.isnan(value) or math.isinf(value):
        raise ControlValueError(f"cps: {text!r} is not a number; allowed: calls per second from {lo:g} to {hi:g}")
    if not lo <= value <= hi:
        raise ControlValueError(f"cps: {value:g} is out of range; allowed: {lo:g} to {hi:g} calls per second")
    return value


@dataclass(frozen=True)
class ControlState:
    """The Control table as written (None = not set: the dialer uses config)."""

    channels: int | None
    cps: float | None
    command: str | None
    problems: tuple[str, ...] = ()


def _put(key: str, value: str) -> None:
    (Control.insert(key=key, value=value, updated_at=utcnow())
     .on_conflict(conflict_target=[Control.key], update={Control.value: value, Control.updated_at: utcnow()})
     .execute())


def _audit(actor: str | None, action: str, detail: dict) -> None:
    if actor:
        audit.record(actor, action, action.split(".", 1)[1], detail)


def _previous(key: str) -> str | None:
    row = Control.get_or_none(Control.key == key)
    return row.value if row else None


def set_channels(raw: str | int, actor: str | None = None) -> int:
    value = parse_channels(raw)
    before = _previous("channels")
    _put("channels", str(value))
    _audit(actor, "control.channels", {"from": before, "to": value})
    return value


def set_cps(raw: str | float, actor: str | None = None) -> float:
    value = parse_cps(raw)
    before = _previous("cps")
    _put("cps", f"{value:g}")
    _audit(actor, "control.cps", {"from": before, "to": value})
    return value


_ACTION = {"run": "control.resume", "pause": "control.pause", "stop": "control.stop"}


def set_command(command: str, actor: str | None = None) -> str:
    if command not in COMMANDS:
        raise ControlValueError(f"command: {command!r} is not allowed; allowed: {', '.join(COMMANDS)}")
    _put("command", command)
    _audit(actor, _ACTION[command], {})
    return command


def pause(actor: str | None = None) -> str:
    return set_command("pause", actor)


def resume(actor: str | None = None) -> str:
    return set_command("run", actor)


def stop(actor: str | None = None) -> str:
    return set_command("stop", actor)


def reset_pacing(actor: str | None = None) -> None:
    """Forget the live channels/cps: every dialer goes back to config.yaml's pacing values within a second."""
    before = {r.key: r.value for r in Control.select().where(Control.key.in_(("channels", "cps")))}
    Control.delete().where(Control.key.in_(("channels", "cps"))).execute()
    _audit(actor, "control.reset", {"from": before})


@dataclass(frozen=True)
class CommandChange:
    """Who last gave a campaign command through an audited path, and when (naive UTC)."""

    command: str
    actor: str
    at: object


def last_command_change() -> CommandChange | None:
    """The newest audited pause/resume/stop (for "paused by X at 19:12"); None when none was audited."""
    row = (AuditEvent.select().where(AuditEvent.action.in_(tuple(_ACTION.values())))
           .order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).first())
    if row is None:
        return None
    command = {v: k for k, v in _ACTION.items()}[row.action]
    return CommandChange(command, row.actor, row.at)


def read_state() -> ControlState:
    """What the Control table says, with anything unusable reported (never raised: status must show it)."""
    rows = {r.key: r.value for r in Control.select(Control.key, Control.value)}
    problems = []
    channels = cps = command = None
    if "channels" in rows:
        try:
            channels = parse_channels(rows["channels"])
        except ControlValueError as exc:
            problems.append(f"Control table: {exc}")
    if "cps" in rows:
        try:
            cps = parse_cps(rows["cps"])
        except ControlValueError as exc:
            problems.append(f"Control table: {exc}")
    if "command" in rows:
        value = rows["command"].strip().lower()
        command = "run" if value == "resume" else value
        if command not in COMMANDS:
            problems.append(f"Control table: command {rows['command']!r} is not one of {', '.join(COMMANDS)}")
            command = None
    return ControlState(channels, cps, command, tuple(problems))
