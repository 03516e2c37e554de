"""The morning report: who was called, who heard, who chose what, who paid since; results back to billing.

`data.build_report` gathers the facts (set-based queries); `html`, `csvout` and `export` write them.
`text_summary(cfg, day)` is the few lines printed at the end of `ivr demo` and `ivr run`.
"""

from __future__ import annotations

from datetime import date

from ivr.config import Config


def text_summary(cfg: Config, day: date | str | None = None) -> str:
    """A plain-text summary of the campaign of `day` (latest when None): totals and money after the calls."""
    from ivr.ledger import models
    from ivr.ledger.db import connect
    from ivr.report.data import WINDOWS, build_report
    from ivr.report.html import money, percent, ratio

    if models.database.obj is None:
        connect(cfg.database.url, cfg.base_dir)
    if isinstance(day, str):
        day = date.fromisoformat(day)
    d = build_report(cfg, day)
    t = d.totals
    lines = [
        f"Campaign {d.day} ({d.campaign_status}): {t.attempts} calls",
        f"  eligible {t.eligible}, called {t.called} ({ratio(t.called, t.eligible)}), "
        f"reached {t.reached} ({ratio(t.reached, t.called)}), heard {t.heard} ({ratio(t.heard, t.reached)})",
        f"  pay now {t.pay_now}, callbacks {t.callbacks}, already paid {t.already_paid}, "
        f"wrong number {t.wrong_number}, opted out {t.opted_out}"
        + (f", still in progress {t.in_flight}" if t.in_flight else ""),
    ]
    if t.called_back or t.machines:
        lines.append(f"  debtors who called back {t.called_back} (heard {t.called_back_heard}), "
                     f"answering machines {t.machines}")
    if d.life_support:
        told = [r for r in d.life_support if r.informed_by]
        lines.append(f"  life support: {len(d.life_support)} account(s), {len(told)} informed in person"
                     + (f", {len(d.life_support) - len(told)} not yet" if len(told) < len(d.life_support) else ""))
    if d.test_calls:
        lines.append(f"  test calls (ivr call, counted nowhere above): {len(d.test_calls)}")
    for m in d.money:
        paid = ", ".join(f"{n}d {money(m.paid[n])} ({percent(m.share[n])})" for n in WINDOWS)
        lines.append(f"  paid by {m.group} ({m.accounts}, debt {money(m.debt)} {d.currency}): {paid}")
    lines.append("  (reached vs not reached is a description: those groups chose themselves)")
    for c in d.channels[1:]:
        lines.append(f"  {c.channel}: {c.sent} sent to {c.people}, reached {c.reached}, not reached {c.failed}"
                     + (f", waiting {c.pending}" if c.pending else ""))
    if d.holdout is not None:
        h = d.holdout
        lines.append(f"  effect (contacted {h.contacted} vs held out {h.held}; the only measure of the effect):")
        for r in h.rows:
            if r.diff is not None:
                lines.append(f"    paid within {r.days}d: {percent(r.diff.p1)} vs {percent(r.diff.p2)}, "
                             f"difference {r.diff.diff * 100:+.1f} pp (95 % CI {r.diff.low * 100:+.1f} to "
                             f"{r.diff.high * 100:+.1f} pp, Newcombe)")
    from ivr.campaign.evening import told_summary

    for k in told_summary(d.day):
        lines.append(f"  {k.label}: audience {k.audience}, called {k.called}, heard {k.heard}, "
                     f"not heard yet {k.waiting}, given up {k.given_up}")
    return "\n".join(lines)


__all__ = ["text_summary"]
