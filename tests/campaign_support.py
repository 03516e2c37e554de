"""Helpers for the campaign tests: accounts with several numbers, a config with other retry settings, and a
dialer-like "place the call" step (the Attempt row, then the queue's bookkeeping)."""

from __future__ import annotations

import dataclasses
import itertools

import factories

from ivr.campaign import queue
from ivr.ledger.models import Account, Phone

_num = itertools.count(1000001)


def new_number() -> str:
    return f"+38050{next(_num):07d}"


def acc(*, phones: int | list[str] = 1, tz: str = "", debt: str = "500.00") -> Account:
    """An eligible debtor with `phones` numbers (positions 0, 1, …) or the given numbers."""
    numbers = [new_number() for _ in range(phones)] if isinstance(phones, int) else phones
    a = factories.account(phone=None, timezone=tz, debt=debt)
    for i, n in enumerate(numbers):
        Phone.create(account=a, position=i, raw=n, e164=n, valid=True)
    return a


def retry(cfg, **over):
    return cfg.replace(retry=dataclasses.replace(cfg.retry, **over))


def place(camp, cand, outcome, cause, clock, *, cfg=None):
    """What the dialer does around one call: the Attempt row, then the queue's bookkeeping."""
    att = factories.attempt(camp, cand.account, clock.now(), outcome, e164=cand.e164, hangup_cause=cause,
                            accounts=",".join(cand.account_numbers))
    return queue.record_candidate_result(cand, outcome, cause, clock, att, cfg=cfg)
