"""One debtor's story (ivr.ledger.story, `ivr account`): found by account, phone or name; every call, payment,
callback and do-not-call entry; today's verdict with its reasons; the caps used; masked numbers; the JSON."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime
from decimal import Decimal

import factories as f
import pytest

from ivr.cli import main
from ivr.errors import IvrError
from ivr.ledger import dnc, story
from ivr.ledger.models import Balance, Phone

DAY = date(2026, 11, 23)
NOW = datetime(2026, 11, 23, 17, 30, tzinfo=UTC)  # 19:30 in Kyiv, inside the window


def at(h: int, m: int, day: int = 23) -> datetime:
    return datetime(2026, 11, day, h, m, tzinfo=UTC)


@pytest.fixture
def ledger(cfg, db):
    camp = f.campaign(DAY, status="running")
    a = f.account("A-100", name="Olena Kovalenko", district="Center", phone="+380501110001", debt="900.00",
                  as_of=date(2026, 11, 20))
    Phone.create(account=a, position=1, raw="050 111 00 02", e164="+380501110002", valid=True)
    Phone.create(account=a, position=2, raw="+380501110009", e164="+380501110009", valid=True)  # the family's
    Balance.create(account=a, as_of=date(2026, 10, 20), amount=Decimal("1200.00"), currency="UAH",
                   overdue_since=date(2026, 9, 1))
    f.payment(a, "300.00", date(2026, 11, 21), reference="PAY-1")
    family = f.account("A-200", name="Petro Kovalenko", phone="+380501110009", debt="150.00")
    f.enqueue(camp, a, state="waiting", attempts=2)
    f.attempt(camp, a, at(16, 5), "no_answer", hangup_cause="NO_ANSWER", e164="+380501110001")
    cb = f.attempt(camp, a, at(16, 40), "callback", e164="+380501110002", duration_s=42)
    f.callback(a, cb)
    # the family's shared call carried A-100's message too
    f.attempt(camp, family, at(17, 0), "heard", e164="+380501110009", accounts="A-200,A-100")
    f.attempt(None, a, at(15, 0), "already_paid", e164="+380671234567", node="test-call", kind="test")
    f.attempt(camp, f.account("A-1000"), at(17, 1), "heard", accounts="A-1000")  # "A-100" inside, not A-100's
    dnc.add(cfg, "+380501110001", "asked to stop on this number", "cli:anna", at=datetime(2026, 11, 22, 9))
    dnc.add(cfg, "A-100", "account", "cli:anna", kind="account", at=datetime(2026, 11, 21, 9))
    dnc.remove(cfg, "A-100", "cli:boris", "added by mistake", kind="account", at=datetime(2026, 11, 21, 10))
    return a


def test_find_by_account_phone_and_name(cfg, ledger):
    assert [a.number for a in story.find_accounts(cfg, account="A-100")] == ["A-100"]
    # national form; holders and accounts whose message rode on a call to it
    assert [a.number for a in story.find_accounts(cfg, phone="050 111 00 09")] == ["A-100", "A-200"]
    assert [a.number for a in story.find_accounts(cfg, phone="+380671234567")] == ["A-100"]  # the test call
    assert [a.number for a in story.find_accounts(cfg, name="kovalenko")] == ["A-100", "A-200"]
    assert story.find_accounts(cfg, account="NOPE") == []
    with pytest.raises(IvrError, match="exactly one"):
        story.find_accounts(cfg, account="A-100", name="x")
    with pytest.raises(IvrError, match="not a phone number"):
        story.find_accounts(cfg, phone="12")


def test_story_holds_every_fact(cfg, ledger):
    s = story.account_story(cfg, "A-100", now=NOW)
    assert (s.account, s.timezone, s.language) == ("A-100", "Europe/Kyiv", "uk")
    assert [(p.number, p.on_dnc_list) for p in s.phones] == [("+38050***0001", True), ("+38050***0002", False),
                                                             ("+38050***0009", False)]
    assert [(b.as_of, b.amount) for b in s.balances] == [(date(2026, 11, 20), Decimal("900.00")),
                                                         (date(2026, 10, 20), Decimal("1200.00"))]
    assert [(p.paid_on, p.amount, p.reference) for p in s.payments] == [(date(2026, 11, 21), Decimal("300.00"),
                                                                         "PAY-1")]
    assert [(c.kind, c.at.strftime("%H:%M"), c.number, c.outcome, c.keys, c.shared_with) for c in s.calls] == [
        ("test", "17:00", "+38067***4567", "already_paid", "3", []),
        ("campaign", "18:05", "+38050***0001", "no_answer", "", []),
        ("campaign", "18:40", "+38050***0002", "callback", "2", []),
        ("campaign", "19:00", "+38050***0009", "heard", "", ["A-200"])]
    assert s.calls[2].heard and s.calls[2].duration_s == 42 and s.calls[1].hangup_cause == "NO_ANSWER"
    (cb,) = s.callbacks
    assert cb.number == "+38050***0002" and cb.handled_at is None and cb.call == s.calls[2].uuid
    assert [(d.kind, d.state) for d in s.dnc] == [("account", "removed"), ("number", "in force")]
    assert s.dnc[0].removed_by == "cli:boris" and s.dnc[0].removed_reason == "added by mistake"
    (q,) = s.queue
    assert (q.campaign_day, q.state, q.attempts) == (DAY, "waiting", 2)
    # the latest balance (900 on the 20th) minus the payment after it (300 on the 21st)
    assert s.verdict.eligible and s.verdict.remaining == Decimal("600.00")
    assert any("owes 600.00 (balance 900.00 on 2026-11-20, paid 300.00 since)" in r for r in s.verdict.reasons)
    assert s.verdict.now[0].startswith("local date 2026-11-23 in Europe/Kyiv is a weekday")
    # caps: the test call is not counted; the shared call is (it rode on the debtor's message)
    assert (s.caps.attempts_today, s.caps.contacts_today, s.caps.campaign_attempts) == (3, 2, 2)


def test_verdict_names_every_reason_when_not_eligible(cfg, ledger):
    dnc.add(cfg, "+380501110002", "asked to stop", "debtor:key", at=datetime(2026, 11, 23, 17))
    dnc.add(cfg, "A-100", "court order", "cli:anna", at=datetime(2026, 11, 23, 17))
    s = story.account_story(cfg, "A-100", now=NOW)
    assert s.verdict.eligible is False
    assert s.verdict.excluded_by == ["account on the do-not-call list: court order (since 2026-11-23, by cli:anna)"]
    dnc.add(cfg, "+380501110009", "asked to stop", "debtor:key", at=datetime(2026, 11, 23, 17))
    s = story.account_story(cfg, "A-100", now=NOW)
    assert s.verdict.excluded_by[1] == (
        "every number on the do-not-call list (+38050***0001: asked to stop on this number (since 2026-11-22, "
        "by cli:anna); +38050***0002: asked to stop (since 2026-11-23, by debtor:key); +38050***0009: asked to "
        "stop (since 2026-11-23, by debtor:key))")
    assert [f"excluded: {e}" for e in s.verdict.excluded_by] == s.verdict.reasons[1:]


def test_json_is_plain_and_full_numbers_only_when_asked(cfg, ledger):
    masked = json.loads(json.dumps(story.account_story(cfg, "A-100", now=NOW).as_dict()))
    assert masked["account"] == "A-100" and masked["full_numbers"] is False
    assert masked["balances"][0] == {"as_of": "2026-11-20", "amount": "900.00", "currency": "UAH",
                                     "overdue_since": None}
    assert masked["calls"][1]["at"] == "2026-11-23T18:05:00+02:00" and masked["calls"][1]["number"] == "+38050***0001"
    assert masked["verdict"]["remaining"] == "600.00" and masked["verdict"]["eligible"] is True
    assert masked["caps"]["max_attempts_per_day"] == cfg.retry.max_attempts_per_day
    assert "+380501110001" not in json.dumps(masked)
    full = story.account_story(cfg, "A-100", now=NOW, full_numbers=True).as_dict()
    assert full["phones"][0]["number"] == "+380501110001" and full["dnc"][1]["value"] == "+380501110001"


def test_caps_follow_the_settings(cfg, ledger):
    tight = cfg.replace(retry=dataclasses.replace(cfg.retry, contact_caps="collection", max_attempts_per_day=3))
    s = story.account_story(tight, "A-100", now=NOW)
    assert s.caps.contact_limits == {"per_day": 1, "per_week": 2, "per_month": 8}
    assert any("cap" in line for line in s.verdict.now)  # no more calls today: the story says why


@pytest.fixture
def config_file(tmp_path, cfg):
    path = tmp_path / "config.yaml"
    path.write_text(f"database:\n  url: {cfg.database.url}\n", encoding="utf-8")
    return str(path)


def test_cli_account_text_and_json(config_file, ledger, capsys):
    assert main(["--config", config_file, "account", "A-100", "--date", "2026-11-23"]) == 0
    out = capsys.readouterr().out
    assert "Account A-100: Olena Kovalenko" in out and "Today (2026-11-23): ELIGIBLE, remaining debt 600.00" in out
    assert "[staff test call, counted nowhere]" in out and "+380501110001" not in out
    assert "number +38050***0001: asked to stop on this number" in out and "removed by cli:boris" in out
    assert main(["--config", config_file, "account", "--phone", "+380501110009", "--json", "--full-numbers"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["query"] == {"phone": "+380501110009"}
    assert [a["account"] for a in data["accounts"]] == ["A-100", "A-200"]
    assert data["accounts"][1]["phones"][0]["number"] == "+380501110009"
    assert main(["--config", config_file, "account", "NOPE"]) == 1
    assert "no account found for 'NOPE'" in capsys.readouterr().err
