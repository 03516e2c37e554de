"""A simulator + real dialer set-up for the fault suite, watched from the simulator's side.

`SimWorld` is what every such set-up shares (the fault suite's and tests/test_dialer_e2e.py's): the evening
(DAY, `local`), dialers kept with their clients, the campaign started and its speech rendered before dialing,
and the close. `FaultWorld(cfg)` starts a SimServer on a fast ScaledClock (evening of Monday 2026-11-23, Kyiv,
inside the window), accounts whose debtors listen to the message (a fake TTS engine makes a message of a few
seconds), and gives a Dialer with its own EslClient. A sampler greenlet records, from the simulator's side, the
live channels per number (two at once to one number is an overlap) and the peak; every originate the dialer
sends is logged with the client's connection state at that moment.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import factories
import gevent
from speech_fakes import FakeEngine
from waiting import CEILING, wait_until

from ivr.campaign.queue import start_campaign
from ivr.clock import ScaledClock
from ivr.dialer.dialer import Dialer
from ivr.ledger.models import Account, Attempt, Campaign, QueueEntry
from ivr.sim.script import Debtor, Script
from ivr.sim.server import SimServer
from ivr.sim.trunk import Trunk
from ivr.speech import Speech
from ivr.switch.esl import EslClient

DAY = date(2026, 11, 23)
KYIV = ZoneInfo("Europe/Kyiv")


def local(h: int, m: int, s: int = 0) -> datetime:
    return datetime(2026, 11, 23, h, m, s, tzinfo=KYIV).astimezone(UTC)


class SimWorld:
    """The shared part of a simulator + dialer set-up; a subclass sets cfg, clock, speech, sim and `_sampler`."""

    def __init__(self) -> None:
        self.dialers: list[Dialer] = []
        self.esls: list[EslClient] = []

    def _keep(self, dialer: Dialer, esl: EslClient) -> Dialer:
        self.dialers.append(dialer)
        self.esls.append(esl)
        return dialer

    def campaign(self, dialer: Dialer | None = None) -> Campaign:
        """Start the evening's campaign and render its speech before dialing (on `dialer`, else the last one
        made), as `ivr run` / `ivr demo` do: at a fast clock a TTS pause of a few real milliseconds would be
        seconds of dead air in a simulated call."""
        camp = start_campaign(self.cfg, DAY, self.clock)
        (dialer or self.dialers[-1]).prepare_speech(list(Account.select()), DAY)
        return camp

    def close(self) -> None:
        self._sampler.kill()
        for d in self.dialers:
            d.stop()
        for e in self.esls:
            e.stop()
        self.sim.stop()


class FaultWorld(SimWorld):
    def __init__(self, cfg, *, accounts: int = 12, channels: int = 4, cps: float = 20.0, scale: float = 20.0,
                 command_timeout: float = 1.0) -> None:
        super().__init__()
        self.clock = ScaledClock(start=local(18, 0, 5), scale=scale)
        self.script = Script(default=Debtor.listen())
        self.sim = SimServer(clock=self.clock, script=self.script, trunk=Trunk(gateways={"trunk"})).start()
        self.cfg = cfg.replace(
            pacing=dataclasses.replace(cfg.pacing, channels=channels, cps=cps),
            retry=dataclasses.replace(cfg.retry, early_hangup_pause_seconds=30, max_attempts_per_day=6,
                                      delays={**cfg.retry.delays}),
            freeswitch=dataclasses.replace(cfg.freeswitch, port=self.sim.port, command_timeout=command_timeout,
                                           reconnect_max_delay=0.3))
        self.speech = Speech(self.cfg, engine=FakeEngine())
        self.accounts = [factories.account(phone=f"+38050119{i:04d}") for i in range(accounts)]
        self.overlaps: list[str] = []
        self.peak = 0
        self.originates: list[str] = []  # the client's state at each originate the dialer sent
        self._sampler = gevent.spawn(self._sample)

    def _sample(self) -> None:
        while True:
            numbers = [c.chan.number for c in list(self.sim.calls.values()) if not c.hung]
            self.peak = max(self.peak, len(numbers))
            self.overlaps.extend({n for n in numbers if numbers.count(n) > 1})
            gevent.sleep(0.002)

    def dialer(self, node: str = "node-a") -> Dialer:
        fs = self.cfg.freeswitch
        esl = EslClient("127.0.0.1", self.sim.port, "ClueCon", fs.command_timeout, fs.reconnect_max_delay,
                        reconnect_min_delay=0.05, keepalive=0.3)
        esl.start()
        real_bgapi = esl.bgapi

        def bgapi(cmd, timeout=None):
            if cmd.startswith("originate "):
                self.originates.append(esl.state)
            return real_bgapi(cmd, timeout)

        esl.bgapi = bgapi
        d = Dialer(self.cfg, esl, self.clock, self.speech, node=node, outbound_port=0)
        d.start()
        return self._keep(d, esl)

    def wait(self, cond, timeout: float = CEILING, what: str = "") -> None:
        wait_until(cond, what or repr(cond), timeout)


def attempts_of(acc: Account) -> list[Attempt]:
    return list(Attempt.select().where(Attempt.account == acc).order_by(Attempt.id))


def entry_of(acc: Account) -> QueueEntry:
    return QueueEntry.get(QueueEntry.account == acc)


def finished() -> dict[int, str]:
    return {a.id: a.outcome for a in Attempt.select().where(Attempt.outcome != "")}
