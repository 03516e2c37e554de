"""Live controls: Control-table writes, clear errors for bad values, the status snapshot and the metrics endpoint."""

from __future__ import annotations

import json
import re
import socket
import urllib.request
from datetime import UTC, datetime, timedelta

import factories as f
import pytest

from ivr.admin import control
from ivr.admin.metrics import start_metrics_server
from ivr.admin.status import render, snapshot
from ivr.cli import main
from ivr.errors import IvrError
from ivr.ledger.models import Control


@pytest.fixture
def config_file(cfg, tmp_path) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(f"database:\n  url: '{cfg.database.url}'\n", encoding="utf-8")
    return str(path)


def controls() -> dict[str, str]:
    return {r.key: r.value for r in Control.select()}


def test_set_pause_resume_stop_write_the_control_table(db, config_file, capsys):
    assert main(["--config", config_file, "set", "channels", "40"]) == 0
    assert main(["--config", config_file, "set", "channels", "55"]) == 0  # an update, not a second row
    assert main(["--config", config_file, "set", "cps", "2.5"]) == 0
    assert controls() == {"channels": "55", "cps": "2.5"}
    assert "no dialer is running now" in capsys.readouterr().out
    assert main(["--config", config_file, "pause"]) == 0
    assert controls()["command"] == "pause"
    assert main(["--config", config_file, "resume"]) == 0
    assert controls()["command"] == "run"
    assert main(["--config", config_file, "stop"]) == 0
    assert controls()["command"] == "stop"
    assert Control.select().count() == 3


def test_the_dialer_reads_what_the_admin_wrote(cfg, db):
    from ivr.dialer.pacing import read_control
    control.set_channels("12")
    control.set_cps("0.5")
    control.pause()
    seen = read_control(cfg.pacing)
    assert (seen.channels, seen.cps, seen.command, seen.problems) == (12, 0.5, "pause", [])
    control.resume()
    assert read_control(cfg.pacing).command == "run"


def test_a_running_pacer_applies_a_change_at_its_next_poll_within_a_second(cfg, db, config_file, capsys):
    from ivr.clock import ManualClock
    from ivr.dialer.pacing import Pacer
    clock = ManualClock()
    pacer = Pacer(cfg.pacing, clock)
    assert pacer.poll() and pacer.channels == cfg.pacing.channels
    f.node("node-a", heartbeat_at=datetime.now(UTC))  # a dialer alive now
    assert main(["--config", config_file, "set", "channels", "7"]) == 0
    assert main(["--config", config_file, "pause"]) == 0
    assert "1 running dialer(s) apply it within a second" in capsys.readouterr().out
    assert not pacer.poll()  # polled less than a second ago
    clock.advance(1.0)
    assert pacer.poll()
    assert (pacer.channels, pacer.command) == (7, "pause")
    assert pacer.allowance(in_flight=5) <= 2


@pytest.mark.parametrize("argv, wanted", [
    (["set", "channels", "abc"], "channels: 'abc' is not a whole number; allowed: a whole number from 1 to 10000"),
    (["set", "channels", "0"], "channels: 0 is out of range; allowed: 1 to 10000"),
    (["set", "channels", "10001"], "channels: 10001 is out of range; allowed: 1 to 10000"),
    (["set", "channels", "2.5"], "channels: '2.5' is not a whole number"),
    (["set", "cps", "0"], "cps: 0 is out of range; allowed: 0.1 to 1000 calls per second"),
    (["set", "cps", "-3"], "cps: -3 is out of range; allowed: 0.1 to 1000"),
    (["set", "cps", "1000.5"], "cps: 1000.5 is out of range"),
    (["set", "cps", "nan"], "cps: 'nan' is not a number; allowed: calls per second from 0.1 to 1000"),
    (["set", "cps", "fast"], "cps: 'fast' is not a number"),
])
def test_invalid_values_are_clear_errors_with_exit_code_2(db, config_file, capsys, argv, wanted):
    control.set_channels(7)
    control.set_cps(3)
    assert main(["--config", config_file, *argv]) == 2
    err = capsys.readouterr().err
    assert wanted in err and "Traceback" not in err
    assert controls() == {"channels": "7", "cps": "3"}  # nothing else lost


def test_read_state_reports_garbage_in_the_table(db):
    f.control("channels", "lots")
    f.control("command", "resume")
    state = control.read_state()
    assert state.channels is None and state.command == "run"
    assert state.problems == ("Control table: channels: 'lots' is not a whole number; allowed: a whole number "
                              "from 1 to 10000",)


