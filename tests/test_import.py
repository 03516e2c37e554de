"""Importing billing exports: bad rows reported by line and kept out, good rows loaded, re-imports idempotent,
the formats billing systems really write, and hostile data stored safely or rejected."""

from __future__ import annotations

import csv
import dataclasses
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import peewee
import pytest

from ivr.cli import main
from ivr.ledger import importer
from ivr.ledger.csvread import CsvFormatError, parse_amount, parse_date
from ivr.ledger.models import Account, Balance, ImportRun, Payment, Phone
from ivr.ledger.sample import seed_debtors, write_sample

HEADER = "account,name,phone,address,district,language,balance,balance_date,overdue_since\n"


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def snapshot() -> dict:
    """Everything an import writes about accounts, in comparable form (not which import last listed them)."""
    fields = [f for f in Account._meta.sorted_fields if f.name != "seen_run"]
    return {
        "accounts": sorted(Account.select(*fields).tuples()),
        "phones": sorted(Phone.select().tuples()),
        "balances": sorted(Balance.select().tuples()),
        "payments": sorted(Payment.select().tuples()),
    }


def test_bad_rows_in_the_middle_are_reported_by_line_and_the_rest_loads(cfg, db, tmp_path):
    path = write(tmp_path / "acc.csv", HEADER +
                 "A-1,Olena,0501234567,Street 1,North,uk,150.00,2026-11-20,2026-10-01\n"   # line 2
                 "A 2,Ivan,0501234568,Street 2,North,uk,10,2026-11-20,\n"                  # 3: bad account
                 "A-3,Petro,0501234569,Street 3,South,uk,12x,2026-11-20,\n"                # 4: bad amount
                 "A-4,Maria,0501234570,Street 4,South,uk,1,2026-02-30,\n"                  # 5: no such date
                 "A-5,Taras,0501234571\n"                                                   # 6: short row
                 "A-6,Oksana,0501234572,Street 6,East,de,5,2026-11-20,\n"                  # 7: bad language
                 "A-7,Yurii,0501234573,Street 7,East,en,200.50,2026-11-20,\n")             # 8
    report = importer.import_accounts(cfg, path, progress=False)
    assert [r.line for r in report.rejected] == [3, 4, 5, 6, 7]
    reasons = {r.line: r.reason for r in report.rejected}
    assert "account number 'A 2'" in reasons[3]
    assert "balance" in reasons[4] and "'12x'" in reasons[4]
    assert "does not exist" in reasons[5]
    assert "3 fields where the header has 9" in reasons[6]
    assert "language 'de'" in reasons[7]
    assert (report.loaded, report.updated, report.unchanged, report.rows) == (2, 0, 0, 7)
    assert sorted(a.number for a in Account.select()) == ["A-1", "A-7"]
    assert Balance.get(Balance.account == Account.get(number="A-7")).amount == Decimal("200.50")

    # the rejects file holds the same rows as read, under the input's header, with a reason naming the line
    with open(report.rejects_file, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == HEADER.strip().split(",") + ["reason"]
    assert [r[-1].split(":")[0] for r in rows[1:]] == ["line 3", "line 4", "line 5", "line 6", "line 7"]
    assert rows[1][:3] == ["A 2", "Ivan", "0501234568"]
    assert rows[4][:3] == ["A-5", "Taras", "0501234571"] and rows[4][3:9] == [""] * 6  # the short row, padded
    assert report.rejects_file.parent == tmp_path / "rejects"
    run = ImportRun.get()
    assert (run.kind, run.rows, run.loaded, run.rejected) == ("accounts", 7, 2, 5)


def test_windows_1251_with_semicolons_and_decimal_commas(cfg, db, tmp_path):
    text = ("account;name;phone;address;district;language;balance;balance_date;overdue_since\r\n"
            "Р-1;Шевченко Олена Іванівна;(050) 123-45-67;\"вул. Січових Стрільців, 5; кв. 2\";Подільський;uk;"
            "1 234,50;20.11.2026;01.09.2026\r\n"
            "Р-2;Иванов Сергей;067 765 43 21;ул. Ленина 1;Центр;ru;-12,05;20/11/2026;\r\n")
    path = write(tmp_path / "cp.csv", text.replace("Р-", "R-"), encoding="cp1251")
    report = importer.import_accounts(cfg, path, progress=False)
    assert report.rejected == [] and report.loaded == 2
    a = Account.get(number="R-1")
    assert a.name == "Шевченко Олена Іванівна"
    assert a.address == "вул. Січових Стрільців, 5; кв. 2"
    assert a.district == "Подільський"
    b = Balance.get(Balance.account == a)
    assert (b.amount, b.as_of, b.overdue_since, b.currency) == (
        Decimal("1234.50"), date(2026, 11, 20), date(2026, 9, 1), "UAH")
    assert Balance.get(Balance.account == Account.get(number="R-2")).amount == Decimal("-12.05")
    assert [p.e164 for p in Phone.select().order_by(Phone.id)] == ["+380501234567", "+380677654321"]


def test_utf8_bom_tab_separated_and_mapped_column_names(cfg, db, tmp_path):
    imp = dataclasses.replace(cfg.imports, account_columns={
        **cfg.imports.account_columns, "account": "Особовий рахунок", "name": "ПІБ", "phones": "Телефони"})
    cfg = cfg.replace(imports=imp)
    path = write(tmp_path / "bom.csv", "\ufeffОсобовий рахунок\tПІБ\tТелефони\n"
                 "K-1\tКоваленко Петро\t0501234567, 0677654321\n")
    report = importer.import_accounts(cfg, path, progress=False)
    assert report.loaded == 1 and not report.rejected
    assert [p.e164 for p in Phone.select().order_by(Phone.position)] == ["+380501234567", "+380677654321"]


def test_a_missing_required_column_fails_the_file_naming_it(cfg, db, tmp_path):
    path = write(tmp_path / "x.csv", "acct,name,phone\nA-1,X,0501234567\n")
    with pytest.raises(CsvFormatError) as info:
        importer.import_accounts(cfg, path, progress=False)
    assert "account (column 'account')" in str(info.value) and "'acct'" in str(info.value)
    assert Account.select().count() == 0


def test_reimport_changes_nothing(cfg, db, tmp_path):
    files = write_sample(tmp_path / "s", accounts=300, seed=5, day=date(2026, 11, 23))
    first = importer.import_accounts(cfg, files.accounts, progress=False)
    importer.import_payments(cfg, files.payments, progress=False)
    assert first.loaded == 300 - len(first.rejected) and first.loaded > 250
    before = snapshot()
    again = importer.import_accounts(cfg, files.accounts, progress=False)
    pay_again = importer.import_payments(cfg, files.payments, progress=False)
    assert (again.loaded, again.updated, again.unchanged) == (0, 0, first.loaded)
    assert (pay_again.loaded, pay_again.updated) == (0, 0) and pay_again.unchanged == files.payments_count
    assert snapshot() == before


def test_changes_are_applied_phones_replaced_in_order_and_balances_kept_per_date(cfg, db, tmp_path):
    path = write(tmp_path / "a.csv", HEADER + "A-1,Olena,0501234567;0677654321,S 1,North,uk,150,2026-11-20,\n"
                                              "A-2,Ivan,0501234568,S 2,North,uk,50,2026-11-20,\n")
    importer.import_accounts(cfg, path, progress=False)
    path = write(tmp_path / "a.csv", HEADER + "A-1,Olena K.,0931112233;0501234567,S 1,North,uk,150,2026-11-20,\n"
                                              "A-2,Ivan,0501234568,S 2,North,uk,70,2026-11-21,\n")
    report = importer.import_accounts(cfg, path, progress=False)
    assert (report.loaded, report.updated, report.unchanged) == (0, 2, 0)
    a1 = Account.get(number="A-1")
    assert a1.name == "Olena K."
    assert [p.e164 for p in Phone.select().where(Phone.account == a1).order_by(Phone.position)] == [
        "+380931112233", "+380501234567"]
    a2 = Account.get(number="A-2")
    assert [(b.as_of, b.amount) for b in Balance.select().where(Balance.account == a2).order_by(Balance.as_of)] \
        == [(date(2026, 11, 20), Decimal("50.00")), (date(2026, 11, 21), Decimal("70.00"))]


def test_a_number_the_dialer_flagged_stays_flagged_when_billing_sends_it_again(cfg, db, tmp_path):
    path = write(tmp_path / "a.csv", HEADER + "A-1,Olena,0501234567,S,N,uk,150,2026-11-20,\n")
    importer.import_accounts(cfg, path, progress=False)
    Phone.update(valid=False, invalid_reason="UNALLOCATED_NUMBER", flagged_at=datetime(2026, 11, 21, 18)).execute()
    assert importer.import_accounts(cfg, path, progress=False).unchanged == 1
    path = write(tmp_path / "a.csv", HEADER + "A-1,Olena,+380501234567;0677654321,S,N,uk,150,2026-11-20,\n")
    importer.import_accounts(cfg, path, progress=False)
    phones = list(Phone.select().order_by(Phone.position))
    assert [(p.e164, p.valid, p.invalid_reason) for p in phones] == [
        ("+380501234567", False, "UNALLOCATED_NUMBER"), ("+380677654321", True, "")]


def test_payments_upsert_by_reference_and_clear_already_paid_claims(cfg, db, tmp_path):
    importer.import_accounts(cfg, write(tmp_path / "a.csv", HEADER + "A-1,O,0501234567,S,N,uk,150,2026-11-20,\n"
                                                                     "A-2,I,0501234568,S,N,uk,80,2026-11-20,\n"),
                             progress=False)
    Account.update(claimed_paid_at=datetime(2026, 11, 21, 19)).execute()
    pay = write(tmp_path / "p.csv", "account,amount,date,reference\n"
                                    "A-1,50.00,2026-11-21,R-1\n"
                                    "A-9,10.00,2026-11-21,R-2\n"          # line 3: unknown account
                                    "A-1,10.00,2026-11-22,R-3\n")
    report = importer.import_payments(cfg, pay, progress=False)
    assert (report.loaded, report.rejected) == (2, [])
    assert report.not_in_ledger == [importer.NotInLedger(3, "A-9", "R-2")]  # listed, not a reject
    assert Account.get(number="A-1").claimed_paid_at is None  # named in the file: claim cleared
    assert Account.get(number="A-2").claimed_paid_at is not None  # not named: untouched
    pay = write(tmp_path / "p.csv", "account,amount,date,reference\n"
                                    "A-1,55.00,2026-11-21,R-1\n"
                                    "A-1,10.00,2026-11-22,R-3\n")
    report = importer.import_payments(cfg, pay, progress=False)
    assert (report.loaded, report.updated, report.unchanged) == (0, 1, 1)
    assert sorted((p.reference, p.amount) for p in Payment.select()) == [
        ("R-1", Decimal("55.00")), ("R-3", Decimal("10.00"))]
    assert importer.last_payments_import() is not None


def test_hostile_rows_are_rejected_or_stored_safely(cfg, db, tmp_path):
    huge = "x" * 200_000
    rows = [
        ['H-1', 'Evil\r\nHeader: x', '0501234567'],                   # line 2 (the name spans lines 2-3)
        ['H-2', "O'Brien {a} ${jndi:ldap://x} `rm -rf`", '0501234568'],  # 4
        ['H-3', "Bad\x00Null\x1b[31mRed\u202eRTL", '0501234569'],      # 5
        ['H 4', 'Spaces in account', '0501234570'],                     # 6
        ["H-5'; DROP TABLE account;--", 'Injection', '0501234571'],     # 7
        ['H-6', huge, '0501234572'],                                    # 8
        ['H-7', 'Letters in number', '050ABC4567'],                     # 9
        ['H-8', 'Commas in number', '050 123 45 73, 067 765 43 21'],    # 10
        ['H-9', 'N' * 300, '0501234574'],                               # 11
        ['H-10', 'Після сміття: Шевченко Олена', '0501234575'],         # 12
    ]
    path = tmp_path / "hostile.csv"
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["account", "name", "phone"])
        w.writerows(rows)
    with open(path, "ab") as f:
        f.write(b"H-11,\xff\xfe\xfdjunk,0501234576\n")                   # 13: not UTF-8
        f.write(b"H-12,Last,0501234577\n")                              # 14
    report = importer.import_accounts(cfg, path, progress=False)
    rejected = {r.line: r.reason for r in report.rejected}
    assert set(rejected) == {6, 7, 8, 11, 13}
    assert "characters outside" in rejected[6]
    assert "characters outside" in rejected[7]
    assert "field larger than field limit" in rejected[8] or "longer" in rejected[8]
    assert "300 characters long, more than 200" in rejected[11]
    assert "not valid in the file's encoding" in rejected[13]
    names = {a.number: a.name for a in Account.select()}
    assert names["H-1"] == "Evil Header: x"
    assert names["H-2"] == "O'Brien {a} ${jndi:ldap://x} `rm -rf`"  # stored as text; escaped where used
    assert names["H-3"] == "Bad Null [31mRed RTL"
    assert names["H-10"] == "Після сміття: Шевченко Олена" and names["H-12"] == "Last"
    for name in names.values():
        assert name.isprintable()
    by_acc = {}
    for p in Phone.select(Phone, Account).join(Account).order_by(Phone.position):
        by_acc.setdefault(p.account.number, []).append(p)
    assert [(p.valid, p.e164) for p in by_acc["H-7"]] == [(False, "")]
    assert "characters other than digits" in by_acc["H-7"][0].invalid_reason
    assert [p.e164 for p in by_acc["H-8"]] == ["+380501234573", "+380677654321"]
    for p in Phone.select():
        assert p.raw.isprintable()
        assert p.e164 == "" or p.e164[1:].isdigit()


