"""run_call against a scripted CallSession whose answers are real FreeSWITCH events (tests/fixtures)."""

from __future__ import annotations

import dataclasses
import logging

import pytest
from callflow_support import (
    MSG,
    PROMPTS,
    ExecResult,
    FakeSession,
    edited,
    msg_barge_in_key1,
    msg_early_hangup,
    msg_heard,
    one,
    pagd_choice,
    pagd_invalid_then_nothing,
    pagd_press,
    pagd_timeout,
    prompt_played,
    transfer_done,
)

from ivr.callflow import CallContext, run_call
from ivr.speech import Rendered

GREET = ("playback", prompt_played())
MENU_ARG = ("1 1 2 5000 # /var/lib/ivr/prompts/menu.wav /var/lib/ivr/prompts/invalid.wav ivr_choice [123980] 3000")


def make_ctx(cfg, accounts=("ACC-0001",), messages=None, **settings):
    return CallContext(accounts=list(accounts), lang="uk", settings=dataclasses.replace(cfg.callflow, **settings),
                       messages=messages if messages is not None else {a: MSG for a in accounts},
                       prompts=PROMPTS, right_party_name="Ivan Petrenko", attempt="42")


def played(session: FakeSession) -> list[str]:
    return [arg for app, arg in session.commands if app == "playback"]


def test_heard_and_no_key_ends_with_goodbye(cfg):
    s = FakeSession([GREET, ("playback", msg_heard()), ("play_and_get_digits", pagd_timeout()),
                     ("playback", prompt_played()), ("playback", prompt_played())])
    r = run_call(s, make_ctx(cfg))
    assert s.commands == [
        ("set", "playback_terminators=12"),
        ("playback", PROMPTS["greeting"].playback),
        ("playback", MSG.playback),
        ("play_and_get_digits", MENU_ARG),
        ("playback", PROMPTS["no_input"].playback),
        ("playback", PROMPTS["goodbye"].playback),
        ("hangup", "NORMAL_CLEARING"),
    ]
    assert r.outcome == "heard" and r.heard and r.heard_ms == 6000 and r.message_ms == 6000
    assert r.choice == "" and r.digits == "" and not r.caller_hung_up
    assert r.accounts["ACC-0001"].outcome == "heard"


def test_terminators_the_originate_already_set_are_not_set_again(cfg):
    """The dialer's originate puts playback_terminators on the channel: the flow sees it in the connect reply
    and starts with the greeting (one round trip less a call); a channel with other terminators still gets set."""
    s = FakeSession([GREET, ("playback", msg_heard()), ("play_and_get_digits", pagd_timeout()),
                     ("playback", prompt_played()), ("playback", prompt_played())])
    s.variables["playback_terminators"] = "12"
    run_call(s, make_ctx(cfg))
    assert s.commands[0] == ("playback", PROMPTS["greeting"].playback) and "set" not in s.apps
    other = FakeSession([GREET, ("playback", msg_heard()), ("play_and_get_digits", pagd_timeout()),
                         ("playback", prompt_played()), ("playback", prompt_played())])
    other.variables["playback_terminators"] = "*"
    run_call(other, make_ctx(cfg))
    assert other.commands[0] == ("set", "playback_terminators=12")


def test_early_hangup_stops_at_once(cfg):
    s = FakeSession([GREET, ("playback", msg_early_hangup())])
    r = run_call(s, make_ctx(cfg))
    assert s.apps == ["set", "playback", "playback"]  # greeting, message; no menu, no hangup on a dead channel
    assert r.outcome == "early_hangup" and not r.heard and r.caller_hung_up
    assert r.heard_ms == 1980 and r.message_ms == 6000
    assert "PLAYBACK ERROR" in r.detail


@pytest.mark.parametrize("target", ["paynow XML ivr_paynow", "8200 XML public"])
def test_press_1_transfers_to_the_configured_target_and_stops(cfg, target):
    s = FakeSession([GREET, ("playback", msg_heard()), ("play_and_get_digits", pagd_press("1")),
                     ("playback", prompt_played()), ("transfer", transfer_done())])
    r = run_call(s, make_ctx(cfg, paynow_transfer=target))
    assert s.commands[-2:] == [("playback", PROMPTS["pay_now"].playback), ("transfer", target)]
    assert "hangup" not in s.apps  # after a transfer the call belongs to the dialplan
    assert r.outcome == "pay_now" and r.transferred and r.choice == "1" and r.digits == "1"
    assert r.heard


