"""Reading the smaller exports (installment plans, supply points, outages) with the accounts import's machinery.

The same CSV reading (UTF-8 or Windows-1251, delimiter , ; or tab, a title line above the header: ivr.ledger.csvread),
the same column matching without regard to case, and the same rejects: a bad row is reported with its line
number and reason and written to a rejects CSV in the input's own format (ivr.ledger.importer._Rejects), while
every good row still loads. Each import is recorded as an ImportRun (kind plans | supply_points | outages) and in
the audit log. The kinds' own modules parse and apply the rows (ivr.campaign.installments, ivr.campaign.outages).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path

from ivr.config import Config
from ivr.ledger import audit
from ivr.ledger.csvread import CsvFile, CsvFormatError, parse_amount, parse_date
from ivr.ledger.importer import ImportReport, RowError, _Rejects, clean_account_number, resolve_columns
from ivr.ledger.models import Account, ImportRun, utcnow

_TIME_RE = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)(:[0-5]\d)?$")


@dataclass
class Rows:
    """The file's readable rows: (line, {field: value}, raw cells), and where rejects go."""

    report: ImportReport
    rejects: _Rejects
    items: list[tuple[int, dict[str, str], list[str]]] = field(default_factory=list)

    def reject(self, line: int, reason: str, raw: list[str]) -> None:
        self.rejects.add(line, reason, raw)


@contextmanager
def reading(cfg: Config, path: str | Path, kind: str, columns: dict[str, str], required: tuple[str, ...]
            ) -> Iterator[Rows]:
    """Open `path`, match `columns` (our field -> column name) and yield its rows; the rejects file is closed and
    the rejects sorted by line when the block ends."""
    path = Path(path)
    report = ImportReport(kind=kind, file=str(path))
    rejects = _Rejects(report, cfg.path(cfg.imports.rejects_dir), path, kind)
    try:
        with CsvFile(path, cfg.imports.encoding, cfg.imports.delimiter, list(columns.values())) as f:
            rejects.set_format(f.header, f.format.encoding, f.format.delimiter)
            try:
                cols = resolve_columns(f.header, columns, required, path)
            except CsvFormatError as exc:  # the accounts wording names account_columns: say this file's names
                wanted = ", ".join(f"{columns[r]!r}" for r in required)
                raise CsvFormatError(f"{str(exc).split('. Map ')[0]}. A {kind} file needs the columns {wanted} "
                                     "(any case).") from None
            rows = Rows(report, rejects)
            for row in f.rows():
                report.rows += 1
                if row.error:
                    rows.reject(row.line, row.error, row.raw)
                    continue
                rows.items.append((row.line, {k: row.raw[i].strip() for k, i in cols.items()}, row.raw))
            yield rows
    finally:
        rejects.close()
        report.rejected.sort(key=lambda r: r.line)


def apply_rows(rows: Rows, apply: Callable[[int, dict[str, str]], str]) -> None:
    """Apply each row: `apply` returns 'new' | 'updated' | 'unchanged' or raises RowError (a reject)."""
    for line, values, raw in rows.items:
        try:
            what = apply(line, values)
        except RowError as exc:
            rows.reject(line, str(exc), raw)
            continue
        if what == "new":
            rows.report.loaded += 1
        elif what == "updated":
            rows.report.updated += 1
        else:
            rows.report.unchanged += 1


def record_run(rows: Rows, actor: str, started: datetime) -> None:
    """The ImportRun row and the audit line of a finished import (who loaded what into the ledger)."""
    r = rows.report
    ImportRun.create(kind=r.kind, file=r.file[:400], started_at=started, finished_at=utcnow(), rows=r.rows,
                     loaded=r.loaded, updated=r.updated, unchanged=r.unchanged, rejected=len(r.rejected),
                     rejects_file=str(r.rejects_file or "")[:400])
    audit.record(actor, f"import.{r.kind}", r.file, {"rows": r.rows, "new": r.loaded, "updated": r.updated,
                                                     "unchanged": r.unchanged, "rejected": len(r.rejected)})


# --- values -----------------------------------------------------------------------------------------------------

def account_of(cfg: Config, value: str, cache: dict[str, Account | None]) -> Account:
    """The ledger's account for a number in a file (RowError when malformed or unknown)."""
    number = clean_account_number(value, cfg.imports.account_number_pattern)  # RowError when malformed
    if number not in cache:
        cache[number] = Account.get_or_none(Account.number == number)
    acc = cache[number]
    if acc is None:
        raise RowError(f"account {number!r} is not in the ledger (import the accounts first)")
    return acc


def amount(cfg: Config, value: str, what: str) -> Decimal:
    try:
        got = parse_amount(value, cfg.imports.decimal)
    except ValueError as exc:
        raise RowError(f"{what}: {exc}") from None
    if got <= 0:
        raise RowError(f"{what}: {value!r} must be above zero")
    return got


def day(cfg: Config, value: str, what: str) -> date:
    try:
        return parse_date(value, cfg.imports.date_format)
    except ValueError as exc:
        raise RowError(f"{what}: {exc}") from None


def local_moment(cfg: Config, value: str, what: str, tz: str | None = None) -> datetime:
    """'YYYY-MM-DD HH:MM' (or DD.MM.YYYY HH:MM) in the utility's time zone -> naive UTC. A wall time that the
    clocks skip (spring forward) is the first instant after the gap, as for the calling windows."""
    from ivr.campaign.windows import first_instant_at, zone

    parts = value.strip().replace("T", " ").split()
    if len(parts) != 2 or not _TIME_RE.match(parts[1]):
        raise RowError(f"{what}: {value!r} is not a date and time like 2026-12-12 09:00")
    d = day(cfg, parts[0], what)
    hh, mm = parts[1].split(":")[:2]
    t = time(int(hh), int(mm))
    return first_instant_at(d, t, zone(tz or cfg.locale.timezone)).astimezone(UTC).replace(tzinfo=None)


def text(value: str, what: str, cap: int) -> str:
    from ivr.ledger.importer import clean_text

    try:
        return clean_text(value, what, cap)
    except ValueError as exc:
        raise RowError(str(exc)) from None


def started_now() -> datetime:
    return utcnow()


__all__ = ["Rows", "RowError", "reading", "apply_rows", "record_run", "account_of", "amount", "day",
           "local_moment", "text", "started_now"]
