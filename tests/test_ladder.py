"""The escalation ladder: stages moved by the rules in config from heard calls, payments and letters; moves by
hand with history and audit; the court list with its evidence, and nobody on it without a heard call."""

from __future__ import annotations

import csv
import dataclasses
import io
from datetime import date, datetime, timedelta
from decimal import Decimal

import factories as f
import pytest

from ivr.campaign import ladder
from ivr.campaign.ladder import LadderError
from ivr.cli import main
from ivr.ledger.models import AuditEvent, LadderMove, Message

# Kyiv is UTC+2 in November: 16:00 UTC is 18:00 local
FIRST = datetime(2026, 11, 2, 16, 0)
SECOND = datetime(2026, 11, 5, 17, 30)


@pytest.fixture
def rules(cfg):
    """The defaults, spelled out: 1 heard call -> second call; 2 and 7 days -> operator; 14 days -> letter;
    court: above 1000, 2 heard calls, 30 days, a letter."""
    assert (cfg.ladder.second_call_after_heard, cfg.ladder.operator_after_heard, cfg.ladder.operator_after_days,
            cfg.ladder.letter_after_days) == (1, 2, 7, 14)
    assert (cfg.court.threshold, cfg.court.min_heard_calls, cfg.court.days_without_payment,
            cfg.court.require_letter) == (1000.0, 2, 30, True)
    return cfg


def debtor(number: str, debt: str = "1500.00", **kw):
    return f.account(number, debt=debt, as_of=date(2026, 10, 25), **kw)


def letter(acc, at: datetime, status: str = "printed") -> Message:
    return Message.create(account=acc, channel="letter", kind="letter", address=acc.address, status=status,
                          created_at=at)


def stage_on(cfg, acc, day: date) -> ladder.Position:
    got = ladder.positions(cfg, day, [acc.id])
    assert len(got) == 1
    return got[0]


def test_the_rules_move_a_debtor_up_the_ladder_day_by_day(rules, db):
    acc = debtor("L-1")
    f.attempt(None, acc, FIRST, "heard")
    f.attempt(None, acc, SECOND, "pay_now")  # a key press on the menu: heard
    letter(acc, datetime(2026, 11, 20, 9))
    expect = {date(2026, 11, 1): "reminder", date(2026, 11, 2): "second_call", date(2026, 11, 8): "second_call",
              date(2026, 11, 9): "operator_call", date(2026, 11, 16): "letter", date(2026, 12, 1): "letter",
              date(2026, 12, 2): "court"}
    got = {day: stage_on(rules, acc, day).stage for day in expect}
    assert got == expect
    p = stage_on(rules, acc, date(2026, 12, 10))
    assert p.since == date(2026, 12, 2)  # first heard Nov 2 + 30 days
    assert p.reached == {"second_call": date(2026, 11, 2), "operator_call": date(2026, 11, 9),
                         "letter": date(2026, 11, 16), "court": date(2026, 12, 2)}
    assert [c.at.strftime("%Y-%m-%d %H:%M") for c in p.heard] == ["2026-11-02 18:00", "2026-11-05 19:30"]


def test_what_does_not_count(rules, db):
    """Calls not heard, staff test calls, a debt not above the threshold, no letter: no court."""
    unheard = debtor("L-NH")
    for day in (2, 3, 4):
        f.attempt(None, unheard, FIRST.replace(day=day), "early_hangup")
        f.attempt(None, unheard, FIRST.replace(day=day, hour=17), "no_answer")
    f.attempt(None, unheard, FIRST, "heard", kind="test")
    small = debtor("L-SMALL", debt="1000.00")  # not ABOVE the threshold
    no_letter = debtor("L-NOLETTER")
    for acc in (small, no_letter):
        f.attempt(None, acc, FIRST, "heard")
        f.attempt(None, acc, SECOND, "heard")
    letter(small, datetime(2026, 11, 20, 9))
    letter(no_letter, datetime(2026, 11, 20, 9), status="failed")
    day = date(2026, 12, 20)
    assert stage_on(rules, unheard, day).stage == "reminder"
    assert stage_on(rules, small, day).stage == "letter"
    assert stage_on(rules, no_letter, day).stage == "letter"
    assert ladder.court_candidates(rules, day) == []
    no_letter_needed = dataclasses.replace(rules, court=dataclasses.replace(rules.court, require_letter=False))
    assert [p.account for p in ladder.court_candidates(no_letter_needed, day)] == ["L-NOLETTER"]


