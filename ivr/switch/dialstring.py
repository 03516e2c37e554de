"""Safe originate strings: nothing a billing file or a caller supplies can leave the slot it was put in.

FreeSWITCH parses `originate {vars}endpoint '&socket(...)'` in layers (esl-reference §2): the command ends at a
line break (a second ESL command would follow); arguments split on spaces ('...' and backslash respected);
`:_:` anywhere switches to enterprise originate; `{...}` is found by brace counting with quotes ignored; the
block splits on `,` (`\\,` escapes; a leading `^^X` changes the separator); the destination splits on `|` and
`,` into more legs; `${...}` expands variables. So:
- a debtor's number reaches the endpoint only as `+?[0-9]{3,20}` (`+` only leading); uuids only canonical
  hex-and-dashes; ids, gateway and socket host from small fixed alphabets; integers are integers;
- other values (account, caller-id name, extra variables) refuse control characters (CR/LF first), `${`,
  `:_:`, and `{ } [ ] < > ' " \\ ^ | `` ` ``; what remains is written bare when it is a plain token, otherwise
  in single quotes with every `,` as `\\,` — the F1 form that kept `Иванов, Иван Петрович` whole on a real
  FreeSWITCH 1.10 (transcript README "Cyrillic values and dial-string escaping").
Every refusal raises UnsafeValue naming the slot and showing the value, and nothing is sent.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from ivr.switch.errors import UnsafeValue

__all__ = ["build_originate", "originate_from_config", "escape_value", "check_number", "UnsafeValue"]

MAX_VALUE = 256
_NUMBER = re.compile(r"\+?[0-9]{3,20}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_GATEWAY = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_HOST = re.compile(r"[A-Za-z0-9_.-]{1,253}")     # no ':' — IPv6 socket addresses are not supported
_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_CODECS = re.compile(r"[A-Za-z0-9.@_]+(:[A-Za-z0-9.@_]+)*")
_ENDPOINT = re.compile(r"[A-Za-z0-9_./@:+=-]+")
_BARE = re.compile(r"[A-Za-z0-9_.@+/-]+")         # written without quotes; note: no ',' ':' '=' or space
_FORBIDDEN = set("{}[]<>'\"\\^|`")
_RESERVED_VARS = frozenset(("origination_uuid", "ivr_attempt_id", "ivr_account", "origination_caller_id_number",
                            "origination_caller_id_name", "originate_timeout", "absolute_codec_string",
                            "execute_on_answer", "origination_nested_vars"))


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_number(number: str) -> str:
    """A debtor's number as it may appear in a dial string: digits, one optional leading '+'."""
    if not isinstance(number, str) or not _NUMBER.fullmatch(number):
        raise UnsafeValue(f"number {_show(number)} refused: only digits with an optional leading '+' (3-20 digits)")
    return number


def _check_text(value: object, slot: str) -> str:
    if not isinstance(value, str):
        raise UnsafeValue(f"{slot}: {_show(value)} is not text")
    if not value:
        raise UnsafeValue(f"{slot}: empty value")
    if len(value) > MAX_VALUE:
        raise UnsafeValue(f"{slot}: {len(value)} characters, at most {MAX_VALUE}")
    for ch in value:
        if ch in "\r\n":
            raise UnsafeValue(f"{slot}: {_show(value)} contains a line break")
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            raise UnsafeValue(f"{slot}: {_show(value)} contains control or invisible character U+{ord(ch):04X}")
        if ch in _FORBIDDEN:
            raise UnsafeValue(f"{slot}: {_show(value)} contains {ch!r}, which could escape the variable block")
    if "${" in value:
        raise UnsafeValue(f"{slot}: {_show(value)} contains '${{' (variable expansion)")
    if ":_:" in value:
        raise UnsafeValue(f"{slot}: {_show(value)} contains ':_:' (enterprise originate separator)")
    return value


def escape_value(value: str, slot: str = "value") -> str:
    """A channel-variable value ready for `{name=<here>}`: bare if a plain token, else quoted with `\\,`."""
    value = _check_text(value, slot)
    if _BARE.fullmatch(value):
        return value
    return "'" + value.replace(",", "\\,") + "'"


def _match(pattern: re.Pattern[str], value: Any, slot: str, rule: str) -> str:
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not pattern.fullmatch(text):
        raise UnsafeValue(f"{slot} {_show(value)} refused: {rule}")
    return text


