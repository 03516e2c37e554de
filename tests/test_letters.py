"""Letters: only for debtors nobody could reach by the channels before 'letter' (or who prefer letters), one PDF
per district with a page each and a Cyrillic font embedded, a CSV for the mail house, never printed twice."""

from __future__ import annotations

import csv
import dataclasses
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import factories as f
import pytest
from campaign_support import acc

from ivr.channels import letters, texts
from ivr.clock import ManualClock
from ivr.ledger.models import Account, Message

DAY = date(2026, 11, 23)
NOON = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
PROMPTS = Path(__file__).resolve().parent.parent / "prompts"
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
needs_font = pytest.mark.skipif(not FONT.is_file(), reason="fonts-dejavu-core not installed (scripts/setup.sh)")


def letter_cfg(cfg):
    return cfg.replace(channels=dataclasses.replace(cfg.channels, enabled=True),
                       speech=dataclasses.replace(cfg.speech, prompts_dir=str(PROMPTS)))


def debtor(district: str, address: str, preferred: str = "voice") -> Account:
    a = acc()
    Account.update(district=district, address=address, preferred_channel=preferred,
                   name="Олена Коваленко").where(Account.id == a.id).execute()
    return Account.get_by_id(a.id)


def pages(pdf: Path) -> int:
    return len(re.findall(rb"/Type /Page[^s]", pdf.read_bytes()))


@needs_font
def test_letters_only_for_the_unreached_one_pdf_per_district_and_a_csv(db, cfg, tmp_path):
    cfg = letter_cfg(cfg)
    three_days_ago = NOON - timedelta(days=3)
    unreached = debtor("Північ", "вул. Шевченка 1, кв. 2, Київ, 01001")
    f.attempt(None, unreached, three_days_ago, "no_answer", hangup_cause="NO_ANSWER")
    reached = debtor("Північ", "вул. Франка 3, Київ")
    f.attempt(None, reached, three_days_ago, "heard")
    still_calling = debtor("Північ", "вул. Лесі Українки 5, Київ")  # first call yesterday: voice still tried
    f.attempt(None, still_calling, NOON - timedelta(days=1), "no_answer", hangup_cause="NO_ANSWER")
    by_post = debtor("Південь", "вул. Садова 7, Одеса", preferred="letter")
    no_address = debtor("Південь", "", preferred="letter")
    run = letters.print_due(cfg, DAY, ManualClock(NOON), out_dir=tmp_path / "out")
    assert run.printed == 2
    assert {p.name.rsplit("-", 1)[1] for p in run.files} == {"Північ.pdf", "Південь.pdf"}
    assert all(pages(p) == 1 for p in run.files)
    assert all(b"DejaVuSans" in p.read_bytes() for p in run.files)  # the Cyrillic font is embedded
    rows = list(csv.DictReader(run.csv.open(encoding="utf-8-sig")))
    assert {r["account"] for r in rows} == {unreached.number, by_post.number}
    assert {r["address"] for r in rows} == {unreached.address, by_post.address}
    printed = {m.account_id: m for m in Message.select().where(Message.channel == "letter")}
    assert set(printed) == {unreached.id, by_post.id}
    assert all(m.status == "printed" and m.provider_id.endswith("#1") for m in printed.values())
    assert run.skipped.get("no letter address (or on the do-not-call list)") == 1
    assert reached.id not in printed and still_calling.id not in printed and no_address.id not in printed
    # the next run the same day prints nobody again
    assert letters.print_due(cfg, DAY, ManualClock(NOON + timedelta(minutes=1)), out_dir=tmp_path / "out").printed == 0


def test_a_page_says_who_where_and_the_letter_text(db, cfg):
    cfg = letter_cfg(cfg)
    a = debtor("Північ", "вул. Шевченка 1, кв. 2, Київ, 01001")
    body = texts.render(texts.load(PROMPTS, "uk")["letter"], texts.facts_for(cfg, a, DAY))
    page = letters.page_for(cfg, a, DAY, body)
    assert page.addressee == ["Олена Коваленко", "вул. Шевченка 1", "кв. 2", "Київ", "01001", f"# {a.number}"]
    assert page.date_line == "23.11.2026"
    assert any("500,00 UAH" in p for p in page.body) and page.body[0].startswith("Шановний(а) Олена Коваленко")


def test_a_missing_font_is_a_clear_error(db, cfg, tmp_path):
    from ivr.errors import IvrError

    with pytest.raises(IvrError, match="fonts-dejavu-core"):
        letters.register_fonts(str(tmp_path / "none.ttf"))
