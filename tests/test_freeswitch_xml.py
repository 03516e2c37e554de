"""The files an admin drops into FreeSWITCH (freeswitch/): well-formed XML that matches what the dialer expects."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ivr.config import Config

FS = Path(__file__).resolve().parent.parent / "freeswitch"
XML_FILES = sorted(FS.rglob("*.xml"))


def params(elem: ET.Element) -> dict[str, str]:
    return {p.get("name"): p.get("value") for p in elem.iter("param")}


def test_the_expected_files_are_there():
    names = {p.relative_to(FS).as_posix() for p in XML_FILES}
    assert {"autoload_configs/event_socket.conf.xml", "sip_profiles/external/trunk.xml",
            "dialplan/ivr_paynow.xml", "vars_ivr.xml"} <= names
    assert (FS / "README.md").is_file()


@pytest.mark.parametrize("path", XML_FILES, ids=lambda p: p.relative_to(FS).as_posix())
def test_every_file_parses(path):
    root = ET.parse(path).getroot()
    assert root.tag in ("configuration", "include")


def test_paynow_extension_matches_the_default_transfer_target():
    extension, dialplan, context = Config().callflow.paynow_transfer.split()
    assert dialplan == "XML"
    root = ET.parse(FS / "dialplan/ivr_paynow.xml").getroot()
    contexts = [c for c in root.iter("context") if c.get("name") == context]
    assert len(contexts) == 1, f"context {context} missing"
    matched = []
    for ext in contexts[0].iter("extension"):
        for cond in ext.iter("condition"):
            if cond.get("field") == "destination_number" and re.search(cond.get("expression"), extension):
                matched.append((ext, cond))
    assert len(matched) == 1, f"no single extension in {context} answers destination {extension}"
    ext, cond = matched[0]
    assert ext.get("name") == extension
    apps = [a.get("application") for a in cond.iter("action")]
    assert "bridge" in apps or "callcenter" in apps  # it really connects the debtor somewhere
    assert apps[-1] == "hangup"  # a failed bridge does not leave the debtor in silence


def test_paynow_destination_variable_is_defined_in_vars():
    dialplan = (FS / "dialplan/ivr_paynow.xml").read_text(encoding="utf-8")
    used = set(re.findall(r"\$\$\{(\w+)\}", dialplan))
    root = ET.parse(FS / "vars_ivr.xml").getroot()
    defined = {pp.get("data").split("=", 1)[0] for pp in root.iter("X-PRE-PROCESS") if pp.get("cmd") == "set"}
    assert used and used <= defined


def test_gateway_template_has_the_fields_and_the_configured_name():
    root = ET.parse(FS / "sip_profiles/external/trunk.xml").getroot()
    gateways = list(root.iter("gateway"))
    assert [g.get("name") for g in gateways] == [Config().dialing.gateway]
    p = params(gateways[0])
    for key in ("username", "password", "realm", "proxy", "register", "expire-seconds", "retry-seconds",
                "caller-id-in-from", "ping", "context"):
        assert p.get(key), f"gateway param {key} missing"
    assert p["register"] in ("true", "false")
    assert p["context"] == "public"  # calls from the carrier never land in the default context


def test_event_socket_listens_and_has_a_password():
    root = ET.parse(FS / "autoload_configs/event_socket.conf.xml").getroot()
    assert root.get("name") == "event_socket.conf"
    p = params(root)
    assert p["listen-ip"] and int(p["listen-port"]) == Config().freeswitch.port
    assert p["password"] and p["password"] != "ClueCon"  # a placeholder to change, never the stock secret
    assert p["apply-inbound-acl"]


def test_codec_preferences_put_pcmu_first():
    root = ET.parse(FS / "vars_ivr.xml").getroot()
    sets = dict(pp.get("data").split("=", 1) for pp in root.iter("X-PRE-PROCESS") if pp.get("cmd") == "set")
    for key in ("global_codec_prefs", "outbound_codec_prefs"):
        assert sets[key].split(",")[0] == "PCMU"
    assert Config().dialing.codec_string.split(":")[0] == "PCMU"


def test_readme_names_every_file_and_setting_an_admin_needs():
    text = (FS / "README.md").read_text(encoding="utf-8")
    for needle in ("event_socket.conf.xml", "trunk.xml", "ivr_paynow.xml", "vars_ivr.xml", "IVR_ESL_PASSWORD",
                   "outbound_advertise_host", "dialing.gateway", "dial_string", "number_format", "playback_dir",
                   "ivr call", "apply-inbound-acl"):
        assert needle in text, needle


def test_inbound_dialplan_answers_and_hands_the_call_to_the_call_flow_socket():
    root = ET.parse(FS / "dialplan/ivr_inbound.xml").getroot()
    actions = [(a.get("application"), a.get("data") or "") for a in root.iter("action")]
    apps = [a for a, _ in actions]
    assert apps.index("answer") < apps.index("socket")
    socket_data = dict(actions)["socket"]
    assert socket_data == "$${ivr_callflow_socket} async full"  # async full: the call flow's sendmsg model
    assert 'data="ivr_callflow_socket=' in (FS / "vars_ivr.xml").read_text(encoding="utf-8")
