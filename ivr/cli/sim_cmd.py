"""`ivr sim`: run the simulated FreeSWITCH on its own, so any ESL client (the dialer, fs_cli, a test) can use it.

Examples:
  ivr sim                                   # 127.0.0.1:<freeswitch.port>, password from config, real time
  ivr sim --port 8021 --scale 60 --script debtors.yaml --channels 30
  ivr sim --random-mix 10000 --seed 7 --scale 60 --start 2026-11-23T16:00:00+00:00 --real-start 1795456800

Debtor scripts (YAML) are described in ivr/sim/script.py; numbers not in the script listen, then hang up.
To share one evening with a dialer in another process, give both the same --start, --real-start and --scale.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from datetime import UTC, datetime

from ivr.errors import IvrError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sim", help="run the simulated FreeSWITCH (inbound ESL + outbound sockets)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="event socket port (default: freeswitch.port)")
    p.add_argument("--password", default=None, help="ESL password (default: freeswitch.password)")
    p.add_argument("--scale", type=float, default=1.0, help="time runs this many times faster (default: 1)")
    p.add_argument("--start", default=None, metavar="ISO", help="simulated start time, e.g. 2026-11-23T16:00:00+00:00")
    p.add_argument("--real-start", type=float, default=None, metavar="UNIX",
                   help="the real moment --start corresponds to (default: now)")
    p.add_argument("--script", default=None, metavar="FILE", help="debtor behaviours per number (YAML)")
    p.add_argument("--random-mix", type=int, default=0, metavar="N",
                   help="also script N numbers +380500000000.. with a realistic random mix")
    p.add_argument("--seed", type=int, default=7, help="seed of the random mix and of the simulator (default: 7)")
    p.add_argument("--channels", type=int, default=None, help="trunk channel limit (default: none)")
    p.add_argument("--cps", type=float, default=None, help="switch sessions-per-second limit (default: none)")
    p.add_argument("--gateway", action="append", default=None, metavar="NAME",
                   help="known SIP gateway name (repeatable; default: dialing.gateway)")
    p.add_argument("--sound-dir", default=None, help="folder relative playback paths are read from")
    p.add_argument("--status-every", type=float, default=10.0, metavar="S",
                   help="print a status line every S real seconds (0 = never)")
    p.set_defaults(func=cmd_sim)


def _clock(args):
    from ivr.clock import Clock, ScaledClock

    if args.scale <= 0:
        raise IvrError(f"--scale must be > 0, got {args.scale}")
    if args.scale == 1.0 and args.start is None:
        return Clock()
    start = datetime.now(UTC)
    if args.start:
        try:
            start = datetime.fromisoformat(args.start)
        except ValueError as exc:
            raise IvrError(f"--start {args.start!r} is not an ISO date-time: {exc}") from exc
        if start.tzinfo is None:
            raise IvrError(f"--start {args.start!r} needs a time zone, e.g. +00:00")
    return ScaledClock(start=start, scale=args.scale, real_start=args.real_start or time.time())


def cmd_sim(args: argparse.Namespace) -> int:
    import gevent
    from gevent.event import Event as GEvent

    from ivr.cli.common import load
    from ivr.sim import Script, SimServer, Trunk

    cfg, _ = load(args, with_db=False)
    script = Script()
    if args.random_mix:
        if args.random_mix < 0:
            raise IvrError("--random-mix must be >= 0")
        script = Script.random_mix([f"+38050{i:07d}" for i in range(args.random_mix)], seed=args.seed)
    if args.script:
        loaded = Script.load(args.script)
        script.debtors.update(loaded.debtors)
        script.default = loaded.default
    if args.channels is not None and args.channels < 1:
        raise IvrError(f"--channels must be >= 1, got {args.channels}")
    trunk = Trunk(gateways=set(args.gateway or [cfg.dialing.gateway]), channels=args.channels,
                  sessions_per_second=args.cps)
    port = cfg.freeswitch.port if args.port is None else args.port
    sim = SimServer(args.host, port, args.password or cfg.freeswitch.password, _clock(args), script, trunk,
                    seed=args.seed, sound_dir=args.sound_dir)
    sim.start()
    print(f"simulated FreeSWITCH listening on {args.host}:{sim.port} (clock x{args.scale:g}, "
          f"{len(script.debtors)} scripted numbers, gateways {', '.join(sorted(trunk.gateways))}, "
          f"channels {args.channels or 'unlimited'}); Ctrl-C to stop", file=sys.stderr, flush=True)
    stop = GEvent()
    gevent.signal_handler(signal.SIGTERM, stop.set)
    try:
        while not stop.is_set():
            stop.wait(args.status_every or 3600)
            if args.status_every and not stop.is_set():
                print(f"{datetime.now():%H:%M:%S} calls up {len(sim.calls)}, since start {sim.sessions_total}, "
                      f"peak {sim.peak}, inbound clients {len(sim.inbound)}", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        print("stopping", file=sys.stderr)
    finally:
        sim.stop()
    return 0
