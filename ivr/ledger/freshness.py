"""How old and how trusted the data behind the evening's calls is: the last applied accounts and payments imports,
and an accounts import held by the anomaly guard (ivr.ledger.anomaly).

A campaign on month-old balances calls people who have paid since. `ivr run` refuses to start when either import
is older than `eligibility.max_data_age_hours` (exit 4, one line naming the import and its age) unless the
operator says `--allow-stale`, which is logged and written to the audit log; `ivr status` shows both ages. While
the newest accounts import is held, `ivr run` refuses too (exit 5): no campaign dials until staff confirm it or
import a corrected file.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePath

from ivr.config import Config
from ivr.errors import IvrError
from ivr.ledger.importer import APPLIED
from ivr.ledger.models import ImportRun

KINDS = ("accounts", "payments")


class StaleData(IvrError):
    """The accounts or payments data is older than eligibility.max_data_age_hours."""

    exit_code = 4


class HeldImport(IvrError):
    """The newest accounts import is held by the anomaly guard."""

    exit_code = 5


def held_import() -> ImportRun | None:
    """The newest finished accounts import when it is held (no applied one since), else None."""
    run = (ImportRun.select().where((ImportRun.kind == "accounts") & ImportRun.finished_at.is_null(False))
           .order_by(ImportRun.id.desc()).first())
    return run if run is not None and run.status == "held" else None


def check_not_held() -> None:
    """Raise HeldImport naming the held file and what to do."""
    run = held_import()
    if run is not None:
        raise HeldImport(f"the accounts import of {run.file} at {run.finished_at:%Y-%m-%d %H:%M} UTC is held by "
                         "the anomaly guard: no campaign runs until it is applied (ivr import accounts FILE "
                         "--confirm-anomaly) or a corrected file is imported")


@dataclass(frozen=True)
class ImportAge:
    """The last applied import of one kind: its file, when it finished (naive UTC), how many hours ago."""

    kind: str
    file: str = ""
    finished_at: datetime | None = None
    age_hours: float | None = None

    def describe(self) -> str:
        if self.finished_at is None or self.age_hours is None:
            return f"no {self.kind} import yet"
        return (f"the {self.kind} import is {self.age_hours:.1f} h old ({PurePath(self.file).name}, finished "
                f"{self.finished_at:%Y-%m-%d %H:%M} UTC)")


def _naive_utc(now: datetime | None) -> datetime:
    now = now or datetime.now(UTC)
    return now.astimezone(UTC).replace(tzinfo=None) if now.tzinfo else now


def import_ages(now: datetime | None = None) -> dict[str, ImportAge]:
    """The age of the last applied accounts import and of the last payments import."""
    ref = _naive_utc(now)
    out: dict[str, ImportAge] = {}
    for kind in KINDS:
        run = (ImportRun.select().where((ImportRun.kind == kind) & ImportRun.finished_at.is_null(False)
                                        & ImportRun.status.in_(APPLIED))
               .order_by(ImportRun.finished_at.desc(), ImportRun.id.desc()).first())
        if run is None:
            out[kind] = ImportAge(kind)
        else:
            hours = max((ref - run.finished_at).total_seconds() / 3600, 0.0)
            out[kind] = ImportAge(kind, run.file, run.finished_at, hours)
    return out


def stale_imports(cfg: Config, now: datetime | None = None) -> list[ImportAge]:
    """The imports older than eligibility.max_data_age_hours, or missing (none when the check is off: 0)."""
    limit = cfg.eligibility.max_data_age_hours
    if not limit:
        return []
    return [a for a in import_ages(now).values() if a.age_hours is None or a.age_hours > limit]


def check_fresh(cfg: Config, now: datetime | None = None) -> None:
    """Raise StaleData (one line: which import, how old, what to do) when any import is too old."""
    stale = stale_imports(cfg, now)
    if stale:
        raise StaleData(" and ".join(a.describe() for a in stale)
                        + f"; eligibility.max_data_age_hours is {cfg.eligibility.max_data_age_hours}: import "
                          "fresh billing files, or start with --allow-stale to call on this data anyway")
