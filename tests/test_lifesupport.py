"""Life support first, by a person: the robot never calls a life-support account about a debt before an operator
has recorded that they informed it; afterwards `life_support.after_informed` decides. The single-account check
and the dialer's batch check agree; the operators' worklist lists exactly the accounts the rule holds back."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from decimal import Decimal

import factories as f
import pytest

from ivr.campaign import lifesupport
from ivr.campaign.lifesupport import FIRST, LifeSupportError, may_call_robot
from ivr.config import parse_config
from ivr.ledger import eligibility
from ivr.ledger.models import Account, AuditEvent, LifeSupportNotice

DAY = date(2026, 11, 23)
NOW = datetime(2026, 11, 23, 10, 0)


def flagged(number: str, debt: str = "500.00", district: str = "Center", **kw) -> Account:
    acc = f.account(number, debt=debt, district=district, **kw)
    Account.update(life_support=True).where(Account.id == acc.id).execute()
    return Account.get_by_id(acc.id)


def with_setting(cfg, **after):
    return dataclasses.replace(cfg, life_support=dataclasses.replace(
        cfg.life_support, after_informed={**cfg.life_support.after_informed, **after}))


def test_a_life_support_debtor_is_not_called_until_an_operator_informed_them(cfg, db):
    acc = flagged("LS-1")
    plain = f.account("PLAIN-1")
    v = eligibility.check_account(cfg, acc, DAY)
    assert not v.eligible and v.owes and v.excluded_by == [FIRST]
    assert f"excluded: {FIRST}" in v.reasons
    assert eligibility.check_account(cfg, plain, DAY).eligible
    assert not may_call_robot(acc, "debt", cfg=cfg)
    assert may_call_robot(plain, "debt", cfg=cfg) and may_call_robot(plain, "outage", cfg=cfg)

    lifesupport.record_informed("LS-1", "debt", "olga", at=datetime(2026, 11, 22, 15, 30), note="spoke to son",
                                now=NOW)
    v = eligibility.check_account(cfg, acc, DAY)
    assert v.eligible, v.reasons
    assert "life support: informed by olga on 2026-11-22" in v.reasons
    assert may_call_robot(acc, "debt", cfg=cfg)
    # informed about the debt is not informed about an outage; and outages stay with people by default
    assert not may_call_robot(acc, "outage", cfg=cfg)
    ev = AuditEvent.get(AuditEvent.action == "life_support.informed")
    assert (ev.actor, ev.target) == ("olga", "LS-1") and '"kind": "debt"' in ev.detail


def test_after_informed_never_keeps_the_robot_away_for_good(cfg, db):
    cfg = with_setting(cfg, debt="never")
    acc = flagged("LS-2")
    lifesupport.record_informed(acc, "debt", "olga", now=NOW)
    v = eligibility.check_account(cfg, acc, DAY)
    assert not v.eligible
    assert v.excluded_by[0].startswith("life support: informed by olga on 2026-11-23")
    assert "life_support.after_informed.debt: never" in v.excluded_by[0]
    assert not may_call_robot(acc, "debt", cfg=cfg)


def test_outage_setting_robot_allows_a_reminder_only_after_an_outage_notice(cfg, db):
    cfg = with_setting(cfg, outage="robot")
    acc = flagged("LS-3")
    assert not may_call_robot(acc, "outage", cfg=cfg)
    lifesupport.record_informed(acc, "debt", "olga", now=NOW)
    assert not may_call_robot(acc, "outage", cfg=cfg)
    lifesupport.record_informed(acc, "outage", "petro", now=NOW)
    assert may_call_robot(acc, "outage", cfg=cfg)
    # without a config, the defaults: outages by people only
    assert not may_call_robot(acc, "outage")


def test_the_setting_is_validated_by_key_and_value():
    from ivr.config import ConfigError
    with pytest.raises(ConfigError) as info:
        parse_config({"life_support": {"after_informed": {"debts": "robot", "outage": "sometimes"}}}, env={})
    text = "\n".join(info.value.problems)
    assert "life_support.after_informed.debts" in text and "debt, installment, outage" in text
    assert "life_support.after_informed.outage: 'sometimes' is not allowed" in text and "robot, never" in text
    ok = parse_config({"life_support": {"after_informed": {"outage": "robot"}}}, env={})
    assert ok.life_support.after_informed == {"debt": "robot", "installment": "robot", "outage": "robot"}


def test_record_refuses_what_is_not_a_notice(cfg, db):
    flagged("LS-4")
    f.account("PLAIN-4")
    with pytest.raises(LifeSupportError, match="not flagged life support"):
        lifesupport.record_informed("PLAIN-4", "debt", "olga", now=NOW)
    with pytest.raises(LifeSupportError, match="kind 'rent' is not allowed"):
        lifesupport.record_informed("LS-4", "rent", "olga", now=NOW)
    with pytest.raises(LifeSupportError, match="in the future"):
        lifesupport.record_informed("LS-4", "debt", "olga", at=datetime(2026, 11, 24), now=NOW)
    with pytest.raises(LifeSupportError, match="no account"):
        lifesupport.record_informed("NOPE", "debt", "olga", now=NOW)
    assert LifeSupportNotice.select().count() == 0


def test_the_batch_check_agrees_with_the_single_check_on_life_support(cfg, db):
    """The dialer's pre-dial check (check_accounts with loaded rows) gives the same verdicts as check_account."""
    ids = []
    for i in range(8):
        acc = flagged(f"B-{i}") if i % 2 else f.account(f"B-{i}")
        ids.append(acc.id)
    lifesupport.record_informed("B-3", "debt", "olga", now=NOW)
    loaded = list(Account.select().where(Account.id.in_(ids)).order_by(Account.id))
    batch, _ = eligibility.check_accounts(cfg, ids, DAY, loaded=loaded)
    plain, _ = eligibility.check_accounts(cfg, ids, DAY)
    everyone = {v.account_id: v for v in eligibility.evaluate(cfg, DAY)}
    for i in ids:
        one = eligibility.check_account(cfg, i, DAY)
        for other in (batch[i], plain[i], everyone[i]):
            assert (other.eligible, other.reasons) == (one.eligible, one.reasons)
    eligible = {v.number for v in batch.values() if v.eligible}
    assert eligible == {"B-0", "B-2", "B-3", "B-4", "B-6"}


