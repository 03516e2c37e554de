"""Hostile billing data (issue 7): dial-string and ESL injection attempts in numbers and names, huge fields, binary
junk and wrong encodings are rejected (with the line number and the reason) or stored as inert text — and an
originate built for any account that got in is parsed by the simulator's FreeSWITCH-style parser as exactly one
leg, the dialer's own variables only, and the socket application."""

from __future__ import annotations

import re
import uuid as uuidlib
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from ivr.campaign.queue import next_candidates, start_campaign
from ivr.clock import ManualClock
from ivr.dialer.originate import originate_command
from ivr.ledger.importer import import_accounts
from ivr.ledger.models import Account, Phone
from ivr.sim.originate import OriginateError, parse_originate, split_args
from ivr.switch.dialstring import build_originate
from ivr.switch.errors import UnsafeValue

DAY = date(2026, 11, 23)
HEADER = "account,name,phone,balance,balance_date,overdue_since\n"
TAIL = ",900.00,2026-11-21,2026-09-01"
NUMBER_ATTACKS = [
    "+380501234568,sofia/gateway/premium/0900",
    "123|456",
    "{origination_caller_id_number=1}",
    "'&bridge(sofia/gateway/premium/0900)'",
    "+380501234569 api hupall",
    "${system(rm -rf /)}",
    "+380501234570:_:sofia/gateway/premium/0900",
    "^^:+380501234571",
]
NAME_ATTACKS = [
    "O'Brien, Jr. {x=1} [y] \"quoted\"",
    "Петренко, Іван ^^:a=b|c",
    "${system(rm -rf /)}",
    "'&bridge(sofia/gateway/premium/0900)'",
    "a\\,b\\'c",
    "tab\there",
    "emoji \u202e\u200b hidden",
]
ORIGINATE_VARS = {"origination_uuid", "ivr_attempt_id", "ivr_account", "origination_caller_id_number",
                  "origination_caller_id_name", "originate_timeout", "absolute_codec_string", "execute_on_answer",
                  "playback_terminators"}  # (the menu's keys, from config: digits only)


