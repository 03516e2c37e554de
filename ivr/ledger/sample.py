"""Sample debtors: realistic billing exports, deterministic by seed, for the demo, the tests and the import
benchmark; and a plain ledger of look-alike debtors written straight into the database for the fault scripts and
the campaign benchmark (`seed_debtors`).

The accounts file mixes debts (paid up, small, large, long overdue), Ukrainian mobile numbers written the many ways
billing clerks write them, some invalid numbers, some numbers shared by several accounts (one family, several
flats), a few do-not-call and life-support flags, districts and the four message languages. The payments file pays
part or all of some debts after the balance date, so eligibility has something to subtract.
"""

from __future__ import annotations

import csv
import os
import random
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from ivr.ledger.models import Account, Balance, Phone, database

ACCOUNT_HEADER = ["account", "name", "phone", "address", "district", "language", "timezone", "balance",
                  "balance_date", "overdue_since", "do_not_call", "life_support", "preferred_channel"]
PAYMENT_HEADER = ["account", "amount", "date", "reference"]

DISTRICTS = ["Podilskyi", "Shevchenkivskyi", "Obolonskyi", "Darnytskyi", "Holosiivskyi", "Solomianskyi",
             "Dniprovskyi", "Desnianskyi"]
OPERATOR_CODES = ["50", "66", "95", "99", "67", "68", "96", "97", "98", "63", "73", "93"]
_NAMES = {
    "uk": (["Шевченко", "Коваленко", "Бондаренко", "Ткаченко", "Кравченко", "Олійник", "Мельник", "Бойко",
            "Ковальчук", "Лисенко", "Савчук", "Руденко", "Марченко", "Петренко", "Гнатюк", "Павленко"],
           ["Олена", "Іван", "Марія", "Петро", "Оксана", "Андрій", "Наталія", "Юрій", "Ірина", "Тарас",
            "Світлана", "Богдан", "Галина", "Василь", "Ганна", "Дмитро"]),
    "ru": (["Иванов", "Смирнов", "Кузнецов", "Попов", "Соколов", "Лебедев", "Козлов", "Новиков"],
           ["Сергей", "Анна", "Алексей", "Татьяна", "Николай", "Елена", "Михаил", "Ольга"]),
    "bg": (["Иванов", "Георгиев", "Димитров", "Петров", "Николов", "Христов"],
           ["Георги", "Мария", "Иван", "Елена", "Димитър", "Йорданка"]),
    "en": (["Smith", "Johnson", "Brown", "Taylor", "Wilson", "O'Connor"],
           ["John", "Mary", "James", "Linda", "Robert", "Susan"]),
}
_STREETS = ["вул. Шевченка", "вул. Хрещатик", "просп. Перемоги", "вул. Франка", "вул. Лесі Українки",
            "бульв. Дружби Народів", "вул. Сагайдачного", "вул. Січових Стрільців"]
_INVALID = ["12345", "050-12-34", "unknown", "+380 50 ABC 12 34", "0000000000", "1", "+999 123 456"]


@dataclass(frozen=True)
class SampleFiles:
    accounts: Path
    payments: Path
    accounts_count: int
    payments_count: int


def _format_mobile(rnd: random.Random, code: str, rest: str) -> str:
    style = rnd.random()
    if style < 0.45:
        return f"+380{code}{rest}"
    if style < 0.70:
        return f"0{code}{rest}"
    if style < 0.85:
        return f"(0{code}) {rest[:3]}-{rest[3:5]}-{rest[5:]}"
    if style < 0.95:
        return f"380{code}{rest}"
    return f"0{code} {rest[:3]} {rest[3:5]} {rest[5:]}"


def _amount(value: float, decimal: str) -> str:
    text = f"{value:.2f}"
    return text.replace(".", ",") if decimal == "," else text