def test_press_2_asks_for_a_callback(cfg):
    s = FakeSession([GREET, ("playback", msg_heard()), ("play_and_get_digits", pagd_press("2")),
                     ("playback", prompt_played())])
    r = run_call(s, make_ctx(cfg))
    assert played(s)[-1] == PROMPTS["callback_confirmed"].playback
    assert s.apps[-1] == "hangup"
    assert r.outcome == "callback" and r.callback and not r.transferred and r.digits == "2"


@pytest.mark.parametrize("digit,outcome,prompt", [("3", "already_paid", "already_paid"),
                                                  ("9", "wrong_number", "wrong_number")])
def test_press_3_and_9(cfg, digit, outcome, prompt):
    s = FakeSession([GREET, ("playback", msg_heard()), ("play_and_get_digits", pagd_press(digit)),
                     ("playback", prompt_played())])
    r = run_call(s, make_ctx(cfg))
    assert played(s)[-1] == PROMPTS[prompt].playback and s.apps[-1] == "hangup"
    assert r.outcome == outcome and r.accounts["ACC-0001"].outcome == outcome and not r.callback


def test_opt_out_key_confirms_and_is_its_own_outcome(cfg):
    s = FakeSession([GREET, ("playback", msg_heard()), ("playback", msg_heard()),
                     ("play_and_get_digits", pagd_press("8")), ("playback", prompt_played())])
    r = run_call(s, make_ctx(cfg, accounts=("ACC-0001", "ACC-0002")))
    assert played(s)[-1] == PROMPTS["optout_confirmed"].playback and s.apps[-1] == "hangup"
    assert r.outcome == "opted_out" and r.opted_out and not r.callback and r.choice == "8"
    assert {a.outcome for a in r.accounts.values()} == {"opted_out"}  # the number speaks for every account on it


def test_opt_out_key_follows_config_and_can_be_turned_off(cfg):
    s = FakeSession([GREET, ("playback", msg_heard()), ("play_and_get_digits", pagd_press("7")),
                     ("playback", prompt_played())])
    r = run_call(s, make_ctx(cfg, optout_key="7"))
    assert "[123970]" in s.commands[3][1] and r.outcome == "opted_out"
    assert played(s)[-1] == PROMPTS["optout_confirmed"].playback
    s = FakeSession([GREET, ("playback", msg_heard()), ("play_and_get_digits", pagd_timeout()),
                     ("playback", prompt_played()), ("playback", prompt_played())])
    r = run_call(s, make_ctx(cfg, optout_key=""))
    assert "[12390]" in s.commands[3][1] and r.outcome == "heard" and not r.opted_out


def test_menu_rounds_go_into_the_tries_argument(cfg):
    s = FakeSession([GREET, ("playback", msg_heard()), ("play_and_get_digits", pagd_timeout()),
                     ("playback", prompt_played()), ("playback", prompt_played())])
    run_call(s, make_ctx(cfg, menu_rounds=3, menu_timeout_ms=7000, digit_timeout_ms=2000))
    assert ("play_and_get_digits",
            "1 1 3 7000 # /var/lib/ivr/prompts/menu.wav /var/lib/ivr/prompts/invalid.wav ivr_choice [123980] 2000"
            ) in s.commands


def test_invalid_key_7_then_nothing_is_goodbye(cfg):
    s = FakeSession([GREET, ("playback", msg_heard()), ("play_and_get_digits", pagd_invalid_then_nothing()),
                     ("playback", prompt_played()), ("playback", prompt_played())])
    r = run_call(s, make_ctx(cfg))
    assert played(s)[-2:] == [PROMPTS["no_input"].playback, PROMPTS["goodbye"].playback]
    assert r.outcome == "heard" and r.choice == "" and r.digits == "7"


def test_0_replays_the_message_until_the_limit(cfg):
    s = FakeSession([GREET, ("playback", msg_heard()), ("play_and_get_digits", pagd_choice("0")),
                     ("playback", msg_heard()), ("play_and_get_digits", pagd_press("2")),
                     ("playback", prompt_played())])
    r = run_call(s, make_ctx(cfg, replays_max=1))
    pagd = [arg for app, arg in s.commands if app == "play_and_get_digits"]
    assert "[123980]" in pagd[0] and "[12398]" in pagd[1]  # no third hearing offered
    assert played(s)[1:3] == [MSG.playback, MSG.playback]
    assert r.replays == 1 and r.outcome == "callback" and r.digits == "02"


