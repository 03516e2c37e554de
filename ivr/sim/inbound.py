"""The inbound event socket: one client connection (a dialer, `fs_cli`, any ESL library).

Replies are those of inbound_auth_ok_api / inbound_auth_fail / inbound_api_channel_control: auth, `event
plain|json`, `filter` / `filter delete`, `nixevent`, `noevents`, `api`, `bgapi` (+ client `Job-UUID`), `exit`.
While an `api` command runs nothing else is written on that socket; events that fire meanwhile follow its reply.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

from ivr.sim import wire
from ivr.sim.conn import Command, Writer, read_commands

if TYPE_CHECKING:
    from ivr.sim.server import SimServer

log = logging.getLogger("ivr.sim")


class InboundConnection:
    def __init__(self, server: SimServer, sock) -> None:
        self.server = server
        self.sock = sock
        self.out = Writer(sock)
        self.authed = False
        self.format = "plain"
        self.names: set[str] = set()
        self.all_events = False
        self.filters: list[tuple[str, str]] = []
        self.hold = 0
        self.held: list[bytes] = []

    # -- events --------------------------------------------------------------------------------------
    def wants(self, ev) -> bool:
        if not self.authed or not (self.all_events or ev.name in self.names):
            return False
        if self.filters:
            for header, value in self.filters:
                got = ev.get(header)
                if got is None:
                    continue
                if value.startswith("/") and value.endswith("/") and len(value) > 1:
                    try:
                        if re.search(value[1:-1], got):
                            return True
                    except re.error:
                        continue
                elif got == value:
                    return True
            return False
        return True

    def deliver(self, ev) -> None:
        if self.out.dead or self.server.unresponsive:
            return
        data = ev.plain() if self.format == "plain" else ev.json()
        if self.hold:
            self.held.append(data)
        else:
            self.out.send(data)

    def send(self, data: bytes) -> None:
        self.out.send(data)

    def _reply(self, text: str, extra=()) -> None:
        self.out.send(wire.command_reply(text, extra))

    # -- the connection ----------------------------------------------------------------------------------
    def run(self) -> None:
        self.out.send(wire.AUTH_REQUEST)
        try:
            for cmd in read_commands(self.sock):
                if self.out.dead:
                    break
                if self.server.unresponsive:
                    continue  # fault hook: the switch reads but never answers
                if self._handle(cmd) is False:
                    break
        except Exception:  # one bad client must not take the simulator down
            log.exception("sim inbound connection failed")
        finally:
            self.server.inbound.discard(self)
            self.out.close()
            self.out.join()

    def _handle(self, cmd: Command) -> bool | None:
        word, _, rest = cmd.line.partition(" ")
        rest = rest.strip()
        if not self.authed:
            if word == "auth":
                if rest == self.server.password:
                    self.authed = True
                    self._reply("+OK accepted")
                    return None
                self._reply("-ERR invalid")
                self.out.send(wire.disconnect_notice())
                self.out.close()
                return False
            if word == "exit":
                return self._exit()
            self._reply("-ERR command not found")
            return None
        if word == "event":
            return self._event(rest)
        if word == "nixevent":
            for n in rest.split():
                if n == "ALL":
                    self.all_events = False
                    self.names.clear()
                self.names.discard(n)
            self._reply("+OK events nixed")
        elif word == "noevents":
            # unverified beyond the reply text: every subscription is dropped, filters stay
            self.names.clear()
            self.all_events = False
            self._reply("+OK no longer listening for events")
        elif word == "filter":
            self._filter(rest)
        elif word == "myevents" and rest:
            # unverified on the inbound side: all events of that one channel, as esl-reference §1 describes
            self.all_events = True
            self.filters = [("Unique-ID", rest.split()[0])]
            self._reply("+OK Events Enabled")
        elif word in ("api", "bgapi"):
            self.server.run_command_for(self, cmd)
        elif word == "exit":
            return self._exit()
        elif word in ("log", "nolog", "linger", "nolinger", "divert_events"):
            self._reply("+OK")  # unverified: accepted and ignored by the simulator
        else:
            self._reply("-ERR command not found")
        return None

    def _exit(self) -> bool:
        self._reply("+OK bye")
        self.out.send(wire.disconnect_notice())
        self.out.close()
        return False

    def _event(self, rest: str) -> None:
        fmt, _, names = rest.partition(" ")
        if fmt not in ("plain", "json", "xml"):
            names, fmt = rest, "plain"
        if not names.strip():
            self._reply("-ERR no keywords supplied")
            return
        self.format = "json" if fmt == "json" else "plain"  # xml is not simulated: sent as plain
        words = names.split()
        custom = False
        for n in words:
            if custom:
                continue  # CUSTOM subclasses: the simulator fires none
            if n == "CUSTOM":
                custom = True
            elif n in ("ALL", "all"):
                self.all_events = True
            else:
                self.names.add(n)
        self._reply(f"+OK event listener enabled {fmt}")

    def _filter(self, rest: str) -> None:
        parts = rest.split(" ", 1)
        if parts[0] == "delete":
            arg = parts[1].strip() if len(parts) > 1 else ""
            if arg in ("", "all"):
                self.filters.clear()
                self._reply("+OK filter deleted. [all][]")
                return
            header, _, value = arg.partition(" ")
            self.filters = [f for f in self.filters if not (f[0] == header and (not value or f[1] == value))]
            self._reply(f"+OK filter deleted. [{header}][{value}]")  # inbound_file_string
            return
        if len(parts) < 2 or not parts[1].strip():
            self._reply("-ERR invalid syntax")
            return
        header, value = parts[0], parts[1].strip()
        self.filters.append((header, value))
        self._reply(f"+OK filter added. [{header}]=[{value}]")

    def close(self) -> None:
        self.out.abort()

