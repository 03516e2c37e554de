"""SMS text -> SMPP parts: the alphabet chosen, 70/67 UCS-2 and 160/153 GSM-7 limits, the concatenation header,
and characters never split across parts."""

from __future__ import annotations

import pytest

from ivr.channels import segments
from ivr.channels.segments import DC_GSM7, DC_UCS2, ESM_UDHI, decode, encode

CYR = "Борг"  # 4 Cyrillic characters


def texts_of(enc):
    return [decode(p, enc.data_coding, enc.esm_class) for p in enc.parts]


def test_latin_only_is_gsm7_160_single_153_per_part():
    one = encode("a" * 160)
    assert (one.data_coding, one.count, one.esm_class) == (DC_GSM7, 1, 0)
    two = encode("a" * 161, reference=9)
    assert two.count == 2 and two.esm_class == ESM_UDHI
    assert [len(p) - 6 for p in two.parts] == [153, 8]
    assert [p[:6] for p in two.parts] == [bytes([5, 0, 3, 9, 2, 1]), bytes([5, 0, 3, 9, 2, 2])]


def test_cyrillic_is_ucs2_70_single_67_per_part():
    single = encode("Б" * 70)
    assert (single.data_coding, single.count) == (DC_UCS2, 1)
    assert single.parts[0] == ("Б" * 70).encode("utf-16-be")
    multi = encode("Б" * 71)
    assert multi.count == 2
    assert [(len(p) - 6) // 2 for p in multi.parts] == [67, 4]
    assert "".join(t for _, t in texts_of(multi)) == "Б" * 71
    assert [u for u, _ in texts_of(multi)] == [(0, 2, 1), (0, 2, 2)]


def test_one_cyrillic_letter_in_a_latin_text_makes_it_ucs2():
    assert encode("Pay now, " + CYR).data_coding == DC_UCS2
    assert segments.length_in_units("Pay now, " + CYR) == (DC_UCS2, 13)


def test_an_extension_character_counts_twice_and_is_never_split():
    assert segments.length_in_units("€[]") == (DC_GSM7, 6)
    assert encode("€" * 80).count == 1  # 160 septets
    enc = encode("a" * 152 + "€" + "b" * 10)  # 165 septets; the € would straddle septets 153/154
    assert enc.count == 2
    first, second = texts_of(enc)
    assert first[1] == "a" * 152 and second[1] == "€" + "b" * 10
    assert all(len(p) - 6 <= 153 for p in enc.parts)


def test_a_character_outside_the_bmp_is_never_split():
    text = "Б" * 66 + "😀" + "Б" * 10  # the emoji takes UTF-16 units 67 and 68
    enc = encode(text)
    assert [t for _, t in texts_of(enc)] == ["Б" * 66, "😀" + "Б" * 10]


def test_gsm7_round_trip_of_the_whole_alphabet():
    text = segments.GSM_BASIC.replace("\x1b", "") + "".join(segments.GSM_EXTENSION)
    enc = encode(text)
    assert enc.data_coding == DC_GSM7
    assert "".join(t for _, t in texts_of(enc)) == text


def test_too_long_is_refused():
    with pytest.raises(segments.SmsTooLong):
        encode("Б" * 67 * 256)
