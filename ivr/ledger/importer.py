"""Importing billing exports (accounts with their numbers and balances; payments) into the ledger.

Rows are streamed and written in batches with plain DB-API `executemany` inside transactions (a million rows in
well under a minute; per-row ORM saves would take many times that). Every row is checked; a bad row is reported
with its line number and reason and written to a rejects CSV in the input's own encoding, delimiter and header
(plus a `reason` column), so the fixed file imports as it is; every good row still loads. An account twice in
one accounts file is a reject with both line numbers (a first pass over the file finds them before anything is
written). Payments for accounts the ledger does not know are listed as "not in the ledger", not rejected
(`import.unknown_accounts`); numbers that will not be dialled are counted and listed. Re-importing the
same file changes nothing: accounts are matched by account number, their phones replaced in order only when they
differ, balances upserted by (account, as-of date), payments by reference. Names are stored as text (they are
escaped where they are used); control characters are stripped and lengths capped.
"""

from __future__ import annotations

import csv
import gc
import logging
import multiprocessing
import os
import re
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import peewee as pw

from ivr.config import Config, ImportConfig
from ivr.ledger import anomaly, audit
from ivr.ledger import phones as phonelib
from ivr.ledger.csvread import CsvFile, CsvFormatError, Row, parse_amount, parse_date
from ivr.ledger.models import Account, Balance, ImportRun, Payment, Phone, database, utcnow

log = logging.getLogger("ivr.ledger.importer")

BATCH_ROWS = 2000
ROWS_PER_TRANSACTION = 20000
MAX_PHONES = 10
ACCOUNT_MAX = 64
REFERENCE_MAX = 100
LANGUAGES = {"uk": "uk", "ua": "uk", "ukr": "uk", "ru": "ru", "rus": "ru", "en": "en", "eng": "en",
             "bg": "bg", "bul": "bg"}
CHANNELS = {"voice", "sms", "email", "letter"}
TRUE_WORDS = {"1", "true", "yes", "y", "t", "x", "+", "так", "да", "т", "д"}
FALSE_WORDS = {"", "0", "false", "no", "n", "f", "-", "ні", "нет", "н", "не"}
# one address, no spaces or display name: what the e-mail channel sends to (ivr.channels.email)
EMAIL_RE = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                      r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+")
TEXT_CAPS = {"name": 200, "address": 400, "district": 100}
APPLIED = ("applied", "confirmed")  # ImportRun.status of imports whose rows are in the ledger


@dataclass(frozen=True)
class Reject:
    line: int
    reason: str


@dataclass(frozen=True)
class NotInLedger:
    """A payment for an account the ledger does not know (not loaded; not a reject unless configured)."""

    line: int
    account: str
    reference: str


@dataclass(frozen=True)
class InvalidPhone:
    """A number on a loaded account row that will never be dialled, and why."""

    line: int
    account: str
    raw: str
    reason: str


@dataclass
class ImportReport:
    kind: str = "accounts"
    file: str = ""
    rows: int = 0
    loaded: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[Reject] = field(default_factory=list)
    rejects_file: Path | None = None
    seconds: float = 0.0
    not_in_ledger: list[NotInLedger] = field(default_factory=list)
    invalid_phones: list[InvalidPhone] = field(default_factory=list)
    full: bool = False  # a full accounts export (import.accounts_export)
    missing: int = 0  # after a full export: ledger accounts it did not list (not called until they reappear)
    checks: list[anomaly.Check] = field(default_factory=list)  # the anomaly guard's comparisons
    held: bool = False  # past an anomaly threshold and not confirmed: NOTHING was applied
    confirmed_by: str = ""  # applied despite the anomaly, by whom (also in the audit log)
    anomaly_table: str = ""  # the short table of the comparisons, when one tripped

    @property
    def tripped(self) -> list[anomaly.Check]:
        return [c for c in self.checks if c.tripped]

    @property
    def ok(self) -> int:
        return self.loaded + self.updated + self.unchanged

    def summary(self) -> str:
        if self.held:
            return (f"{self.kind}: HELD, nothing applied: " + "; ".join(
                f"{c.name} {c.change_text()} (limit {c.limit * 100:g} %)" for c in self.tripped))
        text = (f"{self.kind}: {self.rows} rows: {self.loaded} new, {self.updated} updated, "
                f"{self.unchanged} unchanged, {len(self.rejected)} rejected")
        if self.not_in_ledger:
            text += f", {len(self.not_in_ledger)} for accounts not in the ledger"
        if self.invalid_phones:
            text += f"; {len(self.invalid_phones)} phone number(s) that will not be dialled"
        text += f" ({self.seconds:.1f} s)"
        if self.rejects_file:
            text += f"; rejected rows written to {self.rejects_file}"
        if self.full and self.missing:
            text += (f"; {self.missing} account(s) in the ledger are not in this full export and will not be called "
                     "until they reappear")
        return text


class RowError(ValueError):
    """Why one row cannot be loaded."""