NOW = datetime(2026, 11, 23, 17, 0, 0, tzinfo=UTC)


def _busy_evening(now: datetime) -> None:
    """A running campaign: 3 calls up, 15 started in the last 10 s, a queue, two dialer nodes."""
    old = f.campaign(now.date() - timedelta(days=1), status="done")
    camp = f.campaign(now.date(), status="running")
    accounts = [f.account(district="North") for _ in range(10)]
    states = ["waiting"] * 4 + ["dialing"] * 3 + ["done"] * 2 + ["given_up"]
    for acc, state in zip(accounts, states, strict=True):
        f.enqueue(camp, acc, state=state)
    # three in flight (states created / originated / answered), inside the rate window
    f.attempt(camp, accounts[0], now - timedelta(seconds=1), "", state="created")
    f.attempt(camp, accounts[1], now - timedelta(seconds=2), "", state="originated")
    f.attempt(camp, accounts[2], now - timedelta(seconds=3), "", state="answered")
    for i in range(12):  # 12 more ended calls within the last 10 s
        f.attempt(camp, accounts[3 + i % 6], now - timedelta(seconds=4 + i * 0.4), ["heard", "busy", "no_answer",
                                                                                  "trunk_error"][i % 4])
    for i in range(5):  # older calls: outside the rate window, still in the outcomes
        f.attempt(camp, accounts[i], now - timedelta(minutes=5 + i), "pay_now")
    f.attempt(old, accounts[0], now - timedelta(days=1), "heard")  # yesterday's campaign: not counted
    f.control("channels", "20")
    f.node("node-a", heartbeat_at=now - timedelta(seconds=2), rate=2.5, in_flight=3,
           stats=json.dumps({"reconnects": 2, "errors": ["originate timeout"]}))
    f.node("node-b", heartbeat_at=now - timedelta(minutes=10), esl_state="disconnected",
           stats=json.dumps({"reconnects": 1, "originate_errors": 4}))


def test_status_snapshot_numbers(cfg, db):
    _busy_evening(NOW)
    snap = snapshot(cfg, NOW)
    assert (snap.campaign_day, snap.campaign_status) == (NOW.date(), "running")
    assert (snap.channels_in_use, snap.channels_cap, snap.cps_setting) == (3, 20, cfg.pacing.cps)
    assert snap.calls_per_second == pytest.approx(1.5)  # 15 calls in the last 10 s
    assert snap.rate_limit == pytest.approx(2.5)  # node-b is gone
    assert snap.queue == {"waiting": 4, "dialing": 3, "done": 2, "given_up": 1}
    assert snap.outcomes == {"in_progress": 3, "heard": 3, "busy": 3, "no_answer": 3, "trunk_error": 3,
                             "pay_now": 5}
    assert snap.attempts == 20
    assert snap.esl_state == "connected"
    assert snap.esl_reconnects == 3
    # 3 trunk errors vs the dialers' own counters (node-a 1 message, node-b 4 originate errors): the larger
    assert snap.error_count == 5
    assert any("originate timeout" in e for e in snap.errors)
    assert [(n.name, n.alive) for n in snap.nodes] == [("node-a", True), ("node-b", False)]
    # rendering for people does not fail and carries the numbers
    from rich.console import Console
    console = Console(record=True, width=120)
    console.print(render(snap))
    text = console.export_text()
    assert "3 / 20" in text and "1.5 now" in text and "trunk_error" in text


def test_status_without_any_dialer_says_so(cfg, db):
    f.campaign(NOW.date(), status="waiting")
    snap = snapshot(cfg, NOW)
    assert snap.esl_state == "no dialer has run"
    assert (snap.channels_in_use, snap.calls_per_second, snap.error_count) == (0, 0.0, 0)
    assert snap.channels_cap == cfg.pacing.channels


