"""Campaign kinds (ivr.campaign.kinds): each kind's config narrowing, several campaigns a day (migration 8), and
the texts of the kinds (prompts/<lang>/<kind>.yaml) checked like messages.yaml."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from ivr.campaign import kinds
from ivr.campaign.queue import start_campaign, start_kind_campaign
from ivr.campaign.windows import CallWindows
from ivr.clock import ManualClock
from ivr.ledger.models import Campaign
from ivr.speech import templates
from ivr.speech.dates import say_time

DAY = date(2026, 11, 23)  # a Monday


def test_each_kind_gets_its_own_windows_and_caps(cfg):
    debt = kinds.config_for(cfg, "debt")
    assert debt.windows == cfg.windows and debt.retry == cfg.retry and debt.campaign_kind == "debt"
    inst = kinds.config_for(cfg, "installment")
    assert inst.retry.max_attempts_per_day == cfg.installment.max_attempts_per_day
    assert inst.retry.max_attempts_per_campaign == cfg.installment.max_attempts_per_campaign
    assert inst.windows == cfg.windows  # [] = the windows section
    planned = kinds.config_for(cfg, "outage")
    emergency = kinds.config_for(cfg, "outage", emergency=True)
    assert planned.windows == cfg.windows
    assert emergency.windows.weekday == cfg.outage.emergency_windows == emergency.windows.holiday
    assert emergency.retry.max_attempts_per_campaign == cfg.outage.max_attempts_per_campaign
    # the emergency windows open at 08:00 on a Monday; the debt windows only at 18:00
    monday_noon = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # 12:00 in Kyiv
    assert CallWindows(emergency).is_open("Europe/Kyiv", monday_noon)
    assert not CallWindows(debt).is_open("Europe/Kyiv", monday_noon)
    with pytest.raises(Exception, match="unknown campaign kind"):
        kinds.config_for(cfg, "court")


def test_priority_order_is_emergency_planned_installment_debt():
    order = sorted(["debt", "installment", "planned", "emergency"],
                   key=lambda k: kinds.priority_of("outage", k == "emergency") if k in ("planned", "emergency")
                   else kinds.priority_of(k))
    assert order == ["emergency", "planned", "installment", "debt"]


def test_several_campaigns_share_one_day(cfg, db):
    clock = ManualClock(datetime(2026, 11, 23, 15, 0, tzinfo=UTC))
    debt = start_campaign(cfg, DAY, clock)
    other = start_kind_campaign(cfg, DAY, clock, "outage", "O1-v1-n3", {}, priority=1)
    again = start_kind_campaign(cfg, DAY, clock, "outage", "O1-v1-n3", {}, priority=1)
    assert other.id == again.id != debt.id
    assert Campaign.select().where(Campaign.day == DAY).count() == 2
    assert (debt.kind, debt.ref, debt.priority) == ("debt", "", kinds.PRIORITY["debt"])


def test_shipped_kind_texts_load_for_every_language():
    from ivr.speech.speech import REPO_PROMPTS

    loaded = templates.load_kinds(REPO_PROMPTS, list(templates.LANGS))
    for lang in templates.LANGS:
        assert set(loaded[lang]) == {f"{k}.{key}" for k, keys in templates.KIND_KEYS.items() for key in keys}


def test_a_kind_text_with_a_bad_placeholder_names_file_line_and_key(tmp_path):
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "outage.yaml").write_text(
        "planned: 'At {address} from {from_date} {from_time} to {to_time}, you owe {amount}'\n"
        "emergency: 'At {address} until {to_date} {to_time}'\n"
        "moved: 'Moved'\n"
        "cancelled: 'At {address} on {from_date} cancelled'\n"
        "menu: 'Press 2'\n", encoding="utf-8")
    with pytest.raises(templates.TemplateError) as err:
        templates.load_kinds(tmp_path, ["en"])
    text = str(err.value)
    assert "outage.yaml line 1, key 'planned': unknown placeholder {amount}" in text
    assert "line 3, key 'moved': missing placeholder {address}" in text


def test_hours_in_words():
    assert say_time(time(9, 0), "en") == "nine o'clock"
    assert say_time(time(17, 30), "uk") == "сімнадцять годин тридцять хвилин"
    assert say_time(time(21, 1), "uk") == "двадцять одна година одна хвилина"
    assert say_time(time(14, 2), "ru") == "четырнадцать часов две минуты"


def test_migration_8_lifts_the_one_campaign_a_day_rule_of_an_older_database(db):
    """An older database had `campaign.day` UNIQUE: migration 8 drops it for (day, kind, ref)."""
    import peewee as pw

    from ivr.ledger import db as ledger_db
    from ivr.ledger.models import SchemaVersion

    db.execute_sql('DROP INDEX IF EXISTS "campaign_day"')
    db.execute_sql('CREATE UNIQUE INDEX "campaign_day" ON "campaign" ("day")')
    SchemaVersion.delete().where(SchemaVersion.version == 8).execute()
    Campaign.create(day=DAY)
    with pytest.raises(pw.IntegrityError), db.atomic():
        Campaign.create(day=DAY, kind="outage", ref="O1-v1-now")
    assert ledger_db.upgrade(db) == [8]
    Campaign.create(day=DAY, kind="outage", ref="O1-v1-now", priority=0)
    with pytest.raises(pw.IntegrityError), db.atomic():
        Campaign.create(day=DAY, kind="outage", ref="O1-v1-now")
    assert Campaign.select().where(Campaign.day == DAY).count() == 2


def test_ivr_status_names_the_evenings_other_campaigns(cfg, db):
    import json

    from ivr.admin.status import render, snapshot, to_json

    clock = ManualClock(datetime(2026, 11, 23, 15, 0, tzinfo=UTC))
    start_campaign(cfg, DAY, clock)
    start_kind_campaign(cfg, DAY, clock, "installment", "remind", {}, priority=kinds.PRIORITY["installment"])
    snap = snapshot(cfg, datetime(2026, 11, 23, 15, 0))
    assert snap.campaign_day == DAY
    assert snap.other_campaigns == ["installment reminder: running, waiting 0, dialing 0, done 0"]
    assert json.loads(to_json(snap))["other_campaigns"] == snap.other_campaigns
    assert render(snap) is not None
