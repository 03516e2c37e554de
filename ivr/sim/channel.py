"""The simulated channel: its state, caller profile and variables, and the events built from them.

Owns the SHAPE of channel events as the real server writes them (shared/freeswitch/ transcripts): the common
prefix (Event-Name, Core-UUID, FreeSWITCH-*, Event-Date-*, Event-Calling-*, Event-Sequence), the channel block
(Channel-State … Answer-State [Hangup-Cause] [codec] Caller-*), `variable_*` on the events that carry them,
and the event-specific headers last. Encoded blocks are cached and rebuilt only when the channel changes, so
one event costs a few string joins.
"""

from __future__ import annotations

import random
import uuid as uuidlib
from dataclasses import dataclass, field
from datetime import datetime

from ivr.sim import wire

Q850 = {
    "NORMAL_CLEARING": 16, "USER_BUSY": 17, "NO_USER_RESPONSE": 18, "NO_ANSWER": 19, "CALL_REJECTED": 21,
    "UNALLOCATED_NUMBER": 1, "NORMAL_CIRCUIT_CONGESTION": 34, "NORMAL_TEMPORARY_FAILURE": 41,
    "DESTINATION_OUT_OF_ORDER": 27, "ORIGINATOR_CANCEL": 487, "SWITCH_CONGESTION": 42,
    "INVALID_NUMBER_FORMAT": 28, "RECOVERY_ON_TIMER_EXPIRE": 102, "SUBSCRIBER_ABSENT": 20,
}
SIP_STATUS = {"USER_BUSY": "486", "UNALLOCATED_NUMBER": "404", "CALL_REJECTED": "603",
              "NORMAL_CIRCUIT_CONGESTION": "503", "NORMAL_TEMPORARY_FAILURE": "503"}

# Event-Calling-File / -Function / -Line-Number per event, as in the transcripts.
_CALLING = {
    "CHANNEL_OUTGOING": ("switch_core_session.c", "switch_core_session_outgoing_channel", "768"),
    "CHANNEL_CREATE": ("switch_core_state_machine.c", "switch_core_session_run", "626"),
    "CHANNEL_ORIGINATE": ("switch_core_state_machine.c", "switch_core_session_run", "632"),
    "CHANNEL_PROGRESS": ("switch_channel.c", "switch_channel_perform_mark_ring_ready_value", "3505"),
    "CHANNEL_ANSWER": ("switch_channel.c", "switch_channel_perform_mark_answered", "3846"),
    "CHANNEL_EXECUTE": ("switch_core_session.c", "switch_core_session_exec", "2947"),
    "CHANNEL_EXECUTE_COMPLETE": ("switch_core_session.c", "switch_core_session_exec", "2988"),
    "CHANNEL_PARK": ("switch_ivr.c", "switch_ivr_park", "1004"),
    "CHANNEL_UNPARK": ("switch_ivr.c", "switch_ivr_park", "1327"),
    "PLAYBACK_START": ("switch_ivr_play_say.c", "switch_ivr_play_file", "1576"),
    "PLAYBACK_STOP": ("switch_ivr_play_say.c", "switch_ivr_play_file", "2055"),
    "DTMF": ("switch_channel.c", "switch_channel_dequeue_dtmf", "668"),
    "CHANNEL_HANGUP": ("switch_channel.c", "switch_channel_perform_hangup", "3542"),
    "CHANNEL_STATE": ("switch_channel.c", "switch_channel_perform_set_running_state", "2373"),
    "CHANNEL_HANGUP_COMPLETE": ("switch_core_state_machine.c", "switch_core_session_reporting_state", "943"),
    "CHANNEL_DESTROY": ("switch_core_session.c", "switch_core_session_perform_destroy", "1584"),
    "CHANNEL_BRIDGE": ("switch_ivr_bridge.c", "switch_ivr_multi_threaded_bridge", "1693"),
    "CHANNEL_UNBRIDGE": ("switch_ivr_bridge.c", "switch_ivr_multi_threaded_bridge", "1859"),
    "CHANNEL_DATA": ("mod_event_socket.c", "parse_command", "2021"),
    "BACKGROUND_JOB": ("mod_event_socket.c", "api_exec", "1572"),
}
_DEFAULT_CALLING = ("switch_event.c", "switch_event_fire", "0")
_CALLING_BLOCK: dict[str, str] = {}
# Events that carry variable_* (esl-reference.md §3; DTMF and CHANNEL_STATE do not).
NO_VARS = frozenset({"CHANNEL_OUTGOING", "DTMF", "CHANNEL_STATE"})