def _int(value: Any, slot: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise UnsafeValue(f"{slot} {_show(value)} refused: a whole number {low}..{high}")
    return value


def build_originate(*, uuid: str, attempt_id: str | int, account: str, number: str, socket_host: str,
                    socket_port: int, template: str = "sofia/gateway/{gateway}/{number}", gateway: str = "",
                    caller_id_number: str = "", caller_id_name: str = "", originate_timeout: int = 30,
                    codec_string: str = "PCMU", max_call_seconds: int | None = None,
                    extra_vars: Mapping[str, str] | None = None) -> str:
    """The argument string of `originate` (send as `bgapi originate <this>`):

    `{origination_uuid=…,ivr_attempt_id=…,ivr_account=…,origination_caller_id_number=…,
    origination_caller_id_name='…',originate_timeout=N,absolute_codec_string=PCMU,
    execute_on_answer='sched_hangup +N ALLOTTED_TIMEOUT',<extra>}<endpoint> '&socket(host:port async full)'`
    """
    number = check_number(number)
    uuid = _match(_UUID, uuid, "origination uuid", "a canonical hex-and-dashes uuid").lower()
    attempt = _match(_ID, attempt_id, "attempt id", "letters, digits, '_' or '-' (1-64)")
    if "{gateway}" in template:
        gateway = _match(_GATEWAY, gateway, "gateway", "letters, digits, '_', '.', '-'")
    if not isinstance(template, str) or "{number}" not in template:
        raise UnsafeValue(f"dial template {_show(template)} refused: must contain {{number}}")
    endpoint = template.replace("{gateway}", gateway).replace("{number}", number)
    if not _ENDPOINT.fullmatch(endpoint) or ":_:" in endpoint:
        raise UnsafeValue(f"endpoint {_show(endpoint)} refused: only letters, digits and _ . / @ : + = - "
                          "(no spaces, quotes, braces, ',' '|' or ':_:')")
    host = _match(_HOST, socket_host, "socket host", "a host name or IPv4 address")
    port = _int(socket_port, "socket port", 1, 65535)

    pairs: list[tuple[str, str]] = [
        ("origination_uuid", uuid),
        ("ivr_attempt_id", attempt),
        ("ivr_account", escape_value(account, "account")),
    ]
    if caller_id_number:
        pairs.append(("origination_caller_id_number",
                      _match(re.compile(r"\+?[0-9]{1,20}"), caller_id_number, "caller id number",
                             "digits with an optional leading '+'")))
    if caller_id_name:
        pairs.append(("origination_caller_id_name", escape_value(caller_id_name, "caller id name")))
    pairs.append(("originate_timeout", str(_int(originate_timeout, "originate timeout", 1, 3600))))
    if codec_string:
        codecs = _match(_CODECS, codec_string, "codec string", "codec names joined by ':'")
        # FreeSWITCH's codec list separator is ','; inside the block it must be written '\,' (F1 form)
        pairs.append(("absolute_codec_string", escape_value(codecs.replace(":", ","), "codec string")))
    if max_call_seconds is not None:
        limit = _int(max_call_seconds, "max call seconds", 1, 86400)
        # sched_hangup data "[+]<seconds>[ <cause>]" (FreeSWITCH docs, mod_dptools sched_hangup); run by
        # execute_on_answer on the A leg when it is answered. Unverified on a live server here: that
        # execute_on_answer given in the originate block fires on this leg and that the cause name
        # ALLOTTED_TIMEOUT is accepted (the docs' example spells it "alloted_timeout").
        pairs.append(("execute_on_answer", escape_value(f"sched_hangup +{limit} ALLOTTED_TIMEOUT",
                                                        "execute_on_answer")))
    for name, value in (extra_vars or {}).items():
        name = _match(_VAR_NAME, name, "variable name", "letters, digits and '_'")
        if name in _RESERVED_VARS:
            raise UnsafeValue(f"variable {name} is set by the dialer itself")
        pairs.append((name, escape_value(value, f"variable {name}")))
    block = ",".join(f"{k}={v}" for k, v in pairs)
    return f"{{{block}}}{endpoint} '&socket({host}:{port} async full)'"


def originate_from_config(cfg: Any, *, uuid: str, attempt_id: str | int, account: str, number: str,
                          extra_vars: Mapping[str, str] | None = None) -> str:
    """build_originate with the dialing and freeswitch settings of a Config."""
    d, fs = cfg.dialing, cfg.freeswitch
    return build_originate(
        uuid=uuid, attempt_id=attempt_id, account=account, number=number,
        socket_host=fs.outbound_advertise_host, socket_port=fs.outbound_bind_port,
        template=d.dial_string, gateway=d.gateway, caller_id_number=d.caller_id_number,
        caller_id_name=d.caller_id_name, originate_timeout=d.originate_timeout, codec_string=d.codec_string,
        max_call_seconds=d.max_call_seconds, extra_vars=extra_vars)