def test_a_payment_restarts_the_ladder(rules, db):
    acc = debtor("L-PAID")
    f.attempt(None, acc, FIRST, "heard")
    f.attempt(None, acc, SECOND, "heard")
    letter(acc, datetime(2026, 11, 20, 9))
    f.payment(acc, "10.00", date(2026, 11, 25))  # still owes 1490: on the ladder, back at the reminder
    p = stage_on(rules, acc, date(2026, 12, 20))
    assert (p.stage, p.heard, p.last_payment, p.letter_on) == ("reminder", [], date(2026, 11, 25), None)
    assert p.since == date(2026, 11, 26)
    f.attempt(None, acc, datetime(2026, 12, 1, 16), "heard")
    assert stage_on(rules, acc, date(2026, 12, 20)).stage == "second_call"


def test_the_court_guard_needs_a_heard_call_whatever_the_config(rules, db):
    """Even a config that (bypassing validation) asked for no heard call leaves nobody without one on the list."""
    lax = dataclasses.replace(rules, court=dataclasses.replace(rules.court, min_heard_calls=0, require_letter=False),
                              ladder=dataclasses.replace(rules.ladder, second_call_after_heard=1))
    assert "court" not in ladder.rule_dates(lax, [], Decimal("99999"), None)
    acc = debtor("L-GUARD")
    f.attempt(None, acc, FIRST, "no_answer")
    assert ladder.court_candidates(lax, date(2027, 3, 1)) == []
    with pytest.raises(LadderError, match="no heard call on record"):
        ladder.move(rules, "L-GUARD", "court", "anna", "they never answer", date(2027, 3, 1))
    assert LadderMove.select().count() == 0
    from ivr.config import ConfigError, parse_config
    with pytest.raises(ConfigError, match="court.min_heard_calls: 0 is not allowed"):
        parse_config({"court": {"min_heard_calls": 0}}, env={})


def test_a_move_by_hand_holds_is_audited_and_a_payment_ends_it(rules, db):
    acc = debtor("L-HAND")
    f.attempt(None, acc, FIRST, "heard")
    f.attempt(None, acc, SECOND, "heard")
    letter(acc, datetime(2026, 11, 20, 9))
    day = date(2026, 12, 5)
    assert stage_on(rules, acc, day).stage == "court"
    ladder.move(rules, "L-HAND", "operator_call", "max", "promised to pay on the 20th", day)
    p = stage_on(rules, acc, day)
    assert (p.stage, p.by, p.since) == ("operator_call", "max", day)
    assert "promised to pay on the 20th" in p.reason
    assert stage_on(rules, acc, day + timedelta(days=29)).stage == "operator_call"
    assert stage_on(rules, acc, day + timedelta(days=30)).stage == "court"  # ladder.manual_hold_days: 30
    ev = AuditEvent.get(AuditEvent.action == "ladder.move")
    assert (ev.actor, ev.target) == ("max", "L-HAND") and '"stage": "operator_call"' in ev.detail
    f.payment(acc, "1.00", day + timedelta(days=1))
    assert stage_on(rules, acc, day + timedelta(days=2)).stage == "reminder"
    with pytest.raises(LadderError, match="stage 'jail' is not allowed"):
        ladder.move(rules, "L-HAND", "jail", "max", "x", day)
    with pytest.raises(LadderError, match="say why"):
        ladder.move(rules, "L-HAND", "letter", "max", "  ", day)


def test_record_writes_the_rules_moves_once_and_an_account_leaving(rules, db):
    acc = debtor("L-REC")
    other = debtor("L-OTHER")
    f.attempt(None, acc, FIRST, "heard")
    assert ladder.record(rules, date(2026, 11, 3)) == {"second_call": 1, "reminder": 1}
    assert ladder.record(rules, date(2026, 11, 4)) == {}
    f.attempt(None, acc, SECOND, "heard")
    assert ladder.record(rules, date(2026, 11, 10)) == {"operator_call": 1}
    f.payment(other, "1500.00", date(2026, 11, 10))
    assert ladder.record(rules, date(2026, 11, 11)) == {"off": 1}
    assert [(m.stage, m.day, m.by) for m in ladder.history("L-REC")] == [
        ("second_call", date(2026, 11, 2), "rules"), ("operator_call", date(2026, 11, 9), "rules")]