def test_no_replay_offered_when_replays_max_is_0(cfg):
    s = FakeSession([GREET, ("playback", msg_heard()), ("play_and_get_digits", pagd_timeout()),
                     ("playback", prompt_played()), ("playback", prompt_played())])
    run_call(s, make_ctx(cfg, replays_max=0))
    assert "[12398]" in s.commands[3][1]


def test_right_party_confirmed_then_message(cfg):
    s = FakeSession([GREET, ("play_and_get_digits", pagd_choice("1", var="ivr_party")), ("playback", msg_heard()),
                     ("play_and_get_digits", pagd_timeout()), ("playback", prompt_played()),
                     ("playback", prompt_played())])
    r = run_call(s, make_ctx(cfg, right_party_check=True))
    assert s.commands[2] == ("play_and_get_digits", "1 1 2 5000 # /var/lib/ivr/prompts/right_party.wav "
                                                    "/var/lib/ivr/prompts/invalid.wav ivr_party [19] 3000")
    assert r.right_party is True and r.outcome == "heard"


def test_right_party_not_confirmed_hears_no_amount(cfg):
    s = FakeSession([GREET, ("play_and_get_digits", pagd_timeout()), ("playback", prompt_played())])
    r = run_call(s, make_ctx(cfg, right_party_check=True))
    assert MSG.playback not in played(s)
    assert played(s) == [PROMPTS["greeting"].playback, PROMPTS["goodbye"].playback] and s.apps[-1] == "hangup"
    assert r.right_party is False and r.outcome == "not_heard" and r.message_ms == 0


def test_right_party_9_is_wrong_number(cfg):
    s = FakeSession([GREET, ("play_and_get_digits", pagd_choice("9", var="ivr_party")), ("playback", prompt_played())])
    r = run_call(s, make_ctx(cfg, right_party_check=True))
    assert MSG.playback not in played(s) and played(s)[-1] == PROMPTS["wrong_number"].playback
    assert r.outcome == "wrong_number" and r.right_party is False


def test_right_party_off_asks_nothing_first(cfg):
    s = FakeSession([GREET, ("playback", msg_heard()), ("play_and_get_digits", pagd_timeout()),
                     ("playback", prompt_played()), ("playback", prompt_played())])
    r = run_call(s, make_ctx(cfg, right_party_check=False))
    assert s.commands[2] == ("playback", MSG.playback) and r.right_party is None


def test_barge_in_key_1_during_the_message_goes_straight_to_pay_now(cfg):
    s = FakeSession([GREET, ("playback", msg_barge_in_key1()), ("playback", prompt_played()),
                     ("transfer", transfer_done())])
    r = run_call(s, make_ctx(cfg, barge_in=True))
    assert s.commands[0] == ("set", "playback_terminators=12")
    assert "play_and_get_digits" not in s.apps
    assert r.outcome == "pay_now" and r.heard and r.heard_ms == 2200 and r.digits == "1" and r.transferred


def test_barge_in_off_keeps_the_message_whole(cfg):
    # conn b of the same recording: default terminators, the 1 did not stop the message
    s = FakeSession([GREET, ("playback", one("outbound_dtmf_during_message", "playback", 0, conn="b")),
                     ("play_and_get_digits", pagd_timeout()), ("playback", prompt_played()),
                     ("playback", prompt_played())])
    r = run_call(s, make_ctx(cfg, barge_in=False))
    assert s.commands[0] == ("set", "playback_terminators=none")
    assert "play_and_get_digits" in s.apps  # the key during the message is not a choice
    assert r.outcome == "heard" and r.choice == "" and r.digits == "1"


def test_exception_in_speech_ends_the_call_gracefully(cfg, caplog):
    def broken(account):
        raise RuntimeError("espeak-ng crashed")

    s = FakeSession([GREET])
    with caplog.at_level(logging.ERROR, logger="ivr.callflow"):
        r = run_call(s, make_ctx(cfg, messages=broken))
    assert s.apps == ["set", "playback", "hangup"]
    assert r.outcome == "not_heard" and "espeak-ng crashed" in r.detail
    assert any("call=f00d-0001" in rec.getMessage() and "attempt=42" in rec.getMessage() for rec in caplog.records)


