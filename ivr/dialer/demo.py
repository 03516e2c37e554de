"""`ivr demo`: a whole evening campaign against the simulated FreeSWITCH, time-compressed to a few minutes.

A fresh SQLite database under data/demo/, a few thousand generated accounts and payments (ivr.ledger.sample)
imported the normal way, messages rendered by Speech, a SimServer in this process whose scripted debtors are a
realistic random mix over the sample numbers, and ONE ScaledClock shared by the dialer and the simulator that
starts at 17:55 local time on a weekday (so the window opening at 18:00 is visible). Live progress (rich) while
it runs; the morning-report summary at the end.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time as time_mod
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import gevent

from ivr.clock import ScaledClock
from ivr.config import Config
from ivr.errors import IvrError
from ivr.logs import setup_logging

log = logging.getLogger("ivr.demo")

DEMO_DIR = "data/demo"


def demo_config(cfg: Config, folder: Path) -> Config:
    """The demo's settings: its own database and report folder; everything else as configured."""
    return cfg.replace(
        database=dataclasses.replace(cfg.database, url=f"sqlite:///{folder / 'ivr.sqlite3'}"),
        report=dataclasses.replace(cfg.report, output_dir=str(folder / "reports")),
        imports=dataclasses.replace(cfg.imports, rejects_dir=str(folder / "rejects")),
    )


def next_weekday(cfg: Config, today: date) -> date:
    """Today if it is a working weekday, else the next one (the demo shows a weekday evening)."""
    from ivr.campaign.windows import CallWindows

    w = CallWindows(cfg)
    day = today
    for _ in range(14):
        if w.day_kind(day) == "weekday":
            return day
        day += timedelta(days=1)
    return today


def local_start(cfg: Config, day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=ZoneInfo(cfg.locale.timezone)).astimezone(UTC)


