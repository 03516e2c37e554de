"""The simulator's inbound calls (a debtor calling back): the event order against the real server's inbound legs,
and the script format for a debtor who "calls back at 19:40"."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from callflow_support import events
from waiting import wait_until

from ivr.clock import ScaledClock
from ivr.errors import IvrError
from ivr.sim import Debtor, Script, SimServer
from ivr.switch.outbound import OutboundServer

STATE = ("Channel-State", "Channel-Call-State", "Answer-State", "Call-Direction")


def _inbound_leg(evs):
    """The events of the inbound (B) leg of a real capture, dialplan set/export steps left out."""
    b = next(e.get("Unique-ID") for e in evs if e.get("Call-Direction") == "inbound")
    out = [e for e in evs if e.get("Unique-ID") == b and e.get("Application") not in ("set", "export")]
    return out


def test_callback_runs_the_inbound_dialplan_in_the_real_order():
    real = _inbound_leg(events("inbound_call_heard"))
    # the capture's B leg: CREATE, EXECUTE answer, PROGRESS_MEDIA, ANSWER, EXECUTE_COMPLETE answer, EXECUTE next
    real_head = [(e.name, e.get("Application") or "", *(e.get(h) for h in STATE)) for e in real[:6]]
    assert [r[0] for r in real_head] == ["CHANNEL_CREATE", "CHANNEL_EXECUTE", "CHANNEL_PROGRESS_MEDIA",
                                         "CHANNEL_ANSWER", "CHANNEL_EXECUTE_COMPLETE", "CHANNEL_EXECUTE"]
    clock = ScaledClock(start=datetime(2026, 11, 23, 17, 0, tzinfo=UTC), scale=20.0)
    sim = SimServer(clock=clock, script=Script(default=Debtor.listen())).start()
    seen = []
    real_publish = sim.publish

    def spy(ev):  # read the headers now: an event's channel block is encoded when it is first sent
        seen.append((ev.name, ev.get("Application") or "", *(ev.get(h) for h in STATE)))
        real_publish(ev)

    sim.publish = spy
    served = []
    out = OutboundServer("127.0.0.1", 0, lambda s: served.append(s), hangup_wait=5.0)
    out.start()
    try:
        sim.callback("+380501119001", "+380441234567", "127.0.0.1", out.port)
        wait_until(lambda: any(e[0] == "CHANNEL_DESTROY" for e in seen), "the callback to end")
    finally:
        out.stop()
        sim.stop()
    mine = seen[:6]
    # same names, same states; the app after `answer` is `socket` here (the capture's far end ran `sleep`)
    assert [m[:1] + m[2:] for m in mine] == [r[:1] + r[2:] for r in real_head]
    assert [m[1] for m in mine] == ["", "answer", "", "", "answer", "socket"]
    assert [e[0] for e in seen[6:7]] == ["CHANNEL_PARK"]
    session = served[0]
    data = session.channel_data
    assert data.get("Call-Direction") == "inbound" and data.get("Caller-Caller-ID-Number") == "+380501119001"
    assert data.get("Caller-Destination-Number") == "+380441234567" and data.get("Caller-Context") == "public"
    assert session.variable("ivr_attempt_id") is None


def test_script_callbacks_load_and_bad_ones_name_the_item(tmp_path):
    good = tmp_path / "s.yaml"
    good.write_text('numbers: {"+380501234502": listen}\n'
                    'callbacks:\n  - {number: "+380501234502", at: "19:40", timezone: Europe/Kyiv}\n')
    script = Script.load(good)
    (plan,) = script.callbacks
    assert (plan.number, plan.at, plan.timezone) == ("+380501234502", "19:40", "Europe/Kyiv")
    assert Script.load(script.dump(tmp_path / "again.yaml")).callbacks == script.callbacks
    for bad, words in [('{number: "+380501234502", at: "25:00"}', "HH:MM"),
                       ('{number: "call me", at: "19:40"}', "not a phone number"),
                       ('{number: "+380501234502", at: "19:40", when: 1}', "item 1")]:
        path = tmp_path / "bad.yaml"
        path.write_text(f"callbacks:\n  - {bad}\n")
        with pytest.raises(IvrError, match=words):
            Script.load(path)
