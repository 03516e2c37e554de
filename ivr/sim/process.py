"""`ivr sim` in a process of its own, for the benchmark and fault scripts: the command line and the wait for the
port it listens on (it binds port 0 and says which port it got on stderr, which goes to WORK/sim.log)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from ivr.errors import IvrError

_LISTENING = re.compile(r"listening on [0-9.]+:(\d+)")


def start_sim_process(work: Path, *, scale: float, start: datetime, real_start: float, script: Path,
                      seed: int | None = None, cwd: Path | None = None,
                      wait_s: float = 30.0) -> tuple[subprocess.Popen, int]:
    """Start the simulator on a shared scaled clock (`start`, `real_start`, `scale`) with a debtor script; return
    the process and its event-socket port. IvrError when it does not come up within `wait_s`."""
    config = work / "sim.yaml"
    config.write_text("logging:\n  level: WARNING\n", encoding="utf-8")
    cmd = [sys.executable, "-c", "import sys; from ivr.cli import main; sys.exit(main(sys.argv[1:]))",
           "--config", str(config), "sim", "--port", "0", "--scale", str(scale), "--start", start.isoformat(),
           "--real-start", repr(real_start), "--script", str(script), "--status-every", "0", "--gateway", "trunk"]
    if seed is not None:
        cmd += ["--seed", str(seed)]
    # stderr goes to a file, not a pipe: a pipe nobody reads fills up (64 KB) and the simulator then blocks on its
    # next log line, which looks like a frozen switch
    log_path = work / "sim.log"
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(cmd, cwd=cwd, stderr=log, text=True)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        m = _LISTENING.search(log_path.read_text(encoding="utf-8", errors="replace"))
        if m:
            return proc, int(m[1])
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise IvrError(f"the simulator did not start: {log_path.read_text(encoding='utf-8', errors='replace')[-2000:]}")
