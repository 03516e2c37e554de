"""Substring search from a trigram index (ivr.ledger.trigram), for account names: the same accounts as a
plain LIKE over every name, after inserts, renames and deletes, for short and long texts, on both databases."""

from __future__ import annotations

import factories as f
import pytest

from ivr.ledger import story, trigram
from ivr.ledger.models import Account

TEXTS = ["коваль", "Коваль", "olga", "OLGA", "Ol", "o", "ко", "petro 1", "%", "_", "o_g", "nobody", "Ольга",
         "tro 1", "a 1"]


def _like(name: str, text: str) -> bool:
    """What LIKE '%text%' (wildcards literal) answers: case-insensitive for Latin letters on SQLite, all on PG."""
    from ivr.ledger.models import database
    if database.obj.__class__.__name__.startswith("Postgres"):
        return text.lower() in name.lower()
    fold = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
    return text.translate(fold) in name.translate(fold)


def _same_as_a_scan() -> None:
    for text in TEXTS:
        indexed = {a.number for a in Account.select().where(trigram.contains(Account.name, text))}
        scanned = {a.number for a in Account.select() if _like(a.name, text)}
        assert indexed == scanned, text


@pytest.fixture
def names(db):
    for name in ["Коваль Ольга", "коваленко петро", "Olga Petrenko", "PETRO 12", "petro 1", ""]:
        f.account(name=name)


def test_the_index_finds_what_a_scan_finds(cfg, names):
    _same_as_a_scan()
    assert [a.name for a in story.find_accounts(cfg, name="petro 1")] == ["PETRO 12", "petro 1"]


def test_renames_and_deletes_follow(cfg, names):
    acc = Account.get(Account.name == "Olga Petrenko")
    Account.update(name="Ivan Sydorenko").where(Account.id == acc.id).execute()
    Account.get(Account.name == "petro 1").delete_instance(recursive=True)
    f.account(name="Nova Olga")
    _same_as_a_scan()
    assert [a.name for a in story.find_accounts(cfg, name="sydorenko")] == ["Ivan Sydorenko"]
