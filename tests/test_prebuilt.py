"""ivr.ledger.prebuilt: hot-path SQL built by peewee once per shape, reused only when the caller's values match
the ones peewee binds (a wrong order never reaches the database)."""

from __future__ import annotations

import logging

import factories

from ivr.ledger import prebuilt
from ivr.ledger.models import Phone


def _phones(ids):
    return lambda: (Phone.select(Phone.e164).where(Phone.account.in_(ids) & (Phone.e164 != "x"))
                    .order_by(Phone.e164))


def test_the_text_is_built_once_per_shape_and_bound_to_new_values(db):
    a, b = factories.account(phone="+380501110001"), factories.account(phone="+380501110002")
    builds = []

    def build(ids):
        def make():
            builds.append(ids)
            return _phones(ids)()
        return make

    key = ("test.phones", 1)
    first = prebuilt.execute(key, build([a.id]), [a.id, "x"]).fetchall()
    second = prebuilt.execute(key, build([b.id]), [b.id, "x"]).fetchall()
    assert first == [("+380501110001",)] and second == [("+380501110002",)]
    assert builds == [[a.id]]  # the second call bound new values to the kept text


def test_values_in_another_order_than_peeweees_are_refused_not_bound(db, caplog, request):
    a = factories.account(phone="+380501110003")
    key = ("test.wrong", request.node.name)  # warned once per process: one key per backend
    with caplog.at_level(logging.WARNING, logger="ivr.ledger.prebuilt"):
        # the caller believes the flag comes first: wrong, so peewee's own values are used (and nothing kept)
        rows = prebuilt.execute(key, _phones([a.id]), ["x", a.id]).fetchall()
        again = prebuilt.execute(key, _phones([a.id]), ["x", a.id]).fetchall()
    assert rows == again == [("+380501110003",)]
    assert f"prebuilt_refused key={key}" in caplog.text
    assert key not in prebuilt._texts
