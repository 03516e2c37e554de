"""Outage notices (ivr.campaign.outages): the audience by supply point without life-support accounts, the notice
schedule (outage.notice_days, DST-exact local times), corrections to whoever heard a moved or cancelled outage,
the emergency notice, and the two imports' bad rows."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import factories
import pytest

from ivr.campaign import kinds, outages
from ivr.campaign.evening import listing, start_evening
from ivr.campaign.windows import CallWindows
from ivr.clock import ManualClock
from ivr.errors import IvrError
from ivr.ledger.models import AuditEvent, Campaign, Outage, QueueEntry, SupplyLink

KYIV = ZoneInfo("Europe/Kyiv")
ACTOR = "cli:test"


def local(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    """Naive UTC of a Kyiv wall time (the ledger's form)."""
    return datetime(y, mo, d, h, mi, tzinfo=KYIV).astimezone(UTC).replace(tzinfo=None)


def fed(point: str, **kw):
    acc = factories.account(**kw)
    SupplyLink.create(account=acc, point=point)
    return acc


def heard(camp: Campaign, acc) -> None:
    """The account's entry in `camp` ended heard (what the dialer's record_result leaves)."""
    (QueueEntry.update(state="done", outcome="heard").where(QueueEntry.campaign == camp, QueueEntry.account == acc)
     .execute())


def planned(points=("P1",), start=(2026, 12, 12, 9, 0), end=(2026, 12, 12, 17, 0), **kw) -> Outage:
    return outages.add(list(points), local(*start), local(*end), "planned", actor=ACTOR, **kw)


def test_audience_is_the_points_accounts_without_life_support(cfg, db):
    a = fed("P1")
    on_life_support = fed("P1")
    on_life_support.life_support = True
    on_life_support.save()
    fed("P2")  # another feeder
    both = fed("P1")
    SupplyLink.create(account=both, point="P3")
    o = planned(points=("P1", "P3"), reason="line repair")
    aud = outages.audiences(cfg, o, date(2026, 12, 2))
    assert aud == {f"O{o.id}-v1-n10": {a.id: "planned outage, notice 10 days before",
                                       both.id: "planned outage, notice 10 days before"}}
    assert AuditEvent.get(AuditEvent.action == "outage.add").target == o.code


def test_planned_notices_follow_notice_days_and_stop_once_heard(cfg, db):
    a, b = fed("P1"), fed("P1")
    o = planned()  # starts Saturday 2026-12-12 09:00
    assert outages.audiences(cfg, o, date(2026, 12, 1)) == {}  # 11 days before: too early
    ref10, ref3 = f"O{o.id}-v1-n10", f"O{o.id}-v1-n3"
    clock = ManualClock(datetime(2026, 12, 2, 10, 0, tzinfo=UTC))
    [camp] = outages.due_campaigns(cfg, date(2026, 12, 2), clock)
    assert (camp.ref, camp.kind, camp.priority, camp.eligible_count) == (ref10, "outage", 1, 2)
    heard(camp, a)
    # b did not hear the 10-day notice: called again on the next evenings, a not
    assert set(outages.audiences(cfg, o, date(2026, 12, 5))[ref10]) == {b.id}
    # 3 days before: the second notice to both, again until heard, until the day it starts
    assert set(outages.audiences(cfg, o, date(2026, 12, 9))[ref3]) == {a.id, b.id}
    assert set(outages.audiences(cfg, o, date(2026, 12, 12))[ref3]) == {a.id, b.id}
    assert outages.audiences(cfg, o, date(2026, 12, 13)) == {}


def test_an_outage_entered_late_gets_its_notice_at_once(cfg, db):
    fed("P1")
    o = planned()
    assert list(outages.audiences(cfg, o, date(2026, 12, 7))) == [f"O{o.id}-v1-n10"]  # 5 days before


def test_moved_outage_corrects_whoever_heard_and_cancel_corrects_again(cfg, db):
    a, b = fed("P1"), fed("P1")
    o = planned()
    clock = ManualClock(datetime(2026, 12, 2, 10, 0, tzinfo=UTC))
    [camp] = outages.due_campaigns(cfg, date(2026, 12, 2), clock)
    heard(camp, a)
    outages.move(o, local(2026, 12, 14, 10, 0), local(2026, 12, 14, 15, 30), actor=ACTOR)
    fix, n10 = f"O{o.id}-v2-fix", f"O{o.id}-v2-n10"
    # the day after the move: the correction to whoever heard the old times; the 10-day notice of the new
    # times is not due before 2026-12-04
    assert outages.audiences(cfg, o, date(2026, 12, 3)) == {fix: {a.id: "heard an earlier notice; the outage is "
                                                                        "moved"}}
    clock.advance(30 * 3600)  # 2026-12-03 16:00 UTC
    [corr] = outages.due_campaigns(cfg, date(2026, 12, 3), clock)
    assert corr.ref == fix and outages.text_of(corr) == "moved"
    v = outages.message_values(cfg, corr, a)
    assert (v["from_date"], v["from_time"], v["to_time"], v["to_date"]) == (date(2026, 12, 14), time(10, 0),
                                                                           time(15, 30), None)
    heard(corr, a)
    assert set(outages.audiences(cfg, o, date(2026, 12, 4))[n10]) == {a.id, b.id}
    # the first evening's campaign (old version) refuses b at its pre-dial re-check
    assert outages.recheck(cfg, camp, [b.id], date(2026, 12, 3))[b.id].eligible is False
    outages.cancel(o, actor=ACTOR)
    aud = outages.audiences(cfg, o, date(2026, 12, 4))
    assert aud == {f"O{o.id}-v3-fix": {a.id: "heard an earlier notice; the outage is cancelled"}}
    clock.advance(24 * 3600)
    assert [outages.text_of(c) for c in outages.due_campaigns(cfg, date(2026, 12, 4), clock)] == ["cancelled"]


def test_cancelled_before_anyone_heard_closes_the_waiting_entries(cfg, db):
    fed("P1")
    o = planned()
    clock = ManualClock(datetime(2026, 12, 2, 10, 0, tzinfo=UTC))
    [camp] = outages.due_campaigns(cfg, date(2026, 12, 2), clock)
    outages.cancel(o, actor=ACTOR)
    assert outages.due_campaigns(cfg, date(2026, 12, 2), clock) == []
    assert QueueEntry.get(QueueEntry.campaign == camp).state == "given_up"
    assert Campaign.get_by_id(camp.id).status == "done"


def test_emergency_notice_at_once_until_the_outage_ends(cfg, db):
    a = fed("P9")
    now = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
    o = outages.add(["P9"], local(2026, 12, 5, 10, 30), local(2026, 12, 5, 20, 0), "emergency", actor=ACTOR)
    clock = ManualClock(now)
    camps = start_evening(cfg, date(2026, 12, 5), clock, only=("outage",))
    assert [(c.ref, c.priority) for c in camps] == [(f"O{o.id}-v1-now", kinds.PRIORITY["emergency_outage"])]
    assert outages.text_of(camps[0]) == "emergency"
    v = outages.message_values(cfg, camps[0], a)
    assert (v["to_date"], v["to_time"]) == (date(2026, 12, 5), time(20, 0))
    assert outages.audiences(cfg, o, date(2026, 12, 5), now=local(2026, 12, 5, 20, 1)) == {}
    assert [ln.info.label.split()[0] for ln in listing(date(2026, 12, 5))] == ["emergency"]


def test_local_times_are_dst_exact(cfg, db):
    """Kyiv springs forward on 2026-03-29 at 03:00 -> 04:00: a 09:00 start is said as 09:00, a start typed inside
    the gap is the first instant after it, and the emergency windows open at 08:00 local on both sides."""
    from ivr.ledger import listimport

    a = fed("P1")
    o = outages.add(["P1"], listimport.local_moment(cfg, "2026-03-29 03:30", "from"),
                    listimport.local_moment(cfg, "2026-03-29 09:00", "to"), "emergency", actor=ACTOR)
    assert o.starts_at == datetime(2026, 3, 29, 1, 0)  # 04:00 local (UTC+3) = 01:00 UTC
    assert o.ends_at == datetime(2026, 3, 29, 6, 0)
    camp = Campaign.create(day=date(2026, 3, 29), kind="outage", ref=f"O{o.id}-v1-now", priority=0,
                           outage_id=o.id)
    v = outages.message_values(cfg, camp, a)
    assert (v["from_time"], v["to_time"]) == (time(4, 0), time(9, 0))
    w = CallWindows(kinds.config_for(cfg, "outage", emergency=True))
    assert w.next_open("Europe/Kyiv", datetime(2026, 3, 28, 0, 0, tzinfo=UTC)) == datetime(2026, 3, 28, 6, 0,
                                                                                           tzinfo=UTC)
    assert w.next_open("Europe/Kyiv", datetime(2026, 3, 29, 0, 0, tzinfo=UTC)) == datetime(2026, 3, 29, 5, 0,
                                                                                           tzinfo=UTC)


def test_outage_add_refuses_bad_input(cfg, db):
    with pytest.raises(IvrError, match="end after it starts"):
        outages.add(["P1"], local(2026, 12, 12, 9), local(2026, 12, 12, 8), "planned", actor=ACTOR)
    with pytest.raises(IvrError, match="supply point"):
        outages.parse_points("P1,P 2;bad'point")
    assert outages.parse_points("P1, P2;P1") == ["P1", "P2"]


def test_supply_points_import_rejects_bad_rows_by_line_and_replaces_links(cfg, db, tmp_path):
    a = factories.account("1001")
    b = factories.account("1002")
    SupplyLink.create(account=b, point="OLD")
    f = tmp_path / "points.csv"
    f.write_text("Account;Point\n1001;P1\n9999;P1\n1002;P2\n1002;bad point\n1001\n", encoding="cp1251")
    rep = outages.import_supply_points(cfg, f, ACTOR)
    assert [(r.line, r.reason.split(" (")[0]) for r in rep.rejected] == [
        (3, "account '9999' is not in the ledger"), (5, "point 'bad point': use letters, digits and _ . : / -"),
        (6, "1 fields where the header has 2")]
    assert rep.rejects_file is not None and "line 3" in rep.rejects_file.read_text(encoding="cp1251")
    assert {(s.account_id, s.point) for s in SupplyLink.select()} == {(a.id, "P1"), (b.id, "P2")}
    assert (rep.loaded, rep.updated) == (2, 1)
    assert AuditEvent.get(AuditEvent.action == "import.supply_points").detail.count('"rejected": 3')


def test_outages_import_new_moved_cancelled_and_bad_rows(cfg, db, tmp_path):
    f = tmp_path / "outages.csv"
    f.write_text("outage,points,from,to,kind,reason\n"
                 "D-1,P1 P2,2026-12-12 09:00,2026-12-12 17:00,planned,cable works\n"
                 "D-2,P3,12.12.2026 10:00,12.12.2026 09:00,planned,\n"
                 "D-3,P3,2026-12-12 25:00,2026-12-12 26:00,planned,\n"
                 "D-4,P3,2026-12-12 10:00,2026-12-12 11:00,sometimes,\n", encoding="utf-8")
    rep = outages.import_outages(cfg, f, ACTOR)
    assert rep.loaded == 1 and [r.line for r in rep.rejected] == [3, 4, 5]
    assert "end after it starts" in rep.rejected[0].reason and "not a date and time" in rep.rejected[1].reason
    assert "planned or emergency" in rep.rejected[2].reason
    o = outages.get("D-1")
    assert (outages.points_of(o), o.starts_at, o.version) == (["P1", "P2"], local(2026, 12, 12, 9), 1)
    assert outages.import_outages(cfg, f, ACTOR).unchanged == 1  # the same file again changes nothing
    f.write_text("outage;points;from;to;kind;status\nD-1;P1 P2;2026-12-13 09:00;2026-12-13 17:00;planned;\n",
                 encoding="utf-8")
    assert outages.import_outages(cfg, f, ACTOR).updated == 1
    assert outages.get("D-1").version == 2
    f.write_text("outage;points;from;to;kind;status\nD-1;P1 P2;2026-12-13 09:00;2026-12-13 17:00;planned;"
                 "cancelled\n", encoding="utf-8")
    outages.import_outages(cfg, f, ACTOR)
    assert (outages.get("D-1").status, outages.get("D-1").version) == ("cancelled", 3)


def test_outage_kind_config_is_validated(cfg):
    from ivr.config import ConfigError, parse_config

    with pytest.raises(ConfigError) as err:
        parse_config({"outage": {"notice_days": [10, -1], "menu": ["2", "7"], "emergency_windows": ["22:00-08:00"]}},
                     env={})
    text = str(err.value)
    assert "outage.notice_days[1]" in text and "outage.menu[1]" in text and "outage.emergency_windows[0]" in text
    assert dataclasses.replace(cfg.outage, notice_days=[5]).notice_days == [5]
    assert timedelta(days=cfg.outage.notice_days[0]) == timedelta(days=10)


def test_an_answered_outage_notice_does_not_count_as_reaching_the_debtor_by_voice(db):
    """channels: a debt reminder's history (voice tried, reached) leaves out the outage notices."""
    from ivr.channels.rules import histories

    acc = factories.account()
    notice = Campaign.create(day=date(2026, 11, 23), kind="outage", ref="O1-v1-now", priority=0)
    at = datetime(2026, 11, 23, 16, 0)
    factories.attempt(notice, acc, at, "heard")
    h = histories([acc.id], at + timedelta(hours=1))[acc.id]
    assert h.calls == [] and not h.answered
    factories.attempt(factories.campaign(date(2026, 11, 23)), acc, at + timedelta(minutes=5), "heard")
    h = histories([acc.id], at + timedelta(hours=1))[acc.id]
    assert len(h.calls) == 1 and h.answered


def test_a_debtors_story_says_a_call_was_an_outage_notice(cfg, db):
    from ivr.ledger.story import account_story

    acc = factories.account()
    notice = Campaign.create(day=date(2026, 11, 23), kind="outage", ref="O1-v1-now", priority=0)
    factories.attempt(notice, acc, datetime(2026, 11, 23, 16, 0), "heard")
    factories.attempt(factories.campaign(date(2026, 11, 23)), acc, datetime(2026, 11, 23, 16, 30), "heard")
    story = account_story(cfg, acc, day=date(2026, 11, 24))
    assert [c.about for c in story.calls] == ["outage notice", ""]


def test_life_support_accounts_of_an_outage_go_to_the_operators_first_until_informed_of_it(cfg, db):
    """The worklist's top: each life-support account fed from an outage being announced (an emergency now, a
    planned one from its first notice day), until an operator records that they informed it of THIS outage."""
    from ivr.campaign import lifesupport

    kept = fed("P1", district="North")
    kept.life_support = True
    kept.save()
    fed("P1")  # not on life support: the robot's
    o = planned(reason="line repair")  # 12.12, first notice 10 days before: 2.12
    assert [i for i in lifesupport.pending(cfg, date(2026, 12, 1)) if i.kind == "outage"] == []  # too early
    items = [i for i in lifesupport.pending(cfg, date(2026, 12, 2)) if i.kind == "outage"]
    assert [(i.account, i.district) for i in items] == [(kept.number, "North")]
    assert o.code in items[0].outage and "2026-12-12 09:00" in items[0].outage
    assert items[0].number == kept.phones[0].e164  # the number the robot would dial first, for the operator
    em = outages.add(["P1"], local(2026, 12, 2, 18), local(2026, 12, 2, 23), "emergency", actor=ACTOR)
    assert [i.outage.split()[0] for i in lifesupport.pending(cfg, date(2026, 12, 2))
            if i.kind == "outage"] == [em.code, o.code]  # the emergency first
    lifesupport.record_informed(kept, "outage", "anna")  # now: after the outages were entered
    assert [i for i in lifesupport.pending(cfg, date(2026, 12, 2)) if i.kind == "outage"] == []
    outages.move(o, local(2026, 12, 13, 9), local(2026, 12, 13, 17), actor=ACTOR)  # a notice of the old times
    assert [i.outage.split()[0] for i in lifesupport.pending(cfg, date(2026, 12, 3))
            if i.kind == "outage"] == [o.code]
    assert [i for i in lifesupport.pending(cfg, date(2026, 12, 14)) if i.kind == "outage"] == []  # over
