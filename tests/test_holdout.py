"""The hold-out group: drawn at random when the evening starts, recorded before anyone is queued, reproducible
from its seed, never the same debtor two evenings in a row, and never contacted."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime

import pytest
from campaign_support import acc

from ivr.campaign import holdout
from ivr.campaign.queue import next_candidates, start_campaign
from ivr.clock import ManualClock
from ivr.ledger.models import Campaign, Holdout, QueueEntry

DAY = date(2026, 11, 23)
OPEN = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)


def with_share(cfg, share):
    return cfg.replace(campaign=dataclasses.replace(cfg.campaign, holdout_share=share))


@pytest.fixture
def clock():
    return ManualClock(OPEN)


def test_target_count_rounds_half_up():
    assert holdout.target_count(0.05, 10) == 1
    assert holdout.target_count(0.05, 9) == 0
    assert holdout.target_count(0.1, 25) == 3
    assert holdout.target_count(0.0, 1000) == 0


def test_pick_is_reproducible_from_the_seed_and_depends_on_it():
    pool = range(1, 1001)
    a = holdout.pick("abc", pool, 50)
    assert a == holdout.pick("abc", reversed(pool), 50)  # the order the pool comes in does not matter
    assert len(set(a)) == 50 and set(a) <= set(pool)
    assert a != holdout.pick("abd", pool, 50)


def test_share_zero_holds_out_nobody_and_queues_everyone(db, cfg, clock):
    accounts = [acc() for _ in range(5)]
    camp = start_campaign(cfg, DAY, clock)
    assert Holdout.select().count() == 0
    assert QueueEntry.select().count() == len(accounts)
    assert camp.holdout_count == 0 and camp.holdout_seed  # the (empty) draw is recorded: no redraw later


def test_held_out_accounts_are_recorded_before_dialing_and_never_queued(db, cfg, clock):
    cfg = with_share(cfg, 0.25)
    accounts = [acc() for _ in range(20)]
    camp = start_campaign(cfg, DAY, clock)
    held = holdout.held_out_ids(camp)
    assert len(held) == 5
    assert held <= {a.id for a in accounts}
    queued = {e.account_id for e in QueueEntry.select()}
    assert queued == {a.id for a in accounts} - held
    stored = Campaign.get_by_id(camp.id)
    assert (stored.holdout_count, stored.holdout_share, stored.eligible_count) == (5, 0.25, 15)
    # the recorded seed re-does the same draw
    assert set(holdout.redraw(stored, [a.id for a in accounts])) == held
    called = {c.account.id for c in next_candidates(camp, clock, 50)}
    assert called == queued and not (called & held)


def test_a_resumed_evening_keeps_its_draw(db, cfg, clock):
    cfg = with_share(cfg, 0.25)
    for _ in range(12):
        acc()
    camp = start_campaign(cfg, DAY, clock)
    first = holdout.held_out_ids(camp)
    seed = Campaign.get_by_id(camp.id).holdout_seed
    again = start_campaign(cfg, DAY, clock)
    assert holdout.held_out_ids(again) == first
    assert Campaign.get_by_id(camp.id).holdout_seed == seed
    assert not QueueEntry.select().where(QueueEntry.account.in_(list(first))).exists()


def test_nobody_is_held_out_two_evenings_in_a_row(db, cfg, clock):
    cfg = with_share(cfg, 0.5)  # half held out: without the rule, overlap between two draws is all but certain
    for _ in range(20):
        acc()
    days = [date(2026, 11, 23), date(2026, 11, 24), date(2026, 11, 25)]
    drawn = []
    for d in days:
        clock.current = datetime(d.year, d.month, d.day, 16, 0, tzinfo=UTC)
        camp = start_campaign(cfg, d, clock)
        drawn.append(holdout.held_out_ids(camp))
    assert all(len(s) == 10 for s in drawn)
    assert not (drawn[0] & drawn[1]) and not (drawn[1] & drawn[2])
    # 20 accounts, 10 barred each evening: the second draw is the rest, the third the first again
    assert drawn[2] == drawn[0]


def test_a_carried_over_entry_of_a_held_out_account_is_closed_as_held_out(db, cfg, clock):
    accounts = [acc() for _ in range(10)]
    start_campaign(cfg, DAY, clock)  # share 0: everyone queued, nobody called: all still waiting
    nxt = date(2026, 11, 24)
    clock.current = datetime(2026, 11, 24, 16, 0, tzinfo=UTC)
    camp2 = start_campaign(with_share(cfg, 0.3), nxt, clock)
    held = holdout.held_out_ids(camp2)
    assert len(held) == 3
    old = {e.account_id: e for e in QueueEntry.select().where(QueueEntry.campaign != camp2)}
    assert {old[a].outcome for a in held} == {"held_out"}
    assert {old[a.id].outcome for a in accounts if a.id not in held} == {"carried_over"}
    assert {e.account_id for e in QueueEntry.select().where(QueueEntry.campaign == camp2)} == (
        {a.id for a in accounts} - held)


# --- the morning report ---------------------------------------------------------------------------------------------

def _holdout_evening(db):
    """10 contacted (queued), 4 held out; payments: contacted 5 pay within 1 day, 1 more on day 5; held out 1 pays
    on day 2, 1 on day 9 (outside every window)."""
    import factories as f

    from ivr.report import stats

    camp = f.campaign(DAY)
    contacted = [f.account(debt="100") for _ in range(10)]
    held = [f.account(debt="200") for _ in range(4)]
    for a in contacted:
        f.enqueue(camp, a, state="done")
    for a in held:
        Holdout.create(campaign=camp, account=a)
    Campaign.update(holdout_share=0.25, holdout_seed="s", holdout_count=4).where(Campaign.id == camp.id).execute()
    for a in contacted[:5]:
        f.payment(a, "50", date(2026, 11, 24))
    f.payment(contacted[5], "70", date(2026, 11, 28))
    f.payment(contacted[6], "70", date(2026, 11, 22))  # before the campaign day: not counted
    f.payment(held[0], "30", date(2026, 11, 25))
    f.payment(held[1], "30", date(2026, 12, 2))
    return stats


def test_report_compares_contacted_with_held_out_with_an_interval(db, cfg):
    from ivr.report.data import build_report
    from ivr.report.html import render_html

    stats = _holdout_evening(db)
    data = build_report(cfg, DAY)
    h = data.holdout
    assert (h.contacted, h.held, h.share) == (10, 4, 0.25)
    assert h.held_debt == 800 and h.contacted_debt == 1000
    by_days = {r.days: r for r in h.rows}
    assert [(by_days[n].contacted_payers, by_days[n].held_payers) for n in (1, 3, 7)] == [(5, 0), (5, 1), (6, 1)]
    assert by_days[3].held_paid == 30 and by_days[7].contacted_paid == 320
    d = by_days[1].diff
    assert d == stats.newcombe(5, 10, 0, 4)
    assert d.diff == pytest.approx(0.5) and d.low < 0.5 < d.high
    html = render_html(data)
    assert "Only this comparison measures the effect" in html
    assert "Newcombe" in html
    assert "The difference is the effect of the calls" not in html
    assert "this difference is not the effect of the calls" in html


def test_report_without_a_holdout_says_it_cannot_measure_the_effect(db, cfg):
    import factories as f

    from ivr.report.data import build_report
    from ivr.report.html import render_html

    camp = f.campaign(DAY)
    f.enqueue(camp, f.account())
    data = build_report(cfg, DAY)
    assert data.holdout is None
    assert "cannot\n  measure the effect" in render_html(data)


def test_report_shows_outcomes_per_channel(db, cfg):
    import factories as f

    from ivr.ledger.models import Message
    from ivr.report.data import build_report
    from ivr.report.html import render_html

    camp = f.campaign(DAY)
    a, b, c = f.account(), f.account(), f.account()
    for x in (a, b, c):
        f.enqueue(camp, x)
    f.attempt(camp, a, OPEN, "heard")
    f.attempt(camp, b, OPEN, "no_answer")
    for acc_, status in ((b, "delivered"), (c, "failed"), (c, "sent")):
        Message.create(account=acc_, campaign=camp, channel="sms", status=status)
    Message.create(account=c, campaign=camp, channel="letter", status="printed")
    data = build_report(cfg, DAY)
    rows = {r.channel: r for r in data.channels}
    assert (rows["voice"].people, rows["voice"].sent, rows["voice"].reached, rows["voice"].failed) == (2, 2, 1, 1)
    assert (rows["sms"].people, rows["sms"].sent, rows["sms"].reached, rows["sms"].failed,
            rows["sms"].pending) == (2, 3, 1, 1, 1)
    assert (rows["letter"].sent, rows["letter"].reached) == (1, 1) and "email" not in rows
    html = render_html(data)
    assert 'id="channel-sms"' in html and 'id="channel-letter"' in html


def test_text_summary_gives_the_effect_with_its_interval(db, cfg):
    from ivr.report import text_summary

    _holdout_evening(db)
    text = text_summary(cfg, DAY)
    assert "contacted 10 vs held out 4; the only measure of the effect" in text
    assert "paid within 1d: 50.0 % vs 0.0 %, difference +50.0 pp" in text


def test_the_debtor_story_lists_messages_and_hold_out_evenings(db, cfg, clock):
    from ivr.ledger.models import Message
    from ivr.ledger.story import account_story

    cfg = with_share(cfg, 0.5)
    a, b = acc(), acc()
    camp = start_campaign(cfg, DAY, clock)
    held = holdout.held_out_ids(camp)
    other = a if a.id not in held else b
    Message.create(account=other, campaign=camp, channel="sms", status="delivered", address=other.phones[0].e164)
    Message.create(account=other, campaign=camp, channel="email", status="bounced", address="olena@example.com",
                   error="550 no such user")
    told = account_story(cfg, other.number, now=OPEN)
    lines = {(m.channel, m.status): m for m in told.messages}
    assert lines[("sms", "delivered")].address != other.phones[0].e164  # masked
    assert lines[("email", "bounced")].address == "o***@example.com"
    assert account_story(cfg, other.number, now=OPEN, full_numbers=True).messages[0].address in (
        other.phones[0].e164, "olena@example.com")
    held_acc = a if other is b else b
    assert [(m.channel, m.status) for m in account_story(cfg, held_acc.number, now=OPEN).messages] == [
        ("held out", f"campaign {DAY}")]
