"""The channel decision (ivr.channels.rules.decide) on histories built by hand: order, preferred channel, how
long each channel is tried, reached ends everything, channels not set up or without an address are skipped."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from types import SimpleNamespace

from ivr.channels.rules import History, decide, order_for
from ivr.config import Config

NOW = datetime(2026, 11, 23, 10, 0)
ALL = {"voice", "sms", "email", "letter"}


def cfg(**channels) -> Config:
    c = Config()
    return c.replace(channels=dataclasses.replace(c.channels, enabled=True, **channels))


def account(preferred="voice"):
    return SimpleNamespace(preferred_channel=preferred, email="")


def test_order_puts_the_preferred_channel_first_and_counts_repeats_once():
    assert order_for(cfg(), "sms") == ["sms", "voice", "letter"]
    assert order_for(cfg(), "voice") == ["voice", "sms", "letter"]
    assert order_for(cfg(order=["voice", "preferred", "letter"]), "email") == ["voice", "email", "letter"]


def test_untried_then_trying_then_exhausted_moves_to_the_next_channel():
    c = cfg()
    h = History()
    assert decide(c, account(), h, NOW, ALL).channel == "voice"
    h.calls = [NOW - timedelta(days=1)]
    assert (decide(c, account(), h, NOW, ALL).channel, decide(c, account(), h, NOW, ALL).state) == ("voice",
                                                                                                     "trying")
    h.calls = [NOW - timedelta(days=2, minutes=1)]  # try_days.voice = 2
    d = decide(c, account(), h, NOW, ALL)
    assert (d.channel, d.state) == ("sms", "untried")
    h.messages["sms"].append(("sent", NOW - timedelta(hours=2)))
    assert decide(c, account(), h, NOW, ALL).state == "trying"  # waiting for the receipt
    h.messages["sms"] = [("failed", NOW - timedelta(hours=2))]
    assert decide(c, account(), h, NOW, ALL).channel == "letter"
    h.messages["letter"].append(("printed", NOW))
    d = decide(c, account(), h, NOW, ALL)
    assert (d.channel, d.state, d.reason) == (None, "reached", "reached by letter")


def test_reached_by_any_channel_ends_the_walk():
    h = History(answered=True, calls=[NOW - timedelta(days=5)])
    assert decide(cfg(), account("sms"), h, NOW, ALL).channel == "sms"  # sms comes first and is untried
    h.messages["sms"].append(("delivered", NOW - timedelta(days=1)))
    assert decide(cfg(), account("sms"), h, NOW, ALL).state == "reached"
    assert decide(cfg(), account(), History(answered=True), NOW, ALL).reason == "reached by voice"


def test_channels_not_set_up_or_without_an_address_are_skipped():
    d = decide(cfg(), account("sms"), History(), NOW, {"voice", "letter"})
    assert d.channel == "voice" and "sms not set up" in d.reason
    d = decide(cfg(order=["preferred", "letter"]), account("email"), History(), NOW, ALL, {"email": False})
    assert d.channel == "letter" and "no email address" in d.reason


def test_every_channel_tried_leaves_nothing_to_do():
    h = History(calls=[NOW - timedelta(days=9)])
    h.messages["sms"].append(("expired", NOW - timedelta(days=3)))
    h.messages["letter"].append(("failed", NOW))
    d = decide(cfg(), account(), h, NOW, ALL)
    assert (d.channel, d.state) == (None, "exhausted")


def test_bad_channel_settings_are_named_by_key():
    import pytest

    from ivr.config import ConfigError, parse_config

    with pytest.raises(ConfigError) as err:
        parse_config({"channels": {"order": ["preferred", "fax"], "try_days": {"pigeon": 1},
                                   "payment_link": "http://pay.example.com/{account}"},
                      "sms": {"bind": "receiver", "source_addr": "a name far too long"},
                      "email": {"host": "smtp.example.com"},
                      "campaign": {"holdout_share": 0.9}}, env={})
    text = "\n".join(err.value.problems)
    for key in ("channels.order", "channels.try_days", "channels.payment_link", "sms.bind", "sms.source_addr",
                "email.from_address", "campaign.holdout_share"):
        assert key in text, key


def test_passwords_come_from_the_environment():
    from ivr.config import parse_config

    c = parse_config({}, env={"IVR_SMPP_PASSWORD": "from-env"})
    assert c.sms.password == "from-env"
