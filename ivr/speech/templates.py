"""Message templates staff edit: `prompts/<lang>/messages.yaml`, loaded and checked before any call is made.

A text is plain words with named placeholders in braces (`{amount}`) and optional parts in square brackets
(`[Борг прострочено з {due_date}.]`) that are left out when a value inside them is unknown. Every problem in a
file (unknown key, missing key, unknown or missing placeholder, stray brace or bracket, a value that is not
text) is reported at load time in one TemplateError naming the file, the line, the key and the placeholder.
`check_yaml` is that checker for any such file of texts: the written texts (ivr.channels.texts) use it too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from ivr.errors import IvrError

LANGS = ("uk", "ru", "bg", "en")
PLACEHOLDERS = ("name", "account", "amount", "currency", "overdue_months", "due_date", "company", "office_phone",
                "optout_key", "hello")

_COMMON = frozenset({"name", "company", "office_phone", "hello"})
# key -> (placeholders allowed, placeholders required)
KEYS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "greeting": (_COMMON, frozenset({"company"})),
    "right_party": (_COMMON, frozenset({"name"})),
    "debt": (frozenset(PLACEHOLDERS), frozenset({"account", "amount"})),
    "menu": (_COMMON | {"optout_key"}, frozenset()),  # {optout_key}: callflow.optout_key, said as a digit
    "pay_now": (_COMMON, frozenset()),
    "callback_confirmed": (_COMMON, frozenset()),
    "already_paid": (_COMMON, frozenset()),
    "wrong_number": (_COMMON, frozenset()),
    "optout_confirmed": (_COMMON, frozenset()),
    "invalid": (_COMMON, frozenset()),
    "no_input": (_COMMON, frozenset()),
    "goodbye": (_COMMON, frozenset()),
    # answering machines (callflow.machine_detection): never the amount or the account, only who called and where
    # to call back; `are_you_there` is the short question whose missing reply marks a machine (heuristic)
    "machine_message": (_COMMON - {"name"}, frozenset({"company", "office_phone"})),
    "are_you_there": (_COMMON - {"name"}, frozenset()),
    # a caller calling back whose number matches no account with a recent message (before the office transfer)
    "inbound_unknown": (_COMMON - {"name"}, frozenset()),
}

# Texts of the other campaign kinds (ivr.campaign.kinds): prompts/<lang>/<kind>.yaml, checked the same way.
# The menu of a kind offers only its keys (config installment.menu / outage.menu), so its text is its own.
_WHEN = frozenset({"address", "from_date", "from_time", "to_date", "to_time", "reason"})
KIND_PLACEHOLDERS = {
    "installment": frozenset(PLACEHOLDERS) - {"optout_key", "overdue_months"},
    "outage": _COMMON | {"account"} | _WHEN,
}
KIND_KEYS: dict[str, dict[str, tuple[frozenset[str], frozenset[str]]]] = {
    "installment": {
        "reminder": (KIND_PLACEHOLDERS["installment"], frozenset({"amount", "due_date"})),
        "missed": (KIND_PLACEHOLDERS["installment"], frozenset({"amount", "due_date"})),
        "menu": (_COMMON | {"optout_key"}, frozenset()),
    },
    "outage": {
        "planned": (KIND_PLACEHOLDERS["outage"], frozenset({"address", "from_date", "from_time", "to_time"})),
        "emergency": (KIND_PLACEHOLDERS["outage"], frozenset({"address", "to_date", "to_time"})),
        "moved": (KIND_PLACEHOLDERS["outage"], frozenset({"address", "from_date", "from_time", "to_time"})),
        "cancelled": (KIND_PLACEHOLDERS["outage"], frozenset({"address", "from_date"})),
        "menu": (_COMMON, frozenset()),
    },
}

_TOKEN = re.compile(r"\{([^{}\[\]]*)\}|\[|\]|\{|\}")


class TemplateError(IvrError):
    """One or more problems in message files; `problems` lists them one per line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("message texts have problems:\n  " + "\n  ".join(problems))


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Slot:
    name: str


@dataclass(frozen=True)
class Optional:
    parts: tuple[Text | Slot, ...]


Part = Text | Slot | Optional


@dataclass(frozen=True)
class Template:
    lang: str
    key: str
    text: str
    parts: tuple[Part, ...]

    @property
    def placeholders(self) -> set[str]:
        out = set()
        for p in self.parts:
            if isinstance(p, Slot):
                out.add(p.name)
            elif isinstance(p, Optional):
                out.update(q.name for q in p.parts if isinstance(q, Slot))
        return out


def parse(text: str) -> tuple[tuple[Part, ...], list[str]]:
    """Split a text into parts; return (parts, problems) where problems describe bad syntax."""
    problems: list[str] = []
    top: list[Part] = []
    group: list[Text | Slot] | None = None
    pos = 0

    def add(item: Text | Slot) -> None:
        (group if group is not None else top).append(item)

    for m in _TOKEN.finditer(text):
        if m.start() > pos:
            add(Text(text[pos:m.start()]))
        pos = m.end()
        tok = m.group(0)
        if m.group(1) is not None:
            name = m.group(1).strip()
            if not re.fullmatch(r"[a-z_]+", name):
                problems.append(f"placeholder {tok!r} is not a name in braces like {{amount}}")
                continue
            add(Slot(name))
        elif tok == "[":
            if group is not None:
                problems.append("'[' inside an optional part: optional parts cannot be nested")
                continue
            group = []
        elif tok == "]":
            if group is None:
                problems.append("']' without a matching '['")
                continue
            top.append(Optional(tuple(group)))
            group = None
        else:
            problems.append(f"stray {tok!r}: placeholders are written {{name}}")
    if pos < len(text):
        add(Text(text[pos:]))
    if group is not None:
        problems.append("'[' without a matching ']'")
        top.extend(group)
    return tuple(top), problems