def test_the_worklist_lists_exactly_whom_the_rule_holds_back_largest_debt_first(cfg, db):
    flagged("W-SMALL", debt="150.00", district="North")
    flagged("W-BIG", debt="900.00", district="North")
    flagged("W-CENTER", debt="300.00", district="Center")
    flagged("W-PAID", debt="0.00")  # owes nothing: nothing to inform about
    dnc = flagged("W-DNC")
    Account.update(do_not_call=True).where(Account.id == dnc.id).execute()  # nobody calls: not on the list
    flagged("W-DONE", debt="700.00")
    f.account("W-PLAIN", debt="800.00")
    lifesupport.record_informed("W-DONE", "debt", "olga", now=NOW)
    items = lifesupport.pending(cfg, DAY)
    assert [(i.district, i.account) for i in items] == [("Center", "W-CENTER"), ("North", "W-BIG"),
                                                        ("North", "W-SMALL")]
    assert items[1].number == "+380501234567" and items[1].debt == Decimal("900.00") and items[1].kind == "debt"
    assert [i.account for i in lifesupport.pending(cfg, DAY, district="North")] == ["W-BIG", "W-SMALL"]


def test_status_rows_say_who_informed_whom(cfg, db):
    flagged("S-1", district="A")
    flagged("S-2", district="B")
    lifesupport.record_informed("S-2", "debt", "olga", at=datetime(2026, 11, 20, 9), now=NOW)
    lifesupport.record_informed("S-2", "debt", "petro", at=datetime(2026, 11, 21, 9), now=NOW)
    rows = lifesupport.status_rows()
    assert [(r.account, sorted(r.informed)) for r in rows] == [("S-1", []), ("S-2", ["debt"])]
    assert rows[1].informed["debt"].informed_by == "petro"


# --- the operators' side: the callbacks page, the CLI, the morning report ---------------------------------------

def _config_file(cfg, tmp_path) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(f"database:\n  url: '{cfg.database.url}'\nreport:\n  output_dir: '{tmp_path / 'reports'}'\n",
                    encoding="utf-8")
    return str(path)


