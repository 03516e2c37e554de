"""`ivr sms send` over the ledger and the simulated SMSC: who gets an SMS (preferred channel, order, hold-out,
do-not-call, window, caps), the Message rows before and after, receipts written back, and the queue leaving
SMS-first debtors uncalled until SMS is exhausted."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from campaign_support import acc

from ivr.campaign import holdout
from ivr.campaign.queue import start_campaign
from ivr.channels import sms
from ivr.clock import ManualClock
from ivr.ledger import dnc
from ivr.ledger.models import Account, Campaign, Message, QueueEntry
from ivr.sim.smsc import SimSmsc, SimThread

DAY = date(2026, 11, 23)
NOON = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # 12:00 in Kyiv
PROMPTS = Path(__file__).resolve().parent.parent / "prompts"


@pytest.fixture
def smsc():
    with SimThread(SimSmsc(password="pw", receipt_delay_s=0.01)) as sim:
        yield sim


def channel_cfg(cfg, smsc, **channels):
    return cfg.replace(
        channels=dataclasses.replace(cfg.channels, enabled=True, **channels),
        sms=dataclasses.replace(cfg.sms, host="127.0.0.1", port=smsc.port, password="pw", max_per_second=1000,
                                receipt_wait_seconds=60),
        speech=dataclasses.replace(cfg.speech, prompts_dir=str(PROMPTS)))


def sms_debtor(**kw) -> Account:
    a = acc(**kw)
    Account.update(preferred_channel="sms").where(Account.id == a.id).execute()
    return Account.get_by_id(a.id)


def test_sms_first_debtors_get_one_delivered_sms_and_voice_first_ones_none(db, cfg, smsc):
    cfg = channel_cfg(cfg, smsc)
    a, b = sms_debtor(), sms_debtor()
    voice = acc()
    run = sms.send_due(cfg, DAY, ManualClock(NOON))
    assert (run.sent, run.failed, run.delivered) == (2, 0, 2)
    rows = {m.account_id: m for m in Message.select()}
    assert set(rows) == {a.id, b.id}
    for m in rows.values():
        assert (m.channel, m.status, m.language) == ("sms", "delivered", "uk")
        assert m.provider_id and m.delivered_at is not None and m.sent_at is not None
    texts = {dest: text for dest, text, _ in smsc.messages()}
    assert len(texts) == 2
    assert all("борг" in t.lower() and "500,00 UAH" in t for t in texts.values())
    assert voice.id not in rows
    # a second run the same day sends nothing more
    again = sms.send_due(cfg, DAY, ManualClock(NOON))
    assert again.sent == 0 and len(smsc.submitted) == run.parts


def test_undelivered_is_recorded_and_the_number_on_the_do_not_call_list_gets_nothing(db, cfg, smsc):
    cfg = channel_cfg(cfg, smsc)
    bad = sms_debtor()
    listed = sms_debtor()
    smsc.undeliverable.add(bad.phones[0].e164.lstrip("+"))
    dnc.add(cfg, listed.phones[0].e164, "asked for no messages", "cli:test")
    run = sms.send_due(cfg, DAY, ManualClock(NOON))
    assert run.sent == 1 and run.undelivered == 1
    m = Message.get(Message.account == bad)
    assert m.status == "failed" and "UNDELIV" in m.error
    assert not Message.select().where(Message.account == listed).exists()


def test_outside_the_sms_window_nothing_is_sent(db, cfg, smsc):
    cfg = channel_cfg(cfg, smsc, sms_windows=["09:00-10:00"])
    sms_debtor()
    run = sms.send_due(cfg, DAY, ManualClock(NOON))
    assert run.sent == 0 and run.skipped["outside the sms window"] == 1
    assert smsc.submitted == []


def test_held_out_debtors_get_no_sms_and_the_evening_keeps_the_draw(db, cfg, smsc):
    cfg = channel_cfg(cfg, smsc)
    cfg = cfg.replace(campaign=dataclasses.replace(cfg.campaign, holdout_share=0.5))
    debtors = [sms_debtor() for _ in range(6)]
    sms.send_due(cfg, DAY, ManualClock(NOON))
    camp = Campaign.get(Campaign.day == DAY)
    held = holdout.held_out_ids(camp)
    assert len(held) == 3
    got = {m.account_id for m in Message.select()}
    assert got == {d.id for d in debtors} - held
    # the dialer's start the same evening reuses the draw made before the SMS went out
    start_campaign(cfg, DAY, ManualClock(datetime(2026, 11, 23, 16, 0, tzinfo=UTC)))
    assert holdout.held_out_ids(camp) == held


def test_the_queue_leaves_sms_first_debtors_uncalled_until_sms_is_exhausted(db, cfg, smsc):
    cfg = channel_cfg(cfg, smsc)
    ok, bad = sms_debtor(), sms_debtor()
    voice = acc()
    smsc.undeliverable.add(bad.phones[0].e164.lstrip("+"))
    sms.send_due(cfg, DAY, ManualClock(NOON))
    camp = start_campaign(cfg, DAY, ManualClock(datetime(2026, 11, 23, 16, 0, tzinfo=UTC)))
    entries = {e.account_id: e for e in QueueEntry.select().where(QueueEntry.campaign == camp)}
    assert entries[voice.id].state == "waiting"
    assert (entries[ok.id].state, entries[ok.id].outcome) == ("given_up", "other_channel")  # reached by SMS
    assert entries[bad.id].state == "waiting"  # SMS failed: the next channel in the order, voice, takes over


def test_send_refuses_when_channels_are_off(db, cfg, smsc):
    from ivr.errors import IvrError

    with pytest.raises(IvrError, match="channels.enabled"):
        sms.send_due(cfg, DAY, ManualClock(NOON))


def test_a_debtor_reached_by_a_call_is_left_to_the_queue_s_own_rules(db, cfg, smsc):
    import factories as f

    cfg = channel_cfg(cfg, smsc)
    hung_up = acc()
    f.attempt(None, hung_up, NOON - timedelta(days=1), "early_hangup")  # answered, did not hear: called again
    camp = start_campaign(cfg, DAY, ManualClock(datetime(2026, 11, 23, 16, 0, tzinfo=UTC)))
    assert QueueEntry.get(QueueEntry.campaign == camp, QueueEntry.account == hung_up).state == "waiting"
