"""The audit log: who changed what and when (live controls, message texts, do-not-call entries, users, imports
confirmed despite an anomaly). Every part that changes something a person must answer for calls `record`;
the console's audit page and `ivr` commands read it with `recent`.

The actor is a console user name, or for the CLI `cli:<unix user>` (`cli_actor()`).
"""

from __future__ import annotations

import getpass
import json
from datetime import datetime

from ivr.ledger.models import AuditEvent, utcnow


def cli_actor() -> str:
    """The actor for a change made from the command line: the Unix user who ran it."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"cli:{user}"


def record(actor: str, action: str, target: str = "", detail: dict | str | None = None,
           at: datetime | None = None) -> AuditEvent:
    """Write one audit line. `action` is a dotted verb (`control.channels`, `dnc.add`, `import.confirm_anomaly`),
    `target` what it applied to, `detail` free text or a dict (stored as JSON)."""
    text = detail if isinstance(detail, str) else json.dumps(detail or {}, ensure_ascii=False, sort_keys=True)
    return AuditEvent.create(at=at or utcnow(), actor=actor[:100], action=action[:64], target=target[:200],
                             detail=text)


def recent(limit: int = 100, offset: int = 0, action_prefix: str = "", actor: str = "") -> list[AuditEvent]:
    """The newest audit lines first, optionally only those whose action starts with `action_prefix`."""
    query = AuditEvent.select().order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
    if action_prefix:
        query = query.where(AuditEvent.action.startswith(action_prefix))
    if actor:
        query = query.where(AuditEvent.actor == actor)
    return list(query.offset(offset).limit(limit))
