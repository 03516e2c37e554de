"""The Messages page: the validation of `ivr prompts check` with problems by line, saving with history and audit,
and a WAV preview rendered for a real account."""

from __future__ import annotations

import dataclasses
import io
import shutil
import wave

import factories as f
import pytest
from web_support import add_users, login, make_app, post

from ivr.ledger.models import AuditEvent
from ivr.speech import editing
from ivr.speech.speech import REPO_PROMPTS

pytestmark = pytest.mark.usefixtures("fast_hashes")


@pytest.fixture
def tcfg(cfg, tmp_path):
    """Settings whose prompts folder is a copy (never the repository's own texts)."""
    shutil.copytree(REPO_PROMPTS, tmp_path / "prompts")
    return cfg.replace(speech=dataclasses.replace(cfg.speech, prompts_dir=str(tmp_path / "prompts")))


@pytest.fixture
def client(tcfg, db):
    add_users()
    return make_app(tcfg).test_client()


def test_check_reports_problems_with_their_lines(tcfg):
    text = editing.read_text(tcfg, "uk")
    assert editing.check_text(text, "uk") == []
    lines = text.splitlines()
    n = next(i for i, line in enumerate(lines) if line.startswith("greeting:"))
    lines[n] = lines[n].replace("{company}", "{compny}")
    problems = editing.check_text("\n".join(lines), "uk")
    assert any(p.line == n + 1 and "unknown placeholder {compny}" in p.text for p in problems), problems
    assert any(p.line == n + 1 and "missing placeholder {company}" in p.text for p in problems)
    assert editing.check_text("greeting: [\n", "uk")[0].text.startswith("messages.yaml line")


def test_save_keeps_history_and_is_audited(tcfg, db):
    before = editing.read_text(tcfg, "en")
    changed = before.replace('goodbye: "', 'goodbye: "Thank you again. ', 1)
    assert changed != before
    editing.save_text(tcfg, "en", changed, "anna")
    assert editing.read_text(tcfg, "en") == changed
    hist = editing.history(tcfg, "en")
    assert len(hist) == 1 and hist[0].actor == "anna"
    assert (editing.prompts_dir(tcfg) / "en" / "history" / hist[0].name).read_text(encoding="utf-8") == before
    assert AuditEvent.get(AuditEvent.action == "prompts.save").target == "en"
    with pytest.raises(editing.templates.TemplateError):
        editing.save_text(tcfg, "en", "greeting: {nope}\n", "anna")
    assert editing.read_text(tcfg, "en") == changed


def test_messages_page_shows_problems_next_to_lines_and_saves_nothing(client, tcfg):
    login(client, "max")
    before = editing.read_text(tcfg, "uk")
    bad = before.replace("{account}", "{acount}", 1)
    resp = post(client, "/messages", {"lang": "uk", "text": bad, "action": "save"}, page="/messages?lang=uk")
    assert resp.status_code == 400
    html = resp.get_data(as_text=True)
    assert 'class="bad"' in html and "unknown placeholder {acount}" in html
    assert editing.read_text(tcfg, "uk") == before
    resp = post(client, "/messages", {"lang": "uk", "text": before + "\n", "action": "save"},
                page="/messages?lang=uk")
    assert resp.status_code == 200 and 'id="saved"' in resp.get_data(as_text=True)


def test_operators_cannot_edit_messages(client):
    login(client, "olga")
    assert client.get("/messages").status_code == 403
    assert client.get("/messages/preview.wav?account=X&key=debt").status_code == 403


@pytest.mark.slow
def test_preview_renders_a_wav_for_a_real_account(client):
    f.account("ACC-77", name="Петренко Іван", debt="1021.50")
    login(client, "max")
    resp = client.get("/messages/preview.wav?account=ACC-77&key=call")
    assert resp.status_code == 200 and resp.mimetype == "audio/wav"
    with wave.open(io.BytesIO(resp.get_data()), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        assert w.getnframes() / 8000 > 3  # greeting, message and menu: several seconds of speech
    resp = client.get("/messages/preview.wav?account=NOPE&key=debt")
    assert resp.status_code == 404 and "no account 'NOPE'" in resp.get_data(as_text=True)


def test_outage_and_installment_texts_are_edited_checked_and_kept_apart(client, tcfg):
    """The kind files (outage.yaml, installment.yaml) on the same page: their own keys and placeholders, their
    own history; saving one never touches messages.yaml."""
    login(client, "max")
    messages_before = editing.read_text(tcfg, "en")
    outage = editing.read_text(tcfg, "en", "outage")
    assert "planned:" in outage and editing.check_text(outage, "en", "outage") == []
    bad = outage.replace("will affect {address}", "will affect {amount}", 1)
    resp = post(client, "/messages", {"lang": "en", "file": "outage", "text": bad, "action": "save"},
                page="/messages?lang=en&file=outage")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "outage.yaml line" in html and "unknown placeholder {amount}" in html
    changed = outage.replace("We apologise for the inconvenience.", "Sorry for the trouble.", 1)
    resp = post(client, "/messages", {"lang": "en", "file": "outage", "text": changed, "action": "save"},
                page="/messages?lang=en&file=outage")
    assert resp.status_code == 200 and 'id="saved"' in resp.get_data(as_text=True)
    assert editing.read_text(tcfg, "en", "outage") == changed
    assert editing.read_text(tcfg, "en") == messages_before
    assert [h.actor for h in editing.history(tcfg, "en", file="outage")] == ["max"]
    assert editing.history(tcfg, "en") == []
    assert AuditEvent.get(AuditEvent.action == "prompts.save").target == "en/outage"
    page = client.get("/messages?lang=en&file=installment").get_data(as_text=True)
    assert "reminder:" in page and 'value="installment"' in page
    with pytest.raises(editing.IvrError, match="not one of"):
        editing.read_text(tcfg, "en", "../../etc/passwd")
