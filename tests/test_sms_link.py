"""The SMPP link (smpplib) against the simulated SMSC over real TCP: binds, concatenated Cyrillic, receipts on a
transceiver and on a separate receiver link, the throughput limit, throttling answers and reconnecting."""

from __future__ import annotations

import time

import pytest

from ivr.channels import segments
from ivr.channels.smpp_link import SmppLink, SmsLinkError
from ivr.config import SmsConfig
from ivr.sim.smsc import SimSmsc, SimThread

WAIT = 60  # generous ceiling: only a real hang reaches it


@pytest.fixture
def smsc():
    with SimThread(SimSmsc(password="secret", receipt_delay_s=0.01)) as sim:
        yield sim


def link_to(sim, got, **over) -> SmppLink:
    cfg = SmsConfig(host="127.0.0.1", port=sim.port, password="secret", max_per_second=1000, **over)
    return SmppLink(cfg, got.append)


def test_wrong_password_is_refused_with_a_clear_error(smsc):
    cfg = SmsConfig(host="127.0.0.1", port=smsc.port, password="wrong")
    with pytest.raises(SmsLinkError, match="refused bind_transceiver"):
        SmppLink(cfg, lambda r: None).open()
    assert smsc.binds == []


def test_nothing_listening_is_a_clear_error():
    with SimThread(SimSmsc()) as sim:
        port = sim.port
    with pytest.raises(SmsLinkError, match="cannot reach the SMSC"):
        SmppLink(SmsConfig(host="127.0.0.1", port=port), lambda r: None).open()


def test_cyrillic_in_three_parts_arrives_whole_with_one_receipt(smsc):
    got = []
    link = link_to(smsc, got).open()
    text = "Нагадуємо про борг. " * 8  # 160 characters: 67 + 67 + 26
    ids = link.submit("+380501234567", segments.encode(text, reference=42))
    link.collect(WAIT, lambda: len(got) >= 1)
    link.close()
    assert len(ids) == 3
    assert smsc.messages() == [("380501234567", text, 3)]
    assert [s.data_coding for s in smsc.submitted] == [8, 8, 8]
    assert [s.udh for s in smsc.submitted] == [(42, 3, 1), (42, 3, 2), (42, 3, 3)]
    assert [s.registered_delivery for s in smsc.submitted] == [0, 0, 1]  # a receipt for the last part only
    assert [(r.message_id, r.status) for r in got] == [(ids[-1], "delivered")]
    assert smsc.binds == [("transceiver", "ivr")]


def test_transmitter_mode_reads_receipts_on_a_receiver_link(smsc):
    got = []
    smsc.undeliverable.add("380501110000")
    link = link_to(smsc, got, bind="transmitter").open()
    ids = link.submit("+380501110000", segments.encode("hello"))
    link.collect(WAIT, lambda: len(got) >= 1)
    link.close()
    assert sorted(smsc.binds) == [("receiver", "ivr"), ("transmitter", "ivr")]
    assert got[0].message_id == ids[0] and got[0].status == "failed" and got[0].stat == "UNDELIV"


def test_refused_destination_raises_with_the_status(smsc):
    smsc.reject.add("380509999999")
    link = link_to(smsc, []).open()
    with pytest.raises(SmsLinkError) as err:
        link.submit("+380509999999", segments.encode("x"))
    link.close()
    assert err.value.status == 0x0B


def test_parts_are_paced_to_max_per_second(smsc):
    link = link_to(smsc, []).open()
    link.cfg = SmsConfig(host="127.0.0.1", port=smsc.port, password="secret", max_per_second=20)
    for i in range(8):
        link.submit(f"+38050123450{i}", segments.encode("x"))
    link.close()
    at = [s.at for s in smsc.submitted]
    # 8 submits at 20/s take at least 7 intervals of 50 ms; a busy machine only makes it slower
    assert at[-1] - at[0] >= 7 * 0.05 * 0.95


def test_throttled_answers_back_off_and_every_part_still_goes(smsc):
    smsc.max_per_second = 3
    got = []
    link = link_to(smsc, got).open()  # the client would go at 1000/s: the SMSC says ESME_RTHROTTLED
    started = time.monotonic()
    for i in range(5):
        link.submit(f"+38050123460{i}", segments.encode("x"))
    link.close()
    assert len(smsc.submitted) == 5
    assert smsc.throttled >= 1 and link.throttled == smsc.throttled
    assert time.monotonic() - started < WAIT


def test_the_link_rebinds_after_a_drop_and_sends_the_part_again(smsc):
    got = []
    link = link_to(smsc, got).open()
    link.submit("+380501234567", segments.encode("one"))
    smsc.drop_connections()
    (two,) = link.submit("+380501234568", segments.encode("two"))
    link.collect(WAIT, lambda: any(r.message_id == two for r in got))
    link.close()
    assert link.reconnects == 1
    assert [m[1] for m in smsc.messages()] == ["one", "two"]
    assert len(smsc.binds) == 2
    assert [r.status for r in got if r.message_id == two] == ["delivered"]


def test_reconnect_gives_up_after_the_configured_attempts(smsc):
    link = link_to(smsc, [], reconnect_attempts=2)
    link.sleep = lambda s: None
    link.open()
    smsc.refuse_binds = True
    smsc.drop_connections()
    with pytest.raises(SmsLinkError, match="2 re-binds failed"):
        link.submit("+380501234567", segments.encode("x"))
    link.close()
