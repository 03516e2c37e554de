"""Live controls: `ivr status`, `ivr set channels|cps`, `ivr pause`, `ivr resume`, `ivr stop`, `ivr metrics`.

Each is a read or a one-row write on the ledger; running dialers poll the Control table about once a second,
so changes act within a second from any shell (or another machine when the database is PostgreSQL).
"""

from __future__ import annotations

import argparse
import threading
import time
from datetime import UTC, datetime, timedelta

from ivr.cli.common import load


def _dialer_note() -> str:
    from ivr.admin.status import ALIVE_SECONDS
    from ivr.ledger.models import DialerNode
    cutoff = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=ALIVE_SECONDS)
    live = DialerNode.select().where(DialerNode.heartbeat_at >= cutoff).count()
    if live:
        return f"{live} running dialer(s) apply it within a second"
    return "no dialer is running now; it applies when one starts"


def cmd_set_channels(args: argparse.Namespace) -> int:
    from ivr.admin import control
    control.parse_channels(args.value)  # a bad value is reported before touching the database
    load(args)
    from ivr.ledger.audit import cli_actor
    value = control.set_channels(args.value, cli_actor())
    print(f"channels set to {value}; {_dialer_note()}")
    return 0


def cmd_set_cps(args: argparse.Namespace) -> int:
    from ivr.admin import control
    control.parse_cps(args.value)
    load(args)
    from ivr.ledger.audit import cli_actor
    value = control.set_cps(args.value, cli_actor())
    print(f"cps set to {value:g} new calls per second; {_dialer_note()}")
    return 0


def cmd_set_defaults(args: argparse.Namespace) -> int:
    from ivr.admin import control
    from ivr.ledger.audit import cli_actor
    cfg, _db = load(args)
    control.reset_pacing(cli_actor())
    print(f"channels and cps back to config.yaml ({cfg.pacing.channels} channels, {cfg.pacing.cps:g} calls/s); "
          f"{_dialer_note()}")
    return 0


def _command(name: str, what: str):
    def run(args: argparse.Namespace) -> int:
        from ivr.admin import control
        from ivr.ledger.audit import cli_actor
        load(args)
        getattr(control, name)(cli_actor())
        print(f"{what}; {_dialer_note()}")
        return 0
    return run


def cmd_status(args: argparse.Namespace) -> int:
    cfg, _db = load(args)
    from ivr.admin.status import render, snapshot, to_json
    if args.json and not args.watch:
        print(to_json(snapshot(cfg)))
        return 0
    from rich.console import Console
    console = Console()
    if not args.watch:
        console.print(render(snapshot(cfg)))
        return 0
    from rich.live import Live
    try:
        with Live(render(snapshot(cfg)), console=console, refresh_per_second=4, screen=False) as live:
            while True:
                time.sleep(args.interval)
                live.update(render(snapshot(cfg)))
    except KeyboardInterrupt:  # Ctrl-C is how --watch ends
        return 0


def cmd_metrics(args: argparse.Namespace) -> int:
    cfg, _db = load(args)
    from ivr.admin.metrics import start_metrics_server
    port = args.port if args.port is not None else (cfg.metrics.port or 9108)
    server = start_metrics_server(cfg, port, args.bind)
    print(f"serving Prometheus metrics on http://{server.bind}:{server.port}/metrics (Ctrl-C to stop)")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:  # Ctrl-C is how it ends
        pass
    finally:
        server.stop()
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("status", help="the running campaign at a glance (channels, rate, queue, outcomes, errors)",
                       description="Channels in use and the cap, calls per second, queue lengths, outcomes so far, "
                                   "errors and the FreeSWITCH connection, read from the database.")
    p.add_argument("--watch", action="store_true", help="refresh every second until Ctrl-C")
    p.add_argument("--interval", type=float, default=1.0, metavar="S", help=argparse.SUPPRESS)
    p.add_argument("--json", action="store_true", help="print one JSON snapshot for machines")
    p.set_defaults(func=cmd_status)

    s = sub.add_parser("set", help="change channels or calls per second of running dialers, live",
                       description="Change a pacing limit live: running dialers apply it within a second.")
    ssub = s.add_subparsers(dest="setting", metavar="SETTING", required=True)
    c = ssub.add_parser("channels", help="most concurrent calls (1..10000)",
                        description="Set the most concurrent calls on the trunk (a whole number 1..10000).")
    c.add_argument("value", metavar="N", help="whole number of channels, 1..10000")
    c.set_defaults(func=cmd_set_channels)
    r = ssub.add_parser("cps", help="most new calls per second (0.1..1000)",
                        description="Set the most new calls started per second (0.1..1000).")
    r.add_argument("value", metavar="R", help="calls per second, 0.1..1000 (e.g. 2.5)")
    r.set_defaults(func=cmd_set_cps)

    for name, helptext, what in (
            ("pause", "stop placing new calls; calls in progress finish", "pause requested"),
            ("resume", "start placing calls again after a pause", "resume requested"),
            ("stop", "end the evening's campaign: no new calls; calls in progress finish", "stop requested")):
        x = sub.add_parser(name, help=helptext, description=helptext[0].upper() + helptext[1:] + ".")
        x.set_defaults(func=_command(name, what))

    x = ssub.add_parser("defaults", help="forget live channels/cps: back to config.yaml's pacing values",
                        description="Remove the live channels and cps settings, so running dialers go back to "
                                    "config.yaml's pacing.channels and pacing.cps within a second.")
    x.set_defaults(func=cmd_set_defaults)

    m = sub.add_parser("metrics", help="serve Prometheus metrics alone (ivr run serves them when metrics.port>0)",
                       description="Serve /metrics for Prometheus from the database until Ctrl-C.")
    m.add_argument("--port", type=int, metavar="PORT", help="port (default: metrics.port, or 9108 when that is 0)")
    m.add_argument("--bind", metavar="ADDR", help="address (default: metrics.bind)")
    m.set_defaults(func=cmd_metrics)
