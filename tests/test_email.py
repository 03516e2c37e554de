"""E-mail reminders against a real local SMTP server (aiosmtpd) with STARTTLS and AUTH: multipart text+HTML, the
Message rows, bounces when the server refuses, a refused login, and no sending in clear when STARTTLS is missing."""

from __future__ import annotations

import dataclasses
import logging
import shutil
import socket
import subprocess
from datetime import UTC, date, datetime
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from campaign_support import acc

from ivr.channels import email as email_channel
from ivr.clock import ManualClock
from ivr.ledger.models import Account, Message

aiosmtpd = pytest.importorskip("aiosmtpd")
from aiosmtpd.controller import Controller  # noqa: E402
from aiosmtpd.smtp import AuthResult  # noqa: E402

DAY = date(2026, 11, 23)
NOON = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
PROMPTS = Path(__file__).resolve().parent.parent / "prompts"
needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")


class Recorder:
    def __init__(self) -> None:
        self.refuse: set[str] = set()
        self.messages: list[tuple[list[str], bytes]] = []
        self.logins: list[str] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return f"550 5.1.1 <{address}>: Recipient address rejected: no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((list(envelope.rcpt_tos), envelope.original_content))
        return "250 Message accepted for delivery"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == b"ivr" and auth_data.password == b"s3cret"
        if ok:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok, handled=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem"), "-days", "2",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    return d / "cert.pem", d / "key.pem"


def server(handler: Recorder, certs=None, **kw) -> Controller:
    import ssl

    ctx = None
    if certs is not None:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(certs[0]), str(certs[1]))
    c = Controller(handler, hostname="127.0.0.1", port=free_port(), tls_context=ctx,
                   require_starttls=ctx is not None, authenticator=handler.authenticate,
                   auth_require_tls=ctx is not None, **kw)
    c.start()
    return c


@pytest.fixture
def smtp(certs):
    handler = Recorder()
    c = server(handler, certs)
    yield handler, c.port, certs[0]
    c.stop()


def email_cfg(cfg, port, ca_file, **over):
    return cfg.replace(
        channels=dataclasses.replace(cfg.channels, enabled=True, order=["preferred", "voice", "letter"]),
        email=dataclasses.replace(cfg.email, host="127.0.0.1", port=port, from_address="billing@example.com",
                                  ca_file=str(ca_file), **over),
        speech=dataclasses.replace(cfg.speech, prompts_dir=str(PROMPTS)))


def email_debtor(address: str, lang: str = "en") -> Account:
    a = acc()
    Account.update(preferred_channel="email", email=address, language=lang).where(Account.id == a.id).execute()
    return Account.get_by_id(a.id)


@needs_openssl
def test_starttls_auth_multipart_and_a_bounce(db, cfg, smtp, monkeypatch, caplog):
    caplog.set_level(logging.INFO)  # whatever an earlier test left the root logger at
    handler, port, ca = smtp
    monkeypatch.setenv("IVR_SMTP_USER", "ivr")
    monkeypatch.setenv("IVR_SMTP_PASSWORD", "s3cret")
    cfg = email_cfg(cfg, port, ca)
    good = email_debtor("olena@example.com")
    gone = email_debtor("gone@example.com")
    email_debtor("")  # prefers e-mail but has no address: the next channel
    acc()  # prefers calls
    handler.refuse.add("gone@example.com")
    run = email_channel.send_due(cfg, DAY, ManualClock(NOON))
    assert (run.sent, run.bounced, run.failed) == (1, 1, 0)
    assert handler.logins == ["ivr"]  # one login, after STARTTLS
    rows = {m.account_id: m for m in Message.select()}
    assert rows[good.id].status == "sent" and rows[good.id].sent_at is not None
    assert rows[gone.id].status == "bounced" and rows[gone.id].error.startswith("550 5.1.1")
    assert len(rows) == 2
    (rcpts, raw), = handler.messages
    assert rcpts == ["olena@example.com"]
    msg = message_from_bytes(raw, policy=policy.default)
    assert msg.get_content_type() == "multipart/alternative"
    assert msg["Message-ID"] == rows[good.id].provider_id
    plain = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert good.number in plain and "500.00 UAH" in plain and "<p>" in html and good.number in html
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("ivr"))  # not the test server's
    assert "event=email_sent" in ours
    assert "s3cret" not in ours
    assert "olena@example.com" not in ours and "o***@example.com" in ours  # addresses masked in logs
    # the next run sends nothing again: one reached, one bounced (e-mail exhausted for them)
    assert email_channel.send_due(cfg, DAY, ManualClock(NOON)).sent == 0


@needs_openssl
def test_a_refused_login_is_a_clear_error_without_the_password(db, cfg, smtp, monkeypatch):
    handler, port, ca = smtp
    monkeypatch.setenv("IVR_SMTP_USER", "ivr")
    monkeypatch.setenv("IVR_SMTP_PASSWORD", "wrong-password")
    cfg = email_cfg(cfg, port, ca)
    email_debtor("olena@example.com")
    with pytest.raises(email_channel.EmailLinkError) as err:
        email_channel.send_due(cfg, DAY, ManualClock(NOON))
    assert "refused the login" in str(err.value) and "wrong-password" not in str(err.value)
    assert handler.messages == [] and not Message.select().exists()


def test_no_starttls_on_offer_means_nothing_is_sent(db, cfg, tmp_path):
    handler = Recorder()
    c = server(handler)  # no TLS context: the server offers no STARTTLS
    try:
        cfg = email_cfg(cfg, c.port, "")
        cfg = cfg.replace(email=dataclasses.replace(cfg.email, ca_file=""))
        email_debtor("olena@example.com")
        with pytest.raises(email_channel.EmailLinkError, match="does not offer STARTTLS"):
            email_channel.send_due(cfg, DAY, ManualClock(NOON))
        assert handler.messages == []
    finally:
        c.stop()


def test_html_is_escaped_and_links_clickable():
    out = email_channel.to_html("Dear <b>x</b> & co,\n\nPay: https://pay.example.com/?a=1&b=2")
    assert "&lt;b&gt;x&lt;/b&gt; &amp; co" in out
    assert '<a href="https://pay.example.com/?a=1&amp;b=2">' in out
    assert email_channel.masked_address("olena@example.com") == "o***@example.com"


def test_the_import_reads_an_optional_email_column_and_rejects_a_bad_one_by_line(db, cfg, tmp_path):
    from ivr.ledger import importer

    path = tmp_path / "accounts.csv"
    path.write_text("account,name,phone,balance,balance_date,preferred_channel,email\n"
                    "A1,Olena,+380501234567,100,2026-11-20,email,olena@example.com\n"
                    "A2,Petro,+380501234568,100,2026-11-20,email,not an address\n"
                    "A3,Iryna,+380501234569,100,2026-11-20,voice,\n", encoding="utf-8")
    report = importer.import_accounts(cfg, path, progress=False)
    assert [(r.line, "email" in r.reason) for r in report.rejected] == [(3, True)]
    got = {a.number: (a.email, a.preferred_channel) for a in Account.select()}
    assert got == {"A1": ("olena@example.com", "email"), "A3": ("", "voice")}


def test_a_line_break_in_the_subject_cannot_add_a_header(cfg):
    cfg = cfg.replace(email=dataclasses.replace(cfg.email, from_address="billing@example.com"))
    msg = email_channel.build(cfg, "olena@example.com", "Reminder\r\nBcc: all@example.com", "text")
    assert msg["Bcc"] is None and msg["Subject"] == "Reminder Bcc: all@example.com"
