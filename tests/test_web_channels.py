"""The console's Reports page shows outcomes per channel and the hold-out comparison (the effect), and says the
reached-vs-not-reached table is a description."""

from __future__ import annotations

from datetime import date, datetime

import factories as f
import pytest
from web_support import login

from ivr.ledger.models import Campaign, Holdout, Message

pytestmark = pytest.mark.usefixtures("fast_hashes")

DAY = date(2026, 11, 23)


def test_reports_page_shows_channels_and_the_effect(client, db):
    camp = f.campaign(DAY)
    contacted = [f.account() for _ in range(4)]
    held = [f.account() for _ in range(2)]
    for a in contacted:
        f.enqueue(camp, a)
    f.attempt(camp, contacted[0], datetime(2026, 11, 23, 16, 0), "heard")
    Message.create(account=contacted[1], campaign=camp, channel="sms", status="delivered")
    for a in held:
        Holdout.create(campaign=camp, account=a)
    Campaign.update(holdout_share=0.3, holdout_seed="x", holdout_count=2).where(Campaign.id == camp.id).execute()
    f.payment(contacted[0], "100", date(2026, 11, 24))
    login(client, "max")
    html = client.get(f"/reports?day={DAY}").get_data(as_text=True)
    assert 'id="channel-voice"' in html and 'id="channel-sms"' in html
    assert "Лише це порівняння вимірює ефект" in html  # the console speaks locale.language (uk)
    assert 'id="holdout-1"' in html and "+25.0 pp" in html
    assert "ця таблиця описує, а не вимірює ефект" in html


def test_reports_page_without_a_holdout_says_so(client, db):
    camp = f.campaign(DAY)
    f.enqueue(camp, f.account())
    login(client, "max")
    html = client.get(f"/reports?day={DAY}").get_data(as_text=True)
    assert "ефект виміряти неможливо" in html and 'id="holdout"' not in html


def test_the_debtors_page_lists_messages_masked_for_operators(client, db):
    acc = f.account("ACC-777", phone="+380671234567")
    camp = f.campaign(DAY)
    Message.create(account=acc, campaign=camp, channel="sms", status="delivered", address="+380671234567")
    Message.create(account=acc, campaign=camp, channel="email", status="bounced", address="olena@example.com",
                   error="550 no such user")
    login(client, "olga")  # an operator
    html = client.get("/accounts/ACC-777").get_data(as_text=True)
    assert 'id="account-messages"' in html and "550 no such user" in html
    assert "+380671234567" not in html and "olena@example.com" not in html and "o***@example.com" in html
