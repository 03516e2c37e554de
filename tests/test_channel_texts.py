"""Written texts (prompts/<lang>/channels.yaml): every language loads and renders, problems are named by file,
line and key, optional parts with an unknown value disappear, and `ivr prompts check` checks them too."""

from __future__ import annotations

import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from ivr.channels import segments, texts
from ivr.cli import main
from ivr.speech.templates import LANGS, TemplateError

PROMPTS = Path(__file__).resolve().parent.parent / "prompts"


def facts(lang="uk", link="", due=date(2026, 8, 23)):
    return texts.Facts("Петренко Іван", "1234567", Decimal("1021.5"), "UAH", due, "Водоканал", "0800 123 456",
                       link, lang)


@pytest.mark.parametrize("lang", LANGS)
def test_every_language_loads_and_renders_every_key(lang):
    tpls = texts.load(PROMPTS, lang)
    assert set(tpls) == set(texts.KEYS)
    for key, tpl in tpls.items():
        out = texts.render(tpl, facts(lang, link="https://pay.example.com/1234567"))
        assert "{" not in out and "[" not in out, key
        if key in ("sms", "email_body", "letter"):
            assert texts.format_amount(Decimal("1021.5"), "UAH", lang) in out


def test_sms_in_ukrainian_fits_the_cyrillic_limits_it_is_counted_by():
    out = texts.render(texts.load(PROMPTS, "uk")["sms"], facts())
    dc, units = segments.length_in_units(out)
    assert dc == segments.DC_UCS2
    assert segments.encode(out).count == (1 if units <= 70 else -(-units // 67))


def test_an_optional_part_with_an_unknown_value_is_left_out():
    tpl = texts.load(PROMPTS, "en")["sms"]
    with_link = texts.render(tpl, facts("en", link="https://pay.example.com/x"))
    without = texts.render(tpl, facts("en"))
    assert "Pay online: https://pay.example.com/x" in with_link
    assert "Pay online" not in without and "  " not in without
    letter = texts.render(texts.load(PROMPTS, "en")["letter"], facts("en", due=None))
    assert "overdue since" not in letter and "\n\n\n" not in letter


def test_amounts_are_written_in_the_language_s_form():
    assert texts.format_amount(Decimal("1234.5"), "UAH", "uk") == "1\u00a0234,50 UAH"
    assert texts.format_amount(Decimal("1234.5"), "USD", "en") == "1,234.50 USD"


def test_problems_name_the_file_line_and_key():
    raw = "sms: 'pay {amout}'\nemail_subject: x\nemail_body: '{account} {amount}'\nbogus: y\n"
    _, problems = texts.check_text(raw, "uk/channels.yaml", "uk")
    joined = "\n".join(problems)
    assert "uk/channels.yaml line 1, key 'sms': unknown placeholder {amout}" in joined
    assert "line 1, key 'sms': missing placeholder {amount}" in joined
    assert "line 4, key 'bogus': unknown key" in joined
    assert "key 'letter' is missing" in joined


def test_payment_link_escapes_the_account_number():
    assert texts.payment_link("https://pay.example.com/?a={account}", "12/34 5") == \
        "https://pay.example.com/?a=12%2F34%205"
    assert texts.payment_link("", "1") == ""


def test_prompts_check_reports_a_broken_channels_file(tmp_path, capsys):
    shutil.copytree(PROMPTS, tmp_path / "prompts")
    bad = tmp_path / "prompts" / "ru" / "channels.yaml"
    bad.write_text(bad.read_text(encoding="utf-8").replace("{amount}", "{sum}", 1), encoding="utf-8")
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump({"database": {"url": f"sqlite:///{tmp_path / 'x.sqlite3'}"},
                                   "logging": {"level": "WARNING"}}), encoding="utf-8")
    assert main(["--config", str(cfg), "prompts", "check"]) == 1
    err = capsys.readouterr().err
    assert "ru/channels.yaml line" in err and "key 'sms': unknown placeholder {sum}" in err


def test_a_missing_channels_file_is_named():
    with pytest.raises(TemplateError, match="channels.yaml: file not found"):
        texts.load(Path("/nonexistent"), "uk")
