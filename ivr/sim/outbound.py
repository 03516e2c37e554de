"""The outbound-socket side of one call: FreeSWITCH connects to the call-flow server and obeys its commands.

Commands (outbound_* transcripts): `connect` (one command/reply frame carrying the whole channel data,
URL-encoded, ending in Content-Type / `Reply-Text: %2BOK%0A` / Socket-Mode / Control), `myevents` (this
channel's events, but NOT PLAYBACK_*), `event plain|json NAMES` (adds names, e.g. PLAYBACK_START/STOP),
`linger [N]`, `nolinger`, `sendmsg` (execute with event-uuid/event-lock, or call-command hangup), `exit`.
After the hang-up: linger notice; with plain `linger` we wait for `exit`, with `linger N` we close after N s.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING

import gevent
from gevent.event import Event as GEvent

from ivr.sim import wire
from ivr.sim.channel import make_event
from ivr.sim.conn import Command, Writer, read_commands

if TYPE_CHECKING:
    from ivr.sim.call import Call

log = logging.getLogger("ivr.sim")

PLAYBACK_EVENTS = frozenset({"PLAYBACK_START", "PLAYBACK_STOP"})


class OutboundSession:
    def __init__(self, call: Call, sock, async_mode: bool = True, full: bool = True) -> None:
        self.call = call
        self.sock = sock
        self.out = Writer(sock)
        self.mode = "async" if async_mode else "static"
        self.control = "full" if full else "single-channel"
        self.connected = False
        self.myevents = False
        self.names: set[str] = set()
        self.all_events = False
        self.format = "plain"
        self.linger: int | None = None  # None = no linger, -1 = until exit, N = seconds
        self.closed = GEvent()
        self._reader = gevent.spawn(self._read)
        call.server.sessions.add(self)

    # -- events in ---------------------------------------------------------------------------------
    def deliver(self, ev) -> None:
        if not self.connected or self.out.dead:
            return
        name = ev.name
        if name == "CUSTOM":  # mod_event_socket: CUSTOM plus the subclass names that followed it
            if ("CUSTOM" in self.names and ev.get("Event-Subclass") in self.names) or self.all_events:
                self.out.send(ev.plain() if self.format == "plain" else ev.json())
            return
        if (name in self.names or self.all_events
                or (self.myevents and name not in PLAYBACK_EVENTS)):
            self.out.send(ev.plain() if self.format == "plain" else ev.json())

    def on_hangup(self) -> None:
        """CHANNEL_HANGUP was just sent. Without linger FreeSWITCH drops the socket now (unverified detail)."""
        if self.linger is None:
            self._disconnect()

    def after_hangup(self) -> None:
        """Send the linger notice; a timed linger closes the socket after its seconds."""
        if self.linger is None or self.out.dead:
            return
        ch = self.call.chan
        self.out.send(wire.linger_notice(ch.uuid, ch.name, self.linger))
        if self.linger >= 0:
            gevent.spawn_later(self.call.clock.real_seconds(self.linger), self._disconnect)

    def wait_closed(self, cap_s: float) -> None:
        self.closed.wait(timeout=self.call.clock.real_seconds(cap_s))
        if not self.closed.is_set():
            self._disconnect()

    def close(self, force: bool = False) -> None:
        """Call teardown (a session already saying goodbye finishes sending) or server stop (`force`)."""
        if self.closed.is_set() and not force:
            return
        self.out.abort()
        self._reader.kill(block=False)
        self._set_closed()

    def _set_closed(self) -> None:
        if not self.closed.is_set():
            self.closed.set()
            self.call.server.sessions.discard(self)

    def _disconnect(self) -> None:
        if not self.out.dead:
            self.out.send(wire.disconnect_notice(self.call.uuid))
            self.out.close()
        self._set_closed()

    # -- commands ------------------------------------------------------------------------------------
    def _reply(self, text: str) -> None:
        self.out.send(wire.command_reply(text))

    def _read(self) -> None:
        try:
            for cmd in read_commands(self.sock):
                if self.out.dead:
                    break
                if self._handle(cmd) is False:
                    break
        except Exception:  # never let one client take the simulator down
            log.exception("sim outbound session %s failed", self.call.uuid)
        finally:
            self._set_closed()
            self.out.close()
            if not self.call.hung and not self.call.transferred:
                # unverified: the client went away mid-call; FreeSWITCH hangs the channel up
                self.call.hangup("NORMAL_CLEARING", "send_bye")

    def _handle(self, cmd: Command) -> bool | None:
        word, _, rest = cmd.line.partition(" ")
        rest = rest.strip()
        call = self.call
        if word == "connect":
            self.connected = True
            self.out.send(self._connect_reply())
        elif word == "myevents":
            self.myevents = True
            self._reply("+OK Events Enabled")
        elif word == "linger":
            if rest:
                try:
                    self.linger = max(0, int(rest))
                except ValueError:
                    self.linger = -1
                self._reply(f"+OK will linger {self.linger} seconds" if self.linger >= 0 else "+OK will linger")
            else:
                self.linger = -1
                self._reply("+OK will linger")
        elif word == "nolinger":
            self.linger = None
            self._reply("+OK will not linger")
        elif word == "event":
            fmt, _, names = rest.partition(" ")
            if fmt not in ("plain", "json", "xml"):
                names, fmt = rest, "plain"
            self.format = "json" if fmt == "json" else "plain"  # xml is sent as plain (unsupported)
            for n in names.split():
                if n == "ALL":
                    self.all_events = True
                else:
                    self.names.add(n)
            self._reply(f"+OK event listener enabled {fmt}")
        elif word == "nixevent":
            for n in rest.split():
                self.names.discard(n)
                if n == "ALL":
                    self.all_events = False
            self._reply("+OK events nixed")
        elif word == "noevents":
            self.names.clear()
            self.all_events = False
            self.myevents = False
            self._reply("+OK no longer listening for events")
        elif word == "filter":
            self._reply(f"+OK filter added. [{rest}]")  # unverified: outbound filters are not applied
        elif word == "sendmsg":
            self._sendmsg(rest, cmd)
        elif word == "exit":
            self._reply("+OK bye")
            self._disconnect()
            return False
        elif word in ("api", "bgapi") and self.control == "full":
            call.server.run_command_for(self, cmd)
        else:
            self._reply("-ERR command not found")
        return None

    def _sendmsg(self, target: str, cmd: Command) -> None:
        call = self.call
        if target and target != call.uuid:
            other = call.server.calls.get(target)
            if other is None:
                self._reply(f"-ERR invalid session id [{target}]")
                return
            call = other
        h = cmd.headers
        what = h.get("call-command", "")
        self._reply("+OK")
        if what == "execute":
            app = h.get("execute-app-name", "")
            arg = cmd.body if cmd.body else h.get("execute-app-arg", "")
            try:
                loops = max(1, int(h.get("loops", "1")))
            except ValueError:
                loops = 1
            for _ in range(loops):
                call.execute_later(app, arg, h.get("event-uuid") or None)
        elif what == "hangup":
            cause = h.get("hangup-cause", "NORMAL_CLEARING") or "NORMAL_CLEARING"
            call.hangup(cause if cause.replace("_", "").isalnum() else "NORMAL_CLEARING", "send_bye")

    def _connect_reply(self) -> bytes:
        ch = self.call.chan
        ev = make_event(self.call.server.switch, "CHANNEL_DATA", self.call.clock.now(), None)
        parts = ["Event-Name: CHANNEL_DATA\n", self.call.server.switch.fixed_block]
        parts.extend(wire.header_line(k, v) for k, v in ev.pairs()[6:])  # dates, calling, sequence
        parts.extend(wire.header_line(k, v) for k, v in ch.data_pairs())
        parts.append(ch.vars_block())
        parts.append(f"Content-Type: command/reply\nReply-Text: %2BOK%0A\nSocket-Mode: {self.mode}\n"
                     f"Control: {self.control}\n\n")
        return "".join(parts).encode("utf-8")

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self.close()
