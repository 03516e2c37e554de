"""A simulated SMSC speaking SMPP 3.4 over TCP, for the demo and the tests (as the simulated FreeSWITCH is for calls).

`SimSmsc(host, port, system_id, password)`; `start()` listens (port 0 = any free port, read `port`), `stop()`
closes everything. Runs in the caller's gevent hub (gevent StreamServer, one greenlet per connection); clients in
the same process must be gevent-friendly (a monkey-patched socket) or run it alone with `ivr sms sim`.

What it does:
- bind_transmitter / bind_receiver / bind_transceiver with system_id and password (wrong -> ESME_RINVPASWD);
- submit_sm: any source, destination digits (optionally +) -> submit_sm_resp with a new message_id; data_coding 0
  (GSM 03.38, unpacked septets) and 8 (UCS-2); esm_class UDHI with the 8-bit (IEI 00) or 16-bit (IEI 08)
  concatenation header, parts reassembled in `messages()`; a destination in `reject` -> ESME_RINVDSTADR;
  more than `max_per_second` submits within one second -> ESME_RTHROTTLED;
- delivery receipts: when registered_delivery asks for one, after `receipt_delay_s` a deliver_sm (esm_class 0x04)
  with receipted_message_id, message_state and the usual "id:… stat:DELIVRD err:000" text goes to a
  transceiver or receiver session of the same system_id (kept until one binds); destinations in `undeliverable`
  get stat UNDELIV (message_state 5);
- enquire_link -> enquire_link_resp; unbind -> unbind_resp and close; an unknown command -> generic_nack.
- fault hooks: `drop_connections()` (the link breaks under the client), `refuse_binds` (binds fail).

What it does NOT cover: data_sm, query_sm, cancel_sm, replace_sm, submit_multi, outbind, alert_notification,
SAR TLVs (sar_msg_ref_num …) and message_payload, scheduled delivery and validity periods, GSM-7 packing,
TLS, per-part receipts when a client asks for receipts on every part only in a provider-specific way, and the
timing of a real network (receipts arrive after a fixed delay).
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections import deque
from dataclasses import dataclass, field

import gevent
from gevent.lock import Semaphore
from gevent.server import StreamServer
from smpplib import consts, smpp
from smpplib import exceptions as smpp_errors

from ivr.channels import segments
from ivr.errors import IvrError

log = logging.getLogger("ivr.sim.smsc")

RECEIPT_ESM = 0x04  # esm_class of an SMSC delivery receipt
_BIND_RESP = {"bind_transmitter": "bind_transmitter_resp", "bind_receiver": "bind_receiver_resp",
              "bind_transceiver": "bind_transceiver_resp"}


def _text(value) -> str:
    if value is None:
        return ""
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


class _Seq:
    """The sequence numbers smpplib asks its 'client' for when building PDUs."""

    def __init__(self) -> None:
        self.sequence = 0

    def next_sequence(self) -> int:
        self.sequence = self.sequence % 0x7FFFFFFF + 1
        return self.sequence


@dataclass
class Submitted:
    message_id: str
    system_id: str
    source: str
    destination: str
    data_coding: int
    esm_class: int
    registered_delivery: int
    udh: tuple[int, int, int] | None  # (reference, total, sequence) of a concatenated part
    text: str
    at: float  # time.monotonic() when it arrived


@dataclass(eq=False)
class Session:
    sock: object
    address: tuple
    mode: str = ""  # transmitter | receiver | transceiver ('' = not bound)
    system_id: str = ""
    seq: _Seq = field(default_factory=_Seq)
    lock: Semaphore = field(default_factory=Semaphore)

    @property
    def receives(self) -> bool:
        return self.mode in ("receiver", "transceiver")

    @property
    def transmits(self) -> bool:
        return self.mode in ("transmitter", "transceiver")

    def send(self, pdu) -> None:
        data = pdu.generate()
        with self.lock:
            self.sock.sendall(data)


class SimSmsc:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, system_id: str = "ivr", password: str = "", *,
                 receipt_delay_s: float = 0.05, max_per_second: float | None = None) -> None:
        self.host, self.port = host, port
        self.system_id, self.password = system_id, password
        self.receipt_delay_s = receipt_delay_s
        self.max_per_second = max_per_second
        self.undeliverable: set[str] = set()
        self.reject: set[str] = set()
        self.refuse_binds = False
        self.submitted: list[Submitted] = []
        self.receipts_sent: list[tuple[str, str]] = []  # (message_id, stat)
        self.binds: list[tuple[str, str]] = []  # (mode, system_id), every successful bind
        self.enquire_links = 0
        self.throttled = 0
        self.sessions: set[Session] = set()
        self._pending: list[tuple[str, object]] = []  # receipts waiting for a receiving session: (system_id, pdu)
        self._recent: deque[float] = deque()
        self._next_id = 0
        self._server: StreamServer | None = None

    # -- life cycle --------------------------------------------------------------------------------------------
    def start(self) -> SimSmsc:
        server = StreamServer((self.host, self.port), self._accept)
        try:
            server.start()
        except OSError as exc:
            raise IvrError(f"simulated SMSC cannot listen on {self.host}:{self.port}: {exc.strerror or exc}"
                           ) from exc
        self._server = server
        self.port = server.server_port
        log.info("event=smsc_listening host=%s port=%d", self.host, self.port)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(timeout=1)
            self._server = None
        self.drop_connections()

    def drop_connections(self) -> None:
        """Fault hook: close every client connection at once, as a provider restart would."""
        for s in list(self.sessions):
            with contextlib.suppress(OSError):
                s.sock.close()
        self.sessions.clear()

    # -- what tests read ---------------------------------------------------------------------------------------
    def messages(self) -> list[tuple[str, str, int]]:
        """Whole messages as a handset would show them: (destination, text, parts), concatenated parts joined."""
        out: list[tuple[str, str, int]] = []
        groups: dict[tuple[str, int, int], dict[int, str]] = {}
        order: list[tuple[str, int, int]] = []
        for s in self.submitted:
            if s.udh is None:
                out.append((s.destination, s.text, 1))
                continue
            key = (s.destination, s.udh[0], s.udh[1])
            if key not in groups:
                groups[key] = {}
                order.append(key)
            groups[key][s.udh[2]] = s.text
        for key in order:
            parts = groups[key]
            if len(parts) == key[2]:
                out.append((key[0], "".join(parts[i] for i in sorted(parts)), key[2]))
        return out

    # -- the connection ----------------------------------------------------------------------------------------
    def _accept(self, sock, address) -> None:
        session = Session(sock, address)
        self.sessions.add(session)
        try:
            while True:
                head = self._recv(sock, 4)
                if head is None:
                    return
                length = int.from_bytes(head, "big")
                if length < 16 or length > 64 * 1024:
                    return  # not SMPP: drop the link
                body = self._recv(sock, length - 4)
                if body is None:
                    return
                if not self._handle(session, head + body):
                    return
        except OSError:
            return
        finally:
            self.sessions.discard(session)
            with contextlib.suppress(OSError):
                sock.close()

    @staticmethod
    def _recv(sock, n: int) -> bytes | None:
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    def _reply(self, session: Session, name: str, request, **kwargs) -> None:
        pdu = smpp.make_pdu(name, client=session.seq, **kwargs)
        pdu.sequence = request.sequence
        session.send(pdu)

    def _handle(self, session: Session, raw: bytes) -> bool:
        try:
            pdu = smpp.parse_pdu(raw, client=session.seq, allow_unknown_opt_params=True)
        except (smpp_errors.UnknownCommandError, smpp_errors.PDUError, ValueError, IndexError):
            nack = smpp.make_pdu("generic_nack", client=session.seq, status=consts.SMPP_ESME_RINVCMDID)
            nack.sequence = int.from_bytes(raw[12:16], "big")
            session.send(nack)
            return True
        cmd = pdu.command
        if cmd in _BIND_RESP:
            return self._bind(session, pdu)
        if cmd == "enquire_link":
            self.enquire_links += 1
            self._reply(session, "enquire_link_resp", pdu)
            return True
        if cmd == "unbind":
            self._reply(session, "unbind_resp", pdu)
            return False
        if cmd == "submit_sm":
            self._submit(session, pdu)
            return True
        if cmd in ("deliver_sm_resp", "enquire_link_resp", "generic_nack"):
            return True
        self._reply(session, "generic_nack", pdu, status=consts.SMPP_ESME_RINVCMDID)
        return True

    def _bind(self, session: Session, pdu) -> bool:
        resp = _BIND_RESP[pdu.command]
        if session.mode:
            self._reply(session, resp, pdu, status=consts.SMPP_ESME_RALYBND)
            return True
        sid, pw = _text(pdu.system_id), _text(pdu.password)
        if self.refuse_binds:
            self._reply(session, resp, pdu, status=consts.SMPP_ESME_RBINDFAIL)
            return True
        if sid != self.system_id or pw != self.password:
            self._reply(session, resp, pdu, status=consts.SMPP_ESME_RINVPASWD)
            return True
        session.mode, session.system_id = pdu.command.removeprefix("bind_"), sid
        self.binds.append((session.mode, sid))
        self._reply(session, resp, pdu, system_id="IVRSIM")
        if session.receives:
            self._flush_pending()
        return True

    def _submit(self, session: Session, pdu) -> None:
        if not session.transmits:
            self._reply(session, "submit_sm_resp", pdu, status=consts.SMPP_ESME_RINVBNDSTS)
            return
        now = time.monotonic()
        if self.max_per_second:
            while self._recent and now - self._recent[0] >= 1.0:
                self._recent.popleft()
            if len(self._recent) >= self.max_per_second:
                self.throttled += 1
                self._reply(session, "submit_sm_resp", pdu, status=consts.SMPP_ESME_RTHROTTLED)
                return
            self._recent.append(now)
        dest = _text(pdu.destination_addr)
        if not re.fullmatch(r"\+?[0-9]{5,15}", dest) or dest in self.reject or "+" + dest in self.reject:
            self._reply(session, "submit_sm_resp", pdu, status=consts.SMPP_ESME_RINVDSTADR)
            return
        esm = pdu.esm_class or 0
        dc = pdu.data_coding or 0
        udh, text = segments.decode(pdu.short_message or b"", dc, esm)
        self._next_id += 1
        mid = f"{self._next_id:08X}"
        self.submitted.append(Submitted(mid, session.system_id, _text(pdu.source_addr), dest, dc, esm,
                                        pdu.registered_delivery or 0, udh, text, now))
        self._reply(session, "submit_sm_resp", pdu, message_id=mid)
        if (pdu.registered_delivery or 0) & 0x03:
            gevent.spawn_later(self.receipt_delay_s, self._receipt, session.system_id, mid,
                               _text(pdu.source_addr), dest)

    def _receipt(self, system_id: str, mid: str, source: str, dest: str) -> None:
        bad = dest in self.undeliverable or dest.lstrip("+") in {u.lstrip("+") for u in self.undeliverable}
        stat, state, err = ("UNDELIV", 5, "001") if bad else ("DELIVRD", 2, "000")
        stamp = time.strftime("%y%m%d%H%M")
        text = f"id:{mid} sub:001 dlvrd:{'000' if bad else '001'} submit date:{stamp} done date:{stamp} " \
               f"stat:{stat} err:{err} text:"
        seq = _Seq()
        pdu = smpp.make_pdu("deliver_sm", client=seq, source_addr=dest, destination_addr=source,
                            esm_class=RECEIPT_ESM,
                            short_message=text.encode(), receipted_message_id=mid, message_state=state)
        self.receipts_sent.append((mid, stat))
        self._pending.append((system_id, pdu))
        self._flush_pending()

    def _flush_pending(self) -> None:
        keep = []
        for system_id, pdu in self._pending:
            target = next((s for s in self.sessions if s.receives and s.system_id == system_id), None)
            if target is None:
                keep.append((system_id, pdu))
                continue
            pdu.sequence = target.seq.next_sequence()
            try:
                target.send(pdu)
            except OSError:
                keep.append((system_id, pdu))
        self._pending = keep


class SimThread:
    """The simulated SMSC in a thread of its own (its own gevent hub), so plain blocking clients (smpplib in
    `ivr sms send`, the tests) can talk to it from the calling thread. `with SimThread(SimSmsc(...)) as sim:`."""

    def __init__(self, smsc: SimSmsc) -> None:
        import threading

        self.smsc = smsc
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="sim-smsc", daemon=True)

    def _run(self) -> None:
        try:
            self.smsc.start()
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        while not self._stop.is_set():
            gevent.sleep(0.02)
        self.smsc.stop()

    def __enter__(self) -> SimSmsc:
        self._thread.start()
        self._ready.wait(60)
        if self._error is not None:
            raise self._error
        return self.smsc

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(60)
