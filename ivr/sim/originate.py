"""Parsing an `originate` argument string the way FreeSWITCH does.

Layers (esl-reference.md §2 and the escaping forms of inbound_unicode_vars): the arguments are split on spaces
outside single quotes (quotes removed, `\\s` `\\n` `\\t` `\\r` unescaped, other backslashes kept); the
`{…}` block is found by brace depth; its items are split on `,` (or on X after a leading `^^X`) with `\\<sep>`
escaping the separator; each item is `name=value`. Pure functions, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

USAGE = ("-USAGE: <proto>://<args>|[<proto>://<args>] <exten>|&<application_name>(<app_args>) "
         "[<dialplan>] [<context>] [<cid_name>] [<cid_num>] [<timeout_sec>]\n")

_UNESCAPE = {"s": " ", "n": "\n", "r": "\r", "t": "\t"}
_NUMBER = re.compile(r"\+?[0-9*#]+")
_SOCKET = re.compile(r"^([^\s:()]+):(\d+)(?:\s+(async|sync))?(?:\s+(full|single-channel))?\s*$")


class OriginateError(Exception):
    """The originate cannot start; `str(self)` is the FreeSWITCH result text (`-ERR CAUSE` or `-USAGE…`)."""

    def __init__(self, cause: str, usage: bool = False) -> None:
        super().__init__(cause)
        self.cause = cause
        self.usage = usage

    def reply(self) -> str:
        return USAGE if self.usage else f"-ERR {self.cause}\n"


@dataclass
class Endpoint:
    kind: str  # gateway | external | loopback
    number: str
    gateway: str = ""
    host: str = ""


@dataclass
class Originate:
    variables: list[tuple[str, str]] = field(default_factory=list)
    endpoint: Endpoint | None = None
    app: str = "park"  # socket | park | extension
    app_arg: str = ""
    socket_host: str = ""
    socket_port: int = 0
    socket_async: bool = True
    socket_full: bool = True

    def var(self, name: str, default: str | None = None) -> str | None:
        for k, v in reversed(self.variables):
            if k == name:
                return v
        return default


def split_args(text: str) -> list[str]:
    """Split on spaces outside single quotes; quotes go, known escapes are unescaped, others kept."""
    args: list[str] = []
    cur: list[str] = []
    inq = False
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n:
            nxt = text[i + 1]
            cur.append(_UNESCAPE.get(nxt, "\\" + nxt))
            i += 2
            continue
        if c == "'":
            inq = not inq
        elif c == " " and not inq:
            if cur:
                args.append("".join(cur))
                cur = []
        else:
            cur.append(c)
        i += 1
    if cur:
        args.append("".join(cur))
    return args


def split_vars(block: str) -> list[tuple[str, str]]:
    """Split the inside of a `{…}` block into (name, value) pairs."""
    sep = ","
    if block.startswith("^^") and len(block) > 2:
        sep, block = block[2], block[3:]
    items: list[str] = []
    cur: list[str] = []
    i = 0
    while i < len(block):
        c = block[i]
        if c == "\\" and i + 1 < len(block) and block[i + 1] == sep:
            cur.append(sep)
            i += 2
            continue
        if c == sep:
            items.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    items.append("".join(cur))
    out = []
    for item in items:
        if not item.strip():
            continue
        name, eq, value = item.partition("=")
        if not eq:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1]
        out.append((name.strip(), value))
    return out


def split_block(dialstring: str) -> tuple[str, str]:
    """(block contents, rest) for a dial string starting with `{`; depth counting, quotes ignored."""
    if not dialstring.startswith("{"):
        return "", dialstring
    depth = 0
    for i, c in enumerate(dialstring):
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return dialstring[1:i], dialstring[i + 1:]
    raise OriginateError("DESTINATION_OUT_OF_ORDER")


def parse_endpoint(text: str) -> Endpoint:
    parts = text.split("/")
    if parts[0] == "loopback" and len(parts) >= 2:
        number = parts[1]
        kind = "loopback"
        ep = Endpoint(kind, number)
    elif parts[0] == "sofia" and len(parts) == 4 and parts[1] == "gateway":
        ep = Endpoint("gateway", parts[3], gateway=parts[2])
    elif parts[0] == "sofia" and len(parts) == 3:
        user, _, host = parts[2].partition("@")
        ep = Endpoint("external", user, host=host)
    elif parts[0] in ("sofia", "loopback", "user"):
        raise OriginateError("DESTINATION_OUT_OF_ORDER")
    else:
        raise OriginateError("CHAN_NOT_IMPLEMENTED")
    if not _NUMBER.fullmatch(ep.number):
        raise OriginateError("DESTINATION_OUT_OF_ORDER")
    return ep


def parse_originate(args_text: str) -> Originate:
    """Parse everything after the word `originate`; raises OriginateError with the reply FreeSWITCH gives."""
    args = split_args(args_text.strip())
    if len(args) < 2:
        raise OriginateError("USAGE", usage=True)
    block, rest = split_block(args[0])
    result = Originate(variables=split_vars(block) if block else [])
    if "|" in rest or "," in rest or ":_:" in rest:
        # Failover / parallel legs: the simulator dials only single legs (unverified beyond that).
        raise OriginateError("DESTINATION_OUT_OF_ORDER")
    result.endpoint = parse_endpoint(rest)
    app = args[1]
    if app.startswith("&"):
        name, _, arg = app[1:].partition("(")
        arg = arg[:-1] if arg.endswith(")") else arg
        result.app, result.app_arg = name, arg
        if name == "socket":
            m = _SOCKET.match(arg)
            if not m:
                raise OriginateError("DESTINATION_OUT_OF_ORDER")
            result.socket_host, result.socket_port = m.group(1), int(m.group(2))
            result.socket_async = m.group(3) != "sync"
            result.socket_full = m.group(4) != "single-channel"
    else:
        result.app, result.app_arg = "extension", app
    return result
