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
from datetime import date, datetime
from datetime import time as dtime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from ivr.config import Config, engine_for, tts_engine_for
from ivr.errors import IvrError
from ivr.speech import templates, tts
from ivr.speech.cache import PromptCache, Segment
from ivr.speech.dates import date_words, months_words, time_words
from ivr.speech.facts import MessageFacts, company_name
from ivr.speech.kit import fixed_parts, hello_word, prompt_clips
from ivr.speech.money import amount_words, money_word
from ivr.speech.numbers import LANGS, unit
from ivr.speech.reading import DIGIT_GENDER, PLUS, account_groups, daypart, phone_groups
from ivr.speech.recorded import RecordedVoice
from ivr.speech.templates import Optional, Slot, Template, Text
from ivr.speech.words import Word, say

log = logging.getLogger(__name__)

REPO_PROMPTS = Path(__file__).resolve().parents[2] / "prompts"

# Pauses at the joins, ms. Every segment is trimmed of its own silence, so these are the whole gap.
WORD_MS = 70
DIGIT_MS = 140
COMMA_MS = 240
SENTENCE_MS = 480

# Placeholders with few distinct values across a campaign: said inside their sentence, not as separate segments.
INLINE = frozenset({"due_date", "overdue_months", "company", "office_phone", "currency", "optout_key", "hello",
                    "from_date", "to_date", "from_time", "to_time", "reason"})
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
    """One step of a message plan: a text to render, or a pause (text None). For the recorded engine a text may
    also name its fixed-prompt recording (`clip`) or the number-kit words it is glued from (`words`)."""

    text: str | None
    pause_ms: int = 0
    words: tuple[Word, ...] = ()
    clip: str = ""


def _punct_strength(punct: str) -> int:
    if _SENTENCE_END.search(punct):
        return SENTENCE_MS
    if punct.strip():
        return COMMA_MS
    return WORD_MS


def _present(value: object) -> bool:
    return value is not None and value != ""


def spell_words(text: str, lang: str) -> list[Word]:
    """Account numbers character by character: digits as words, letters as themselves (clip `letter.X`),
    separators dropped."""
    out = []
    for ch in text:
        if ch.isdigit() and ch.isascii():
            out.append(unit(int(ch), lang, DIGIT_GENDER[lang]))
        elif ch.isalpha():
            out.append(Word(f"letter.{ch.upper()}", ch.upper()))
        elif ch == "+":
            out.append(Word("plus", PLUS[lang]))
    return out


def spell(text: str, lang: str) -> list[str]:
    return [w.text for w in spell_words(text, lang)]


