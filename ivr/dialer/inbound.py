"""Debtors who call back: an inbound call on the call-flow socket, recognised by the caller's number.

FreeSWITCH runs freeswitch/dialplan/ivr_inbound.xml for calls to the caller-ID number: answer, then `socket` to
the same call-flow server as the dialer's own calls. Such a session has `Call-Direction: inbound` and no
`ivr_attempt_id`. `handle(dialer, session)`:
- the caller's number (Caller-Caller-ID-Number) is untrusted: only `+`/digits, 5-15 digits, normalised with the
  locale's region, reach a lookup; anything else is an unknown caller (and is never put in a command);
- accounts whose campaign call to that number was placed tonight or within `inbound.recent_days`: they hear
  their messages and the menu, through the same call flow (right-party check first when several accounts share
  the number, or when callflow.right_party_check is on; no machine detection: a caller is a person). The
  result is written like an outbound call's (heard, digits, callback request, claim, wrong number, opt-out) on
  an Attempt row with kind 'inbound', which the caps do not count (ivr.campaign.rules) and the report shows
  apart. A heard callback closes the account's waiting queue entry for the evening, like a heard call;
- an unknown caller hears `inbound_unknown` and is transferred to `inbound.fallback_transfer` (the office).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from datetime import timedelta
from typing import Any

from ivr.callflow.context import CallContext, check_transfer
from ivr.ledger.models import Account, Attempt, Campaign, QueueEntry, database
from ivr.ledger.phones import normalize
from ivr.logs import shown_number

log = logging.getLogger("ivr.dialer")

_CALLER = re.compile(r"^\+?[0-9]{5,15}$")
_UUID = re.compile(r"^[0-9a-fA-F-]{36}$")
DONE = frozenset({"heard", "pay_now", "callback", "already_paid", "opted_out"})


def is_inbound(session: Any) -> bool:
    data = getattr(session, "channel_data", None)
    if data is None:
        return False
    return data.get("Call-Direction") == "inbound" and not session.variable("ivr_attempt_id")


def caller_e164(session: Any, region: str) -> str:
    """The caller's number as E.164, or '' when it is missing or not a plain phone number."""
    data = session.channel_data
    raw = (data.get("Caller-Caller-ID-Number") or data.get("Channel-Caller-ID-Number") or "").strip()
    if not _CALLER.match(raw):
        return ""
    res = normalize(raw, region)
    return res.e164 if res.valid else ""


def recent_accounts(e164: str, since) -> list[Account]:
    """Accounts whose campaign call to `e164` was placed at or after `since` (naive UTC), oldest first."""
    rows = (Attempt.select(Attempt.account, Attempt.accounts).where(
        (Attempt.e164 == e164) & (Attempt.kind == "campaign") & (Attempt.created_at >= since))
        .order_by(Attempt.created_at))
    numbers: list[str] = []
    ids: list[int] = []
    for row in rows:
        ids.append(row.account_id)
        numbers.extend(n for n in (row.accounts or "").split(",") if n)
    found = Account.select().where(Account.id.in_(ids) | Account.number.in_(numbers or [""]))
    order = {a.id: i for i, a in enumerate(found)}
    return sorted(found, key=lambda a: order[a.id])


def _unknown(dialer: Any, session: Any, why: str) -> None:
    cfg = dialer.cfg
    target = check_transfer(cfg.inbound.fallback_transfer)
    log.info("event=inbound_unknown call=%s why=%s transfer=%s", session.uuid, why, target)
    if dialer.speech is not None:
        r = dialer.speech.prompt(cfg.locale.language, "inbound_unknown")
        session.execute("playback", r.playback, timeout=r.duration_ms / 1000 * 1.5 + 30)
    if not session.hungup:
        session.execute("transfer", target, timeout=40)