def test_court_list_cli_gives_the_evidence_as_csv(rules, db, tmp_path, capsys):
    acc = debtor("L-COURT", name="Olena Court", address="5 Court St", district="North")
    first = f.attempt(None, acc, FIRST, "heard", e164="+380501110001")
    second = f.attempt(None, acc, SECOND, "heard", e164="+380501110002")
    f.payment(acc, "100.00", date(2026, 10, 30))  # before the calls: they count
    letter(acc, datetime(2026, 11, 20, 9))
    never = debtor("L-NEVER")  # owes, never heard: never on the list
    f.attempt(None, never, FIRST, "early_hangup")
    conf = tmp_path / "config.yaml"
    conf.write_text(f"database:\n  url: '{rules.database.url}'\n", encoding="utf-8")
    out = tmp_path / "court.csv"
    assert main(["--config", str(conf), "court-list", "--date", "2026-12-05", "--format", "csv",
                 "--out", str(out)]) == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert [r["account"] for r in rows] == ["L-COURT"]
    r = rows[0]
    assert (r["name"], r["address"], r["district"], r["debt"], r["currency"]) == (
        "Olena Court", "5 Court St", "North", "1400.00", "UAH")
    assert r["heard_calls"] == "2"
    # answered 8 s after the call was placed (factories): the local time the debtor heard it
    assert r["heard_call_times"] == "2026-11-02 18:00; 2026-11-05 19:30"
    assert r["heard_call_numbers"] == "+380501110001; +380501110002"
    assert r["heard_call_ids"] == f"{first.uuid}; {second.uuid}"
    assert (r["first_heard_on"], r["days_without_payment"], r["last_payment_on"], r["letter_printed_on"],
            r["candidate_since"], r["set_by"]) == ("2026-11-02", "33", "2026-10-30", "2026-11-20", "2026-12-02",
                                                   "rules")
    assert main(["--config", str(conf), "court-list", "--date", "2026-12-05"]) == 0
    text = capsys.readouterr().out
    assert "1 court candidate(s) on 2026-12-05" in text and "L-COURT" in text and "L-NEVER" not in text
    assert main(["--config", str(conf), "court-list", "--date", "2026-12-01"]) == 0
    assert "no court candidates on 2026-12-01" in capsys.readouterr().out


def test_ladder_cli_status_move_history(rules, db, tmp_path, capsys):
    acc = debtor("L-CLI")
    f.attempt(None, acc, FIRST, "heard")
    conf = tmp_path / "config.yaml"
    conf.write_text(f"database:\n  url: '{rules.database.url}'\n", encoding="utf-8")
    assert main(["--config", str(conf), "ladder", "status", "--date", "2026-11-03", "--record"]) == 0
    out = capsys.readouterr().out
    assert "second call      1" in out and "recorded 1 move(s) in the history: second_call 1" in out
    assert main(["--config", str(conf), "ladder", "move", "L-CLI", "letter", "--reason", "asked for a letter",
                 "--date", "2026-11-04"]) == 0
    assert main(["--config", str(conf), "ladder", "history", "L-CLI"]) == 0
    out = capsys.readouterr().out
    assert "second_call" in out and "letter" in out and "cli:" in out and "asked for a letter" in out
    # by hand, one heard call on record is enough for court (the rules would want two): the person answers for it
    assert main(["--config", str(conf), "ladder", "move", "L-CLI", "court", "--reason", "left the country",
                 "--date", "2026-11-05"]) == 0
    capsys.readouterr()
    assert main(["--config", str(conf), "court-list", "--date", "2026-11-06", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["account"], r["heard_calls"], r["candidate_since"]) for r in rows] == [("L-CLI", "1", "2026-11-05")]
    assert rows[0]["set_by"].startswith("cli:")
    assert main(["--config", str(conf), "ladder", "move", "NOPE", "letter", "--reason", "x"]) == 2
    assert "no account 'NOPE'" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["court-list", "--help"], ["ladder", "--help"], ["ladder", "move", "--help"],
                                  ["life-support", "--help"], ["life-support", "informed", "--help"]])
def test_help(argv, capsys):
    assert main(argv) == 0
    assert "usage: ivr" in capsys.readouterr().out


# --- the console's Court list page -------------------------------------------------------------------------------