def test_amount_and_date_forms():
    assert parse_amount("1 234,50") == Decimal("1234.50")
    assert parse_amount("1.234,5") == Decimal("1234.50")
    assert parse_amount("1,234.50") == Decimal("1234.50")
    assert parse_amount("-0,1") == Decimal("-0.10")
    assert parse_amount("12,50", ",") == Decimal("12.50")
    for bad in ("1,234", "12a", "", "1e5", "--1"):
        with pytest.raises(ValueError):
            parse_amount(bad)
    assert parse_date("2026-11-20") == parse_date("20.11.2026") == parse_date("20/11/2026") == date(2026, 11, 20)
    assert parse_date("2026-11-20 00:00:00") == date(2026, 11, 20)
    assert parse_date("11/20/2026", "%m/%d/%Y") == date(2026, 11, 20)
    with pytest.raises(ValueError):
        parse_date("11/20/2026")


def test_parsing_in_worker_processes_gives_the_same_result(cfg, db, tmp_path):
    files = write_sample(tmp_path / "s", accounts=400, seed=9, day=date(2026, 11, 23))
    report = importer.import_accounts(cfg, files.accounts, progress=False, workers=2)
    assert report.rows == 400 and report.loaded == 400 - len(report.rejected)
    inline = importer.import_accounts(cfg, files.accounts, progress=False, workers=0)
    assert inline.unchanged == report.loaded and inline.updated == 0


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(f"database:\n  url: sqlite:///{tmp_path / 'cli.sqlite3'}\n"
                    f"import:\n  rejects_dir: {tmp_path / 'rej'}\n", encoding="utf-8")
    return str(path)