def handle(dialer: Any, session: Any) -> str:
    """Serve one inbound call; returns its outcome ('' for an unknown caller sent to the office)."""
    from ivr.dialer.tracker import Flight, clock_utc

    cfg, clock = dialer.cfg, dialer.clock
    e164 = caller_e164(session, cfg.locale.country)
    if not e164:
        _unknown(dialer, session, "no valid caller number")
        return ""
    now = clock_utc(clock)
    accounts = recent_accounts(e164, now.replace(hour=0, minute=0, second=0, microsecond=0)
                               - timedelta(days=cfg.inbound.recent_days))
    if not accounts or not _UUID.match(session.uuid or ""):
        _unknown(dialer, session, f"no recent message to {shown_number(e164)}")
        return ""
    main = accounts[0]
    last = (Attempt.select(Attempt.campaign).where((Attempt.account == main) & (Attempt.kind == "campaign"))
            .order_by(Attempt.created_at.desc()).first())
    camp = Campaign.get_or_none(Campaign.id == last.campaign_id) if last and last.campaign_id else None
    if camp is not None and camp.kind != "debt":
        accounts = [main]  # an outage notice or installment reminder: that message again, for that account
    lease = dialer.ensure_lease()  # written under this process's lease, as outbound calls are (lease.py)
    att = Attempt.create(uuid=session.uuid, campaign=last.campaign_id if last else None, account=main.id,
                         accounts=",".join(a.number for a in accounts)[:400], e164=e164, node=lease.node,
                         epoch=lease.epoch, state="answered", created_at=now, answered_at=now, kind="inbound")
    log.info("event=inbound_call attempt=%s number=%s accounts=%d", att.uuid, shown_number(e164), len(accounts))
    flight = Flight(attempt_id=att.id, uuid=att.uuid, account_id=main.id, e164=e164, sharing=accounts[1:],
                    node=lease.node, epoch=lease.epoch)
    settings = dataclasses.replace(cfg.callflow, machine_detection="off",
                                   right_party_check=cfg.callflow.right_party_check or len(accounts) > 1)
    from ivr.speech.facts import facts_for_account

    day = clock.now().date()
    if camp is not None and camp.kind != "debt":
        from ivr.campaign import messages

        ctx = messages.context(cfg, dialer.speech, camp, accounts, camp.day, attempt=att.uuid,
                               shared=dialer._prompts)
    else:
        facts = [facts_for_account(cfg, acc, day) for acc in accounts]
        ctx = CallContext.from_speech(cfg, dialer.speech, facts, attempt=att.uuid, shared=dialer._prompts)
    ctx.settings = settings
    result = dialer.run_call(session, ctx)
    dialer._write_result(flight, result)
    ended = clock_utc(clock)
    with database.atomic():
        Attempt.update(outcome=result.outcome, state="ended", ended_at=ended,
                       hangup_cause=result.hangup_cause or "").where(Attempt.id == att.id).execute()
        if result.outcome in DONE:
            _close_entries(dialer, accounts, result, att, camp)
    log.info("event=inbound_done attempt=%s number=%s outcome=%s", att.uuid, shown_number(e164), result.outcome)
    return result.outcome


def _close_entries(dialer: Any, accounts: list[Account], result: Any, att: Attempt,
                   camp: Campaign | None = None) -> None:
    """A callback heard counts as heard: close each account's waiting entry in a running campaign of the message
    heard (a debt message closes debt entries; an outage notice only that notice's entry)."""
    from ivr.campaign import queue

    per = {k: v.outcome for k, v in (result.accounts or {}).items()}
    which = (Campaign.id == camp.id) if camp is not None and camp.kind != "debt" else (Campaign.kind == "debt")
    entries = (QueueEntry.select().join(Campaign).where(
        QueueEntry.account.in_([a.id for a in accounts]) & (QueueEntry.state == "waiting")
        & (Campaign.status.in_(["waiting", "running", "paused"])) & which))
    by_id = {a.id: a for a in accounts}
    for e in entries:
        outcome = per.get(by_id[e.account_id].number, result.outcome)
        if outcome in DONE:
            cfg = dialer.queue.cfg_for(e.campaign_id) if hasattr(dialer.queue, "cfg_for") else dialer.cfg
            queue.record_result(e, outcome, "", dialer.clock, att, cfg=cfg)