CODECS = {  # name -> (rate, bit rate, rfc2833 send payload); only opus broke DTMF on the real server
    "PCMU": ("8000", "64000", "101"), "PCMA": ("8000", "64000", "101"),
    "G722": ("16000", "64000", "101"), "opus": ("48000", "0", "103"),
}


@dataclass
class SwitchInfo:
    """What every event says about the server itself."""

    core_uuid: str = field(default_factory=lambda: str(uuidlib.uuid4()))
    hostname: str = "sim"
    ipv4: str = "127.0.0.1"
    ipv6: str = "::1"
    sequence: int = 0

    def __post_init__(self) -> None:
        self.fixed_block = (wire.header_line("Core-UUID", self.core_uuid)
                            + wire.header_line("FreeSWITCH-Hostname", self.hostname)
                            + wire.header_line("FreeSWITCH-Switchname", self.hostname)
                            + wire.header_line("FreeSWITCH-IPv4", self.ipv4)
                            + wire.header_line("FreeSWITCH-IPv6", self.ipv6))
        self.fixed_pairs = [("Core-UUID", self.core_uuid), ("FreeSWITCH-Hostname", self.hostname),
                            ("FreeSWITCH-Switchname", self.hostname), ("FreeSWITCH-IPv4", self.ipv4),
                            ("FreeSWITCH-IPv6", self.ipv6)]

    def next_seq(self) -> int:
        self.sequence += 1
        return self.sequence


class SimEvent:
    """One event as fired; frames are encoded on first use and shared by every socket that gets it."""

    __slots__ = ("name", "uuid", "_head", "_head_block", "_chan", "_vars", "_extra", "_pre", "_inner",
                 "_switch", "_plain", "_json", "_map")

    def __init__(self, name: str, head: list[tuple[str, str]], head_block: str, chan: Channel | None,
                 with_vars: bool, extra: list[tuple[str, str]] | None, pre: list[tuple[str, str]] | None,
                 inner: str | None, switch: SwitchInfo) -> None:
        self.name = name
        self.uuid = chan.uuid if chan else ""
        self._head = head
        self._head_block = head_block
        self._chan = chan
        self._vars = with_vars and chan is not None
        self._extra = extra or []
        self._pre = pre or []
        self._inner = inner
        self._switch = switch
        self._plain: bytes | None = None
        self._json: bytes | None = None
        self._map: dict[str, str] | None = None

    def pairs(self) -> list[tuple[str, str]]:
        """Every header as (name, raw value), in wire order."""
        out = [self._head[0], *self._switch.fixed_pairs, *self._head[1:], *self._pre]
        if self._chan is not None:
            out.extend(self._chan.block_pairs())
            if self._vars:
                out.extend(("variable_" + k, v) for k, v in self._chan.vars.items())
        out.extend(self._extra)
        return out

    def get(self, header: str) -> str | None:
        """A header's raw value (first occurrence); used by event filters."""
        if header == "Event-Name":
            return self.name
        if header == "Unique-ID" and self._chan is not None:
            return self.uuid
        if self._map is None:
            m: dict[str, str] = {}
            for k, v in self.pairs():
                m.setdefault(k, v)
            self._map = m
        return self._map.get(header)

    def plain(self) -> bytes:
        if self._plain is None:
            parts = [f"Event-Name: {self.name}\n", self._switch.fixed_block, self._head_block]
            parts.extend(wire.header_line(k, v) for k, v in self._pre)
            if self._chan is not None:
                parts.append(self._chan.block())
                if self._vars:
                    parts.append(self._chan.vars_block())
            parts.extend(wire.header_line(k, v) for k, v in self._extra)
            self._plain = wire.plain_event("".join(parts), self._inner)
        return self._plain

    def json(self) -> bytes:
        if self._json is None:
            self._json = wire.json_event(self.pairs(), self._inner)
        return self._json