def _fresh(folder: Path) -> None:
    for name in ("ivr.sqlite3", "ivr.sqlite3-wal", "ivr.sqlite3-shm"):
        (folder / name).unlink(missing_ok=True)
    for sub in ("billing", "rejects", "reports"):
        shutil.rmtree(folder / sub, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    # so `ivr --config data/demo/config.yaml report` reads the demo's database afterwards
    (folder / "config.yaml").write_text("# written by `ivr demo`\ndatabase:\n  url: sqlite:///ivr.sqlite3\n"
                                        "report:\n  output_dir: reports\n", encoding="utf-8")


def prepare_data(cfg: Config, folder: Path, accounts: int, seed: int, day: date, console: Any) -> None:
    from ivr.ledger.importer import import_accounts, import_payments
    from ivr.ledger.sample import write_sample

    files = write_sample(folder / "billing", accounts=accounts, seed=seed, day=day)
    rep = import_accounts(cfg, files.accounts, progress=True)
    console.print(rep.summary())
    rep = import_payments(cfg, files.payments, progress=True)
    console.print(rep.summary())


def prepare_outages(cfg: Config, folder: Path, day: date, console: Any) -> None:
    """The grid's side of the demo, through the same imports staff use: every account fed from its district's
    feeder (a supply-points file), an emergency outage on one feeder tonight and a planned one on another in
    three days (a dispatchers' outages file): their notices go out tonight beside the debt reminders."""
    import csv

    from ivr.campaign import outages
    from ivr.ledger.models import Account

    feeders: dict[str, str] = {}
    points = folder / "billing" / "supply_points.csv"
    with open(points, "w", encoding="utf-8", newline="") as fp:
        out = csv.writer(fp)
        out.writerow(["account", "point"])
        for number, district in Account.select(Account.number, Account.district).order_by(Account.id).tuples():
            feeder = feeders.setdefault(district, f"F-{len(feeders) + 1}")
            out.writerow([number, feeder])
    console.print(outages.import_supply_points(cfg, points, "demo").summary())
    soon = day + timedelta(days=3)
    listed = folder / "billing" / "outages.csv"
    with open(listed, "w", encoding="utf-8", newline="") as fp:
        out = csv.writer(fp)
        out.writerow(["outage", "points", "from", "to", "kind", "reason"])
        out.writerow(["EM-1", "F-1", f"{day} 16:40", f"{day} 23:30", "emergency", "cable damage"])
        out.writerow(["PL-1", "F-2", f"{soon} 09:00", f"{soon} 17:00", "planned", "transformer maintenance"])
    console.print(outages.import_outages(cfg, listed, "demo").summary())


# Share of each evening outcome who pay within the following week: the demo's stand-in for billing's next
# payments files, so the morning report has an effect to measure. Not reached → the control group's rate.
PAY_AFTER = {"pay_now": 0.7, "callback": 0.45, "already_paid": 0.5, "heard": 0.3, "early_hangup": 0.15}
PAY_AFTER_OTHERS = 0.08


def simulate_week_after(cfg: Config, campaign: Any, folder: Path, seed: int) -> Any:
    """Write and import a payments file for the seven days after the campaign, drawn per outcome (seeded)."""
    import csv
    import random

    from ivr.ledger.eligibility import remaining_debt
    from ivr.ledger.importer import import_payments
    from ivr.ledger.models import Account, QueueEntry

    rnd = random.Random(seed * 7919 + 1)
    path = folder / "billing" / "payments_week_after.csv"
    cols = cfg.imports.payment_columns
    rows = (QueueEntry.select(QueueEntry.outcome, Account.number, Account.id).join(Account)
            .where(QueueEntry.campaign == campaign.id).tuples())
    with open(path, "w", encoding="utf-8", newline="") as fp:
        out = csv.writer(fp)
        out.writerow([cols["account"], cols["amount"], cols["date"], cols["reference"]])
        for outcome, number, account_id in rows:
            if rnd.random() >= PAY_AFTER.get(outcome, PAY_AFTER_OTHERS):
                continue
            owed = remaining_debt(account_id, campaign.day, cfg)
            if owed <= 0:
                continue
            paid = owed if rnd.random() < 0.7 else (owed * rnd.choice((25, 50, 75)) / 100).quantize(Decimal("0.01"))
            day = campaign.day + timedelta(days=rnd.choice((1, 1, 2, 3, 4, 6, 7)))
            out.writerow([number, f"{paid:.2f}", day.isoformat(), f"DEMO-{campaign.day:%Y%m%d}-{account_id}"])
    return import_payments(cfg, path, progress=False)


def queued_accounts(campaign: Any) -> list[Any]:
    from ivr.ledger.models import Account, QueueEntry

    return list(Account.select().where(Account.id.in_(
        QueueEntry.select(QueueEntry.account).where((QueueEntry.campaign == campaign.id) &
                                                    (QueueEntry.state == "waiting")))))


def prerender(dialer: Any, campaign: Any, console: Any) -> int:
    """Render every queued account's message and the prompts once, so calls never wait for TTS."""
    from rich.progress import Progress

    accounts = queued_accounts(campaign)
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("rendering messages", total=len(accounts))
        return dialer.prepare_speech(accounts, campaign.day, lambda n: bar.update(task, completed=n))


def _progress_table(dialer: Any, sim: Any, campaign: Any, others: list | None = None) -> Any:
    from rich.table import Table

    from ivr.campaign.queue import counts

    t = Table.grid(padding=(0, 2))
    now_local = dialer.clock.now().astimezone(ZoneInfo(dialer.cfg.locale.timezone))
    q = counts(campaign)
    outcomes = dialer.stats.outcomes
    status = "paused: " + dialer.pause_reason if dialer.paused else (campaign.status or "running")
    t.add_row("[bold]local time[/]", now_local.strftime("%a %H:%M:%S"), "[bold]campaign[/]", status)
    t.add_row("in flight", f"{len(dialer.tracker.flights)} / cap {dialer.pacer.channels}",
              "rate", f"{dialer.pacer.rate:.2f} calls/s (set {dialer.pacer.cps:g})")
    t.add_row("queue", f"waiting {q.get('waiting', 0)}  dialing {q.get('dialing', 0)}",
              "closed", f"done {q.get('done', 0)}  given up {q.get('given_up', 0)}")
    t.add_row("calls placed", str(dialer.stats.placed), "peak in flight", str(dialer.stats.peak_in_flight))
    shown = ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items(), key=lambda kv: -kv[1]))
    t.add_row("outcomes", shown or "-", "", "")
    from ivr.campaign.kinds import describe

    for camp in others or []:  # the evening's other campaigns, served first on the same cap
        c = counts(camp)
        t.add_row(describe(camp).label.split(" (")[0], f"waiting {c.get('waiting', 0)}  dialing {c.get('dialing', 0)}",
                  "closed", f"done {c.get('done', 0)}  given up {c.get('given_up', 0)}")
    return t