def test_court_page_lists_candidates_for_managers_with_csv_and_moves(rules, db, fast_hashes):
    from web_support import add_users, login, post

    from ivr.web.app import create_app

    acc = debtor("W-COURT", name="Court <b>Case</b>")
    f.attempt(None, acc, FIRST, "heard", e164="+380501110009")
    f.attempt(None, acc, SECOND, "heard")
    letter(acc, datetime(2026, 11, 20, 9))
    debtor("W-NEVER")  # owes, never heard
    add_users()
    app = create_app(rules, "k" * 64, testing=True)
    client = app.test_client()
    login(client, "olga")
    assert client.get("/court?day=2026-12-05").status_code == 403  # operators: no
    assert client.get("/court.csv?day=2026-12-05").status_code == 403
    login(client, "max")
    html = client.get("/court?day=2026-12-05").get_data(as_text=True)
    assert "W-COURT" in html and "W-NEVER" not in html and "Court &lt;b&gt;Case&lt;/b&gt;" in html
    assert "2026-11-02 18:00" in html and "+380501110009" in html
    assert 'id="count-court">1<' in html and 'id="count-reminder">1<' in html
    body = client.get("/court.csv?day=2026-12-05").get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(body.lstrip("\ufeff"))))
    assert [(r["account"], r["heard_calls"], r["candidate_since"]) for r in rows] == [("W-COURT", "2", "2026-12-02")]
    # a move by hand needs the form's CSRF token, and is audited under the console user
    assert client.post("/ladder/move", data={"account": "W-COURT", "stage": "letter", "reason": "x",
                                             "day": "2026-12-05"}).status_code == 400
    assert post(client, "/ladder/move", {"account": "W-COURT", "stage": "operator_call", "reason": "will pay",
                                         "day": "2026-12-05"}, page="/court?day=2026-12-05").status_code == 302
    html = client.get("/court?day=2026-12-05").get_data(as_text=True)
    assert "W-COURT" in html and 'id="count-court">0<' in html and 'id="count-operator_call">1<' in html
    assert AuditEvent.get(AuditEvent.action == "ladder.move").actor == "max"
    post(client, "/ladder/move", {"account": "W-NEVER", "stage": "court", "reason": "x", "day": "2026-12-05"},
         page="/court?day=2026-12-05")
    assert "no heard call on record" in client.get("/court?day=2026-12-05").get_data(as_text=True)


def test_a_debtors_story_says_where_they_stand(rules, db, capsys, tmp_path):
    from datetime import UTC

    from ivr.ledger import story

    acc = debtor("L-STORY")
    f.attempt(None, acc, FIRST, "heard")
    s = story.account_story(rules, "L-STORY", day=date(2026, 11, 4), now=datetime(2026, 11, 4, 10, tzinfo=UTC))
    assert (s.ladder.stage, s.ladder.since, s.ladder.by, s.ladder.heard_calls) == (
        "second_call", date(2026, 11, 2), "rules", 1)
    assert s.as_dict()["ladder"]["label"] == "second call"
    f.payment(acc, "1500.00", date(2026, 11, 5))
    assert story.account_story(rules, "L-STORY", day=date(2026, 11, 6),
                               now=datetime(2026, 11, 6, 10, tzinfo=UTC)).ladder is None  # paid: off the ladder
    conf = tmp_path / "config.yaml"
    conf.write_text(f"database:\n  url: '{rules.database.url}'\n", encoding="utf-8")
    assert main(["--config", str(conf), "account", "L-STORY", "--date", "2026-11-04"]) == 0
    assert "Escalation: second call since 2026-11-02; 1 heard call(s)" in capsys.readouterr().out


def test_an_outage_notice_heard_is_no_evidence_of_a_debt(rules, db):
    """Only debt reminders count on the ladder: an outage notice or installment reminder heard moves nobody."""
    from ivr.ledger.models import Campaign

    acc = debtor("L-OUT")
    notice = Campaign.create(day=date(2026, 11, 2), kind="outage", ref="O1-v1-now", priority=0)
    reminder = Campaign.create(day=date(2026, 11, 5), kind="installment", ref="remind", priority=2)
    f.attempt(notice, acc, FIRST, "heard")
    f.attempt(reminder, acc, SECOND, "heard")
    assert stage_on(rules, acc, date(2026, 12, 20)).stage == "reminder"
    debt = Campaign.create(day=date(2026, 11, 6), kind="debt")
    f.attempt(debt, acc, SECOND.replace(day=6), "heard")
    assert stage_on(rules, acc, date(2026, 12, 20)).stage == "second_call"
