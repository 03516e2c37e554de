"""Money in words: every grammatical form per language and currency, with and without minor units."""

from decimal import Decimal

import pytest

from ivr.speech.money import amount_in_words, amount_segments, currency_word, to_cents
from ivr.speech.numbers import bg_cardinal, cardinal, cardinal_split

FORMS = [0, 1, 2, 4, 5, 11, 12, 21, 22, 25, 101, 1000, 1001, 2000, 5000, 1_000_000]

WHOLE = {
    ("uk", "UAH"): ["нуль гривень", "одна гривня", "дві гривні", "чотири гривні", "п'ять гривень",
                    "одинадцять гривень", "дванадцять гривень", "двадцять одна гривня", "двадцять дві гривні",
                    "двадцять п'ять гривень", "сто одна гривня", "одна тисяча гривень", "одна тисяча одна гривня",
                    "дві тисячі гривень", "п'ять тисяч гривень", "один мільйон гривень"],
    ("uk", "USD"): ["нуль доларів", "один долар", "два долари", "чотири долари", "п'ять доларів",
                    "одинадцять доларів", "дванадцять доларів", "двадцять один долар", "двадцять два долари",
                    "двадцять п'ять доларів", "сто один долар", "одна тисяча доларів", "одна тисяча один долар",
                    "дві тисячі доларів", "п'ять тисяч доларів", "один мільйон доларів"],
    ("ru", "RUB"): ["ноль рублей", "один рубль", "два рубля", "четыре рубля", "пять рублей",
                    "одиннадцать рублей", "двенадцать рублей", "двадцать один рубль", "двадцать два рубля",
                    "двадцать пять рублей", "сто один рубль", "одна тысяча рублей", "одна тысяча один рубль",
                    "две тысячи рублей", "пять тысяч рублей", "один миллион рублей"],
    ("ru", "UAH"): ["ноль гривен", "одна гривна", "две гривны", "четыре гривны", "пять гривен",
                    "одиннадцать гривен", "двенадцать гривен", "двадцать одна гривна", "двадцать две гривны",
                    "двадцать пять гривен", "сто одна гривна", "одна тысяча гривен", "одна тысяча одна гривна",
                    "две тысячи гривен", "пять тысяч гривен", "один миллион гривен"],
    ("bg", "BGN"): ["нула лева", "един лев", "два лева", "четири лева", "пет лева", "единадесет лева",
                    "дванадесет лева", "двадесет и един лева", "двадесет и два лева", "двадесет и пет лева",
                    "сто и един лева", "хиляда лева", "хиляда и един лева", "две хиляди лева", "пет хиляди лева",
                    "един милион лева"],
    ("bg", "EUR"): ["нула евро", "едно евро", "две евро", "четири евро", "пет евро", "единадесет евро",
                    "дванадесет евро", "двадесет и едно евро", "двадесет и две евро", "двадесет и пет евро",
                    "сто и едно евро", "хиляда евро", "хиляда и едно евро", "две хиляди евро", "пет хиляди евро",
                    "един милион евро"],
    ("en", "USD"): ["zero dollars", "one dollar", "two dollars", "four dollars", "five dollars", "eleven dollars",
                    "twelve dollars", "twenty-one dollars", "twenty-two dollars", "twenty-five dollars",
                    "one hundred and one dollars", "one thousand dollars", "one thousand and one dollars",
                    "two thousand dollars", "five thousand dollars", "one million dollars"],
}


@pytest.mark.parametrize(("lang", "currency"), list(WHOLE))
def test_whole_amounts_every_form(lang, currency):
    said = [amount_in_words(Decimal(n), currency, lang) for n in FORMS]
    assert said == WHOLE[(lang, currency)]


