"""What one answered call came to: `CallResult`, the facts the call flow hands back to the dialer.

The call flow writes nothing itself; the dialer stores these facts on the Attempt row (outcome, heard, heard_ms,
message_ms, digits, detail), writes a CallbackRequest when `callback` is set, and re-queues per account.

Outcome vocabulary: the Attempt docstring in ivr/ledger/models.py. The call flow only ever produces
pay_now | callback | already_paid | wrong_number | opted_out | heard | early_hangup | not_heard | machine
(machine: an answering machine was detected; it heard no message, and the debtor is retried like no answer).
When several facts hold, the highest in OUTCOME_PRECEDENCE wins (a debtor who pressed 1 heard enough to act;
one who heard the message and hung up in the menu still heard it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# highest first: what the debtor asked for beats what we observed
OUTCOME_PRECEDENCE = ("pay_now", "callback", "already_paid", "wrong_number", "opted_out", "heard", "early_hangup",
                      "not_heard")

CHOICE_OUTCOMES = {"1": "pay_now", "2": "callback", "3": "already_paid", "9": "wrong_number"}
MACHINE = "machine"  # outside OUTCOME_PRECEDENCE: a machine's call has no other facts
OPTED_OUT = "opted_out"  # the choice of callflow.optout_key (configurable, so not in CHOICE_OUTCOMES)


def choice_outcome(choice: str, optout_key: str = "") -> str:
    """The outcome a menu choice stands for ('' for none)."""
    if optout_key and choice == optout_key:
        return OPTED_OUT
    return CHOICE_OUTCOMES.get(choice, "")

DIGITS_MAX = 32  # Attempt.digits column width


def strongest(outcomes: list[str]) -> str:
    """The outcome that wins by OUTCOME_PRECEDENCE; 'not_heard' for an empty list."""
    ranked = [o for o in OUTCOME_PRECEDENCE if o in outcomes]
    return ranked[0] if ranked else "not_heard"


@dataclass
class AccountOutcome:
    """One account's share of a call (a number shared by several accounts carries all their messages)."""

    account: str
    outcome: str = "not_heard"
    heard: bool = False
    heard_ms: int = 0      # best position reached in this account's message (any replay)
    message_ms: int = 0    # stored length of this account's message
    played: bool = False   # its message was started at least once


@dataclass
class CallResult:
    outcome: str = "not_heard"
    heard: bool = False            # every message of the call was heard (by position or by a barge-in key)
    heard_ms: int = 0              # sum over accounts of the position reached
    message_ms: int = 0            # sum over accounts of the stored message lengths
    digits: str = ""               # keys the caller pressed, in order (DTMF events; the accepted choice if none)
    choice: str = ""               # the accepted menu choice: 1, 2, 3, 9 or the opt-out key ('' = none)
    accounts: dict[str, AccountOutcome] = field(default_factory=dict)
    callback: bool = False         # key 2: the dialer writes a CallbackRequest (district, number)
    opted_out: bool = False        # callflow.optout_key: the dialer puts the number on the do-not-call list
    transferred: bool = False      # key 1: the transfer to cfg.callflow.paynow_transfer was executed
    right_party: bool | None = None  # None = not asked; True = pressed 1; False = did not confirm
    replays: int = 0               # times key 0 replayed the message
    caller_hung_up: bool = False   # the far end hung up before the flow ended the call itself
    machine: bool = False          # an answering machine answered (callflow.machine_detection)
    machine_checked: bool = False  # the detector reached a verdict (False: off, or the far end hung up first)
    hangup_cause: str = ""         # from the CHANNEL_HANGUP the flow saw, if any
    detail: str = ""               # why, in a few words (errors included)

    def add_digits(self, keys: str) -> None:
        self.digits = (self.digits + keys)[:DIGITS_MAX]

    def note(self, text: str) -> None:
        self.detail = f"{self.detail}; {text}" if self.detail else text
