"""The morning report, the CSVs and the export to billing, checked for their numbers on a small known evening.

The evening of Monday 2026-11-23 (Kyiv is UTC+2 then, Tbilisi UTC+4):

  account  district  debt  calls (local time, outcome)                  payments
  A1       Center    1000  18:05 early_hangup, 18:40 heard              400 on 24th, 100 on 27th
  A2       Center     500  18:10 pay_now                                500 on 23rd (and 80 on 20th, before)
  A3       North      300  19:15 no_answer, 20:20 busy                  300 on 25th
  A4       North      200  19:30 callback (+ a callback request)        -
  A5       North      700  not called (still waiting)                  50 on 30th, 999 on Dec 1st (too late)
  A6       South      250  18:00 invalid_number                         -
  A7       South      100  18:30 Tbilisi wrong_number                   -
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from html.parser import HTMLParser

import factories as f
import pytest

from ivr.cli import main
from ivr.ledger.models import Account
from ivr.report import text_summary
from ivr.report.csvout import CALLBACK_COLUMNS, REPORT_COLUMNS, safe_cell, write_callback_lists
from ivr.report.data import build_report, callback_rows
from ivr.report.export import EXPORT_COLUMNS, result_rows
from ivr.report.html import render_html

DAY = date(2026, 11, 23)


def at(h: int, m: int, day: int = 23) -> datetime:
    return datetime(2026, 11, day, h, m, tzinfo=UTC)


@pytest.fixture
def evening(db):
    camp = f.campaign(DAY)
    acc = {}
    acc["A1"] = f.account("A1", name="Olena Kovalenko", district="Center", debt="1000", phone="+380501110001")
    acc["A2"] = f.account("A2", name="Petro Shevchenko", district="Center", debt="500", phone="+380501110002")
    acc["A3"] = f.account("A3", name="Iryna Bondar", district="North", debt="300", phone="+380501110003")
    acc["A4"] = f.account("A4", name="Taras Melnyk", district="North", debt="200", phone="+380501110004",
                          address="7 River Lane")
    acc["A5"] = f.account("A5", name="Mykola Tkachenko", district="North", debt="700", phone="+380501110005")
    acc["A6"] = f.account("A6", name="Oksana Kravets", district="South", debt="250", phone="+380501110006")
    acc["A7"] = f.account("A7", name="Giorgi <b>Beridze</b>", district="South", debt="100",
                          phone="+995555110007", timezone="Asia/Tbilisi")
    # an older balance must not be the one used
    f.Balance.create(account=acc["A1"], as_of=date(2026, 10, 1), amount=Decimal("9999"))
    for key, a in acc.items():
        f.enqueue(camp, a, state="waiting" if key == "A5" else "done")
    f.attempt(camp, acc["A1"], at(16, 5), "early_hangup")
    f.attempt(camp, acc["A1"], at(16, 40), "heard")
    f.attempt(camp, acc["A2"], at(16, 10), "pay_now")
    f.attempt(camp, acc["A3"], at(17, 15), "no_answer", hangup_cause="NO_ANSWER")
    f.attempt(camp, acc["A3"], at(18, 20), "busy", hangup_cause="USER_BUSY")
    cb = f.attempt(camp, acc["A4"], at(17, 30), "callback")
    f.callback(acc["A4"], cb)
    f.attempt(camp, acc["A6"], at(16, 0), "invalid_number", hangup_cause="UNALLOCATED_NUMBER")
    f.attempt(camp, acc["A7"], at(14, 30), "wrong_number")
    f.payment(acc["A1"], "400", date(2026, 11, 24))
    f.payment(acc["A1"], "100", date(2026, 11, 27))
    f.payment(acc["A2"], "500", date(2026, 11, 23))
    f.payment(acc["A2"], "80", date(2026, 11, 20))
    f.payment(acc["A3"], "300", date(2026, 11, 25))
    f.payment(acc["A5"], "50", date(2026, 11, 30))
    f.payment(acc["A5"], "999", date(2026, 12, 1))
    return camp, acc


def test_totals(cfg, evening):
    t = build_report(cfg, DAY).totals
    assert (t.eligible, t.called, t.reached, t.heard, t.pay_now, t.callbacks) == (7, 6, 4, 3, 1, 1)
    assert (t.already_paid, t.wrong_number, t.attempts, t.in_flight) == (0, 1, 8, 0)
    assert t.debt_eligible == Decimal("3050")


def test_callbacks_and_machines_are_counted(cfg, evening):
    camp, acc = evening
    f.attempt(camp, acc["A5"], at(16, 20), "machine", answered=True, hangup_cause="NORMAL_CLEARING")
    f.attempt(camp, acc["A5"], at(16, 45), "heard", kind="inbound")  # A5 called back and heard it
    f.attempt(camp, acc["A3"], at(18, 40), "early_hangup", kind="inbound")
    d = build_report(cfg, DAY)
    t = d.totals
    assert (t.called_back, t.called_back_heard, t.machines) == (2, 1, 1)
    assert t.heard == 4  # the heard callback counts as heard
    people = {p.account: p for p in d.people}
    assert people["A5"].final_label == "heard"
    assert [a.inbound for a in people["A5"].attempts] == [False, True]
    assert "called back 2 (heard 1), answering machines 1" in text_summary(cfg, DAY)
    html = render_html(d)
    assert 'id="t-calledback">2<' in html and 'id="t-machines">1<' in html and "(called us back)" in html


def test_campaign_eligible_count_wins_over_queue_length(cfg, evening):
    camp, _ = evening
    camp.eligible_count = 12
    camp.save()
    assert build_report(cfg, DAY).totals.eligible == 12


def test_money_within_1_3_7_days_reached_versus_not_reached(cfg, evening):
    reached, control = build_report(cfg, DAY).money
    # reached: A1, A2, A4, A7 (A7 never heard: counted from its answered call)
    assert (reached.group, reached.accounts, reached.debt) == ("reached", 4, Decimal("1800"))
    assert reached.paid == {1: Decimal("900"), 3: Decimal("900"), 7: Decimal("1000")}
    assert reached.payers == {1: 2, 3: 2, 7: 2}
    assert reached.share[1] == pytest.approx(0.5)
    assert reached.share[7] == pytest.approx(1000 / 1800)
    # not reached: A3, A5, A6, counted from the campaign day; Dec 1st is day 8, outside every window
    assert (control.accounts, control.debt) == (3, Decimal("1250"))
    assert control.paid == {1: Decimal("0"), 3: Decimal("300"), 7: Decimal("350")}
    assert control.share[3] == pytest.approx(0.24)
    assert control.share[7] == pytest.approx(0.28)


def test_hours_are_local_per_debtor(cfg, evening):
    hours = {h.hour: (h.calls, h.answers) for h in build_report(cfg, DAY).hours}
    # A7's 14:30 UTC call is 18:30 in Tbilisi; the others are Kyiv (UTC+2)
    assert hours == {18: (5, 4), 19: (2, 1), 20: (1, 0)}


def test_districts_and_final_outcomes(cfg, evening):
    d = {r.district: r for r in build_report(cfg, DAY).districts}
    assert (d["Center"].eligible, d["Center"].called, d["Center"].reached, d["Center"].heard,
            d["Center"].pay_now) == (2, 2, 2, 2, 1)
    assert (d["North"].eligible, d["North"].called, d["North"].reached, d["North"].callbacks) == (3, 2, 1, 1)
    assert dict(d["North"].outcomes) == {"busy": 1, "callback": 1, "not called": 1}
    assert dict(d["South"].outcomes) == {"invalid number": 1, "wrong number": 1}
    assert d["South"].heard == 0


def test_person_rows(cfg, evening):
    people = {p.account: p for p in build_report(cfg, DAY).people}
    a1 = people["A1"]
    assert a1.number_masked == "+38050***0001"
    assert a1.debt == Decimal("1000")
    assert [(a.at_local.strftime("%H:%M"), a.label) for a in a1.attempts] == [
        ("18:05", "hung up early"), ("18:40", "heard")]
    assert a1.final_outcome == "heard"
    assert [(p.amount, p.paid_on) for p in a1.payments] == [
        (Decimal("400"), date(2026, 11, 24)), (Decimal("100"), date(2026, 11, 27))]
    # the payment on the 20th came before the first call
    assert [p.amount for p in people["A2"].payments] == [Decimal("500")]
    assert people["A7"].attempts[0].at_local.strftime("%H:%M %z") == "18:30 +0400"
    assert people["A5"].attempts == [] and people["A5"].final_label == "not called"


def test_final_outcome_precedence(cfg, db):
    camp = f.campaign(DAY)
    a = f.account("P1")
    b = f.account("P2")
    c = f.account("P3")
    for acc in (a, b, c):
        f.enqueue(camp, acc)
    # a later busy must not hide an earlier callback; heard beats an early hang-up whatever the order
    f.attempt(camp, a, at(16, 0), "callback")
    f.attempt(camp, a, at(17, 0), "busy")
    f.attempt(camp, b, at(16, 0), "heard")
    f.attempt(camp, b, at(16, 30), "early_hangup")
    f.attempt(camp, c, at(16, 0), "no_answer")
    f.attempt(camp, c, at(16, 30), "busy")
    f.attempt(camp, c, at(17, 0), "", state="originated")  # still ringing
    rows = {r.account: r for r in result_rows(build_report(cfg, DAY))}
    assert rows["P1"].final_outcome == "callback" and rows["P1"].digits == "2"
    assert rows["P2"].final_outcome == "heard" and rows["P2"].heard
    assert rows["P3"].final_outcome == "busy" and rows["P3"].attempts == 3
    assert build_report(cfg, DAY).totals.in_flight == 1


def test_shared_number_call_counts_for_every_account_it_carried(cfg, db):
    camp = f.campaign(DAY)
    a = f.account("S1", phone="+380509990000")
    b = f.account("S2", phone="+380509990000")
    f.enqueue(camp, a)
    f.enqueue(camp, b)
    f.attempt(camp, a, at(16, 0), "heard", accounts="S1,S2")
    data = build_report(cfg, DAY)
    t = data.totals
    assert (t.called, t.heard, t.reached) == (2, 2, 2)
    assert t.attempts == 1 and data.hours[0].calls == 1  # one call, two messages
    assert [len(p.attempts) for p in data.people] == [1, 1]


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.imgs: list[str] = []
        self.text: list[str] = []
        self.ids: dict[str, list[str]] = {}
        self._stack: list[str | None] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a.get("src", ""))
            return
        if tag in ("br", "meta", "input"):
            return
        self._stack.append(a.get("id"))

    def handle_endtag(self, tag):
        if tag not in ("img", "br", "meta", "input") and self._stack:
            self._stack.pop()

    def handle_data(self, data):
        self.text.append(data)
        for ident in self._stack:
            if ident:
                self.ids.setdefault(ident, []).append(data)

    def by_id(self, ident: str) -> str:
        return re.sub(r"[ \t\r\n]+", " ", " ".join(self.ids.get(ident, []))).strip()


def test_html_report_shows_the_numbers_and_is_self_contained(cfg, evening):
    html = render_html(build_report(cfg, DAY))
    p = _Collector()
    p.feed(html)
    p.close()
    assert not re.search(r"https?://", html)
    assert len(p.imgs) == 3 and all(src.startswith("data:image/png;base64,") for src in p.imgs)
    assert all(len(src) > 2000 for src in p.imgs)
    assert [p.by_id(k) for k in ("t-eligible", "t-called", "t-reached", "t-heard", "t-paynow", "t-callbacks")] \
        == ["7", "6", "4", "3", "1", "1"]
    reached = p.by_id("money-reached")
    assert "1\u202f800.00" in reached and "900.00" in reached and "50.0 %" in reached and "55.6 %" in reached
    control = p.by_id("money-not-reached")
    assert "1\u202f250.00" in control and "24.0 %" in control and "28.0 %" in control
    assert p.by_id("hour-18") == "18:00–18:59 5 4 80.0 %"
    assert p.by_id("hour-20") == "20:00–20:59 1 0 0.0 %"
    people = p.by_id("people")
    assert "+38050***0001" in people and "+380501110001" not in html
    assert "18:05 hung up early 18:40 heard" in people
    assert "400.00 on 24.11" in people
    # names from billing are escaped, not markup
    assert "Giorgi &lt;b&gt;Beridze&lt;/b&gt;" in html


def test_report_csv_one_row_per_person_attempt(cfg, evening, tmp_path):
    out = tmp_path / "r.csv"
    assert main(["--config", _write_config(cfg, tmp_path), "report", "--date", "2026-11-23", "--format", "csv",
                 "--out", str(out)]) == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert list(rows[0].keys()) == REPORT_COLUMNS
    assert len(rows) == 9  # 8 attempts + A5 never called
    a1 = [r for r in rows if r["account"] == "A1"]
    assert [(r["call_time_local"], r["outcome"], r["heard"]) for r in a1] == [
        ("2026-11-23T18:05:00+02:00", "early_hangup", "0"), ("2026-11-23T18:40:00+02:00", "heard", "1")]
    assert {r["paid_since_first_call"] for r in a1} == {"500.00"}
    a5 = [r for r in rows if r["account"] == "A5"]
    assert len(a5) == 1 and a5[0]["attempt_uuid"] == "" and a5[0]["final_outcome"] == "not_called"
    assert all("***" in r["number_masked"] for r in rows)


def test_report_csv_quotes_billing_text_a_spreadsheet_would_run(cfg, evening, tmp_path):
    Account.update(name='=HYPERLINK("http://x")', district="+North").where(Account.number == "A1").execute()
    out = tmp_path / "r.csv"
    assert main(["--config", _write_config(cfg, tmp_path), "report", "--date", "2026-11-23", "--format", "csv",
                 "--out", str(out)]) == 0
    rows = [r for r in csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))) if r["account"] == "A1"]
    assert rows and {(r["name"], r["district"]) for r in rows} == {("'=HYPERLINK(\"http://x\")", "'+North")}


def test_export_results_one_row_per_account(cfg, evening, tmp_path):
    out = tmp_path / "results.csv"
    assert main(["--config", _write_config(cfg, tmp_path), "export", "results", "--date", "2026-11-23",
                 "--out", str(out)]) == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert list(rows[0].keys()) == EXPORT_COLUMNS
    assert [r["account"] for r in rows] == ["A1", "A2", "A3", "A4", "A5", "A6", "A7"]
    by = {r["account"]: r for r in rows}
    assert by["A1"] == {"date": "2026-11-23", "account": "A1", "final_outcome": "heard", "heard": "1",
                        "reached": "1", "digits": "", "attempts": "2",
                        "last_call_at": "2026-11-23T18:40:00+02:00"}
    assert (by["A2"]["final_outcome"], by["A2"]["digits"]) == ("pay_now", "1")
    assert (by["A3"]["final_outcome"], by["A3"]["attempts"], by["A3"]["reached"]) == ("busy", "2", "0")
    assert (by["A5"]["final_outcome"], by["A5"]["attempts"], by["A5"]["last_call_at"]) == ("not_called", "0", "")
    assert by["A7"]["last_call_at"] == "2026-11-23T18:30:00+04:00"


def test_callback_lists_per_district(cfg, evening, tmp_path):
    camp, acc = evening
    extra = f.account("A8", name="=HYPERLINK(\"x\")", district="Old Town/West", debt="150", phone="+380501110008")
    cb = f.attempt(camp, extra, at(18, 0), "callback")
    f.callback(extra, cb)
    f.callback(acc["A3"], None, at=at(9, 0, day=24))  # the next day: not this list
    done = f.attempt(camp, acc["A6"], at(18, 5), "callback")
    f.callback(acc["A6"], done, handled=True)  # already handled by an operator
    rows = callback_rows(cfg, DAY)
    assert [(r.district, r.account) for r in rows] == [("North", "A4"), ("Old Town/West", "A8")]
    out = tmp_path / "cb"
    assert main(["--config", _write_config(cfg, tmp_path), "callbacks", "--date", "2026-11-23",
                 "--out", str(out)]) == 0
    assert sorted(x.name for x in out.iterdir()) == ["North.csv", "Old_Town_West.csv"]
    north = list(csv.reader(io.StringIO((out / "North.csv").read_text(encoding="utf-8-sig"))))
    assert north == [CALLBACK_COLUMNS,
                     ["A4", "Taras Melnyk", "+380501110004", "7 River Lane", "2026-11-23 19:30", "200.00"]]
    west = list(csv.reader(io.StringIO((out / "Old_Town_West.csv").read_text(encoding="utf-8-sig"))))
    assert west[1][1] == "'=HYPERLINK(\"x\")"
    only = tmp_path / "only"
    assert main(["--config", _write_config(cfg, tmp_path), "callbacks", "--date", "2026-11-23",
                 "--district", "North", "--out", str(only)]) == 0
    assert [x.name for x in only.iterdir()] == ["North.csv"]


def test_write_callback_lists_keeps_districts_apart_when_names_collide(tmp_path):
    from ivr.report.data import CallbackRow
    t = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)
    rows = [CallbackRow("A/B", "1", "x", "+1", "", t, Decimal(1)), CallbackRow("A B", "2", "y", "+2", "", t,
                                                                                Decimal(2))]
    written = write_callback_lists(rows, tmp_path)
    assert len(set(written.values())) == 2
    assert safe_cell("+380") == "'+380" and safe_cell("Ivan") == "Ivan"


def test_html_report_via_cli_default_path_and_latest_day(cfg, evening, tmp_path, capsys):
    assert main(["--config", _write_config(cfg, tmp_path), "report"]) == 0
    path = tmp_path / "reports" / "report-2026-11-23.html"
    assert path.exists() and str(path) in capsys.readouterr().out


def test_unknown_day_is_a_clear_error(cfg, evening, tmp_path, capsys):
    assert main(["--config", _write_config(cfg, tmp_path), "report", "--date", "2026-11-01"]) == 1
    err = capsys.readouterr().err
    assert "no campaign on 2026-11-01" in err and "2026-11-23" in err
    assert main(["--config", _write_config(cfg, tmp_path), "report", "--date", "23.11.2026"]) == 2
    assert "23.11.2026" in capsys.readouterr().err


def test_text_summary(cfg, evening):
    text = text_summary(cfg, DAY)
    assert "eligible 7, called 6 (85.7 %), reached 4 (66.7 %), heard 3 (75.0 %)" in text
    assert "pay now 1, callbacks 1" in text
    assert "7d 1\u202f000.00 (55.6 %)" in text


def _write_config(cfg, tmp_path) -> str:
    path = tmp_path / "config.yaml"
    if not path.exists():
        path.write_text(
            f"database:\n  url: '{cfg.database.url}'\nreport:\n  output_dir: '{tmp_path / 'reports'}'\n"
            f"speech:\n  cache_dir: '{tmp_path / 'cache'}'\nimport:\n  rejects_dir: '{tmp_path / 'rejects'}'\n",
            encoding="utf-8")
    return str(path)


def test_an_evening_without_calls_still_renders(cfg, db):
    camp = f.campaign(DAY, status="stopped")
    camp.status_reason = "INVALID_GATEWAY: check dialing.gateway"
    camp.save()
    f.enqueue(camp, f.account("Z1", debt="120"), state="waiting")
    data = build_report(cfg, DAY)
    assert (data.totals.eligible, data.totals.called, data.hours) == (1, 0, [])
    assert data.money[0].share == {1: None, 3: None, 7: None}  # nobody reached: no share, not 0 %
    html = render_html(data)
    assert "INVALID_GATEWAY: check dialing.gateway" in html
    assert html.count("data:image/png;base64,") == 2  # money (comparison group only) and outcomes
    assert [r.cells() for r in result_rows(data)] == [["2026-11-23", "Z1", "not_called", "0", "0", "", "0", ""]]


def test_test_calls_are_listed_apart_and_counted_nowhere(cfg, evening):
    camp, acc = evening
    before = build_report(cfg, DAY)
    f.attempt(None, acc["A5"], at(15, 50), "already_paid", e164="+380671234567", kind="test")
    f.attempt(None, acc["A1"], at(12, 0, day=22), "heard", e164="+380671234567", kind="test")  # another day
    d = build_report(cfg, DAY)
    assert d.totals == before.totals and d.final_outcomes == before.final_outcomes
    a5 = next(p for p in d.people if p.account == "A5")
    assert a5.attempts == [] and a5.final_outcome == "not_called"
    (t,) = d.test_calls
    assert (t.account, t.outcome, t.digits, t.at_local.hour) == ("A5", "already_paid", "3", 17)
    assert t.number_masked != "+380671234567" and t.number_masked.startswith("+38067")
    html = render_html(d)
    assert 'id="test-calls"' in html and "A5" in html.split('id="test-calls"')[1]
    assert "test calls (ivr call, counted nowhere above): 1" in text_summary(cfg, DAY)
    assert 'id="test-calls"' not in render_html(before)
