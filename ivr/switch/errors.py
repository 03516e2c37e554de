"""Errors of the event-socket layer: one base (an IvrError, so the CLI prints them plainly) and its kinds."""

from __future__ import annotations

from ivr.errors import IvrError


class EslError(IvrError):
    """Anything that went wrong talking to FreeSWITCH."""


class EslTimeout(EslError):
    """A command got no reply within its timeout."""


class EslDisconnected(EslError):
    """The connection dropped (or was never up) while a command or job was pending."""


class EslAuthError(EslError):
    """FreeSWITCH refused the event-socket password (or the connection by ACL)."""


class ProtocolError(EslError):
    """Bytes that do not follow the ESL framing rules; the connection carrying them cannot be trusted.

    `frames` holds the whole frames decoded (in the same feed() call) before the bad bytes, so nothing valid
    that came before the fault is lost.
    """

    def __init__(self, message: str, frames: list | None = None) -> None:
        super().__init__(message)
        self.frames = frames or []


class UnsafeValue(IvrError, ValueError):
    """A value that could escape its slot in a dial string or an ESL command (it is never sent)."""
