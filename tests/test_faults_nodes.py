"""Two dialer nodes on one PostgreSQL and one simulated FreeSWITCH, real processes (issue 13): one node is killed
(-9), frozen (SIGSTOP past the node timeout, then SIGCONT) or cut off from the database. The CI-sized run of
scripts/fault_nodes.py; the script checks from the simulator's events and the database (every debtor ends with one
outcome, nobody is called twice at once, the shared cap holds, the evening ends), and this test asserts on the
figures it writes, so a check that passes vacuously (no call was up when the node failed) fails here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

# processes on a scaled clock: about 40 s each on an idle machine, several minutes when two suites share 2 cores
pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(450)]

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("db_backend", ["postgres"])
@pytest.mark.parametrize("scenario", ["kill9", "sigstop", "dropconn"])
def test_two_nodes_one_fails(scenario, db_url, tmp_path):
    out = tmp_path / "nodes.json"
    # a frozen node's calls must still be up when the other node fences it (4 s), or there is nothing to hang up:
    # queued apps finish a 4 s message on their own. 15 s messages, fewer debtors to keep the evening short.
    accounts, message_s = (12, "150") if scenario == "sigstop" else (16, "40")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "fault_nodes.py"), "--scenario", scenario, "--db-url", db_url,
         "--accounts", str(accounts), "--channels", "6", "--scale", "10", "--message-s", message_s, "--node-timeout", "4",
         "--timeout", "120", "--json", str(out), "--workdir", str(tmp_path / "work")],
        cwd=ROOT, capture_output=True, text=True, timeout=400)
    assert out.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    res = json.loads(out.read_text())[0]
    failed = [name for name, ok in res["checks"].items() if not ok]
    if failed:  # the whole story (pytest's assertion rewriting would cut the repr to a line)
        pytest.fail("checks failed: " + "; ".join(failed) + "\n" + json.dumps(res, indent=1, default=str)[-6000:]
                    + "\n--- script output ---\n" + proc.stdout[-3000:]
                    + "\n--- the dialers' and the script's log (tail) ---\n" + proc.stderr[-8000:], pytrace=False)
    assert proc.returncode == 0
    # the failure really cut into calls, and the evening still delivered every message exactly once
    assert res["a_calls_up_at_fault"] >= 1 and res["sim_created"] >= res["accounts"]
    assert res["entry_states"] == {"done/heard": accounts} and res["outcomes"]["heard"] == accounts
    assert res["sim_peak"] <= 6 and not res["overlaps"]
    if scenario == "sigstop":
        a = res["dialers"][res["victim"]]
        assert a["fenced"] >= 1 and a["node"].startswith(res["victim"] + "-r")  # rejoined under a new name
        assert res["taken_over_killed"] >= 1  # the frozen node's live calls were hung up, not waited for
    if scenario == "dropconn":
        assert res["connections_cut"] >= 1
