#!/usr/bin/env python3
"""Operational faults against the real `ivr` command in its own process (issue 7), without the in-process
shortcuts the tests take: wrong ESL password, FreeSWITCH unreachable, the outbound-socket port taken, the
database locked by another process (the full 10 s busy wait), the database on a read-only mount, the prompt cache
on a tiny full tmpfs. Each must end with a non-zero exit code and one clear `ivr: …` line, no traceback.

The mounts need root (mount -t tmpfs); without it those two cases are reported as skipped.

    sudo .venv/bin/python scripts/fault_cli.py
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IVR = [sys.executable, "-c", "import sys; from ivr.cli import main; sys.exit(main(sys.argv[1:]))"]


def ivr(config: Path, *argv: str, timeout: float = 60) -> tuple[int, str, float]:
    t = time.monotonic()
    p = subprocess.run([*IVR, "--config", str(config), *argv], cwd=ROOT, capture_output=True, text=True,
                       timeout=timeout)
    return p.returncode, p.stderr, time.monotonic() - t


def config(work: Path, db: Path, cache: Path, port: int = 1, password: str = "ClueCon",
           outbound_port: int = 18084) -> Path:
    path = work / "config.yaml"
    path.write_text(f"""database: {{url: "sqlite:///{db}"}}
speech: {{cache_dir: "{cache}"}}
import: {{rejects_dir: "{work / 'rejects'}"}}
eligibility: {{max_data_age_hours: 0}}  # these faults come before any billing file: the age check is not tested here
logging: {{level: ERROR}}
freeswitch: {{host: 127.0.0.1, port: {port}, password: "{password}", command_timeout: 3.0,
  outbound_bind_host: 127.0.0.1, outbound_bind_port: {outbound_port}}}
""", encoding="utf-8")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def judge(name: str, code: int, err: str, secs: float, must: str) -> bool:
    lines = [ln for ln in err.splitlines() if ln.startswith("ivr: ")]
    ok = code != 0 and "Traceback" not in err and "Exception ignored" not in err and len(lines) == 1 \
        and must.lower() in lines[0].lower()
    print(f"[{'ok' if ok else 'FAIL'}] {name}: exit {code} in {secs:.1f} s: {lines[0] if lines else err[-300:]!r}")
    return ok


@contextlib.contextmanager
def tmpfs(path: Path, size: str):
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if r.returncode != 0:
        yield None
        return
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="fault_cli_"))
    db = work / "ivr.sqlite3"
    results: list[bool | None] = []
    sample = work / "billing"
    cfg = config(work, db, work / "cache")
    subprocess.run([*IVR, "--config", str(cfg), "import", "sample", "--out", str(sample), "--accounts", "40"],
                   cwd=ROOT, capture_output=True)
    accounts = sample / "accounts.csv"
    if not accounts.exists():  # the sample writer's flags differ: write it directly
        sys.path.insert(0, str(ROOT))
        from ivr.ledger.sample import write_sample

        accounts = write_sample(sample, accounts=40, seed=3).accounts
    sim = subprocess.Popen([*IVR, "--config", str(cfg), "sim", "--port", "0", "--status-every", "0"], cwd=ROOT,
                           stderr=subprocess.PIPE, text=True)
    line = sim.stderr.readline()
    port = int(line.split("listening on 127.0.0.1:")[1].split()[0])
    try:
        c = config(work, db, work / "cache", port=port, password="wrong-password")
        code, err, s = ivr(c, "run", "--date", "2026-11-23")
        results.append(judge("wrong ESL password (ivr run)", code, err, s, "password")
                       and "wrong-password" not in err)
        c = config(work, db, work / "cache", port=free_port())
        code, err, s = ivr(c, "switch", "check")
        results.append(judge("FreeSWITCH unreachable (ivr switch check)", code, err, s, "cannot reach"))
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen(1)
            c = config(work, db, work / "cache", port=port, outbound_port=taken.getsockname()[1])
            code, err, s = ivr(c, "run", "--date", "2026-11-23")
            results.append(judge("outbound-socket port taken (ivr run)", code, err, s, "already in use"))
    finally:
        sim.terminate()
        sim.wait(timeout=10)

    c = config(work, db, work / "cache")
    ivr(c, "db", "upgrade")
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    code, err, s = ivr(c, "import", "accounts", str(accounts))
    holder.execute("ROLLBACK")
    holder.close()
    results.append(judge("database locked by another process (ivr import accounts)", code, err, s, "locked"))
    code, err, s = ivr(c, "import", "accounts", str(accounts))
    print(f"       same import once the lock is gone: exit {code}")
    results.append(code == 0)

    with tmpfs(work / "ro", "8m") as ro:
        if ro is None:
            print("[skip] database on a read-only mount: cannot mount tmpfs (not root)")
        else:
            rodb = ro / "ivr.sqlite3"
            c2 = config(work, rodb, work / "cache")
            ivr(c2, "db", "upgrade")
            subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
            code, err, s = ivr(c2, "import", "accounts", str(accounts))
            results.append(judge("database on a read-only mount (ivr import accounts)", code, err, s, "read"))
    with tmpfs(work / "tiny", "96k") as tiny:
        if tiny is None:
            print("[skip] prompt cache on a full disk: cannot mount tmpfs (not root)")
        else:
            c3 = config(work, db, tiny / "cache")
            code, err, s = ivr(c3, "prompts", "render", "--date", "2026-11-23")
            results.append(judge("prompt cache on a full 96 KiB tmpfs (ivr prompts render)", code, err, s,
                                 "no space left"))
    print(f"{sum(1 for r in results if r)} of {len(results)} passed; work folder {work}")
    return 0 if all(results) else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
