"""Editing the message texts from the console: check a draft, save it with its history, hear it for a real account.

`check_text` applies exactly the validation of `ivr prompts check` (templates.load_messages) to a draft and
returns its problems with line numbers. `save_text` refuses a draft with problems, keeps the file it replaces
under `<prompts_dir>/<lang>/history/` (named by time and author), writes the new one atomically and records
`prompts.save` in the audit log. `preview_wav` renders a message (or the start of a whole call: greeting,
message, menu) for a real account into one WAV for the browser.
"""

from __future__ import annotations

import os
import re
import tempfile
import wave
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from ivr.config import Config
from ivr.errors import IvrError
from ivr.ledger import audit
from ivr.ledger.models import utcnow
from ivr.speech import templates

WHOLE_CALL = ("greeting", "debt", "menu")
MAX_TEXT = 200_000
# the files staff edit per language: messages.yaml (debt calls and the call's prompts) and the campaign kinds'
# texts (prompts/<lang>/<kind>.yaml, ivr.campaign.kinds)
FILES = ("messages", *templates.KIND_KEYS)


@dataclass(frozen=True)
class Problem:
    line: int | None  # 1-based line of the draft, when known
    text: str


@dataclass(frozen=True)
class HistoryEntry:
    name: str
    at: datetime  # naive UTC
    actor: str


def prompts_dir(cfg: Config) -> Path:
    from ivr.speech.speech import Speech
    return Speech._prompts_dir(cfg)


def _path(cfg: Config, lang: str, file: str) -> Path:
    _check_lang(lang)
    if file not in FILES:
        raise IvrError(f"text file {file!r} is not one of {', '.join(FILES)}")
    if file == "messages":
        return templates.messages_path(prompts_dir(cfg), lang)
    return templates.kind_path(prompts_dir(cfg), lang, file)


def read_text(cfg: Config, lang: str, file: str = "messages") -> str:
    path = _path(cfg, lang, file)
    return path.read_text(encoding="utf-8") if path.exists() else ""


def _check_lang(lang: str) -> None:
    if lang not in templates.LANGS:
        raise IvrError(f"language {lang!r} is not one of {', '.join(templates.LANGS)}")


def check_text(text: str, lang: str, file: str = "messages") -> list[Problem]:
    """The problems `ivr prompts check` would report for this draft of <lang>/<file>.yaml (none = fine)."""
    _check_lang(lang)
    if file not in FILES:
        raise IvrError(f"text file {file!r} is not one of {', '.join(FILES)}")
    if len(text) > MAX_TEXT:
        return [Problem(None, f"the text is too long ({len(text)} characters; at most {MAX_TEXT})")]
    out = []
    name = f"{file}.yaml"
    # line ends as the saved file will be read back (a browser's textarea sends CR LF)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    keys = None if file == "messages" else templates.KIND_KEYS[file]
    for p in templates.check_messages(text, name, lang, keys)[1]:
        m = re.search(re.escape(name) + r" line (\d+)", p)
        out.append(Problem(int(m.group(1)) if m else None, p))
    return out


def _history_dir(cfg: Config, lang: str) -> Path:
    return prompts_dir(cfg) / lang / "history"


def save_text(cfg: Config, lang: str, text: str, actor: str, file: str = "messages") -> Path:
    """Validate and save a new <lang>/<file>.yaml; the previous one goes to the history. Audited."""
    problems = check_text(text, lang, file)
    if problems:
        raise templates.TemplateError([p.text for p in problems])
    path = _path(cfg, lang, file)
    now = utcnow()
    kept = ""
    if path.exists():
        if path.read_text(encoding="utf-8") == text:
            return path  # nothing changed: no history line, no audit line
        hist = _history_dir(cfg, lang)
        hist.mkdir(parents=True, exist_ok=True)
        who = re.sub(r"[^A-Za-z0-9_.@-]+", "_", actor)[:64] or "unknown"
        kept = f"{file}.{now:%Y%m%dT%H%M%S%f}.{who}.yaml"
        (hist / kept).write_bytes(path.read_bytes())
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{file}.", suffix=".yaml")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)  # a dialer reading the file sees the old text or the new, never half of one
    audit.record(actor, "prompts.save", lang if file == "messages" else f"{lang}/{file}", {"previous": kept})
    return path


def history(cfg: Config, lang: str, limit: int = 50, file: str = "messages") -> list[HistoryEntry]:
    """Earlier versions of <lang>/<file>.yaml, newest first."""
    _path(cfg, lang, file)
    out = []
    folder = _history_dir(cfg, lang)
    if not folder.exists():
        return out
    for p in folder.glob(f"{file}.*.yaml"):
        m = re.fullmatch(re.escape(file) + r"\.(\d{8}T\d{6})\d*\.(.+)\.yaml", p.name)
        if m:
            out.append(HistoryEntry(p.name, datetime.strptime(m.group(1), "%Y%m%dT%H%M%S"), m.group(2)))
    return sorted(out, key=lambda e: e.name, reverse=True)[:limit]


def preview_wav(cfg: Config, account_number: str, key: str, day: date, out: Path) -> Path:
    """Render message `key` (or 'call': greeting, message and menu in a row) as `account_number` would hear it
    on `day`, into one 8 kHz mono WAV at `out`."""
    from ivr.ledger.models import Account
    from ivr.speech.facts import facts_for_account
    from ivr.speech.speech import Speech

    keys = WHOLE_CALL if key == "call" else (key,)
    if any(k not in templates.KEYS for k in keys):
        raise IvrError(f"message {key!r} is not one of call, {', '.join(templates.KEYS)}")
    account = Account.by_number(account_number.strip())
    speech = Speech(cfg, segment_mode="joined")
    facts = facts_for_account(cfg, account, day)
    values = speech.debt_values(facts)
    files = [f for k in keys for f in speech.prompt(facts.lang, k, **values).files]
    with wave.open(str(out), "wb") as dst:
        for i, f in enumerate(files):
            with wave.open(str(f), "rb") as src:
                if i == 0:
                    dst.setparams(src.getparams())
                dst.writeframes(src.readframes(src.getnframes()))
    return out
