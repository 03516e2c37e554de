"""The systemd units in deploy/: each parses, runs an `ivr` command line the CLI accepts, logs to the journal,
and the timer starts the dialer before the default calling windows open."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from ivr.cli import build_parser

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
SERVICES = ("ivr-dialer.service", "ivr-web.service", "ivr-metrics.service")


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """Sections -> key -> values (systemd allows a key several times, e.g. OnCalendar)."""
    out: dict[str, dict[str, list[str]]] = {}
    section = None
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = out.setdefault(line[1:-1], {})
            continue
        assert section is not None and "=" in line, f"{path.name}:{n}: not 'Key=value' inside a section: {raw!r}"
        key, value = line.split("=", 1)
        section.setdefault(key.strip(), []).append(value.strip())
    return out


@pytest.mark.parametrize("name", SERVICES)
def test_service_runs_an_ivr_command_the_cli_accepts_and_logs_to_the_journal(name):
    unit = parse_unit(DEPLOY / name)
    svc = unit["Service"]
    argv = shlex.split(svc["ExecStart"][0].replace("%H", "dialer-host"))
    assert argv[0].endswith("/.venv/bin/ivr")
    args = build_parser().parse_args(argv[1:])  # exits (fails the test) on an option the CLI does not know
    assert callable(args.func)
    assert svc["StandardOutput"] == ["journal"] and svc["StandardError"] == ["journal"]
    assert svc["User"] == ["ivr"] and "IVR_CONFIG=/etc/ivr/config.yaml" in svc["Environment"]
    assert unit["Install"]["WantedBy"]


def test_dialer_unit_names_its_node_restarts_after_a_crash_and_stops_gently():
    svc = parse_unit(DEPLOY / "ivr-dialer.service")["Service"]
    args = build_parser().parse_args(shlex.split(svc["ExecStart"][0].replace("%H", "dialer-host"))[1:])
    assert args.node == "dialer-host"  # one fixed node name per machine
    assert svc["Restart"] == ["on-failure"]  # an evening that ended normally is not started again
    assert svc["KillSignal"] == ["SIGTERM"] and int(svc["TimeoutStopSec"][0]) > 300  # calls finish first


def test_timer_starts_the_dialer_before_the_windows_open():
    unit = parse_unit(DEPLOY / "ivr-dialer.timer")
    timer = unit["Timer"]
    assert timer["Unit"] == ["ivr-dialer.service"]
    assert sorted(timer["OnCalendar"]) == ["Mon..Fri *-*-* 17:55:00", "Sat,Sun *-*-* 08:55:00"]
    assert timer["Persistent"] == ["false"]
    assert unit["Install"]["WantedBy"] == ["timers.target"]
