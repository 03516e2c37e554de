"""The callback worklist: open requests by district oldest first, take, results, a second call, closed by a person."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import factories as f
import pytest
from web_support import add_users, login, make_app, post

from ivr.ledger import callbacks
from ivr.ledger.callbacks import CallbackError
from ivr.ledger.models import AuditEvent, CallbackRequest, utcnow

pytestmark = pytest.mark.usefixtures("fast_hashes")


def request_for(name: str, district: str, at: datetime, phone: str = "+380501112233"):
    acc = f.account(name=name, district=district, phone=phone)
    req = f.callback(acc, None, at=at)
    req.e164 = phone  # the number the debtor called from
    req.save()
    return acc, req


@pytest.fixture
def three(db):
    a = request_for("Late North", "North", datetime(2026, 11, 23, 18, 30))
    b = request_for("Early North", "North", datetime(2026, 11, 23, 17, 10), phone="+380501112244")
    c = request_for("Center one", "Center", datetime(2026, 11, 23, 19, 0))
    return a, b, c


def test_open_requests_by_district_oldest_first_with_full_numbers(three):
    items = callbacks.worklist()
    assert [(i.district, i.name) for i in items] == [("Center", "Center one"), ("North", "Early North"),
                                                     ("North", "Late North")]
    assert items[1].number == "+380501112244"
    assert [i.name for i in callbacks.worklist("North")] == ["Early North", "Late North"]
    assert callbacks.districts() == ["Center", "North"]


def test_the_list_shows_whether_the_account_paid_since(three):
    (acc, req), _, _ = three
    f.payment(acc, "120.50", date(2026, 11, 24))
    f.payment(acc, "999.00", date(2026, 11, 1))  # before the request: not "since"
    item = callbacks.get(req.id)
    assert item.paid_since == pytest.approx(120.5)
    assert item.debt == pytest.approx(500)


def test_take_then_another_operator_is_refused(three):
    _, (_, req), _ = three
    callbacks.take(req.id, "olga")
    with pytest.raises(CallbackError, match="taken by olga"):
        callbacks.take(req.id, "petro")
    with pytest.raises(CallbackError, match="taken by olga"):
        callbacks.record(req.id, "petro", "reached")
    callbacks.release(req.id, "olga")
    callbacks.take(req.id, "petro")
    assert CallbackRequest.get_by_id(req.id).taken_by == "petro"


def test_results_are_kept_as_history_and_a_person_closes(three):
    _, (_, req), _ = three
    now = utcnow()
    callbacks.record(req.id, "olga", "not_reachable", next_call_at=now + timedelta(hours=2), now=now)
    assert CallbackRequest.get_by_id(req.id).handled_at is None  # still open: a second call is planned
    callbacks.record(req.id, "olga", "promised", promised_on=now.date() + timedelta(days=5), note="pays Friday",
                     close=True, now=now + timedelta(minutes=1))
    row = CallbackRequest.get_by_id(req.id)
    assert (row.closed_by, row.result, row.promised_on) == ("olga", "promised", now.date() + timedelta(days=5))
    assert row.handled_at is not None
    assert [(n.result, n.closed) for n in callbacks.history(req.id)] == [("not_reachable", False),
                                                                         ("promised", True)]
    assert req.id not in [i.id for i in callbacks.worklist()]
    assert AuditEvent.get(AuditEvent.action == "callback.close").actor == "olga"
    with pytest.raises(CallbackError, match="closed by olga already"):
        callbacks.record(req.id, "olga", "paid", close=True)


@pytest.mark.parametrize("kwargs, wanted", [
    ({"result": "maybe"}, "result 'maybe' is not allowed; allowed: reached, promised, paid, not_reachable, refused"),
    ({"result": "promised"}, "the date the debtor promised to pay by is missing"),
    ({"result": "promised", "promised_on": date(2020, 1, 1)}, "promised to pay by 2020-01-01: that date is in the past"),
    ({"result": "not_reachable", "next_call_at": datetime(2020, 1, 1, 10)}, "that time is in the past"),
    ({"result": "reached", "close": True, "next_call_at": utcnow() + timedelta(days=1)},
     "a request with a second call planned stays open"),
])
def test_bad_results_are_refused_with_a_reason(three, kwargs, wanted):
    _, (_, req), _ = three
    kwargs = dict(kwargs)  # the parameter is shared by the sqlite and pg runs: never change it
    result = kwargs.pop("result")
    with pytest.raises(CallbackError, match=wanted.replace("(", r"\(").replace(")", r"\)")):
        callbacks.record(req.id, "olga", result, **kwargs)
    assert callbacks.history(req.id) == []


def test_worklist_page_take_record_and_close(cfg, db, three):
    add_users()
    client = make_app(cfg).test_client()
    _, (_, req), _ = three
    login(client, "olga")
    html = client.get("/callbacks").get_data(as_text=True)
    assert "+380501112244" in html and "Early North" in html
    resp = post(client, f"/callbacks/{req.id}/take", {}, page="/callbacks")
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/callbacks/{req.id}")
    page = f"/callbacks/{req.id}"
    resp = post(client, f"/callbacks/{req.id}/result", {"result": "paid", "note": "paid at the bank", "close": "1"},
                page=page)
    assert resp.status_code == 302
    row = CallbackRequest.get_by_id(req.id)
    assert (row.closed_by, row.result) == ("olga", "paid")
    assert "Early North" not in client.get("/callbacks").get_data(as_text=True)


def test_worklist_page_refuses_taking_someone_elses_request(cfg, db, three):
    add_users()
    client = make_app(cfg).test_client()
    _, (_, req), _ = three
    callbacks.take(req.id, "olga")
    login(client, "petro")
    post(client, f"/callbacks/{req.id}/take", {}, page="/callbacks")
    assert "taken by olga" in client.get("/callbacks").get_data(as_text=True)
    assert CallbackRequest.get_by_id(req.id).taken_by == "olga"


def test_the_worklist_pages(cfg, db):
    for i in range(105):
        request_for(f"Person {i:03d}", "East", datetime(2026, 11, 23, 17, 0) + timedelta(seconds=i))
    add_users()
    client = make_app(cfg).test_client()
    login(client, "olga")
    html = client.get("/callbacks?district=East").get_data(as_text=True)
    assert 'id="open-count">105<' in html and html.count('class="take"') == 100 and "Person 000" in html
    html = client.get("/callbacks?district=East&page=2").get_data(as_text=True)
    assert html.count('class="take"') == 5 and "Person 104" in html and "Person 000" not in html
    assert callbacks.count_open("East") == 105 and callbacks.count_open("Nowhere") == 0


def test_a_request_without_a_district_of_its_own_goes_by_its_accounts(three):
    """Requests the dialer files carry their district and are paged off the open-requests index; one without
    (an older row) goes by its account's district, and the lists then join: the same order, counts, districts."""
    filed = ([(i.district, i.name) for i in callbacks.worklist()], callbacks.count_open("North"),
             callbacks.districts())
    (_acc, req), _, _ = three
    CallbackRequest.update(district="").where(CallbackRequest.id == req.id).execute()
    assert callbacks._unfiled_open()
    assert ([(i.district, i.name) for i in callbacks.worklist()], callbacks.count_open("North"),
            callbacks.districts()) == filed
    assert [i.name for i in callbacks.worklist("North", limit=1, offset=1)] == ["Late North"]