def test_status_json_via_cli(db, config_file, capsys):
    now = datetime.now(UTC)
    _busy_evening(now)
    assert main(["--config", config_file, "status", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["channels_in_use"] == 3 and data["channels_cap"] == 20
    assert data["queue"]["waiting"] == 4
    assert data["outcomes"]["pay_now"] == 5
    assert data["nodes"][0]["name"] == "node-a"


def _scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        body = resp.read().decode()
    values = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def test_metrics_endpoint_serves_the_snapshot(cfg, db):
    now = datetime.now(UTC)
    _busy_evening(now)
    server = start_metrics_server(cfg, port=0, now=lambda: now)  # "the last 10 s" stay the evening's
    try:
        assert server.port > 0
        m = _scrape(server.port)
        assert m["ivr_up"] == 1
        assert m["ivr_channels_in_use"] == 3 and m["ivr_channels_cap"] == 20
        assert m["ivr_calls_per_second"] == pytest.approx(1.5)
        assert m['ivr_queue_length{state="waiting"}'] == 4
        assert m['ivr_queue_length{state="given_up"}'] == 1
        assert m['ivr_attempts_total{outcome="pay_now"}'] == 5
        assert m['ivr_attempts_total{outcome="trunk_error"}'] == 3
        assert m["ivr_esl_reconnects_total"] == 3
        assert m["ivr_esl_connected"] == 1
        control.set_channels(33)  # the next scrape sees the change
        assert _scrape(server.port)["ivr_channels_cap"] == 33
    finally:
        server.stop()


def test_metrics_port_taken_is_a_clear_error(cfg, db):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(IvrError, match=f"127.0.0.1:{port}"):
            start_metrics_server(cfg, port=port)


def test_calls_per_second_follows_a_demo_dialers_scaled_clock(cfg, db):
    camp = f.campaign(NOW.date(), status="running")
    acc = f.account()
    f.enqueue(camp, acc)
    evening = NOW + timedelta(hours=2)  # the dialer's scaled clock runs ahead of real time
    for i in range(8):
        f.attempt(camp, acc, evening - timedelta(seconds=i), "no_answer")
    f.node("demo", heartbeat_at=NOW - timedelta(seconds=1),
           stats=json.dumps({"clock_now": evening.isoformat()}))
    assert snapshot(cfg, NOW).calls_per_second == pytest.approx(0.8)
    # the same calls seen by a real-time dialer are two hours in the future: nothing in the last 10 s
    db.execute_sql("DELETE FROM dialer_node")
    f.node("real", heartbeat_at=NOW - timedelta(seconds=1), stats=json.dumps({"clock_now": NOW.isoformat()}))
    assert snapshot(cfg, NOW).calls_per_second == 0


def test_status_and_metrics_show_a_node_with_a_stale_heartbeat_as_dead(db, cfg, config_file, capsys):
    """Several dialer nodes: alive, dead (heartbeat older than dialing.node_timeout_seconds) and fenced (its calls
    taken over, whatever its heartbeat says): `ivr status`, its JSON and the metrics never show a dead node as
    running, nor count its calls or rate."""
    now = datetime.now(UTC)
    timeout = cfg.dialing.node_timeout_seconds
    f.node("node-live", heartbeat_at=now - timedelta(seconds=1), in_flight=4, rate=2.0)
    f.node("node-stale", heartbeat_at=now - timedelta(seconds=timeout + 5), in_flight=7, rate=3.0)
    fenced = f.node("node-fenced", heartbeat_at=now - timedelta(seconds=1), in_flight=2, rate=1.0)
    fenced.fenced_at, fenced.fenced_by = f.utc(now), "node-live"
    fenced.save()
    assert main(["--config", config_file, "status"]) == 0
    rows = {m[1]: line for line in capsys.readouterr().out.splitlines()
            if (m := re.search(r"│\s*(node-[a-z]+)\s*│", line))}
    assert "alive" in rows["node-live"] and "dead" not in rows["node-live"]
    assert "dead" in rows["node-stale"] and "alive" not in rows["node-stale"]
    assert "fenced" in rows["node-fenced"] and "alive" not in rows["node-fenced"]
    assert main(["--config", config_file, "status", "--json"]) == 0
    nodes = {n["name"]: n for n in json.loads(capsys.readouterr().out)["nodes"]}
    assert {k: (v["alive"], v["state"]) for k, v in nodes.items()} == {
        "node-live": (True, "alive"), "node-stale": (False, "dead"), "node-fenced": (False, "fenced")}
    assert nodes["node-stale"]["in_flight"] == 0 and nodes["node-stale"]["rate"] == 0  # nothing counted as running
    assert nodes["node-fenced"]["fenced_by"] == "node-live"
    assert snapshot(cfg, now).rate_limit == pytest.approx(2.0)
    server = start_metrics_server(cfg, port=0, now=lambda: now)
    try:
        m = _scrape(server.port)
    finally:
        server.stop()
    assert m['ivr_dialer_up{node="node-live"}'] == 1
    assert m['ivr_dialer_up{node="node-stale"}'] == 0
    assert m['ivr_dialer_up{node="node-fenced"}'] == 0
    assert m['ivr_dialer_heartbeat_age_seconds{node="node-stale"}'] >= timeout + 5