def make_event(switch: SwitchInfo, name: str, now: datetime, chan: Channel | None = None,
               extra: list[tuple[str, str]] | None = None, pre: list[tuple[str, str]] | None = None,
               inner: str | None = None) -> SimEvent:
    local, gmt, ts, dates_block = wire.event_dates(now)
    calling = _CALLING.get(name, _DEFAULT_CALLING)
    seq = str(switch.next_seq())
    head = [("Event-Name", name), ("Event-Date-Local", local), ("Event-Date-GMT", gmt),
            ("Event-Date-Timestamp", ts), ("Event-Calling-File", calling[0]),
            ("Event-Calling-Function", calling[1]), ("Event-Calling-Line-Number", calling[2]),
            ("Event-Sequence", seq)]
    block = _CALLING_BLOCK.get(name)
    if block is None:
        block = _CALLING_BLOCK[name] = (f"Event-Calling-File: {calling[0]}\nEvent-Calling-Function: {calling[1]}\n"
                                        f"Event-Calling-Line-Number: {calling[2]}\n")
    head_block = f"{dates_block}Event-Date-Timestamp: {ts}\n{block}Event-Sequence: {seq}\n"
    return SimEvent(name, head, head_block, chan, name not in NO_VARS, extra, pre, inner, switch)


def _us(t: datetime | None) -> str:
    return str(int(t.timestamp() * 1_000_000)) if t else "0"


