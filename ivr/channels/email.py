"""E-mail reminders over SMTP (stdlib smtplib): the message, the link to the server, the Message rows, bounces.

`send_due(cfg, day, clock)` is what `ivr email send` runs: the evening's accounts to contact (the hold-out group
left out, ivr.channels.sms.prepare_evening) whose current channel is e-mail and who have an address
(Account.email, from the import's `email` column), under the caps. Each message is multipart/alternative: the
plain text of `email_body` and an HTML version of the same paragraphs (links made clickable), subject
`email_subject` (prompts/<lang>/channels.yaml), a Message-ID of our own kept as `provider_id`.

The link: `email.security` starttls (STARTTLS required: the server must offer it), tls (SMTPS) or none (a local
relay); certificates are verified (`email.ca_file` adds a CA). User and password come only from the environment
(IVR_SMTP_USER, IVR_SMTP_PASSWORD) and are never logged.

Bounces: when the server refuses the recipient, the sender or the message, the Message is 'bounced' (5xx) or
'failed' (4xx: temporary) with the server's code and words; other channels then take their turn. Bounces that
arrive later as mail (DSN) are not read: that needs a mailbox, outside this module.
"""

from __future__ import annotations

import html
import logging
import os
import re
import smtplib
import ssl
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from email.message import EmailMessage
from email.utils import formataddr, make_msgid

from ivr.campaign.windows import aware_utc
from ivr.channels import rules, texts
from ivr.clock import Clock
from ivr.config import Config, EmailConfig
from ivr.errors import IvrError
from ivr.ledger.models import Message

log = logging.getLogger(__name__)

USER_ENV, PASSWORD_ENV = "IVR_SMTP_USER", "IVR_SMTP_PASSWORD"
_URL = re.compile(r"https?://[^\s<>\"]+")


class EmailLinkError(IvrError):
    pass


@dataclass
class EmailRun:
    considered: int = 0
    sent: int = 0
    bounced: int = 0
    failed: int = 0
    skipped: Counter = field(default_factory=Counter)


def masked_address(address: str) -> str:
    """j***@example.com: addresses in logs are masked like phone numbers."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


def to_html(text: str) -> str:
    """The plain text's paragraphs as HTML, escaped, with links made clickable."""
    def para(p: str) -> str:
        out, pos = [], 0
        for m in _URL.finditer(p):
            out.append(html.escape(p[pos:m.start()]))
            url = html.escape(m.group(0))
            out.append(f'<a href="{url}">{url}</a>')
            pos = m.end()
        out.append(html.escape(p[pos:]))
        return "<p>" + "".join(out).replace("\n", "<br>") + "</p>"

    body = "\n".join(para(p) for p in text.split("\n\n") if p.strip())
    return f"<!DOCTYPE html>\n<html><body>\n{body}\n</body></html>\n"


def build(cfg: Config, to: str, subject: str, text: str) -> EmailMessage:
    e = cfg.email
    msg = EmailMessage()
    msg["From"] = formataddr((e.from_name or cfg.company.name, e.from_address))
    msg["To"] = to
    msg["Subject"] = " ".join(subject.split())  # a line break from billing data must not start a new header
    if e.reply_to:
        msg["Reply-To"] = e.reply_to
    msg["Message-ID"] = make_msgid(domain=e.from_address.partition("@")[2] or None)
    msg.set_content(text)
    msg.add_alternative(to_html(text), subtype="html")
    return msg


