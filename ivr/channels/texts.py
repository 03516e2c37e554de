"""Written texts for SMS, e-mail and letters: `prompts/<lang>/channels.yaml`, checked like the spoken ones.

Same syntax and checks as `prompts/<lang>/messages.yaml`, by the same checker (ivr.speech.templates.check_yaml:
`{placeholder}`, `[optional part]`, every problem named with file, line and key), other keys and placeholders: written texts show
the amount in figures with the currency code, the date as DD.MM.YYYY, and may carry `{link}`, the payment link
made from `channels.payment_link` (keep it in [ ] so the sentence disappears when no link is configured).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

from ivr.errors import IvrError
from ivr.speech.templates import LANGS, Optional, Slot, Template, TemplateError, Text, check_yaml

PLACEHOLDERS = frozenset({"name", "account", "amount", "due_date", "company", "office_phone", "link"})
# key -> placeholders required (every key allows all of PLACEHOLDERS)
KEYS: dict[str, frozenset[str]] = {
    "sms": frozenset({"amount"}),
    "email_subject": frozenset(),
    "email_body": frozenset({"account", "amount"}),
    "letter": frozenset({"account", "amount"}),
}
FILE = "channels.yaml"


@dataclass(frozen=True)
class Facts:
    """What a written message says about one debtor."""

    name: str
    account: str
    amount: Decimal
    currency: str
    due_date: date | None
    company: str
    office_phone: str
    link: str
    lang: str


def path_for(prompts_dir: Path, lang: str) -> Path:
    return prompts_dir / lang / FILE


def _fold_written(key: str, value: str) -> str:
    if key in ("sms", "email_subject"):
        return " ".join(value.split())
    # e-mail bodies and letters keep their paragraphs (blank lines) and line breaks; other whitespace folds
    return "\n\n".join("\n".join(" ".join(line.split()) for line in p.strip().split("\n"))
                       for p in value.split("\n\n") if p.strip())


def check_text(raw: str, where_file: str, lang: str) -> tuple[dict[str, Template], list[str]]:
    """Parse and check one channels.yaml text: (templates, problems)."""
    return check_yaml(raw, where_file, lang, {k: (PLACEHOLDERS, req) for k, req in KEYS.items()}, _fold_written,
                      "written")


def load(prompts_dir: Path, lang: str) -> dict[str, Template]:
    p = path_for(prompts_dir, lang)
    try:
        raw = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TemplateError([f"{p}: file not found (each language needs its {FILE} for SMS, e-mail, letters)"]
                            ) from None
    out, problems = check_text(raw, str(p), lang)
    if problems:
        raise TemplateError(problems)
    return out


def loader(cfg) -> Callable[[str], dict[str, Template]]:
    """A per-run reader of the written texts: `get(lang)` loads prompts/<lang>/channels.yaml once and keeps it;
    a broken file is an IvrError listing every problem (the run stops before sending anything more)."""
    cache: dict[str, dict[str, Template]] = {}
    base = cfg.path(cfg.speech.prompts_dir)

    def get(lang: str) -> dict[str, Template]:
        if lang not in cache:
            try:
                cache[lang] = load(base, lang)
            except TemplateError as exc:
                raise IvrError(str(exc)) from None
        return cache[lang]

    return get


def check_all(prompts_dir: Path) -> list[str]:
    """Every problem of every language's channels.yaml (for `ivr prompts check`)."""
    problems: list[str] = []
    for lang in LANGS:
        if not (prompts_dir / lang).is_dir():
            continue
        try:
            load(prompts_dir, lang)
        except TemplateError as exc:
            problems.extend(exc.problems)
    return problems


def format_amount(amount: Decimal, currency: str, lang: str) -> str:
    whole = f"{amount:,.2f}"
    if lang != "en":
        whole = whole.replace(",", "\u00a0").replace(".", ",")
    return f"{whole} {currency}"


def values(f: Facts) -> dict[str, str]:
    return {"name": f.name, "account": f.account, "amount": format_amount(f.amount, f.currency, f.lang),
            "due_date": f.due_date.strftime("%d.%m.%Y") if f.due_date else "", "company": f.company,
            "office_phone": f.office_phone, "link": f.link}


def render(tpl: Template, f: Facts) -> str:
    """The text for one debtor: optional parts with an empty value inside are left out."""
    vals = values(f)
    out: list[str] = []
    for p in tpl.parts:
        if isinstance(p, Text):
            out.append(p.text)
        elif isinstance(p, Slot):
            out.append(vals.get(p.name, ""))
        elif isinstance(p, Optional) and all(vals.get(q.name) for q in p.parts if isinstance(q, Slot)):
            out.append("".join(q.text if isinstance(q, Text) else vals[q.name] for q in p.parts))
    text = "".join(out)
    # ASCII whitespace only: the no-break space inside amounts ("1 234,50") must stay; line breaks stay
    paragraphs = ("\n".join(x for x in (re.sub(r"[ \t\r]+", " ", line).strip() for line in par.split("\n")) if x)
                  for par in text.split("\n\n"))
    return "\n\n".join(p for p in paragraphs if p)


def payment_link(template: str, account: str) -> str:
    """`channels.payment_link` filled for one account ('' when none is configured)."""
    if not template:
        return ""
    from urllib.parse import quote
    try:
        return template.format(account=quote(account, safe=""))
    except (KeyError, IndexError, ValueError) as exc:
        raise IvrError(f"channels.payment_link: {exc}") from None


def facts_for(cfg, account, day: date) -> Facts:
    """The written facts of one account on `day` (the same amount rule as the call)."""
    from ivr.speech.facts import facts_for_account

    m = facts_for_account(cfg, account, day)
    return Facts(m.name, m.account, m.amount, m.currency, m.due_date, m.company, m.office_phone,
                 payment_link(cfg.channels.payment_link, account.number), m.lang)
