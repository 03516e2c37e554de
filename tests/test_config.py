"""Config loading: typos and bad values are reported by key path with what is allowed; config.yaml documents
every setting with a comment and holds exactly the defaults."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from ivr.cli import main
from ivr.config import Config, ConfigError, describe_defaults, load_config, parse_config

REPO_CONFIG = Path(__file__).resolve().parent.parent / "config.yaml"


def problems_of(data: dict) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data, env={})
    return info.value.problems


def test_a_typo_in_a_key_is_reported_with_its_path_and_the_known_keys():
    problems = problems_of({"pacing": {"chanels": 5}})
    assert len(problems) == 1
    assert problems[0].startswith("pacing.chanels: unknown setting")
    assert "channels" in problems[0]


def test_a_typo_in_a_section_name_is_reported():
    problems = problems_of({"databse": {"url": "sqlite:///x"}})
    assert problems[0].startswith("databse: unknown setting")
    assert "database" in problems[0]


def test_bad_values_name_the_key_the_value_and_what_is_allowed():
    problems = problems_of({"pacing": {"channels": 0, "cps": "fast"},
                            "dialing": {"number_format": "intl"},
                            "windows": {"weekday": ["21:00-18:00"]}})
    text = "\n".join(problems)
    assert len(problems) == 4  # every problem at once, not only the first
    assert "pacing.channels: 0 is not allowed; expected a value from 1 to 10000" in text
    assert "pacing.cps: 'fast' is not allowed; expected a number" in text
    assert "dialing.number_format: 'intl' is not allowed; expected one of e164, e164_digits, national" in text
    assert "windows.weekday[0]: '21:00-18:00'" in text and "end is after its start" in text


def test_values_with_line_breaks_are_refused():
    problems = problems_of({"company": {"name": "Water\r\nEvil: header"}})
    assert problems == ["company.name: 'Water\\r\\nEvil: header' is not allowed; expected a single line (no CR/LF)"]


def test_dial_string_template_must_keep_the_number_slot_and_no_injection_characters():
    assert "dialing.dial_string" in problems_of({"dialing": {"dial_string": "sofia/gateway/trunk/123"}})[0]
    assert "dialing.dial_string" in problems_of({"dialing": {"dial_string": "sofia/{number},x"}})[0]


def test_the_esl_password_can_come_from_the_environment():
    cfg = parse_config({"freeswitch": {"password": "in-file"}}, env={"IVR_ESL_PASSWORD": "from-env"})
    assert cfg.freeswitch.password == "from-env"
    assert parse_config({"freeswitch": {"password": "in-file"}}, env={}).freeswitch.password == "in-file"


def test_load_config_names_the_file_and_resolves_paths_next_to_it(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("eligibility:\n  treshold: 50\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(bad, env={})
    assert str(bad) in str(info.value) and "eligibility.treshold: unknown setting" in str(info.value)

    good = tmp_path / "good.yaml"
    good.write_text("eligibility:\n  threshold: 50\n", encoding="utf-8")
    cfg = load_config(good, env={})
    assert cfg.eligibility.threshold == 50.0
    assert cfg.path("data/x") == tmp_path / "data/x"

    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "missing.yaml", env={})


def test_cli_reports_a_config_typo_without_a_traceback(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text("import:\n  delimeter: ';'\n", encoding="utf-8")
    assert main(["--config", str(path), "db", "version"]) == 2
    err = capsys.readouterr().err
    assert "import.delimeter: unknown setting" in err and "Traceback" not in err


def _yaml_leaves(data: dict, known: set[str], prefix: str = "") -> set[str]:
    out = set()
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if path in known or not isinstance(value, dict):
            out.add(path)
        else:
            out |= _yaml_leaves(value, known, path)
    return out


def test_config_yaml_documents_exactly_the_known_settings_each_with_a_comment():
    defaults = {path for path, _, _ in describe_defaults()}
    text = REPO_CONFIG.read_text(encoding="utf-8")
    assert _yaml_leaves(yaml.safe_load(text), defaults) == defaults
    section = ""
    commented = set()
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        key = line.strip().split(":", 1)[0]
        if indent == 0:
            section = key
        elif indent == 2 and "  # " in line:
            commented.add(f"{section}.{key}")
    assert defaults - commented == set()  # every setting has its one-line comment


def test_config_yaml_holds_the_safe_defaults():
    from_file = load_config(REPO_CONFIG, env={})
    defaults = Config()
    for f in dataclasses.fields(Config):
        if f.metadata.get("internal"):
            continue
        assert getattr(from_file, f.name) == getattr(defaults, f.name), f"config.yaml section {f.name!r}"


def test_an_explicit_empty_environment_is_not_mixed_with_the_real_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./config.yaml here
    monkeypatch.setenv("IVR_CONFIG", str(tmp_path / "elsewhere.yaml"))
    assert load_config(None, env={}) == parse_config({}, tmp_path, env={}).replace(base_dir=Path("."))
    with pytest.raises(ConfigError, match="elsewhere.yaml: file not found"):
        load_config(None)  # the real environment names a file that is not there


def test_a_node_takes_its_own_box_from_the_nodes_section():
    data = {"freeswitch": {"host": "10.0.0.10", "password": "s3cret"}, "pacing": {"channels": 900},
            "nodes": {"box-b": {"freeswitch": {"host": "10.0.0.12", "outbound_advertise_host": "10.0.0.22",
                                               "max_channels": 400}}}}
    shared = parse_config(data, env={})
    assert (shared.freeswitch.host, shared.freeswitch.max_channels) == ("10.0.0.10", 0)
    b = parse_config(data, env={"IVR_NODE": "box-b"})
    assert (b.freeswitch.host, b.freeswitch.outbound_advertise_host, b.freeswitch.max_channels) == (
        "10.0.0.12", "10.0.0.22", 400)
    assert b.freeswitch.password == "s3cret" and b.pacing.channels == 900  # the rest is shared
    assert parse_config(data, env={}, node="box-b").freeswitch.host == "10.0.0.12"


def test_an_unknown_node_or_a_bad_override_is_reported_by_name():
    data = {"nodes": {"box-a": {"freeswitch": {"max_channels": -1}}}}
    with pytest.raises(ConfigError) as info:
        parse_config(data, env={"IVR_NODE": "box-z"})
    assert any("nodes.box-z" in p and "box-a" in p for p in info.value.problems)
    with pytest.raises(ConfigError) as info:
        parse_config(data, env={}, node="box-a")
    assert any(p.startswith("freeswitch.max_channels") for p in info.value.problems)
    with pytest.raises(ConfigError) as info:
        parse_config({"nodes": ["box-a"]}, env={})
    assert any(p.startswith("nodes:") for p in info.value.problems)
