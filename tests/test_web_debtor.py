"""A debtor's page and search (on ivr.ledger.story): numbers masked for operators, do-not-call add/remove audited."""

from __future__ import annotations

from datetime import datetime

import factories as f
import pytest
from web_support import login, post

from ivr.ledger.models import AuditEvent, DncEntry

pytestmark = pytest.mark.usefixtures("fast_hashes")


@pytest.fixture
def debtor(db):
    acc = f.account("ACC-501", name="Коваль <b>Ольга</b>", phone="+380671234567", debt="812.40")
    camp = f.campaign()
    f.attempt(camp, acc, datetime(2026, 11, 23, 16, 5), "callback")
    return acc


def test_search_by_phone_opens_the_debtors_page(client, debtor):
    login(client, "olga")
    resp = client.get("/accounts?by=phone&q=0671234567")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/accounts/ACC-501")
    html = client.get("/accounts/ACC-501").get_data(as_text=True)
    assert "Коваль &lt;b&gt;Ольга&lt;/b&gt;" in html
    assert "+380671234567" not in html and "***" in html  # operators see masked numbers here
    assert "812" in html


def test_managers_see_full_numbers(client, debtor):
    login(client, "max")
    assert "+380671234567" in client.get("/accounts/ACC-501").get_data(as_text=True)


def test_search_by_name_lists_matches_and_explains_bad_input(client, debtor):
    f.account("ACC-502", name="Коваль Петро")
    login(client, "max")
    html = client.get("/accounts?by=name&q=Коваль").get_data(as_text=True)
    assert "ACC-501" in html and "ACC-502" in html
    html = client.get("/accounts?by=phone&q=hello").get_data(as_text=True)
    assert 'id="error"' in html and "is not a phone number" in html
    assert client.get("/accounts/NOPE").status_code == 404


def test_an_operator_adds_a_number_to_the_do_not_call_list_but_cannot_remove_it(client, debtor):
    login(client, "olga")
    page = "/accounts/ACC-501"
    post(client, "/accounts/ACC-501/dnc", {"target": "phone:0", "reason": "asked on the phone", "action": "add"},
         page=page)
    entry = DncEntry.get()
    assert (entry.kind, entry.value, entry.added_by) == ("number", "+380671234567", "olga")
    assert AuditEvent.get(AuditEvent.action == "dnc.add").actor == "olga"
    resp = post(client, "/accounts/ACC-501/dnc", {"target": "phone:0", "action": "remove"}, page=page)
    assert resp.status_code == 403
    assert DncEntry.get().removed_at is None
    post(client, "/accounts/ACC-501/dnc", {"target": "phone:0", "reason": "again", "action": "add"}, page=page)
    assert "already on the do-not-call list" in client.get(page).get_data(as_text=True)


def test_a_manager_removes_an_entry_and_a_forged_target_is_refused(client, debtor):
    login(client, "max")
    page = "/accounts/ACC-501"
    post(client, "/accounts/ACC-501/dnc", {"target": "account", "reason": "court order", "action": "add"}, page=page)
    post(client, "/accounts/ACC-501/dnc", {"target": "account", "reason": "order lifted", "action": "remove"},
         page=page)
    entry = DncEntry.get()
    assert (entry.kind, entry.removed_by, entry.removed_reason) == ("account", "max", "order lifted")
    post(client, "/accounts/ACC-501/dnc", {"target": "phone:9", "reason": "x", "action": "add"}, page=page)
    assert "is not this account or one of its valid numbers" in client.get(page).get_data(as_text=True)
    assert DncEntry.select().count() == 1
