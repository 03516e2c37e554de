"""The morning report as CSV for machines, and the callback lists operators work from.

`write_report_csv`: one row per person-attempt (a person never called gets one row with empty call fields),
UTF-8, comma-separated, numbers masked like every other report. `write_callback_lists`: one CSV per district
with the FULL number to dial (operators need it; this file is a work list, not a log), UTF-8 with a BOM so a
spreadsheet opens Cyrillic names correctly. Text cells that a spreadsheet would run as a formula are quoted
with a leading apostrophe.
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from ivr.report.data import CallbackRow, ReportData

REPORT_COLUMNS = [
    "date", "account", "name", "district", "number_masked", "debt", "final_outcome", "attempt_uuid",
    "call_time_local", "outcome", "outcome_label", "answered", "heard", "heard_ms", "message_ms", "digits",
    "hangup_cause", "duration_s", "paid_since_first_call",
]
CALLBACK_COLUMNS = ["account", "name", "number", "address", "requested_at", "debt"]


def safe_cell(value: str) -> str:
    """A text cell a spreadsheet will not evaluate ('=SUM(…)' → "'=SUM(…)")."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def report_rows(data: ReportData) -> Iterable[list[str]]:
    for p in data.people:
        head = [data.day.isoformat(), p.account, p.name, p.district, p.number_masked, f"{p.debt:.2f}",
                p.final_outcome]
        paid = f"{p.paid:.2f}"
        if not p.attempts:
            yield head + [""] * 11 + [paid]
        for a in p.attempts:
            yield head + [a.uuid, a.at_local.isoformat(timespec="seconds"), a.outcome, a.label,
                          str(int(a.answered)), str(int(a.heard)), str(a.heard_ms), str(a.message_ms), a.digits,
                          a.hangup_cause, str(a.duration_s), paid]


def write_report_csv(data: ReportData, path: Path) -> Path:
    """`ivr report --format csv`: the same formula-safe billing text as the console's download."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(REPORT_COLUMNS)
        w.writerows(spreadsheet_rows(report_rows(data), decimal_comma=False))
    return path


def district_file_name(district: str) -> str:
    """A file name for a district that is safe on any OS ('Old Town/North' -> 'Old_Town_North')."""
    slug = re.sub(r"[^\w-]+", "_", district, flags=re.UNICODE).strip("_")
    return (slug or "no-district") + ".csv"


def write_callback_lists(rows: list[CallbackRow], folder: Path) -> dict[str, Path]:
    """One CSV per district in `folder`; returns district -> file written."""
    folder.mkdir(parents=True, exist_ok=True)
    by_district: dict[str, list[CallbackRow]] = defaultdict(list)
    for r in rows:
        by_district[r.district].append(r)
    written: dict[str, Path] = {}
    used: set[str] = set()
    for district in sorted(by_district):
        name = district_file_name(district)
        stem, n = name[:-4], 2
        while name in used:  # two districts whose names differ only in punctuation
            name, n = f"{stem}-{n}.csv", n + 1
        used.add(name)
        path = folder / name
        with path.open("w", encoding="utf-8-sig", newline="") as f:
            w = csv.writer(f)
            w.writerow(CALLBACK_COLUMNS)
            for r in by_district[district]:
                w.writerow([safe_cell(r.account), safe_cell(r.name), r.number, safe_cell(r.address),
                            r.requested_at.strftime("%Y-%m-%d %H:%M"), f"{r.debt:.2f}"])
        written[district] = path
    return written


LIFE_SUPPORT_FILE = "_life-support.csv"  # no district file starts with "_" (district_file_name strips it); sorts first
LIFE_SUPPORT_COLUMNS = ["kind", "district", "account", "name", "number", "address", "debt"]


def write_life_support_list(items: list, folder: Path) -> Path:
    """The life-support accounts to inform in person (ivr.campaign.lifesupport.pending) as one CSV in `folder`,
    beside the callback lists (full numbers; UTF-8 with a BOM; formula-safe text)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LIFE_SUPPORT_FILE
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f)
        w.writerow(LIFE_SUPPORT_COLUMNS)
        for i in items:
            w.writerow([i.kind, safe_cell(i.district), safe_cell(i.account), safe_cell(i.name), i.number,
                        safe_cell(i.address), f"{i.debt:.2f}"])
    return path


MONEY_COLUMNS = ("debt", "paid_since_first_call")
BILLING_TEXT_COLUMNS = ("account", "name", "district")
NUMBER_LIKE_TEXT_COLUMNS = ("account", "number_masked")  # Excel would drop an account's leading zeros
_NUMBER_LIKE = re.compile(r"\+?[0-9][0-9*]*")


def excel_text(value: str) -> str:
    """A cell Excel keeps as text although it looks like a number ('00123' -> '="00123"', so its leading zeros
    and its 16th digit survive). Only digits (and a masked number's '+' and '*') are wrapped, so nothing from
    billing can become a formula; anything else is returned unchanged."""
    return f'="{value}"' if _NUMBER_LIKE.fullmatch(value) else value


def spreadsheet_rows(rows: Iterable[list[str]], decimal_comma: bool, excel: bool = False) -> Iterable[list[str]]:
    """Report rows made safe for a spreadsheet: billing text formula-safe (always, `ivr report`'s CSV too);
    with `decimal_comma`, money written with a comma (Excel in uk/ru/bg reads '12.50' as text or a date); with
    `excel`, account numbers and masked phone numbers kept as text (see excel_text)."""
    money = [REPORT_COLUMNS.index(c) for c in MONEY_COLUMNS]
    text = [REPORT_COLUMNS.index(c) for c in BILLING_TEXT_COLUMNS]
    number_like = [REPORT_COLUMNS.index(c) for c in NUMBER_LIKE_TEXT_COLUMNS] if excel else []
    for row in rows:
        row = list(row)
        for i in text:
            row[i] = safe_cell(row[i])
        for i in number_like:
            row[i] = excel_text(row[i])
        if decimal_comma:
            for i in money:
                row[i] = row[i].replace(".", ",")
        yield row