def csv_field(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def cyrillic_rows(start: int, n: int) -> list[str]:
    """Ordinary UTF-8 rows, so the file is recognisably UTF-8 (the encoding sniffer weighs good against bad)."""
    return [f"OK-{start + i},Шевченко Галина Петрівна,+38067{start + i:07d}{TAIL}" for i in range(n)]


@pytest.fixture
def hostile_file(tmp_path: Path) -> tuple[Path, dict[int, str]]:
    """The file and, per physical line, what must be said about it (only lines that must be rejected)."""
    lines: list[bytes] = [HEADER.encode()]
    expect: dict[int, str] = {}

    def add(text: str | bytes, reject: str = "") -> None:
        line = 1 + sum(chunk.count(b"\n") for chunk in lines)  # physical line the record starts on
        lines.append(text if isinstance(text, bytes) else (text + "\n").encode())
        if reject:
            expect[line] = reject

    for row in cyrillic_rows(0, 30):
        add(row)
    for i, attack in enumerate(NUMBER_ATTACKS):
        add(f"NUM-{i},Number Attack {i},{csv_field(attack)}{TAIL}")
    for i, attack in enumerate(NAME_ATTACKS):
        add(f"NAME-{i},{csv_field(attack)},+38050222{i:04d}{TAIL}")
    add("NL-1,\"Name\r\napi hupall\",+380503330001" + TAIL)  # a quoted CR/LF inside a name: one record
    add("CRLF-1,Plain,+380503330002\r\napi hupall\r\n" + TAIL[1:], reject="fields where the header has")
    add(f"HUGE-1,{'x' * 70_000},+380503330003{TAIL}", reject="field larger than field limit")
    add(f"LONG-1,{'y' * 300},+380503330004{TAIL}", reject="name is 300 characters long")
    add(b"JUNK-1,\xff\xfe\x00\x01\xc3junk,+380503330005" + TAIL.encode() + b"\n",
        reject="not valid in the file's encoding")
    add(b"JUNK-2,Ok,+3805033\xd0\x000006" + TAIL.encode() + b"\n", reject="not valid in the file's encoding")
    add("ACC{1},Brace Account,+380503330007" + TAIL, reject="account number 'ACC{1}' has characters outside")
    add("ACC'&bridge,Quote Account,+380503330008" + TAIL, reject="has characters outside")
    add("MONEY-1,x,+380503330009,${1},2026-11-21,2026-09-01", reject="balance: amount '${1}' is not a number")
    for row in cyrillic_rows(100, 30):
        add(row)
    path = tmp_path / "accounts.csv"
    path.write_bytes(b"".join(lines))
    return path, expect


def test_hostile_rows_rejected_by_line_and_the_rest_loads(cfg, db, hostile_file):
    path, expect = hostile_file
    rep = import_accounts(cfg, path, progress=False, today=DAY)
    got = {r.line: r.reason for r in rep.rejected}
    for line, why in expect.items():
        assert line in got, f"line {line} was not rejected ({why}); rejected: {got}"
        assert why in got[line], (line, got[line])
    # the unquoted CR/LF row splits into three records; its other two parts are rejected on their own lines
    crlf = min(line for line, w in expect.items() if "fields where" in w)
    assert set(got) - set(expect) == {crlf + 1, crlf + 2}
    assert rep.rejects_file is not None and rep.rejects_file.exists()
    text = rep.rejects_file.read_text(encoding="utf-8")
    assert all(f"line {line}: " in text for line in expect)
    # everything else loaded, the Cyrillic names intact (the junk did not flip the file to cp1251)
    assert Account.select().where(Account.number.startswith("OK-")).count() == 60
    assert Account.get(Account.number == "OK-0").name == "Шевченко Галина Петрівна"
    for i in range(len(NUMBER_ATTACKS)):
        assert Account.get_or_none(Account.number == f"NUM-{i}") is not None
    # names are single-line printable text; nothing with a line break or control character was stored
    for acc in Account.select():
        assert acc.name.isprintable() and "\n" not in acc.name and "\r" not in acc.name, acc.number
    assert Account.get(Account.number == "NL-1").name == "Name api hupall"
    # every number that may be dialed is E.164 digits only; every injection attempt is an invalid phone
    for ph in Phone.select():
        if ph.valid:
            assert re.fullmatch(r"\+[1-9][0-9]{6,14}", ph.e164), ph.raw
    for i, attack in enumerate(NUMBER_ATTACKS):
        phones = list(Phone.select().join(Account).where(Account.number == f"NUM-{i}"))
        for ph in phones:
            if ph.valid:  # only the leading real number of "+380…,sofia/…" survives, as digits
                assert ph.e164 in attack and re.fullmatch(r"\+[0-9]+", ph.e164)
            else:
                assert ph.invalid_reason, ph.raw


def test_declared_encoding_wrong_rejects_those_rows_by_line(cfg, db, tmp_path):
    import dataclasses

    cfg = cfg.replace(imports=dataclasses.replace(cfg.imports, encoding="utf-8"))
    path = tmp_path / "cp1251.csv"
    rows = [HEADER.encode(), f"OK-1,Plain Latin,+380501110001{TAIL}\n".encode(),
            f"CP-1,Шевченко Галина,+380501110002{TAIL}\n".encode("cp1251"),
            f"OK-2,Another,+380501110003{TAIL}\n".encode()]
    path.write_bytes(b"".join(rows))
    rep = import_accounts(cfg, path, progress=False, today=DAY)
    assert [(r.line, "not valid in the file's encoding" in r.reason) for r in rep.rejected] == [(3, True)]
    assert sorted(a.number for a in Account.select()) == ["OK-1", "OK-2"]


def parse_ok(args: str):
    orig = parse_originate(args)
    assert orig.endpoint is not None and orig.endpoint.kind == "gateway"
    return orig


def test_originates_for_every_imported_hostile_account_are_one_leg_to_the_socket(cfg, db, hostile_file):
    """End to end: hostile file -> ledger -> tonight's queue -> the dialer's own originate builder -> the
    FreeSWITCH-style parser of the simulator."""
    path, _ = hostile_file
    import_accounts(cfg, path, progress=False, today=DAY)
    clock = ManualClock(datetime(2026, 11, 23, 16, 30, tzinfo=UTC))  # 18:30 in Kyiv: the window is open
    camp = start_campaign(cfg, DAY, clock)
    cands = next_candidates(camp, clock, 500, set(), set(), cfg=cfg)
    dialed = {c.account.number for c in cands}
    # the numbers-only injections have no valid phone and are never candidates; the others are
    assert {f"NAME-{i}" for i in range(len(NAME_ATTACKS))} <= dialed
    assert "NUM-0" in dialed and "NUM-1" not in dialed and "NUM-5" not in dialed
    for n, c in enumerate(cands):
        uuid = str(uuidlib.uuid4())
        args = originate_command(cfg, attempt_uuid=uuid, attempt_id=n + 1, account=c.account.number,
                                 e164=c.phone.e164, socket_host="127.0.0.1", socket_port=8084)
        assert "\n" not in args and "\r" not in args
        orig = parse_ok(args)
        assert orig.endpoint.number == c.phone.e164 and orig.endpoint.gateway == cfg.dialing.gateway
        assert {k for k, _ in orig.variables} == ORIGINATE_VARS
        assert orig.var("origination_uuid") == uuid and orig.var("ivr_account") == c.account.number
        assert (orig.app, orig.socket_host, orig.socket_port) == ("socket", "127.0.0.1", 8084)
        assert orig.socket_async and orig.socket_full


@pytest.mark.parametrize("name", NAME_ATTACKS + ["Name api hupall", "x" * 200])
def test_a_hostile_name_in_a_channel_variable_stays_one_value_or_is_refused(name):
    """Names never go into the originate today; if a variable carrying one is added (extra_vars), it must still
    be one value of one variable, or refused before anything is sent."""
    kw = dict(uuid=str(uuidlib.uuid4()), attempt_id=7, account="ACC-1", number="+380501234567",
              socket_host="127.0.0.1", socket_port=8084, gateway="trunk", caller_id_number="0441234567",
              caller_id_name="Utility")
    try:
        args = build_originate(**kw, extra_vars={"ivr_name": name})
    except UnsafeValue as exc:
        assert "ivr_name" in str(exc)
        assert any(ch in name for ch in "{}[]'\"\\^|\u202e\u200b\t") or "${" in name or ":_:" in name
        return
    orig = parse_ok(args)
    assert orig.var("ivr_name") == name
    assert orig.endpoint.number == "+380501234567" and orig.app == "socket"
    assert {k for k, _ in orig.variables} == {"origination_uuid", "ivr_attempt_id", "ivr_account",
                                              "origination_caller_id_number", "origination_caller_id_name",
                                              "originate_timeout", "absolute_codec_string", "ivr_name"}
    assert len(split_args(args)) == 2  # still two arguments: the dial string and the socket app


@pytest.mark.parametrize("number", NUMBER_ATTACKS + ["+380501234567\r\napi hupall", "", "+" * 5, "0" * 25])
def test_hostile_numbers_never_reach_a_dial_string(number):
    with pytest.raises(UnsafeValue):
        originate_command(_cfg_default(), attempt_uuid=str(uuidlib.uuid4()), attempt_id=1, account="ACC-1",
                          e164=number, socket_host="127.0.0.1", socket_port=8084)
    with pytest.raises(UnsafeValue):
        build_originate(uuid=str(uuidlib.uuid4()), attempt_id=1, account="ACC-1", number=number,
                        socket_host="127.0.0.1", socket_port=8084, gateway="trunk")


@pytest.mark.parametrize("account", ["ACC,1", "ACC}x", "A B", "ACC\n", "ACC${x}", "A'&bridge"])
def test_hostile_account_value_is_escaped_or_refused(account):
    try:
        args = build_originate(uuid=str(uuidlib.uuid4()), attempt_id=1, account=account, number="+380501234567",
                               socket_host="127.0.0.1", socket_port=8084, gateway="trunk")
    except UnsafeValue:
        return
    try:
        orig = parse_ok(args)
    except OriginateError as exc:  # pragma: no cover - would mean an escape broke the block
        raise AssertionError(f"{account!r} broke the originate: {exc}") from exc
    assert orig.var("ivr_account") == account and orig.app == "socket"


def _cfg_default():
    from ivr.config import parse_config

    return parse_config({}, env={})


@pytest.mark.parametrize("value", ["x\nEvent-Name: FORGED", "x\r\n\r\nContent-Type: api/response", "x\n\nhupall"])
def test_a_value_carrying_line_breaks_never_becomes_a_header(value):
    """A caller-controlled value (a caller id name, a variable) arrives percent-encoded; decoding it must not
    turn its line breaks into headers or frames of their own."""
    from urllib.parse import quote

    from ivr.switch.framing import FrameParser, parse_event

    body = (f"Event-Name: CHANNEL_ANSWER\nUnique-ID: u-1\nCaller-Caller-ID-Name: {quote(value, safe='')}\n"
            "variable_ivr_attempt_id: 7\n\n").encode()
    stream = b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % len(body) + body
    frames = FrameParser().feed(stream)
    assert len(frames) == 1
    ev = parse_event(frames[0])
    assert ev.name == "CHANNEL_ANSWER" and ev.get_all("Event-Name") == ["CHANNEL_ANSWER"]
    assert ev["Caller-Caller-ID-Name"] == value  # decoded, whole, in its own header
    assert [k for k, _ in ev.items()] == ["Event-Name", "Unique-ID", "Caller-Caller-ID-Name",
                                          "variable_ivr_attempt_id"]
    assert "Content-Type" not in ev and ev.variable("ivr_attempt_id") == "7"
