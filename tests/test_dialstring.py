"""build_originate: no input can add a leg, an application, a variable or a second ESL command.

The checks parse the produced string the way FreeSWITCH does (esl-reference §2), with a small model written
here independently of ivr.switch.dialstring: ESL line, argument split, brace block, variable list, legs.
"""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivr.switch.dialstring import build_originate, check_number, escape_value
from ivr.switch.errors import UnsafeValue

UUID = "3606c8ee-569a-444b-a8ee-316b5f2920c6"
SOCKET_ARG = "'&socket(127.0.0.1:8084 async full)'"
BASE_VARS = ["origination_uuid", "ivr_attempt_id", "ivr_account", "origination_caller_id_number",
             "origination_caller_id_name", "originate_timeout", "absolute_codec_string", "execute_on_answer"]

HOSTILE_PIECES = [",", "|", "{", "}", "[", "]", "<", ">", "'", '"', "\\", "^", "^^;", "`", " ", "\r", "\n", "\t",
                  "${", "$", ":_:", ":", "_", "=", "&", ";", "(", ")", "%", "+", "@", "/", ".", "-", "\x00",
                  "\u2028", "\u200b", "\u202e", "Иван", "Петрович", "a", "Z", "0", "9", "&socket(evil)",
                  "\napi uuid_kill all", "},sofia/gateway/evil/900", "}&bridge(x)", "\\,", "''"]
hostile = st.one_of(st.lists(st.sampled_from(HOSTILE_PIECES), max_size=12).map("".join), st.text(max_size=40))


def model_parse(s: str) -> dict:
    """How FreeSWITCH would read `originate <s>`: raises AssertionError where it would see more than we sent."""
    assert "\n" not in s and "\r" not in s, "line break: a second ESL command"
    assert ":_:" not in s, "enterprise originate separator"
    assert "${" not in s, "variable expansion"
    # arguments: split on spaces outside single quotes; a backslash protects the next character
    args, cur, quoted, i = [], "", False, 0
    while i < len(s):
        ch = s[i]
        if ch == "\\" and i + 1 < len(s):
            cur += s[i:i + 2]
            i += 2
            continue
        if ch == "'":
            quoted = not quoted
        if ch == " " and not quoted:
            args.append(cur)
            cur = ""
        else:
            cur += ch
        i += 1
    args.append(cur)
    assert not quoted, "unbalanced quote"
    assert len(args) == 2, f"{len(args)} arguments"
    assert args[1] == SOCKET_ARG, "application changed"
    dial = args[0]
    assert dial.startswith("{") and not dial.startswith("{^^"), "no variable block / separator changed"
    # the block ends at the first '}' by brace depth, quotes ignored
    depth, end = 0, len(dial)
    for pos, ch in enumerate(dial):
        depth += ch == "{"
        depth -= ch == "}"
        if depth == 0:
            end = pos
            break
    assert end < len(dial), "unclosed variable block"
    block, endpoint = dial[1:end], dial[end + 1:]
    assert "{" not in block, "nested block"
    for bad in (",", "|", " ", "'", "{", "}", "[", "<"):
        assert bad not in endpoint, f"{bad!r} in the endpoint: another leg or block"
    # variables: split on ',' not preceded by a backslash
    items, cur, i = [], "", 0
    while i < len(block):
        if block[i] == "\\" and i + 1 < len(block):
            cur += block[i:i + 2]
            i += 2
            continue
        if block[i] == ",":
            items.append(cur)
            cur = ""
        else:
            cur += block[i]
        i += 1
    items.append(cur)
    variables = {}
    for item in items:
        name, eq, value = item.partition("=")
        assert eq and name.isidentifier(), f"not a variable: {item!r}"
        assert name not in variables, f"variable {name} twice"
        if len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1]
        variables[name] = value.replace("\\,", ",")
    return {"vars": variables, "endpoint": endpoint}


def build(**kw) -> str:
    args = dict(uuid=UUID, attempt_id=42, account="ACC-0001", number="+380501234567", socket_host="127.0.0.1",
                socket_port=8084, gateway="trunk", caller_id_number="0000000000", caller_id_name="Utility",
                originate_timeout=30, codec_string="PCMU", max_call_seconds=300)
    args.update(kw)
    return build_originate(**args)


def test_the_usual_string():
    s = build()
    assert s == ("{origination_uuid=3606c8ee-569a-444b-a8ee-316b5f2920c6,ivr_attempt_id=42,ivr_account=ACC-0001,"
                 "origination_caller_id_number=0000000000,origination_caller_id_name=Utility,originate_timeout=30,"
                 "absolute_codec_string=PCMU,execute_on_answer='sched_hangup +300 ALLOTTED_TIMEOUT'}"
                 "sofia/gateway/trunk/+380501234567 '&socket(127.0.0.1:8084 async full)'")
    parsed = model_parse(s)
    assert list(parsed["vars"]) == BASE_VARS
    assert parsed["endpoint"] == "sofia/gateway/trunk/+380501234567"


def test_cyrillic_name_uses_the_form_that_kept_the_whole_value_on_a_real_freeswitch():
    s = build(caller_id_name="Иванов, Иван Петрович")
    assert "origination_caller_id_name='Иванов\\, Иван Петрович'" in s      # transcript form F1
    assert model_parse(s)["vars"]["origination_caller_id_name"] == "Иванов, Иван Петрович"


