"""What a call of an installment or outage campaign says: its text key, the values of its placeholders, and the
call flow's context (the kind's menu text and keys). Debt calls keep their own path (ivr.speech.facts).

The texts live in prompts/<lang>/<kind>.yaml (ivr.speech.templates.KIND_KEYS); the values come from the kind's
module (ivr.campaign.installments, ivr.campaign.outages), read from the ledger as the call starts.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from ivr.callflow.context import CallContext, names_debtor
from ivr.campaign import kinds
from ivr.config import Config
from ivr.errors import IvrError
from ivr.ledger.models import Account, Campaign


def text_key(camp: Campaign) -> str:
    """The text a campaign's calls say, e.g. 'outage.planned'."""
    if camp.kind == "installment":
        return "installment.missed" if camp.ref == "missed" else "installment.reminder"
    if camp.kind == "outage":
        from ivr.campaign import outages

        return f"outage.{outages.text_of(camp)}"
    raise IvrError(f"campaign {camp.id}: kind {camp.kind!r} has no kind text (debt uses messages.yaml)")


def values(cfg: Config, camp: Campaign, account: Account, day: date) -> dict[str, Any]:
    """The placeholder values of one account's message in this campaign."""
    if camp.kind == "installment":
        from ivr.campaign import installments

        return installments.message_values(cfg, camp, account, day)
    from ivr.campaign import outages

    return outages.message_values(cfg, camp, account)


def lang_of(cfg: Config, account: Account) -> str:
    return account.language or cfg.locale.language


def check(cfg: Config, speech: Any, camp: Campaign) -> None:
    """Refuse to start a campaign whose text (or menu text) is missing in a language its accounts speak."""
    from ivr.ledger.models import QueueEntry

    langs = {lang_of(cfg, a) for a in Account.select(Account.language).join(
        QueueEntry, on=(QueueEntry.account == Account.id)).where(QueueEntry.campaign == camp.id).distinct()}
    key = text_key(camp)
    for lang in sorted(langs):
        for k in (key, f"{camp.kind}.menu"):
            if not speech.has_text(lang, k):
                speech.template(lang, k)  # raises, naming the file to add


def context(cfg: Config, speech: Any, camp: Campaign, accounts: list[Account], day: date, *,
            attempt: str = "", shared: dict | None = None) -> CallContext:
    """The call flow's context for a call of a non-debt campaign: each account's kind text with its values, the
    kind's menu text in place of `menu`, and only the kind's menu keys (config installment.menu / outage.menu)."""
    if not accounts:
        raise ValueError("a call must carry at least one account")
    lang = lang_of(cfg, accounts[0])
    name = accounts[0].name
    key = text_key(camp)
    by_number = {a.number: a for a in accounts}
    menu_key = f"{camp.kind}.menu"

    def message(number: str) -> Any:
        acc = by_number[number]
        return speech.prompt(lang_of(cfg, acc), key, **values(cfg, camp, acc, day))

    def prompt(k: str) -> Any:
        real = menu_key if k == "menu" else k
        if shared is None or names_debtor(speech, lang, real, shared):
            return speech.prompt(lang, real, name=name)
        slot = ("kind-prompt", lang, real, speech.daypart_now() if hasattr(speech, "daypart_now") else "")
        hit = shared.get(slot)
        if hit is None:
            hit = shared[slot] = speech.prompt(lang, real, name=name)
        return hit

    return CallContext(accounts=list(by_number), lang=lang, settings=cfg.callflow, messages=message,
                       prompts=prompt, right_party_name=name, attempt=attempt,
                       menu_keys=kinds.menu_keys(cfg, camp.kind))