class Channel:
    """One simulated call leg (the dialer's A leg, or a bridge leg)."""

    def __init__(self, uuid: str, name: str, number: str, created: datetime, *,
                 cid_number: str = "0000000000", cid_name: str | None = None,
                 codec: str = "opus", context: str = "default", session_id: int = 1) -> None:
        self.uuid = uuid
        self.name = name
        self.number = number
        self.codec = codec
        self.context = context
        self.destination = number
        self.cid_number = cid_number
        self.cid_name = cid_name
        self.created = created
        self.answered: datetime | None = None
        self.progress: datetime | None = None
        self.hungup_at: datetime | None = None
        self.transferred: datetime | None = None
        self.bridged: datetime | None = None
        self.state = "CS_NONE"
        self.call_state = "DOWN"
        self.state_number = "1"
        self.answer_state = "ringing"
        self.hit_dialplan = "false"
        self.direction = "outbound"  # "inbound" for a call that comes in from the trunk (sim/callback.py)
        self.hangup_cause: str | None = None
        self.media = False  # codec headers appear once media is up
        self.cid_flipped = False
        self.callee_name = "Outbound Call"
        self.other_leg: list[tuple[str, str]] = []
        self.profile = True  # False only for the bare CHANNEL_DESTROY of an invalid gateway
        self.vars: dict[str, str] = {}
        self.session_id = session_id
        self._block: str | None = None
        self._pairs: list[tuple[str, str]] | None = None
        self._var_lines: dict[str, str] = {}
        self._vars_block: str | None = None

    # -- variables ---------------------------------------------------------------------------------
    def set_var(self, name: str, value: str) -> None:
        if self.vars.get(name) == value and name in self._var_lines:
            return
        self.vars[name] = value
        self._var_lines[name] = wire.header_line("variable_" + name, value)
        self._vars_block = None

    def set_vars(self, items) -> None:
        for k, v in items:
            self.set_var(k, v)

    def unset_var(self, name: str) -> None:
        if name in self.vars:
            del self.vars[name]
            del self._var_lines[name]
            self._vars_block = None

    def vars_block(self) -> str:
        if self._vars_block is None:
            self._vars_block = "".join(self._var_lines.values())
        return self._vars_block

    # -- state -------------------------------------------------------------------------------------
    def changed(self) -> None:
        self._block = None
        self._pairs = None

    def set_state(self, state: str | None = None, call_state: str | None = None, number: str | None = None,
                  answer_state: str | None = None) -> None:
        if state is not None:
            self.state = state
        if call_state is not None:
            self.call_state = call_state
        if number is not None:
            self.state_number = number
        if answer_state is not None:
            self.answer_state = answer_state
        self.changed()

    def block_pairs(self) -> list[tuple[str, str]]:
        if self._pairs is None:
            p = [("Channel-State", self.state), ("Channel-Call-State", self.call_state),
                 ("Channel-State-Number", self.state_number), ("Channel-Name", self.name),
                 ("Unique-ID", self.uuid), ("Call-Direction", self.direction),
                 ("Presence-Call-Direction", self.direction), ("Channel-HIT-Dialplan", self.hit_dialplan),
                 ("Channel-Call-UUID", self.uuid), ("Answer-State", self.answer_state)]
            if self.hangup_cause:
                p.append(("Hangup-Cause", self.hangup_cause))
            if self.media:
                rate, bits, _ = CODECS.get(self.codec, CODECS["PCMU"])
                p += [("Channel-Read-Codec-Name", self.codec), ("Channel-Read-Codec-Rate", rate),
                      ("Channel-Read-Codec-Bit-Rate", bits), ("Channel-Write-Codec-Name", self.codec),
                      ("Channel-Write-Codec-Rate", rate), ("Channel-Write-Codec-Bit-Rate", bits)]
            p += self.other_leg
            if self.profile:
                p += self.caller_profile("Caller-")
            self._pairs = p
        return self._pairs

    def block(self) -> str:
        if self._block is None:
            self._block = "".join(wire.header_line(k, v) for k, v in self.block_pairs())
        return self._block

    def caller_profile(self, prefix: str) -> list[tuple[str, str]]:
        if self.cid_flipped:
            ids = [("Caller-ID-Name", self.number), ("Caller-ID-Number", self.number),
                   ("Orig-Caller-ID-Number", self.cid_number), ("Callee-ID-Number", self.cid_number)]
        else:
            ids = ([("Caller-ID-Name", self.cid_name)] if self.cid_name else []) + [
                ("Caller-ID-Number", self.cid_number), ("Orig-Caller-ID-Number", self.cid_number),
                ("Callee-ID-Name", self.callee_name), ("Callee-ID-Number", self.number)]
        p = [("Direction", self.direction), ("Logical-Direction", self.direction), *ids]
        if self.media:
            p.append(("Network-Addr", "127.0.0.1"))
        created = _us(self.created)
        p += [("ANI", self.cid_number), ("Destination-Number", self.destination), ("Unique-ID", self.uuid),
              ("Source", "src/switch_ivr_originate.c"), ("Context", self.context),
              ("Channel-Name", self.name), ("Profile-Index", "1"), ("Profile-Created-Time", created),
              ("Channel-Created-Time", created), ("Channel-Answered-Time", _us(self.answered)),
              ("Channel-Progress-Time", _us(self.progress)), ("Channel-Progress-Media-Time", "0"),
              ("Channel-Hangup-Time", _us(self.hungup_at)), ("Channel-Transfer-Time", _us(self.transferred)),
              ("Channel-Resurrect-Time", "0"), ("Channel-Bridged-Time", _us(self.bridged)),
              ("Channel-Last-Hold", "0"), ("Channel-Hold-Accum", "0"), ("Screen-Bit", "true"),
              ("Privacy-Hide-Name", "false"), ("Privacy-Hide-Number", "false")]
        return [(prefix + k, v) for k, v in p]

    def data_pairs(self) -> list[tuple[str, str]]:
        """The channel-data headers of the `connect` reply (Channel-* profile copy, then the usual block)."""
        return self.caller_profile("Channel-") + self.block_pairs()

    # -- variable sets in the shape the real server uses ------------------------------------------
    def create_vars(self, user_vars: list[tuple[str, str]], endpoint_vars: list[tuple[str, str]],
                    rng: random.Random) -> None:
        self.media_port = str(rng.randrange(16384, 32768, 2))
        self.set_vars([("direction", "outbound"), ("is_outbound", "true"), ("uuid", self.uuid),
                       ("call_uuid", self.uuid), ("session_id", str(self.session_id))])
        self.set_vars(endpoint_vars[:1])
        self.set_vars([("video_media_flow", "disabled"), ("text_media_flow", "disabled"),
                       ("channel_name", self.name)])
        self.set_vars(endpoint_vars[1:])
        self.set_vars(user_vars)
        self.set_vars([("originate_early_media", "true"), ("originate_endpoint", self.name.split("/")[0])])
        if "absolute_codec_string" in self.vars:
            self.set_var("rtp_use_codec_string", self.vars["absolute_codec_string"])
        self.set_vars([("local_media_ip", "127.0.0.1"), ("local_media_port", self.media_port),
                       ("advertised_media_ip", "127.0.0.1"), ("audio_media_flow", "sendrecv"),
                       ("rtp_local_sdp_str", self._sdp(self.media_port))])

    def _sdp(self, port: str) -> str:
        pt = {"PCMU": "0", "PCMA": "8", "G722": "9"}.get(self.codec, "102")
        return (f"v=0\r\no=FreeSWITCH 1795410759 1795410760 IN IP4 127.0.0.1\r\ns=FreeSWITCH\r\n"
                f"c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP {pt} 101\r\n"
                f"a=rtpmap:{pt} {self.codec}/{CODECS.get(self.codec, CODECS['PCMU'])[0]}\r\n"
                f"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n")

    def answer_vars(self, rng: random.Random) -> None:
        rate, bits, send_pt = CODECS.get(self.codec, CODECS["PCMU"])
        tag_to = "".join(rng.choices("ABCDEFGHKLMNPQRSTUVXYZabcdefghkmnpqrstuvxyz0123456789", k=13))
        tag_from = "".join(rng.choices("ABCDEFGHKLMNPQRSTUVXYZabcdefghkmnpqrstuvxyz0123456789", k=13))
        remote_port = str(rng.randrange(16384, 32768, 2))
        self.set_vars([
            ("sip_reply_host", "127.0.0.1"), ("sip_reply_port", "5080"), ("sip_network_ip", "127.0.0.1"),
            ("sip_network_port", "5080"),
            ("sip_user_agent", "FreeSWITCH-mod_sofia/1.10.12-release+git~20240802T210227Z~a88d069d6f~64bit"),
            ("sip_allow", "INVITE, ACK, BYE, CANCEL, OPTIONS, MESSAGE, INFO, UPDATE, REGISTER, REFER, NOTIFY"),
            ("sip_full_from", f"<sip:{self.cid_number}@127.0.0.1>;tag={tag_from}"),
            ("sip_full_to", f"<sip:{self.number}@127.0.0.1:5080>;tag={tag_to}"),
            ("sip_from_user", self.cid_number), ("sip_to_user", self.number), ("sip_to_tag", tag_to),
            ("sip_from_tag", tag_from), ("sip_cseq", str(rng.randrange(10**8, 10**9))),
            ("sip_call_id", str(uuidlib.UUID(int=rng.getrandbits(128)))),
            ("ep_codec_string", f"{self.codec}@{rate}h@20i@{bits}b"), ("remote_audio_media_flow", "sendrecv"),
            ("rtp_use_codec_name", self.codec), ("rtp_use_codec_rate", rate), ("rtp_use_codec_ptime", "20"),
            ("rtp_use_codec_channels", "1"), ("rtp_last_audio_codec_string", f"{self.codec}@{rate}h@20i@1c"),
            ("read_codec", self.codec), ("original_read_codec", self.codec), ("read_rate", rate),
            ("original_read_rate", rate), ("write_codec", self.codec), ("write_rate", rate),
            ("dtmf_type", "rfc2833"), ("rtp_use_timer_name", "soft"),
            ("rtp_use_ssrc", str(rng.getrandbits(32))), ("rtp_2833_send_payload", send_pt),
            ("rtp_2833_recv_payload", "101"), ("remote_media_ip", "127.0.0.1"),
            ("remote_media_port", remote_port)])

    def hangup_vars(self, now: datetime) -> None:
        """The CDR-style variables of CHANNEL_HANGUP_COMPLETE (duration, billsec …)."""
        cause = self.hangup_cause or "NORMAL_CLEARING"
        start = self.created
        total_us = int((now - start).total_seconds() * 1_000_000)
        bill_us = int((now - self.answered).total_seconds() * 1_000_000) if self.answered else 0
        answer_us = int((self.answered - start).total_seconds() * 1_000_000) if self.answered else 0

        def stamp(t: datetime | None) -> str:
            return t.strftime("%Y-%m-%d %H:%M:%S") if t else ""

        def epoch(t: datetime | None) -> str:
            return str(int(t.timestamp())) if t else "0"

        items = [("hangup_cause", cause), ("hangup_cause_q850", str(Q850.get(cause, 16))),
                 ("start_stamp", stamp(start)), ("profile_start_stamp", stamp(start))]
        if self.answered:
            items.append(("answer_stamp", stamp(self.answered)))
        items += [("end_stamp", stamp(now)), ("start_epoch", epoch(start)), ("start_uepoch", _us(start)),
                  ("answer_epoch", epoch(self.answered)), ("answer_uepoch", _us(self.answered)),
                  ("progress_epoch", epoch(self.progress)), ("progress_uepoch", _us(self.progress)),
                  ("end_epoch", epoch(now)), ("end_uepoch", _us(now)),
                  ("caller_id", f'"{self.number}" <{self.number}>'),
                  ("duration", str(total_us // 1_000_000)), ("billsec", str(bill_us // 1_000_000)),
                  ("progresssec", "0"), ("answersec", str(answer_us // 1_000_000)),
                  ("waitsec", str(answer_us // 1_000_000)), ("flow_billsec", str(bill_us // 1_000_000)),
                  ("mduration", str(total_us // 1000)), ("billmsec", str(bill_us // 1000)),
                  ("answermsec", str(answer_us // 1000)), ("uduration", str(total_us)),
                  ("billusec", str(bill_us)), ("answerusec", str(answer_us))]
        self.set_vars(items)
