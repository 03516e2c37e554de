"""The simulated FreeSWITCH: inbound ESL, one outbound-socket connection per answered call, scripted debtors,
a simulated trunk and a time scale (see docs/architecture.md, "sim")."""

from ivr.sim.script import Debtor, Script
from ivr.sim.server import SimServer
from ivr.sim.trunk import Trunk

__all__ = ["Debtor", "Script", "SimServer", "Trunk"]
