"""Shared test fixtures: the real FreeSWITCH transcripts, a fresh database per test, the default config."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from ivr.config import Config, parse_config
from ivr.ledger.db import connect

FIXTURES = Path(__file__).parent / "fixtures"


@dataclass
class Record:
    dir: str  # "in" = FreeSWITCH -> client, "out" = client -> FreeSWITCH
    t: float
    data: str
    conn: str = ""


@dataclass
class Transcript:
    header: dict
    records: list[Record]

    def stream(self, direction: str = "in", conn: str | None = None) -> bytes:
        """The raw bytes that crossed the socket in one direction (per connection when the file has several)."""
        return b"".join(r.data.encode("utf-8") for r in self.records
                        if r.dir == direction and (conn is None or r.conn == conn))

    @property
    def conns(self) -> list[str]:
        seen: list[str] = []
        for r in self.records:
            if r.conn not in seen:
                seen.append(r.conn)
        return seen


def load_transcript(name: str) -> Transcript:
    path = FIXTURES / (name if name.endswith(".jsonl") else name + ".jsonl")
    lines = path.read_text(encoding="utf-8").splitlines()
    header = json.loads(lines[0])
    records = [Record(**json.loads(line)) for line in lines[1:] if line.strip()]
    return Transcript(header, records)


@pytest.fixture
def transcript():
    return load_transcript


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    """Default settings with the database and every writable folder under tmp_path."""
    return parse_config({
        "database": {"url": f"sqlite:///{tmp_path / 'ivr.sqlite3'}"},
        "speech": {"cache_dir": str(tmp_path / "cache")},
        "import": {"rejects_dir": str(tmp_path / "rejects")},
        "report": {"output_dir": str(tmp_path / "reports")},
    }, base_dir=tmp_path, env={})


@pytest.fixture
def db(cfg: Config):
    database = connect(cfg.database.url, cfg.base_dir)
    yield database
    database.close()
