"""The do-not-call list: add / remove (audited, history kept), what eligibility and the queue's last check before
each dial make of it, `ivr dnc …`, the opt-out key's setting."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime

import factories
import pytest
from campaign_support import acc

from ivr.campaign.queue import next_candidates, start_campaign
from ivr.cli import main
from ivr.clock import ManualClock
from ivr.config import ConfigError, parse_config
from ivr.ledger import audit, dnc, eligibility
from ivr.ledger.models import AuditEvent, DncEntry, QueueEntry

DAY = date(2026, 11, 23)
AT = datetime(2026, 11, 20, 9, 0)  # naive UTC, before the day judged
OPEN = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)  # 18:00 in Kyiv


def test_add_and_remove_are_audited_and_the_history_is_kept(cfg, db):
    a = acc(phones=["+380501110001"])
    e = dnc.add(cfg, "050 111 00 01", "asked on the phone to stop", "anna", until=date(2027, 1, 31), at=AT)
    assert (e.kind, e.value, e.until, e.added_by) == ("number", "+380501110001", date(2027, 1, 31), "anna")
    e2 = dnc.add(cfg, a.number, "complaint to the regulator", "cli:boris", at=AT)
    assert (e2.kind, e2.value) == ("account", a.number)  # a known account number is read as the account
    with pytest.raises(dnc.DncError, match="already on the do-not-call list: asked on the phone to stop"):
        dnc.add(cfg, "+380501110001", "again", "anna", at=AT)
    with pytest.raises(dnc.DncError, match="a reason is required"):
        dnc.add(cfg, "+380501110002", "  ", "anna", at=AT)

    removed = dnc.remove(cfg, "+380501110001", "cli:boris", "called by mistake", at=datetime(2026, 11, 21, 8))
    assert [r.id for r in removed] == [e.id]
    row = DncEntry.get_by_id(e.id)  # never deleted
    assert (row.removed_by, row.removed_reason, row.removed_at) == ("cli:boris", "called by mistake",
                                                                    datetime(2026, 11, 21, 8))
    with pytest.raises(dnc.DncError, match="not on the do-not-call list"):
        dnc.remove(cfg, "+380501110001", "cli:boris")

    log = list(AuditEvent.select().where(AuditEvent.action.startswith("dnc.")).order_by(AuditEvent.id))
    assert [(x.actor, x.action, x.target) for x in log] == [
        ("anna", "dnc.add", "+380501110001"), ("cli:boris", "dnc.add", a.number),
        ("cli:boris", "dnc.remove", "+380501110001")]
    assert json.loads(log[0].detail) == {"kind": "number", "reason": "asked on the phone to stop",
                                         "until": "2027-01-31", "source": "cli"}
    assert json.loads(log[2].detail)["reason"] == "called by mistake"
    assert [x.value for x in dnc.entries()] == [a.number]
    assert len(dnc.entries(include_removed=True)) == 2


def test_targets_are_read_as_staff_type_them(cfg, db):
    acc(phones=["+380501110009"])
    assert dnc.resolve(cfg, "+38 (050) 111-00-09") == dnc.Target("number", "+380501110009")
    assert dnc.resolve(cfg, "NEW-1", "account") == dnc.Target("account", "NEW-1")  # not imported yet
    with pytest.raises(dnc.DncError, match="neither an account in the ledger nor a valid phone number"):
        dnc.resolve(cfg, "NEW-1")
    with pytest.raises(dnc.DncError, match="not a phone number"):
        dnc.resolve(cfg, "12", "number")


def test_eligibility_excludes_a_listed_account_and_an_account_whose_every_number_is_listed(cfg, db):
    listed_acc = acc(phones=["+380501120001"])
    both = acc(phones=["+380501120002", "+380501120003"])
    one_left = acc(phones=["+380501120004", "+380501120005"])
    lapsed = acc(phones=["+380501120006"])
    dnc.add(cfg, listed_acc.number, "court order", "anna", at=AT)
    for n in ("+380501120002", "+380501120003", "+380501120004"):
        dnc.add(cfg, n, "asked to stop", "debtor:key", at=AT)
    dnc.add(cfg, "+380501120006", "on holiday", "anna", until=date(2026, 11, 22), at=AT)

    v = {x.account_id: x for x in eligibility.evaluate(cfg, DAY)}
    assert not v[listed_acc.id].eligible
    assert "excluded: account on the do-not-call list: court order (since 2026-11-20, by anna)" in \
        v[listed_acc.id].reasons
    assert not v[both.id].eligible
    assert any(r.startswith("excluded: every number on the do-not-call list (+38050***0002: asked to stop")
               for r in v[both.id].reasons)
    assert v[one_left.id].eligible and v[one_left.id].e164 == "+380501120005"  # the listed one is never offered
    assert v[lapsed.id].eligible  # its entry ended the day before
    assert not eligibility.check_account(cfg, lapsed, date(2026, 11, 22)).eligible
    assert eligibility.check_account(cfg, listed_acc, DAY).reasons == v[listed_acc.id].reasons


def test_the_last_check_before_each_dial_reads_the_list_as_it_is_now(cfg, db):
    clock = ManualClock(OPEN)
    a = acc(phones=["+380501130001", "+380501130002"])
    b = acc(phones=["+380501130003"])
    c = acc(phones=["+380501130004"])
    camp = start_campaign(cfg, DAY, clock)
    # listed after the evening's list was made
    dnc.add(cfg, "+380501130001", "asked to stop", "anna", at=AT)
    dnc.add(cfg, b.number, "complaint", "anna", at=AT)
    cands = {x.account.id: x for x in next_candidates(camp, clock, 10, cfg=cfg)}
    assert set(cands) == {a.id, c.id}
    assert cands[a.id].e164 == "+380501130002"  # its other number
    e = QueueEntry.get(QueueEntry.account == b)
    assert (e.state, e.outcome) == ("given_up", "not_eligible") and "complaint" in e.reason


def test_an_entry_whose_every_number_is_listed_is_closed_before_dialing(cfg, db):
    clock = ManualClock(OPEN)
    a = acc(phones=["+380501140001"])
    camp = start_campaign(cfg, DAY, clock)
    dnc.opt_out("+380501140001", attempt_uuid="u-1", key="8", at=AT)
    assert next_candidates(camp, clock, 10, cfg=cfg) == []
    e = QueueEntry.get(QueueEntry.account == a)
    assert (e.state, e.outcome, e.reason) == ("given_up", "not_eligible", "every number on the do-not-call list")


def test_opt_out_is_recorded_with_the_debtor_as_actor_once(cfg, db):
    first = dnc.opt_out("+380501150001", attempt_uuid="abc", key="8", accounts=["A-1", "A-2"], at=AT)
    again = dnc.opt_out("+380501150001", attempt_uuid="def", key="8", at=AT)
    assert again.id == first.id and DncEntry.select().count() == 1
    assert (first.added_by, first.kind, first.until) == ("debtor:key", "number", None)
    assert first.source == "key 8 on call abc (accounts A-1,A-2)" and "pressed 8" in first.reason
    (ev,) = audit.recent(action_prefix="dnc.")
    assert (ev.actor, ev.action, ev.target) == ("debtor:key", "dnc.add", "+380501150001")


def test_import_applies_good_rows_and_names_the_bad_lines(cfg, db, tmp_path):
    known = factories.account("ACC-77", phone="+380501160009")
    dnc.add(cfg, "+380501160003", "already there", "anna", at=AT)
    path = tmp_path / "dnc.csv"
    path.write_text("number;account;reason;until\n"
                    "+380501160001;;asked to stop;\n"
                    ";ACC-77;court order;31.12.2027\n"
                    "12;;typo;\n"
                    "+380501160002;ACC-77;both given;\n"
                    "+380501160003;;dup;\n"
                    "+380501160004;;;\n"
                    "+380501160005;;bad date;32.13.2027\n", encoding="cp1251")
    r = dnc.import_file(cfg, path, "cli:anna", default_reason="list from the call centre")
    assert r.rows == 7
    assert [(e.kind, e.value, e.reason, e.until) for e in r.added] == [
        ("number", "+380501160001", "asked to stop", None), ("account", known.number, "court order",
                                                             date(2027, 12, 31)),
        ("number", "+380501160004", "list from the call centre", None)]
    assert r.added[0].source == "import dnc.csv line 2"
    assert [line for line, _ in r.problems] == [4, 5, 8]
    assert "not a phone number" in r.problems[0][1] and "one of them" in r.problems[1][1]
    assert r.already == [(6, "+38050***0003")]
    assert AuditEvent.select().where(AuditEvent.action == "dnc.add", AuditEvent.actor == "cli:anna").count() == 3


def test_optout_key_may_not_take_a_menu_key(tmp_path):
    with pytest.raises(ConfigError) as err:
        parse_config({"callflow": {"optout_key": 2}}, tmp_path, env={})
    assert "callflow.optout_key: '2' is already the menu key for callback" in str(err.value)
    with pytest.raises(ConfigError, match="callflow.optout_key: 'stop' is not allowed; expected one digit"):
        parse_config({"callflow": {"optout_key": "stop"}}, tmp_path, env={})
    assert parse_config({"callflow": {"optout_key": 7}}, tmp_path, env={}).callflow.optout_key == "7"
    assert parse_config({"callflow": {"optout_key": ""}}, tmp_path, env={}).callflow.optout_key == ""
    assert parse_config({}, tmp_path, env={}).callflow.optout_key == "8"


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(f"database:\n  url: sqlite:///{tmp_path / 'cli.sqlite3'}\n", encoding="utf-8")
    return str(path)


def test_cli_add_list_remove_import(config_file, tmp_path, capsys):
    run = lambda *a: main(["--config", config_file, "dnc", *a])  # noqa: E731
    assert run("add", "+380501170001", "--reason", "asked to stop", "--until", "2099-01-01") == 0
    assert "number +38050***0001 is on the do-not-call list: asked to stop" in capsys.readouterr().out
    assert run("add", "+380501170001", "--reason", "again") == 2
    assert "already on the do-not-call list" in capsys.readouterr().err
    assert run("add", "ACC-9", "--account", "--reason", "court order") == 0
    capsys.readouterr()
    assert run("list") == 0
    out = capsys.readouterr().out
    assert "+38050***0001" in out and "2099-01-01" in out and "ACC-9" in out and "+380501170001" not in out
    assert run("remove", "ACC-9", "--account", "--reason", "settled") == 0
    capsys.readouterr()
    assert run("list", "--all", "--csv") == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["value"], r["removed_reason"]) for r in rows] == [("+380501170001", ""), ("ACC-9", "settled")]
    assert rows[0]["added_by"].startswith("cli:")
    bad = tmp_path / "list.csv"
    bad.write_text("number,reason\n+380501170002,asked\nnonsense,asked\n", encoding="utf-8")
    assert run("import", str(bad)) == 3
    captured = capsys.readouterr()
    assert f"{bad} line 3:" in captured.err and "1 added to the do-not-call list" in captured.out
    assert run("list") == 0
    assert "+38050***0002" in capsys.readouterr().out
