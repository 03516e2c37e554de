"""Which channel a debtor's reminder goes by now: `channels.order`, the preferred channel, how long each channel is
tried, caps per channel, and the do-not-call list.

The order (`channels.order`, e.g. [preferred, voice, sms, letter]; 'preferred' = the account's preferred_channel
from billing; repeats count once) is walked with the debtor's history over the last CYCLE_DAYS days:

- a channel that REACHED the debtor ends the walk: nothing more is sent (voice: an answered call; sms: a delivery
  receipt; email: accepted by the server and not bounced; letter: printed for the post);
- a channel still being TRIED is the current one (voice: first call less than `try_days.voice` days ago; sms: sent,
  no receipt yet, less than `try_days.sms` days ago; email likewise);
- a channel never tried is the current one;
- a channel EXHAUSTED (tried that long without reaching, or failed: undelivered SMS, bounced e-mail, no callable
  number) passes the turn to the next; a channel that is not set up or has no address for the debtor is skipped.

So a letter goes only to debtors nobody could reach by the channels before it. `channels.enabled: false` (the
default) keeps the old behaviour: calls only. The queue asks `not_by_voice_now` when it builds the evening (a debtor
whose current channel is SMS or e-mail is not called that evening); `ivr sms send`, `ivr email send` and
`ivr letters` ask `plan` for whom they should write to.

Do-not-call: an account entry bars every channel; a number entry bars calls and SMS to that number (it names a
number); e-mail and letters are not named by any entry. Held-out debtors (ivr.campaign.holdout) get nothing.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from ivr.config import Config
from ivr.ledger.models import Account, Attempt, Campaign, Message

CYCLE_DAYS = 30
SENT_STATES = ("queued", "sent", "delivered", "printed")


@dataclass
class History:
    """What was done for one account within the cycle (naive UTC times)."""

    calls: list[datetime] = field(default_factory=list)  # campaign attempts
    answered: bool = False
    callable: bool = True  # has a number the dialer may call
    messages: dict[str, list[tuple[str, datetime]]] = field(default_factory=lambda: defaultdict(list))


@dataclass(frozen=True)
class Decision:
    channel: str | None  # the current channel; None = nothing to do (reached, or every channel tried)
    state: str  # untried | trying | reached | exhausted
    reason: str
    reached_by: str = ""  # the channel that reached the debtor (state 'reached')


def order_for(cfg: Config, preferred: str) -> list[str]:
    out: list[str] = []
    for ch in cfg.channels.order:
        ch = (preferred or "voice") if ch == "preferred" else ch
        if ch not in out:
            out.append(ch)
    return out


def set_up(cfg: Config) -> set[str]:
    """Channels the configuration makes usable."""
    out = {"voice", "letter"}
    if cfg.sms.host:
        out.add("sms")
    email = getattr(cfg, "email", None)
    if email is not None and getattr(email, "host", ""):
        out.add("email")
    return out


def channel_state(cfg: Config, channel: str, h: History, now: datetime) -> str:
    days = timedelta(days=cfg.channels.try_days.get(channel, 1))
    if channel == "voice":
        if h.answered:
            return "reached"
        if not h.calls:
            return "untried" if h.callable else "exhausted"
        return "trying" if now - min(h.calls) < days and h.callable else "exhausted"
    msgs = h.messages.get(channel, [])
    if not msgs:
        return "untried"
    if channel == "letter":
        return "reached" if any(s in SENT_STATES for s, _ in msgs) else "exhausted"
    if any(s == "delivered" for s, _ in msgs):
        return "reached"
    if channel == "email" and any(s == "sent" for s, _ in msgs):
        return "reached"  # accepted by the server and no bounce recorded
    pending = [t for s, t in msgs if s in ("queued", "sent")]
    if pending and now - max(pending) < days:
        return "trying"
    return "exhausted"


def decide(cfg: Config, account: Account, h: History, now: datetime, usable: set[str] | None = None,
           addresses: dict[str, bool] | None = None) -> Decision:
    """The current channel of one account (see the module docstring)."""
    usable = set_up(cfg) if usable is None else usable
    skipped = []
    for ch in order_for(cfg, account.preferred_channel):
        if ch not in usable:
            skipped.append(f"{ch} not set up")
            continue
        if addresses is not None and not addresses.get(ch, True):
            skipped.append(f"no {ch} address")
            continue
        st = channel_state(cfg, ch, h, now)
        if st == "reached":
            return Decision(None, "reached", f"reached by {ch}", ch)
        if st in ("untried", "trying"):
            return Decision(ch, st, f"{ch} {st}" + (f" ({'; '.join(skipped)})" if skipped else ""))
        skipped.append(f"{ch} tried")
    return Decision(None, "exhausted", "every channel tried: " + "; ".join(skipped))


def histories(account_ids: list[int], now: datetime) -> dict[int, History]:
    """The cycle's history of many accounts, in a few queries."""
    since = now - timedelta(days=CYCLE_DAYS)
    out: dict[int, History] = {a: History() for a in account_ids}
    debt = Campaign.select(Campaign.id).where(Campaign.kind == "debt")
    for i in range(0, len(account_ids), 500):
        chunk = account_ids[i:i + 500]
        for aid, created, answered in (
                Attempt.select(Attempt.account, Attempt.created_at, Attempt.answered_at)
                .where(Attempt.account.in_(chunk), Attempt.kind != "test", Attempt.created_at >= since,
                       # a debt reminder's history: an outage notice or installment reminder reached nobody about it
                       Attempt.campaign.is_null() | Attempt.campaign.in_(debt)).tuples()):
            h = out[aid]
            h.calls.append(created)
            h.answered = h.answered or answered is not None
        for aid, channel, status, created in (
                Message.select(Message.account, Message.channel, Message.status, Message.created_at)
                .where(Message.account.in_(chunk), Message.created_at >= since).tuples()):
            out[aid].messages[channel].append((status, created))
    return out


