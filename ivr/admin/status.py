"""`ivr status`: the running campaign at a glance, from the ledger alone (works from any shell or machine).

`snapshot(cfg, now)` gathers everything in a few indexed reads (the queue and outcome counts are the
database's running tallies, ivr.ledger.tally: the cost does not grow with the campaign); `render(snap)` draws it for people with rich; `to_json(snap)` is for machines.
The metrics endpoint (metrics.py) reads the same snapshot.

DialerNode.stats is the dialer's JSON; read here: `reconnects` (int), `errors` (int, list of messages or
{kind: count}), and the counters `originate_errors`, `flow_errors`, `trunk_faults` when present.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import PurePath
from typing import Any

from ivr.admin.control import read_state
from ivr.config import Config
from ivr.errors import IvrError
from ivr.ledger import tally
from ivr.ledger.freshness import held_import, import_ages
from ivr.ledger.models import ATTEMPT_IN_FLIGHT, Attempt, Campaign, DialerNode

ALIVE_SECONDS = 30  # default: a dialer whose heartbeat is older is dead (config dialing.node_timeout_seconds; the
# same rule other dialer processes use to take a node's calls over)
RATE_WINDOW_SECONDS = 10
ERROR_OUTCOMES = ("failed", "trunk_error", "congestion", "rate_limited", "unknown")
QUEUE_STATES = ("waiting", "dialing", "done", "given_up")


@dataclass
class NodeState:
    name: str
    esl_state: str
    heartbeat_age_s: float
    alive: bool
    in_flight: int
    rate: float
    reconnects: int
    errors: int
    error_lines: list[str] = field(default_factory=list)
    clock_skew_s: float = 0.0  # the dialer's clock minus its heartbeat time: non-zero for a scaled (demo) clock
    clock_now: datetime | None = None  # naive UTC on the dialer's clock at its last heartbeat
    state: str = "alive"  # alive | dead (heartbeat older than the node timeout) | fenced (its calls were taken over)
    #                      | stopped (it ended cleanly)
    fenced_by: str = ""


@dataclass
class Snapshot:
    at: datetime
    campaign_day: date | None
    campaign_status: str
    campaign_reason: str
    command: str  # run | pause | stop | '' (not set)
    channels_in_use: int
    channels_cap: int
    cps_setting: float
    calls_per_second: float  # measured: calls started in the last RATE_WINDOW_SECONDS
    rate_limit: float  # what the live dialers allow now (after congestion back-off), 0 if none
    queue: dict[str, int]
    outcomes: dict[str, int]
    attempts: int
    esl_state: str
    esl_reconnects: int
    error_count: int
    errors: list[str] = field(default_factory=list)
    nodes: list[NodeState] = field(default_factory=list)
    # hours since the last applied accounts / payments import (None: never), and the limit ivr run applies
    data_age_hours: dict[str, float | None] = field(default_factory=dict)
    data_files: dict[str, str] = field(default_factory=dict)
    data_max_age_hours: int = 0
    # the evening's other campaigns (outage notices, installment reminders), served before the debt calls:
    # "label: waiting N, done N" (ivr.campaign.kinds; `ivr campaigns` has the detail)
    other_campaigns: list[str] = field(default_factory=list)
    held_import: str = ""  # the accounts file held by the anomaly guard ('' = none): ivr run refuses


def _current_campaign() -> Campaign | None:
    # the debt evening (other kinds' campaigns of the evening: `ivr campaigns`)
    debt = Campaign.kind == "debt"
    active = (Campaign.select().where(Campaign.status.in_(("running", "paused")), debt)
              .order_by(Campaign.day.desc()).first())
    return active or Campaign.select().where(debt).order_by(Campaign.day.desc()).first()


def _stats(raw: str) -> dict[str, Any]:
    try:
        value = json.loads(raw or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _count_errors(stats: dict[str, Any]) -> tuple[int, list[str]]:
    errors = stats.get("errors", 0)
    count, lines = 0, []
    if isinstance(errors, bool):
        errors = 0
    if isinstance(errors, int):
        count += errors
    elif isinstance(errors, list):
        count += len(errors)
        lines += [str(e) for e in errors[-3:]]
    elif isinstance(errors, dict):
        for kind, n in errors.items():
            if isinstance(n, int) and n:
                count += n
                lines.append(f"{kind}: {n}")
    for key in ("originate_errors", "flow_errors", "trunk_faults"):
        n = stats.get(key)
        if isinstance(n, int) and not isinstance(n, bool) and n:
            count += n
            lines.append(f"{key.replace('_', ' ')}: {n}")
    return count, lines


def _nodes(now_naive: datetime, timeout_s: float = ALIVE_SECONDS) -> list[NodeState]:
    """Every dialer node and whether it is alive: a fresh heartbeat AND not fenced. A node another process took
    over is never shown as running, even if its process came back (it rejoins under a new name)."""
    out = []
    for n in DialerNode.select().order_by(DialerNode.name):
        stats = _stats(n.stats)
        errors, lines = _count_errors(stats)
        age = (now_naive - n.heartbeat_at).total_seconds()
        reconnects = stats.get("reconnects", 0)
        fenced = getattr(n, "fenced_at", None) is not None
        alive = age < timeout_s and not fenced
        node = NodeState(n.name, n.esl_state or "unknown", age, alive, n.in_flight if alive else 0,
                         float(n.rate or 0) if alive else 0.0, reconnects if isinstance(reconnects, int) else 0,
                         errors, lines, state="alive" if alive else "dead" if not fenced else
                         "fenced" if getattr(n, "fenced_by", "") else "stopped",
                         fenced_by=getattr(n, "fenced_by", "") or "")
        try:
            clock_now = datetime.fromisoformat(str(stats.get("clock_now", "")))
            node.clock_now = clock_now.astimezone(UTC).replace(tzinfo=None) if clock_now.tzinfo else clock_now
            node.clock_skew_s = (node.clock_now - n.heartbeat_at).total_seconds()
        except ValueError:
            pass
        out.append(node)
    return out


def snapshot(cfg: Config, now: datetime | None = None) -> Snapshot:
    """The live state of the dialer(s) and the current campaign (running/paused, else the latest)."""
    now = now or datetime.now(UTC)
    now_naive = now.astimezone(UTC).replace(tzinfo=None)
    control = read_state()
    camp = _current_campaign()
    nodes = _nodes(now_naive, float(getattr(cfg.dialing, "node_timeout_seconds", ALIVE_SECONDS)))
    alive = [n for n in nodes if n.alive]
    in_use = Attempt.select().where(Attempt.state.in_(ATTEMPT_IN_FLIGHT)).count()
    # Attempt times are on the dialer's clock: a demo's scaled clock is measured on its own time line
    ref = now_naive
    skewed = [n for n in alive if n.clock_now is not None and abs(n.clock_skew_s) > 5]
    if skewed:
        ref = max(n.clock_now for n in skewed)
    recent = (Attempt.select().where(Attempt.created_at > ref - timedelta(seconds=RATE_WINDOW_SECONDS),
                                     Attempt.created_at <= ref).count())
    queue: dict[str, int] = dict.fromkeys(QUEUE_STATES, 0)
    outcomes: dict[str, int] = {}
    if camp is not None:
        # running counts kept by the database's triggers: no count over the campaign's rows (ivr.ledger.tally)
        queue.update(tally.counts("queue", camp.id))
        for outcome, n in tally.counts("outcome", camp.id).items():
            outcomes[outcome or "in_progress"] = n
    errors: list[str] = list(control.problems)
    error_count = len(control.problems)
    if camp is not None and camp.status_reason:
        errors.append(f"campaign {camp.status}: {camp.status_reason}")
        error_count += 1
    bad_calls = {o: outcomes[o] for o in ERROR_OUTCOMES if outcomes.get(o)}
    if bad_calls:
        errors.append("calls that failed: " + ", ".join(f"{o} {n}" for o, n in bad_calls.items()))
    for n in nodes:
        errors += [f"{n.name}: {line}" for line in n.error_lines]
    # the dialers' error counters and the failed calls mostly count the same failures: take the larger
    error_count += max(sum(bad_calls.values()), sum(n.errors for n in nodes))
    for n in nodes:
        if n.alive and n.esl_state != "connected":
            errors.append(f"{n.name}: FreeSWITCH connection {n.esl_state}")
    if not nodes:
        esl_state = "no dialer has run"
    elif not alive:
        esl_state = f"no dialer running (last heartbeat {min(n.heartbeat_age_s for n in nodes):.0f} s ago)"
    else:
        states = sorted({n.esl_state for n in alive})
        esl_state = states[0] if len(states) == 1 else "mixed: " + ", ".join(states)
    ages = import_ages(now)
    held = held_import()
    if held is not None:
        errors.append(f"accounts import HELD (anomaly): {PurePath(held.file).name}; ivr run refuses until it is "
                      "confirmed or replaced")
        error_count += 1
    others: list[str] = []
    if camp is not None:
        from ivr.campaign.kinds import describe
        from ivr.campaign.queue import counts

        for c in (Campaign.select().where(Campaign.day == camp.day, Campaign.kind != "debt")
                  .order_by(Campaign.priority, Campaign.id)):
            q = counts(c)
            others.append(f"{describe(c).label}: {c.status}, waiting {q.get('waiting', 0)}, "
                          f"dialing {q.get('dialing', 0)}, done {q.get('done', 0)}")
    return Snapshot(
        other_campaigns=others,
        held_import=PurePath(held.file).name if held is not None else "",
        data_age_hours={k: a.age_hours for k, a in ages.items()},
        data_files={k: PurePath(a.file).name for k, a in ages.items()},
        data_max_age_hours=cfg.eligibility.max_data_age_hours,
        at=now, campaign_day=camp.day if camp else None, campaign_status=camp.status if camp else "none",
        campaign_reason=camp.status_reason if camp else "", command=control.command or "",
        channels_in_use=in_use, channels_cap=control.channels or cfg.pacing.channels,
        cps_setting=control.cps or cfg.pacing.cps, calls_per_second=recent / RATE_WINDOW_SECONDS,
        rate_limit=sum(n.rate for n in alive), queue=queue, outcomes=outcomes,
        attempts=sum(outcomes.values()), esl_state=esl_state, esl_reconnects=sum(n.reconnects for n in nodes),
        error_count=error_count, errors=errors, nodes=nodes,
    )


@dataclass(frozen=True)
class Headline:
    """The campaign's state in words, as a code and its facts (the console words it per language).

    code: no_campaign | no_dialer | waiting_window | calling | paused | stopping | stopped | done
    A dead dialer is never "calling": when the campaign says running/paused but no dialer has a fresh
    heartbeat, the code is no_dialer with the minutes since the last one (None when none ever ran).
    """

    code: str
    by: str = ""  # who paused/stopped (from the audit log), '' when unknown
    at: datetime | None = None  # aware, locale.timezone: when paused/stopped, or when the window opens
    reason: str = ""  # the campaign's status_reason (a trunk fault, ...)
    minutes: int | None = None  # no_dialer: minutes since the last heartbeat


def headline(cfg: Config, snap: Snapshot) -> Headline:
    """What the campaign is doing now, in one code (see Headline); reads the audit log for who paused."""
    from zoneinfo import ZoneInfo

    from ivr.admin.control import last_command_change
    from ivr.campaign.windows import CallWindows

    tz = ZoneInfo(cfg.locale.timezone)
    status = snap.campaign_status
    if snap.campaign_day is None:
        return Headline("no_campaign")
    if status in ("done", "stopped"):
        return Headline(status, reason=snap.campaign_reason)
    alive = [n for n in snap.nodes if n.alive]
    if not alive:
        ages = [n.heartbeat_age_s for n in snap.nodes]
        return Headline("no_dialer", minutes=int(min(ages) // 60) if ages else None, reason=snap.campaign_reason)
    change = last_command_change()
    if snap.command == "stop":
        return Headline("stopping", by=change.actor if change and change.command == "stop" else "",
                        at=_local(change.at, tz) if change and change.command == "stop" else None)
    if status == "paused" or snap.command == "pause":
        by_command = snap.command == "pause" and change is not None and change.command == "pause"
        return Headline("paused", by=change.actor if by_command else "",
                        at=_local(change.at, tz) if by_command else None,
                        reason="" if by_command else snap.campaign_reason)
    # the dialers' own clock (a demo runs a scaled one) decides whether a window is open
    clocks = [n.clock_now for n in alive if n.clock_now is not None]
    ref = (max(clocks) if clocks else snap.at.astimezone(UTC).replace(tzinfo=None)).replace(tzinfo=UTC)
    windows = CallWindows(cfg)
    if snap.channels_in_use == 0 and not windows.is_open(tz, ref):
        try:
            opens = windows.next_open(tz, ref)
        except IvrError:  # no window within the search horizon: say waiting without a time
            opens = None
        return Headline("waiting_window", at=opens.astimezone(tz) if opens else None)
    return Headline("calling")


def _local(at: datetime, tz: Any) -> datetime:
    return at.replace(tzinfo=UTC).astimezone(tz)


def to_json(snap: Snapshot) -> str:
    def default(o: Any) -> Any:
        if isinstance(o, (datetime, date)):
            return o.isoformat()
        raise TypeError(type(o).__name__)
    return json.dumps(dataclasses.asdict(snap), default=default, indent=2, sort_keys=True)


def data_ages_text(snap: Snapshot) -> Any:
    """'accounts 5.2 h ago (file), payments 3.0 h ago (file)', red when past eligibility.max_data_age_hours."""
    from rich.text import Text

    out = Text()
    limit = snap.data_max_age_hours
    for i, (kind, age) in enumerate(snap.data_age_hours.items()):
        if i:
            out.append(", ")
        if age is None:
            out.append(f"{kind} never imported", style="red" if limit else "")
            continue
        out.append(f"{kind} {age:.1f} h ago", style="red" if limit and age > limit else "")
        out.append(f" ({snap.data_files.get(kind, '')})")
    if limit:
        out.append(f"; ivr run needs both under {limit} h")
    if snap.held_import:
        out.append(f"; accounts import HELD: {snap.held_import}", style="bold red")
    return out


def render(snap: Snapshot) -> Any:
    """A rich renderable: headline, pacing, queue, outcomes, FreeSWITCH, errors."""
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    day = snap.campaign_day.isoformat() if snap.campaign_day else "no campaign"
    head = Text.assemble((f"Campaign {day}: ", "bold"), (snap.campaign_status, "bold cyan"),
                         f"   command: {snap.command or 'not set (run)'}")
    pace = Table.grid(padding=(0, 2))
    pace.add_row("Channels in use", f"{snap.channels_in_use} / {snap.channels_cap}")
    pace.add_row("Calls per second", f"{snap.calls_per_second:.1f} now (last {RATE_WINDOW_SECONDS} s), "
                                     f"limit {snap.cps_setting:g}"
                 + (f", dialer allows {snap.rate_limit:.2f}" if snap.rate_limit else ""))
    pace.add_row("FreeSWITCH", f"{snap.esl_state}, {snap.esl_reconnects} reconnect(s)")
    pace.add_row("Billing data", data_ages_text(snap))
    queue = Table(title="Queue", show_header=True, header_style="bold")
    for s in snap.queue:
        queue.add_column(s, justify="right")
    queue.add_row(*[str(v) for v in snap.queue.values()])
    outcomes = Table(title=f"Outcomes so far ({snap.attempts} calls)", header_style="bold")
    outcomes.add_column("outcome")
    outcomes.add_column("calls", justify="right")
    for o, n in sorted(snap.outcomes.items(), key=lambda kv: -kv[1]):
        outcomes.add_row(o, str(n))
    nodes = Table(title="Dialers", header_style="bold")
    for col in ("name", "state", "FreeSWITCH", "heartbeat", "in flight", "rate"):
        nodes.add_column(col)
    for n in snap.nodes:
        # (fenced_by: --json)
        state = Text("alive", style="green") if n.alive else Text(n.state, "dim" if n.state == "stopped" else "red")
        nodes.add_row(n.name, state, n.esl_state if n.alive else "-", f"{n.heartbeat_age_s:.0f} s ago",
                      str(n.in_flight), f"{n.rate:.2f}/s")
    parts: list[Any] = [head, pace, queue, outcomes]
    if snap.other_campaigns:
        parts.insert(1, Text("Also tonight, served first: " + "; ".join(snap.other_campaigns)))
    if snap.nodes:
        parts.append(nodes)
    if snap.errors:
        parts.append(Panel("\n".join(snap.errors[-8:]), title=f"Errors ({snap.error_count})", border_style="red"))
    else:
        parts.append(Text("No errors.", style="green"))
    return Panel(Group(*parts), title=f"ivr status  {snap.at.astimezone(UTC):%H:%M:%S} UTC")
