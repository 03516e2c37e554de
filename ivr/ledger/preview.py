"""A look at a billing export before it is imported: its format, the first rows, and how its columns map to ours.

What the console's Import page shows between the upload and the import (the import itself is ivr.ledger.importer).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from ivr.config import Config
from ivr.ledger.csvread import CsvFile
from ivr.ledger.importer import header_names

REQUIRED = {"accounts": ("account", "name", "phones"), "payments": ("account", "amount", "date", "reference")}


@dataclass
class Preview:
    kind: str
    encoding: str
    delimiter: str
    header: list[str]
    rows: list[list[str]]  # the first data rows as read
    mapping: list[tuple[str, str, int | None]]  # our field, the export's column name, its index (None = absent)
    missing: list[str]  # required fields whose column is absent: the import would fail

    @property
    def ok(self) -> bool:
        return not self.missing


def preview_file(cfg: Config, path: str | Path, kind: str, rows: int = 10) -> Preview:
    """Read only the head of the file (CsvFormatError names the problem when it cannot be read at all)."""
    if kind not in REQUIRED:
        raise ValueError(f"kind {kind!r}: expected accounts or payments")
    mapping = cfg.imports.account_columns if kind == "accounts" else cfg.imports.payment_columns
    with CsvFile(path, cfg.imports.encoding, cfg.imports.delimiter, header_names(cfg, kind)) as f:
        head = [r.raw for r in islice(f.rows(), rows)]
        index = {name.strip().lower(): i for i, name in enumerate(f.header)}
        mapped = [(ours, theirs, index.get(theirs.strip().lower())) for ours, theirs in mapping.items()]
        missing = [ours for ours, _theirs, i in mapped if i is None and ours in REQUIRED[kind]]
        return Preview(kind, f.format.encoding, f.format.delimiter, f.header, head, mapped, missing)