# --- cleaning values -------------------------------------------------------------------------------------------

def show(value: str, limit: int = 40) -> str:
    """A value as it may appear in a message: quoted, escaped (CR/LF visible), cut short."""
    return repr(value[:limit]) + ("…" if len(value) > limit else "")


def clean_text(value: str, what: str, cap: int) -> str:
    """Printable single-line text: control/format characters become spaces, runs of spaces collapse."""
    if "\ufffd" in value:
        raise RowError(f"{what} has bytes that are not valid in the file's encoding")
    if not value.isprintable():
        value = "".join(ch if ch.isprintable() else " " for ch in value)
    value = " ".join(value.split())
    if len(value) > cap:
        raise RowError(f"{what} is {len(value)} characters long, more than {cap}")
    return value


@lru_cache(maxsize=16)
def account_pattern(text: str) -> re.Pattern[str]:
    """`import.account_number_pattern`, compiled (config has checked it compiles)."""
    return re.compile(text)


def clean_account_number(value: str, pattern: str = ImportConfig.account_number_pattern) -> str:
    """The account number stripped, or RowError: empty, over 64 characters, control characters, or not a whole
    match of `pattern` (import.account_number_pattern)."""
    v = value.strip()
    if not v:
        raise RowError("account number is empty")
    if len(v) > ACCOUNT_MAX:
        raise RowError(f"account number {show(v)} is longer than {ACCOUNT_MAX} characters")
    if not v.isprintable() or not account_pattern(pattern).fullmatch(v):
        raise RowError(f"account number {show(v)} has characters outside import.account_number_pattern "
                       f"({pattern})")
    return v


def parse_bool(value: str, what: str) -> bool:
    v = value.strip().lower()
    if v in TRUE_WORDS:
        return True
    if v in FALSE_WORDS:
        return False
    raise RowError(f"{what} {show(value)} is not yes/no (1/0, true/false)")