class SmtpLink:
    def __init__(self, cfg: EmailConfig, *, sleep: Callable[[float], None] = time.sleep,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        if not cfg.host:
            raise EmailLinkError("e-mail is not set up: email.host is empty in config.yaml")
        self.cfg = cfg
        self.smtp: smtplib.SMTP | None = None
        self.sleep, self.monotonic = sleep, monotonic
        self._next = 0.0

    def _context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        if self.cfg.ca_file:
            ctx.load_verify_locations(cafile=self.cfg.ca_file)
        return ctx

    def open(self) -> SmtpLink:
        c = self.cfg
        try:
            if c.security == "tls":
                smtp = smtplib.SMTP_SSL(c.host, c.port, timeout=c.timeout_seconds, context=self._context())
            else:
                smtp = smtplib.SMTP(c.host, c.port, timeout=c.timeout_seconds)
            smtp.ehlo()
            if c.security == "starttls":
                if not smtp.has_extn("starttls"):
                    smtp.close()
                    raise EmailLinkError(f"the SMTP server {c.host}:{c.port} does not offer STARTTLS "
                                         "(email.security is starttls: nothing is sent in clear)")
                smtp.starttls(context=self._context())
                smtp.ehlo()
            user = os.environ.get(USER_ENV, "")
            if user:
                smtp.login(user, os.environ.get(PASSWORD_ENV, ""))
        except smtplib.SMTPAuthenticationError as exc:
            raise EmailLinkError(f"the SMTP server {c.host}:{c.port} refused the login of {USER_ENV} "
                                 f"({exc.smtp_code})") from None
        except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
            raise EmailLinkError(f"cannot use the SMTP server {c.host}:{c.port}: {exc}") from None
        self.smtp = smtp
        log.info("event=smtp_connected host=%s port=%d security=%s auth=%s", c.host, c.port, c.security,
                 "yes" if os.environ.get(USER_ENV) else "no")
        return self

    def close(self) -> None:
        if self.smtp is not None:
            try:
                self.smtp.quit()
            except (smtplib.SMTPException, OSError):
                self.smtp.close()
            self.smtp = None

    def send(self, msg: EmailMessage) -> tuple[str, str]:
        """('sent', '') or ('bounced' | 'failed', the server's code and words)."""
        now = self.monotonic()
        if self._next > now:
            self.sleep(self._next - now)
        self._next = max(now, self._next) + 1.0 / self.cfg.max_per_second
        assert self.smtp is not None
        try:
            refused = self.smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            code, words = next(iter(exc.recipients.values()))
            return _refusal(code, words)
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            return _refusal(exc.smtp_code, exc.smtp_error)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            raise EmailLinkError(f"the SMTP server dropped the connection: {exc}") from None
        if refused:
            code, words = next(iter(refused.values()))
            return _refusal(code, words)
        return "sent", ""


def _refusal(code: int, words: bytes | str) -> tuple[str, str]:
    text = words.decode("utf-8", "replace") if isinstance(words, bytes) else str(words)
    return ("bounced" if 500 <= code < 600 else "failed"), f"{code} {text}"[:400]


def send_due(cfg: Config, day: date, clock: Clock, *, limit: int | None = None,
             progress: Callable[[int, int], None] | None = None) -> EmailRun:
    """Send the e-mail reminders due now (see the module docstring)."""
    from ivr.channels.sms import prepare_evening

    if not cfg.channels.enabled:
        raise IvrError("channels.enabled is false in config.yaml: e-mail reminders are off")
    if not cfg.email.host:
        raise IvrError("e-mail is not set up: email.host is empty in config.yaml")
    run = EmailRun()
    now_aware = aware_utc(clock.now())
    camp, accounts = prepare_evening(cfg, day, clock)
    due, skipped = rules.due(cfg, "email", accounts, now_aware, lambda a: a.email)
    run.considered, run.skipped = len(accounts), skipped
    due = due[:limit] if limit is not None else due
    if not due:
        return run
    templates = texts.loader(cfg)
    link = SmtpLink(cfg.email).open()
    try:
        for n, (acc, address) in enumerate(due, start=1):
            lang = acc.language or cfg.locale.language
            tpls = templates(lang)
            f = texts.facts_for(cfg, acc, day)
            msg = build(cfg, address, texts.render(tpls["email_subject"], f), texts.render(tpls["email_body"], f))
            now = _naive(clock.now())
            row = Message.create(account=acc, campaign=camp, channel="email", kind="reminder", language=lang,
                                 address=address, status="queued", provider_id=msg["Message-ID"],
                                 created_at=now)
            try:
                status, error = link.send(msg)
            except EmailLinkError as exc:
                Message.update(status="failed", error=str(exc)[:400]).where(Message.id == row.id).execute()
                raise
            Message.update(status=status, error=error, sent_at=now if status == "sent" else None).where(
                Message.id == row.id).execute()
            if status == "sent":
                run.sent += 1
            elif status == "bounced":
                run.bounced += 1
            else:
                run.failed += 1
            log.info("event=email_%s account=%s to=%s %s", status, acc.number, masked_address(address),
                     f"error={error!r}" if error else "")
            if progress:
                progress(n, len(due))
    finally:
        link.close()
    return run


def _naive(at: datetime) -> datetime:
    return aware_utc(at).replace(tzinfo=None)