def test_the_callbacks_page_lists_life_support_first_and_records_informed(cfg, db, fast_hashes):
    from web_support import add_users, login, post

    from ivr.web.app import create_app

    add_users()
    app = create_app(cfg, "k" * 64, testing=True)
    client = app.test_client()
    flagged("LS-WEB", debt="640.00", district="North", name="Ganna Life")
    other = f.account("CB-1", name="Wants a call", district="Center")
    f.callback(other, None, at=datetime(2026, 11, 23, 17))
    login(client, "olga")
    html = client.get("/callbacks").get_data(as_text=True)
    assert 'id="life-support"' in html and "Ganna Life" in html and "Wants a call" in html
    assert html.index("Ganna Life") < html.index("Wants a call")  # the top of the worklist
    # no CSRF token: refused, nothing recorded
    refused = client.post("/callbacks/life-support/informed", data={"account": "LS-WEB", "kind": "debt"})
    assert refused.status_code == 400 and LifeSupportNotice.select().count() == 0
    resp = post(client, "/callbacks/life-support/informed", {"account": "LS-WEB", "kind": "debt",
                                                             "informed_at": "2026-11-23T16:45", "note": "daughter"},
                page="/callbacks")
    assert resp.status_code == 302
    row = LifeSupportNotice.get()
    # 16:45 in Kyiv (UTC+2 in November) is 14:45 UTC; the operator is the logged-in user
    assert (row.informed_by, row.kind, row.informed_at, row.note) == ("olga", "debt", datetime(2026, 11, 23, 14, 45),
                                                                     "daughter")
    html = client.get("/callbacks").get_data(as_text=True)
    assert 'id="life-support"' not in html and "LS-WEB" in html  # the "recorded" line; the list is empty now
    bad = post(client, "/callbacks/life-support/informed", {"account": "CB-1", "kind": "debt"}, page="/callbacks")
    assert bad.status_code == 302
    assert "not flagged life support" in client.get("/callbacks").get_data(as_text=True)
    anonymous = app.test_client()
    assert anonymous.get("/callbacks").status_code == 302  # not logged in: to the login page
    assert anonymous.post("/callbacks/life-support/informed", data={"account": "LS-WEB"}).status_code == 400


