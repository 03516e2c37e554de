"""`ivr switch`: check the connection to FreeSWITCH and show the exact originate a debtor's call would use.

Examples:
  ivr switch check                       # connect, authenticate, `api status`, print what FreeSWITCH says
  ivr switch originate +380501234567 --account ACC-0001 --name "Іваненко, Олена"
"""

from __future__ import annotations

import argparse
import uuid


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("switch", help="check the FreeSWITCH event socket; preview originate strings",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ss = p.add_subparsers(dest="switch_command", metavar="ACTION", required=True)
    c = ss.add_parser("check", help="connect and authenticate to the event socket, then run `api status`")
    c.add_argument("--timeout", type=float, default=None, help="seconds per step (default: freeswitch.command_timeout)")
    c.set_defaults(func=check)
    o = ss.add_parser("originate", help="print the originate arguments a call to NUMBER would send (nothing is sent)")
    o.add_argument("number", help="the debtor's number as it reaches the dial string: digits, optional leading +")
    o.add_argument("--account", default="ACC-0001", help="account number (default: ACC-0001)")
    o.add_argument("--name", default=None, help="an extra variable ivr_debtor_name, to see how it is escaped")
    o.set_defaults(func=originate)


def check(args: argparse.Namespace) -> int:
    from ivr.cli.common import load
    from ivr.switch.esl import EslClient

    cfg, _ = load(args, with_db=False)
    fs = cfg.freeswitch
    timeout = args.timeout or fs.command_timeout
    client = EslClient(fs.host, fs.port, fs.password, timeout, fs.reconnect_max_delay)
    client.start()   # EslAuthError / EslDisconnected / EslTimeout are IvrErrors: printed plainly by `ivr`
    try:
        status = client.api("status", timeout=timeout)
    finally:
        client.stop()
    print(f"connected to FreeSWITCH at {fs.host}:{fs.port}, password accepted")
    print(status.rstrip())
    return 0


def originate(args: argparse.Namespace) -> int:
    from ivr.cli.common import load
    from ivr.switch.dialstring import originate_from_config

    cfg, _ = load(args, with_db=False)
    extra = {"ivr_debtor_name": args.name} if args.name else None
    print("originate " + originate_from_config(cfg, uuid=str(uuid.uuid4()), attempt_id="preview",
                                               account=args.account, number=args.number, extra_vars=extra))
    return 0
