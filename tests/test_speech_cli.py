"""`ivr prompts check | say | render` end to end (espeak-ng renders; a few short texts only)."""

from __future__ import annotations

import shutil
import wave
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from ivr.cli import main
from ivr.config import load_config
from ivr.ledger.db import connect
from ivr.ledger.models import Account, Balance, Phone
from ivr.speech import Speech

REPO_PROMPTS = Path(__file__).resolve().parents[1] / "prompts"
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    shutil.copytree(REPO_PROMPTS, tmp_path / "prompts")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({
        "database": {"url": f"sqlite:///{tmp_path / 'ivr.sqlite3'}"},
        "speech": {"cache_dir": "cache"},
        "logging": {"level": "WARNING"},
    }), encoding="utf-8")
    return path


def test_check_ok(config_file, capsys):
    assert main(["--config", str(config_file), "prompts", "check"]) == 0
    assert "message texts OK: bg, en, ru, uk" in capsys.readouterr().out


def test_check_names_the_problem(config_file, capsys):
    ru = config_file.parent / "prompts" / "ru" / "messages.yaml"
    ru.write_text(ru.read_text(encoding="utf-8").replace("{office_phone}", "{phone}", 1), encoding="utf-8")
    assert main(["--config", str(config_file), "prompts", "check"]) == 1
    err = capsys.readouterr().err
    assert "ru/messages.yaml line" in err and "unknown placeholder {phone}" in err
    assert "Traceback" not in err


@needs_espeak
def test_say_text_writes_telephone_wav(config_file, tmp_path, capsys):
    out = tmp_path / "out.wav"
    assert main(["--config", str(config_file), "prompts", "say", "Добрий вечір", "--lang", "uk", "-o", str(out)]) == 0
    with wave.open(str(out), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        assert w.getnframes() > 2000
    assert "8000 Hz mono" in capsys.readouterr().out


def test_say_needs_text_or_key(config_file, tmp_path, capsys):
    assert main(["--config", str(config_file), "prompts", "say", "-o", str(tmp_path / "x.wav")]) == 1
    assert "give a text" in capsys.readouterr().err
    assert main(["--config", str(config_file), "prompts", "say", "x", "-o", str(tmp_path / "no" / "x.wav")]) == 1
    assert "folder does not exist" in capsys.readouterr().err


@needs_espeak
def test_render_prepares_the_days_messages(config_file, capsys):
    cfg = load_config(config_file)
    db = connect(cfg.database.url, cfg.base_dir)
    acc = Account.create(number="31", name="Коваль Олена", language="uk")
    Phone.create(account=acc, position=0, raw="+380501234567", e164="+380501234567", valid=True)
    Balance.create(account=acc, as_of=date(2026, 11, 20), amount=Decimal("250.40"), currency="UAH",
                   overdue_since=date(2026, 9, 1))
    paid = Account.create(number="32", name="Без Боргу", language="uk")
    Balance.create(account=paid, as_of=date(2026, 11, 20), amount=Decimal("0"), currency="UAH")
    db.close()

    assert main(["--config", str(config_file), "prompts", "render", "--date", "2026-11-23"]) == 0
    out = capsys.readouterr().out
    assert "2026-11-23: 1 eligible accounts" in out
    first = int(out.split(" rendered now")[0].rsplit(" ", 1)[1])
    assert first > 10

    # the evening then finds everything in the cache: no engine run at all
    class Refuse:
        name = "espeak-ng"

        def synth(self, text, voice, out):
            raise AssertionError(f"rendered during the campaign: {text!r}")

    db = connect(cfg.database.url, cfg.base_dir)
    from ivr.speech.facts import facts_for_account
    speech = Speech(cfg, engine=Refuse())
    facts = facts_for_account(cfg, Account.get(Account.number == "31"), date(2026, 11, 23))
    assert speech.debt_message(facts).duration_ms > 5000
    speech.prompt("uk", "menu", name="Коваль Олена")
    speech.prompt("uk", "goodbye")
    db.close()

    assert main(["--config", str(config_file), "prompts", "render", "--date", "2026-11-23"]) == 0
    assert " 0 rendered now" in capsys.readouterr().out


def test_render_bad_date(config_file, capsys):
    assert main(["--config", str(config_file), "prompts", "render", "--date", "23.11.2026"]) == 2
    assert "expected YYYY-MM-DD" in capsys.readouterr().err
