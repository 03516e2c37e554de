"""CallContext: everything the call flow needs to know about one call before it starts.

The dialer builds one per answered call: which accounts the call carries (a number shared by several accounts
is called once with all their messages, in order), the language, each account's rendered message and the
prompts (given as ready `Rendered` values or as callables that render on first use, so a slow or failing TTS
hits only this call), the cfg.callflow settings, the pay-now transfer target and the right-party name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ivr.config import CallflowConfig, Config

if TYPE_CHECKING:
    from ivr.speech import MessageFacts, Rendered, Speech

# keys of prompts/<lang>/messages.yaml the flow plays (the debt message itself comes from Speech.debt_message)
PROMPT_KEYS = ("greeting", "right_party", "menu", "invalid", "pay_now", "callback_confirmed", "already_paid",
               "wrong_number", "optout_confirmed", "no_input", "goodbye")

MACHINE_PROMPT_KEYS = ("machine_message", "are_you_there")  # played only with callflow.machine_detection on


def prompt_keys(settings: CallflowConfig) -> tuple[str, ...]:
    """The prompts a call may play with these settings (what the dialer renders before dialing)."""
    keys = tuple(k for k in PROMPT_KEYS if k != "right_party" or settings.right_party_check)
    return keys + (MACHINE_PROMPT_KEYS if settings.machine_detection != "off" else ())


# 'EXTENSION [DIALPLAN [CONTEXT]]' exactly as the transfer application takes it; nothing else reaches ESL
_TRANSFER_RE = re.compile(r"^[A-Za-z0-9_+*#.-]+( [A-Za-z0-9_.-]+){0,2}$")

RenderedSource = Mapping[str, "Rendered"] | Callable[[str], "Rendered"]


def check_transfer(target: str) -> str:
    """The transfer target if it is 'EXTENSION [DIALPLAN [CONTEXT]]' with safe characters, else ValueError."""
    if not _TRANSFER_RE.match(target or ""):
        raise ValueError(f"unsafe or malformed transfer target {target!r}: expected 'EXTENSION [DIALPLAN [CONTEXT]]'")
    return target


@dataclass
class CallContext:
    accounts: list[str]                      # account numbers whose messages this call carries, in order
    lang: str
    settings: CallflowConfig
    messages: RenderedSource                 # account number -> its rendered debt message
    prompts: RenderedSource                  # prompt key (PROMPT_KEYS) -> rendered prompt
    right_party_name: str = ""               # said in the right-party check
    paynow_transfer: str = ""                # '' = settings.paynow_transfer
    attempt: str = ""                        # the attempt id, for log lines
    menu_keys: str = ""                      # keys the menu offers ('' = the whole debt menu; campaign kinds)
    _cache: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not self.accounts:
            raise ValueError("a call must carry at least one account")

    @property
    def transfer_target(self) -> str:
        return check_transfer(self.paynow_transfer or self.settings.paynow_transfer)

    def message(self, account: str) -> Rendered:
        return self._get("message", account, self.messages)

    def prompt(self, key: str) -> Rendered:
        return self._get("prompt", key, self.prompts)

    def _get(self, kind: str, key: str, source: RenderedSource) -> Rendered:
        cached = self._cache.get((kind, key))
        if cached is None:
            cached = source[key] if isinstance(source, Mapping) else source(key)
            self._cache[(kind, key)] = cached
        return cached

    @classmethod
    def from_speech(cls, cfg: Config, speech: Speech, facts: Sequence[MessageFacts], *, right_party_name: str = "",
                    attempt: str = "", shared: dict | None = None) -> CallContext:
        """A context whose message and prompts are rendered by `speech` on first use (cached by Speech).

        `shared` (a dict kept by the caller across calls) lets prompts that do not name the debtor be asked of
        Speech once per process. Which prompts name the debtor is found per (language, key) from the text staff
        wrote (the shipped `menu` says the name, and staff may add {name} anywhere), never from a fixed list:
        a shared prompt carrying one debtor's name would be played to everyone else.
        """
        if not facts:
            raise ValueError("a call must carry at least one account's message facts")
        lang = facts[0].lang
        by_account = {f.account: f for f in facts}
        name = right_party_name or facts[0].name

        def render(key: str) -> Rendered:
            # the name is said in right_party and menu; the other values (company, office phone) come from cfg
            return speech.prompt(lang, key, name=name)

        def prompt(key: str) -> Rendered:
            if shared is None or names_debtor(speech, lang, key, shared):
                return render(key)
            # {hello} changes with the time of day (a stand-in speech without dayparts has one slot)
            slot = ("prompt", lang, key, speech.daypart_now() if hasattr(speech, "daypart_now") else "")
            hit = shared.get(slot)
            if hit is None:
                hit = shared[slot] = render(key)
            return hit

        return cls(accounts=list(by_account), lang=lang, settings=cfg.callflow,
                   messages=lambda acc: speech.debt_message(by_account[acc]), prompts=prompt,
                   right_party_name=name, attempt=attempt)


def names_debtor(speech: Speech, lang: str, key: str, memo: dict | None = None) -> bool:
    """Whether prompt `key` in `lang` says the debtor's name: its plan (texts and pauses; nothing is rendered)
    differs between two names. Remembered in `memo` per (language, key)."""
    memo = {} if memo is None else memo
    known = memo.get(("names_debtor", lang, key))
    if known is None:
        known = memo[("names_debtor", lang, key)] = (
            speech.plan(lang, key, name="Anna Kovalenko") != speech.plan(lang, key, name="Boris Shevchuk"))
    return known