class Speech:
    def __init__(self, cfg: Config, engine: tts.Engine | None = None, segment_mode: str | None = None,
                 now: Callable[[], datetime] | None = None) -> None:
        """`engine` (tests, benchmarks) replaces every language's TTS engine, the recorded fallback included;
        `now` gives the local time {hello} follows (default: the clock in locale.timezone)."""
        self.cfg = cfg
        self._now = now or (lambda: datetime.now(ZoneInfo(cfg.locale.timezone)))
        self.prompts_dir = self._prompts_dir(cfg)
        self._override = engine
        self._engines: dict[str, tts.Engine] = {}
        self.engine = engine or self.engine_for(cfg.locale.language)
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
        self._kind_templates = templates.load_kinds(self.prompts_dir, list(self._templates))
        self._warned: set[str] = set()
        self._inline_memo: dict[tuple, str] = {}  # few distinct values (dates, phone): words computed once
        self.recorded = {lang: RecordedVoice(self.prompts_dir / lang, self.cache) for lang in LANGS
                         if engine_for(cfg, lang) == "recorded"}
        self._clip_texts: dict[str, dict[str, str]] = {}
        self.fallbacks = 0  # segments a recorded language had to say by TTS (missing clips), this process

    def engine_for(self, lang: str) -> tts.Engine:
        """The TTS engine of `lang` (for a recorded language: the one saying names and missing clips)."""
        if self._override is not None:
            return self._override
        name = tts_engine_for(self.cfg, lang)
        if name not in self._engines:
            self._engines[name] = tts.make_engine(self.cfg, name)
        return self._engines[name]

    def daypart_now(self) -> str:
        """What {hello} says now (morning, day or evening by the local time): part of a shared prompt's identity, so
        a process started in the afternoon does not keep saying "good day" all evening."""
        sp = self.cfg.speech
        return daypart(self._now(), sp.day_from, sp.evening_from)

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
        self._kind_templates = templates.load_kinds(self.prompts_dir, list(self._templates))
        self._clip_texts = {}
        missing = [lang for lang in self._templates if lang not in self.cfg.speech.voices]
        if missing:
            raise IvrError(f"speech.voices has no voice for: {', '.join(missing)}")
        if self.cfg.locale.language not in self._templates:
            raise IvrError(f"{templates.messages_path(self.prompts_dir, self.cfg.locale.language)}: missing, but "
                           f"locale.language is {self.cfg.locale.language}")
        if self._override is None:
            self._check_piper(sorted(self._templates))
        return sorted(self._templates)

    def _check_piper(self, langs: list[str]) -> None:
        """A language said by piper needs piper-tts installed and its model file there: found before any call."""
        from ivr.speech import piper

        used = [lang for lang in langs if tts_engine_for(self.cfg, lang) == "piper"]
        if used and not piper.available():
            raise IvrError(f"speech: {', '.join(used)} said by piper, but piper-tts is not installed; "
                           f"{piper.INSTALL_HINT}")
        for lang in used:
            model = Path(self.voice(lang))
            if not model.is_file():
                raise IvrError(f"speech.piper_models.{lang}: voice model {model} not found")
            if not Path(f"{model}.json").is_file():
                raise IvrError(f"speech.piper_models.{lang}: {model}.json (the voice's config) is missing beside it")

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

    def has_text(self, lang: str, key: str) -> bool:
        """Whether `key` (e.g. 'outage.planned') has a text in `lang`."""
        return key in (self._kind_templates if "." in key else self._templates).get(lang, {})

    def template(self, lang: str, key: str) -> Template:
        if "." in key:  # a campaign kind's text: prompts/<lang>/<kind>.yaml
            tpl = self._kind_templates.get(lang, {}).get(key)
            if tpl is None:
                kind = key.split(".", 1)[0]
                raise IvrError(f"no text {key!r} in {lang}: add {templates.kind_path(self.prompts_dir, lang, kind)}")
            return tpl
        msgs = self._templates.get(lang)
        if msgs is None:
            raise IvrError(f"no messages for language {lang!r}: add {templates.messages_path(self.prompts_dir, lang)}")
        if key not in msgs:
            raise IvrError(f"unknown message key {key!r}; keys: {', '.join(templates.KEYS)}")
        return msgs[key]

    def plan(self, lang: str, key: str, **values: object) -> list[Piece]:
        """The message as texts to render and pauses between them, without rendering anything.

        For a recorded language every fixed text names its recording (`clip`, see ivr.speech.kit.fixed_parts)
        and every value is a segment of its own whose `words` name the kit clips; nothing is put inline."""
        tpl = self.template(lang, key)
        recorded = lang in self.recorded
        clip_of = {id(text): clip for clip, text in fixed_parts(tpl)} if recorded else {}
        sp = self.cfg.speech
        values = {"company": company_name(self.cfg, lang), "office_phone": self.cfg.company.phone,
                  "currency": self.cfg.locale.currency, "optout_key": self.cfg.callflow.optout_key,
                  "hello": self.daypart_now(),
                  } | {k: v for k, v in values.items() if _present(v)}
        flat: list[Text | Slot] = []
        for part in tpl.parts:
            if isinstance(part, Optional):
                if all(_present(values.get(s.name)) for s in part.parts if isinstance(s, Slot)):
                    flat.extend(part.parts)
            else:
                flat.append(part)
        if not recorded:
            flat = self._inline(flat, values, lang)
        pieces: list[Piece] = []
        gap = 0  # pause owed before the next text

        def add(piece: Piece, pause_before: int) -> None:
            nonlocal gap
            if pieces:
                pieces.append(Piece(None, max(gap, pause_before)))
            pieces.append(piece)
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
                nxt = flat[i + 1] if i + 1 < len(flat) else None
                to_name = isinstance(nxt, Slot) and nxt.name == "name"
                if trail is None and isinstance(nxt, Slot) and not to_name:
                    words += ","  # continuing intonation: the sentence goes on in the next segment
                add(Piece(words, clip=clip_of.get(id(part), "")), gap)
                # "Якщо {name} не користується…": the name follows its word without a pause
                gap = _punct_strength(trail.group(0)) if trail else 0 if to_name else WORD_MS
            else:
                value = values.get(part.name)
                if not _present(value):
                    if part.name in ("amount", "account"):
                        raise IvrError(f"message {lang}/{key}: no value for {{{part.name}}}")
                    self._warn_once(f"message={lang}/{key} placeholder={{{part.name}}} has no value; left out")
                    continue
                said, inner = self.value_pieces(part.name, value, lang, str(values["currency"]))
                for j, piece in enumerate(said):
                    add(piece, gap if j == 0 else inner)
                # a pause after the amount lets it sink in; the name runs on into its sentence
                gap = sp.amount_pause_ms if part.name == "amount" else 0 if part.name == "name" else WORD_MS
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
                    glue = ", " if part.name == "office_phone" else " "  # phone groups: a short pause each
                    words = self._inline_memo[memo_key] = glue.join(texts)
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

    def value_pieces(self, name: str, value: object, lang: str, currency: str) -> tuple[list[Piece], int]:
        """The segments a placeholder value is said in (with the kit words when the grammar gives them), and the
        pause between them."""
        if name == "name":
            return [Piece(w) for w in str(value).split()], 0
        if name == "company":
            return [Piece(" ".join(str(value).split()), clip="company")], 0
        if name in ("address", "reason"):  # said as written (staff's and billing's words)
            return [Piece(" ".join(str(value).split()))], 0
        groups, inner = self._slot_words(name, value, lang, currency)
        return [Piece(say(g), words=tuple(g)) for g in groups], inner

    def _slot_words(self, name: str, value: object, lang: str, currency: str) -> tuple[list[list[Word]], int]:
        """The word groups of a value the grammar says (amount, account, phone, date, months, currency, key)."""
        if name == "amount":
            return amount_words(Decimal(str(value)), currency, lang), WORD_MS
        sp = self.cfg.speech
        if name == "account":
            return account_groups(str(value), lang, sp.account_reading), sp.account_pause_ms
        if name == "office_phone":
            return phone_groups(str(value), lang, self.cfg.locale.country, sp.phone_groups), COMMA_MS
        if name == "optout_key":
            return [spell_words(str(value), lang)], 0
        if name == "hello":
            return [[hello_word(lang, str(value))]], 0
        if name in ("due_date", "from_date", "to_date"):
            d = value if isinstance(value, date) else date.fromisoformat(str(value))
            return [date_words(d, lang)], 0
        if name in ("from_time", "to_time"):
            t = value if isinstance(value, dtime) else dtime.fromisoformat(str(value))
            return [time_words(t, lang)], 0
        if name == "overdue_months":
            return [months_words(int(str(value)), lang)], 0
        if name == "currency":
            return [[money_word(5, str(value), lang)]], 0
        raise IvrError(f"no way to say placeholder {{{name}}}")

    def _slot_texts(self, name: str, value: object, lang: str, currency: str) -> tuple[list[str], int]:
        """The texts a placeholder value is said with, and the pause between them."""
        said, inner = self.value_pieces(name, value, lang, currency)
        return [p.text or "" for p in said], inner

    # --- rendering ------------------------------------------------------------------------------------------

    def voice(self, lang: str) -> str:
        """The voice the TTS engine of `lang` is given: the piper model file, or speech.voices[lang]."""
        if self._override is None and tts_engine_for(self.cfg, lang) == "piper":
            model = self.cfg.speech.piper_models.get(lang)
            if not model:
                raise IvrError(f"speech.piper_models has no voice model for {lang!r}")
            return str(self.cfg.path(model))
        try:
            return self.cfg.speech.voices[lang]
        except KeyError:
            raise IvrError(f"speech.voices has no voice for {lang!r}") from None

    def render_piece(self, lang: str, piece: Piece) -> Segment:
        """One planned text as audio: from the recordings when the language is recorded and they cover it, else
        by the language's TTS engine."""
        if piece.text is None:
            return self.cache.pause(piece.pause_ms)
        rec = self.recorded.get(lang)
        if rec is not None:
            seg = (rec.prompt(piece.clip, self.clip_texts(lang).get(piece.clip)) if piece.clip
                   else rec.words(piece.words) if piece.words else None)
            if seg is not None:
                return seg
            if piece.clip or piece.words:  # a recording that should exist does not (names are TTS by design)
                self.fallbacks += 1
                self._warn_once(f"event=recording_missing lang={lang} clip={piece.clip or ' '.join(w.key for w in piece.words)} "
                                "said_by=tts (see ivr voice check)")
        engine = self.engine_for(lang)
        if engine is self.cache.engine:
            return self.cache.segment(piece.text, self.voice(lang))
        return self.cache.segment_with(engine, piece.text, self.voice(lang))

    def clip_texts(self, lang: str) -> dict[str, str]:
        """Fixed-prompt clip -> the text it must say now (from messages.yaml and the company name)."""
        memo = self._clip_texts.get(lang)
        if memo is None:
            clips = prompt_clips(self._templates.get(lang, {}), company_name(self.cfg, lang))
            memo = self._clip_texts[lang] = {c.key: c.text for c in clips}
        return memo

    def render_plan(self, lang: str, plan: list[Piece]) -> Rendered:
        segs: list[Segment] = [self.render_piece(lang, p) for p in plan]
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

        distinct = {(lang, p) for lang, plan in jobs for p in plan if p.text is not None}
        todo = sorted(distinct, key=lambda lp: (lp[0], lp[1].text or "", lp[1].clip))
        before = self.cache.renders
        done = 0
        with ThreadPoolExecutor(max_workers=workers or (os.cpu_count() or 1)) as pool:
            for _ in pool.map(lambda lp: self.render_piece(*lp), todo):
                done += 1
                if progress:
                    progress(done, len(todo))
        return self.cache.renders - before
