"""The Speech facade: segment plans, file_string playback, durations, reuse across debtors, facts from the ledger."""

from __future__ import annotations

import dataclasses
import wave
from datetime import date
from decimal import Decimal

import pytest
from speech_fakes import FakeEngine

from ivr.errors import IvrError
from ivr.ledger.models import Account, Balance, Payment
from ivr.speech import MessageFacts, Rendered, Speech
from ivr.speech.facts import _remaining_debt, facts_for_account, remaining_debt
from ivr.speech.speech import COMMA_MS, SENTENCE_MS, spell


def facts(**kw) -> MessageFacts:
    base = dict(name="Петренко Іван", account="1205", amount=Decimal("1021.05"), currency="UAH", overdue_months=3,
                due_date=date(2026, 8, 23), company="Водоканал", office_phone="+380441234567", lang="uk")
    return MessageFacts(**(base | kw))


@pytest.fixture
def engine():
    return FakeEngine()


@pytest.fixture
def speech(cfg, engine):
    return Speech(cfg, engine=engine)


def _frames(path) -> int:
    with wave.open(str(path), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        return w.getnframes()


def test_debt_message_is_a_file_string_of_segments_with_the_summed_duration(speech, cfg):
    r = speech.debt_message(facts())
    assert isinstance(r, Rendered)
    assert r.playback.startswith("file_string://")
    paths = r.playback.removeprefix("file_string://").split("!")
    assert paths == [str(p) for p in r.files]
    assert all(p.is_absolute() and p.exists() for p in r.files)
    assert str(r.files[0]).startswith(str(cfg.path(cfg.speech.cache_dir).resolve()))
    assert r.duration_ms == round(sum(_frames(p) for p in r.files) / 8)


def test_plan_cuts_where_grammar_stays_right(speech):
    plan = speech.plan("uk", "debt", **Speech.debt_values(facts()))
    texts = [p.text for p in plan if p.text is not None]
    assert texts[0] == "Нагадуємо, що на особовому рахунку,"  # continuing intonation before the digits
    assert texts[1:5] == ["один", "два", "нуль", "п'ять"]
    assert texts[5] == "є заборгованість за послуги:"
    assert texts[6:9] == ["одна тисяча", "двадцять одна гривня", "п'ять копійок"]
    # the date and the office phone are said inside their sentences (few distinct values), one segment each
    assert texts[9] == "Борг не сплачено з двадцять третього серпня дві тисячі двадцять шостого року."
    assert texts[10] == "Просимо сплатити його найближчим часом."
    # the office phone in groups, as people say it (speech.phone_groups 3-3-2-2, the national form)
    assert texts[-1] == ("Якщо у вас є запитання, зателефонуйте до нашого офісу за номером нуль сорок чотири, "
                         "сто двадцять три, сорок п'ять, шістдесят сім.")
    pauses = [p.pause_ms for p in plan if p.text is None]
    assert pauses[1:4] == [speech.cfg.speech.account_pause_ms] * 3
    assert pauses[8] == speech.cfg.speech.amount_pause_ms  # after "п'ять копійок"
    assert COMMA_MS in pauses and SENTENCE_MS in pauses
    assert all(a.text is None or b.text is None for a, b in zip(plan, plan[1:], strict=False))  # pause between


def test_second_debtor_renders_only_what_differs(speech, engine):
    speech.debt_message(facts())
    first = len(engine.calls)
    r2 = speech.debt_message(facts(name="Іваненко Петро", account="5021", amount=Decimal("1021.07")))
    new = engine.calls[first:]
    assert new == [("сім копійок", "uk")]  # same digits, same thousands and hryvnias, same sentences
    assert r2.duration_ms > 0
    speech.debt_message(facts(amount=Decimal("3021.05")))
    assert engine.calls[-1] == ("три тисячі", "uk")


def test_optional_sentence_is_left_out_without_a_due_date(speech):
    with_date = [p.text for p in speech.plan("uk", "debt", **Speech.debt_values(facts())) if p.text]
    without = [p.text for p in speech.plan("uk", "debt", **Speech.debt_values(facts(due_date=None))) if p.text]
    assert any("Борг не сплачено" in t for t in with_date)
    assert not any("Борг не сплачено" in t for t in without)
    assert without[9] == "Просимо сплатити його найближчим часом."


def test_missing_amount_is_an_error_missing_name_is_left_out(speech):
    with pytest.raises(IvrError, match=r"no value for \{amount\}"):
        speech.prompt("uk", "debt", account="1")
    menu = [p.text for p in speech.plan("uk", "menu") if p.text]
    assert not any("Петренко" in t for t in menu)
    named = [p.text for p in speech.plan("uk", "menu", name="Петренко Іван") if p.text]
    assert "Петренко" in named and "Іван" in named


def test_prompts_fill_company_and_phone_from_config(speech, cfg):
    texts = [p.text for p in speech.plan("en", "greeting", hello="evening") if p.text]
    assert texts == ["Good evening.", f"This is {cfg.company.name} calling."]
    r = speech.prompt("en", "goodbye")
    assert not r.playback.startswith("file_string://") and r.files == [r.files[0]]


def test_joined_mode_gives_one_file_of_the_same_length(cfg, engine):
    listed = Speech(cfg, engine=engine).debt_message(facts())
    joined = Speech(cfg, engine=engine, segment_mode="joined").debt_message(facts())
    assert len(joined.files) == 1 and joined.playback == str(joined.files[0])
    assert joined.duration_ms == listed.duration_ms == round(_frames(joined.files[0]) / 8)


def test_playback_dir_maps_the_cache_folder_for_freeswitch(cfg, engine):
    cfg2 = cfg.replace(speech=dataclasses.replace(cfg.speech, playback_dir="/var/lib/ivr/prompts"))
    r = Speech(cfg2, engine=engine).prompt("uk", "goodbye")
    assert r.playback.startswith("/var/lib/ivr/prompts/seg/")
    assert r.files[0].exists()


def test_cache_dir_unusable_in_a_file_list_is_refused(cfg, engine):
    cfg2 = cfg.replace(speech=dataclasses.replace(cfg.speech, playback_dir="/srv/a!b"))
    with pytest.raises(IvrError, match="'!'"):
        Speech(cfg2, engine=engine)


def test_unknown_language_or_key(speech):
    with pytest.raises(IvrError, match="no messages for language 'de'"):
        speech.prompt("de", "goodbye")
    with pytest.raises(IvrError, match="unknown message key 'bye'"):
        speech.prompt("uk", "bye")


def test_check_reports_broken_texts(cfg, engine, tmp_path):
    prompts = tmp_path / "myprompts"
    (prompts / "uk").mkdir(parents=True)
    good = Speech(cfg, engine=engine)
    (prompts / "uk" / "messages.yaml").write_text(
        (good.prompts_dir / "uk" / "messages.yaml").read_text(encoding="utf-8").replace("{amount}", "{amont}"),
        encoding="utf-8")
    cfg2 = cfg.replace(speech=dataclasses.replace(cfg.speech, prompts_dir=str(prompts)))
    with pytest.raises(IvrError, match=r"key 'debt': unknown placeholder \{amont\}"):
        Speech(cfg2, engine=engine)
    assert good.check() == ["bg", "en", "ru", "uk"]


def test_spell():
    assert spell("AB-0912", "uk") == ["A", "B", "нуль", "дев'ять", "один", "два"]
    assert spell("+359", "bg") == ["плюс", "три", "пет", "девет"]


def test_facts_from_the_ledger_say_what_is_owed_today(cfg, db):
    acc = Account.create(number="7001", name="Коваль Олена", language="")
    Balance.create(account=acc, as_of=date(2026, 11, 1), amount=Decimal("900.00"), currency="UAH",
                   overdue_since=date(2026, 8, 23))
    Payment.create(account=acc, reference="p1", amount=Decimal("300.50"), paid_on=date(2026, 11, 10))
    Payment.create(account=acc, reference="p0", amount=Decimal("50.00"), paid_on=date(2026, 10, 30))  # before
    Payment.create(account=acc, reference="p2", amount=Decimal("10.00"), paid_on=date(2026, 11, 30))  # later
    day = date(2026, 11, 23)
    assert remaining_debt(acc, day) == Decimal("599.50")
    assert _remaining_debt(acc, day) == Decimal("599.50")  # our fallback agrees with the ledger's rule
    f = facts_for_account(cfg, acc, day)
    assert (f.amount, f.currency, f.due_date, f.overdue_months, f.lang) == (
        Decimal("599.50"), "UAH", date(2026, 8, 23), 3, "uk")
    assert (f.company, f.office_phone) == (cfg.company.name, cfg.company.phone)


def test_menu_announces_the_opt_out_key_from_config_and_drops_it_when_off(cfg, engine):
    def menu(key: str, lang: str = "uk") -> str:
        c = cfg.replace(callflow=dataclasses.replace(cfg.callflow, optout_key=key))
        return " ".join(p.text for p in Speech(c, engine=engine).plan(lang, "menu", name="Петренко Іван") if p.text)

    assert "на цей номер, натисніть вісім." in menu("8")
    assert "to this number, press seven." in menu("7", "en")
    off = menu("")
    assert "дзвінки на цей номер" not in off and "натисніть 0" in off
    confirm = Speech(cfg, engine=engine).plan("en", "optout_confirmed")
    assert "We will not call this number again." in " ".join(p.text for p in confirm if p.text)
