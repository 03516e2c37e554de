"""The Import page: upload, preview with the column mapping, import with rejects by line, a held export confirmed
by a person (audited), and uploads named only by their checked name."""

from __future__ import annotations

import io
import re

import pytest
from web_support import add_users, csrf_token, login, make_app

from ivr.ledger.models import Account, AuditEvent, ImportRun

pytestmark = pytest.mark.usefixtures("fast_hashes")

HEADER = "account,name,phone,balance,balance_date\n"
N = 40


def export(debts: dict[str, str], extra: str = "") -> bytes:
    rows = [f"{acc},Name {acc},+38050{int(acc[2:]):07d},{amount},2026-11-20\n" for acc, amount in debts.items()]
    return (HEADER + "".join(rows) + extra).encode("utf-8")


def base() -> dict[str, str]:
    return {f"A-{i:03d}": f"{100 + i * 10}.00" for i in range(N)}


@pytest.fixture
def client(cfg, db):
    add_users()
    c = make_app(cfg).test_client()
    login(c, "max")
    return c


def upload(client, data: bytes, kind: str = "accounts", name: str = "accounts.csv"):
    token = csrf_token(client, "/import")
    return client.post("/import", data={"csrf_token": token, "kind": kind, "export": "full",
                                        "file": (io.BytesIO(data), name)}, content_type="multipart/form-data")


def run(client, html: str, confirm: bool = False):
    name = re.search(r'name="upload" value="([^"]+)"', html).group(1)
    data = {"csrf_token": csrf_token(client, "/import"), "upload": name, "export": "full"}
    if confirm:
        data["confirm"] = "1"
    return client.post("/import/run", data=data)


def test_preview_shows_the_mapping_and_first_rows_then_imports_with_rejects(client):
    resp = upload(client, export(base(), extra="A-999,Bad phone,not-a-number,12.00,2026-11-20\nA-998,No balance,"
                                               "+380501112233,abc,2026-11-20\n"))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and 'id="mapping"' in html and 'id="run-import"' in html
    assert "Name A-000" in html and "Name A-020" not in html  # the first rows only
    assert Account.select().count() == 0  # a preview imports nothing
    html = run(client, html).get_data(as_text=True)
    assert 'id="result"' in html and Account.select().count() >= N
    assert 'id="rejects"' in html and re.search(r'<td class="num">\d+</td><td>[^<]*abc', html)


def test_a_file_missing_a_required_column_cannot_be_imported(client):
    html = upload(client, b"account,name,balance\nA-1,X,1.00\n").get_data(as_text=True)
    assert 'id="run-import"' not in html and "phones" in html


def test_a_held_export_needs_a_person_to_confirm_it_and_is_audited(client):
    run(client, upload(client, export(base())).get_data(as_text=True))
    doubled = {a: f"{float(v) * 2:.2f}" for a, v in base().items()}
    html = run(client, upload(client, export(doubled), name="doubled.csv").get_data(as_text=True)).get_data(
        as_text=True)
    assert 'id="held"' in html and "debts risen" in html and 'id="confirm-import"' in html
    assert ImportRun.select().order_by(ImportRun.id.desc()).first().status == "held"
    html = run(client, html, confirm=True).get_data(as_text=True)
    assert 'id="result"' in html
    event = AuditEvent.get(AuditEvent.action == "import.confirm_anomaly")
    assert event.actor == "max"


def test_operators_may_not_import_and_uploads_are_named_only_by_their_checked_name(client, cfg):
    resp = client.post("/import/run", data={"csrf_token": csrf_token(client, "/import"),
                                            "upload": "../../config.yaml"})
    assert resp.status_code == 400 and "upload the file again" in resp.get_data(as_text=True)
    login(client, "olga")
    assert client.get("/import").status_code == 403
