"""SMS reminders: who gets one now, the text, the Message rows, sending over SMPP and the receipts.

`send_due(cfg, day, clock)` is what `ivr sms send` runs (a step of its own, run in the daytime SMS window, not
inside the evening's `ivr run`): it prepares the evening (`prepare_evening`: the Campaign row of `day` and its
hold-out draw, so held-out debtors get no SMS either), then for every eligible debtor whose current channel is
SMS (ivr.channels.rules: channels.order, preferred channel, try_days) and who has never been sent one in this
cycle: inside `channels.sms_windows` in the debtor's time zone, under the caps (`channels.per_day`,
`per_week`), to the first callable mobile number not on the do-not-call list. The Message row is written
('queued') BEFORE the submit; then 'sent' with the provider's id of the last part (the one that asks for a
receipt; every part's id in `detail`) or 'failed' with the provider's refusal. Receipts (deliver_sm) set
'delivered' / 'failed' / 'expired' with `delivered_at`; the run waits for them up to `sms.receipt_wait_seconds`,
and `collect_receipts` (`ivr sms receipts`) picks up late ones.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from ivr.campaign import holdout
from ivr.campaign import rules as call_rules
from ivr.campaign.windows import CallWindows, aware_utc
from ivr.channels import rules, segments, texts
from ivr.channels.smpp_link import Receipt, SmppLink, SmsLinkError
from ivr.clock import Clock
from ivr.config import Config, WindowsConfig
from ivr.errors import IvrError
from ivr.ledger import dnc, models
from ivr.ledger.models import Campaign, Message
from ivr.ledger.phones import number_facts
from ivr.logs import shown_number

log = logging.getLogger(__name__)

MOBILE_KINDS = frozenset({"mobile", "fixed_line_or_mobile", "personal_number"})


@dataclass
class SmsRun:
    considered: int = 0
    sent: int = 0
    parts: int = 0
    failed: int = 0
    delivered: int = 0  # receipts that said delivered during this run (any message)
    undelivered: int = 0
    skipped: Counter = field(default_factory=Counter)  # why -> accounts


def _naive(at: datetime) -> datetime:
    return aware_utc(at).replace(tzinfo=None)


def prepare_evening(cfg: Config, day: date, clock: Clock) -> tuple[Campaign, list[int]]:
    """The Campaign row of `day` (created 'waiting' when the dialer has not started it yet) with its hold-out
    draw, and the eligible accounts to contact (held-out ones left out). The dialer's start reuses the draw."""
    from ivr.campaign.queue import _write_lock
    from ivr.ledger import eligibility

    now = _naive(clock.now())
    eligible = [v.account_id for v in eligibility.evaluate(cfg, day) if v.eligible]
    with _write_lock(models.database.obj):
        camp, _ = Campaign.get_or_create(day=day, kind="debt", ref="", defaults={"status": "waiting"})
        held = holdout.draw(cfg, camp, eligible, now)
    return camp, [a for a in eligible if a not in held]


def sms_windows(cfg: Config) -> CallWindows:
    w = cfg.channels.sms_windows
    return CallWindows(cfg.replace(windows=WindowsConfig(weekday=list(w), weekend=list(w), holiday=list(w),
                                                         quiet_dates=list(cfg.windows.quiet_dates))))


def sms_number(cfg: Config, account_id: int, day: date) -> str:
    """The first callable mobile number of the account that is not on the do-not-call list ('' = none)."""
    phones = call_rules.callable_phones(account_id, cfg=cfg)
    phones = dnc.without_listed(phones, day)
    for p in phones:
        if number_facts(p.e164, cfg.locale.country)[1] in MOBILE_KINDS:
            return p.e164
    return ""


def apply_receipt(r: Receipt, now: datetime) -> int:
    """Write a delivery receipt back to its Message (matched on the provider's id); rows changed."""
    fields: dict = {"status": r.status}
    if r.status == "delivered":
        fields["delivered_at"] = now
    elif r.status in ("failed", "expired"):
        fields["error"] = f"{r.stat or r.status} err:{r.error}"[:400]
    n = (Message.update(**fields)
         .where(Message.channel == "sms", Message.provider_id == r.message_id,
                Message.status.in_(("queued", "sent"))).execute())
    log.info("event=sms_receipt id=%s stat=%s status=%s matched=%d", r.message_id, r.stat, r.status, n)
    return n


