"""The Tonight page's state in words (a dead dialer never shows as running) and the admin's Controls page."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import factories as f
import pytest
from web_support import login, post

from ivr.admin import control
from ivr.admin.status import headline, snapshot
from ivr.cli import main
from ivr.ledger.models import AuditEvent, Control
from ivr.web.i18n import gettext

pytestmark = pytest.mark.usefixtures("fast_hashes")


def now() -> datetime:
    """The real time now (heartbeat ages are measured against it; never a value fixed at import)."""
    return datetime.now(UTC)


def dialer_clock(at: datetime) -> str:
    """A node's stats saying what time its (possibly scaled) clock shows."""
    return json.dumps({"clock_now": at.isoformat()})


# Monday 2026-11-23: 19:00 in Kyiv is inside the weekday window 18:00-21:00, 17:00 is before it
IN_WINDOW = datetime(2026, 11, 23, 17, 0, tzinfo=UTC)
BEFORE_WINDOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


def test_no_campaign(cfg, db):
    assert headline(cfg, snapshot(cfg)).code == "no_campaign"


def test_a_dead_dialer_is_never_shown_as_calling(cfg, db):
    f.campaign(date(2026, 11, 23), status="running")
    f.node("node-1", heartbeat_at=now() - timedelta(minutes=3, seconds=10), stats=dialer_clock(IN_WINDOW))
    h = headline(cfg, snapshot(cfg))
    assert (h.code, h.minutes) == ("no_dialer", 3)


def test_no_dialer_ever_ran(cfg, db):
    f.campaign(date(2026, 11, 23), status="running")
    h = headline(cfg, snapshot(cfg))
    assert (h.code, h.minutes) == ("no_dialer", None)


def test_calling_when_a_live_dialer_is_inside_the_window(cfg, db):
    camp = f.campaign(date(2026, 11, 23), status="running")
    f.node("node-1", heartbeat_at=now(), stats=dialer_clock(IN_WINDOW))
    f.attempt(camp, f.account(), now(), "", state="answered")
    assert headline(cfg, snapshot(cfg)).code == "calling"


def test_waiting_for_the_window_says_when_it_opens(cfg, db):
    f.campaign(date(2026, 11, 23), status="running")
    f.node("node-1", heartbeat_at=now(), stats=dialer_clock(BEFORE_WINDOW))
    h = headline(cfg, snapshot(cfg))
    assert h.code == "waiting_window"
    assert h.at.strftime("%H:%M") == "18:00" and h.at.date() == date(2026, 11, 23)


def test_paused_by_a_person_names_them_and_the_time(cfg, db):
    f.campaign(date(2026, 11, 23), status="paused")
    f.node("node-1", heartbeat_at=now(), stats=dialer_clock(IN_WINDOW))
    control.pause("anna")
    h = headline(cfg, snapshot(cfg))
    assert (h.code, h.by) == ("paused", "anna")
    assert abs((h.at - datetime.now(UTC)).total_seconds()) < 120


def test_paused_by_a_trunk_fault_gives_the_reason(cfg, db):
    camp = f.campaign(date(2026, 11, 23), status="paused")
    camp.status_reason = "GATEWAY_DOWN: gateway 'trunk' is down"
    camp.save()
    f.node("node-1", heartbeat_at=now(), stats=dialer_clock(IN_WINDOW))
    h = headline(cfg, snapshot(cfg))
    assert (h.code, h.by, h.reason) == ("paused", "", "GATEWAY_DOWN: gateway 'trunk' is down")


def test_tonight_page_shows_state_channels_queue_and_nodes(client, cfg):
    camp = f.campaign(date(2026, 11, 23), status="running")
    f.node("node-1", heartbeat_at=now(), stats=dialer_clock(IN_WINDOW))
    acc = f.account()
    f.enqueue(camp, acc, state="waiting")
    f.attempt(camp, acc, now(), "", state="answered")
    login(client, "olga")
    html = client.get("/tonight").get_data(as_text=True)
    assert gettext("Calling", "uk") in html
    assert f'id="channels">1 / {cfg.pacing.channels}<' in html
    assert 'id="queue-waiting">1<' in html
    assert "node-1" in html and 'hx-trigger="every 3s"' in html
    panel = client.get("/tonight/panel").get_data(as_text=True)
    assert panel.lstrip().startswith('<section id="tonight"') and "<html" not in panel


