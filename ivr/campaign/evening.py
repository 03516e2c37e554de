"""The evening's campaigns: every kind that is due on a local date, started together for one dialer.

`start_evening` starts (or resumes) the outage notices, the installment reminders and the debt reminders due on
`day`, highest priority first; the dialer serves them on one trunk cap (ivr.dialer.dialer.Dialer.run with a
list). `listing` is what `ivr campaigns` shows. `prerender` renders every kind message before dialing, through
the same path the calls use, so no call waits for TTS.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from ivr.campaign import kinds
from ivr.clock import Clock
from ivr.config import Config
from ivr.errors import IvrError
from ivr.ledger.models import Account, Campaign, QueueEntry

log = logging.getLogger(__name__)

ALL_KINDS = ("outage", "installment", "debt")


def start_evening(cfg: Config, day: date, clock: Clock, only: Iterable[str] = ALL_KINDS) -> list[Campaign]:
    """Every campaign due on the local evening `day` of the kinds in `only`, highest priority first. The debt
    campaign is always returned (even with nobody to call: it is the evening the report reads); the others
    only when somebody is to be called."""
    from ivr.campaign import installments, outages
    from ivr.campaign.queue import start_campaign

    only = set(only)
    camps: list[Campaign] = []
    if "outage" in only:
        camps += outages.due_campaigns(cfg, day, clock)
    if "installment" in only:
        camps += installments.due_campaigns(cfg, day, clock)
    if "debt" in only:
        camps.append(start_campaign(cfg, day, clock))
    return sorted(camps, key=lambda c: (c.priority, c.id))


@dataclass(frozen=True)
class Line:
    """One campaign in `ivr campaigns`."""

    campaign: Campaign
    info: kinds.KindInfo
    counts: dict[str, int]


def listing(day: date) -> list[Line]:
    """The campaigns of a local evening, in the order the dialer serves them, with their queue by state."""
    from ivr.campaign.queue import counts

    camps = Campaign.select().where(Campaign.day == day).order_by(Campaign.priority, Campaign.id)
    return [Line(c, kinds.describe(c), counts(c)) for c in camps]


@dataclass(frozen=True)
class Told:
    """How far a non-debt campaign of an evening got: its audience, who was called, who heard it."""

    campaign: Campaign
    label: str
    audience: int
    called: int  # accounts with at least one call in this campaign
    heard: int  # entries ended done (heard, or a menu choice after the message)
    waiting: int  # not heard yet, still to be called (carried to the next evening while still due)
    given_up: int


def told_summary(day: date) -> list[Told]:
    """Per outage notice / installment campaign of `day`: the heard tracking, for the morning summary."""
    from ivr.ledger.models import Attempt

    out: list[Told] = []
    for ln in listing(day):
        c = ln.campaign
        if c.kind == "debt":
            continue
        called = (Attempt.select(Attempt.account).where(Attempt.campaign == c.id, Attempt.kind == "campaign")
                  .distinct().count())
        out.append(Told(c, ln.info.label, c.eligible_count, called, ln.counts.get("done", 0),
                        ln.counts.get("waiting", 0) + ln.counts.get("dialing", 0), ln.counts.get("given_up", 0)))
    return out


def prerender(cfg: Config, speech: Any, camps: list[Campaign], progress: Callable[[int], None] | None = None
              ) -> int:
    """Render the kind messages (and kind menus) of the waiting accounts of non-debt campaigns; returns how
    many messages. Debt messages: Dialer.prepare_speech."""
    from ivr.campaign import messages

    n = 0
    for camp in camps:
        if camp.kind == "debt":
            continue
        messages.check(cfg, speech, camp)
        accounts = list(Account.select().join(QueueEntry, on=(QueueEntry.account == Account.id))
                        .where(QueueEntry.campaign == camp.id, QueueEntry.state == "waiting"))
        for acc in accounts:
            ctx = messages.context(cfg, speech, camp, [acc], camp.day)
            try:
                ctx.message(acc.number)
            except IvrError as exc:  # paid or changed since the campaign started: the pre-dial check drops it
                log.info("event=prerender_skipped campaign=%s account=%s why=%s", camp.id, acc.number, exc)
                continue
            ctx.prompt("menu")
            n += 1
            if progress is not None:
                progress(n)
    return n
