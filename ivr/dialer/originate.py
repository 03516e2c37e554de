"""The `bgapi originate` command of one attempt, built only through ivr.switch.dialstring.build_originate.

Channel variables: origination_uuid = Attempt.uuid (events can be matched before the job result), ivr_attempt_id,
ivr_account, caller id, originate_timeout, absolute_codec_string (RFC 2833 digits only arrived with PCMU), a hard
maximum call length (execute_on_answer sched_hangup), playback_terminators (so the call flow need not set it), and
the call-flow application
`'&socket(host:port async full)'` pointing at this process's outbound-socket server.
`{number}` is written as cfg.dialing.number_format says (E.164, E.164 digits, or national digits).
"""

from __future__ import annotations

import re

import phonenumbers

from ivr.config import Config
from ivr.switch.dialstring import build_originate
from ivr.switch.errors import UnsafeValue

_E164_RE = re.compile(r"^\+[1-9][0-9]{6,14}$")


def format_number(e164: str, number_format: str) -> str:
    """The debtor's number as the trunk wants it; only [0-9+] ever comes out."""
    if not _E164_RE.match(e164 or ""):
        raise UnsafeValue(f"not an E.164 number: {e164!r}")
    if number_format == "e164":
        return e164
    if number_format == "e164_digits":
        return e164[1:]
    parsed = phonenumbers.parse(e164, None)
    national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    digits = re.sub(r"[^0-9]", "", national)
    if not digits:
        raise UnsafeValue(f"no national form for {e164!r}")
    return digits


def originate_command(cfg: Config, *, attempt_uuid: str, attempt_id: int, account: str, e164: str,
                      socket_host: str, socket_port: int) -> str:
    """The full argument of `bgapi originate …` for one attempt (raises UnsafeValue for anything unsafe)."""
    d = cfg.dialing
    return build_originate(
        uuid=attempt_uuid,
        attempt_id=attempt_id,
        account=account,
        number=format_number(e164, d.number_format),
        socket_host=socket_host,
        socket_port=socket_port,
        template=d.dial_string,
        gateway=d.gateway,
        caller_id_number=d.caller_id_number,
        caller_id_name=d.caller_id_name,
        originate_timeout=d.originate_timeout,
        codec_string=d.codec_string,
        max_call_seconds=d.max_call_seconds,
        # what the call flow would otherwise `set` as its first command on every call (one round trip less)
        extra_vars={"playback_terminators": playback_terminators(cfg)},
    )


def playback_terminators(cfg: Config) -> str:
    """The keys that end a playback on this channel: the barge-in keys, or none (ivr.callflow.flow)."""
    from ivr.callflow.flow import BARGE_IN_KEYS

    return BARGE_IN_KEYS if cfg.callflow.barge_in else "none"
