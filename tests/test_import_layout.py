"""Import layout and trust (issue 11, point 5): an account twice in one file, title lines above the header,
Cyrillic account numbers, a rejects file that re-imports as it is, payments for accounts the ledger does not
know, and numbers that will not be dialled counted at import time."""

from __future__ import annotations

import csv
import dataclasses
from decimal import Decimal
from pathlib import Path

import pytest

from ivr.cli import main
from ivr.ledger import importer
from ivr.ledger.csvread import CsvFormatError
from ivr.ledger.models import Account, Balance, ImportRun, Payment

HEADER = "account,name,phone,balance,balance_date\n"


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def with_imports(cfg, **changes):
    return cfg.replace(imports=dataclasses.replace(cfg.imports, **changes))


def balances() -> dict[str, Decimal]:
    return {b.account.number: b.amount for b in Balance.select(Balance, Account).join(Account)}


def test_an_account_twice_in_a_file_is_reported_with_both_lines_and_neither_row_applied(cfg, db, tmp_path):
    importer.import_accounts(cfg, write(tmp_path / "a.csv", HEADER + "A-1,Old,0501234567,100,2026-11-20\n"),
                             progress=False)
    path = write(tmp_path / "b.csv", HEADER + "A-1,First,0501234567,300,2026-11-20\n"   # line 2
                                              "A-2,Other,0501234568,50,2026-11-20\n"     # line 3
                                              "A-1,Second,0501234567,900,2026-11-20\n")  # line 4
    report = importer.import_accounts(cfg, path, progress=False)
    assert [r.line for r in report.rejected] == [2, 4]
    for r in report.rejected:
        assert r.reason == ("account 'A-1' is on lines 2 and 4 of this file: neither row applied "
                            "(import.duplicates: reject)")
    assert (report.loaded, report.updated, report.unchanged) == (1, 0, 0)
    assert Account.get(number="A-1").name == "Old" and balances() == {"A-1": Decimal("100.00"),
                                                                      "A-2": Decimal("50.00")}
    # the same file again: nothing changes, and the report says so
    again = importer.import_accounts(cfg, path, progress=False)
    assert (again.loaded, again.updated, again.unchanged, len(again.rejected)) == (0, 0, 1, 2)


def test_keep_first_applies_the_first_row_and_rejects_the_later_ones(cfg, db, tmp_path):
    cfg = with_imports(cfg, duplicates="keep_first")
    path = write(tmp_path / "a.csv", HEADER + "A-1,First,0501234567,300,2026-11-20\n"
                                              "A-1,Second,0501234567,900,2026-11-20\n"
                                              "A-1,Third,0501234567,700,2026-11-20\n")
    report = importer.import_accounts(cfg, path, progress=False)
    assert [(r.line, r.reason) for r in report.rejected] == [
        (n, "account 'A-1' is already on line 2 of this file: this row not applied (import.duplicates: keep_first)")
        for n in (3, 4)]
    assert Account.get(number="A-1").name == "First" and balances() == {"A-1": Decimal("300.00")}
    again = importer.import_accounts(cfg, path, progress=False)
    assert (again.loaded, again.updated, again.unchanged) == (0, 0, 1)


def test_duplicates_are_found_with_parsing_in_worker_processes_too(cfg, db, tmp_path):
    rows = [f"W-{i},N{i},0501234567,{100 + i},2026-11-20\n" for i in range(300)]
    rows.insert(250, "W-7,Again,0501234567,999,2026-11-20\n")  # line 252, W-7 is on line 9
    path = write(tmp_path / "w.csv", HEADER + "".join(rows))
    report = importer.import_accounts(cfg, path, progress=False, workers=2)
    assert [r.line for r in report.rejected] == [9, 252] and "lines 9 and 252" in report.rejected[0].reason
    assert report.loaded == 299 and Account.get_or_none(Account.number == "W-7") is None