def send_due(cfg: Config, day: date, clock: Clock, *, link: SmppLink | None = None, limit: int | None = None,
             progress: Callable[[int, int], None] | None = None) -> SmsRun:
    """Send the SMS reminders due now (see the module docstring)."""
    if not cfg.channels.enabled:
        raise IvrError("channels.enabled is false in config.yaml: SMS reminders are off")
    if "sms" not in rules.set_up(cfg):
        raise IvrError("SMS is not set up: sms.host is empty in config.yaml")
    run = SmsRun()
    now_aware = aware_utc(clock.now())
    now = _naive(now_aware)
    camp, accounts = prepare_evening(cfg, day, clock)
    templates = texts.loader(cfg)
    due, skipped = rules.due(cfg, "sms", accounts, now_aware, lambda a: sms_number(cfg, a.id, day),
                             sms_windows(cfg))
    run.considered = len(accounts)
    run.skipped.update(skipped)
    if limit is not None:
        due = due[:limit]
    if not due:
        return run
    own = link is None
    link = link or SmppLink(cfg.sms, lambda r: _count_receipt(run, r, clock))
    if own:
        link.open()
    else:
        link.on_receipt = lambda r: _count_receipt(run, r, clock)
    mine: list[int] = []
    try:
        for n, (acc, number) in enumerate(due, start=1):
            lang = acc.language or cfg.locale.language
            text = texts.render(templates(lang)["sms"], texts.facts_for(cfg, acc, day))
            enc = segments.encode(text, reference=acc.id & 0xFF)
            msg = Message.create(account=acc, campaign=camp, channel="sms", kind="reminder", language=lang,
                                 address=number, status="queued", parts=enc.count, created_at=now)
            try:
                ids = link.submit(number, enc)
            except SmsLinkError as exc:
                Message.update(status="failed", error=str(exc)[:400]).where(Message.id == msg.id).execute()
                run.failed += 1
                log.warning("event=sms_failed account=%s number=%s error=%s", acc.number, shown_number(number), exc)
                if exc.status is None:
                    raise  # the link is gone: stop the run, the rest stay unsent
                continue
            sent_at = _naive(clock.now())
            (Message.update(status="sent", provider_id=ids[-1], sent_at=sent_at,
                            detail=json.dumps({"part_ids": ids}))
             .where(Message.id == msg.id, Message.status == "queued").execute())
            mine.append(msg.id)
            run.sent += 1
            run.parts += enc.count
            log.info("event=sms_sent account=%s number=%s parts=%d coding=%s id=%s", acc.number,
                     shown_number(number), enc.count, "ucs2" if enc.data_coding == segments.DC_UCS2 else "gsm7",
                     ids[-1])
            if progress:
                progress(n, len(due))
        if cfg.sms.receipt_wait_seconds and mine:
            link.collect(cfg.sms.receipt_wait_seconds, lambda: not Message.select().where(
                Message.id.in_(mine), Message.status == "sent").exists())
    finally:
        if own:
            link.close()
    return run


def _count_receipt(run: SmsRun, r: Receipt, clock: Clock) -> None:
    if apply_receipt(r, _naive(clock.now())):
        if r.status == "delivered":
            run.delivered += 1
        elif r.status in ("failed", "expired"):
            run.undelivered += 1


def collect_receipts(cfg: Config, clock: Clock, seconds: float) -> SmsRun:
    """Bind and read late delivery receipts for `seconds` (`ivr sms receipts`)."""
    run = SmsRun()
    link = SmppLink(cfg.sms, lambda r: _count_receipt(run, r, clock)).open()
    try:
        link.collect(seconds)
    finally:
        link.close()
    return run


def with_link_config(cfg: Config, **sms) -> Config:
    """`cfg` with some sms.* settings replaced (the CLI's --host/--port, the tests' simulated SMSC)."""
    return cfg.replace(sms=dataclasses.replace(cfg.sms, **sms))
