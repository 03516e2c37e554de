"""`ivr sms send|receipts|preview|sim`: SMS reminders over SMPP (ivr.channels.sms) and the simulated SMSC.

`ivr sms send` is a step of its own, not part of `ivr run`: SMS go out in the daytime (channels.sms_windows),
the calls in the evening, and staff schedule each (cron) and see each one's result separately.

Examples:
  ivr sms send                       # today's SMS reminders (debtors whose current channel is SMS)
  ivr sms send --date 2026-11-23 --limit 100
  ivr sms receipts --seconds 60      # read late delivery receipts into the ledger
  ivr sms preview 1234567            # the text one account would get, its alphabet and parts
  ivr sms sim --port 2775            # a simulated SMSC for the demo (SMPP 3.4 over TCP)
"""

from __future__ import annotations

import argparse

from ivr.cli.common import add_send_options, iso_date, load, local_today, print_skipped, progress_bar


def _cfg_with_link(cfg, args):
    from ivr.channels.sms import with_link_config

    over = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    return with_link_config(cfg, **over) if over else cfg


def cmd_send(args: argparse.Namespace) -> int:
    from ivr.channels import sms
    from ivr.clock import Clock

    cfg, _db = load(args)
    cfg = _cfg_with_link(cfg, args)
    day = args.date or local_today(cfg)
    with progress_bar("sending SMS", not args.no_progress) as progress:
        run = sms.send_due(cfg, day, Clock(), limit=args.limit, progress=progress)
    print(f"SMS for {day}: {run.considered} eligible debtors considered; {run.sent} sent ({run.parts} parts), "
          f"{run.failed} refused; receipts so far: {run.delivered} delivered, {run.undelivered} not delivered")
    print_skipped(run.skipped, "not sent")
    return 0


def cmd_receipts(args: argparse.Namespace) -> int:
    from ivr.channels import sms
    from ivr.clock import Clock

    cfg, _db = load(args)
    cfg = _cfg_with_link(cfg, args)
    run = sms.collect_receipts(cfg, Clock(), args.seconds)
    print(f"receipts: {run.delivered} delivered, {run.undelivered} not delivered")
    return 0


def cmd_preview(args: argparse.Namespace) -> int:
    from ivr.channels import segments, texts
    from ivr.ledger.models import Account

    cfg, _db = load(args)
    acc = Account.by_number(args.account)
    lang = acc.language or cfg.locale.language
    day = args.date or local_today(cfg)
    text = texts.render(texts.load(cfg.path(cfg.speech.prompts_dir), lang)["sms"], texts.facts_for(cfg, acc, day))
    dc, units = segments.length_in_units(text)
    enc = segments.encode(text)
    alphabet = "UCS-2 (70 single / 67 per part)" if dc == segments.DC_UCS2 else "GSM-7 (160 single / 153 per part)"
    print(text)
    print(f"-- {len(text)} characters, {units} {'units' if dc == segments.DC_UCS2 else 'septets'}, {alphabet}: "
          f"{enc.count} part(s)")
    return 0


def cmd_sim(args: argparse.Namespace) -> int:
    import gevent

    from ivr.sim.smsc import SimSmsc

    cfg, _ = load(args, with_db=False)
    port = cfg.sms.port if args.port is None else args.port
    sim = SimSmsc(args.host, port, args.system_id or cfg.sms.system_id,
                  cfg.sms.password if args.password is None else args.password,
                  receipt_delay_s=args.receipt_delay, max_per_second=args.max_per_second)
    sim.undeliverable.update(n.lstrip("+") for n in args.undeliverable or ())
    sim.start()
    print(f"simulated SMSC (SMPP 3.4) listening on {args.host}:{sim.port}, system_id {sim.system_id!r}; "
          "Ctrl-C stops it", flush=True)
    try:
        while True:
            gevent.sleep(args.status_every or 3600)
            if args.status_every:
                print(f"submitted={len(sim.submitted)} messages={len(sim.messages())} "
                      f"receipts={len(sim.receipts_sent)} sessions={len(sim.sessions)}", flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sms", help="SMS reminders over SMPP: send, receipts, preview, a simulated SMSC",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ps = p.add_subparsers(dest="sms_command", metavar="SUBCOMMAND", required=True)

    def link_opts(q):
        q.add_argument("--host", default=None, help="SMSC host (default: sms.host)")
        q.add_argument("--port", type=int, default=None, help="SMSC port (default: sms.port)")

    s = ps.add_parser("send", help="send the SMS reminders due now (channels.order, windows, caps, do-not-call)")
    add_send_options(s)
    link_opts(s)
    s.set_defaults(func=cmd_send)

    r = ps.add_parser("receipts", help="bind and read late delivery receipts into the ledger")
    r.add_argument("--seconds", type=float, default=30.0, help="how long to listen (default: 30)")
    link_opts(r)
    r.set_defaults(func=cmd_receipts)

    v = ps.add_parser("preview", help="the SMS one account would get, its alphabet and number of parts")
    v.add_argument("account", help="account number")
    v.add_argument("--date", type=iso_date, default=None, help="the day whose debt is shown (default: today)")
    v.set_defaults(func=cmd_preview)

    m = ps.add_parser("sim", help="run a simulated SMSC (SMPP 3.4 over TCP) for the demo and tests")
    m.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    m.add_argument("--port", type=int, default=None, help="port (default: sms.port)")
    m.add_argument("--system-id", default=None, help="accepted system_id (default: sms.system_id)")
    m.add_argument("--password", default=None, help="accepted password (default: sms.password)")
    m.add_argument("--receipt-delay", type=float, default=1.0, help="seconds before a receipt (default: 1)")
    m.add_argument("--max-per-second", type=float, default=None, help="answer ESME_RTHROTTLED above this rate")
    m.add_argument("--undeliverable", action="append", metavar="NUMBER",
                   help="a number whose receipts say UNDELIV (repeatable)")
    m.add_argument("--status-every", type=float, default=10.0, metavar="S", help="status line every S seconds")
    m.set_defaults(func=cmd_sim)