def test_title_lines_above_the_header_are_skipped_and_line_numbers_stay_true(cfg, db, tmp_path):
    text = ("Звіт: боржники станом на 30.11.2026;;\r\n"
            "Сформовано 01.12.2026 08:00\r\n"
            "\r\n"
            "account;name;phone;balance;balance_date\r\n"       # line 4
            "ВК-0456;Шевченко Олена;0501234567;1 234,50;30.11.2026\r\n"
            "ВК-0457;Коваль Петро;0501234568;12x;30.11.2026\r\n")  # line 6
    path = write(tmp_path / "title.csv", text, encoding="cp1251")
    report = importer.import_accounts(cfg, path, progress=False)
    assert [(r.line, "'12x'" in r.reason) for r in report.rejected] == [(6, True)]
    assert report.loaded == 1 and balances() == {"ВК-0456": Decimal("1234.50")}


def test_a_header_below_the_first_ten_lines_is_not_found(cfg, db, tmp_path):
    path = write(tmp_path / "deep.csv", "title\n" * 10 + HEADER + "A-1,X,0501234567,1,2026-11-20\n")
    with pytest.raises(CsvFormatError, match=r"missing column\(s\): account"):
        importer.import_accounts(cfg, path, progress=False)
    assert Account.select().count() == 0


def test_account_numbers_follow_the_configured_pattern_cyrillic_allowed_by_default(cfg, db, tmp_path):
    path = write(tmp_path / "a.csv", HEADER + "ВК-0456,Олена,0501234567,200,2026-11-20\n"
                                              "ЄҐ/12.3_x,Ґава,0501234568,200,2026-11-20\n"
                                              "A 1,Space,0501234569,200,2026-11-20\n")
    report = importer.import_accounts(cfg, path, progress=False)
    assert report.loaded == 2 and [r.line for r in report.rejected] == [4]
    pay = write(tmp_path / "p.csv", "account,amount,date,reference\nВК-0456,50,2026-11-21,R-1\n")
    assert importer.import_payments(cfg, pay, progress=False).loaded == 1
    assert Payment.get().account.number == "ВК-0456"
    latin = with_imports(cfg, account_number_pattern="[A-Z]{2}-[0-9]{4}")
    report = importer.import_accounts(latin, write(tmp_path / "b.csv", HEADER + "ВК-0456,О,0501234567,1,2026-11-20\n"
                                                                                "AB-1234,A,0501234567,1,2026-11-20\n"),
                                      progress=False)
    assert [(r.line, r.reason) for r in report.rejected] == [
        (2, "account number 'ВК-0456' has characters outside import.account_number_pattern ([A-Z]{2}-[0-9]{4})")]


def test_a_bad_pattern_in_config_is_named(tmp_path):
    from ivr.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match=r"import.account_number_pattern: '\[A-' is not allowed; expected a "
                                          r"regular expression"):
        parse_config({"import": {"account_number_pattern": "[A-"}})


def test_the_rejects_file_keeps_the_inputs_format_and_imports_fixed(cfg, db, tmp_path):
    cfg = with_imports(cfg, account_columns={**cfg.imports.account_columns, "account": "Особовий рахунок",
                                             "name": "ПІБ", "phones": "Телефон", "balance": "Борг"})
    text = ("Особовий рахунок;ПІБ;Телефон;Борг\r\n"
            "Р-1;Шевченко Олена;0501234567;150,00\r\n"
            "Р-2;Коваль Петро, старший;0501234568;1O0,50\r\n"     # letter O in the amount
            "Р-3;\"Бойко; Ганна\";0501234569;+12\r\n")              # fine
    path = write(tmp_path / "борг.csv", text, encoding="cp1251")
    report = importer.import_accounts(cfg, path, progress=False)
    assert [r.line for r in report.rejected] == [3] and report.loaded == 2
    raw = report.rejects_file.read_bytes()
    decoded = raw.decode("cp1251")  # same encoding as the input
    rows = list(csv.reader(decoded.splitlines(), delimiter=";"))
    assert rows[0] == ["Особовий рахунок", "ПІБ", "Телефон", "Борг", "reason"]
    assert rows[1][:4] == ["Р-2", "Коваль Петро, старший", "0501234568", "1O0,50"]
    assert rows[1][4].startswith("line 3: balance: amount '1O0,50' is not a number")
    # staff fix the amount in a spreadsheet or editor and import the rejects file itself
    fixed = tmp_path / "fixed.csv"
    fixed.write_bytes(decoded.replace("1O0,50", "100,50").encode("cp1251"))
    again = importer.import_accounts(cfg, fixed, progress=False, export="changes")  # it lists only those rows
    assert (again.loaded, again.rejected) == (1, [])
    assert balances()["Р-2"] == Decimal("100.50")
    assert Account.get(number="Р-2").name == "Коваль Петро, старший"


