"""`ivr sim` runs the simulator alone: any ESL client can connect, authenticate and originate."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _recv_until(sock: socket.socket, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    return data


def test_ivr_sim_serves_esl_and_stops_on_sigterm(tmp_path):
    script = tmp_path / "debtors.yaml"
    script.write_text('numbers:\n  "+380501234567": busy\n', encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from ivr.cli import main; sys.exit(main(sys.argv[1:]))",
         "sim", "--port", "0", "--password", "s3cret", "--scale", "20", "--script", str(script),
         "--status-every", "0"],
        cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        seen = []
        m = None
        while m is None:
            line = proc.stderr.readline()
            assert line, seen  # the process ended before saying where it listens
            seen.append(line)
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        assert "s3cret" not in line
        with socket.create_connection(("127.0.0.1", int(m.group(1))), timeout=10) as s:
            assert _recv_until(s, b"\n\n") == b"Content-Type: auth/request\n\n"
            s.sendall(b"auth s3cret\n\n")
            assert b"+OK accepted" in _recv_until(s, b"\n\n")
            s.sendall(b"api originate {origination_uuid=7d2c1c61-0000-4000-8000-000000000001}"
                      b"sofia/gateway/trunk/+380501234567 &park()\n\n")
            assert _recv_until(s, b"-ERR USER_BUSY\n").endswith(b"\n\n-ERR USER_BUSY\n")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
