"""Message templates: loading, and every problem reported at load time with file, line, key and placeholder."""

from pathlib import Path

import pytest

from ivr.speech.templates import KEYS, Optional, Slot, TemplateError, Text, load_all, load_messages, parse

REPO_PROMPTS = Path(__file__).resolve().parents[1] / "prompts"


def _write(tmp_path: Path, overrides: dict[str, str | None], lang: str = "uk") -> Path:
    texts = {key: "Текст." for key in KEYS} | {"debt": "Рахунок {account}, борг {amount}.",
                                                "greeting": "Вас турбує {company}.",
                                                "right_party": "Якщо ви {name}, натисніть 1.",
                                                "machine_message": "{company}, телефон {office_phone}."}
    texts.update(overrides)
    path = tmp_path / lang / "messages.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{k}: {v!r}\n" if v is not None else "" for k, v in texts.items()
                            if v is not None), encoding="utf-8")
    return path


def test_shipped_texts_load_in_all_languages():
    loaded = load_all(REPO_PROMPTS)
    assert sorted(loaded) == ["bg", "en", "ru", "uk"]
    for lang, msgs in loaded.items():
        assert set(msgs) == set(KEYS), lang
        assert {"account", "amount", "due_date", "office_phone"} <= msgs["debt"].placeholders, lang
        assert "name" in msgs["menu"].placeholders, lang


def test_unknown_placeholder_names_file_line_and_key(tmp_path):
    path = _write(tmp_path, {"debt": "Рахунок {account}, борг {amout}."})
    with pytest.raises(TemplateError) as err:
        load_messages(path, "uk")
    problem, also = err.value.problems
    assert "missing placeholder {amount}" in also  # the typo also means {amount} is not said
    assert str(path) in problem
    line = next(i for i, t in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if t.startswith("debt"))
    assert f"line {line}, key 'debt'" in problem
    assert "unknown placeholder {amout}" in problem
    assert "{amount}" in problem  # the hint lists what is allowed


def test_missing_required_placeholder(tmp_path):
    path = _write(tmp_path, {"debt": "Рахунок {account}, у вас борг."})
    with pytest.raises(TemplateError, match=r"key 'debt': missing placeholder \{amount\}"):
        load_messages(path, "uk")


def test_required_placeholder_inside_optional_part_is_not_enough(tmp_path):
    path = _write(tmp_path, {"debt": "Рахунок {account}.[ Борг {amount}.]"})
    with pytest.raises(TemplateError, match=r"missing placeholder \{amount\}"):
        load_messages(path, "uk")


def test_placeholder_allowed_elsewhere_is_unknown_in_a_short_prompt(tmp_path):
    path = _write(tmp_path, {"goodbye": "До побачення, борг {amount}."})
    with pytest.raises(TemplateError, match=r"key 'goodbye': unknown placeholder \{amount\}"):
        load_messages(path, "uk")


def test_missing_key_unknown_key_and_all_problems_at_once(tmp_path):
    path = _write(tmp_path, {"goodbye": None, "menu_typo": "Текст.", "invalid": "{два слова}"})
    with pytest.raises(TemplateError) as err:
        load_messages(path, "uk")
    text = "\n".join(err.value.problems)
    assert "key 'goodbye' is missing" in text
    assert "key 'menu_typo': unknown key" in text
    assert "key 'invalid'" in text and "not a name in braces" in text
    assert len(err.value.problems) == 3


def test_syntax_errors():
    assert parse("Борг {amount} [з {due_date}]")[1] == []
    assert parse("Борг {amount")[1] == ["stray '{': placeholders are written {name}"]
    assert parse("[a [b]]")[1][0].startswith("'[' inside an optional part")
    assert parse("a ] b")[1] == ["']' without a matching '['"]
    assert parse("[a {name}")[1] == ["'[' without a matching ']'"]


def test_parse_parts():
    parts, problems = parse("Борг {amount}.[ З {due_date}.] Дякуємо.")
    assert problems == []
    assert parts == (Text("Борг "), Slot("amount"), Text("."),
                     Optional((Text(" З "), Slot("due_date"), Text("."))), Text(" Дякуємо."))


def test_not_yaml_and_not_text(tmp_path):
    bad = tmp_path / "uk" / "messages.yaml"
    bad.parent.mkdir()
    bad.write_text("debt: 'unterminated\n", encoding="utf-8")
    with pytest.raises(TemplateError, match=r"messages.yaml line \d+: not valid YAML"):
        load_messages(bad, "uk")
    path = _write(tmp_path, {"goodbye": 5})
    with pytest.raises(TemplateError, match=r"key 'goodbye': expected a text, found 5"):
        load_messages(path, "uk")


def test_load_all_collects_problems_of_every_language(tmp_path):
    _write(tmp_path, {"debt": "{account}"}, "uk")
    _write(tmp_path, {"goodbye": "{amount}"}, "en")
    with pytest.raises(TemplateError) as err:
        load_all(tmp_path)
    text = "\n".join(err.value.problems)
    assert "uk/messages.yaml" in text and "en/messages.yaml" in text
    with pytest.raises(TemplateError, match="no <lang>/messages.yaml"):
        load_all(tmp_path / "empty")