def test_a_rejects_file_keeps_a_utf8_bom_and_tabs(cfg, db, tmp_path):
    path = write(tmp_path / "t.csv", "\ufeffaccount\tname\tphone\tbalance\nT-1\tX\t0501234567\tzz\n")
    report = importer.import_accounts(cfg, path, progress=False)
    raw = report.rejects_file.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfaccount\tname\tphone\tbalance\treason\r\n")
    assert b"T-1\tX\t0501234567\tzz\tline 2: balance" in raw


@pytest.fixture
def config_file(tmp_path):
    def make(extra: str = "") -> str:
        path = tmp_path / "config.yaml"
        path.write_text(f"database:\n  url: sqlite:///{tmp_path / 'cli.sqlite3'}\n"
                        f"import:\n  rejects_dir: {tmp_path / 'rej'}\n{extra}", encoding="utf-8")
        return str(path)
    return make


def test_payments_for_unknown_accounts_are_listed_not_rejected_and_strict_ignores_them(config_file, tmp_path,
                                                                                      capsys):
    conf = config_file()
    accounts = write(tmp_path / "a.csv", HEADER + "A-1,X,0501234567,200,2026-11-20\n")
    assert main(["--config", conf, "import", "accounts", str(accounts)]) == 0
    pay = write(tmp_path / "p.csv", "account,amount,date,reference\n"
                                    "A-1,50,2026-11-21,R-1\n"
                                    "Z-9,10,2026-11-21,R-2\n"
                                    "A-1,zz,2026-11-21,R-3\n")
    capsys.readouterr()
    assert main(["--config", conf, "import", "payments", "--strict", str(pay)]) == 3  # R-3 is a real reject
    out = capsys.readouterr().out
    assert "line 3: account 'Z-9' is not in the ledger (payment 'R-2' not loaded)" in out
    assert "1 new, 0 updated, 0 unchanged, 1 rejected, 1 for accounts not in the ledger" in out
    pay_ok = write(tmp_path / "p2.csv", "account,amount,date,reference\nA-1,50,2026-11-21,R-1\nZ-9,10,2026-11-21,R-2\n")
    assert main(["--config", conf, "import", "payments", "--strict", str(pay_ok)]) == 0
    assert ImportRun.select().where(ImportRun.kind == "payments").order_by(ImportRun.id.desc()).first() \
        .not_in_ledger == 1
    # a utility that wants them as rejects says so; then --strict fails and the rejects file holds the row
    conf = config_file("  unknown_accounts: reject\n")
    assert main(["--config", conf, "import", "payments", "--strict", str(pay_ok)]) == 3
    out = capsys.readouterr().out
    assert "line 3: account 'Z-9' is not in the ledger (import.unknown_accounts: reject)" in out
    rejects = sorted((tmp_path / "rej").glob("p2-payments-*.rejects.csv"))
    assert rejects and "Z-9,10,2026-11-21,R-2,line 3: account 'Z-9'" in rejects[-1].read_text(encoding="utf-8")


def test_numbers_that_will_not_be_dialled_are_counted_and_listed_at_import(config_file, tmp_path, capsys):
    conf = config_file()
    path = write(tmp_path / "a.csv", HEADER + "A-1,X,0501234567;12345,200,2026-11-20\n"
                                              "A-2,Y,050ABC,200,2026-11-20\n"
                                              "A-3,Z,0501234569,200,2026-11-20\n")
    assert main(["--config", conf, "import", "accounts", str(path)]) == 0
    out = capsys.readouterr().out
    assert "line 2: account A-1: phone '***45' will not be dialled: too short" in out
    assert "line 3: account A-2: phone '***BC' will not be dialled: contains characters other than digits" in out
    assert "2 phone number(s) that will not be dialled" in out
    run = ImportRun.get()
    assert (run.loaded, run.invalid_phones) == (3, 2)
