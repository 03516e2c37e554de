"""`ivr account ACCOUNT` / `ivr account --phone NUMBER`: one debtor's story (ivr.ledger.story) for staff, or JSON."""

from __future__ import annotations

import argparse
import json
from datetime import datetime

from ivr.cli.common import iso_date, load
from ivr.errors import IvrError
from ivr.ledger import story as stories


def cmd_account(args: argparse.Namespace) -> int:
    cfg, _db = load(args)
    found = stories.find_accounts(cfg, account=args.account, phone=args.phone, name=args.name)
    if not found:
        what = args.account or args.phone or args.name
        raise IvrError(f"no account found for {what!r}")
    if args.name and len(found) > 1 and not args.json:
        print(f"{len(found)} accounts match (show one with: ivr account ACCOUNT)")
        for a in found:
            print(f"  {a.number:<16} {a.name}")
        return 0
    told = [stories.account_story(cfg, a, day=args.date, full_numbers=args.full_numbers) for a in found]
    if args.json:
        query = {"account": args.account, "phone": args.phone, "name": args.name}
        print(json.dumps({"query": {k: v for k, v in query.items() if v}, "accounts": [s.as_dict() for s in told]},
                         ensure_ascii=False, indent=2))
        return 0
    print("\n\n".join(render(s) for s in told))
    return 0


def _t(at: datetime | None) -> str:
    return f"{at:%Y-%m-%d %H:%M}" if at else "-"


def render(s: stories.AccountStory) -> str:
    """The story as plain text for a terminal."""
    v, c = s.verdict, s.caps
    out = [f"Account {s.account}: {s.name}", f"  {s.address}; district {s.district or '-'}; language {s.language}; "
           f"time zone {s.timezone}" + ("; billing marks it DO NOT CALL" if s.billing_do_not_call else "")]
    if s.claimed_paid_at:
        out.append(f"  said 'already paid' (key 3) at {_t(s.claimed_paid_at)} UTC")
    out.append("Numbers:")
    for p in s.phones:
        state = "valid" if p.valid and not p.flagged_at else f"not called: {p.invalid_reason or 'flagged'}"
        out.append(f"  {p.position + 1}. {p.number}  {state}" + ("  [do-not-call list]" if p.on_dnc_list else ""))
    out.append(f"Today ({v.day}): {'ELIGIBLE' if v.eligible else 'not eligible'}, remaining debt {v.remaining}")
    out += [f"  - {r}" for r in v.reasons]
    out += [f"  now: {r}" for r in v.now]
    if s.ladder is not None:
        lad = s.ladder
        out.append(f"Escalation: {lad.label} since {lad.since}" + (f" (set by {lad.by})" if lad.by != "rules" else "")
                   + f"; {lad.reason}")
    limits = c.contact_limits
    out.append(f"Caps used on {c.day}: attempts {c.attempts_today}/{c.max_attempts_per_day} today; answered "
               f"contacts {c.contacts_today} today, {c.contacts_this_week} this week, {c.contacts_this_month} this "
               f"month (caps {limits['per_day'] or '-'}/{limits['per_week'] or '-'}/{limits['per_month'] or '-'})"
               + (f"; {c.campaign_attempts}/{c.max_attempts_per_campaign} in this campaign"
                  if c.campaign_attempts is not None else ""))
    out.append("Balances:" if s.balances else "Balances: none")
    out += [f"  {b.as_of}  {b.amount:>12} {b.currency}" + (f"  overdue since {b.overdue_since}" if b.overdue_since
                                                            else "") for b in s.balances]
    out.append("Payments:" if s.payments else "Payments: none")
    out += [f"  {p.paid_on}  {p.amount:>12}  {p.reference}" for p in s.payments]
    out.append(f"Calls ({len(s.calls)}; local time):" if s.calls else "Calls: none")
    for k in s.calls:
        tag = "  [staff test call, counted nowhere]" if k.kind == "test" else f"  [{k.about}]" if k.about else ""
        shared = f"  with {', '.join(k.shared_with)}" if k.shared_with else ""
        out.append(f"  {_t(k.at)}  {k.number:<16} {k.outcome or '-':<14} heard {'yes' if k.heard else 'no':<3} "
                   f"({k.heard_ms}/{k.message_ms} ms)  keys {k.keys or '-':<4} {k.hangup_cause or '-'}"
                   f"{shared}{tag}")
    if s.callbacks:
        out.append("Callback requests:")
        out += [f"  {_t(b.requested_at)}  {b.number}  {b.district or '-'}  "
                + (f"handled {_t(b.handled_at)}" if b.handled_at else "open") for b in s.callbacks]
    if s.dnc:
        out.append("Do-not-call entries:")
        out += [f"  {d.kind} {d.value}: {d.reason} (by {d.added_by} {_t(d.added_at)} UTC"
                + (f", until {d.until}" if d.until else "") + f") {d.state}"
                + (f" by {d.removed_by} {_t(d.removed_at)} UTC {d.removed_reason}".rstrip() if d.removed_at else "")
                for d in s.dnc]
    if s.messages:
        out.append("SMS, e-mail, letters, hold-out evenings (local time):")
        out += [f"  {_t(m.at)}  {m.channel:<8} {m.status:<10} {m.address}" + (f"  {m.error}" if m.error else "")
                for m in s.messages]
    if s.queue:
        out.append("Queue:")
        out += [f"  campaign {q.campaign_day}: {q.state} {q.outcome or ''} after {q.attempts} attempt(s)"
                + (f"; {q.reason}" if q.reason else "") for q in s.queue]
    return "\n".join(out)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("account", help="one debtor's story: numbers, debt, payments, every call, callbacks, "
                                       "do-not-call, today's verdict, caps",
                       description="Answer 'who called me and why?' for one account or one phone number: balances, "
                                   "payments, every call (time, number, outcome, heard, keys), callback requests, "
                                   "do-not-call entries, today's eligibility verdict with every reason, and the "
                                   "caps used. Numbers are masked unless --full-numbers.")
    p.add_argument("account", nargs="?", metavar="ACCOUNT", help="the account number")
    p.add_argument("--phone", metavar="NUMBER", help="every account holding this number or called on it")
    p.add_argument("--name", metavar="TEXT", help="accounts whose name contains TEXT")
    p.add_argument("--date", type=iso_date, metavar="YYYY-MM-DD", help="judge eligibility and caps on this local "
                                                                       "day (default: today)")
    p.add_argument("--full-numbers", action="store_true", help="show phone numbers unmasked")
    p.add_argument("--json", action="store_true", help="print JSON for machines")
    p.set_defaults(func=cmd_account)