def test_exception_in_the_menu_keeps_what_was_known(cfg):
    s = FakeSession([GREET, ("playback", msg_heard()), ("play_and_get_digits", TimeoutError("no reply in 37 s"))])
    r = run_call(s, make_ctx(cfg))
    assert s.apps[-1] == "hangup"
    assert r.outcome == "heard" and r.heard and "TimeoutError" in r.detail


def test_caller_hangs_up_in_the_menu(cfg):
    gone = ExecResult(app="play_and_get_digits", response="", complete=None, playback_stop=None,
                      hangup_seen_before_stop=True, hungup=True, dtmf=[])
    s = FakeSession([GREET, ("playback", msg_heard()), ("play_and_get_digits", gone)])
    r = run_call(s, make_ctx(cfg))
    assert "hangup" not in s.apps
    assert r.outcome == "heard" and r.caller_hung_up


def test_caller_hangs_up_during_the_callback_confirmation(cfg):
    s = FakeSession([GREET, ("playback", msg_heard()), ("play_and_get_digits", pagd_press("2")),
                     ("playback", msg_early_hangup())])
    r = run_call(s, make_ctx(cfg))
    assert "hangup" not in s.apps and r.outcome == "callback" and r.callback


def test_two_accounts_on_one_number_are_judged_each(cfg):
    s = FakeSession([GREET, ("playback", msg_heard()), ("playback", msg_early_hangup())])
    r = run_call(s, make_ctx(cfg, accounts=("ACC-1", "ACC-2")))
    assert r.accounts["ACC-1"].outcome == "heard" and r.accounts["ACC-2"].outcome == "early_hangup"
    assert r.outcome == "early_hangup" and not r.heard  # one unheard message: call again
    assert r.message_ms == 12000 and r.heard_ms == 6000 + 1980


def test_two_accounts_choice_applies_to_both(cfg):
    s = FakeSession([GREET, ("playback", msg_heard()), ("playback", msg_heard()),
                     ("play_and_get_digits", pagd_press("3")), ("playback", prompt_played())])
    r = run_call(s, make_ctx(cfg, accounts=("ACC-1", "ACC-2")))
    assert {a.outcome for a in r.accounts.values()} == {"already_paid"} and r.outcome == "already_paid"
    assert r.heard


def test_missing_message_file_ends_the_call_not_heard(cfg):
    s = FakeSession([GREET, ("playback", one("outbound_file_not_found", "playback", 0))])
    r = run_call(s, make_ctx(cfg))
    assert s.apps == ["set", "playback", "playback", "hangup"]
    assert r.outcome == "not_heard" and "FILE NOT FOUND" in r.detail


def test_unsafe_playback_path_never_reaches_the_session(cfg):
    evil = Rendered(playback="/tmp/a.wav\nsendmsg\ncall-command: hangup", duration_ms=6000)
    s = FakeSession([GREET])
    r = run_call(s, make_ctx(cfg, messages={"ACC-0001": evil}))
    assert all("\n" not in arg for _, arg in s.commands)
    assert s.apps == ["set", "playback", "hangup"] and "unsafe" in r.detail


def test_unsafe_transfer_target_is_refused(cfg):
    s = FakeSession([GREET, ("playback", msg_heard()), ("play_and_get_digits", pagd_press("1")),
                     ("playback", prompt_played())])
    ctx = make_ctx(cfg)
    ctx.paynow_transfer = "paynow XML default\ncall-command: hangup"
    r = run_call(s, ctx)
    assert "transfer" not in s.apps and s.apps[-1] == "hangup"
    assert r.outcome == "pay_now" and not r.transferred and "transfer target" in r.detail


def test_a_stale_choice_variable_without_success_is_no_choice(cfg):
    # variables persist on the channel: a failed read may still carry an earlier ivr_choice
    real = pagd_press("1")
    stale = ExecResult(app=real.app, response=real.response,
                       complete=edited(real.complete, variable_read_result="failure"),
                       playback_stop=real.playback_stop, hangup_seen_before_stop=False, hungup=False, dtmf=[])
    s = FakeSession([GREET, ("playback", msg_heard()), ("play_and_get_digits", stale),
                     ("playback", prompt_played()), ("playback", prompt_played())])
    r = run_call(s, make_ctx(cfg))
    assert "transfer" not in s.apps and r.choice == "" and r.outcome == "heard"


