"""The console's security: roles on every route, CSRF on every form, the login throttle, sessions, escaping."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from datetime import timedelta

import factories as f
import pytest
from web_support import PASSWORD, add_users, csrf_token, login, make_app, post

from ivr.admin import users
from ivr.campaign import ladder
from ivr.ledger.models import AuditEvent, LoginThrottle, WebUser, utcnow
from ivr.report.data import LABELS
from ivr.web import i18n

IVR = [sys.executable, "-c", "import sys; from ivr.cli import main; sys.exit(main())"]


pytestmark = pytest.mark.usefixtures("fast_hashes")  # the production argon2 costs ~0.1 s per hash, on purpose


@pytest.fixture
def app(cfg, db):
    add_users()
    return make_app(cfg)


@pytest.fixture
def client(app):
    return app.test_client()


def test_every_route_declares_who_may_use_it(app):
    undeclared = [rule.rule for rule in app.url_map.iter_rules()
                  if rule.endpoint != "static" and not hasattr(app.view_functions[rule.endpoint], "allowed_roles")]
    assert undeclared == []
    public = sorted(rule.rule for rule in app.url_map.iter_rules()
                    if rule.endpoint != "static" and app.view_functions[rule.endpoint].allowed_roles == ())
    assert public == ["/lang/<code>", "/login", "/logout"]


@pytest.mark.parametrize("path", ["/controls", "/users", "/audit"])
def test_an_operator_gets_403_on_controls_users_and_audit(client, path):
    assert login(client, "olga").status_code == 302
    assert client.get(path).status_code == 403
    if path != "/audit":  # a read-only page
        assert client.post(path, data={"csrf_token": csrf_token(client, "/tonight"), "action": "pause"}
                           ).status_code == 403


def test_an_operator_cannot_pause_by_posting_to_controls(client):
    login(client, "olga")
    resp = post(client, "/controls", {"action": "pause"}, page="/tonight")
    assert resp.status_code == 403
    from ivr.ledger.models import Control
    assert Control.get_or_none(Control.key == "command") is None


def test_a_manager_reads_the_audit_log_but_not_controls(client):
    login(client, "max")
    assert client.get("/audit").status_code == 200
    assert client.get("/controls").status_code == 403
    assert client.get("/users").status_code == 403


def test_pages_ask_for_a_login_first(client):
    for path in ("/", "/tonight", "/controls", "/callbacks", "/audit", "/users"):
        resp = client.get(path)
        assert resp.status_code == 302 and "/login" in resp.headers["Location"], path
    assert client.get("/tonight/panel", headers={"HX-Request": "true"}).status_code == 401


def test_a_forged_form_without_the_csrf_token_is_refused(client):
    login(client, "anna")
    resp = client.post("/controls", data={"action": "pause"})
    assert resp.status_code == 400
    resp = client.post("/controls", data={"action": "pause", "csrf_token": "forged"})
    assert resp.status_code == 400
    from ivr.ledger.models import Control
    assert Control.get_or_none(Control.key == "command") is None
    assert post(client, "/controls", {"action": "pause"}).status_code == 302
    assert Control.get(Control.key == "command").value == "pause"


def test_a_login_form_without_the_token_is_refused(client):
    resp = client.post("/login", data={"name": "anna", "password": PASSWORD})
    assert resp.status_code == 400
    assert client.get("/tonight").status_code == 302


def test_five_wrong_passwords_block_the_login_for_a_while(client, cfg):
    for _ in range(4):
        assert login(client, "anna", "wrong password!").status_code == 401
    resp = login(client, "anna", "wrong password!")
    assert resp.status_code == 429
    # now even the right password is refused until the block ends
    resp = login(client, "anna")
    assert resp.status_code == 429 and "try again after" in resp.get_data(as_text=True).lower() or \
        resp.status_code == 429
    assert client.get("/tonight").status_code == 302
    throttle = LoginThrottle.get(LoginThrottle.name == "anna")
    assert throttle.blocked_until - utcnow() > timedelta(minutes=cfg.web.login_block_minutes - 1)
    # when the block is over, the right password works and clears the count
    throttle.blocked_until = utcnow() - timedelta(seconds=1)
    throttle.save()
    assert login(client, "anna").status_code == 302
    assert LoginThrottle.get_or_none(LoginThrottle.name == "anna") is None


def test_unknown_names_are_throttled_the_same_way(client):
    for _ in range(4):
        assert login(client, "nobody", "whatever it is").status_code == 401
    assert login(client, "nobody", "whatever it is").status_code == 429


def test_the_right_password_resets_the_count(client):
    for _ in range(4):
        login(client, "olga", "wrong password!")
    assert login(client, "olga").status_code == 302
    client.post("/logout", data={"csrf_token": csrf_token(client, "/tonight")})
    for _ in range(4):
        assert login(client, "olga", "wrong password!").status_code == 401


def test_session_cookie_is_httponly_and_samesite(client):
    resp = login(client, "anna")
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # web.cookie_secure is false by default (plain HTTP on 127.0.0.1)


def test_a_session_ends_after_the_idle_time(app, client, cfg, monkeypatch):
    login(client, "anna")
    assert client.get("/tonight").status_code == 200
    later = time.time() + cfg.web.session_minutes * 60 + 5
    monkeypatch.setattr("ivr.web.app.time.time", lambda: later)
    resp = client.get("/tonight")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    ended = i18n.gettext("Your session has ended; please log in again.", "uk")
    assert ended in client.get("/login").get_data(as_text=True)


def test_disabling_a_user_ends_their_session(client):
    login(client, "olga")
    assert client.get("/callbacks").status_code == 200
    users.disable_user("olga", "cli:root")
    assert client.get("/callbacks").status_code == 302
    assert login(client, "olga").status_code == 401


def test_login_redirects_only_within_the_site(client):
    token = csrf_token(client)
    resp = client.post("/login?next=https://evil.example/x", data={"name": "anna", "password": PASSWORD,
                                                                   "csrf_token": token})
    assert resp.headers["Location"].endswith("/tonight")


def test_billing_names_are_html_escaped(client):
    acc = f.account(name='<script>alert("x")</script> & Co')
    camp = f.campaign()
    att = f.attempt(camp, acc, f.utc(__import__("datetime").datetime(2026, 11, 23, 17, 0)), "callback")
    f.callback(acc, att)
    login(client, "olga")
    html = client.get("/callbacks").get_data(as_text=True)
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Co" in html


def test_users_page_adds_and_disables_users_audited(client):
    login(client, "anna")
    resp = post(client, "/users", {"action": "add", "name": "ivan", "role": "operator",
                                   "password": "a long enough one"})
    assert resp.status_code == 302
    assert WebUser.get(WebUser.name == "ivan").role == "operator"
    resp = post(client, "/users", {"action": "add", "name": "x", "role": "boss", "password": "a long enough one"})
    assert resp.status_code == 400 and "user name" in resp.get_data(as_text=True)
    assert post(client, "/users", {"action": "disable", "name": "ivan"}).status_code == 302
    assert not WebUser.get(WebUser.name == "ivan").active
    actions = [(e.actor, e.action, e.target) for e in AuditEvent.select().order_by(AuditEvent.id)]
    assert ("anna", "user.add", "ivan") in actions and ("anna", "user.disable", "ivan") in actions


def test_passwords_are_stored_as_argon2_hashes(db):
    users.add_user("vera", "manager", PASSWORD, "test")
    stored = WebUser.get(WebUser.name == "vera").password_hash
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    with pytest.raises(users.UserError, match="at least 10 characters"):
        users.add_user("vika", "manager", "short", "test")
    with pytest.raises(users.UserError, match="role 'boss' is not allowed; allowed: admin, manager, operator"):
        users.add_user("vika", "boss", PASSWORD, "test")
    with pytest.raises(users.UserError, match="exists already"):
        users.add_user("vera", "manager", PASSWORD, "test")


def test_language_follows_locale_and_can_be_switched(client):
    login(client, "anna")
    html = client.get("/tonight").get_data(as_text=True)
    assert "Сьогодні ввечері" in html and '<html lang="uk">' in html
    client.get("/lang/bg", headers={"Referer": "http://localhost/tonight"})
    assert "Тази вечер" in client.get("/tonight").get_data(as_text=True)
    client.get("/lang/xx")
    assert "Тази вечер" in client.get("/tonight").get_data(as_text=True)


def test_every_text_the_templates_use_is_in_the_catalogue_in_every_language():
    from pathlib import Path
    root = Path(i18n.__file__).parent
    sources = [p.read_text(encoding="utf-8") for p in (root / "templates").glob("*.html")]
    sources += [p.read_text(encoding="utf-8") for p in root.glob("*.py")]
    used = set()
    for text in sources:
        used |= set(re.findall(r'_\("((?:[^"\\]|\\.)+)"', text))
    used |= {"admin", "manager", "operator", "waiting", "dialing", "done", "given_up", "reached", "promised",
             "paid", "not_reachable", "refused", *LABELS.values(), *ladder.LABELS.values(), "not reached", "Pause", "Resume", "Stop the evening", "Back to config.yaml values"}
    missing = sorted(t for t in used if t not in i18n.CATALOGUE)
    assert missing == []
    for text, row in i18n.CATALOGUE.items():
        assert len(row) == 3 and all(row), text
        assert set(re.findall(r"{(\w+)}", text)) == set().union(*(set(re.findall(r"{(\w+)}", r)) for r in row)), text


def test_cli_user_add_reads_the_password_from_stdin_and_audits(cfg, db, tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(f"database:\n  url: '{cfg.database.url}'\n", encoding="utf-8")
    run = subprocess.run([*IVR, "--config", str(path), "user", "add", "nina", "--role",
                          "manager", "--password-stdin"], input=PASSWORD + "\n", capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stderr
    assert users.authenticate("nina", PASSWORD, 5, 15).ok
    run = subprocess.run([*IVR, "--config", str(path), "user", "disable", "nina"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert not users.authenticate("nina", PASSWORD, 5, 15).ok
    events = [(e.action, e.target) for e in AuditEvent.select().order_by(AuditEvent.id)]
    assert events[-2:] == [("user.add", "nina"), ("user.disable", "nina")]
    assert AuditEvent.select().order_by(AuditEvent.id.desc()).first().actor.startswith("cli:")
    run = subprocess.run([*IVR, "--config", str(path), "user", "add", "zoe", "--role",
                          "chief", "--password-stdin"], input=PASSWORD + "\n", capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 2 and "invalid choice: 'chief'" in run.stderr
