"""The local do-not-call list: phone numbers and accounts that must not be called, why, until when, and who said so.

An entry names a number (E.164) or an account (its account number). It applies from when it is added up to and
including its `until` day (the debtor's local calendar day; no `until` = for good), until someone removes it.
Removing never deletes: the row keeps who removed it, when and why, so "why was I (not) called?" can always be
answered. Every add and remove goes to the audit log (`dnc.add`, `dnc.remove`).

Who reads it: eligibility (an account listed, or every number of an account listed, is not eligible, with the
entry's reason), the queue's re-check just before each dial (a listed number is skipped), and the dialer, which
adds the number when the person on the line presses `callflow.optout_key` (actor `debtor:key`).
The CLI (`ivr dnc …`) and the web console call the functions here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import peewee as pw

from ivr.config import Config
from ivr.errors import IvrError
from ivr.ledger import audit
from ivr.ledger.models import Account, DncEntry, Phone, utcnow
from ivr.ledger.phones import normalize
from ivr.logs import shown_number

log = logging.getLogger(__name__)

KINDS = ("number", "account")
REASON_MAX = 400
OPT_OUT_ACTOR = "debtor:key"


class DncError(IvrError):
    """A do-not-call request that cannot be done as asked (unknown target, nothing to remove, no reason)."""

    exit_code = 2


@dataclass(frozen=True)
class Target:
    """What an entry names: kind 'number' (value = E.164) or 'account' (value = the account number)."""

    kind: str
    value: str

    def shown(self, full: bool = False) -> str:
        return self.value if self.kind == "account" or full else shown_number(self.value)


def resolve(cfg: Config, text: str, kind: str | None = None) -> Target:
    """A NUMBER or ACCOUNT as staff typed it. An account number known to the ledger wins; otherwise a phone number
    valid for `locale.country` (normalised to E.164). `kind` forces one reading ('account' allows an account the
    ledger does not know yet, e.g. before its first import)."""
    text = (text or "").strip()
    if not text:
        raise DncError("give a phone number or an account number")
    if kind not in (None, *KINDS):
        raise DncError(f"kind {kind!r}: expected number or account")
    if kind in (None, "account") and Account.select().where(Account.number == text).exists():
        return Target("account", text)
    if kind == "account":
        if len(text) > 64 or any(c.isspace() for c in text):
            raise DncError(f"{text!r} is not an account number")
        return Target("account", text)
    phone = normalize(text, cfg.locale.country)
    if phone.valid:
        return Target("number", phone.e164)
    if kind == "number":
        raise DncError(f"{text!r} is not a phone number: {phone.reason}")
    raise DncError(f"{text!r} is neither an account in the ledger nor a valid phone number ({phone.reason}); "
                   "use --account to list an account not imported yet")


def _active(q: pw.Select, day: date | None) -> pw.Select:
    q = q.where(DncEntry.removed_at.is_null())
    if day is not None:
        q = q.where(DncEntry.until.is_null() | (DncEntry.until >= day))
    return q


def active_entry(target: Target, day: date | None = None) -> DncEntry | None:
    """The entry in force for `target` on `day` (any not removed when `day` is None); the oldest if several."""
    return (_active(DncEntry.select(), day).where(DncEntry.kind == target.kind, DncEntry.value == target.value)
            .order_by(DncEntry.added_at, DncEntry.id).first())


def describe(entry: DncEntry) -> str:
    """One line for people: the reason, since when, by whom, until when."""
    until = f", until {entry.until}" if entry.until else ""
    return f"{entry.reason} (since {entry.added_at:%Y-%m-%d}, by {entry.added_by}{until})"


def add(cfg: Config, target: Target | str, reason: str, actor: str, *, until: date | None = None,
        source: str = "cli", kind: str | None = None, at: datetime | None = None) -> DncEntry:
    """Put a number or account on the list (audited as `dnc.add`). Refused when an entry for it is already in
    force (its reason is named): remove it first to change it."""
    t = target if isinstance(target, Target) else resolve(cfg, target, kind)
    reason = " ".join((reason or "").split())
    if not reason:
        raise DncError("a reason is required (--reason TEXT): the list must say why")
    if len(reason) > REASON_MAX:
        raise DncError(f"the reason is {len(reason)} characters; at most {REASON_MAX}")
    now = at or utcnow()
    if until is not None and until < now.date():
        raise DncError(f"--until {until} is in the past")
    existing = active_entry(t)
    if existing is not None:
        raise DncError(f"{t.shown()} is already on the do-not-call list: {describe(existing)}")
    with DncEntry._meta.database.atomic():
        entry = DncEntry.create(kind=t.kind, value=t.value, reason=reason, until=until, added_by=actor[:100],
                                added_at=now, source=source[:200])
        audit.record(actor, "dnc.add", t.value, {"kind": t.kind, "reason": reason,
                                                 "until": until.isoformat() if until else None, "source": source},
                     at=now)
    log.info("event=dnc_add kind=%s value=%s actor=%s source=%s", t.kind, t.shown(), actor, source)
    return entry


def remove(cfg: Config, target: Target | str, actor: str, reason: str = "", *, kind: str | None = None,
           at: datetime | None = None) -> list[DncEntry]:
    """Take a number or account off the list: every entry not yet removed is marked removed (who, when, why) and
    audited as `dnc.remove`; nothing is deleted."""
    t = target if isinstance(target, Target) else resolve(cfg, target, kind)
    now = at or utcnow()
    reason = " ".join((reason or "").split())[:REASON_MAX]
    entries = list(_active(DncEntry.select(), None).where(DncEntry.kind == t.kind, DncEntry.value == t.value))
    if not entries:
        raise DncError(f"{t.shown()} is not on the do-not-call list")
    with DncEntry._meta.database.atomic():
        for e in entries:
            e.removed_at, e.removed_by, e.removed_reason = now, actor[:100], reason
            e.save()
        audit.record(actor, "dnc.remove", t.value, {"kind": t.kind, "reason": reason,
                                                    "entries": [e.id for e in entries]}, at=now)
    log.info("event=dnc_remove kind=%s value=%s actor=%s", t.kind, t.shown(), actor)
    return entries


def entries(*, include_removed: bool = False, day: date | None = None) -> list[DncEntry]:
    """The list, oldest first: entries in force (on `day`, when given), or every entry ever made."""
    q = DncEntry.select().order_by(DncEntry.added_at, DncEntry.id)
    return list(q if include_removed else _active(q, day))


def entries_for(account_number: str, numbers: Iterable[str]) -> list[DncEntry]:
    """Every entry, in force or not, naming this account or one of these numbers (one debtor's story)."""
    nums = [n for n in numbers if n]
    cond = (DncEntry.kind == "account") & (DncEntry.value == account_number)
    if nums:
        cond |= (DncEntry.kind == "number") & DncEntry.value.in_(nums)
    return list(DncEntry.select().where(cond).order_by(DncEntry.added_at, DncEntry.id))


@dataclass
class Listed:
    """The entries in force on one day, by account number and by number (what eligibility needs, in one query)."""

    accounts: dict[str, DncEntry] = field(default_factory=dict)
    numbers: dict[str, DncEntry] = field(default_factory=dict)

    def account(self, number: str) -> DncEntry | None:
        return self.accounts.get(number)

    def number(self, e164: str) -> DncEntry | None:
        return self.numbers.get(e164)


def listed_on(day: date, accounts: Iterable[str] | None = None, numbers: Iterable[str] | None = None) -> Listed:
    """The entries in force on `day`: all of them (the list is short next to the ledger: one query, held in
    memory), or only those naming these `accounts` / `numbers` when either is given (one account's check)."""
    out = Listed()
    if accounts is None and numbers is None:
        rows: Iterable[DncEntry] = _active(DncEntry.select(), day).order_by(DncEntry.added_at, DncEntry.id)
    else:
        from ivr.ledger import prebuilt

        accs, nums = list(accounts or ()), [n for n in numbers or () if n]
        if not accs and not nums:
            return out

        def build() -> pw.Select:
            cond = (DncEntry.kind == "account") & DncEntry.value.in_(accs) if accs else None
            if nums:
                by_number = (DncEntry.kind == "number") & DncEntry.value.in_(nums)
                cond = by_number if cond is None else cond | by_number
            return _active(DncEntry.select(), day).where(cond).order_by(DncEntry.added_at, DncEntry.id)

        # the dialer asks this for every claim: the SQL text is built once per shape (ivr.ledger.prebuilt)
        params = [*([day] if day is not None else []), *(["account", *accs] if accs else []),
                  *(["number", *nums] if nums else [])]
        text, values = prebuilt.sql_for(("dnc.listed_on", day is None, len(accs), len(nums)), build, params)
        rows = pw.ModelRaw(DncEntry, text, values)
    for e in rows:
        (out.accounts if e.kind == "account" else out.numbers).setdefault(e.value, e)
    return out


def listed_numbers(numbers: Iterable[str], day: date) -> dict[str, DncEntry]:
    """Which of these numbers are on the list on `day` (the dialer's last check before it dials)."""
    nums = list({n for n in numbers if n})
    if not nums:
        return {}
    q = _active(DncEntry.select(), day).where(DncEntry.kind == "number", DncEntry.value.in_(nums))
    return {e.value: e for e in q}


def without_listed(phones: list[Phone], day: date) -> list[Phone]:
    """`phones` minus those whose number is on the list on `day`."""
    barred = listed_numbers((p.e164 for p in phones), day)
    return [p for p in phones if p.e164 not in barred] if barred else phones


def opt_out(e164: str, *, attempt_uuid: str, key: str, accounts: Iterable[str] = (),
            at: datetime | None = None) -> DncEntry:
    """The person on the line pressed the opt-out key: the number goes on the list for good (actor `debtor:key`).
    Already listed (pressed twice, or a shared number): the entry in force is kept and returned."""
    existing = active_entry(Target("number", e164))
    if existing is not None:
        return existing
    now = at or utcnow()
    accs = ",".join(accounts)
    reason = f"the person who answered pressed {key}: do not call this number again"
    source = f"key {key} on call {attempt_uuid}" + (f" (accounts {accs})" if accs else "")
    entry = DncEntry.create(kind="number", value=e164, reason=reason, added_by=OPT_OUT_ACTOR, added_at=now,
                            source=source[:200])
    audit.record(OPT_OUT_ACTOR, "dnc.add", e164, {"kind": "number", "reason": reason, "until": None,
                                                  "source": source}, at=now)
    log.info("event=dnc_opt_out number=%s attempt=%s", shown_number(e164), attempt_uuid)
    return entry


# --- import ------------------------------------------------------------------------------------------------------

@dataclass
class ImportResult:
    rows: int = 0
    added: list[DncEntry] = field(default_factory=list)
    already: list[tuple[int, str]] = field(default_factory=list)  # (line, what) already on the list
    problems: list[tuple[int, str]] = field(default_factory=list)  # (line, why) rows not applied


COLUMNS = ("number", "account", "reason", "until")


def import_file(cfg: Config, path: str | Path, actor: str, *, default_reason: str = "",
                progress: Callable[[int, int], None] | None = None) -> ImportResult:
    """Add every row of a CSV file with a header naming `number` and/or `account`, `reason` and optionally
    `until` (YYYY-MM-DD, DD.MM.YYYY). Each row names one number or one account. Rows in error are listed by line
    and skipped; every good row is applied (a person asking not to be called must not wait for a typo two lines
    further down). Numbers and accounts already on the list are counted, not added twice."""
    from ivr.ledger.csvread import CsvFile, CsvFormatError, parse_date

    imp = cfg.imports
    result = ImportResult()
    with CsvFile(path, imp.encoding, imp.delimiter) as f:
        names = [h.strip().lower() for h in f.header]
        unknown = [h for h in names if h and h not in COLUMNS]
        if unknown or not ({"number", "account"} & set(names)):
            raise CsvFormatError(f"{path}: the header must name the columns number and/or account, reason and "
                                 f"optionally until; found {', '.join(f.header) or 'nothing'}")
        if "reason" not in names and not default_reason.strip():
            raise CsvFormatError(f"{path}: no reason column: add one, or give --reason TEXT for every row")
        col = {n: i for i, n in enumerate(names)}
        for row in f.rows():
            result.rows += 1
            if progress is not None:
                progress(f.bytes_read, f.size)
            if row.error:
                result.problems.append((row.line, row.error))
                continue
            cell = {n: row.raw[i].strip() for n, i in col.items()}
            number, account = cell.get("number", ""), cell.get("account", "")
            if bool(number) == bool(account):
                result.problems.append((row.line, "give a number or an account (one of them)"))
                continue
            try:
                until = parse_date(cell["until"], imp.date_format) if cell.get("until") else None
                target = resolve(cfg, number or account, "number" if number else "account")
                existing = active_entry(target)
                if existing is not None:
                    result.already.append((row.line, target.shown()))
                    continue
                result.added.append(add(cfg, target, cell.get("reason") or default_reason, actor, until=until,
                                        source=f"import {Path(path).name} line {row.line}"))
            except (ValueError, DncError) as exc:
                result.problems.append((row.line, str(exc)))
    return result
