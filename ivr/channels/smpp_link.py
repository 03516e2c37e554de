"""The SMPP 3.4 link to the SMS provider (smpplib): bind, submit with a throughput limit, receipts, reconnect.

`SmppLink(cfg.sms, on_receipt)`: `open()` connects and binds as a transceiver (receipts arrive on the same link)
or as a transmitter plus a second link bound as a receiver (`sms.bind`). `submit(destination, encoded)` sends
every part of one message (ivr.channels.segments) and returns their message ids; it waits for each part's
submit_sm_resp, answering deliver_sm (receipts, passed to `on_receipt`) and enquire_link that arrive meanwhile.
Parts are paced to `sms.max_per_second`; an ESME_RTHROTTLED answer backs off and sends the part again. When the
link drops, it re-binds up to `sms.reconnect_attempts` times (1, 2, 4 … 30 s apart) and sends the part whose
answer it never got again (the provider may then have it twice: SMPP has no way to ask).
`collect(seconds, until)` keeps reading receipts. The password is never logged.

Synchronous sockets: under gevent (the dialer, the simulated SMSC in tests) they must be monkey-patched.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from smpplib import client as smpp_client
from smpplib import consts, smpp
from smpplib import exceptions as smpp_errors

from ivr.channels.segments import Encoded
from ivr.config import SmsConfig
from ivr.errors import IvrError

log = logging.getLogger(__name__)

# message_state (SMPP 3.4 5.2.28) -> Message.status
STATES = {1: "sent", 2: "delivered", 3: "expired", 4: "failed", 5: "failed", 6: "sent", 7: "sent", 8: "failed"}
# receipt text stat: -> Message.status
STATS = {"DELIVRD": "delivered", "EXPIRED": "expired", "DELETED": "failed", "UNDELIV": "failed",
         "ACCEPTD": "sent", "UNKNOWN": "sent", "REJECTD": "failed", "ENROUTE": "sent"}


class SmsLinkError(IvrError):
    """The link could not be (re)established, or the provider refused a part (`status` = SMPP command_status)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Receipt:
    message_id: str
    status: str  # delivered | failed | expired | sent
    stat: str  # as the provider wrote it (DELIVRD, UNDELIV …)
    error: str


def parse_receipt(pdu) -> Receipt | None:
    """A delivery receipt from a deliver_sm (None when it is an ordinary incoming message)."""
    text = pdu.short_message.decode("latin-1", "replace") if isinstance(pdu.short_message, bytes) else \
        str(pdu.short_message or "")
    rid = pdu.receipted_message_id
    rid = rid.decode("latin-1") if isinstance(rid, bytes) else (rid or "")
    m = re.search(r"\bid:(\S+)", text)
    if not rid and m:
        rid = m.group(1)
    if not rid or not ((pdu.esm_class or 0) & 0x3C or m):
        return None
    stat_m = re.search(r"\bstat:(\w+)", text)
    err_m = re.search(r"\berr:(\w+)", text)
    stat = stat_m.group(1).upper() if stat_m else ""
    status = STATES.get(int(pdu.message_state), "sent") if pdu.message_state else STATS.get(stat, "sent")
    return Receipt(rid.strip(), status, stat, err_m.group(1) if err_m else "")


def _source(addr: str) -> dict:
    if re.fullmatch(r"\+?[0-9]{1,15}", addr):
        return {"source_addr_ton": consts.SMPP_TON_INTL if addr.startswith("+") else consts.SMPP_TON_UNK,
                "source_addr_npi": consts.SMPP_NPI_ISDN, "source_addr": addr.lstrip("+")}
    return {"source_addr_ton": consts.SMPP_TON_ALNUM, "source_addr_npi": consts.SMPP_NPI_UNK, "source_addr": addr}


