"""`ivr call ACCOUNT --to NUMBER`: one call with an account's message to a staff phone, through the normal path.

The same Dialer places it (Attempt row first, bgapi originate, call flow, result written), fed by a queue of
exactly one candidate and no campaign: windows and queue rules do not apply to a staff test call. The Attempt is
written with kind 'test': it never counts against the debtor's caps, outcomes or eligibility (ivr.campaign.rules
and the report leave test attempts out), and keys pressed on it change nothing of the debtor's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ivr.clock import Clock
from ivr.config import Config
from ivr.ledger.models import Account, Attempt


@dataclass
class _StaffPhone:
    e164: str


@dataclass
class _Once:
    """A queue that hands out one candidate, then nothing."""

    candidate: Any
    handed: bool = False
    results: list = field(default_factory=list)

    def next_candidates(self, campaign, clock, limit, busy_accounts, busy_numbers):
        if self.handed or limit < 1:
            return []
        self.handed = True
        return [self.candidate]

    def record_result(self, entry, outcome, cause, clock, attempt=None):
        self.results.append((outcome, cause))

    def release(self, entries, clock):
        self.handed = False

    def next_wakeup(self, campaign):
        return None if self.handed else clock_now_marker


clock_now_marker = object()


def place_test_call(cfg: Config, esl: Any, clock: Clock, speech: Any, account: Account, e164: str,
                    **dialer_kwargs: Any) -> Attempt:
    """Place the call, wait until it is over, return its Attempt row."""
    from ivr.campaign.queue import Candidate
    from ivr.dialer.dialer import Dialer

    queue = _Once(Candidate(None, account, _StaffPhone(e164), []))  # type: ignore[arg-type]
    dialer = Dialer(cfg, esl, clock, speech, node="test-call", queue=queue, attempt_kind="test", **dialer_kwargs)
    dialer.start()
    try:
        dialer.run(None)
    finally:
        dialer.stop()
    return (Attempt.select().where(Attempt.node == "test-call", Attempt.kind == "test")
            .order_by(Attempt.id.desc()).get())
