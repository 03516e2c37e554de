"""`ivr run`, `ivr demo`, `ivr call`: the evening campaign against FreeSWITCH, the simulated evening, one test call.

gevent: these commands do NOT monkey-patch. Everything that waits (the event socket, the outbound-socket server,
the simulator, timers) is gevent-native; database calls are short and run inline on the one thread. Patching
would turn peewee's thread-local connection state into one SQLite connection per greenlet.
"""

from __future__ import annotations

import argparse
import logging
import os
from datetime import date, time

from ivr.cli.common import iso_date, load, local_today
from ivr.config import NODE_ENV
from ivr.errors import IvrError

log = logging.getLogger("ivr.cli.campaign")


class BadArgument(IvrError):
    exit_code = 2


def _esl(cfg):
    from ivr.switch.errors import EslAuthError
    from ivr.switch.esl import EslClient

    fs = cfg.freeswitch
    esl = EslClient(fs.host, fs.port, fs.password, fs.command_timeout, fs.reconnect_max_delay)
    try:
        esl.start()
    except EslAuthError:
        raise  # its message already says which password setting to check
    except IvrError as exc:
        raise IvrError(f"cannot reach FreeSWITCH's event socket at {fs.host}:{fs.port}: {exc} "
                       "(check freeswitch.host/port/password in config.yaml and event_socket.conf.xml)") from None
    return esl


def _check_data(cfg, day: date, allow_stale: bool) -> None:
    """No evening on held data (exit 5) nor on old data: refuse (exit 4) unless --allow-stale, which is logged
    and audited."""
    from ivr.ledger import audit, freshness

    freshness.check_not_held()  # held data is never dialled, --allow-stale or not
    stale = freshness.stale_imports(cfg)
    if not stale:
        return
    if not allow_stale:
        freshness.check_fresh(cfg)
    ages = {a.kind: (round(a.age_hours, 1) if a.age_hours is not None else None) for a in stale}
    log.warning("event=stale_data_allowed day=%s %s max_hours=%s", day,
                " ".join(f"{k}_age_h={v if v is not None else 'none'}" for k, v in ages.items()),
                cfg.eligibility.max_data_age_hours)
    audit.record(audit.cli_actor(), "run.allow_stale", str(day),
                 {"ages_hours": ages, "max_hours": cfg.eligibility.max_data_age_hours})


def cmd_run(args: argparse.Namespace) -> int:
    cfg, _db = load(args)
    import signal

    import gevent
    from rich.console import Console

    from ivr.campaign.evening import ALL_KINDS, prerender, start_evening
    from ivr.clock import Clock
    from ivr.dialer.dialer import Dialer
    from ivr.dialer.node import start_heartbeat
    from ivr.speech import Speech

    day = args.date or local_today(cfg)
    only = [k.strip() for k in (args.kinds or ",".join(ALL_KINDS)).split(",") if k.strip()]
    bad = [k for k in only if k not in ALL_KINDS]
    if bad or not only:
        raise BadArgument(f"--kinds: {','.join(bad) or '(none)'} unknown; kinds: {', '.join(ALL_KINDS)}")
    if "debt" in only or "installment" in only:  # billing data; outage notices do not depend on it
        _check_data(cfg, day, args.allow_stale)
    clock = Clock()
    speech = Speech(cfg)
    speech.check()
    campaigns = start_evening(cfg, day, clock, only)
    for camp in campaigns:
        if camp.kind != "debt":
            print(f"  {camp.kind} {camp.ref}: {camp.eligible_count} to call (priority {camp.priority})")
    campaign = next((c for c in campaigns if c.kind == "debt"), campaigns[0] if campaigns else None)
    if campaign is None:
        print(f"nothing due on {day}")
        return 0
    box_cap = f" (this box at most {cfg.freeswitch.max_channels})" if cfg.freeswitch.max_channels else ""
    print(f"campaign {day}: {campaign.eligible_count} eligible accounts; FreeSWITCH "
          f"{cfg.freeswitch.host}:{cfg.freeswitch.port}; up to {cfg.pacing.channels} channels{box_cap}, "
          f"{cfg.pacing.cps:g} calls/s (ivr set channels|cps to change live)")
    esl = _esl(cfg)
    dialer = Dialer(cfg, esl, clock, speech, node=args.node or os.environ.get(NODE_ENV) or None)
    beat = None
    # systemctl stop (SIGTERM): no new calls, the calls in progress finish, then the process ends
    gevent.signal_handler(signal.SIGTERM, dialer.finish_and_stop)
    try:
        dialer.start()  # the outbound-socket port: a clear error if it is taken
        from ivr.dialer.demo import prerender as prerender_debt

        if campaign.kind == "debt":
            prerender_debt(dialer, campaign, Console(stderr=True))
        prerender(cfg, speech, campaigns)
        beat = start_heartbeat(dialer)
        if "outage" in only:  # an emergency entered while the evening runs joins it within half a minute
            from ivr.campaign import outages

            dialer.campaign_source = lambda: outages.due_campaigns(cfg, day, clock)
        stats = dialer.run(campaigns)
    finally:
        if beat is not None:
            beat.kill()
        dialer.stop()
        esl.stop()
    print(f"campaign {day} {campaign.status}: {stats.placed} calls; " +
          ", ".join(f"{k} {v}" for k, v in sorted(stats.outcomes.items())))
    if campaign.kind != "debt":  # no debt evening tonight (--kinds): the notices' own summary
        from ivr.campaign.evening import told_summary

        for k in told_summary(day):
            print(f"  {k.label}: audience {k.audience}, called {k.called}, heard {k.heard}, "
                  f"not heard yet {k.waiting}, given up {k.given_up}")
        return 0
    try:
        from ivr.report import text_summary

        print(text_summary(cfg, day))
    except Exception as exc:
        log.warning("event=report_summary_failed error=%s", exc)
    return 0


