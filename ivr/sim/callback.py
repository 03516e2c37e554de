"""A debtor calling back: an inbound call from the trunk to the caller-ID number, run by the shipped dialplan
(freeswitch/dialplan/ivr_inbound.xml: answer, then `socket <call-flow server> async full`).

Event order, from the real server where the transcripts show it: the B legs of every captured call ARE inbound
calls running a public-context dialplan (inbound_call_heard: CHANNEL_CREATE with `Call-Direction: inbound`,
`Channel-State: CS_INIT`, `Channel-Call-State: DOWN`, `Answer-State: ringing`; EXECUTE `answer` (CS_EXECUTE,
RINGING); CHANNEL_PROGRESS_MEDIA (Answer-State early); CHANNEL_ANSWER (EARLY -> answered); EXECUTE_COMPLETE
`answer` (ACTIVE); EXECUTE of the next app). From the socket app on, the order is the dialer's A leg's
(outbound_* transcripts): EXECUTE socket, CHANNEL_PARK, the apps the call-flow server asks for, the hang-up
sequence. Unverified (no capture of an inbound call into `socket`): the caller-profile values of an inbound
SIP leg beyond Caller-ID-Number / Destination-Number / Context, and the `variable_*` set (the real one carries
many sip_* variables from the INVITE; only a few are simulated here).

The caller behaves as the Script says for its number (presses, hang-up), like a debtor the dialer called.
"""

from __future__ import annotations

import uuid as uuidlib
from typing import TYPE_CHECKING

import gevent

from ivr.sim.call import Call
from ivr.sim.channel import Channel
from ivr.sim.originate import parse_originate

if TYPE_CHECKING:
    from ivr.sim.server import SimServer


class CallBack(Call):
    def __init__(self, server: SimServer, caller: str, did: str, socket_host: str, socket_port: int) -> None:
        uuid = str(uuidlib.uuid4())
        orig = parse_originate(f"{{origination_uuid={uuid}}}loopback/{did.lstrip('+')} "
                               f"&socket({socket_host}:{socket_port} async full)")
        super().__init__(server, orig, lambda _text: None)
        self.number = caller
        self.debtor = server.script.for_number(caller)
        self.dtmf_ok = True  # the caller's codec: PCMU through the trunk (keys arrive)
        ch = self.chan = Channel(uuid, f"sofia/external/{caller}@127.0.0.1", did, self.clock.now(),
                                 cid_number=caller, cid_name=caller, codec="PCMU", context="public",
                                 session_id=server.next_session_id())
        ch.direction = "inbound"
        ch.callee_name = ""

    def _originate(self) -> None:  # an inbound call is not originated: it arrives and runs the dialplan
        ch = self.chan
        ch.set_vars([("direction", "inbound"), ("uuid", self.uuid), ("session_id", str(ch.session_id)),
                     ("sip_from_user", self.number), ("sip_to_user", ch.destination), ("channel_name", ch.name),
                     ("sip_profile_name", "external"), ("caller_id_number", self.number)])
        ch.set_state("CS_INIT", "DOWN", "2", "ringing")
        self.fire("CHANNEL_CREATE")
        ch.set_state("CS_EXECUTE", "RINGING", "4")
        ch.hit_dialplan = "true"
        app_uuid = str(uuidlib.uuid4())
        self._set_current("answer", "")
        self.fire("CHANNEL_EXECUTE", extra=self._app_headers("answer", "", app_uuid))
        ch.progress = self.clock.now()
        ch.media = True
        ch.set_state(answer_state="early")
        self.fire("CHANNEL_PROGRESS_MEDIA")
        self.answered = True
        ch.answered = self.clock.now()
        ch.set_state("CS_EXECUTE", "EARLY", "4", "answered")
        ch.answer_vars(self.server.rng)
        self.fire("CHANNEL_ANSWER")
        ch.set_state(call_state="ACTIVE")
        self.fire("CHANNEL_EXECUTE_COMPLETE", extra=self._app_headers("answer", "", app_uuid, "_none_"))
        self._far_end = gevent.spawn(self._play_debtor)
        self._socket_app()


def place_callback(server: SimServer, caller: str, did: str, socket_host: str, socket_port: int) -> str:
    """Let `caller` call `did` now; the call runs the inbound dialplan into the call-flow socket. Its uuid."""
    call = CallBack(server, caller, did, socket_host, socket_port)
    call.start()
    return call.uuid
