"""`ivr campaigns` (the evening's campaigns of every kind) and `ivr outage add|move|cancel|list`.

The work is done in ivr.campaign.evening and ivr.campaign.outages; this module parses and prints.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from zoneinfo import ZoneInfo

from ivr.cli.common import iso_date, load
from ivr.errors import IvrError


def _today(cfg):
    return datetime.now(ZoneInfo(cfg.locale.timezone)).date()


def cmd_campaigns(args: argparse.Namespace) -> int:
    cfg, _db = load(args)
    from ivr.campaign import evening

    day = args.date or _today(cfg)
    lines = evening.listing(day)
    if not lines:
        print(f"no campaign on {day} yet (ivr run starts every kind that is due)")
        return 0
    print(f"campaigns of {day}, in the order they share the trunk:")
    for ln in lines:
        q = ln.counts
        print(f"  #{ln.campaign.id:<5} prio {ln.info.priority}  {ln.info.label:<55} {ln.campaign.status:<8} "
              f"audience {ln.campaign.eligible_count:>6}  waiting {q.get('waiting', 0):>6}  "
              f"done {q.get('done', 0):>6}  given up {q.get('given_up', 0):>6}")
    return 0


def _moment(cfg, text: str, what: str) -> datetime:
    from ivr.ledger import listimport
    from ivr.ledger.importer import RowError

    try:
        return listimport.local_moment(cfg, text, what)
    except RowError as exc:
        raise IvrError(f"--{what}: {exc}") from None


def cmd_outage(args: argparse.Namespace) -> int:
    cfg, _db = load(args)
    from ivr.campaign import outages
    from ivr.campaign.windows import aware_utc
    from ivr.ledger import audit

    tz = ZoneInfo(cfg.locale.timezone)

    def shown(at) -> str:
        return aware_utc(at).astimezone(tz).strftime("%Y-%m-%d %H:%M")

    if args.outage_command == "add":
        o = outages.add(outages.parse_points(args.points), _moment(cfg, args.start, "from"),
                        _moment(cfg, args.end, "to"), args.kind, reason=args.reason or "", code=args.id or "",
                        actor=audit.cli_actor())
        n = len([a for a in outages.affected_accounts(o)])
        print(f"outage {o.code} ({o.kind}) {shown(o.starts_at)} .. {shown(o.ends_at)} {cfg.locale.timezone}: "
              f"{n} account(s) fed from {', '.join(outages.points_of(o))}; notices go out with ivr run")
        if n == 0:
            print("  no account is linked to these points: import them with ivr import supply-points FILE")
    elif args.outage_command == "move":
        o = outages.move(outages.get(args.id), _moment(cfg, args.start, "from"), _moment(cfg, args.end, "to"),
                         actor=audit.cli_actor())
        print(f"outage {o.code} moved to {shown(o.starts_at)} .. {shown(o.ends_at)} (version {o.version}); "
              "whoever heard the old times gets a correction")
    elif args.outage_command == "cancel":
        o = outages.cancel(outages.get(args.id), actor=audit.cli_actor())
        print(f"outage {o.code} cancelled (version {o.version}); whoever heard a notice gets a correction")
    else:
        from ivr.ledger.models import Outage

        for o in Outage.select().order_by(Outage.starts_at.desc()).limit(args.limit):
            print(f"{o.code:<12} {o.kind:<9} {o.status:<9} v{o.version}  {shown(o.starts_at)} .. {shown(o.ends_at)}  "
                  f"points {','.join(outages.points_of(o))}  {o.reason}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("campaigns", help="list the evening's campaigns of every kind",
                       description="List the campaigns of a local evening (debt reminders, installment reminders, "
                                   "outage notices and corrections) in the order they share the trunk's cap "
                                   "(emergency outage, planned outage, installment, debt), with their queues.")
    p.add_argument("--date", type=iso_date, metavar="YYYY-MM-DD", help="the local evening (default: today)")
    p.set_defaults(func=cmd_campaigns)

    p = sub.add_parser("outage", help="record, move, cancel or list outages (their notices go out with ivr run)",
                       description="Outages by supply point. Planned ones are announced outage.notice_days before "
                                   "(inside the normal windows), emergency ones at once (inside "
                                   "outage.emergency_windows). Accounts on life support are never called by the "
                                   "robot about an outage. Moving or cancelling sends a correction to whoever "
                                   "heard a notice.")
    osub = p.add_subparsers(dest="outage_command", metavar="WHAT", required=True)
    a = osub.add_parser("add", help="record an outage",
                        description="Record an outage of supply points; times are local (locale.timezone).")
    a.add_argument("--points", required=True, metavar="P1,P2", help="supply points, comma separated")
    a.add_argument("--from", dest="start", required=True, metavar='"YYYY-MM-DD HH:MM"', help="when it starts")
    a.add_argument("--to", dest="end", required=True, metavar='"YYYY-MM-DD HH:MM"', help="when it ends")
    a.add_argument("--kind", required=True, choices=("planned", "emergency"), help="planned or emergency")
    a.add_argument("--reason", default="", metavar="TEXT", help="said in the notice (optional)")
    a.add_argument("--id", default="", metavar="ID", help="the dispatchers' id (default: O<number>)")
    m = osub.add_parser("move", help="give an outage new times (a correction goes out)",
                        description="Move an outage; whoever heard the old times gets a correction.")
    m.add_argument("id", metavar="ID", help="the outage id (ivr outage list)")
    m.add_argument("--from", dest="start", required=True, metavar='"YYYY-MM-DD HH:MM"', help="new start")
    m.add_argument("--to", dest="end", required=True, metavar='"YYYY-MM-DD HH:MM"', help="new end")
    c = osub.add_parser("cancel", help="cancel an outage (a correction goes out)",
                        description="Cancel an outage; whoever heard a notice gets a correction.")
    c.add_argument("id", metavar="ID", help="the outage id (ivr outage list)")
    ls = osub.add_parser("list", help="the latest outages", description="The latest outages, newest first.")
    ls.add_argument("--limit", type=int, default=50, help="how many (default 50)")
    for q in (a, m, c, ls):
        q.set_defaults(func=cmd_outage)