def _clock_time(value: str) -> time:
    try:
        return time.fromisoformat(value)
    except ValueError:
        raise BadArgument(f"--start: {value!r} is not a time; expected HH:MM, e.g. 17:55") from None


def cmd_demo(args: argparse.Namespace) -> int:
    cfg, _db = load(args, with_db=False)
    if args.accounts < 10 or args.accounts > 200_000:
        raise BadArgument(f"--accounts: {args.accounts} is out of range; allowed 10 to 200000")
    if not 1 <= args.scale <= 200:
        # above ~200 a millisecond of real processing is a fifth of a simulated second of dead air in every
        # call, and the simulated debtors start hanging up on a slow flow
        raise BadArgument(f"--scale: {args.scale:g} is out of range; allowed 1 to 200")
    from ivr.dialer.demo import run_demo

    run_demo(cfg, accounts=args.accounts, scale=args.scale, seed=args.seed, start_at=_clock_time(args.start),
             channels=args.channels, cps=args.cps)
    return 0


def cmd_call(args: argparse.Namespace) -> int:
    cfg, _db = load(args)
    from ivr.clock import Clock
    from ivr.dialer.single import place_test_call
    from ivr.ledger.models import Account
    from ivr.ledger.phones import apply_policy, dial_policy, normalize
    from ivr.speech import Speech

    account = Account.get_or_none(Account.number == args.account)
    if account is None:
        raise IvrError(f"no account {args.account!r} in the ledger (import it first: ivr import accounts FILE)")
    number = apply_policy(normalize(args.to, cfg.locale.country), dial_policy(cfg))
    if not number.valid:
        raise BadArgument(f"--to: {args.to!r} is not a callable number: {number.reason}")
    speech = Speech(cfg)
    speech.check()
    esl = _esl(cfg)
    try:
        att = place_test_call(cfg, esl, Clock(), speech, account, number.e164)
    finally:
        esl.stop()
    print(f"call to {number.e164} with the message of {account.number}: {att.outcome or att.state}"
          f" (cause {att.hangup_cause or '-'}, heard {att.heard}, {att.heard_ms}/{att.message_ms} ms,"
          f" digits {att.digits or '-'}); a test call: counted against no debtor, keys pressed change nothing")
    return 0 if att.outcome not in ("", "unknown", "failed", "trunk_error") else 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run today's campaign against the FreeSWITCH in config",
                       description="Start every campaign due tonight (outage notices, installment reminders, "
                                   "debt reminders; `ivr campaigns` lists them) and dial them on one trunk cap by "
                                   "priority. Refresh the eligible list and dial the evening's campaign against the "
                                   "FreeSWITCH named in config.yaml, within the calling windows, until the queue is "
                                   "done or the windows close. Control it live with ivr pause|resume|stop and "
                                   "ivr set channels|cps. Refuses to start (exit 4) when the last accounts or "
                                   "payments import is older than eligibility.max_data_age_hours, and (exit 5) "
                                   "while the newest accounts import is held by the anomaly guard.")
    p.add_argument("--date", type=iso_date, metavar="YYYY-MM-DD", help="the local evening to run (default: today)")
    p.add_argument("--kinds", default="", metavar="K1,K2",
                   help="which campaign kinds to run: debt, installment, outage (default: all that are due; "
                        "outage notices alone do not need fresh billing data)")
    p.add_argument("--allow-stale", action="store_true",
                   help="start even when the last accounts or payments import is older than "
                        "eligibility.max_data_age_hours (logged and written to the audit log)")
    p.add_argument("--node", default="", metavar="NAME",
                   help="this dialer's node name, as `ivr status` shows it (default: env IVR_NODE, else HOSTNAME-PID; "
                        "a fixed name per machine, e.g. systemd's %%H, lets a restarted process take over its own "
                        "earlier calls); when the config has a nodes: section, also that node's overrides there (its "
                        "own FreeSWITCH box, freeswitch.max_channels)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("demo", help="a whole evening against the simulated FreeSWITCH, in a few minutes",
                       description="Generate sample accounts and payments, import them into a fresh database under "
                                   "data/demo/, and run a time-compressed evening campaign against the built-in "
                                   "FreeSWITCH simulator with live progress, then print the morning summary.")
    p.add_argument("--accounts", type=int, default=2000,
                   help="sample accounts to generate (default 2000; the first run renders their messages with "
                        "the TTS engine, later runs with the same seed reuse the prompt cache)")
    p.add_argument("--scale", type=float, default=60.0,
                   help="how many times faster than real time the evening runs (default 60: 3 h in 3 min)")
    p.add_argument("--seed", type=int, default=7, help="random seed for the data and the debtors (default 7)")
    p.add_argument("--start", default="17:55", metavar="HH:MM",
                   help="local time the simulated evening starts at (default 17:55, before the window opens)")
    p.add_argument("--channels", type=int, default=None, help="concurrent calls (default: pacing.channels)")
    p.add_argument("--cps", type=float, default=None, help="new calls per second (default: pacing.cps)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("call", help="place one real call with an account's message to a staff phone",
                       description="Call NUMBER (a staff phone) through the FreeSWITCH in config and play the "
                                   "message ACCOUNT would hear, with the full menu, to check it before an evening. "
                                   "Calling windows and queue rules do not apply; the call is recorded as an "
                                   "attempt without a campaign.")
    p.add_argument("account", metavar="ACCOUNT", help="account number whose message is played")
    p.add_argument("--to", required=True, metavar="NUMBER", help="the phone to call (E.164 or national)")
    p.set_defaults(func=cmd_call)