def write_sample(out_dir: str | Path, accounts: int = 3000, seed: int = 1, day: date | None = None,
                 style: str = "utf8", payments: bool = True) -> SampleFiles:
    """Write `accounts.csv` and `payments.csv` into `out_dir`.

    style: 'utf8' (comma-separated, decimal point, ISO dates) or 'cp1251' (Windows-1251, ';', decimal comma,
    DD.MM.YYYY dates — how many 1C-based billing systems export). `day` is the evening the data is for: balances
    are dated two days earlier and payments fall on the day before.
    """
    rnd = random.Random(seed)
    day = day or date.today()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if style == "cp1251":
        encoding, delim, dec, fmt_date = "cp1251", ";", ",", (lambda d: d.strftime("%d.%m.%Y"))
    elif style == "utf8":
        encoding, delim, dec, fmt_date = "utf-8", ",", ".", date.isoformat
    else:
        raise ValueError(f"style {style!r}: expected utf8 or cp1251")
    balance_day = day - timedelta(days=2)
    acc_path, pay_path = out / "accounts.csv", out / "payments.csv"
    recent: list[str] = []  # numbers a later account may share (one family, several flats)
    langs = ["uk"] * 70 + ["ru"] * 20 + ["en"] * 5 + ["bg"] * 5
    pay_day = day - timedelta(days=1)
    paid = 0
    with open(acc_path, "w", encoding=encoding, newline="") as f, \
            open(pay_path if payments else os.devnull, "w", encoding=encoding, newline="") as fp:
        w = csv.writer(f, delimiter=delim, lineterminator="\r\n")
        wp = csv.writer(fp, delimiter=delim, lineterminator="\r\n")
        w.writerow(ACCOUNT_HEADER)
        wp.writerow(PAYMENT_HEADER)
        rows: list[list[str]] = []
        for i in range(1, accounts + 1):
            district = rnd.choice(DISTRICTS)
            number = f"{district[:2].upper()}-{i:07d}"
            lang = rnd.choice(langs)
            surnames, firsts = _NAMES[lang]
            name = f"{rnd.choice(surnames)} {rnd.choice(firsts)}"
            r = rnd.random()
            if r < 0.04 and recent:
                phone = rnd.choice(recent)
            elif r < 0.07:
                phone = rnd.choice(_INVALID)
            else:
                phone = _format_mobile(rnd, rnd.choice(OPERATOR_CODES), f"{rnd.randrange(10**7):07d}")
                if r > 0.97:
                    phone += ";" + _format_mobile(rnd, rnd.choice(OPERATOR_CODES), f"{rnd.randrange(10**7):07d}")
                recent.append(phone.split(";")[0])
                if len(recent) > 50:
                    recent.pop(0)
            k = rnd.random()
            overdue = ""
            if k < 0.25:
                balance = rnd.choice([0.0, 0.0, -round(rnd.uniform(1, 200), 2)])
            elif k < 0.45:
                balance = round(rnd.uniform(1, 99.99), 2)
                if rnd.random() < 0.5:
                    overdue = fmt_date(balance_day - timedelta(days=rnd.randint(10, 120)))
            else:
                balance = round(rnd.uniform(100, 5000), 2)
                overdue = fmt_date(balance_day - timedelta(days=rnd.randint(5, 400)))
            rows.append([
                number, name, phone,
                f"{rnd.choice(_STREETS)}, {rnd.randint(1, 150)}, кв. {rnd.randint(1, 300)}",
                district, lang, "Europe/Kyiv" if rnd.random() < 0.1 else "",
                _amount(balance, dec), fmt_date(balance_day), overdue,
                "1" if rnd.random() < 0.01 else "0", "1" if rnd.random() < 0.005 else "0",
                rnd.choices(["voice", "sms", "email"], weights=[90, 5, 5])[0],
            ])
            if payments and balance > 0 and rnd.random() < 0.12:
                paid += 1
                amount = balance if rnd.random() < 0.6 else round(balance * rnd.uniform(0.2, 0.9), 2)
                wp.writerow([number, _amount(amount, dec), fmt_date(pay_day), f"PAY-{pay_day:%Y%m%d}-{paid:07d}"])
            if len(rows) >= 10000:
                w.writerows(rows)
                rows = []
        w.writerows(rows)
    return SampleFiles(acc_path, pay_path, accounts, paid)


def seed_debtors(count: int, day: date, prefix: str = "KN", amount: Decimal = Decimal("750.00"),
                 chunk: int = 500) -> list[str]:
    """Insert `count` look-alike debtors into the connected ledger and return their numbers (E.164) in order.

    Debtor i is account `{prefix}-{i:06d}` ("Debtor i", district D0..D7) with one valid phone +38050{i:07d} and a
    balance of `amount` UAH dated two days before `day`. Rows go in `chunk` at a time: one INSERT of every row
    passes SQLite's bound-variable limit on large runs.
    """
    numbers = [f"+38050{i:07d}" for i in range(count)]
    accounts = [{"number": f"{prefix}-{i:06d}", "name": f"Debtor {i}", "district": f"D{i % 8}"} for i in range(count)]
    with database.atomic():
        for k in range(0, count, chunk):
            Account.insert_many(accounts[k:k + chunk]).execute()
        ids = {a.number: a.id for a in Account.select(Account.id, Account.number)}
        phones = [{"account": ids[f"{prefix}-{i:06d}"], "position": 0, "raw": n, "e164": n, "valid": True}
                  for i, n in enumerate(numbers)]
        balances = [{"account": ids[f"{prefix}-{i:06d}"], "as_of": day - timedelta(days=2), "amount": amount,
                     "currency": "UAH"} for i in range(count)]
        for k in range(0, count, chunk):
            Phone.insert_many(phones[k:k + chunk]).execute()
            Balance.insert_many(balances[k:k + chunk]).execute()
    return numbers
