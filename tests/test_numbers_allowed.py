"""Numbers allowed (issue 11, point 6): only `dialing.allowed_countries` (default: locale.country) and
`dialing.number_types` (default: mobile and fixed line, phonenumbers' own types) are dialled; refused numbers are
flagged with the reason at import, and a number already in the ledger is re-checked before every dial."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from campaign_support import acc

from ivr.campaign import rules
from ivr.campaign.queue import next_candidates, start_campaign
from ivr.cli import main
from ivr.clock import ManualClock
from ivr.config import ConfigError, parse_config
from ivr.ledger import importer, phones
from ivr.ledger.eligibility import check_account
from ivr.ledger.models import Account, Phone

DAY = date(2026, 11, 23)
OPEN = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)  # 18:00 in Kyiv, the window is open
HEADER = "account,name,phone,balance,balance_date\n"


def dialing(cfg, **changes):
    return cfg.replace(dialing=dataclasses.replace(cfg.dialing, **changes))


def stored(number: str) -> list[tuple[str, bool, str]]:
    a = Account.get(Account.number == number)
    return [(p.raw, p.valid, p.invalid_reason) for p in Phone.select().where(Phone.account == a)
            .order_by(Phone.position)]


def test_the_default_policy_is_the_home_country_mobile_and_fixed_line(cfg):
    policy = phones.dial_policy(cfg)
    assert policy == phones.DialPolicy(frozenset({"UA"}), frozenset({"mobile", "fixed_line"}))
    check = {raw: phones.apply_policy(phones.normalize(raw, "UA"), policy) for raw in (
        "050 123 45 67", "044 333 44 55", "+7 916 123-45-67", "0800 500 123", "+380 89 123 4567",
        "+359 88 812 3456")}
    assert check["050 123 45 67"].valid and check["050 123 45 67"].kind == "mobile"
    assert check["044 333 44 55"].valid and check["044 333 44 55"].kind == "fixed_line"
    assert check["+7 916 123-45-67"].reason == "a number of RU, not dialled (dialing.allowed_countries: UA)"
    assert check["+359 88 812 3456"].reason == "a number of BG, not dialled (dialing.allowed_countries: UA)"
    assert check["0800 500 123"].reason == ("a toll-free number, not dialled "
                                            "(dialing.number_types: fixed_line, mobile)")
    assert check["+380 89 123 4567"].reason.startswith("a VoIP number, not dialled")
    for r in check.values():
        assert r.valid == (r.e164 != "")


def test_fixed_line_or_mobile_counts_as_either(cfg):
    us = phones.DialPolicy(frozenset({"US"}), frozenset({"mobile"}))
    r = phones.normalize("+1 650 253 0000", "UA")
    assert r.kind == "fixed_line_or_mobile" and phones.apply_policy(r, us).valid
    toll_only = phones.DialPolicy(frozenset({"US"}), frozenset({"toll_free"}))
    assert not phones.apply_policy(r, toll_only).valid


def test_refused_numbers_are_flagged_at_import_with_the_reason_and_listed(cfg, db, tmp_path):
    path = tmp_path / "a.csv"
    path.write_text(HEADER + "F-1,Foreign,+7 916 123-45-67,500,2026-11-20\n"
                             "F-2,Free,0800 500 123;050 123 45 67,500,2026-11-20\n", encoding="utf-8")
    report = importer.import_accounts(cfg, path, progress=False)
    assert report.loaded == 2 and not report.rejected
    assert [(p.line, p.account, p.raw) for p in report.invalid_phones] == [(2, "F-1", "+7 916 123-45-67"),
                                                                          (3, "F-2", "0800 500 123")]
    assert stored("F-1") == [("+7 916 123-45-67", False,
                              "a number of RU, not dialled (dialing.allowed_countries: UA)")]
    assert stored("F-2")[0][1] is False and stored("F-2")[0][2].startswith("a toll-free number, not dialled")
    v1, v2 = check_account(cfg, "F-1", DAY), check_account(cfg, "F-2", DAY)
    assert not v1.eligible and v1.excluded_by == [
        "no valid number ('+7 916 123-45-67': a number of RU, not dialled (dialing.allowed_countries: UA))"]
    assert v2.eligible and v2.e164 == "+380501234567"  # the mobile number after the toll-free one
    # a utility that does call Russia and toll-free lines says so; the next import stores them as valid
    wide = dialing(cfg, allowed_countries=["UA", "RU"], number_types=["mobile", "fixed_line", "toll_free"])
    importer.import_accounts(wide, path, progress=False)
    assert stored("F-1") == [("+7 916 123-45-67", True, "")]
    assert check_account(wide, "F-1", DAY).e164 == "+79161234567"


def test_a_stored_number_the_policy_now_refuses_is_never_dialled(cfg, db):
    foreign = acc(phones=["+79161234567", "+380501110001"])  # stored as valid under an older, wider config
    only_foreign = acc(phones=["+79161234568"])
    assert [p.e164 for p in rules.callable_phones(foreign.id)] == ["+79161234567", "+380501110001"]
    assert [p.e164 for p in rules.callable_phones(foreign.id, cfg=cfg)] == ["+380501110001"]
    v = check_account(cfg, only_foreign, DAY)
    assert not v.eligible and "a number of RU, not dialled" in v.excluded_by[0]
    clock = ManualClock(OPEN)
    camp = start_campaign(cfg, DAY, clock)
    picked = next_candidates(camp, clock, 10)
    assert [(c.account.id, c.e164) for c in picked] == [(foreign.id, "+380501110001")]


def test_dial_refusal_takes_the_fast_path_for_home_numbers(cfg):
    policy = phones.dial_policy(cfg)
    phones.number_facts.cache_clear()
    assert phones.dial_refusal("+380501234567", policy) == ""
    assert phones.dial_refusal("+380800500123", policy).startswith("a toll-free number")
    assert phones.dial_refusal("+79161234567", policy).startswith("a number of RU")
    assert phones.dial_refusal("+999123", policy) == "not a valid number"


def test_config_names_bad_countries_and_types():
    with pytest.raises(ConfigError) as info:
        parse_config({"dialing": {"allowed_countries": ["ua"], "number_types": ["mobile", "premium_rate"]}})
    text = str(info.value)
    assert "dialing.allowed_countries[0]: 'ua' is not allowed; expected a two-letter ISO country code" in text
    assert ("dialing.number_types[1]: 'premium_rate' is not allowed; expected one of mobile, fixed_line, "
            "toll_free, voip, personal_number") in text


def test_a_test_call_to_a_refused_number_is_refused(cfg, db, tmp_path, capsys):
    acc_row = acc(phones=["+380501110002"])
    conf = Path(tmp_path / "config.yaml")
    conf.write_text(f"database:\n  url: {cfg.database.url}\n", encoding="utf-8")
    assert main(["--config", str(conf), "call", acc_row.number, "--to", "+7 916 123 45 67"]) == 2
    assert "is not a callable number: a number of RU, not dialled" in capsys.readouterr().err
