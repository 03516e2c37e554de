"""Campaign kinds: debt (the evening's reminders), installment (plan due dates), outage (planned and emergency).

What differs per kind, and where it is set:
- who is called: the kind's audience (debt: ivr.ledger.eligibility; installment: ivr.campaign.installments;
  outage: ivr.campaign.outages);
- the texts: debt in prompts/<lang>/messages.yaml, the others in prompts/<lang>/<kind>.yaml (ivr.speech.templates);
- the menu keys, windows and retry caps: the `installment:` and `outage:` sections of config (debt keeps
  `windows:`, `retry:` and the whole menu). `config_for` narrows a Config to one kind, so the queue's rules, the
  windows and the caps work unchanged on the narrowed config;
- the priority when several campaigns share one evening and one trunk cap: emergency outage > planned outage >
  installment > debt (lower number first; the dialer offers free slots to the campaigns in this order).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date, datetime

from ivr.config import CAMPAIGN_KINDS, Config, WindowsConfig
from ivr.errors import IvrError
from ivr.ledger.models import Campaign

KINDS = CAMPAIGN_KINDS  # debt, installment, outage (config names them for life_support.after_informed)

# lower is served first; fixed by the order (a setting would let a debt evening starve an emergency)
PRIORITY = {"emergency_outage": 0, "planned_outage": 1, "installment": 2, "debt": 3}

DEBT_MENU = "12390"  # the debt menu (and the opt-out key, when set): ivr.callflow.flow


@dataclass(frozen=True)
class KindInfo:
    """What `ivr campaigns` says about one campaign."""

    kind: str
    label: str  # e.g. "planned outage O7 v1, notice 3 days before"
    priority: int


@dataclass
class AudienceVerdict:
    """Is an account still to be called in a non-debt campaign (the pre-dial re-check), and why not."""

    account_id: int
    eligible: bool
    reasons: list[str] = field(default_factory=list)


def recheck(cfg: Config, campaign_id: int, account_ids: list[int], day: date,
            now: datetime | None = None) -> dict[int, AudienceVerdict]:
    """The kind's own rule, right before dialing: is each account still in the campaign's audience (an outage
    cancelled or moved, an installment paid meanwhile, a life-support flag set)?"""
    camp = Campaign.get_by_id(campaign_id)
    if camp.kind == "installment":
        from ivr.campaign import installments

        return installments.recheck(cfg, camp, account_ids, day)
    if camp.kind == "outage":
        from ivr.campaign import outages

        return outages.recheck(cfg, camp, account_ids, day, now)
    return {a: AudienceVerdict(a, True) for a in account_ids}


def priority_of(kind: str, emergency: bool = False) -> int:
    if kind == "outage":
        return PRIORITY["emergency_outage" if emergency else "planned_outage"]
    try:
        return PRIORITY[kind]
    except KeyError:
        raise IvrError(f"unknown campaign kind {kind!r}; kinds: {', '.join(KINDS)}") from None


def _every_day(windows: list[str], base: WindowsConfig, quiet: bool = True) -> WindowsConfig:
    return WindowsConfig(weekday=list(windows), weekend=list(windows), holiday=list(windows),
                         quiet_dates=list(base.quiet_dates) if quiet else [])


def config_for(cfg: Config, kind: str, *, emergency: bool = False) -> Config:
    """`cfg` narrowed to one campaign kind: its windows and attempt caps in `windows` / `retry`, and
    `campaign_kind` set (the queue and the rules read it). Debt is `cfg` itself, only marked."""
    if kind == "debt":
        return cfg if cfg.campaign_kind == "debt" else cfg.replace(campaign_kind="debt")
    if kind == "installment":
        sec = cfg.installment
        windows = _every_day(sec.windows, cfg.windows) if sec.windows else cfg.windows
    elif kind == "outage":
        sec = cfg.outage
        if emergency:
            windows = _every_day(sec.emergency_windows, cfg.windows, quiet=False)
        else:
            windows = _every_day(sec.windows, cfg.windows) if sec.windows else cfg.windows
    else:
        raise IvrError(f"unknown campaign kind {kind!r}; kinds: {', '.join(KINDS)}")
    retry = dataclasses.replace(cfg.retry, max_attempts_per_day=sec.max_attempts_per_day,
                                max_attempts_per_campaign=sec.max_attempts_per_campaign)
    return cfg.replace(windows=windows, retry=retry, campaign_kind=kind)


def config_for_campaign(cfg: Config, camp: Campaign) -> Config:
    """The narrowed config of an existing campaign (an emergency outage has priority 0)."""
    return config_for(cfg, camp.kind or "debt", emergency=camp.priority == PRIORITY["emergency_outage"])


def menu_keys(cfg: Config, kind: str) -> str:
    """The keys the call's menu accepts ('' = the whole debt menu)."""
    if kind == "installment":
        return "".join(cfg.installment.menu)
    if kind == "outage":
        return "".join(cfg.outage.menu)
    return ""


def describe(camp: Campaign) -> KindInfo:
    label = {"debt": "debt reminders", "installment": "installment reminders", "outage": "outage notice"}.get(
        camp.kind, camp.kind)
    if camp.kind == "installment":
        label = "installment reminder" if camp.ref == "remind" else "missed installment"
    elif camp.kind == "outage":
        kind = "emergency outage" if camp.priority == PRIORITY["emergency_outage"] else "planned outage"
        what = "correction" if camp.ref.endswith("-fix") else "notice"
        from ivr.ledger.models import Outage

        o = Outage.get_or_none(Outage.id == camp.outage_id)
        label = f"{kind} {o.code if o is not None else camp.ref.split('-')[0]} {what} ({camp.ref})"
    return KindInfo(camp.kind, label, camp.priority)