CASES = [
    # (lang, currency, amount, words)
    ("uk", "UAH", "0.01", "нуль гривень одна копійка"),
    ("uk", "UAH", "1.02", "одна гривня дві копійки"),
    ("uk", "UAH", "4.04", "чотири гривні чотири копійки"),
    ("uk", "UAH", "5.05", "п'ять гривень п'ять копійок"),
    ("uk", "UAH", "12.11", "дванадцять гривень одинадцять копійок"),
    ("uk", "UAH", "21.21", "двадцять одна гривня двадцять одна копійка"),
    ("uk", "UAH", "22.22", "двадцять дві гривні двадцять дві копійки"),
    ("uk", "UAH", "2000.25", "дві тисячі гривень двадцять п'ять копійок"),
    ("uk", "UAH", "1001.50", "одна тисяча одна гривня п'ятдесят копійок"),
    ("uk", "USD", "1.01", "один долар один цент"),
    ("uk", "USD", "2.02", "два долари два центи"),
    ("uk", "USD", "5.05", "п'ять доларів п'ять центів"),
    ("uk", "EUR", "1", "один євро"),
    ("uk", "EUR", "21.21", "двадцять один євро двадцять один цент"),
    ("uk", "EUR", "2.02", "два євро два центи"),
    ("uk", "RUB", "1.01", "один рубль одна копійка"),
    ("uk", "RUB", "2", "два рублі"),
    ("uk", "RUB", "5", "п'ять рублів"),
    ("uk", "BGN", "1", "один лев"),
    ("uk", "BGN", "2.02", "два леви дві стотинки"),
    ("uk", "BGN", "5.05", "п'ять левів п'ять стотинок"),
    ("ru", "RUB", "1.01", "один рубль одна копейка"),
    ("ru", "RUB", "2.02", "два рубля две копейки"),
    ("ru", "RUB", "5.05", "пять рублей пять копеек"),
    ("ru", "RUB", "11.11", "одиннадцать рублей одиннадцать копеек"),
    ("ru", "RUB", "21.21", "двадцать один рубль двадцать одна копейка"),
    ("ru", "RUB", "22.22", "двадцать два рубля двадцать две копейки"),
    ("ru", "UAH", "1.01", "одна гривна одна копейка"),
    ("ru", "UAH", "2001000", "два миллиона одна тысяча гривен"),
    ("ru", "BGN", "1", "один лев"),
    ("ru", "BGN", "2.02", "два лева две стотинки"),
    ("ru", "BGN", "5.05", "пять левов пять стотинок"),
    ("ru", "EUR", "2.02", "два евро два цента"),
    ("ru", "EUR", "5.05", "пять евро пять центов"),
    ("ru", "USD", "1.01", "один доллар один цент"),
    ("ru", "USD", "2", "два доллара"),
    ("ru", "USD", "5", "пять долларов"),
    ("bg", "BGN", "0.01", "нула лева и една стотинка"),
    ("bg", "BGN", "1.01", "един лев и една стотинка"),
    ("bg", "BGN", "2.02", "два лева и две стотинки"),
    ("bg", "BGN", "5.05", "пет лева и пет стотинки"),
    ("bg", "BGN", "12.11", "дванадесет лева и единадесет стотинки"),
    ("bg", "BGN", "21.21", "двадесет и един лева и двадесет и една стотинки"),
    ("bg", "BGN", "22.22", "двадесет и два лева и двадесет и две стотинки"),
    ("bg", "BGN", "1120", "хиляда сто и двадесет лева"),
    ("bg", "BGN", "2500", "две хиляди и петстотин лева"),
    ("bg", "BGN", "21000", "двадесет и една хиляди лева"),
    ("bg", "BGN", "1200000", "един милион и двеста хиляди лева"),
    ("bg", "EUR", "1.01", "едно евро и един цент"),
    ("bg", "EUR", "2.02", "две евро и два цента"),
    ("bg", "USD", "1", "един долар"),
    ("bg", "USD", "5.05", "пет долара и пет цента"),
    ("bg", "UAH", "1.01", "една гривна и една копейка"),
    ("bg", "UAH", "21", "двадесет и една гривни"),
    ("bg", "RUB", "2", "две рубли"),
    ("en", "USD", "1.01", "one dollar and one cent"),
    ("en", "USD", "2.02", "two dollars and two cents"),
    ("en", "USD", "0.05", "zero dollars and five cents"),
    ("en", "USD", "21.21", "twenty-one dollars and twenty-one cents"),
    ("en", "EUR", "1", "one euro"),
    ("en", "EUR", "2.02", "two euros and two cents"),
    ("en", "UAH", "1.01", "one hryvnia and one kopiyka"),
    ("en", "UAH", "2.02", "two hryvnias and two kopiykas"),
    ("en", "BGN", "1.01", "one lev and one stotinka"),
    ("en", "BGN", "2.02", "two leva and two stotinki"),
    ("en", "RUB", "2.02", "two roubles and two kopeks"),
]