class SmppLink:
    def __init__(self, cfg: SmsConfig, on_receipt: Callable[[Receipt], None], *,
                 sleep: Callable[[float], None] = time.sleep,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        if not cfg.host:
            raise SmsLinkError("SMS is not set up: sms.host is empty in config.yaml")
        self.cfg = cfg
        self.on_receipt = on_receipt
        self.sleep, self.monotonic = sleep, monotonic
        self.tx: smpp_client.Client | None = None
        self.rx: smpp_client.Client | None = None
        self._next_slot = 0.0
        self.reconnects = 0
        self.throttled = 0

    # -- the link --------------------------------------------------------------------------------------------
    def _client(self, mode: str) -> smpp_client.Client:
        c = smpp_client.Client(self.cfg.host, self.cfg.port, timeout=self.cfg.timeout_seconds,
                               allow_unknown_opt_params=True)
        try:
            c.connect()
            getattr(c, f"bind_{mode}")(system_id=self.cfg.system_id, password=self.cfg.password,
                                       system_type=self.cfg.system_type)
        except smpp_errors.PDUError as exc:
            c.disconnect()
            code = exc.args[1] if len(exc.args) > 1 else None
            raise SmsLinkError(f"the SMSC at {self.cfg.host}:{self.cfg.port} refused bind_{mode} as "
                               f"{self.cfg.system_id!r} (status 0x{code or 0:X}: check sms.system_id and the "
                               "password)", code) from None
        except (smpp_errors.ConnectionError, OSError) as exc:
            c.disconnect()
            raise SmsLinkError(f"cannot reach the SMSC at {self.cfg.host}:{self.cfg.port} ({exc or 'refused'})"
                               ) from None
        log.info("event=smpp_bound mode=%s host=%s port=%d system_id=%s", mode, self.cfg.host, self.cfg.port,
                 self.cfg.system_id)
        return c

    def open(self) -> SmppLink:
        if self.cfg.bind == "transceiver":
            self.tx = self._client("transceiver")
            self.rx = self.tx
        else:
            self.tx = self._client("transmitter")
            self.rx = self._client("receiver")
        return self

    def close(self) -> None:
        for c in {id(x): x for x in (self.tx, self.rx) if x is not None}.values():
            try:
                if c.state in (consts.SMPP_CLIENT_STATE_BOUND_TX, consts.SMPP_CLIENT_STATE_BOUND_RX,
                               consts.SMPP_CLIENT_STATE_BOUND_TRX):
                    c.send_pdu(smpp.make_pdu("unbind", client=c))
                    self._read_until(c, "unbind_resp", None)
            except (smpp_errors.ConnectionError, smpp_errors.PDUError, OSError, SmsLinkError):
                pass
            c.disconnect()
        self.tx = self.rx = None

    def _reopen(self, why: str) -> None:
        delay = 1.0
        for attempt in range(1, self.cfg.reconnect_attempts + 1):
            self.close()
            log.warning("event=smpp_reconnect attempt=%d why=%s", attempt, why)
            try:
                self.open()
                self.reconnects += 1
                return
            except SmsLinkError as exc:
                why = str(exc)
                self.sleep(delay)
                delay = min(delay * 2, 30.0)
        raise SmsLinkError(f"the SMPP link dropped and {self.cfg.reconnect_attempts} re-binds failed: {why}")

    # -- reading ---------------------------------------------------------------------------------------------
    def _dispatch(self, c: smpp_client.Client, pdu) -> None:
        if pdu.command == "deliver_sm":
            receipt = parse_receipt(pdu)
            resp = smpp.make_pdu("deliver_sm_resp", client=c)
            resp.sequence = pdu.sequence
            c.send_pdu(resp)
            if receipt is not None:
                self.on_receipt(receipt)
        elif pdu.command == "enquire_link":
            resp = smpp.make_pdu("enquire_link_resp", client=c)
            resp.sequence = pdu.sequence
            c.send_pdu(resp)

    def _read_until(self, c: smpp_client.Client, command: str, sequence: int | None):
        """Read PDUs, dispatching others, until `command` (with `sequence`) arrives; return it."""
        while True:
            try:
                pdu = c.read_pdu()
            except TimeoutError:
                raise SmsLinkError(f"no {command} from the SMSC within {self.cfg.timeout_seconds} s") from None
            if pdu.command == command and (sequence is None or pdu.sequence == sequence):
                return pdu
            if pdu.command == "generic_nack" and (sequence is None or pdu.sequence == sequence):
                raise SmsLinkError(f"the SMSC answered generic_nack (0x{pdu.status:X})", pdu.status)
            self._dispatch(c, pdu)

    # -- sending ---------------------------------------------------------------------------------------------
    def _pace(self) -> None:
        now = self.monotonic()
        slot = max(now, self._next_slot)
        if slot > now:
            self.sleep(slot - now)
        self._next_slot = slot + 1.0 / self.cfg.max_per_second

    def submit(self, destination: str, enc: Encoded) -> list[str]:
        """Send every part; return the provider's message ids. A receipt is asked for on the last part only
        (a concatenated message is shown when its last part arrives)."""
        ids = []
        for i, part in enumerate(enc.parts):
            last = i == len(enc.parts) - 1
            ids.append(self._submit_part(destination, part, enc, last))
        return ids

    def _submit_part(self, destination: str, part: bytes, enc: Encoded, last: bool) -> str:
        throttled = 0
        while True:
            self._pace()
            if self.tx is None:
                self._reopen("not open")
            c = self.tx
            pdu = smpp.make_pdu(
                "submit_sm", client=c, **_source(self.cfg.source_addr),
                dest_addr_ton=consts.SMPP_TON_INTL, dest_addr_npi=consts.SMPP_NPI_ISDN,
                destination_addr=destination.lstrip("+"), short_message=part, data_coding=enc.data_coding,
                esm_class=enc.esm_class, registered_delivery=1 if last else 0)
            try:
                c.send_pdu(pdu)
                resp = self._read_until(c, "submit_sm_resp", pdu.sequence)
            except (smpp_errors.ConnectionError, OSError) as exc:
                self._reopen(f"{type(exc).__name__}: {exc}")
                continue
            if resp.status == consts.SMPP_ESME_ROK:
                mid = resp.message_id
                return (mid.decode("latin-1") if isinstance(mid, bytes) else str(mid)).strip()
            if resp.status in (consts.SMPP_ESME_RTHROTTLED, consts.SMPP_ESME_RMSGQFUL) and throttled < 10:
                throttled += 1
                self.throttled += 1
                self.sleep(min(2.0 ** throttled / 4, 10.0))
                continue
            raise SmsLinkError(f"the SMSC refused the message (status 0x{resp.status:X}: "
                               f"{consts.DESCRIPTIONS.get(resp.status, 'unknown')})", resp.status)

    def collect(self, seconds: float, until: Callable[[], bool] = lambda: False) -> None:
        """Read receipts for up to `seconds` or until `until()` is true; keeps the link alive meanwhile."""
        c = self.rx
        if c is None:
            return
        deadline = self.monotonic() + seconds
        old = c._socket.gettimeout() if c._socket is not None else None
        try:
            while not until() and self.monotonic() < deadline:
                c._socket.settimeout(max(0.05, min(1.0, deadline - self.monotonic())))
                try:
                    pdu = c.read_pdu()
                except TimeoutError:
                    continue
                except (smpp_errors.ConnectionError, OSError) as exc:
                    self._reopen(f"{type(exc).__name__}: {exc}")
                    c = self.rx
                    continue
                self._dispatch(c, pdu)
        finally:
            if c is not None and c._socket is not None:
                c._socket.settimeout(old)

    def enquire_link(self) -> None:
        c = self.tx
        if c is None:
            return
        pdu = smpp.make_pdu("enquire_link", client=c)
        c.send_pdu(pdu)
        self._read_until(c, "enquire_link_resp", pdu.sequence)