def test_the_model_catches_naive_pasting():
    # the checker is not vacuous: values pasted in unescaped are caught
    naive = "{ivr_account=%s}sofia/gateway/trunk/%s " + SOCKET_ARG
    for account, number in (("x,evil=1", "1"), ("x}y", "1"), ("a b", "1"), ("a", "1,sofia/x/2"),
                            ("a", "1|x"), ("a", "1\n\napi x"), ("${x}", "1")):
        with pytest.raises(AssertionError):
            parsed = model_parse(naive % (account, number))
            assert list(parsed["vars"]) == ["ivr_account"] and parsed["vars"]["ivr_account"] == account


def test_codec_list_and_extra_variables():
    s = build(codec_string="PCMU:PCMA", extra_vars={"ivr_debtor_name": "Іваненко, О."})
    v = model_parse(s)["vars"]
    assert v["absolute_codec_string"] == "PCMU,PCMA" and v["ivr_debtor_name"] == "Іваненко, О."
    with pytest.raises(UnsafeValue, match="set by the dialer"):
        build(extra_vars={"origination_uuid": "x"})
    with pytest.raises(UnsafeValue):
        build(extra_vars={"a b": "x"})


@pytest.mark.parametrize("number", ["123,456", "123|456", "+1 &bridge(x)", "1\n\napi status", "+", "12", "1+2",
                                    "++123", "١٢٣٤", "123:_:456", "0" * 21, "", " 123", "123\r", 380501234567, None])
def test_hostile_numbers_are_refused(number):
    with pytest.raises(UnsafeValue):
        build(number=number)


@pytest.mark.parametrize("field,value", [
    ("uuid", "3606c8ee-569a-444b-a8ee-316b5f2920c6,x=1"), ("uuid", "not-a-uuid"), ("attempt_id", "1,x=2"),
    ("attempt_id", True), ("gateway", "trunk/1,sofia/gateway/evil"), ("socket_host", "1.2.3.4 &park"),
    ("socket_port", "8084"), ("socket_port", 70000), ("originate_timeout", "30"), ("max_call_seconds", 0),
    ("template", "sofia/gateway/{gateway}/{number},sofia/gateway/evil/1"), ("template", "user/{gateway}"),
    ("template", "sofia/{number}|sofia/x"), ("template", "sofia/{number}:_:x"), ("caller_id_number", "1 2"),
    ("codec_string", "PCMU,PCMA"), ("account", ""), ("account", "A" * 300), ("caller_id_name", "x}&bridge(y)"),
    ("caller_id_name", "${sound_prefix}"), ("caller_id_name", "a'b"), ("caller_id_name", "a\\"),
    ("caller_id_name", "^^;x"), ("caller_id_name", "x\ny"), ("caller_id_name", "evil\u202egnp"),
])
def test_each_slot_refuses_what_could_escape_it(field, value):
    with pytest.raises(UnsafeValue) as err:
        build(**{field: value})
    assert str(err.value)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(account=hostile, name=hostile, extra=hostile)
def test_no_value_adds_a_leg_an_application_a_variable_or_a_command(account, name, extra):
    try:
        s = build(account=account, caller_id_name=name, extra_vars={"ivr_debtor_name": extra})
    except UnsafeValue:
        return
    parsed = model_parse(s)
    expected = [n for n in BASE_VARS if n != "origination_caller_id_name" or name] + ["ivr_debtor_name"]
    assert list(parsed["vars"]) == expected
    assert parsed["vars"]["ivr_account"] == account and parsed["vars"]["ivr_debtor_name"] == extra
    if name:
        assert parsed["vars"]["origination_caller_id_name"] == name
    assert parsed["endpoint"] == "sofia/gateway/trunk/+380501234567"


@settings(max_examples=300)
@given(number=st.one_of(hostile, st.from_regex(r"\+?[0-9]{3,20}", fullmatch=True)),
       template=st.one_of(st.sampled_from(["sofia/gateway/{gateway}/{number}", "sofia/external/{number}@10.0.0.1:5060",
                                           "loopback/{number}/default"]), hostile.map(lambda t: t + "{number}")))
def test_no_number_or_template_adds_a_leg(number, template):
    try:
        s = build(number=number, template=template)
    except UnsafeValue:
        return
    assert check_number(number) == number
    parsed = model_parse(s)
    assert parsed["endpoint"] == template.replace("{gateway}", "trunk").replace("{number}", number)
    assert list(parsed["vars"]) == BASE_VARS


@settings(max_examples=300)
@given(value=hostile)
def test_escape_value_roundtrip_or_refusal(value):
    try:
        out = escape_value(value, "x")
    except UnsafeValue:
        # refused only for a reason: empty, too long, a forbidden character or sequence, an invisible character
        assert value == "" or len(value) > 256 or any(c in value for c in "{}[]<>'\"\\^|`") or "${" in value \
            or ":_:" in value or any(unicodedata.category(c)[0] in "CZ" and c != " " for c in value)
        return
    inner = out[1:-1] if out.startswith("'") else out
    assert inner.replace("\\,", ",") == value
    assert "," not in inner.replace("\\,", "")
