"""The simulated FreeSWITCH: the listening socket, the event bus, the api commands and the fault hooks.

`SimServer(host, port, password, clock, script, trunk)`; `start()` binds (port 0 = any free port, read `port`),
`stop()` closes everything, `restart()` = stop + start on the same port. Runs in the caller's gevent hub: the
clients in the same process must be gevent-friendly (greenswitch, gevent sockets), or run it alone with
`ivr sim`. Fault hooks for the fault suite: `drop_inbound_connections()`, `set_unresponsive(bool)`.

Api commands not covered by a transcript detail are marked "unverified" where they are answered.
"""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

import gevent
from gevent import socket as gsocket
from gevent.event import AsyncResult
from gevent.server import StreamServer

from ivr.clock import Clock
from ivr.errors import IvrError
from ivr.sim import wire
from ivr.sim.call import Call
from ivr.sim.channel import Channel, SwitchInfo, make_event
from ivr.sim.conn import Command
from ivr.sim.inbound import InboundConnection
from ivr.sim.originate import OriginateError, parse_originate
from ivr.sim.script import Script
from ivr.sim.trunk import Trunk

log = logging.getLogger("ivr.sim")

SHOW_COLUMNS = ["uuid", "direction", "created", "created_epoch", "name", "state", "cid_name", "cid_num", "ip_addr", "dest", "application", "application_data", "dialplan", "context", "read_codec", "read_rate", "read_bit_rate", "write_codec", "write_rate", "write_bit_rate", "secure", "hostname", "presence_id", "presence_data", "accountcode", "callstate", "callee_name", "callee_num", "callee_direction", "call_uuid", "sent_callee_name", "sent_callee_num", "initial_cid_name", "initial_cid_num", "initial_ip_addr", "initial_dest", "initial_dialplan", "initial_context"]


class SimServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, password: str = "ClueCon",
                 clock: Clock | None = None, script: Script | None = None, trunk: Trunk | None = None, *,
                 seed: int | None = None, sound_dir: str | Path | None = None,
                 dialplan: dict[str, list[tuple[str, str]]] | None = None, hostname: str = "sim",
                 linger_cap_s: float = 3600.0, connect_timeout_s: float = 5.0) -> None:
        self.host = host
        self.port = port
        self.password = password
        self.clock = clock or Clock()
        self.script = script or Script()
        self.trunk = trunk or Trunk()
        self.rng = random.Random(seed)
        self.sound_dir = Path(sound_dir) if sound_dir else None
        self.dialplan = dialplan or {}
        self.switch = SwitchInfo(hostname=hostname)
        self.linger_cap_s = linger_cap_s
        self.connect_timeout_s = connect_timeout_s
        self.calls: dict[str, Call] = {}
        self.calls_extra: dict[str, Channel] = {}
        self.inbound: set[InboundConnection] = set()
        self.sessions: set = set()
        self.unresponsive = False
        self.sessions_total = 0
        self.peak = 0
        self._session_id = 0
        self._server: StreamServer | None = None
        self._started_mono = self.clock.monotonic()
        self.callflow_socket: tuple[str, int] | None = None  # from the originates' &socket(host:port …)
        self.caller_id = ""  # origination_caller_id_number of the originates: the number debtors call back
        self._plans: list[gevent.Greenlet] = []

    # -- life cycle --------------------------------------------------------------------------------------
    def start(self) -> SimServer:
        server = StreamServer((self.host, self.port), self._accept)
        try:
            server.start()
        except OSError as exc:
            raise IvrError(f"simulator cannot listen on {self.host}:{self.port}: {exc.strerror or exc}") from exc
        self._server = server
        self.port = server.server_port
        log.info("sim listening host=%s port=%d", self.host, self.port)
        for plan in self.script.callbacks:
            self.schedule_callback(plan)
        return self

    def schedule_callback(self, plan) -> None:
        """Let a scripted debtor (a CallBackPlan) call back at its time; Script.callbacks are scheduled by start."""
        self._plans.append(gevent.spawn(self._scripted_callback, plan))

    def stop(self) -> None:
        for g in self._plans:
            g.kill(block=False)
        self._plans.clear()
        if self._server is not None:
            self._server.stop(timeout=0)
            self._server = None
        for conn in list(self.inbound):
            conn.close()
        self.inbound.clear()
        for call in list(self.calls.values()):
            call.kill()
        for session in list(self.sessions):
            session.close(force=True)
        self.calls.clear()
        self.calls_extra.clear()
        self.trunk.in_use = 0

    def restart(self) -> None:
        self.stop()
        self.start()

    # -- fault hooks ---------------------------------------------------------------------------------------
    def drop_inbound_connections(self) -> int:
        conns = list(self.inbound)
        for conn in conns:
            conn.close()
        self.inbound.clear()
        return len(conns)

    def set_unresponsive(self, flag: bool) -> None:
        self.unresponsive = flag

    # -- plumbing ----------------------------------------------------------------------------------------
    def _accept(self, sock, _addr) -> None:
        conn = InboundConnection(self, sock)
        self.inbound.add(conn)
        conn.run()

    def next_session_id(self) -> int:
        self._session_id += 1
        return self._session_id

    def publish(self, ev) -> None:
        for conn in self.inbound:
            if conn.wants(ev):
                conn.deliver(ev)

    def connect_outbound(self, host: str, port: int):
        try:
            sock = gsocket.create_connection((host, port), timeout=self.connect_timeout_s)
        except OSError as exc:
            log.warning("sim socket app cannot connect host=%s port=%d error=%s", host, port, exc)
            return None
        sock.settimeout(None)
        return sock

    # -- api / bgapi ------------------------------------------------------------------------------------
    def run_command_for(self, conn, cmd: Command) -> None:
        word, _, rest = cmd.line.partition(" ")
        name, _, args = rest.strip().partition(" ")
        args = args.strip()
        if word == "bgapi":
            job = _job_uuid(cmd)
            conn.out.send(wire.command_reply(f"+OK Job-UUID: {job}", (("Job-UUID", job),)))

            def done(text: str) -> None:
                self.publish(make_event(self.switch, "BACKGROUND_JOB", self.clock.now(), None,
                                        extra=[("Job-UUID", job), ("Job-Command", name)]
                                        + ([("Job-Command-Arg", args)] if args else []), inner=text))

            if name == "originate":
                self.originate(args, done)
            else:
                gevent.spawn(lambda: done(self.api(name, args)))
            return
        hold = hasattr(conn, "hold")
        if hold:
            conn.hold += 1
        try:
            if name == "originate":
                result = AsyncResult()
                self.originate(args, result.set)
                body = result.get()
            else:
                body = self.api(name, args)
            conn.out.send(wire.api_response(body))
        finally:
            if hold:
                conn.hold -= 1
                if not conn.hold and conn.held:
                    for data in conn.held:
                        conn.out.send(data)
                    conn.held.clear()

    def originate(self, args: str, result_cb) -> None:
        """Start an originate; `result_cb(text)` gets `+OK <uuid>\\n` / `-ERR CAUSE\\n` at the real moment."""
        refusal = self.trunk.rate_refusal(self.clock.monotonic())
        if refusal:
            result_cb(f"-ERR {refusal}\n")  # over sessions-per-second: refused before any channel exists
            return
        try:
            orig = parse_originate(args)
        except OriginateError as exc:
            result_cb(exc.reply())
            return
        ep = orig.endpoint
        if ep.kind == "gateway" and not self.trunk.knows(ep.gateway):
            self._invalid_gateway(orig.var("origination_uuid") or "")
            result_cb("-ERR INVALID_GATEWAY\n")
            return
        uuid = orig.var("origination_uuid")
        if uuid and (uuid in self.calls or uuid in self.calls_extra):
            result_cb("-ERR DESTINATION_OUT_OF_ORDER\n")  # unverified: uuid already in use
            return
        self.sessions_total += 1
        if orig.app == "socket" and orig.socket_port:
            # where the call-flow server listens, and the caller-ID number it calls from: a scripted debtor who
            # calls back dials that number, and the inbound dialplan sends the call to that socket
            self.callflow_socket = (orig.socket_host, orig.socket_port)
            self.caller_id = orig.var("origination_caller_id_number") or self.caller_id
        Call(self, orig, result_cb).start()
        self.peak = max(self.peak, len(self.calls))

    def _scripted_callback(self, plan) -> None:
        """Script.callbacks: at HH:MM local (today, or tomorrow if already past) the debtor calls back the
        caller-ID number the dialer has been calling from, into the call-flow socket its originates named."""
        from datetime import datetime, timedelta
        from zoneinfo import ZoneInfo

        tz = ZoneInfo(plan.timezone)
        now = self.clock.now().astimezone(tz)
        hh, mm = (int(x) for x in plan.at.split(":"))
        when = datetime(now.year, now.month, now.day, hh, mm, tzinfo=tz)
        if when < now:
            when += timedelta(days=1)
        self.clock.sleep((when - now).total_seconds())
        if self.callflow_socket is None:
            log.warning("sim scripted callback from %s at %s skipped: no call-flow socket seen yet (no originate)",
                        plan.number, plan.at)
            return
        from ivr.sim.callback import place_callback

        place_callback(self, plan.number, self.caller_id or "0000000000", *self.callflow_socket)

    def callback(self, caller: str, did: str, socket_host: str, socket_port: int, at=None) -> None:
        """A debtor calls `did` (the caller-ID number) back from `caller`, now or at `at` (a datetime on this
        server's clock, e.g. 19:40 of the evening); the inbound dialplan sends it to the call-flow socket."""
        from ivr.sim.callback import place_callback

        def later() -> None:
            if at is not None:
                self.clock.sleep(max(0.0, (at - self.clock.now()).total_seconds()))
            place_callback(self, caller, did, socket_host, socket_port)

        gevent.spawn(later)

    def _invalid_gateway(self, uuid: str) -> None:
        # inbound_originate_failures: no CREATE/HANGUP, only a bare CHANNEL_DESTROY with Channel-Name N/A.
        import uuid as uuidlib

        ch = Channel(uuid or str(uuidlib.uuid4()), "N/A", "", self.clock.now(), session_id=self.next_session_id())
        ch.profile = False
        ch.set_state("CS_NONE", "DOWN", "0", "ringing")
        ch.set_vars([("direction", "outbound"), ("is_outbound", "true"), ("uuid", ch.uuid),
                     ("call_uuid", ch.uuid), ("session_id", str(ch.session_id))])
        self.publish(make_event(self.switch, "CHANNEL_DESTROY", self.clock.now(), ch))

    def api(self, name: str, args: str) -> str:
        if name == "status":
            return self._status()
        if name == "show":
            return self._show(args)
        if name == "uuid_exists":
            return "true" if args in self.calls else "false"
        if name == "uuid_kill":
            # inbound_api_channel_control: reply first, then HANGUP/HANGUP_COMPLETE/DESTROY. On a socket call the
            # rest of the hang-up sequence (app completion, linger) follows the transcripts of a far-end hang-up:
            # unverified for uuid_kill itself.
            uuid, _, cause = args.partition(" ")
            call = self.calls.get(uuid)
            if call is None or call.hung:
                return "-ERR No such channel!\n"
            call.hangup(cause.strip() or "NORMAL_CLEARING", "send_bye")
            return "+OK\n"
        if name == "hupall":  # unverified wording
            cause = args.split(" ")[0] if args else "NORMAL_CLEARING"
            for call in list(self.calls.values()):
                call.hangup(cause, "send_bye")
            return f"+OK hangup all channels with cause {cause}\n"
        if name == "uuid_getvar":
            uuid, _, var = args.partition(" ")
            call = self.calls.get(uuid)
            if call is None:
                return "-ERR No such channel!\n"
            return call.chan.vars.get(var.strip(), "_undef_")
        if name == "version":
            return "FreeSWITCH Version 1.10.12-release+simulated (night dialer simulator)\n"
        return f"-ERR {name} Command not found!\n"

    def _status(self) -> str:
        up = int(self.clock.monotonic() - self._started_mono)
        days, rem = divmod(up, 86400)
        hours, rem = divmod(rem, 3600)
        minutes, seconds = divmod(rem, 60)
        sps = int(self.trunk.sessions_per_second or 30)
        return (f"UP 0 years, {days} days, {hours} hours, {minutes} minutes, {seconds} seconds, 0 milliseconds, "
                f"0 microseconds\nFreeSWITCH (Version 1.10.12-release git a88d069 2024-08-02 21:02:27Z 64bit) "
                f"is ready\n{self.sessions_total} session(s) since startup\n{len(self.calls)} session(s) - "
                f"peak {self.peak}, last 5min {self.peak} \n0 session(s) per Sec out of max {sps}, peak 0, "
                f"last 5min 0 \n1000 session(s) max\nmin idle cpu 0.00/99.00\nCurrent Stack Size/Max 240K/8192K\n")

    def _rows(self) -> list[dict[str, str]]:
        rows = []
        host = self.switch.hostname
        for call in self.calls.values():  # unverified beyond the columns: B legs are not simulated
            ch = call.chan
            codec = ch.codec if ch.media else ""
            rate = {"PCMU": "8000", "PCMA": "8000", "G722": "16000", "opus": "48000"}.get(codec, "")
            bits = "0" if codec == "opus" else ("64000" if codec else "")
            answered = call.answered and not call.hung
            rows.append({
                "uuid": ch.uuid, "direction": "outbound", "created": ch.created.strftime("%Y-%m-%d %H:%M:%S"),
                "created_epoch": str(int(ch.created.timestamp())), "name": ch.name, "state": ch.state,
                "cid_name": ch.number if ch.cid_flipped else (ch.cid_name or ""),
                "cid_num": ch.number if ch.cid_flipped else ch.cid_number, "ip_addr": "", "dest": ch.destination,
                "application": call.current_app, "application_data": call.current_arg if call.current_app != "socket" else call.orig.app_arg,
                "dialplan": "", "context": ch.context, "read_codec": codec, "read_rate": rate,
                "read_bit_rate": bits, "write_codec": codec, "write_rate": rate, "write_bit_rate": bits,
                "secure": "", "hostname": host, "presence_id": "", "presence_data": "", "accountcode": "",
                "callstate": "HANGUP" if call.hung else ("ACTIVE" if answered else ("RINGING" if ch.progress
                                                                                   else "DOWN")),
                "callee_name": "", "callee_num": ch.cid_number if ch.cid_flipped else "",
                "callee_direction": "RECV" if ch.cid_flipped else "", "call_uuid": ch.uuid,
                "sent_callee_name": "", "sent_callee_num": "", "initial_cid_name": "",
                "initial_cid_num": ch.cid_number, "initial_ip_addr": "", "initial_dest": ch.number,
                "initial_dialplan": "", "initial_context": "default"})
        return rows

    def _show(self, args: str) -> str:
        words = args.split()
        if not words or words[0] not in ("channels", "calls"):
            return "-USAGE: show channels [as json|count]\n"  # unverified: other show targets
        rows = self._rows()
        if len(words) > 1 and words[1] == "count":
            return f"\n{len(rows)} total.\n"
        if words[-2:] == ["as", "json"]:
            if not rows:
                return json.dumps({"row_count": 0}, separators=(",", ":"))
            return json.dumps({"row_count": len(rows), "rows": rows}, ensure_ascii=False, separators=(",", ":"))
        lines = [",".join(SHOW_COLUMNS)]
        lines += [",".join(r[c] for c in SHOW_COLUMNS) for r in rows]
        return "\n".join(lines) + f"\n\n{len(rows)} total.\n"


def _job_uuid(cmd: Command) -> str:
    import re
    import uuid as uuidlib

    given = cmd.headers.get("Job-UUID", "")
    if given and re.fullmatch(r"[A-Za-z0-9-]{1,64}", given):
        return given
    return str(uuidlib.uuid4())