def test_tonight_page_says_no_dialer_alive(client):
    f.campaign(date(2026, 11, 23), status="running")
    f.node("node-1", heartbeat_at=now() - timedelta(minutes=2, seconds=5))
    login(client, "olga")
    html = client.get("/lang/en", follow_redirects=True).get_data(as_text=True)
    assert "No dialer alive for 2 min" in html
    assert "Calling" not in html


def test_controls_write_through_the_same_functions_and_are_audited(client, cfg):
    login(client, "anna")
    assert post(client, "/controls", {"action": "channels", "value": "12"}).status_code == 302
    assert post(client, "/controls", {"action": "cps", "value": "2.5"}).status_code == 302
    assert post(client, "/controls", {"action": "pause"}).status_code == 302
    assert {r.key: r.value for r in Control.select()} == {"channels": "12", "cps": "2.5", "command": "pause"}
    html = client.get("/controls").get_data(as_text=True)
    assert 'id="command">pause<' in html
    assert post(client, "/controls", {"action": "defaults"}).status_code == 302
    assert {r.key for r in Control.select()} == {"command"}
    events = [(e.actor, e.action) for e in AuditEvent.select().order_by(AuditEvent.id)]
    assert events[-4:] == [("anna", "control.channels"), ("anna", "control.cps"), ("anna", "control.pause"),
                           ("anna", "control.reset")]
    assert json.loads(AuditEvent.select().where(AuditEvent.action == "control.channels").get().detail) == {
        "from": None, "to": 12}


def test_a_bad_control_value_is_explained_and_nothing_written(client):
    login(client, "anna")
    post(client, "/controls", {"action": "channels", "value": "lots"})
    html = client.get("/controls").get_data(as_text=True)
    assert "channels: &#39;lots&#39; is not a whole number; allowed: a whole number from 1 to 10000" in html
    assert Control.select().count() == 0
    assert AuditEvent.select().where(AuditEvent.action.startswith("control.")).count() == 0


def test_cli_controls_are_audited_with_the_unix_user(cfg, db, tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(f"database:\n  url: '{cfg.database.url}'\n", encoding="utf-8")
    assert main(["--config", str(path), "set", "channels", "9"]) == 0
    assert main(["--config", str(path), "pause"]) == 0
    assert main(["--config", str(path), "set", "defaults"]) == 0
    events = [(e.actor.split(":")[0], e.action) for e in AuditEvent.select().order_by(AuditEvent.id)]
    assert events == [("cli", "control.channels"), ("cli", "control.pause"), ("cli", "control.reset")]
    assert Control.get_or_none(Control.key == "channels") is None


def test_the_tonight_panel_costs_the_database_what_ivr_status_does(client, cfg, monkeypatch):
    """Its queries: one `snapshot` (as `ivr status`), the user's session check and the audit read for who paused."""
    from ivr.ledger import models
    camp = f.campaign(date(2026, 11, 23), status="paused")
    f.node("node-1", heartbeat_at=now(), stats=dialer_clock(IN_WINDOW))
    f.enqueue(camp, f.account(), state="waiting")
    control.pause("anna")
    login(client, "olga")
    seen: list[str] = []
    real = models.database.obj.execute_sql

    def counting(sql, params=None, *args, **kwargs):
        seen.append(sql)
        return real(sql, params, *args, **kwargs)

    monkeypatch.setattr(models.database.obj, "execute_sql", counting)
    snapshot(cfg)
    status_queries = len(seen)
    seen.clear()
    assert client.get("/tonight/panel").status_code == 200
    assert status_queries >= 5 and len(seen) <= status_queries + 2, seen


def test_tonight_panel_lists_the_evenings_other_campaigns(client, cfg):
    camp = f.campaign(date(2026, 11, 23), status="running")
    camp.kind = "debt"
    camp.save()
    from ivr.ledger.models import Campaign

    Campaign.create(day=date(2026, 11, 23), kind="installment", ref="remind", priority=2, status="running")
    login(client, "olga")
    panel = client.get("/tonight/panel").get_data(as_text=True)
    assert gettext("Also tonight, served first", "uk") in panel
    assert "installment reminder: running, waiting 0" in panel