def test_cli_import_prints_rejected_lines_and_the_summary(config_file, tmp_path, capsys):
    path = write(tmp_path / "acc.csv", HEADER + "A-1,Olena,0501234567,S,N,uk,150,2026-11-20,\n"
                                                '"A\r\n2",Ivan,0501234568,S,N,uk,1,2026-11-20,\n')
    assert main(["--config", config_file, "import", "accounts", str(path)]) == 0
    out = capsys.readouterr().out
    assert "line 3: account number 'A\\r\\n2' has characters outside import.account_number_pattern" in out
    assert "1 new, 0 updated, 0 unchanged, 1 rejected" in out and "rejects" in out
    assert main(["--config", config_file, "import", "accounts", "--strict", str(path)]) == 3
    assert main(["--config", config_file, "import", "accounts", str(tmp_path / "none.csv")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_cli_sample_writes_files_that_import_cleanly_but_for_the_planted_bad_numbers(config_file, tmp_path):
    out = tmp_path / "sample"
    assert main(["--config", config_file, "import", "sample", "--accounts", "120", "--out", str(out),
                 "--date", "2026-11-23", "--style", "cp1251"]) == 0
    assert (out / "accounts.csv").read_bytes().decode("cp1251").startswith("account;name;phone")
    assert main(["--config", config_file, "import", "accounts", str(out / "accounts.csv")]) == 0
    assert main(["--config", config_file, "import", "payments", str(out / "payments.csv")]) == 0


def test_sample_data_is_deterministic_and_has_the_promised_mix(cfg, db, tmp_path):
    a = write_sample(tmp_path / "a", accounts=600, seed=3, day=date(2026, 11, 23))
    b = write_sample(tmp_path / "b", accounts=600, seed=3, day=date(2026, 11, 23))
    c = write_sample(tmp_path / "c", accounts=600, seed=4, day=date(2026, 11, 23))
    assert a.accounts.read_bytes() == b.accounts.read_bytes()
    assert a.payments.read_bytes() == b.payments.read_bytes()
    assert a.accounts.read_bytes() != c.accounts.read_bytes()
    report = importer.import_accounts(cfg, a.accounts, progress=False)
    assert report.loaded == 600 and not report.rejected
    assert importer.import_payments(cfg, a.payments, progress=False).loaded == a.payments_count > 0
    assert {acc.language for acc in Account.select()} == {"uk", "ru", "en", "bg"}
    assert len({acc.district for acc in Account.select()}) >= 6
    assert 0 < Account.select().where(Account.do_not_call == True).count() < 30  # noqa: E712
    invalid = Phone.select().where(Phone.valid == False).count()  # noqa: E712
    assert 0 < invalid < 60
    shared = (Phone.select(Phone.e164).where(Phone.e164 != "").group_by(Phone.e164)
              .having(peewee.fn.COUNT(Phone.id) > 1).count())
    assert shared > 0
    assert all(p.e164.startswith("+380") for p in Phone.select().where(Phone.valid == True))  # noqa: E712


@pytest.mark.sqlite_only
def test_import_gives_back_its_sqlite_page_cache(cfg, db, tmp_path):
    """The import's 32 MB page cache must not stay with the connection that goes on to run an evening."""
    from ivr.ledger.importer import import_accounts

    before = db.execute_sql("PRAGMA cache_size").fetchone()[0]
    path = tmp_path / "accounts.csv"
    path.write_text("account,name,phone,balance,balance_date\nACC-1,Test,+380501234567,500,2026-11-20\n",
                    encoding="utf-8")
    report = import_accounts(cfg, path, progress=False)
    assert report.loaded == 1
    assert db.execute_sql("PRAGMA cache_size").fetchone()[0] == before != -32768


def test_seeded_debtors_land_whole_across_insert_chunks(db):
    # the fault scripts and the campaign benchmark seed their ledgers this way; 7 rows in chunks of 3 crosses
    # chunk borders, so a row lost or doubled at a border shows
    numbers = seed_debtors(7, date(2026, 11, 23), prefix="BN", chunk=3)
    assert numbers == [f"+38050{i:07d}" for i in range(7)]
    accounts = {a.number: a for a in Account.select()}
    assert sorted(accounts) == [f"BN-{i:06d}" for i in range(7)]
    assert accounts["BN-000005"].district == "D5"
    phones = {p.account.number: p.e164 for p in Phone.select()}
    assert phones == {f"BN-{i:06d}": f"+38050{i:07d}" for i in range(7)}
    balances = list(Balance.select())
    assert len(balances) == 7
    assert {(b.as_of, b.amount, b.currency) for b in balances} == {(date(2026, 11, 21), Decimal("750.00"), "UAH")}