def test_cli_lists_records_and_shows_status(cfg, db, tmp_path, capsys):
    from ivr.cli import main

    flagged("LS-CLI", debt="450.00", district="North", name="Ivan Life")
    conf = _config_file(cfg, tmp_path)
    assert main(["--config", conf, "life-support", "list", "--date", "2026-11-23", "--csv"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "kind,district,account,name,number,address,debt"
    assert out[1].startswith("debt,North,LS-CLI,Ivan Life,+380501234567,") and out[1].endswith(",450.00")
    assert main(["--config", conf, "life-support", "informed", "LS-CLI", "--kind", "debt", "--at",
                 "2026-11-23 09:15", "--note", "by phone"]) == 0
    assert "automated reminders may follow (life_support.after_informed.debt: robot)" in capsys.readouterr().out
    row = LifeSupportNotice.get()
    assert row.informed_by.startswith("cli:") and row.informed_at == datetime(2026, 11, 23, 7, 15)
    assert main(["--config", conf, "life-support", "list", "--date", "2026-11-23"]) == 0
    assert "nobody to inform" in capsys.readouterr().out
    assert main(["--config", conf, "life-support", "status"]) == 0
    status = capsys.readouterr().out
    assert "LS-CLI" in status and "debt: cli:" in status and "2026-11-23 09:15" in status
    assert main(["--config", conf, "life-support", "informed", "LS-CLI", "--at", "yesterday"]) == 2
    assert "not a time" in capsys.readouterr().err
    assert main(["--config", conf, "life-support", "informed", "NOPE"]) == 2
    assert "no account 'NOPE'" in capsys.readouterr().err


def test_callback_lists_put_the_life_support_file_first(cfg, db, tmp_path, capsys):
    from ivr.cli import main
    from ivr.report.csvout import LIFE_SUPPORT_FILE

    f.campaign(DAY)
    flagged("LS-F", debt="300.00", name="=cmd()", district="North", address="1 Main Street")
    out = tmp_path / "cb"
    assert main(["--config", _config_file(cfg, tmp_path), "callbacks", "--date", "2026-11-23",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.splitlines()[0].startswith(str(out / LIFE_SUPPORT_FILE))
    rows = (out / LIFE_SUPPORT_FILE).read_text(encoding="utf-8-sig").splitlines()
    assert rows == ["kind,district,account,name,number,address,debt",
                    "debt,North,LS-F,'=cmd(),+380501234567,1 Main Street,300.00"]
    assert "no open callback requests" in printed


def test_the_morning_report_shows_life_support_accounts_and_who_informed_them(cfg, db):
    from ivr.report import text_summary
    from ivr.report.data import build_report
    from ivr.report.html import render_html

    f.campaign(DAY)
    flagged("R-1", name="Not told", district="A")
    flagged("R-2", name="Told", district="B")
    lifesupport.record_informed("R-2", "debt", "olga", at=datetime(2026, 11, 22, 16, 0), now=NOW)
    lifesupport.record_informed("R-2", "outage", "petro", at=datetime(2026, 11, 21, 8, 0), now=NOW)
    data = build_report(cfg, DAY)
    assert [(r.account, r.informed_by, r.robot_may_call) for r in data.life_support] == [
        ("R-1", "", False), ("R-2", "olga", True)]
    assert data.life_support[1].informed_at.strftime("%Y-%m-%d %H:%M") == "2026-11-22 18:00"  # Kyiv
    assert data.life_support[1].other_kinds == "outage: petro 2026-11-21 10:00"
    html = render_html(data)
    section = html[html.index('id="life-support"'):]
    assert "not informed" in section[:section.index("R-2")] and "olga" in section
    assert "life support: 2 account(s), 1 informed in person, 1 not yet" in text_summary(cfg, DAY)


def test_the_evening_queue_holds_back_an_uninformed_life_support_debtor(cfg, db):
    """From the ledger to the dialer: not queued, and the pre-dial check closes an entry of theirs, until informed."""
    from ivr.campaign.queue import next_candidates, start_campaign
    from ivr.clock import ManualClock
    from ivr.ledger.models import QueueEntry

    clock = ManualClock(datetime(2026, 11, 23, 16, 0, tzinfo=UTC))
    acc = flagged("Q-LS", phone="+380501110001")
    f.account("Q-PLAIN", phone="+380501110002")
    camp = start_campaign(cfg, DAY, clock)
    assert [e.account.number for e in QueueEntry.select().where(QueueEntry.campaign == camp)] == ["Q-PLAIN"]
    lifesupport.record_informed(acc, "debt", "olga", now=NOW)
    start_campaign(cfg, DAY, clock)  # the list is refreshed: informed now, and the setting says robot
    picked = {c.entry.account.number for c in next_candidates(camp, clock, 10)}
    assert picked == {"Q-PLAIN", "Q-LS"}


def test_billing_sets_the_flag_and_eligibility_follows_it(cfg, db, tmp_path):
    """The accounts export's life_support column (yes/no words) is what the rule reads."""
    from ivr.ledger import importer

    path = tmp_path / "acc.csv"
    path.write_text("account,name,phone,district,balance,balance_date,life_support\n"
                    "IMP-1,Olena,0501234567,North,500.00,2026-11-20,yes\n"
                    "IMP-2,Ivan,0501234568,North,500.00,2026-11-20,0\n", encoding="utf-8")
    report = importer.import_accounts(cfg, path, progress=False)
    assert report.loaded == 2 and not report.rejected
    verdicts = {v.number: v for v in eligibility.evaluate(cfg, DAY)}
    assert verdicts["IMP-1"].excluded_by == [FIRST] and verdicts["IMP-2"].eligible
    assert [i.account for i in lifesupport.pending(cfg, DAY)] == ["IMP-1"]


def test_the_console_reports_page_shows_the_life_support_section(cfg, db, fast_hashes):
    from web_support import add_users, login

    from ivr.web.app import create_app

    f.campaign(DAY)
    flagged("RP-1", name="Not told yet")
    flagged("RP-2", name="Told by olga")
    lifesupport.record_informed("RP-2", "debt", "olga", at=datetime(2026, 11, 22, 16, 0), now=NOW)
    add_users()
    client = create_app(cfg, "k" * 64, testing=True).test_client()
    login(client, "max")
    html = client.get(f"/reports?day={DAY}").get_data(as_text=True)
    section = html[html.index('id="life-support"'):]
    section = section[:section.index("</table>")]
    assert "Not told yet" in section and "Told by olga" in section
    assert "2026-11-22 18:00" in section and ">olga<" in section
