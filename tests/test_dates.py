"""Dates and month counts said naturally per language."""

from datetime import date

import pytest

from ivr.speech.dates import say_date, say_months


@pytest.mark.parametrize(("lang", "d", "said"), [
    ("uk", date(2026, 11, 23), "двадцять третього листопада дві тисячі двадцять шостого року"),
    ("uk", date(2000, 1, 1), "першого січня двохтисячного року"),
    ("uk", date(2026, 3, 31), "тридцять першого березня дві тисячі двадцять шостого року"),
    ("uk", date(1999, 12, 2), "другого грудня тисяча дев'ятсот дев'яносто дев'ятого року"),
    ("ru", date(2026, 11, 23), "двадцать третьего ноября две тысячи двадцать шестого года"),
    ("ru", date(2020, 2, 20), "двадцатого февраля две тысячи двадцатого года"),
    ("bg", date(2026, 11, 23), "двадесет и трети ноември две хиляди двадесет и шеста година"),
    ("bg", date(2006, 3, 31), "тридесет и първи март две хиляди и шеста година"),
    ("bg", date(1999, 12, 2), "втори декември хиляда деветстотин деветдесет и девета година"),
    ("en", date(2026, 11, 23), "November twenty-third, twenty twenty-six"),
    ("en", date(2026, 7, 1), "July first, twenty twenty-six"),
])
def test_say_date(lang, d, said):
    assert say_date(d, lang) == said


@pytest.mark.parametrize(("lang", "counts"), [
    ("uk", ["один місяць", "два місяці", "п'ять місяців", "одинадцять місяців", "двадцять один місяць"]),
    ("ru", ["один месяц", "два месяца", "пять месяцев", "одиннадцать месяцев", "двадцать один месяц"]),
    ("bg", ["един месец", "два месеца", "пет месеца", "единадесет месеца", "двадесет и един месеца"]),
    ("en", ["one month", "two months", "five months", "eleven months", "twenty-one months"]),
])
def test_say_months(lang, counts):
    assert [say_months(n, lang) for n in (1, 2, 5, 11, 21)] == counts


def test_unknown_language():
    with pytest.raises(ValueError, match="language"):
        say_date(date(2026, 1, 1), "de")
