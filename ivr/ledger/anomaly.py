"""The import anomaly guard: before an accounts export is applied, compare it with what the ledger believes.

A billing glitch that doubles every debt, drops half the accounts or mixes in another utility's file must not
reach a debtor's phone. `scan_accounts` reads the file once before anything is written (the same pass finds
account numbers listed twice); `judge` compares it with the previous full export and the ledger's balances:

- total debt: the file's positive balances against the previous full export's (`import.anomaly_total_debt_rise`);
- debts risen: the share of accounts whose balance is at least `import.anomaly_debt_factor` times the ledger's
  latest positive balance (`import.anomaly_debt_rise_share`);
- accounts gone: the share of the accounts the previous full export listed that this file does not
  (`import.anomaly_vanished_share`);
- account count: the change against the previous full export (`import.anomaly_count_change`).

Only the debt-rise check applies to an export of changes (the others compare whole lists), and none below
`import.anomaly_min_accounts` accounts to compare (a share of three accounts means nothing). Past any threshold
the import is held: nothing is applied, `ivr import` exits 5 with `table()`, and `--confirm-anomaly` applies it
anyway, recorded in the audit log. A threshold of 0 switches its check off.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path

from ivr.config import Config
from ivr.ledger.csvread import CsvFile, parse_amount
from ivr.ledger.models import Account, Balance, ImportRun

_CHUNK = 900  # keys per IN (…) list: under SQLite's default variable limit
_CENT = Decimal("0.01")


@dataclass
class AccountScan:
    """What a first pass over an accounts file found."""

    dups: dict[str, list[int]] = field(default_factory=dict)  # account number -> every line it is on
    accounts: int = 0  # distinct account numbers
    total_debt: Decimal = Decimal("0.00")  # sum of positive balances (one per account: its first row)
    compared: int = 0  # accounts with a positive balance in the ledger and a balance in the file
    risen: int = 0  # of those, how many rose by import.anomaly_debt_factor or more
    listed_before: int = 0  # accounts of the previous full export that this file lists too
    examples: list[tuple[str, Decimal, Decimal]] = field(default_factory=list)  # a few risen: number, old, new


@dataclass(frozen=True)
class Check:
    """One comparison: its figures, its limit (0 = off) and whether it is past the limit."""

    name: str
    before: str
    now: str
    change: float  # a share: 0.25 = 25 %
    limit: float
    tripped: bool

    def change_text(self) -> str:
        """A share of accounts as '12.0 %'; a change of a figure as '+30.0 %'."""
        share = self.name in ("debts risen", "accounts gone")
        return f"{self.change * 100:.1f} %" if share else f"{self.change * 100:+.1f} %"


def _chunks(seq: list, size: int = _CHUNK) -> Iterator[list]:
    for i in range(0, len(seq), size):
        yield seq[i:i + size]


def listed_by(run: ImportRun) -> int:
    """How many ledger accounts `run` (or an import after it) listed."""
    return Account.select().where(Account.seen_run >= run.id).count()


class _Comparer:
    """Compares a batch of (number, balance) with the ledger: latest balances, and which were listed before."""

    def __init__(self, cfg: Config, scan: AccountScan, previous: ImportRun | None) -> None:
        self.scan = scan
        self.factor = Decimal(str(cfg.imports.anomaly_debt_factor))
        self.previous_id = previous.id if previous is not None else None
        self.pending: list[tuple[str, Decimal | None]] = []

    def add(self, number: str, amount: Decimal | None) -> None:
        self.pending.append((number, amount))
        if len(self.pending) >= _CHUNK:
            self.flush()

    def flush(self) -> None:
        batch, self.pending = self.pending, []
        if not batch:
            return
        # plain SQL: peewee would spend longer building these IN (…) lists than SQLite spends answering them
        db = Account._meta.database
        marks = ", ".join([db.param] * len(batch))
        acc_t, bal_t = Account._meta.table_name, Balance._meta.table_name
        rows = db.execute_sql(f"SELECT id, number, seen_run FROM {acc_t} WHERE number IN ({marks})",
                              [n for n, _ in batch]).fetchall()
        if not rows:
            return
        by_number = {number: (acc_id, seen) for acc_id, number, seen in rows}
        if self.previous_id is not None:
            self.scan.listed_before += sum(1 for _, seen in by_number.values()
                                           if seen is not None and seen >= self.previous_id)
        ids = [r[0] for r in rows]
        old = {acc: Decimal(str(amount)).quantize(_CENT) for acc, amount in db.execute_sql(
            f"SELECT b.account_id, b.amount FROM {bal_t} b JOIN (SELECT account_id AS acc, MAX(as_of) AS d "
            f"FROM {bal_t} WHERE account_id IN ({', '.join([db.param] * len(ids))}) GROUP BY account_id) l "
            "ON b.account_id = l.acc AND b.as_of = l.d", ids).fetchall()}
        for number, amount in batch:
            acc = by_number.get(number)
            before = old.get(acc[0]) if acc else None
            if amount is None or before is None or before <= 0:
                continue
            self.scan.compared += 1
            if amount >= before * self.factor:
                self.scan.risen += 1
                if len(self.scan.examples) < 5:
                    self.scan.examples.append((number, before, amount))


def scan_accounts(path: Path, cfg: Config, names: list[str], cols: dict[str, int],
                  previous: ImportRun | None) -> AccountScan:
    """One pass over the file before anything is written: account numbers listed twice (all their lines),
    the figures the anomaly checks need, compared with the ledger in batches. Memory: ~100 bytes per account."""
    scan = AccountScan()
    first: dict[str, int] = {}
    i_acc, i_bal = cols["account"], cols.get("balance")
    comparer = _Comparer(cfg, scan, previous)
    decimal = cfg.imports.decimal
    with CsvFile(path, cfg.imports.encoding, cfg.imports.delimiter, names) as f:
        for line, raw, error in f.rows():
            if error or i_acc >= len(raw):
                continue
            key = raw[i_acc].strip()
            if not key:
                continue
            seen = first.setdefault(key, line)
            if seen != line:
                scan.dups.setdefault(key, [seen]).append(line)
                continue
            amount = None
            if i_bal is not None and raw[i_bal].strip():
                try:
                    amount = parse_amount(raw[i_bal], decimal)
                except ValueError:
                    amount = None  # the row is rejected later with its reason
            if amount is not None and amount > 0:
                scan.total_debt += amount
            comparer.add(key, amount)
    comparer.flush()
    scan.accounts = len(first)
    return scan


def judge(cfg: Config, scan: AccountScan, full: bool, previous: ImportRun | None) -> list[Check]:
    """Every check that applies, with its figures; an import is held when any `tripped`."""
    imp = cfg.imports
    checks: list[Check] = []
    least = imp.anomaly_min_accounts
    if scan.compared >= least:
        share = scan.risen / scan.compared
        checks.append(Check("debts risen", f"{scan.compared} compared",
                            f"{scan.risen} at x{imp.anomaly_debt_factor:g} or more", share,
                            imp.anomaly_debt_rise_share,
                            bool(imp.anomaly_debt_rise_share) and share > imp.anomaly_debt_rise_share))
    if not full or previous is None or previous.accounts < least:
        return checks
    old_total = Decimal(str(previous.total_debt or 0))
    if old_total > 0:
        change = float((scan.total_debt - old_total) / old_total)
        checks.append(Check("total debt", f"{old_total:.2f}", f"{scan.total_debt:.2f}", change,
                            imp.anomaly_total_debt_rise,
                            bool(imp.anomaly_total_debt_rise) and change > imp.anomaly_total_debt_rise))
    before = listed_by(previous)
    if before:
        gone = before - scan.listed_before
        share = gone / before
        checks.append(Check("accounts gone", f"{before} listed", f"{gone} not in this file", share,
                            imp.anomaly_vanished_share,
                            bool(imp.anomaly_vanished_share) and share > imp.anomaly_vanished_share))
    if previous.accounts:
        change = (scan.accounts - previous.accounts) / previous.accounts
        checks.append(Check("account count", str(previous.accounts), str(scan.accounts), change,
                            imp.anomaly_count_change,
                            bool(imp.anomaly_count_change) and abs(change) > imp.anomaly_count_change))
    return checks


def table(checks: list[Check], scan: AccountScan | None = None) -> str:
    """The short table `ivr import` prints for a held (or confirmed) export."""
    rows = [("check", "before", "this file", "change", "limit", "")]
    for c in checks:
        limit = f"{c.limit * 100:g} %" if c.limit else "off"
        rows.append((c.name, c.before, c.now, c.change_text(), limit, "TOO MUCH" if c.tripped else "ok"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  " + "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    if scan is not None and scan.examples:
        lines.append("  e.g. " + "; ".join(f"{n}: {old} -> {new}" for n, old, new in scan.examples))
    return "\n".join(lines)


def detail_json(checks: list[Check], scan: AccountScan) -> str:
    """What ImportRun.detail keeps of the comparison."""
    return json.dumps({"checks": [asdict(c) for c in checks],
                       "examples": [[n, str(o), str(w)] for n, o, w in scan.examples]}, ensure_ascii=False)
