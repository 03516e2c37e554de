"""Who will be called (filters, paging), the reports page (paged, searchable, CSV) and the audit log page."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from decimal import Decimal

import factories as f
import pytest
from web_support import add_users, login, make_app

from ivr.ledger import audit, eligibility
from ivr.ledger.models import Account

pytestmark = pytest.mark.usefixtures("fast_hashes")

DAY = date(2026, 11, 23)


@pytest.fixture
def ledger(db):
    north = [f.account(name=f"North {i}", district="North", debt=str(200 + i * 100)) for i in range(3)]
    center = f.account(name="Center owes", district="Center", debt="900.00")
    dnc = f.account(name="Asked not to be called", district="Center", debt="700.00")
    Account.update(do_not_call=True).where(Account.id == dnc.id).execute()
    small = f.account(name="Owes little", district="Center", debt="20.00")
    return north, center, dnc, small


def test_listing_filters_and_pages(cfg, ledger):
    north, center, dnc, small = ledger
    everyone = eligibility.listing(cfg, DAY)
    assert everyone.total == 4 and {r.name for r in everyone.rows} == {"North 0", "North 1", "North 2",
                                                                         "Center owes"}
    assert [r.name for r in eligibility.listing(cfg, DAY, district="North").rows] == ["North 0", "North 1",
                                                                                      "North 2"]
    page2 = eligibility.listing(cfg, DAY, offset=2, limit=2)
    assert page2.total == 4 and len(page2.rows) == 2
    rich = eligibility.listing(cfg, DAY, amount_min=Decimal("350"), amount_max=Decimal("800"))
    assert [r.name for r in rich.rows] == ["North 2"]
    excluded = eligibility.listing(cfg, DAY, excluded=True)
    assert [r.name for r in excluded.rows] == ["Asked not to be called", "Owes little"]
    assert [r.name for r in eligibility.listing(cfg, DAY, excluded=True, reason="do-not-call").rows] == [
        "Asked not to be called"]
    assert eligibility.districts() == ["Center", "North"]


def test_eligible_page_for_managers_only(client, ledger):
    login(client, "olga")
    assert client.get("/eligible").status_code == 403
    login(client, "max")
    html = client.get(f"/eligible?day={DAY}&district=North").get_data(as_text=True)
    assert "North 1" in html and "Center owes" not in html
    html = client.get(f"/eligible?day={DAY}&list=excluded").get_data(as_text=True)
    assert "Asked not to be called" in html and "do-not-call" in html and "North 1" not in html
    html = client.get(f"/eligible?day={DAY}&min=abc").get_data(as_text=True)
    assert "&#39;abc&#39; is not an amount" in html


def test_reports_page_pages_and_searches_the_person_table(client, db):
    camp = f.campaign(DAY, eligible_count=60)
    for i in range(60):
        acc = f.account(name=f"Person {i:02d}", district="North" if i % 2 else "South")
        f.enqueue(camp, acc, outcome="heard")
        f.attempt(camp, acc, datetime(2026, 11, 23, 16, 0), "heard")
    login(client, "max")
    html = client.get(f"/reports?day={DAY}").get_data(as_text=True)
    assert html.count('<td class="name">') == 50 and 'id="next"' in html
    html2 = client.get(f"/reports?day={DAY}&page=2").get_data(as_text=True)
    assert html2.count('<td class="name">') == 10 and 'id="next"' not in html2
    found = client.get(f"/reports?day={DAY}&q=person 07").get_data(as_text=True)
    assert found.count('<td class="name">') == 1 and "Person 07" in found
    assert client.get("/reports?day=2020-01-01").status_code == 404


def test_report_csv_download_is_bom_utf8_and_safe_for_spreadsheets(client, db):
    camp = f.campaign(DAY)
    acc = f.account(name="=HYPERLINK(\"http://x\")", district="North")
    f.enqueue(camp, acc, outcome="heard")
    f.attempt(camp, acc, datetime(2026, 11, 23, 16, 0), "heard")
    login(client, "max")
    resp = client.get(f"/reports/{DAY}.csv")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    text = resp.get_data(as_text=True)
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text[1:])))
    assert rows[0][:3] == ["date", "account", "name"]
    assert rows[1][2] == "'=HYPERLINK(\"http://x\")"
    login(client, "olga")
    assert client.get(f"/reports/{DAY}.csv").status_code == 403


def test_audit_page_lists_and_filters(client, db):
    audit.record("anna", "control.pause", "pause", {})
    audit.record("cli:root", "user.add", "ivan", {"role": "operator"})
    login(client, "anna")
    html = client.get("/audit").get_data(as_text=True)
    assert "control.pause" in html and "user.add" in html
    html = client.get("/audit?action=control.").get_data(as_text=True)
    assert "control.pause" in html and "user.add" not in html


def test_trends_over_evenings(client, db):
    from datetime import timedelta

    from ivr.report.trends import trends
    first, second = f.campaign(DAY, eligible_count=3), f.campaign(DAY + timedelta(days=1), eligible_count=2)
    a, b, c = f.account(), f.account(), f.account()
    f.attempt(first, a, datetime(2026, 11, 23, 16, 0), "heard")
    f.attempt(first, b, datetime(2026, 11, 23, 16, 5), "no_answer")
    f.attempt(first, b, datetime(2026, 11, 23, 17, 5), "early_hangup")
    f.attempt(first, c, datetime(2026, 11, 23, 16, 9), "busy")
    f.attempt(second, c, datetime(2026, 11, 24, 16, 9), "pay_now")
    f.payment(a, "100.00", DAY + timedelta(days=2))
    f.payment(a, "50.00", DAY + timedelta(days=9))  # outside the 7 days
    f.payment(c, "70.00", DAY + timedelta(days=3))  # c was not reached on the first evening
    rows = trends()
    assert [(e.day, e.eligible, e.called, e.reached, e.heard, e.paid_accounts, e.paid) for e in rows] == [
        (DAY + timedelta(days=1), 2, 1, 1, 1, 1, Decimal("70.00")),
        (DAY, 3, 3, 2, 1, 1, Decimal("100.00"))]
    login(client, "max")
    html = client.get(f"/reports?day={DAY}").get_data(as_text=True)
    assert 'id="trends"' in html and "100.00" in html


def test_report_csv_for_excel_uses_semicolons_and_a_decimal_comma(client, db):
    camp = f.campaign(DAY)
    acc = f.account(name="Шевченко Тарас", debt="1234.50")
    f.enqueue(camp, acc, outcome="heard")
    f.attempt(camp, acc, datetime(2026, 11, 23, 16, 0), "heard")
    login(client, "max")
    text = client.get(f"/reports/{DAY}.csv?excel=1").get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(text[1:]), delimiter=";"))
    head = rows[0]
    assert rows[1][head.index("name")] == "Шевченко Тарас"
    assert rows[1][head.index("debt")] == "1234,50"
    assert rows[1][head.index("paid_since_first_call")] == "0,00"


def test_report_csv_for_excel_keeps_account_numbers_as_text(client, db):
    camp = f.campaign(DAY)
    zero = f.account(number="000123", name="Zero")
    odd = f.account(number="=1+2", name="Odd")
    for acc in (zero, odd):
        f.enqueue(camp, acc, outcome="heard")
        f.attempt(camp, acc, datetime(2026, 11, 23, 16, 0), "heard")
    login(client, "max")
    text = client.get(f"/reports/{DAY}.csv?excel=1").get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(text[1:]), delimiter=";"))
    by_name = {r[2]: r for r in rows[1:]}
    assert by_name["Zero"][1] == '="000123"'  # Excel shows 000123, not 123
    assert by_name["Odd"][1] == "'=1+2"  # billing text is never turned into a formula
    assert by_name["Zero"][4].startswith('="+') and by_name["Zero"][4].endswith('"')
    plain = list(csv.reader(io.StringIO(client.get(f"/reports/{DAY}.csv").get_data(as_text=True)[1:])))
    assert {r[1] for r in plain[1:]} == {"000123", "'=1+2"}  # the plain CSV stays plain for machines


def test_a_long_report_build_does_not_hold_up_other_pages(cfg, db, monkeypatch):
    """As `ivr web` serves it, an evening's report is built in a thread: the Reports page says so at once, Tonight
    answers meanwhile, and once built the page shows it."""
    import threading

    from waiting import wait_until

    from ivr.report import data as report_data
    from ivr.report import stored
    add_users()
    app = make_app(cfg)
    app.config["IVR_OFFLOAD"] = True
    f.campaign(DAY)
    started, release = threading.Event(), threading.Event()
    real = report_data.build_report

    def slow_build(*args, **kwargs):
        started.set()
        assert release.wait(60), "never released"
        return real(*args, **kwargs)

    monkeypatch.setattr(report_data, "build_report", slow_build)
    reader, other = app.test_client(), app.test_client()
    login(reader, "max")
    login(other, "olga")
    assert 'id="preparing"' in reader.get(f"/reports?day={DAY}").get_data(as_text=True)
    wait_until(started.is_set, "the report build to start")
    assert other.get("/tonight").status_code == 200
    assert 'id="preparing"' in reader.get(f"/reports?day={DAY}").get_data(as_text=True)  # one build, still going
    release.set()
    wait_until(lambda: stored.building(DAY) is None, "the report build to end")
    assert 'id="generated"' in reader.get(f"/reports?day={DAY}").get_data(as_text=True)


def test_who_will_be_called_is_built_in_the_background_then_follows_changes(cfg, ledger):
    """As `ivr web` serves it, the first view of a day starts the stored verdicts' build in a thread and says so;
    once built, the lists come from them, and a change (a do-not-call entry) shows on the next view."""
    from waiting import wait_until

    from ivr.ledger import dnc, verdicts
    add_users()
    app = make_app(cfg)
    app.config["IVR_OFFLOAD"] = True
    client = app.test_client()
    login(client, "max")
    first = client.get(f"/eligible?day={DAY}").get_data(as_text=True)
    assert 'id="preparing"' in first and "North 1" not in first
    wait_until(lambda: verdicts.building(DAY) is None, "the background build")
    html = client.get(f"/eligible?day={DAY}").get_data(as_text=True)
    assert 'id="preparing"' not in html and "North 1" in html and 'id="judged"' in html
    north1 = Account.get(Account.name == "North 1")
    dnc.add(cfg, north1.number, "complaint", "test", kind="account")
    html = client.get(f"/eligible?day={DAY}").get_data(as_text=True)
    assert "North 1" not in html and "North 2" in html
    excluded = client.get(f"/eligible?day={DAY}&list=excluded&reason=complaint").get_data(as_text=True)
    assert "North 1" in excluded and "Asked not to be called" not in excluded
