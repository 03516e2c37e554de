"""The morning report as one self-contained HTML file a manager can open from disk.

Charts are drawn with matplotlib (the object API, no pyplot global state) to PNG and embedded as base64 data
URIs; the CSS is inline; nothing is loaded from a server or the internet. The page is rendered by Jinja2 from
templates/report.html with autoescaping on (names and addresses come from billing files).
"""

from __future__ import annotations

import base64
import io
from decimal import Decimal
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup, escape

from ivr.report.data import LABEL_ORDER, WINDOWS, ReportData

TEMPLATES = Path(__file__).parent / "templates"
_BLUE, _GREEN, _GREY, _ORANGE = "#2b6cb0", "#2f855a", "#a0aec0", "#dd6b20"


def money(value: Decimal | float | int) -> str:
    """1234.5 -> '1 234.50' (a narrow no-break space groups thousands)."""
    return f"{Decimal(value):,.2f}".replace(",", "\u202f")


def count(value: int) -> str:
    """12345 -> '12 345'."""
    return f"{value:,}".replace(",", "\u202f")


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f} %"


def ratio(part: int, whole: int) -> str:
    return percent(part / whole if whole else None)


def _figure(**kwargs: Any) -> Any:
    """A matplotlib Figure; matplotlib is imported on the first chart, not with this module (the console formats
    money with it on every page: importing matplotlib took 2 s of a debtor page's first view)."""
    from matplotlib.figure import Figure as MplFigure
    return MplFigure(**kwargs)


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _style(ax) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="y", color="#e2e8f0")
    ax.set_axisbelow(True)


def chart_hours(data: ReportData) -> str | None:
    if not data.hours:
        return None
    fig = _figure(figsize=(7, 3.2))
    ax = fig.subplots()
    xs = [h.hour for h in data.hours]
    ax.bar([x - 0.2 for x in xs], [h.calls for h in data.hours], width=0.4, label="calls", color=_BLUE)
    ax.bar([x + 0.2 for x in xs], [h.answers for h in data.hours], width=0.4, label="answered", color=_GREEN)
    ax.set_xticks(xs, [f"{x:02d}:00" for x in xs])
    ax.set_ylabel("calls")
    ax.set_title("Calls and answers by local hour")
    ax.legend(frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2)
    _style(ax)
    return _png(fig)


def chart_outcomes(data: ReportData) -> str | None:
    labels = [label for label in LABEL_ORDER if data.final_outcomes.get(label)]
    if not labels:
        return None
    fig = _figure(figsize=(7, 0.45 * len(labels) + 1))
    ax = fig.subplots()
    counts = [data.final_outcomes[label] for label in labels]
    colors = [_GREEN if label in ("pay now", "callback", "heard", "already paid") else
              _ORANGE if label in ("hung up early", "wrong number", "opted out", "invalid number", "failed") else _GREY
              for label in labels]
    ax.barh(labels[::-1], counts[::-1], color=colors[::-1])
    for y, c in enumerate(counts[::-1]):
        ax.text(c, y, f" {c}", va="center")
    ax.set_xlabel("people")
    ax.set_title("Final outcome per person")
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def chart_money(data: ReportData) -> str | None:
    if not any(m.accounts for m in data.money):
        return None
    fig = _figure(figsize=(7, 3.2))
    ax = fig.subplots()
    xs = list(range(len(WINDOWS)))
    for offset, m, color in ((-0.2, data.money[0], _GREEN), (0.2, data.money[1], _GREY)):
        values = [(m.share[n] or 0) * 100 for n in WINDOWS]
        bars = ax.bar([x + offset for x in xs], values, width=0.4, color=color,
                      label=f"{m.group} ({m.accounts} accounts)")
        ax.bar_label(bars, fmt="%.1f%%", fontsize=8)
    ax.set_xticks(xs, [f"within {n} day{'s' if n > 1 else ''}" for n in WINDOWS])
    ax.set_ylabel("% of their debt paid")
    ax.set_title("Money paid after the call, as a share of debt")
    ax.margins(y=0.15)
    ax.legend(frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2)
    _style(ax)
    return _png(fig)


def _css(label: str) -> str:
    return escape(label.replace(" ", "-"))


def people_rows(data: ReportData) -> Markup:
    """The per-person table body, built directly: a Jinja loop costs seconds on 100,000 people."""
    out = []
    for p in data.people:
        calls = "".join(f'<li>{a.at_local:%H:%M} <span class="tag {_css(a.label)}">{escape(a.label)}</span>'
                        + (" (called us back)" if a.inbound else "") + "</li>"
                        for a in p.attempts) or "<li>not called</li>"
        paid = "<br>".join(f"{money(x.amount)} on {x.paid_on:%d.%m}" for x in p.payments) or "–"
        out.append(
            f"<tr><td>{escape(p.account)}</td><td>{escape(p.name)}</td><td>{escape(p.district)}</td>"
            f"<td>{escape(p.number_masked)}</td><td class=\"num\">{money(p.debt)}</td>"
            f"<td><ul class=\"calls\">{calls}</ul></td>"
            f"<td><span class=\"tag {_css(p.final_label)}\">{escape(p.final_label)}</span></td>"
            f"<td class=\"num\">{paid}</td></tr>\n")
    return Markup("".join(out))


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters.update(money=money, percent=percent, count=count)
    env.globals.update(ratio=ratio, windows=WINDOWS, label_order=LABEL_ORDER)
    return env


def render_html(data: ReportData) -> str:
    charts = {"hours": chart_hours(data), "outcomes": chart_outcomes(data), "money": chart_money(data)}
    district_labels = [label for label in LABEL_ORDER if any(d.outcomes.get(label) for d in data.districts)]
    return _environment().get_template("report.html").render(
        d=data, t=data.totals, charts=charts, district_labels=district_labels, people_rows=people_rows(data))


def write_html(data: ReportData, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(data), encoding="utf-8")
    return path
