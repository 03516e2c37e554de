#!/usr/bin/env python3
"""Benchmark of the simulated FreeSWITCH running in its own process (`ivr sim`).

A trivial dialer (this process, gevent): one inbound connection subscribed to ALL events originates calls at
--rate per second; a trivial call-flow server answers each outbound socket with connect, myevents, linger,
event plain PLAYBACK_START PLAYBACK_STOP, one playback of a short WAV, hangup, exit. Reports calls/s, events/s
delivered (inbound + outbound sockets) and the simulator's own CPU use (from /proc), i.e. events per CPU-second.

    .venv/bin/python scripts/bench_sim.py --calls 3000 --rate 100 --scale 60
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
import wave
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import gevent  # noqa: E402

from ivr.sim.probe import FrameConn, OutboundProbe  # noqa: E402


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--rate", type=float, default=100.0, help="new calls per real second")
    ap.add_argument("--scale", type=float, default=60.0, help="simulator clock scale")
    ap.add_argument("--message-s", type=float, default=30.0, help="length of the played WAV (sim seconds)")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench_sim_"))
    wav = tmp / "msg.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * int(8000 * args.message_s))
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from ivr.cli import main; sys.exit(main(sys.argv[1:]))", "sim",
         "--port", "0", "--scale", str(args.scale), "--status-every", "0"],
        cwd=ROOT, stderr=subprocess.PIPE, text=True)
    port = None
    while port is None:
        line = proc.stderr.readline()
        if not line:
            print("simulator did not start", file=sys.stderr)
            return 1
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        port = int(m.group(1)) if m else None

    out_events = [0]

    def flow(c: FrameConn) -> None:
        c.command("connect")
        c.command("myevents")
        c.command("linger")
        c.command("event plain PLAYBACK_START PLAYBACK_STOP")
        c.command(f"sendmsg\ncall-command: execute\nexecute-app-name: playback\nexecute-app-arg: {wav}")
        c.wait_event("CHANNEL_EXECUTE_COMPLETE", timeout=120)
        c.command("sendmsg\ncall-command: hangup\nhangup-cause: NORMAL_CLEARING")
        c.wait_event("CHANNEL_HANGUP_COMPLETE", timeout=60)
        c.send("exit\n\n")
        c.wait_closed(60)
        out_events[0] += sum(1 for f in c.frames if f.content_type == "text/event-plain")
        c.frames.clear()

    probe = OutboundProbe(flow).start()
    conn = FrameConn.connect("127.0.0.1", port)
    conn.next()
    conn.command("auth ClueCon")
    conn.command("event plain ALL")
    destroyed = [0]
    in_events = [0]

    def count() -> None:
        while True:
            f = conn.next(timeout=600)
            if f is None:
                return
            if f.content_type == "text/event-plain":
                in_events[0] += 1
                if f.body.startswith(b"Event-Name: CHANNEL_DESTROY\n"):
                    destroyed[0] += 1
            conn.frames.clear()

    counter = gevent.spawn(count)

    cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
    interval = 1.0 / args.rate
    for i in range(args.calls):
        target = t0 + i * interval
        delay = target - time.monotonic()
        if delay > 0:
            gevent.sleep(delay)
        conn.send(f"bgapi originate {{origination_uuid={uuid.uuid4()},absolute_codec_string=PCMU}}"
                  f"sofia/gateway/trunk/+38050{i:07d} '&socket(127.0.0.1:{probe.port} async full)'\n\n")
    send_done = time.monotonic()
    while destroyed[0] < args.calls and time.monotonic() - send_done < 120:
        gevent.sleep(0.05)
    t1, cpu1 = time.monotonic(), cpu_seconds(proc.pid)
    counter.kill()
    status = conn.command("api status").body.decode()
    peak = re.search(r"peak (\d+)", status)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=10)
    probe.stop()

    wall, cpu = t1 - t0, cpu1 - cpu0
    events = in_events[0] + out_events[0]
    print(f"calls completed {destroyed[0]}/{args.calls} in {wall:.1f}s real; offered {args.calls / (send_done - t0):.0f} "
          f"new calls/s; peak {peak.group(1) if peak else '?'} calls at once; clock x{args.scale:g}, "
          f"message {args.message_s:g}s")
    print(f"events delivered: inbound {in_events[0]}, outbound sockets {out_events[0]}, "
          f"{events / wall:.0f} events/s")
    print(f"simulator CPU {cpu:.1f}s over {wall:.1f}s ({100 * cpu / wall:.0f}% of one core) => "
          f"{events / max(cpu, 1e-9):.0f} events per simulator CPU-second")
    return 0 if destroyed[0] == args.calls else 1

if __name__ == "__main__":
    sys.exit(main())