def cap_reached(cfg: Config, channel: str, account_id: int, now: datetime, local_day_start: datetime) -> str:
    """Why another message by `channel` would exceed a cap ('' = it would not)."""
    q = Message.select().where(Message.account == account_id, Message.channel == channel,
                               Message.status.in_(SENT_STATES))
    week = cfg.channels.per_week.get(channel)
    if week is not None and q.where(Message.created_at >= now - timedelta(days=7)).count() >= week:
        return f"{channel} cap: {week} per 7 days"
    day = cfg.channels.per_day.get(channel)
    if day is not None and q.where(Message.created_at >= local_day_start).count() >= day:
        return f"{channel} cap: {day} per day"
    return ""


def not_by_voice_now(cfg: Config, account_ids: list[int], now: datetime) -> set[int]:
    """Of these accounts, those the dialer should NOT call now because another channel comes first or another
    channel has already reached them (empty when channels.enabled is false). Debtors reached by a call are left
    to the queue's own rules."""
    if not cfg.channels.enabled or not account_ids:
        return set()
    usable = set_up(cfg)
    hist = histories(account_ids, now)
    out = set()
    for i in range(0, len(account_ids), 500):
        for acc in Account.select(Account.id, Account.preferred_channel, Account.email).where(
                Account.id.in_(account_ids[i:i + 500])):
            d = decide(cfg, acc, hist[acc.id], now, usable, {"email": bool(acc.email)})
            # reached by voice: the queue's own rules (done outcomes, early hang-ups called again, caps) decide
            if d.channel not in ("voice", None) or (d.state == "reached" and d.reached_by != "voice"):
                out.add(acc.id)
    return out


def due(cfg: Config, channel: str, accounts: list[int], now_aware: datetime,
        address_of: Callable[[Account], str], windows=None) -> tuple[list[tuple[Account, str]], Counter]:
    """Of the evening's accounts to contact, those to write to by `channel` now, with the address, and why the
    others are not (reason -> count): current channel, never sent in the cycle, inside `windows` (when given, in
    the debtor's time zone), under the caps, with an address (`address_of` returns '' for none)."""
    from ivr.campaign import rules as call_rules
    from ivr.campaign.windows import CallWindows

    now = now_aware.astimezone(UTC).replace(tzinfo=None)
    hist = histories(accounts, now)
    usable = set_up(cfg)
    out: list[tuple[Account, str]] = []
    skipped: Counter = Counter()
    day_windows = windows or CallWindows(cfg)
    for i in range(0, len(accounts), 500):
        for acc in Account.select().where(Account.id.in_(accounts[i:i + 500])).order_by(Account.id):
            d = decide(cfg, acc, hist[acc.id], now, usable, {"email": bool(acc.email)})
            if d.channel != channel or d.state != "untried":
                skipped[f"not by {channel} now" if d.channel != channel else f"{channel} already sent"] += 1
                continue
            tz = call_rules.account_tz(cfg, acc)
            if windows is not None and not windows.is_open(tz, now_aware):
                skipped[f"outside the {channel} window"] += 1
                continue
            why = cap_reached(cfg, channel, acc.id, now, local_day_start(tz, day_windows.local_day(tz, now_aware)))
            if why:
                skipped[why] += 1
                continue
            address = address_of(acc)
            if not address:
                skipped[f"no {channel} address (or on the do-not-call list)"] += 1
                continue
            out.append((acc, address))
    return out, skipped


def local_day_start(tz: str, day: date) -> datetime:
    from ivr.campaign.rules import day_range

    return day_range(tz, day)[0]
