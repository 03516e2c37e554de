"""Reading CSV exports the way billing systems really write them.

Encoding (UTF-8 with or without BOM, or Windows-1251), delimiter (`,` `;` tab) and decimal separator are sniffed
unless config fixes them; the header row is looked for among the first HEADER_SEARCH_LINES lines (exports often
start with a title line or two); rows are streamed one at a time with the line number they start on, so a file of any
size is read in flat memory and every problem can name its line. Amounts are Decimal, dates are `date`.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from ivr.errors import IvrError

FIELD_LIMIT = 64 * 1024  # a field bigger than this is junk; the row is rejected, the file goes on
MAX_FIELDS = 200
_SNIFF_BYTES = 1 << 20
HEADER_SEARCH_LINES = 10
DELIMITERS = (";", ",", "\t")


class CsvFormatError(IvrError):
    """The file as a whole cannot be read (missing, empty, no header, missing columns)."""


@dataclass(frozen=True)
class CsvFormat:
    encoding: str  # 'utf-8-sig' | 'utf-8' | 'cp1251'
    delimiter: str
    header_line: int = 0  # physical line of the header row; 0 = the first non-blank row


class Row(NamedTuple):
    """One data row: `line` is the physical line it starts on (1 = header); `error` is set for unreadable rows."""

    line: int
    raw: list[str]
    error: str = ""


class _CountingReader(io.RawIOBase):
    """Wraps a binary file and counts the bytes handed out, for the progress bar."""

    def __init__(self, f: io.BufferedReader) -> None:
        self._f = f
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[override]
        n = self._f.readinto(b)
        self.count += n or 0
        return n


def sniff_encoding(path: Path) -> str:
    """'utf-8-sig' when there is a BOM; 'utf-8' when the bytes decode as UTF-8 (a stray bad byte here and there
    is tolerated and those rows are rejected later); otherwise Windows-1251."""
    with open(path, "rb") as f:
        head = f.read(3)
        if head == codecs.BOM_UTF8:
            return "utf-8-sig"
        f.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        bad = good = 0
        while chunk := f.read(_SNIFF_BYTES):
            text = decoder.decode(chunk)
            if text.isascii():
                continue
            replaced = text.count("\ufffd")
            bad += replaced
            good += len(text) - len(text.encode("ascii", "ignore")) - replaced
            if bad > 1000 and bad > good:
                break
        bad += decoder.decode(b"", final=True).count("\ufffd")
    if bad == 0:
        return "utf-8"
    # Cyrillic in cp1251 is almost never valid UTF-8: mostly-bad means cp1251; a few bad bytes in a UTF-8 file
    # (binary junk in one field) keep it UTF-8 and only those rows are rejected.
    return "utf-8" if good >= 4 * bad else "cp1251"


def sniff_delimiter(header: str) -> str:
    """The delimiter that occurs most often (outside quotes) in the header line."""
    unquoted = re.sub(r'"[^"]*"', "", header)
    counts = {d: unquoted.count(d) for d in (";", ",", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _cell_names(cells: list[str]) -> set[str]:
    return {c.strip().lstrip("\ufeff").strip().lower() for c in cells}


def find_header(lines: list[str], names: list[str], delimiters: tuple[str, ...]) -> tuple[int, str] | None:
    """(1-based line, delimiter) of the first of `lines` that, split on one of `delimiters`, holds every one of
    `names` (case-insensitive), or None."""
    wanted = {n.strip().lower() for n in names}
    for i, line in enumerate(lines, start=1):
        for d in delimiters:
            if d not in line and len(wanted) > 1:
                continue
            try:
                cells = next(csv.reader([line], delimiter=d, quotechar='"'))
            except (csv.Error, StopIteration):
                continue
            if wanted <= _cell_names(cells):
                return i, d
    return None


def detect_format(path: Path, encoding: str = "auto", delimiter: str = "auto",
                  header_names: list[str] | None = None) -> CsvFormat:
    """Encoding, delimiter and header line of the file. With `header_names`, the header is the first of the first
    HEADER_SEARCH_LINES lines holding all of them (title lines above it are skipped); without, or when no line
    holds them, the first non-blank line (so a missing column is reported against what the file has)."""
    if encoding == "auto":
        encoding = sniff_encoding(path)
    elif encoding == "utf-8":
        encoding = "utf-8-sig"  # tolerate a BOM even when the encoding is fixed
    with open(path, encoding=encoding, errors="replace", newline="") as f:
        head = [f.readline() for _ in range(HEADER_SEARCH_LINES)]
    header_line = 0
    if header_names:
        found = find_header(head, header_names, DELIMITERS if delimiter == "auto" else (delimiter,))
        if found:
            header_line, found_delimiter = found
            delimiter = found_delimiter if delimiter == "auto" else delimiter
    if delimiter == "auto":
        first = next((line for line in head if line.strip()), "")
        delimiter = sniff_delimiter(first)
    return CsvFormat(encoding, delimiter, header_line)


class CsvFile:
    """A CSV file opened for streaming: `header` (column names as written), `rows()` and `bytes_read`/`size`
    for progress. Use as a context manager."""

    def __init__(self, path: str | Path, encoding: str = "auto", delimiter: str = "auto",
                 header_names: list[str] | None = None) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise CsvFormatError(f"{self.path}: no such file")
        self.size = self.path.stat().st_size
        if self.size == 0:
            raise CsvFormatError(f"{self.path}: the file is empty")
        self.format = detect_format(self.path, encoding, delimiter, header_names)
        self._bin = open(self.path, "rb")  # noqa: SIM115 - closed in close()
        self._counter = _CountingReader(self._bin)
        self._text = io.TextIOWrapper(io.BufferedReader(self._counter, 1 << 16), encoding=self.format.encoding,
                                      errors="replace", newline="")
        csv.field_size_limit(FIELD_LIMIT)
        self._reader = csv.reader(self._text, delimiter=self.format.delimiter, quotechar='"', strict=False)
        self.header = self._read_header()

    def _read_header(self) -> list[str]:
        try:
            for raw in self._reader:
                if self._reader.line_num < self.format.header_line:
                    continue  # a title line above the header
                if any(c.strip() for c in raw):
                    self.header_line = self._reader.line_num
                    return [c.strip().lstrip("\ufeff").strip() for c in raw]
        except csv.Error as exc:
            raise CsvFormatError(f"{self.path}: line {self._reader.line_num}: header unreadable: {exc}") from None
        raise CsvFormatError(f"{self.path}: no header line")

    @property
    def bytes_read(self) -> int:
        return self._counter.count

    def rows(self) -> Iterator[Row]:
        """Data rows in order; blank lines skipped; unreadable rows yielded with `error` set."""
        names = self.header
        width = len(names)
        reader = self._reader
        last = reader.line_num
        while True:
            start = last + 1
            try:
                raw = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                last = reader.line_num
                yield Row(start, [], f"unreadable CSV: {exc}")
                continue
            last = reader.line_num
            if not raw or (len(raw) == 1 and not raw[0].strip()):
                continue
            if len(raw) > MAX_FIELDS:
                yield Row(start, raw[:MAX_FIELDS], f"{len(raw)} fields, more than {MAX_FIELDS}")
                continue
            if len(raw) != width:
                if len(raw) > width and not any(v.strip() for v in raw[width:]):
                    raw = raw[:width]  # trailing delimiters
                else:
                    yield Row(start, raw, f"{len(raw)} fields where the header has {width}")
                    continue
            yield Row(start, raw)

    def close(self) -> None:
        self._text.close()
        self._bin.close()

    def __enter__(self) -> CsvFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- values ------------------------------------------------------------------------------------------------------

_AMOUNT_RE = re.compile(r"^[+-]?[0-9]+(\.[0-9]+)?$")
_SPACES_RE = re.compile(r"[\s\u00a0\u202f']")


@lru_cache(maxsize=4096)
def parse_amount(text: str, decimal: str = "auto") -> Decimal:
    """'1 234,50' / '1234.5' / '-12' -> Decimal with 2 places; ValueError naming the problem."""
    s = _SPACES_RE.sub("", text.strip())
    if not s:
        raise ValueError("empty amount")
    if decimal == "auto":
        if "," in s and "." in s:
            decimal = "," if s.rfind(",") > s.rfind(".") else "."
        else:
            decimal = "," if "," in s else "."
    s = s.replace(".", "").replace(",", ".") if decimal == "," else s.replace(",", "")
    if not _AMOUNT_RE.match(s):
        raise ValueError(f"amount {text!r} is not a number")
    if "." in s and len(s.split(".")[1].rstrip("0")) > 2:
        raise ValueError(f"amount {text!r} has more than 2 decimals (check import.decimal)")
    try:
        value = Decimal(s).quantize(Decimal("0.01"))
    except InvalidOperation:
        raise ValueError(f"amount {text!r} is not a number") from None
    if abs(value) >= Decimal("1e12"):
        raise ValueError(f"amount {text!r} is out of range")
    return value


_DATE_FORMATS = (
    (re.compile(r"^\d{4}-\d{1,2}-\d{1,2}$"), "%Y-%m-%d"),
    (re.compile(r"^\d{1,2}\.\d{1,2}\.\d{4}$"), "%d.%m.%Y"),
    (re.compile(r"^\d{1,2}/\d{1,2}/\d{4}$"), "%d/%m/%Y"),
)


@lru_cache(maxsize=1 << 14)
def parse_date(text: str, fmt: str = "auto") -> date:
    """ISO 2026-11-20, 20.11.2026 or 20/11/2026 (day first), optionally followed by a time that is ignored."""
    s = text.strip()
    if not s:
        raise ValueError("empty date")
    if fmt != "auto":
        try:
            return datetime.strptime(s, fmt).date()
        except ValueError:
            raise ValueError(f"date {text!r} does not match {fmt}") from None
    day_part = re.split(r"[ T]", s, maxsplit=1)[0]
    for pattern, pfmt in _DATE_FORMATS:
        if pattern.match(day_part):
            try:
                return datetime.strptime(day_part, pfmt).date()
            except ValueError:
                raise ValueError(f"date {text!r} does not exist") from None
    raise ValueError(f"date {text!r} is not YYYY-MM-DD, DD.MM.YYYY or DD/MM/YYYY")
