"""`ivr web`: the staff console; `ivr user add|disable|list`: who may use it."""

from __future__ import annotations

import argparse
import contextlib
import getpass
import sys

from ivr.cli.common import load
from ivr.errors import IvrError


def cmd_web(args: argparse.Namespace) -> int:
    cfg, _db = load(args)
    from ivr.admin.users import list_users
    from ivr.web.server import serve

    if not any(u.active for u in list_users()):
        print("no console user yet: add one with `ivr user add NAME --role admin`", file=sys.stderr)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how it ends
        serve(cfg, args.bind, args.port)
    return 0


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        line = sys.stdin.readline()
        if not line:
            raise IvrError("--password-stdin: nothing on standard input")
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        raise IvrError("no terminal to ask the password on: pass it with --password-stdin")
    first = getpass.getpass(f"password for {args.name}: ")
    if first != getpass.getpass("again: "):
        raise IvrError("the two passwords differ; nothing changed")
    return first


def cmd_user_add(args: argparse.Namespace) -> int:
    from ivr.admin import users
    from ivr.ledger.audit import cli_actor
    users.check_name(args.name)
    users.check_role(args.role)
    password = _password(args)
    users.check_password(password)
    load(args)
    user = users.add_user(args.name, args.role, password, cli_actor())
    print(f"user {user.name} ({user.role}) can now log in to the console")
    return 0


def cmd_user_disable(args: argparse.Namespace) -> int:
    from ivr.admin import users
    from ivr.ledger.audit import cli_actor
    load(args)
    user = users.disable_user(args.name, cli_actor())
    print(f"user {user.name} is disabled; their open sessions end at their next click")
    return 0


def cmd_user_list(args: argparse.Namespace) -> int:
    from ivr.admin import users
    load(args)
    rows = users.list_users()
    if not rows:
        print("no console users; add one with `ivr user add NAME --role admin`")
    for u in rows:
        state = "active" if u.active else "disabled"
        last = f", last login {u.last_login_at:%Y-%m-%d %H:%M} UTC" if u.last_login_at else ""
        print(f"{u.name}\t{u.role}\t{state}{last}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("web", help="the staff console in a browser (tonight, controls, callbacks, reports)",
                       description="Serve the staff console on web.bind:web.port (default 127.0.0.1:8080). "
                                   "Put a TLS reverse proxy in front of it for use from other machines. "
                                   "Users: ivr user add NAME --role admin|manager|operator.")
    p.add_argument("--bind", metavar="ADDR", help="address to listen on (default: web.bind)")
    p.add_argument("--port", type=int, metavar="PORT", help="port (default: web.port)")
    p.set_defaults(func=cmd_web)

    u = sub.add_parser("user", help="console users: add, disable, list",
                       description="Who may use the staff console, and in which role. Every change is audited.")
    usub = u.add_subparsers(dest="user_command", metavar="ACTION", required=True)
    a = usub.add_parser("add", help="add a user (password asked twice, or read from --password-stdin)",
                        description="Add a console user. Roles: operator (Tonight, the callback worklist, "
                                    "debtors' pages with masked numbers); manager (also who will be called, "
                                    "reports, import, messages, the audit log); admin (also live controls and "
                                    "users).")
    a.add_argument("name", metavar="NAME", help="login name: 2-64 letters, digits, '_', '.', '@', '-'")
    a.add_argument("--role", required=True, choices=("admin", "manager", "operator"))
    a.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    a.set_defaults(func=cmd_user_add)
    d = usub.add_parser("disable", help="disable a user (their sessions end at once)",
                        description="Disable a console user: they cannot log in, open sessions end.")
    d.add_argument("name", metavar="NAME")
    d.set_defaults(func=cmd_user_disable)
    x = usub.add_parser("list", help="list console users", description="List console users and their roles.")
    x.set_defaults(func=cmd_user_list)