def _key_lines(raw: str) -> dict[str, int]:
    try:
        node = yaml.compose(raw)
    except yaml.YAMLError:
        return {}
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {k.value: k.start_mark.line + 1 for k, _ in node.value if isinstance(k, yaml.ScalarNode)}


def check_yaml(raw: str, where_file: str, lang: str, keys: Mapping[str, tuple[frozenset[str], frozenset[str]]],
               fold: Callable[[str, str], str], verb: str) -> tuple[dict[str, Template], list[str]]:
    """Parse and check one `key: text` YAML file of templates (messages.yaml, and channels.yaml for the written
    texts): (templates, every problem named with file, line and key).

    keys: key -> (placeholders allowed, placeholders required outside [ ]); fold(key, value): the text's
    whitespace as that key keeps it; verb: how a required placeholder is delivered ("said", "written")."""
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        return {}, [f"{where_file}{where}: not valid YAML: {getattr(exc, 'problem', exc)}"]
    if not isinstance(data, dict):
        return {}, [f"{where_file}: expected 'key: text' lines, found {type(data).__name__}"]
    lines = _key_lines(raw)
    problems: list[str] = []
    out: dict[str, Template] = {}
    for key, value in data.items():
        where = f"{where_file} line {lines.get(str(key), '?')}, key '{key}'"
        if key not in keys:
            problems.append(f"{where}: unknown key; the keys are {', '.join(keys)}")
            continue
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{where}: expected a text, found {value!r}")
            continue
        text = fold(key, value)
        parts, syntax = parse(text)
        problems.extend(f"{where}: {p}" for p in syntax)
        tpl = Template(lang, key, text, parts)
        allowed, required = keys[key]
        for name in sorted(tpl.placeholders - allowed):
            hint = f"; allowed here: {', '.join('{' + a + '}' for a in sorted(allowed))}"
            problems.append(f"{where}: unknown placeholder {{{name}}}{hint}")
        mandatory = {p.name for p in parts if isinstance(p, Slot)}
        for name in sorted(required - mandatory):
            problems.append(f"{where}: missing placeholder {{{name}}} (it must be {verb}, outside [ ])")
        out[key] = tpl
    for key in keys:
        if key not in data:
            problems.append(f"{where_file}: key '{key}' is missing")
    return out, problems


def _fold_spoken(key: str, value: str) -> str:
    return " ".join(value.split())  # YAML line folding and CR/LF become plain spaces


def check_messages(raw: str, where_file: str, lang: str,
                   keys: Mapping[str, tuple[frozenset[str], frozenset[str]]] | None = None
                   ) -> tuple[dict[str, Template], list[str]]:
    """Check the text of one messages.yaml (or, with `keys`, one <kind>.yaml: KIND_KEYS[kind]) named `where_file`
    in the problems: (templates, problems)."""
    return check_yaml(raw, where_file, lang, KEYS if keys is None else keys, _fold_spoken, "said")


def load_messages(path: Path, lang: str, keys: Mapping[str, tuple[frozenset[str], frozenset[str]]] | None = None
                  ) -> dict[str, Template]:
    """Load and check one messages.yaml (or, with `keys`, one <kind>.yaml); raise TemplateError listing every
    problem."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TemplateError([f"{path}: file not found (each language needs its messages.yaml)"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError([f"{path}: cannot read: {exc}"]) from None
    out, problems = check_messages(raw, str(path), lang, keys)
    if problems:
        raise TemplateError(problems)
    return out


def messages_path(prompts_dir: Path, lang: str) -> Path:
    return prompts_dir / lang / "messages.yaml"


def kind_path(prompts_dir: Path, lang: str, kind: str) -> Path:
    return prompts_dir / lang / f"{kind}.yaml"


def load_kinds(prompts_dir: Path, langs: list[str]) -> dict[str, dict[str, Template]]:
    """Every <kind>.yaml present for `langs`, keyed lang -> '<kind>.<key>' (e.g. 'outage.planned'); all problems
    in one TemplateError. A missing file is no error here: a campaign of that kind refuses to start without it
    (ivr.campaign.messages.check)."""
    problems: list[str] = []
    out: dict[str, dict[str, Template]] = {lang: {} for lang in langs}
    for lang in langs:
        for kind, keys in KIND_KEYS.items():
            path = kind_path(prompts_dir, lang, kind)
            if not path.exists():
                continue
            try:
                for key, tpl in load_messages(path, lang, keys).items():
                    out[lang][f"{kind}.{key}"] = tpl
            except TemplateError as exc:
                problems.extend(exc.problems)
    if problems:
        raise TemplateError(problems)
    return out


def available_langs(prompts_dir: Path) -> list[str]:
    return [lang for lang in LANGS if messages_path(prompts_dir, lang).exists()]


def load_all(prompts_dir: Path, langs: list[str] | None = None) -> dict[str, dict[str, Template]]:
    """Load every language present (or those named); all problems of all files in one TemplateError."""
    langs = langs if langs is not None else available_langs(prompts_dir)
    if not langs:
        raise TemplateError([f"{prompts_dir}: no <lang>/messages.yaml found (languages: {', '.join(LANGS)})"])
    problems: list[str] = []
    out: dict[str, dict[str, Template]] = {}
    for lang in langs:
        try:
            out[lang] = load_messages(messages_path(prompts_dir, lang), lang)
        except TemplateError as exc:
            problems.extend(exc.problems)
    if problems:
        raise TemplateError(problems)
    return out
