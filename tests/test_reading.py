"""Natural reading whatever the engine: greeting by local time, company per language, phone in groups, account
digits in pairs or slower, a pause after the amount, none between "якщо" and the name."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from speech_fakes import FakeEngine

from ivr.config import ConfigError, parse_config
from ivr.speech import Speech
from ivr.speech.reading import account_groups, daypart, phone_groups
from ivr.speech.words import say

KYIV = ZoneInfo("Europe/Kyiv")


def _texts(speech: Speech, lang: str, key: str, **values) -> list[str]:
    return [p.text for p in speech.plan(lang, key, **values) if p.text is not None]


@pytest.mark.parametrize(("hhmm", "part", "uk"), [("09:30", "morning", "Доброго ранку!"), ("11:59", "morning", None),
                                                  ("12:00", "day", "Добрий день!"), ("17:59", "day", None),
                                                  ("18:00", "evening", "Добрий вечір!"), ("21:40", "evening", None)])
def test_the_greeting_follows_the_local_time(cfg, hhmm, part, uk):
    h, m = map(int, hhmm.split(":"))
    now = datetime(2026, 12, 4, h, m, tzinfo=KYIV)
    assert daypart(now, cfg.speech.day_from, cfg.speech.evening_from) == part
    if uk:
        speech = Speech(cfg, engine=FakeEngine(), now=lambda: now)
        assert _texts(speech, "uk", "greeting")[0] == uk


def test_the_clock_is_read_in_the_configured_time_zone(cfg):
    # 16:30 UTC is 18:30 in Kyiv: evening there
    speech = Speech(cfg, engine=FakeEngine(), now=lambda: datetime(2026, 12, 4, 16, 30, tzinfo=ZoneInfo("UTC"))
                    .astimezone(ZoneInfo(cfg.locale.timezone)))
    assert _texts(speech, "ru", "greeting")[0] == "Добрый вечер!"


def test_company_name_per_language(cfg):
    cfg = cfg.replace(company=dataclasses.replace(cfg.company, names={"uk": "Київводоканал", "bg": "ВиК София"}))
    speech = Speech(cfg, engine=FakeEngine())
    assert _texts(speech, "uk", "greeting", hello="day")[1] == "Вас турбує Київводоканал."
    assert _texts(speech, "bg", "greeting", hello="day")[1] == "Обажда се ВиК София."
    assert _texts(speech, "en", "greeting", hello="day")[1] == f"This is {cfg.company.name} calling."


@pytest.mark.parametrize(("number", "country", "groups", "lang", "said"), [
    ("+380441234567", "UA", "3-3-2-2", "uk", ["нуль сорок чотири", "сто двадцять три", "сорок п'ять", "шістдесят сім"]),
    ("0441234567", "UA", "3-3-2-2", "uk", ["нуль сорок чотири", "сто двадцять три", "сорок п'ять", "шістдесят сім"]),
    ("+380500012005", "UA", "3-3-2-2", "ru", ["ноль пятьдесят", "ноль ноль один", "двадцать", "ноль пять"]),
    ("+35921234567", "UA", "1-3-2-2", "uk", ["плюс три п'ять дев'ять", "два", "сто двадцять три", "сорок п'ять",
                                              "шістдесят сім"]),
    ("+12125551234", "US", "3-3-4", "en", ["two one two", "five five five", "one two three four"]),
])
def test_the_office_phone_in_groups(number, country, groups, lang, said):
    assert [say(g) for g in phone_groups(number, lang, country, groups)] == said


def test_leftover_digits_go_in_pairs():
    assert [say(g) for g in phone_groups("044123456789", "uk", "UA", "3-3-2-2")][-1] == "вісімдесят дев'ять"


def test_account_digits_in_pairs_or_one_by_one():
    assert [say(g) for g in account_groups("12-05-7", "uk", "pairs")] == ["дванадцять", "нуль п'ять", "сім"]
    assert [say(g) for g in account_groups("AB1205", "uk", "pairs")] == ["A", "B", "дванадцять", "нуль п'ять"]
    assert [say(g) for g in account_groups("1205", "bg", "digits")] == ["едно", "две", "нула", "пет"]


def test_account_reading_and_pauses_come_from_config(cfg):
    slow = cfg.replace(speech=dataclasses.replace(cfg.speech, account_reading="pairs", account_pause_ms=400,
                                                  amount_pause_ms=900))
    plan = Speech(slow, engine=FakeEngine()).plan("uk", "debt", account="120577", amount=Decimal("21"),
                                                  currency="UAH")
    texts = [p.text for p in plan]
    i = texts.index("дванадцять")
    assert texts[i:i + 5] == ["дванадцять", None, "нуль п'ять", None, "сімдесят сім"]
    assert plan[i + 1].pause_ms == plan[i + 3].pause_ms == 400
    j = texts.index("двадцять одна гривня")
    assert plan[j + 1].text is None and plan[j + 1].pause_ms == 900


def test_no_pause_between_if_and_the_name(cfg):
    plan = Speech(cfg, engine=FakeEngine()).plan("uk", "menu", name="Петренко Іван")
    texts = [p.text for p in plan]
    i = texts.index("Петренко")
    assert texts[i - 2] == "Якщо"  # no comma: the sentence runs on into the name
    assert plan[i - 1].pause_ms == 0 and plan[i + 1].pause_ms == 0
    right_party = Speech(cfg, engine=FakeEngine()).plan("uk", "right_party", name="Петренко Іван")
    assert right_party[0].text == "Якщо ви" and right_party[1].pause_ms == 0


@pytest.mark.parametrize(("section", "bad", "key"), [
    ({"speech": {"evening_from": "11:00"}}, "", "speech.evening_from"),
    ({"speech": {"day_from": "25:00"}}, "a time HH:MM", "speech.day_from"),
    ({"speech": {"phone_groups": "3-x"}}, "group sizes", "speech.phone_groups"),
    ({"speech": {"account_reading": "triples"}}, "digits, pairs", "speech.account_reading"),
    ({"speech": {"engines": {"uk": "human"}}}, "recorded", "speech.engines.uk"),
    ({"speech": {"engines": {"de": "recorded"}}}, "uk, ru, bg or en", "speech.engines.de"),
    ({"speech": {"fallback_engine": "recorded"}}, "espeak-ng, command, piper", "speech.fallback_engine"),
    ({"speech": {"engines": {"ru": "piper"}}}, "voice model", "speech.piper_models.ru"),
    ({"company": {"names": {"xx": "A"}}}, "uk, ru, bg or en", "company.names.xx"),
])
def test_voice_settings_are_validated_naming_the_key(section, bad, key):
    with pytest.raises(ConfigError) as err:
        parse_config(section, env={})
    assert any(p.startswith(key) and bad in p for p in err.value.problems), err.value.problems
