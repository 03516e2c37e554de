"""Stored morning reports (ivr.report.stored): the stored figures and person table equal a fresh build, the
watermark tells when calls or payments came in since, the trends rows equal a count from the ledger, and the
console shows a stored report (built in the background the first time) while `ivr report` stores what it builds."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import factories as f
import pytest
from web_support import add_users, login, make_app

from ivr.cli import main
from ivr.report import codec, stored
from ivr.report.data import build_report
from ivr.report.trends import trends

DAY = date(2026, 11, 23)
pytestmark = pytest.mark.usefixtures("fast_hashes")


@pytest.fixture
def evening(db):
    camp = f.campaign(DAY, eligible_count=7)
    people = []
    for i, outcome in enumerate(["heard", "pay_now", "no_answer", "callback", "busy", "heard", ""]):
        acc = f.account(name=f"Person {i} Ковальчук", district="North" if i % 2 else "South")
        f.enqueue(camp, acc, outcome=outcome)
        if outcome:
            f.attempt(camp, acc, datetime(2026, 11, 23, 16, i), outcome)
            f.attempt(camp, acc, datetime(2026, 11, 23, 17, i), "no_answer")
        people.append(acc)
    f.payment(people[1], "120.00", DAY + timedelta(days=1))
    return camp, people


def _figures(data) -> dict:
    out = codec.dump(data)
    out["people"] = []
    return out


def test_the_stored_report_equals_a_fresh_build(cfg, evening):
    built = stored.build(cfg, DAY)
    report = stored.stored(DAY)
    assert report is not None and not report.stale and report.people == len(built.people) == 7
    assert _figures(report.data) == _figures(build_report(cfg, DAY, now=built.generated_at))
    assert len(report.charts) == 2 and all(c.startswith("data:image/png;base64,") for c in report.charts)
    rows, total = stored.people_page(report.campaign_id, "", 0, 50)
    assert total == 7
    assert [(r.account, r.name, r.district, r.number_masked, r.debt, r.final_label, r.paid) for r in rows] == [
        (p.account, p.name, p.district, p.number_masked, p.debt, p.final_label, p.paid) for p in built.people]
    assert [r.calls for r in rows] == [[(a.at_local.strftime("%H:%M"), a.label) for a in p.attempts]
                                       for p in built.people]
    page2, _ = stored.people_page(report.campaign_id, "", 5, 5)
    assert [r.account for r in page2] == [p.account for p in built.people[5:]]


def test_search_matches_any_case_and_takes_wildcards_literally(cfg, evening):
    stored.build(cfg, DAY)
    report = stored.stored(DAY)
    found, total = stored.people_page(report.campaign_id, "person 3 КОВАЛЬЧУК".lower(), 0, 50)
    assert total == 1 and found[0].name == "Person 3 Ковальчук"
    assert stored.people_page(report.campaign_id, "PERSON 3")[1] == 1
    assert stored.people_page(report.campaign_id, "north")[1] == 3
    assert stored.people_page(report.campaign_id, "%")[1] == 0 and stored.people_page(report.campaign_id, "_")[1] == 0


def test_new_calls_or_payments_make_it_out_of_date_until_rebuilt(cfg, evening):
    camp, people = evening
    stored.build(cfg, DAY)
    f.payment(people[0], "50.00", DAY + timedelta(days=2))
    assert stored.stored(DAY).stale
    stored.build(cfg, DAY)
    report = stored.stored(DAY)
    assert not report.stale
    rows, _ = stored.people_page(report.campaign_id, people[0].name.lower())
    assert rows[0].paid == 50
    f.attempt(camp, people[6], datetime(2026, 11, 23, 18, 0), "heard")
    assert stored.stored(DAY).stale


def test_the_trends_rows_equal_a_count_from_the_ledger(cfg, evening):
    f.campaign(DAY - timedelta(days=1), eligible_count=0)
    stored.build(cfg, DAY)
    assert stored.evenings() == trends()
    f.payment(evening[1][0], "75.00", DAY + timedelta(days=3))  # the stored row is out of date: counted again
    assert stored.evenings() == trends()


def test_the_reports_page_builds_in_the_background_then_shows_the_stored_report(cfg, evening):
    from waiting import wait_until
    add_users()
    app = make_app(cfg)
    app.config["IVR_OFFLOAD"] = True
    client = app.test_client()
    login(client, "max")
    html = client.get(f"/reports?day={DAY}").get_data(as_text=True)
    assert 'id="preparing"' in html
    wait_until(lambda: stored.building(DAY) is None, "the background report build")
    html = client.get(f"/reports?day={DAY}").get_data(as_text=True)
    assert 'id="generated"' in html and 'id="stale"' not in html and "Person 3" in html
    assert client.get(f"/reports?day={DAY}&q=person 3").get_data(as_text=True).count('<td class="name">') == 1
    f.payment(evening[1][2], "10.00", DAY + timedelta(days=1))
    html = client.get(f"/reports?day={DAY}").get_data(as_text=True)
    assert 'id="stale"' in html and "Person 3" in html  # the stored one meanwhile, said to be out of date
    wait_until(lambda: stored.building(DAY) is None, "the background rebuild")
    assert 'id="stale"' not in client.get(f"/reports?day={DAY}").get_data(as_text=True)


def test_ivr_report_stores_what_it_builds(cfg, evening, tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(f"database:\n  url: '{cfg.database.url}'\nreport:\n  output_dir: '{tmp_path / 'reports'}'\n",
                    encoding="utf-8")
    assert main(["--config", str(path), "report", "--date", DAY.isoformat(), "--no-store"]) == 0
    assert stored.stored(DAY) is None
    assert main(["--config", str(path), "report", "--date", DAY.isoformat()]) == 0
    report = stored.stored(DAY)
    assert report is not None and not report.stale and report.people == 7


def test_search_after_a_deleted_evening_finds_only_what_matches(cfg, evening):
    """The person table's search index is kept by the store itself: an evening deleted with its rows may leave
    index entries behind, which must never make another evening's row match."""
    stored.build(cfg, DAY)
    evening[0].delete_instance(recursive=True)
    camp = f.campaign(DAY + timedelta(days=1), eligible_count=1)
    acc = f.account(name="Nobody Alike", district="East")
    f.enqueue(camp, acc, outcome="heard")
    stored.build(cfg, DAY + timedelta(days=1))
    report = stored.stored(DAY + timedelta(days=1))
    assert stored.people_page(report.campaign_id, "person 3")[1] == 0
    assert stored.people_page(report.campaign_id, "alike")[1] == 1


def test_a_person_called_without_a_queue_entry_is_in_the_report(cfg, evening):
    camp, _people = evening
    acc = f.account(name="Walk In")
    f.attempt(camp, acc, datetime(2026, 11, 23, 18, 0), "heard")  # its queue entry removed by hand
    people = {p.name: p for p in build_report(cfg, DAY).people}
    assert len(people) == 8 and people["Walk In"].queue_state == "" and people["Walk In"].heard