@pytest.mark.parametrize(("lang", "currency", "amount", "words"), CASES)
def test_amounts_with_minor_units_and_other_currencies(lang, currency, amount, words):
    assert amount_in_words(Decimal(amount), currency, lang) == words


@pytest.mark.parametrize(("lang", "currency", "amount", "segments"), [
    ("uk", "UAH", "1001.05", ["одна тисяча", "одна гривня", "п'ять копійок"]),
    ("uk", "UAH", "2000", ["дві тисячі гривень"]),
    ("uk", "UAH", "22", ["двадцять дві гривні"]),
    ("bg", "BGN", "1001.20", ["хиляда", "и един лева", "и двадесет стотинки"]),
    ("bg", "BGN", "1120", ["хиляда", "сто и двадесет лева"]),
    ("en", "USD", "1001.01", ["one thousand", "and one dollars", "and one cent"]),
    ("ru", "RUB", "5000000.99", ["пять миллионов рублей", "девяносто девять копеек"]),
])
def test_segments_cut_where_agreement_stays_inside(lang, currency, amount, segments):
    # the currency word always travels with the number it agrees with
    assert amount_segments(Decimal(amount), currency, lang) == segments
    assert " ".join(segments) == amount_in_words(Decimal(amount), currency, lang)


def test_split_halves_rejoin_to_the_whole_number_in_every_language():
    for lang in ("uk", "ru", "bg", "en"):
        for n in [*FORMS, 1120, 2500, 21021, 999_999, 1_200_000, 2_001_001]:
            high, low = cardinal_split(n, lang, "f")
            assert " ".join(x for x in (high, low) if x) == cardinal(n, lang, "f"), (lang, n)


def test_russian_feminine_keeps_millions_masculine():
    # num2words(lang='ru', gender='f') says "одна миллион"; ours must not
    assert cardinal(1_000_000, "ru", "f") == "один миллион"
    assert cardinal(2_000_002, "ru", "f") == "два миллиона две"


def test_bulgarian_numbers_are_our_own():
    assert bg_cardinal(0) == "нула"
    assert bg_cardinal(115) == "сто и петнадесет"
    assert bg_cardinal(121, "f") == "сто двадесет и една"
    assert bg_cardinal(1_001_000) == "един милион и хиляда"
    assert bg_cardinal(2_000_005) == "два милиона и пет"
    assert bg_cardinal(3_456_789) == "три милиона четиристотин петдесет и шест хиляди седемстотин осемдесет и девет"


def test_rounding_and_bad_amounts():
    assert to_cents(Decimal("1.005")) == 101
    assert to_cents("12,5".replace(",", ".")) == 1250
    assert amount_in_words(Decimal("2.999"), "UAH", "uk") == "три гривні"
    with pytest.raises(ValueError, match="negative"):
        amount_in_words(Decimal("-1"), "UAH", "uk")
    with pytest.raises(ValueError, match="currency"):
        amount_in_words(Decimal("1"), "XYZ", "uk")
    with pytest.raises(ValueError, match="language"):
        amount_in_words(Decimal("1"), "UAH", "de")
    with pytest.raises(ValueError, match="not an amount"):
        to_cents("abc")


def test_currency_word_forms():
    assert [currency_word(n, "UAH", "uk") for n in (1, 3, 7, 11, 111, 112, 121)] == [
        "гривня", "гривні", "гривень", "гривень", "гривень", "гривень", "гривня"]
    assert currency_word(3, "BGN", "bg", minor=True) == "стотинки"
