"""Results back to billing: `ivr export results --date D`, one CSV row per account per campaign day.

Columns (UTF-8, comma-separated, header row first):

- `date`           the campaign's local day, YYYY-MM-DD.
- `account`        the utility's account number, as imported.
- `final_outcome`  the account's final word for the evening, a code: the most significant outcome of its calls in
                   this order: pay_now, callback, already_paid, wrong_number, opted_out (pressed the opt-out
                   key: the number is on the do-not-call list), heard, early_hangup, not_heard,
                   invalid_number, busy, rejected, no_answer, congestion, trunk_error, rate_limited, failed, unknown,
                   in_progress (a call still up); `not_called` when the account was eligible but never dialled.
- `heard`          1 if any call of the evening played the message far enough to count as heard, else 0.
- `reached`        1 if any call was answered, else 0.
- `digits`         the keys pressed on the call that decided `final_outcome` (e.g. 1 pay now, 2 callback,
                   3 already paid, 9 wrong number, 8 opt-out, 0 replay), empty if none.
- `attempts`       how many calls were placed to the account that evening.
- `last_call_at`   start of the last call, ISO 8601 in the debtor's local time with its UTC offset
                   (2026-11-23T18:40:00+02:00); empty when not called.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from ivr.report.data import ReportData

EXPORT_COLUMNS = ["date", "account", "final_outcome", "heard", "reached", "digits", "attempts", "last_call_at"]


@dataclass
class ResultRow:
    date: date
    account: str
    final_outcome: str
    heard: bool
    reached: bool
    digits: str
    attempts: int
    last_call_at: str

    def cells(self) -> list[str]:
        return [self.date.isoformat(), self.account, self.final_outcome, str(int(self.heard)),
                str(int(self.reached)), self.digits, str(self.attempts), self.last_call_at]


def result_rows(data: ReportData) -> list[ResultRow]:
    rows = []
    for p in sorted(data.people, key=lambda p: p.account):
        deciding = p.deciding_attempt()
        last = p.attempts[-1].at_local.isoformat(timespec="seconds") if p.attempts else ""
        rows.append(ResultRow(data.day, p.account, p.final_outcome, p.heard, p.reached,
                              deciding.digits if deciding else "", len(p.attempts), last))
    return rows


def write_results(data: ReportData, path: Path) -> tuple[Path, int]:
    rows = result_rows(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(EXPORT_COLUMNS)
        w.writerows(r.cells() for r in rows)
    return path, len(rows)