class RecordingSpeech:
    def __init__(self):
        self.calls = []

    def prompt(self, lang, key, **values):
        self.calls.append(("prompt", lang, key, values))
        return Rendered(playback=f"/cache/{lang}/{key}.wav", duration_ms=1000)

    def debt_message(self, facts):
        self.calls.append(("debt", facts.account))
        return Rendered(playback=f"/cache/{facts.account}.wav", duration_ms=7000)


def test_context_from_speech_renders_lazily_and_once(cfg):
    from datetime import date
    from decimal import Decimal

    from ivr.speech import MessageFacts

    facts = [MessageFacts(name="Іван Петренко", account=acc, amount=Decimal("512.40"), currency="UAH",
                          overdue_months=2, due_date=date(2026, 10, 1), company="City Water",
                          office_phone="+380441234567", lang="uk") for acc in ("A-1", "A-2")]
    speech = RecordingSpeech()
    ctx = CallContext.from_speech(cfg, speech, facts, attempt="7")
    assert speech.calls == [] and ctx.accounts == ["A-1", "A-2"] and ctx.lang == "uk"
    assert ctx.message("A-2").playback == "/cache/A-2.wav"
    ctx.message("A-2")
    assert speech.calls == [("debt", "A-2")]
    assert ctx.prompt("menu").playback == "/cache/uk/menu.wav"
    assert speech.calls[-1] == ("prompt", "uk", "menu", {"name": "Іван Петренко"})
    assert ctx.transfer_target == cfg.callflow.paynow_transfer


def _facts(name, account="A-1", lang="uk"):
    from datetime import date
    from decimal import Decimal

    from ivr.speech import MessageFacts

    return MessageFacts(name=name, account=account, amount=Decimal("100.00"), currency="UAH", overdue_months=1,
                        due_date=date(2026, 10, 1), company="City Water", office_phone="+380441234567", lang=lang)


def test_shared_prompts_never_carry_another_debtors_name(cfg, monkeypatch):
    from ivr.speech import Speech

    speech = Speech(cfg)  # the shipped texts; only plan() runs, nothing is rendered
    asked = []

    def fake_prompt(lang, key, **values):
        asked.append(key)
        return Rendered(playback=f"/c/{lang}/{key}/{values.get('name', '').replace(' ', '_')}.wav", duration_ms=900)

    monkeypatch.setattr(speech, "prompt", fake_prompt)
    shared: dict = {}
    first = CallContext.from_speech(cfg, speech, [_facts("Іван Петренко")], shared=shared)
    second = CallContext.from_speech(cfg, speech, [_facts("Олена Коваль", "A-2")], shared=shared)
    assert "Іван_Петренко" in first.prompt("menu").playback  # the shipped menu says the name
    assert "Олена_Коваль" in second.prompt("menu").playback
    assert first.prompt("goodbye") is second.prompt("goodbye")  # no name in it: rendered once per process
    assert asked.count("goodbye") == 1 and asked.count("menu") == 2


def test_a_shared_greeting_follows_the_time_of_day(cfg, monkeypatch):
    """A dialer started at 17:55 must not keep saying "good day" after 18:00: the daypart is part of what is shared."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from ivr.speech import Speech

    now = [datetime(2026, 11, 23, 17, 55, tzinfo=ZoneInfo("Europe/Kyiv"))]
    speech = Speech(cfg, now=lambda: now[0])
    asked = []

    def fake_prompt(lang, key, **values):
        asked.append((key, speech.daypart_now()))
        return Rendered(playback=f"/c/{lang}/{key}/{speech.daypart_now()}.wav", duration_ms=900)

    monkeypatch.setattr(speech, "prompt", fake_prompt)
    shared: dict = {}
    before = CallContext.from_speech(cfg, speech, [_facts("Іван Петренко")], shared=shared).prompt("greeting")
    again = CallContext.from_speech(cfg, speech, [_facts("Олена Коваль", "A-2")], shared=shared).prompt("greeting")
    now[0] = datetime(2026, 11, 23, 19, 30, tzinfo=ZoneInfo("Europe/Kyiv"))
    after = CallContext.from_speech(cfg, speech, [_facts("Олена Коваль", "A-2")], shared=shared).prompt("greeting")
    assert before is again and before.playback != after.playback
    assert [part for _, part in asked] == ["day", "evening"]  # rendered once per daypart
