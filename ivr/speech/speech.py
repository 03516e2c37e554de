"""The Speech facade: from a message key and its values to what the `playback` application plays.

A message is cut into segments where the grammar allows (see `plan`): the fixed text between placeholders is
rendered once for every debtor; each placeholder value is rendered per distinct value (the amount as thousands |
rest + currency word | minor units + their word, so agreement never crosses a cut; the account number digit by
digit; a name word by word). Segments are joined by fixed pauses chosen by the punctuation at the join. The
result is `file_string://a.wav!b.wav!…` (FreeSWITCH plays it as one file: one PLAYBACK_START/STOP, offsets
against the total length), or one concatenated WAV per message when speech.segment_mode is `joined`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

from ivr.config import Config
from ivr.errors import IvrError
from ivr.speech import templates, tts
from ivr.speech.cache import PromptCache, Segment
from ivr.speech.dates import say_date, say_months
from ivr.speech.facts import MessageFacts
from ivr.speech.money import amount_segments, currency_name
from ivr.speech.templates import Optional, Slot, Template, Text

log = logging.getLogger(__name__)

REPO_PROMPTS = Path(__file__).resolve().parents[2] / "prompts"

# Pauses at the joins, ms. Every segment is trimmed of its own silence, so these are the whole gap.
WORD_MS = 70
DIGIT_MS = 140
COMMA_MS = 240
SENTENCE_MS = 480

_DIGITS = {
    "uk": ["нуль", "один", "два", "три", "чотири", "п'ять", "шість", "сім", "вісім", "дев'ять"],
    "ru": ["ноль", "один", "два", "три", "четыре", "пять", "шесть", "семь", "восемь", "девять"],
    "bg": ["нула", "едно", "две", "три", "четири", "пет", "шест", "седем", "осем", "девет"],
    "en": ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"],
}
_PLUS = {"uk": "плюс", "ru": "плюс", "bg": "плюс", "en": "plus"}
# Placeholders with few distinct values across a campaign: said inside their sentence, not as separate segments.
INLINE = frozenset({"due_date", "overdue_months", "company", "office_phone", "currency", "optout_key"})
_SENTENCE_END = re.compile(r"[.!?…]")
_SENTENCES = re.compile(r"(?<=[.!?…])\s+")
_LEAD = re.compile(r"^[\s.,;:!?…—–-]+")
_TRAIL = re.compile(r"[.,;:!?…—–-]+$")


@dataclass(frozen=True)
class Rendered:
    """What the call flow plays: `playback` (one absolute WAV path or file_string://…), its total length and the
    files it is made of."""

    playback: str
    duration_ms: int
    files: list[Path] = field(default_factory=list)


@dataclass(frozen=True)
class Piece:
    """One step of a message plan: a text to render, or a pause (text None)."""

    text: str | None
    pause_ms: int = 0


def _punct_strength(punct: str) -> int:
    if _SENTENCE_END.search(punct):
        return SENTENCE_MS
    if punct.strip():
        return COMMA_MS
    return WORD_MS


def _present(value: object) -> bool:
    return value is not None and value != ""


def spell(text: str, lang: str) -> list[str]:
    """Account numbers character by character: digits as words, letters as themselves, separators dropped."""
    out = []
    for ch in text:
        if ch.isdigit() and ch.isascii():
            out.append(_DIGITS[lang][int(ch)])
        elif ch.isalpha():
            out.append(ch.upper())
        elif ch == "+":
            out.append(_PLUS[lang])
    return out


class Speech:
    def __init__(self, cfg: Config, engine: tts.Engine | None = None, segment_mode: str | None = None) -> None:
        self.cfg = cfg
        self.prompts_dir = self._prompts_dir(cfg)
        self.engine = engine or tts.make_engine(cfg)
        self.segment_mode = segment_mode or getattr(cfg.speech, "segment_mode", "list")
        root = cfg.path(cfg.speech.cache_dir).resolve()
        seen_as = cfg.speech.playback_dir or str(root)
        if re.search(r"[!\r\n\s]", seen_as):
            raise IvrError(f"speech.cache_dir/playback_dir {seen_as!r}: FreeSWITCH file lists cannot carry "
                           "'!', spaces or line breaks in paths; choose another folder")
        self.cache = PromptCache(root, cfg.speech.cache_max_mb * 1024 * 1024, self.engine)
        self._root = str(root)
        self._seen_as = seen_as.rstrip("/")
        self._templates = templates.load_all(self.prompts_dir)
        self._warned: set[str] = set()
        self._inline_memo: dict[tuple, str] = {}  # few distinct values (dates, phone): words computed once

    @staticmethod
    def _prompts_dir(cfg: Config) -> Path:
        p = cfg.path(cfg.speech.prompts_dir)
        if not p.exists() and cfg.speech.prompts_dir == "prompts" and REPO_PROMPTS.exists():
            return REPO_PROMPTS  # the texts shipped with the code, when config.yaml lives elsewhere
        return p

    # --- contract -------------------------------------------------------------------------------------------

    def check(self) -> list[str]:
        """Reload and validate every message file; raise TemplateError listing all problems. Returns the languages."""
        self._templates = templates.load_all(self.prompts_dir)
        missing = [lang for lang in self._templates if lang not in self.cfg.speech.voices]
        if missing:
            raise IvrError(f"speech.voices has no voice for: {', '.join(missing)}")
        if self.cfg.locale.language not in self._templates:
            raise IvrError(f"{templates.messages_path(self.prompts_dir, self.cfg.locale.language)}: missing, but "
                           f"locale.language is {self.cfg.locale.language}")
        return sorted(self._templates)

    def prompt(self, lang: str, key: str, **values: object) -> Rendered:
        """Render (or find in the cache) the message `key` in `lang` with its placeholder values."""
        return self.render_plan(lang, self.plan(lang, key, **values))

    def debt_message(self, facts: MessageFacts) -> Rendered:
        return self.prompt(facts.lang, "debt", **self.debt_values(facts))

    # --- planning -------------------------------------------------------------------------------------------

    @staticmethod
    def debt_values(facts: MessageFacts) -> dict[str, object]:
        return {"name": facts.name, "account": facts.account, "amount": facts.amount, "currency": facts.currency,
                "overdue_months": facts.overdue_months or None, "due_date": facts.due_date,
                "company": facts.company, "office_phone": facts.office_phone}

    def template(self, lang: str, key: str) -> Template:
        msgs = self._templates.get(lang)
        if msgs is None:
            raise IvrError(f"no messages for language {lang!r}: add {templates.messages_path(self.prompts_dir, lang)}")
        if key not in msgs:
            raise IvrError(f"unknown message key {key!r}; keys: {', '.join(templates.KEYS)}")
        return msgs[key]

    def plan(self, lang: str, key: str, **values: object) -> list[Piece]:
        """The message as texts to render and pauses between them, without rendering anything."""
        tpl = self.template(lang, key)
        values = {"company": self.cfg.company.name, "office_phone": self.cfg.company.phone,
                  "currency": self.cfg.locale.currency, "optout_key": self.cfg.callflow.optout_key,
                  } | {k: v for k, v in values.items() if _present(v)}
        flat: list[Text | Slot] = []
        for part in tpl.parts:
            if isinstance(part, Optional):
                if all(_present(values.get(s.name)) for s in part.parts if isinstance(s, Slot)):
                    flat.extend(part.parts)
            else:
                flat.append(part)
        flat = self._inline(flat, values, lang)
        pieces: list[Piece] = []
        gap = 0  # pause owed before the next text

        def say(text: str, pause_before: int) -> None:
            nonlocal gap
            if pieces:
                pieces.append(Piece(None, max(gap, pause_before)))
            pieces.append(Piece(text))
            gap = 0

        for i, part in enumerate(flat):
            if isinstance(part, Text):
                lead = _LEAD.match(part.text)
                core = _LEAD.sub("", part.text).rstrip()
                trail = _TRAIL.search(core)
                if lead:
                    gap = max(gap, _punct_strength(lead.group(0)))
                if not core:
                    continue
                words = core
                next_is_slot = i + 1 < len(flat) and isinstance(flat[i + 1], Slot)
                if trail is None and next_is_slot:
                    words += ","  # continuing intonation: the sentence goes on in the next segment
                say(words, gap)
                gap = _punct_strength(trail.group(0)) if trail else WORD_MS
            else:
                value = values.get(part.name)
                if not _present(value):
                    if part.name in ("amount", "account"):
                        raise IvrError(f"message {lang}/{key}: no value for {{{part.name}}}")
                    self._warn_once(f"message={lang}/{key} placeholder={{{part.name}}} has no value; left out")
                    continue
                texts, inner = self._slot_texts(part.name, value, lang, str(values["currency"]))
                for j, text in enumerate(texts):
                    say(text, gap if j == 0 else inner)
                gap = WORD_MS
        return pieces

    def _warn_once(self, line: str) -> None:
        if line not in self._warned:  # once per process: a campaign must not log it for every call
            self._warned.add(line)
            log.warning(line)

    def _inline(self, flat: list[Text | Slot], values: dict[str, object], lang: str) -> list[Text | Slot]:
        """Put values with few distinct values (date, months, company, phone) into their sentence, so that sentence
        is rendered whole (once per distinct value) and sounds natural; then cut the texts into sentences."""
        out: list[Text | Slot] = []
        for part in flat:
            if isinstance(part, Slot) and part.name in INLINE:
                value = values.get(part.name)
                if not _present(value):
                    self._warn_once(f"message={lang} placeholder={{{part.name}}} has no value; left out")
                    continue
                memo_key = (part.name, value, lang, values["currency"])
                words = self._inline_memo.get(memo_key)
                if words is None:
                    texts, _ = self._slot_texts(part.name, value, lang, str(values["currency"]))
                    words = self._inline_memo[memo_key] = " ".join(texts)
                part = Text(words)
            if isinstance(part, Text) and out and isinstance(out[-1], Text):
                out[-1] = Text(out[-1].text + part.text)
            else:
                out.append(part)
        # One segment per sentence: only the sentence holding a value differs between debtors, the fixed
        # sentences around it are rendered once.
        if all(isinstance(p, Text) for p in flat):
            return out  # a fixed prompt: one segment
        split: list[Text | Slot] = []
        for part in out:
            if isinstance(part, Text):
                split.extend(Text(t) for t in _SENTENCES.split(part.text) if t)
            else:
                split.append(part)
        return split

    def _slot_texts(self, name: str, value: object, lang: str, currency: str) -> tuple[list[str], int]:
        """The texts a placeholder value is said with, and the pause between them."""
        if name == "amount":
            return amount_segments(Decimal(str(value)), currency, lang), WORD_MS
        if name == "account":
            return spell(str(value), lang), DIGIT_MS
        if name in ("office_phone", "optout_key"):
            return [" ".join(spell(str(value), lang))], 0
        if name == "name":
            return str(value).split(), WORD_MS
        if name == "due_date":
            d = value if isinstance(value, date) else date.fromisoformat(str(value))
            return [say_date(d, lang)], 0
        if name == "overdue_months":
            return [say_months(int(str(value)), lang)], 0
        if name == "currency":
            return [currency_name(str(value), lang)], 0
        return [" ".join(str(value).split())], 0

    # --- rendering ------------------------------------------------------------------------------------------

    def voice(self, lang: str) -> str:
        try:
            return self.cfg.speech.voices[lang]
        except KeyError:
            raise IvrError(f"speech.voices has no voice for {lang!r}") from None

    def render_plan(self, lang: str, plan: list[Piece]) -> Rendered:
        voice = self.voice(lang)
        segs: list[Segment] = [self.cache.pause(p.pause_ms) if p.text is None else self.cache.segment(p.text, voice)
                               for p in plan]
        if not segs:
            raise IvrError(f"message in {lang} has nothing to say")
        if self.segment_mode == "joined" and len(segs) > 1:
            segs = [self.cache.joined(segs)]
        frames = sum(s.frames for s in segs)
        files = [s.path for s in segs]
        paths = [self._seen(p) for p in files]
        playback = paths[0] if len(paths) == 1 else "file_string://" + "!".join(paths)
        return Rendered(playback, round(frames * 1000 / tts.RATE), files)

    def _seen(self, path: Path) -> str:
        s = str(path)
        return self._seen_as + s[len(self._root):] if s.startswith(self._root) else s

    def prerender(self, jobs: Iterable[tuple[str, list[Piece]]], workers: int = 0,
                  progress: Callable[[int, int], None] | None = None) -> int:
        """Render every distinct text of many planned messages in parallel; returns how many were rendered."""
        import os

        distinct = {(p.text, self.voice(lang)) for lang, plan in jobs for p in plan if p.text is not None}
        todo = sorted(distinct)
        before = self.cache.renders
        done = 0
        with ThreadPoolExecutor(max_workers=workers or (os.cpu_count() or 1)) as pool:
            for _ in pool.map(lambda tv: self.cache.segment(*tv), todo):
                done += 1
                if progress:
                    progress(done, len(todo))
        return self.cache.renders - before