def run_demo(cfg: Config, accounts: int = 2000, scale: float = 60.0, seed: int = 7,
             start_at: time = time(17, 55), channels: int | None = None, cps: float | None = None) -> int:
    """The demo; returns the number of calls placed."""
    from rich.console import Console
    from rich.live import Live

    from ivr.campaign.evening import prerender as prerender_kinds
    from ivr.campaign.evening import start_evening
    from ivr.dialer.dialer import Dialer
    from ivr.dialer.node import start_heartbeat
    from ivr.ledger.db import connect
    from ivr.ledger.models import Phone
    from ivr.sim.script import Script
    from ivr.sim.server import SimServer
    from ivr.sim.trunk import Trunk
    from ivr.speech import Speech
    from ivr.switch.esl import EslClient

    console = Console(stderr=True)
    folder = cfg.path(DEMO_DIR)
    _fresh(folder)
    cfg = demo_config(cfg, folder)
    pacing = cfg.pacing
    if channels is not None or cps is not None:
        pacing = dataclasses.replace(pacing, channels=channels or pacing.channels, cps=cps or pacing.cps)
    day = next_weekday(cfg, datetime.now(ZoneInfo(cfg.locale.timezone)).date())
    clock = ScaledClock(start=local_start(cfg, day, start_at), scale=scale)
    console.print(f"[bold]Night dialer demo[/]: {accounts} accounts, evening of {day} ({day:%A}), "
                  f"clock x{scale:g} from {start_at:%H:%M} {cfg.locale.timezone}; data in {folder}")
    log_file = folder / "demo.log"
    setup_logging(cfg.logging.level, cfg.logging.mask_numbers, str(log_file))
    root = logging.getLogger()
    for h in list(root.handlers):  # log lines go to the file; the terminal shows the live progress
        if not isinstance(h, logging.FileHandler):
            root.removeHandler(h)
    console.print(f"log: {log_file}")
    db = connect(cfg.database.url, cfg.base_dir)
    prepare_data(cfg, folder, accounts, seed, day, console)
    prepare_outages(cfg, folder, day, console)
    with console.status("refreshing the eligible list"):
        campaigns = start_evening(cfg, day, clock)
    campaign = next(c for c in campaigns if c.kind == "debt")
    others = [c for c in campaigns if c.kind != "debt"]
    for c in others:
        console.print(f"{c.kind} {c.ref} (priority {c.priority}): {c.eligible_count} to call")
    console.print(f"eligible tonight: {campaign.eligible_count}")
    tz = ZoneInfo(cfg.locale.timezone)
    speech = Speech(cfg, now=lambda: clock.now().astimezone(tz))  # {hello} follows the demo's evening
    speech.check()
    numbers = [p.e164 for p in Phone.select(Phone.e164).where((Phone.valid == True) & (Phone.e164 != ""))]  # noqa: E712
    script = Script.random_mix(sorted(set(numbers)), seed=seed, message_s=20.0)
    sim = SimServer(host="127.0.0.1", port=0, password=cfg.freeswitch.password, clock=clock, script=script,
                    trunk=Trunk(gateways={cfg.dialing.gateway}))
    sim.start()
    cfg = cfg.replace(pacing=pacing, freeswitch=dataclasses.replace(
        cfg.freeswitch, host="127.0.0.1", port=sim.port, outbound_bind_host="127.0.0.1",
        outbound_advertise_host="127.0.0.1"))
    esl = EslClient("127.0.0.1", sim.port, cfg.freeswitch.password, cfg.freeswitch.command_timeout,
                    cfg.freeswitch.reconnect_max_delay)
    esl.start()
    dialer = Dialer(cfg, esl, clock, speech, node="demo", outbound_port=0)
    dialer.start()
    avg_ms = prerender(dialer, campaign, console)
    with console.status("rendering the outage messages"):
        prerender_kinds(cfg, speech, others)
    clock.real_start = time_mod.time()  # the evening starts now, not while the messages were being rendered
    # the debtors' early hang-ups fall inside a message of about this length
    script.debtors.update(Script.random_mix(sorted(set(numbers)), seed=seed,
                                            message_s=max(5.0, avg_ms / 1000)).debtors)
    beat = start_heartbeat(dialer)
    try:
        with Live(_progress_table(dialer, sim, campaign, others), console=console, auto_refresh=False) as live:
            def refresh() -> None:
                while True:
                    live.update(_progress_table(dialer, sim, campaign, others), refresh=True)
                    gevent.sleep(0.25)

            painter = gevent.spawn(refresh)
            try:
                dialer.run(campaigns)
            finally:
                painter.kill()
                live.update(_progress_table(dialer, sim, campaign, others), refresh=True)
    finally:
        beat.kill()
        dialer.stop()
        esl.stop()
        sim.stop()
    console.print()
    rep = simulate_week_after(cfg, campaign, folder, seed)
    console.print(f"the week after (simulated billing payments): {rep.summary()}")
    try:
        from ivr.report import text_summary

        print(text_summary(cfg, day))
    except Exception as exc:  # the report is another part; the demo's own figures still stand
        log.warning("event=report_summary_failed error=%s", exc)
        print(f"Campaign {day}: {dialer.stats.placed} calls; outcomes " +
              ", ".join(f"{k} {v}" for k, v in sorted(dialer.stats.outcomes.items())))
    print(f"Full report: ivr --config {folder / 'config.yaml'} report --date {day}; every campaign of the "
          f"evening: ivr --config {folder / 'config.yaml'} campaigns --date {day}")
    db.close()
    if dialer.stats.placed == 0:
        raise IvrError("the demo placed no calls: see the log lines above")
    return dialer.stats.placed
