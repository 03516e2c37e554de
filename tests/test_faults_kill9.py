"""`kill -9` of a dialer process mid-campaign, then a restart, with real processes (issue 7): the short CI run of
scripts/fault_kill9.py (a clean evening and a crashed one of the same seeded debtor script, each against its own
`ivr sim` process). The script checks from the simulator's events and the two databases; this test runs it and
asserts on the figures it writes, so a check that passes vacuously (nothing was cut by the kill) fails here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


def test_kill9_mid_campaign_then_restart(tmp_path):
    out = tmp_path / "kill9.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "fault_kill9.py"), "--accounts", "30", "--scale", "40",
         "--kill-after", "5", "--channels", "8", "--same-node", "--timeout", "90", "--json", str(out),
         "--workdir", str(tmp_path / "work")],
        cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert out.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    res = json.loads(out.read_text())
    failed = [name for name, ok in res["checks"].items() if not ok]
    assert not failed, (failed, proc.stdout[-3000:])
    assert proc.returncode == 0
    crash, clean = res["crash"], res["clean"]
    # the kill really cut calls in the middle, and results had been written before it
    assert crash["cut"] >= 1 and crash["snapshot"] >= 5 and crash["live_at_kill"] >= 1
    # what the kill cut was settled: re-queued as unknown (and called again), or the flow's verdict kept
    assert sum(crash["cut_after"].values()) == crash["cut"]
    assert not any(k.endswith("/-") for k in crash["cut_after"]), crash["cut_after"]
    assert len(crash["unknown_accounts"]) == crash["cut_after"].get("unknown/unknown", 0)
    assert crash["attempts"] > crash["snapshot"] + crash["cut"]  # the evening went on after the restart
    assert clean["outcomes"].get("heard", 0) > 0 and crash["outcomes"].get("heard", 0) > 0  # messages played
    assert clean["sim_created"] > 0 and crash["sim_created"] > 0 and not crash["overlaps"]
