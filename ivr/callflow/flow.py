"""The IVR of one answered call: greeting, right-party check, the message, the heard rule, the menu, goodbye.

`run_call(session, ctx)` runs in the greenlet the outbound-socket server gives each call, on an already answered
channel, and returns the facts (CallResult); it writes nothing itself and never raises. Steps:

1. `set playback_terminators` = `12` with barge-in (those keys end the message and count as attention) or `none`
   (no key can cut the message short), unless the channel has it already (the dialer's originate sets it), then
   the `greeting` prompt. With cfg.callflow.machine_detection on,
   machine.detect runs first (it may play the greeting itself); a machine gets machine_message or nothing and
   the call ends with outcome `machine` (no message, no menu).
2. Optional right-party check (cfg.callflow.right_party_check): play_and_get_digits on the `right_party` prompt,
   valid keys 1 (it is me) and 9 (wrong number). Anything else: nobody hears the amount; outcome not_heard.
3. Each account's message with `playback`, judged by heard.judge (a barge-in key goes straight to its choice).
4. The menu: `play_and_get_digits 1 1 <menu_rounds> <menu_timeout> # <menu> <invalid> ivr_choice [12390]
   <digit_timeout>`; the choice is read from the EXECUTE_COMPLETE (`variable_read_result: success` and
   `variable_ivr_choice`; a real FreeSWITCH reports `failure` on a timeout and keeps variables from earlier
   reads, so ivr_choice alone is not trusted). 1 pay now (prompt, then `transfer` to the configured target and
   no further commands: the socket stays open after a transfer and the session ends by itself), 2 callback,
   3 already paid, 9 wrong number, callflow.optout_key (default 8) "do not call this number again" (each: its
   prompt, then hang up), 0 replay the message (at most replays_max; after that 0 is no longer a valid key), no
   choice: `no_input`, `goodbye`, hang up.
A caller hang-up at any point ends the flow at once with the facts known so far. Any other exception is logged
with the call's uuid, the call is hung up if still up, and the facts known so far come back with the error in
`detail`.
"""

from __future__ import annotations

import logging
from typing import Any

from ivr.callflow import machine
from ivr.callflow.context import CallContext
from ivr.callflow.heard import judge
from ivr.callflow.results import MACHINE, AccountOutcome, CallResult, choice_outcome, strongest

log = logging.getLogger("ivr.callflow")

BARGE_IN_KEYS = "12"
CHOICE_VAR = "ivr_choice"
PARTY_VAR = "ivr_party"
# what each choice plays before the call ends
CHOICE_PROMPTS = {"1": "pay_now", "2": "callback_confirmed", "3": "already_paid", "9": "wrong_number"}
OPTOUT_PROMPT = "optout_confirmed"  # after callflow.optout_key
EXEC_MARGIN_S = 30.0  # on top of the longest a media app can legitimately take


class _CallerGone(Exception):
    """The channel hung up: stop issuing commands."""


def _safe(value: str, what: str, spaces: bool = True) -> str:
    if not value or "\r" in value or "\n" in value or "\0" in value:
        raise ValueError(f"unsafe {what}: {value!r}")
    if not spaces and any(c.isspace() for c in value):
        raise ValueError(f"{what} must not contain spaces (play_and_get_digits splits on them): {value!r}")
    return value


