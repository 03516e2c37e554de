"""The evening's hold-out group: a random share of eligible debtors who are not contacted that evening.

Owns the draw and the question "is this account held out tonight?". The draw is made once per campaign, when
the evening first starts (`ivr.campaign.queue.start_campaign`, inside its write lock, before any entry is
queued): `campaign.holdout_share` of the eligible accounts, rounded half up, drawn with `random.Random(seed)`
from the accounts sorted by id, where the seed is a fresh random token recorded on the Campaign row
(holdout_seed) together with the share and the count, so the draw can be re-done and checked (`redraw`).
Accounts held out on the latest earlier campaign are left out of the pool: nobody is held out two evenings in
a row. A resumed evening reads its draw back and never draws again (accounts that become eligible later that
evening are simply contacted).

Every channel asks `held_out(campaign, account_id)` (or `held_out_ids`) before contacting anyone.
"""

from __future__ import annotations

import logging
import random
import secrets
from collections.abc import Iterable
from datetime import date, datetime

from ivr.config import Config
from ivr.ledger.models import Campaign, Holdout

log = logging.getLogger(__name__)

_CHUNK = 500


def target_count(share: float, eligible: int) -> int:
    """How many of `eligible` accounts a share holds out (rounded half up, so 5 % of 10 is 1)."""
    return int(share * eligible + 0.5) if share > 0 else 0


def pick(seed: str, pool: Iterable[int], k: int) -> list[int]:
    """The draw itself: `k` account ids from `pool`, reproducible from `seed`."""
    ordered = sorted(set(pool))
    return sorted(random.Random(seed).sample(ordered, min(k, len(ordered))))


def previous_campaign(day: date) -> Campaign | None:
    return Campaign.select().where(Campaign.day < day, Campaign.kind == "debt").order_by(Campaign.day.desc()).first()


def held_out_ids(campaign: Campaign | int) -> set[int]:
    """Account ids held out in `campaign`."""
    cid = campaign if isinstance(campaign, int) else campaign.id
    return {a for (a,) in Holdout.select(Holdout.account).where(Holdout.campaign == cid).tuples()}


def held_out(campaign: Campaign | int | None, account_id: int) -> bool:
    if campaign is None:
        return False
    cid = campaign if isinstance(campaign, int) else campaign.id
    return Holdout.select().where(Holdout.campaign == cid, Holdout.account == account_id).exists()


def draw(cfg: Config, camp: Campaign, eligible: Iterable[int], now: datetime) -> set[int]:
    """The held-out accounts of `camp`: drawn now if this evening has no draw yet, else the recorded ones.

    Call inside the campaign start's write transaction: two processes starting the same evening then draw once.
    """
    fresh = Campaign.get_by_id(camp.id)
    if fresh.holdout_seed:
        return held_out_ids(camp)
    eligible = set(eligible)
    share = cfg.campaign.holdout_share
    prev = previous_campaign(camp.day)
    barred = held_out_ids(prev) if prev is not None else set()
    seed = secrets.token_hex(8)
    chosen = pick(seed, eligible - barred, target_count(share, len(eligible)))
    rows = [{"campaign": camp.id, "account": a, "drawn_at": now} for a in chosen]
    for i in range(0, len(rows), _CHUNK):
        Holdout.insert_many(rows[i:i + _CHUNK]).execute()
    Campaign.update(holdout_share=share, holdout_seed=seed, holdout_count=len(chosen)).where(
        Campaign.id == camp.id).execute()
    camp.holdout_share, camp.holdout_seed, camp.holdout_count = share, seed, len(chosen)
    log.info("event=holdout_drawn campaign=%s day=%s share=%s eligible=%d barred=%d held_out=%d seed=%s",
             camp.id, camp.day, share, len(eligible), len(barred & eligible), len(chosen), seed)
    return set(chosen)


def redraw(camp: Campaign, eligible: Iterable[int]) -> list[int]:
    """Re-do a recorded draw from its seed over the same eligible set (for an audit of the draw)."""
    prev = previous_campaign(camp.day)
    barred = held_out_ids(prev) if prev is not None else set()
    eligible = set(eligible)
    return pick(camp.holdout_seed, eligible - barred, target_count(camp.holdout_share, len(eligible)))
