"""The short CI version of scripts/soak.py (issue 7): a few rounds of the demo's campaign at full speed in one
process (simulator + real dialer); between rounds, with no call in flight, the open file descriptors and live
greenlets must be exactly what they were after the first round, and every attempt must be finalized.
RSS is not judged here (a run this short is still warming caches up); the 10-minute script judges it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


def test_short_soak_leaks_no_fds_or_greenlets(tmp_path):
    out = tmp_path / "soak.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "soak.py"), "--minutes", "1", "--max-rounds", "4", "--accounts",
         "120", "--rss-slack", "10000", "--every", "2", "--json", str(out), "--workdir", str(tmp_path / "work")],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    res = json.loads(out.read_text())
    rounds = res["rounds"]
    assert len(rounds) == 4, proc.stdout[-2000:]
    assert all(r["in_flight"] == 0 and r["sim_calls"] == 0 for r in rounds)
    assert len({r["fds"] for r in rounds}) == 1, [r["fds"] for r in rounds]
    assert len({r["greenlets"] for r in rounds}) == 1, [r["greenlets"] for r in rounds]
    assert res["unfinalized"] == 0
    assert rounds[-1]["calls"] > rounds[0]["calls"] > 50  # every round placed calls
    assert res["outcomes"].get("heard", 0) > 0 and res["flow_errors"] == 0  # real calls, played to the end
    assert proc.returncode == 0