class _Call:
    """One call's state while the flow runs: the session, the context and the facts gathered so far."""

    def __init__(self, session: Any, ctx: CallContext) -> None:
        self.session = session
        self.ctx = ctx
        self.s = ctx.settings
        self.result = CallResult(accounts={a: AccountOutcome(a) for a in ctx.accounts})
        self.transferring = False

    # -- talking to the channel ------------------------------------------------------------------------------
    def exec(self, app: str, arg: str, seconds: float) -> Any:
        res = self.session.execute(app, arg, timeout=seconds * 1.5 + EXEC_MARGIN_S)
        keys = "".join(getattr(res, "dtmf", None) or [])
        if keys:
            self.result.add_digits(keys)
        if getattr(res, "hungup", False) or self.session.hungup:
            self._gone()
        return res

    def _gone(self) -> None:
        raise _CallerGone()

    def play(self, key: str) -> Any:
        r = self.ctx.prompt(key)
        return self.exec("playback", _safe(r.playback, f"prompt {key}"), r.duration_ms / 1000)

    def digits(self, prompt_key: str, var: str, valid: str) -> str:
        """One play_and_get_digits; the accepted key or '' (timeout / invalid on every try)."""
        s = self.s
        prompt, invalid = self.ctx.prompt(prompt_key), self.ctx.prompt("invalid")
        arg = (f"1 1 {s.menu_rounds} {s.menu_timeout_ms} # {_safe(prompt.playback, prompt_key, spaces=False)} "
               f"{_safe(invalid.playback, 'invalid', spaces=False)} {var} [{valid}] {s.digit_timeout_ms}")
        longest = s.menu_rounds * (prompt.duration_ms + invalid.duration_ms + s.menu_timeout_ms + s.digit_timeout_ms)
        res = self.exec("play_and_get_digits", arg, longest / 1000)
        ev = res.complete
        if ev is None or ev.get("variable_read_result") != "success":
            return ""
        key = ev.get(f"variable_{var}") or ""
        if len(key) != 1 or key not in valid:
            return ""
        if not getattr(res, "dtmf", None):
            self.result.add_digits(key)
        return key

    # -- steps -----------------------------------------------------------------------------------------------
    def right_party(self) -> bool:
        """Ask for the named person; True to go on with the message."""
        key = self.digits("right_party", PARTY_VAR, "19")
        r = self.result
        if key == "1":
            r.right_party = True
            return True
        if key == "9":
            r.right_party = False
            r.choice = "9"
            r.note("right-party check: wrong number")
            self.play("wrong_number")
            return False
        r.right_party = False
        r.note("right-party check: not confirmed")
        self.play("goodbye")
        return False

    def barge_keys(self) -> str:
        """The keys that may cut the message short: 1 and 2, those of them the menu offers."""
        if not self.s.barge_in:
            return ""
        return "".join(k for k in BARGE_IN_KEYS if not self.ctx.menu_keys or k in self.ctx.menu_keys)

    def messages(self) -> tuple[str, bool]:
        """Play every account's message once; (barge-in key or '', whether any message played at all)."""
        keys = self.barge_keys()
        any_played = False
        for account in self.ctx.accounts:
            rendered = self.ctx.message(account)
            acc = self.result.accounts[account]
            acc.message_ms = rendered.duration_ms
            acc.played = True
            res = self.session.execute("playback", _safe(rendered.playback, f"message of {account}"),
                                       timeout=rendered.duration_ms / 1000 * 1.5 + EXEC_MARGIN_S)
            verdict = judge(res, rendered.duration_ms, self.s.heard_share, keys)
            acc.heard_ms = max(acc.heard_ms, verdict.heard_ms)
            acc.heard = acc.heard or verdict.heard
            self.result.note(f"{account}: {verdict.why}")
            dtmf = "".join(getattr(res, "dtmf", None) or [])
            self.result.add_digits(dtmf or verdict.key)
            if getattr(res, "hungup", False) or self.session.hungup:
                self._gone()
            complete = res.complete
            if complete is not None and (complete.get("Application-Response") == "FILE PLAYED"):
                any_played = True
            if verdict.key:
                return verdict.key, True
        return "", any_played

    def menu(self) -> str:
        valid = "1239" + self.s.optout_key + ("0" if self.result.replays < self.s.replays_max else "")
        if self.ctx.menu_keys:  # a campaign kind's menu (ivr.campaign.kinds): only its keys
            valid = "".join(k for k in valid if k in self.ctx.menu_keys)
        return self.digits("menu", CHOICE_VAR, valid) if valid else ""

    def act(self, choice: str) -> None:
        r = self.result
        if not choice:
            r.note("no choice in the menu")
            self.play("no_input")
            self.play("goodbye")
            return
        r.choice = choice
        if choice == "2":
            r.callback = True
        optout = bool(self.s.optout_key) and choice == self.s.optout_key
        if optout:
            r.opted_out = True  # set before the prompt: a hang-up during the confirmation still counts
        self.play(OPTOUT_PROMPT if optout else CHOICE_PROMPTS[choice])
        if choice == "1":
            target = self.ctx.transfer_target
            self.transferring = True
            res = self.exec("transfer", target, 10.0)
            r.transferred = res.complete is not None
            r.note(f"transferred to {target}" if r.transferred else "transfer not confirmed")

    def run(self) -> None:
        s = self.s
        # set even without barge-in: the default terminator '*' would otherwise cut the message short (the
        # dialer's originate sets the usual value on the channel: then the connect reply shows it, no command goes)
        terminators = self.barge_keys() or "none"
        if self.session.variable("playback_terminators") != terminators:
            self.session.set("playback_terminators", terminators)
        if self.session.hungup:
            self._gone()
        greeted = False
        if s.machine_detection != "off":
            verdict = machine.detect(self)
            self.result.machine_checked = True
            self.result.note(verdict.why)
            if verdict.machine:
                self.result.machine = True  # set first: a hang-up during the machine message still counts
                machine.answer_machine(self, verdict)
                return
            greeted = verdict.greeted
        if not greeted:
            self.play("greeting")
        if s.right_party_check and not self.right_party():
            return
        key, played = self.messages()
        if not played:
            self.result.note("no message could be played")
            return
        while True:
            choice = key or self.menu()
            key = ""
            if choice == "0":
                self.result.replays += 1
                key, _ = self.messages()
                continue
            self.act(choice)
            return

    # -- the end ---------------------------------------------------------------------------------------------
    def hang_up(self) -> None:
        if self.transferring or self.session.hungup:
            return
        try:
            self.session.hangup("NORMAL_CLEARING")
        except Exception as exc:  # the channel may be gone already; nothing more to do for it
            log.warning("call=%s hangup failed: %s", self.session.uuid, exc)

    def finish(self) -> CallResult:
        r = self.result
        ev = getattr(self.session, "hangup_event", None)
        if ev is not None:
            r.hangup_cause = ev.get("Hangup-Cause") or ""
        all_heard = all(a.heard for a in r.accounts.values())
        r.heard = all_heard
        r.heard_ms = sum(a.heard_ms for a in r.accounts.values())
        r.message_ms = sum(a.message_ms for a in r.accounts.values())
        chosen = choice_outcome(r.choice, self.s.optout_key)
        for acc in r.accounts.values():
            if r.machine:
                acc.outcome = MACHINE  # never heard by anyone: retried like no answer
            elif chosen:
                acc.outcome = chosen  # the person on the line speaks for every account of the number
            elif acc.heard:
                acc.outcome = "heard"
            elif r.caller_hung_up and r.right_party is not False:
                acc.outcome = "early_hangup"  # hung up before this message ended (or before it began)
            else:
                acc.outcome = "not_heard"
        outcomes = [a.outcome for a in r.accounts.values()]
        # one unheard message is enough to call the number again soon: heard only if every message was heard
        if not chosen and not all_heard:
            outcomes = [o for o in outcomes if o != "heard"]
        r.outcome = MACHINE if r.machine else strongest(outcomes)
        return r


def run_call(session: Any, ctx: CallContext) -> CallResult:
    """Run the IVR on one answered call; return what happened. Never raises."""
    call = _Call(session, ctx)
    try:
        call.run()
    except _CallerGone:
        call.result.caller_hung_up = True
    except Exception as exc:
        log.exception("call=%s attempt=%s call flow failed", getattr(session, "uuid", "?"), ctx.attempt)
        call.result.note(f"error: {type(exc).__name__}: {exc}"[:200])
    call.hang_up()
    result = call.finish()
    log.info("call=%s attempt=%s outcome=%s heard=%s heard_ms=%d message_ms=%d digits=%s", session.uuid,
             ctx.attempt, result.outcome, result.heard, result.heard_ms, result.message_ms, result.digits or "-")
    return result