@lru_cache(maxsize=512)
def _zone_ok(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _amount(value: str, what: str, decimal: str) -> Decimal:
    try:
        return parse_amount(value, decimal)
    except ValueError as exc:
        raise RowError(f"{what}: {exc}") from None


def _date(value: str, what: str, fmt: str) -> date:
    try:
        return parse_date(value, fmt)
    except ValueError as exc:
        raise RowError(f"{what}: {exc}") from None


# --- the column mapping ----------------------------------------------------------------------------------------

def resolve_columns(header: list[str], mapping: dict[str, str], required: Iterable[str], path: Path
                    ) -> dict[str, int]:
    """Our field -> column index in this file (names matched without regard to case); fields whose column is
    absent are left out; a missing required column fails the whole file with the names that were found."""
    index = {name.strip().lower(): i for i, name in enumerate(header)}
    out: dict[str, int] = {}
    for ours, theirs in mapping.items():
        i = index.get(theirs.strip().lower())
        if i is not None:
            out[ours] = i
    missing = [f"{f} (column {mapping.get(f, f)!r})" for f in required if f not in out]
    if missing:
        raise CsvFormatError(
            f"{path}: missing column(s): {', '.join(missing)}; the file has: {', '.join(map(repr, header[:30]))}. "
            "Map the export's column names under import.account_columns / import.payment_columns in config.yaml.")
    return out


# --- parsed rows -----------------------------------------------------------------------------------------------

@dataclass
class AccountIn:
    line: int
    number: str
    fields: dict[str, Any]  # only the columns the file has
    phones: list[phonelib.PhoneResult] | None
    balance: tuple[Decimal, date, date | None] | None  # amount, as_of, overdue_since


@dataclass
class PaymentIn:
    line: int
    account: str
    amount: Decimal
    paid_on: date
    reference: str
    raw: list[str] = field(default_factory=list)  # the row as read, for the rejects file


_ACCOUNT_TEXT = ("name", "address", "district")


class AccountRowParser:
    """Checks one accounts row at a time; the column lookups are worked out once per file."""

    def __init__(self, cols: dict[str, int], cfg: Config, today: date) -> None:
        self.i_account = cols["account"]
        self.texts = [(key, cols[key], TEXT_CAPS[key]) for key in _ACCOUNT_TEXT if key in cols]
        self.i_language = cols.get("language")
        self.i_timezone = cols.get("timezone")
        self.flags = [(key, cols[key]) for key in ("do_not_call", "life_support") if key in cols]
        self.i_channel = cols.get("preferred_channel")
        self.i_email = cols.get("email")
        self.i_phones = cols.get("phones")
        self.i_balance = cols.get("balance")
        self.i_balance_date = cols.get("balance_date")
        self.i_overdue = cols.get("overdue_since")
        self.separators = cfg.imports.phone_separator
        self.decimal = cfg.imports.decimal
        self.date_format = cfg.imports.date_format
        self.region = cfg.locale.country
        self.today = today
        self.account_pattern = cfg.imports.account_number_pattern
        self.policy = phonelib.dial_policy(cfg)

    def __call__(self, values: list[str], line: int) -> AccountIn:
        number = clean_account_number(values[self.i_account], self.account_pattern)
        fields: dict[str, Any] = {key: clean_text(values[i], key, cap) for key, i, cap in self.texts}
        if self.i_language is not None:
            lang = values[self.i_language].strip().lower()
            if lang and lang not in LANGUAGES:
                raise RowError(f"language {show(lang)} is not one of uk, ru, bg, en")
            fields["language"] = LANGUAGES.get(lang, "")
        if self.i_timezone is not None:
            tz = values[self.i_timezone].strip()
            if tz and (len(tz) > 64 or not _zone_ok(tz)):
                raise RowError(f"timezone {show(tz)} is not an IANA time zone such as Europe/Kyiv")
            fields["timezone"] = tz
        for key, i in self.flags:
            fields[key] = parse_bool(values[i], key)
        if self.i_channel is not None:
            ch = values[self.i_channel].strip().lower() or "voice"
            if ch not in CHANNELS:
                raise RowError(f"preferred_channel {show(ch)} is not one of voice, sms, email, letter")
            fields["preferred_channel"] = ch
        if self.i_email is not None:
            email = values[self.i_email].strip()
            if email and (len(email) > 254 or not EMAIL_RE.fullmatch(email)):
                raise RowError(f"email {show(email)} is not an e-mail address like name@example.com")
            fields["email"] = email
        phone_list = None
        if self.i_phones is not None:
            raw = values[self.i_phones]
            if "\ufffd" in raw:
                raise RowError("phone has bytes that are not valid in the file's encoding")
            parts = phonelib.split_numbers(raw, self.separators)
            if len(parts) > MAX_PHONES:
                raise RowError(f"{len(parts)} phone numbers, more than {MAX_PHONES}")
            region, policy = self.region, self.policy
            phone_list = [phonelib.apply_policy(phonelib.normalize(p, region), policy) for p in parts]
        balance = None
        if self.i_balance is not None and values[self.i_balance].strip():
            amount = _amount(values[self.i_balance], "balance", self.decimal)
            as_of = self.today
            if self.i_balance_date is not None and values[self.i_balance_date].strip():
                as_of = _date(values[self.i_balance_date], "balance_date", self.date_format)
            overdue = None
            if self.i_overdue is not None and values[self.i_overdue].strip():
                overdue = _date(values[self.i_overdue], "overdue_since", self.date_format)
            balance = (amount, as_of, overdue)
        return AccountIn(line, number, fields, phone_list, balance)


def parse_account_row(values: list[str], cols: dict[str, int], cfg: Config, today: date, line: int) -> AccountIn:
    """One accounts row checked (see AccountRowParser, which does this for a whole file)."""
    return AccountRowParser(cols, cfg, today)(values, line)


def parse_payment_row(values: list[str], cols: dict[str, int], cfg: Config, line: int) -> PaymentIn:
    imp = cfg.imports
    number = clean_account_number(values[cols["account"]], imp.account_number_pattern)
    reference = values[cols["reference"]].strip()
    if not reference:
        raise RowError("reference is empty")
    if not reference.isprintable() or "\ufffd" in reference:
        raise RowError(f"reference {show(reference)} has control characters or undecodable bytes")
    if len(reference) > REFERENCE_MAX:
        raise RowError(f"reference is {len(reference)} characters long, more than {REFERENCE_MAX}")
    amount = _amount(values[cols["amount"]], "amount", imp.decimal)
    paid_on = _date(values[cols["date"]], "date", imp.date_format)
    return PaymentIn(line, number, amount, paid_on, reference, values)


# --- writing ---------------------------------------------------------------------------------------------------

def _in_list(db: pw.Database, n: int) -> str:
    return ", ".join([db.param] * n)


def _chunks(seq: list, size: int = 900) -> Iterator[list]:
    for i in range(0, len(seq), size):
        yield seq[i:i + size]


def _select_in(db: pw.Database, sql: str, keys: list, extra: tuple = ()) -> list[tuple]:
    """Run `sql` (with one '{in}' placeholder) for `keys` in chunks the database accepts."""
    out: list[tuple] = []
    for part in _chunks(keys):
        cur = db.execute_sql(sql.format(inl=_in_list(db, len(part))), tuple(part) + extra)
        out.extend(cur.fetchall())
    return out


def _money(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


def _day(value: Any) -> str:
    return "" if value is None else str(value)[:10]


_T = {m: m._meta.table_name for m in (Account, Phone, Balance, Payment)}
_ACCOUNT_COLS = ("name", "address", "district", "language", "timezone", "do_not_call", "life_support",
                 "preferred_channel", "email")
_ACCOUNT_DEFAULTS = {"name": "", "address": "", "district": "", "language": "", "timezone": "",
                     "do_not_call": False, "life_support": False, "preferred_channel": "voice", "email": ""}


def _stored_raw(raw: str) -> str:
    """A number as billing wrote it, fit to store and show: control characters become '?'."""
    raw = raw[:64]
    return raw if raw.isprintable() else "".join(c if c.isprintable() else "?" for c in raw)


class _AccountWriter:
    """Writes batches of parsed account rows and counts what changed; marks every account written as seen by
    this import (Account.seen_run), whether or not anything about it changed."""

    def __init__(self, db: pw.Database, report: ImportReport, currency: str, run_id: int) -> None:
        self.db = db
        self.report = report
        self.currency = currency
        self.run_id = run_id
        p = db.param
        self.sql_insert = (f"INSERT INTO {_T[Account]} (number, {', '.join(_ACCOUNT_COLS)}, updated_at) "
                           f"VALUES ({', '.join([p] * (len(_ACCOUNT_COLS) + 2))})")
        self.sql_update = (f"UPDATE {_T[Account]} SET {', '.join(c + ' = ' + p for c in _ACCOUNT_COLS)}, "
                           f"updated_at = {p} WHERE id = {p}")
        self.sql_phone = (f"INSERT INTO {_T[Phone]} (account_id, position, raw, e164, valid, invalid_reason, "
                          f"flagged_at) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p})")
        self.sql_balance = (f"INSERT INTO {_T[Balance]} (account_id, as_of, amount, currency, overdue_since) "
                            f"VALUES ({p}, {p}, {p}, {p}, {p}) ON CONFLICT (account_id, as_of) DO UPDATE SET "
                            "amount = excluded.amount, currency = excluded.currency, "
                            "overdue_since = excluded.overdue_since")

    def write(self, batch: list[AccountIn]) -> None:
        db = self.db
        now = utcnow().isoformat(" ")
        numbers = [a.number for a in batch]
        existing = {r[1]: r for r in _select_in(
            db, f"SELECT id, number, {', '.join(_ACCOUNT_COLS)} FROM {_T[Account]} WHERE number IN ({{inl}})",
            numbers)}
        new_rows, updates = [], []
        changed: set[str] = set()
        for a in batch:
            old = existing.get(a.number)
            if old is None:
                vals = [a.fields.get(c, _ACCOUNT_DEFAULTS[c]) for c in _ACCOUNT_COLS]
                new_rows.append((a.number, *vals, now))
                continue
            olds = dict(zip(_ACCOUNT_COLS, old[2:], strict=True))
            for c in ("do_not_call", "life_support"):
                olds[c] = bool(olds[c])
            merged = {**olds, **a.fields}
            if merged != olds:
                updates.append((*[merged[c] for c in _ACCOUNT_COLS], now, old[0]))
                changed.add(a.number)
        cur = db.cursor()
        if new_rows:
            cur.executemany(self.sql_insert, new_rows)
        if updates:
            cur.executemany(self.sql_update, updates)
        ids = {num: row[0] for num, row in existing.items()}
        new_numbers = [r[0] for r in new_rows]
        if new_numbers:
            ids.update({r[1]: r[0] for r in _select_in(
                db, f"SELECT id, number FROM {_T[Account]} WHERE number IN ({{inl}})", new_numbers)})
        old_ids = [row[0] for row in existing.values()]
        self._phones(batch, ids, old_ids, changed, cur)
        self._balances(batch, ids, old_ids, changed, cur)
        self._seen(sorted({ids[a.number] for a in batch}), cur)
        for a in batch:
            if a.number not in existing:
                self.report.loaded += 1
            elif a.number in changed:
                self.report.updated += 1
            else:
                self.report.unchanged += 1

    def _phones(self, batch: list[AccountIn], ids: dict[str, int], old_ids: list[int], changed: set[str],
                cur: Any) -> None:
        old_phones: dict[int, list[tuple]] = {}
        if old_ids:
            for r in _select_in(self.db, f"SELECT account_id, position, raw, e164, valid, invalid_reason, flagged_at "
                                f"FROM {_T[Phone]} WHERE account_id IN ({{inl}}) ORDER BY account_id, position",
                                old_ids):
                old_phones.setdefault(r[0], []).append(r)
        replace_ids, rows = [], []
        for a in batch:
            if a.phones is None:
                continue
            acc_id = ids[a.number]
            old = old_phones.get(acc_id, [])
            if self._same_phones(old, a.phones):
                continue
            # a number the dialer found dead (flagged) stays flagged when billing sends it again
            flagged = {r[3]: r for r in old if r[6] is not None and r[3]}
            if old:
                replace_ids.append(acc_id)
                changed.add(a.number)
            for pos, ph in enumerate(a.phones):
                f = flagged.get(ph.e164) if ph.e164 else None
                if f is not None:
                    rows.append((acc_id, pos, _stored_raw(ph.raw), ph.e164, False, f[5], f[6]))
                else:
                    rows.append((acc_id, pos, _stored_raw(ph.raw), ph.e164, ph.valid, ph.reason[:200], None))
        for part in _chunks(replace_ids):
            cur.execute(f"DELETE FROM {_T[Phone]} WHERE account_id IN ({_in_list(self.db, len(part))})",
                        tuple(part))
        if rows:
            cur.executemany(self.sql_phone, rows)

    def _seen(self, acc_ids: list[int], cur: Any) -> None:
        for part in _chunks(acc_ids):
            cur.execute(f"UPDATE {_T[Account]} SET seen_run = {self.db.param} WHERE id IN "
                        f"({_in_list(self.db, len(part))})", (self.run_id, *part))

    @staticmethod
    def _same_phones(old: list[tuple], new: list[phonelib.PhoneResult]) -> bool:
        if len(old) != len(new):
            return False
        for o, n in zip(old, new, strict=True):
            if o[2] != _stored_raw(n.raw):
                return False
            if o[6] is None and (o[3] != n.e164 or bool(o[4]) != n.valid or o[5] != n.reason[:200]):
                return False
        return True

    def _balances(self, batch: list[AccountIn], ids: dict[str, int], old_ids: list[int], changed: set[str],
                  cur: Any) -> None:
        with_balance = [a for a in batch if a.balance is not None]
        if not with_balance:
            return
        old: dict[tuple[int, str], tuple] = {}
        if old_ids:
            days = sorted({a.balance[1].isoformat() for a in with_balance})  # type: ignore[index]
            for day in days:
                for r in _select_in(self.db, f"SELECT account_id, as_of, amount, currency, overdue_since "
                                    f"FROM {_T[Balance]} WHERE account_id IN ({{inl}}) AND as_of = {self.db.param}",
                                    old_ids, (day,)):
                    old[(r[0], _day(r[1]))] = r
        rows = []
        old_set = set(old_ids)
        for a in with_balance:
            amount, as_of, overdue = a.balance  # type: ignore[misc]
            acc_id = ids[a.number]
            day, overdue_s = as_of.isoformat(), overdue.isoformat() if overdue else None
            prev = old.get((acc_id, day))
            if prev is not None and _money(prev[2]) == amount and prev[3] == self.currency \
                    and _day(prev[4]) == (overdue_s or ""):
                continue
            if acc_id in old_set:  # a new account counts as loaded, not updated
                changed.add(a.number)
            rows.append((acc_id, day, str(amount), self.currency, overdue_s))
        if rows:
            cur.executemany(self.sql_balance, rows)


class _PaymentWriter:
    def __init__(self, db: pw.Database, report: ImportReport, reject: Callable[[int, str, list[str]], None],
                 unknown_rejected: bool) -> None:
        self.db = db
        self.report = report
        self.reject = reject
        self.unknown_rejected = unknown_rejected
        p = db.param
        self.sql_upsert = (f"INSERT INTO {_T[Payment]} (account_id, reference, amount, paid_on, imported_at) "
                           f"VALUES ({p}, {p}, {p}, {p}, {p}) ON CONFLICT (reference) DO UPDATE SET "
                           "account_id = excluded.account_id, amount = excluded.amount, paid_on = excluded.paid_on")
        self.touched: set[int] = set()

    def write(self, batch: list[PaymentIn]) -> None:
        db = self.db
        numbers = sorted({p.account for p in batch})
        ids = {r[1]: r[0] for r in _select_in(
            db, f"SELECT id, number FROM {_T[Account]} WHERE number IN ({{inl}})", numbers)}
        existing = {r[0]: r for r in _select_in(
            db, f"SELECT reference, account_id, amount, paid_on FROM {_T[Payment]} WHERE reference IN ({{inl}})",
            [p.reference for p in batch])}
        now = utcnow().isoformat(" ")
        rows = []
        for p in batch:
            acc_id = ids.get(p.account)
            if acc_id is None:
                if self.unknown_rejected:  # import.unknown_accounts: reject
                    self.reject(p.line, f"account {show(p.account)} is not in the ledger "
                                        "(import.unknown_accounts: reject)", p.raw)
                else:
                    self.report.not_in_ledger.append(NotInLedger(p.line, p.account, p.reference))
                continue
            self.touched.add(acc_id)
            old = existing.get(p.reference)
            if old is not None and old[1] == acc_id and _money(old[2]) == p.amount \
                    and _day(old[3]) == p.paid_on.isoformat():
                self.report.unchanged += 1
                continue
            if old is None:
                self.report.loaded += 1
            else:
                self.report.updated += 1
            rows.append((acc_id, p.reference, str(p.amount), p.paid_on.isoformat(), now))
        if rows:
            db.cursor().executemany(self.sql_upsert, rows)

    def clear_claims(self) -> None:
        ids = sorted(self.touched)
        for part in _chunks(ids):
            self.db.execute_sql(f"UPDATE {_T[Account]} SET claimed_paid_at = NULL WHERE claimed_paid_at IS NOT NULL "
                                f"AND id IN ({_in_list(self.db, len(part))})", tuple(part))


# --- the rejects file ------------------------------------------------------------------------------------------

def spreadsheet_safe(value: str) -> str:
    """A cell a spreadsheet will not run as a formula."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


class _Rejects:
    """Collects rejected rows: the list for the report, and a CSV written as they come (memory stays flat) in the
    input's encoding and delimiter, under the input's header plus a `reason` column ("line N: why"), so the
    fixed file can be imported as it is (the extra column is not mapped, so it is ignored)."""

    def __init__(self, report: ImportReport, folder: Path, source: Path, kind: str) -> None:
        self.report = report
        self.folder = folder
        self.name = f"{source.stem}-{kind}-{datetime.now().strftime('%Y%m%d-%H%M%S')}.rejects.csv"
        self._f = None
        self._w: Any = None
        self.header: list[str] = []
        self.encoding, self.delimiter = "utf-8", ","

    def set_format(self, header: list[str], encoding: str, delimiter: str) -> None:
        self.header, self.encoding, self.delimiter = header, encoding, delimiter

    def _open(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / self.name
        n = 1
        while path.exists():  # two imports in one second keep both rejects files
            n += 1
            path = self.folder / self.name.replace(".rejects.csv", f"-{n}.rejects.csv")
        # errors="replace": a reason quoting a character the input's encoding lacks must not stop the import
        self._f = open(path, "w", encoding=self.encoding, errors="replace", newline="")  # noqa: SIM115 - close()
        self._w = csv.writer(self._f, delimiter=self.delimiter)
        names = {h.lower() for h in self.header}
        self._w.writerow([*self.header, "reject_reason" if "reason" in names else "reason"])
        self.report.rejects_file = path

    def add(self, line: int, reason: str, raw: list[str] | None = None) -> None:
        self.report.rejected.append(Reject(line, reason))
        if self._f is None:
            self._open()
        values = list(raw or [])
        values += [""] * (len(self.header) - len(values))  # a short row: its reason stays in the reason column
        self._w.writerow([*values, spreadsheet_safe(f"line {line}: {reason}")])

    def close(self) -> None:
        if self._f is not None:
            self._f.close()


# --- the two imports -------------------------------------------------------------------------------------------

def _progress(enabled: bool, label: str, total: int):
    if not enabled:
        return nullcontext(None)
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn(label), BarColumn(), DownloadColumn(), TextColumn("{task.fields[rows]} rows"),
                    TimeRemainingColumn(), console=Console(stderr=True), transient=False)


# Parsing (CSV fields -> checked values, phone numbers) is most of the CPU work; on big files it runs in worker
# processes while this one writes, chunk by chunk and in file order, with a bounded number of chunks in flight.
PARALLEL_MIN_BYTES = 8 << 20
CHUNK_ROWS = 2000
_worker: dict[str, Any] = {}

Parsed = tuple[int, Any, str, list[str] | None]  # line, item or None, error, raw row when rejected


def _lines(lines: list[int]) -> str:
    return ", ".join(map(str, lines[:-1])) + f" and {lines[-1]}" if len(lines) > 1 else str(lines[0])


def duplicate_reason(key: str, lines: list[int], line: int, keep_first: bool) -> str:
    """Why row `line` of an account listed on `lines` is not applied ('' when it is: the first, keep_first)."""
    if not keep_first:
        return (f"account {show(key)} is on lines {_lines(lines)} of this file: neither row applied "
                "(import.duplicates: reject)")
    if line == lines[0]:
        return ""
    return (f"account {show(key)} is already on line {lines[0]} of this file: this row not applied "
            "(import.duplicates: keep_first)")


def _parse_rows(rows: list[Row], kind: str, cols: dict[str, int], cfg: Config, today: date,
                dups: dict[str, list[int]] | None = None) -> list[Parsed]:
    if kind == "accounts":
        parse: Callable[[list[str], int], Any] = AccountRowParser(cols, cfg, today)
    else:
        def parse(values: list[str], line: int) -> Any:
            return parse_payment_row(values, cols, cfg, line)
    keep_first = cfg.imports.duplicates == "keep_first"
    i_key = cols["account"]
    out: list[Parsed] = []
    for line, raw, error in rows:
        if error:
            out.append((line, None, error, raw))
            continue
        if dups and (lines := dups.get(raw[i_key].strip())) is not None:
            why = duplicate_reason(raw[i_key].strip(), lines, line, keep_first)
            if why:
                out.append((line, None, why, raw))
                continue
        try:
            out.append((line, parse(raw, line), "", None))
        except RowError as exc:
            out.append((line, None, str(exc), raw))
    return out


def _init_worker(kind: str, cols: dict[str, int], cfg: Config, today: date, dups: dict[str, list[int]]) -> None:
    _worker.update(kind=kind, cols=cols, cfg=cfg, today=today, dups=dups)


def _parse_in_worker(rows: list[Row]) -> list[Parsed]:
    return _parse_rows(rows, _worker["kind"], _worker["cols"], _worker["cfg"], _worker["today"], _worker["dups"])


def _raw_chunks(f: CsvFile) -> Iterator[list[Row]]:
    chunk: list[Row] = []
    for row in f.rows():
        chunk.append(row)
        if len(chunk) >= CHUNK_ROWS:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _parsed_chunks(f: CsvFile, kind: str, cols: dict[str, int], cfg: Config, today: date, workers: int,
                   dups: dict[str, list[int]]) -> Iterator[list[Parsed]]:
    if workers <= 0:
        for chunk in _raw_chunks(f):
            yield _parse_rows(chunk, kind, cols, cfg, today, dups)
        return
    ctx = multiprocessing.get_context("spawn")  # not fork: this process may hold a gevent hub, sockets, threads
    with ctx.Pool(workers, initializer=_init_worker, initargs=(kind, cols, cfg, today, dups)) as pool:
        pending: deque = deque()
        for chunk in _raw_chunks(f):
            pending.append(pool.apply_async(_parse_in_worker, (chunk,)))
            if len(pending) > 2 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


def _gevent_patched() -> bool:
    """A pool under gevent's monkey-patched threading can hang; such callers parse inline."""
    monkey = sys.modules.get("gevent.monkey")
    return bool(monkey and monkey.is_module_patched("threading"))


def _auto_workers(size: int) -> int:
    cpus = os.cpu_count() or 1
    # Measured on 2 cores: one worker saved ~4 % of the wall time for ~60 % more CPU (pickling), so parallel
    # parsing only starts from 4 cores, where the writer keeps a core of its own.
    if size < PARALLEL_MIN_BYTES or cpus < 4 or sys.platform != "linux" or _gevent_patched():
        return 0
    return min(3, cpus - 2)


def header_names(cfg: Config, kind: str) -> list[str]:
    """The export's names of the required columns: the header row is the first line holding them all."""
    if kind == "accounts":
        return [cfg.imports.account_columns[k] for k in ("account", "name", "phones")]
    return [cfg.imports.payment_columns[k] for k in ("account", "amount", "date", "reference")]


def _run(cfg: Config, path: str | Path, kind: str, progress: bool, today: date | None,
         workers: int | None = None, full: bool = False, confirm_by: str | None = None) -> ImportReport:
    db = database.obj
    if db is None:
        raise RuntimeError("the database is not connected (ivr.ledger.db.connect first)")
    path = Path(path)
    report = ImportReport(kind=kind, file=str(path), full=full)
    started = time.perf_counter()
    today = today or date.today()
    rejects = _Rejects(report, cfg.path(cfg.imports.rejects_dir), path, kind)
    run = None
    # The rows and batches are freed by reference counting; the cyclic collector would only re-scan the phone
    # cache again and again (a quarter of the import's time), so it pauses while the file is read.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    cache_pages = None
    if isinstance(db, pw.SqliteDatabase):
        # 32 MB of page cache while importing, so index inserts stay in memory; given back afterwards, since
        # the same connection may go on to run a whole evening (demo, soak) and would keep growing into it
        cache_pages = db.execute_sql("PRAGMA cache_size").fetchone()[0]
        db.execute_sql("PRAGMA cache_size = -32768")
    try:
        names = header_names(cfg, kind)
        with CsvFile(path, cfg.imports.encoding, cfg.imports.delimiter, names) as f:
            rejects.set_format(f.header, f.format.encoding, f.format.delimiter)
            dups: dict[str, list[int]] = {}
            if kind == "accounts":
                cols = resolve_columns(f.header, cfg.imports.account_columns, ("account", "name", "phones"), path)
                previous = latest_full_export()
                scan = anomaly.scan_accounts(path, cfg, names, cols, previous)
                dups = scan.dups
                report.checks = anomaly.judge(cfg, scan, full, previous)
                fields = {"kind": kind, "file": str(path)[:400], "full": full, "accounts": scan.accounts,
                          "total_debt": scan.total_debt,
                          "detail": anomaly.detail_json(report.checks, scan) if report.checks else ""}
                if report.tripped:
                    report.anomaly_table = anomaly.table(report.checks, scan)
                    if not confirm_by:  # held: nothing is applied; the run is kept so status/run can say so
                        ImportRun.create(**fields, status="held", finished_at=utcnow())
                        log.warning("event=import_held file=%s %s", path.name, " ".join(
                            f"{c.name.replace(' ', '_')}={c.change:.3f}" for c in report.tripped))
                        report.held = True
                        report.seconds = time.perf_counter() - started
                        return report
                    report.confirmed_by = confirm_by
                    fields.update(status="confirmed", confirmed_by=confirm_by[:100])
                run = ImportRun.create(**fields)
                writer: Any = _AccountWriter(db, report, cfg.locale.currency, run.id)
            else:
                cols = resolve_columns(f.header, cfg.imports.payment_columns,
                                       ("account", "amount", "date", "reference"), path)
                run = ImportRun.create(kind=kind, file=str(path)[:400])
                writer = _PaymentWriter(db, report, rejects.add, cfg.imports.unknown_accounts == "reject")
            key = (lambda r: r.number) if kind == "accounts" else (lambda r: r.reference)
            n_workers = _auto_workers(f.size) if workers is None else (0 if _gevent_patched() else workers)
            with _progress(progress, f"import {kind}", f.size) as bar:
                task = bar.add_task(kind, total=f.size, rows=0) if bar else None
                batch: list[Any] = []
                keys: set[str] = set()
                since_commit = 0
                txn = db.atomic()
                txn.__enter__()
                try:
                    for chunk in _parsed_chunks(f, kind, cols, cfg, today, n_workers, dups):
                        for line, item, error, raw in chunk:
                            report.rows += 1
                            if item is None:
                                rejects.add(line, error, raw)
                                continue
                            k = key(item)
                            if k in keys:  # the same account/reference twice: apply in file order
                                writer.write(batch)
                                batch, keys = [], set()
                            batch.append(item)
                            keys.add(k)
                            if kind == "accounts" and item.phones:
                                report.invalid_phones.extend(InvalidPhone(line, item.number, ph.raw, ph.reason)
                                                             for ph in item.phones if not ph.valid)
                            if len(batch) >= BATCH_ROWS:
                                writer.write(batch)
                                since_commit += len(batch)
                                batch, keys = [], set()
                                if since_commit >= ROWS_PER_TRANSACTION:
                                    txn.__exit__(None, None, None)
                                    txn = db.atomic()
                                    txn.__enter__()
                                    since_commit = 0
                        if bar is not None:
                            bar.update(task, completed=f.bytes_read, rows=report.rows)
                    if batch:
                        writer.write(batch)
                    if kind == "payments":
                        writer.clear_claims()
                except BaseException as exc:
                    txn.__exit__(type(exc), exc, exc.__traceback__)
                    raise
                txn.__exit__(None, None, None)
                if bar is not None:
                    bar.update(task, completed=f.size, rows=report.rows)
    finally:
        rejects.close()
        if gc_was_enabled:
            gc.enable()
        if cache_pages is not None:
            db.execute_sql(f"PRAGMA cache_size = {int(cache_pages)}")
            db.execute_sql("PRAGMA shrink_memory")
    report.rejected.sort(key=lambda r: r.line)
    if full:
        report.missing = (Account.select().where(Account.seen_run.is_null() | (Account.seen_run < run.id))
                          .count())
    if report.confirmed_by:
        log.warning("event=import_anomaly_confirmed file=%s by=%s run=%s", path.name, report.confirmed_by, run.id)
        audit.record(report.confirmed_by, "import.confirm_anomaly", str(path), {
            "import_run": run.id, "checks": {c.name: {"before": c.before, "now": c.now, "change": round(c.change, 4),
                                                      "limit": c.limit} for c in report.tripped}})
    report.seconds = time.perf_counter() - started
    ImportRun.update(finished_at=utcnow(), rows=report.rows, loaded=report.loaded, updated=report.updated,
                     unchanged=report.unchanged, rejected=len(report.rejected),
                     rejects_file=str(report.rejects_file or "")[:400], not_in_ledger=len(report.not_in_ledger),
                     invalid_phones=len(report.invalid_phones)).where(ImportRun.id == run.id).execute()
    return report


def import_accounts(cfg: Config, path: str | Path, progress: bool = True, today: date | None = None,
                    workers: int | None = None, export: str | None = None, confirm_by: str | None = None
                    ) -> ImportReport:
    """Load an accounts export (account, name, phones, …, balance); rows without a balance date are dated
    `today`. `workers`: parsing processes (None = automatic: some on big files, none on small ones).
    `export`: 'full' (the file lists every account: those it does not list are no longer called until they
    reappear) or 'changes'; None = import.accounts_export.

    Before anything is written the file is compared with the previous full export (ivr.ledger.anomaly): past a
    threshold the import is HELD (report.held; nothing applied) unless `confirm_by` names who applies it anyway,
    which goes to the audit log."""
    mode = export or cfg.imports.accounts_export
    if mode not in ("full", "changes"):
        raise ValueError(f"export {mode!r}: expected full or changes")
    return _run(cfg, path, "accounts", progress, today, workers, full=mode == "full", confirm_by=confirm_by)


def import_payments(cfg: Config, path: str | Path, progress: bool = True, workers: int | None = None
                    ) -> ImportReport:
    """Load a payments export (account, amount, date, reference) and clear "already paid" claims of the
    accounts it names (the billing file is now the word on whether they paid)."""
    return _run(cfg, path, "payments", progress, None, workers)


def latest_full_export() -> ImportRun | None:
    """The newest finished, applied full accounts import (the one that says which accounts exist), or None."""
    return (ImportRun.select().where((ImportRun.kind == "accounts") & ImportRun.full
                                     & ImportRun.finished_at.is_null(False)
                                     & ImportRun.status.in_(APPLIED))
            .order_by(ImportRun.id.desc()).first())


def last_payments_import(db: pw.Database | None = None) -> datetime | None:
    """When the last payments import finished (naive UTC), or None."""
    return (ImportRun.select(pw.fn.MAX(ImportRun.finished_at))
            .where(ImportRun.kind == "payments").scalar())
