"""The dialer loop against small fakes (an event socket that plays scripted calls, a list queue, a fake flow).

What is checked here without the simulator: the Attempt row exists before its originate is sent; events update
rows; finalize writes the outcome and reports it to the queue once; a flow exception stays in its call; the cap
holds; a trunk fault pauses the campaign; pause/stop commands; reconciliation after a crash.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from types import SimpleNamespace
from typing import Any

import factories
import gevent
import gevent.event
import pytest
from waiting import join, wait_until

import ivr.dialer.dialer as dialer_mod
from ivr.callflow.results import CallResult
from ivr.campaign.queue import Candidate
from ivr.clock import ScaledClock
from ivr.dialer.dialer import Dialer
from ivr.dialer.reconcile import reconcile
from ivr.dialer.tracker import Compiled
from ivr.ledger.models import (
    Account,
    Attempt,
    CallbackRequest,
    Campaign,
    DialerNode,
    Phone,
    QueueEntry,
    database,
)
from ivr.ledger.sqlcount import StatementCounter

DAY = date(2026, 11, 23)


class Ev:
    def __init__(self, name: str, uuid: str, **headers: str) -> None:
        self.name, self.uuid, self.headers = name, uuid, headers

    def get(self, h: str, default: str = "") -> str:
        return self.headers.get(h, default)


class FakeSession:
    def __init__(self, uuid: str, attempt_id: int) -> None:
        self.uuid, self._aid, self.hungup = uuid, attempt_id, False

    def variable(self, name: str) -> str | None:
        return str(self._aid) if name == "ivr_attempt_id" else None

    def hangup(self, cause: str = "NORMAL_CLEARING") -> None:
        self.hungup = True


class FakeEsl:
    """Plays each originate per number: 'busy', 'gateway', 'flow:<outcome>', 'boom' (flow raises), 'hold'."""

    def __init__(self, plan: dict[str, str]) -> None:
        self.plan = plan
        self.state = "connected"
        self.reconnects = 0
        self.handlers: list = []
        self.state_fns: list = []
        self.up: set[str] = set()
        self.peak = 0
        self.sent: list[str] = []
        self.rows_before_send: list[bool] = []
        self.dialer: Dialer | None = None
        self.held: dict[str, gevent.event.Event] = {}
        self.killed: list[str] = []

    def add_handler(self, fn) -> None:
        self.handlers.append(fn)

    def on_state(self, fn) -> None:
        self.state_fns.append(fn)

    def subscribe(self, names) -> None:
        pass

    def api(self, cmd: str) -> str:
        if cmd.startswith("uuid_exists "):
            return "true" if cmd.split()[1] in self.up else "false"
        if cmd.startswith("uuid_kill "):  # replies as in the inbound_api_channel_control capture
            if cmd.split()[1] in self.up:
                self.up.discard(cmd.split()[1])
                self.killed.append(cmd.split()[1])
                return "+OK\n"
            return "-ERR No such channel!\n"  # also right after the originate, before the channel exists
        if cmd == "show channels as json":
            return json.dumps({"row_count": len(self.up), "rows": [{"uuid": u} for u in self.up]})
        return "-ERR"

    def emit(self, ev: Ev) -> None:
        for h in self.handlers:
            h(ev)

    def bgapi(self, cmd: str):
        uuid = re.search(r"origination_uuid=([0-9a-f-]+)", cmd)[1]
        number = cmd.rsplit("/", 1)[1]
        self.sent.append(number)
        self.rows_before_send.append(Attempt.select().where(Attempt.uuid == uuid).exists())
        res = gevent.event.AsyncResult()
        gevent.spawn(self._play, uuid, number, res)
        return res

    def _play(self, uuid: str, number: str, res) -> None:
        what = self.plan.get(number, "flow:heard")
        if what == "gateway":
            res.set("-ERR INVALID_GATEWAY\n")
            return
        self.up.add(uuid)
        self.peak = max(self.peak, len(self.up))
        gevent.sleep(0.002)
        if what == "busy":
            self.up.discard(uuid)
            self.emit(Ev("CHANNEL_HANGUP_COMPLETE", uuid, **{"Hangup-Cause": "USER_BUSY"}))
            res.set("-ERR USER_BUSY\n")
            return
        self.emit(Ev("CHANNEL_ANSWER", uuid))
        res.set(f"+OK {uuid}\n")
        if what == "hold":
            self.held[uuid] = gevent.event.Event()
            self.held[uuid].wait()
        else:
            aid = Attempt.get(Attempt.uuid == uuid).id
            self.dialer._on_session(FakeSession(uuid, aid))
        self.up.discard(uuid)
        self.emit(Ev("CHANNEL_HANGUP_COMPLETE", uuid, **{"Hangup-Cause": "NORMAL_CLEARING",
                                                          "variable_duration": "12", "variable_billsec": "11"}))


@dataclass
class FakeQueue:
    """A list of candidates; records every result."""

    cands: list = field(default_factory=list)
    results: list = field(default_factory=list)
    clock: Any = None  # the dialer's clock: "due now" must be the test's now, not the wall clock's

    def next_candidates(self, campaign, clock, limit, busy_accounts, busy_numbers):
        out = []
        for c in list(self.cands):
            if len(out) >= limit:
                break
            if c.account.id in busy_accounts or c.phone.e164 in busy_numbers:
                continue
            self.cands.remove(c)
            out.append(c)
        return out

    def record_result(self, entry, outcome, cause, clock, attempt=None):
        self.results.append((entry.account.number, outcome, cause))
        QueueEntry.update(state="done", outcome=outcome).where(QueueEntry.id == entry.id).execute()

    def release(self, entries, clock):
        pass

    def next_wakeup(self, campaign):
        return self.clock.now() if self.cands else None


def _flow(session, ctx) -> CallResult:
    outcome = ctx.outcome
    if outcome == "boom":
        raise RuntimeError("prompt file missing")
    r = CallResult(outcome=outcome, heard=outcome in ("heard", "callback"), heard_ms=5000, message_ms=5000,
                   digits={"callback": "2", "already_paid": "3", "wrong_number": "9"}.get(outcome, ""))
    r.callback = outcome == "callback"
    return r


def _setup(cfg, plan: dict[str, str], n: int | None = None, channels: int = 30, cps: float = 50.0,
           scale: float = 50.0):
    cfg = cfg.replace(pacing=cfg.pacing.__class__(**{**cfg.pacing.__dict__, "channels": channels, "cps": cps}))
    camp = Campaign.create(day=DAY, status="running")
    clock = ScaledClock(start=datetime(2026, 11, 23, 16, 0, tzinfo=UTC), scale=scale)
    q = FakeQueue(clock=clock)
    numbers = list(plan) if n is None else [f"+3805000000{i:02d}" for i in range(n)]
    for i, number in enumerate(numbers):
        acc = Account.create(number=f"ACC-{i:03d}", name=f"N{i}", district=f"D{i % 2}")
        phone = Phone.create(account=acc, position=0, raw=number, e164=number)
        entry = QueueEntry.create(campaign=camp, account=acc, state="dialing")
        q.cands.append(Candidate(entry, acc, phone, []))
    esl = FakeEsl(plan)

    def context(flight):
        return SimpleNamespace(outcome=plan.get(flight.e164, "flow:heard").split(":")[-1])

    d = Dialer(cfg, esl, clock, speech=None, node="test-node", queue=q, run_call=_flow, context_factory=context)
    esl.dialer = d
    d.attach_esl()
    return d, esl, q, camp


@pytest.fixture(autouse=True)
def _plain_originate(monkeypatch):
    monkeypatch.setattr(dialer_mod, "originate_command",
                        lambda cfg, **kw: f"{{origination_uuid={kw['attempt_uuid']}}}x/{kw['e164']}")


def _run(d, camp):
    return join(gevent.spawn(d.run, camp), "the dialer to finish the campaign")


def _ticks(d) -> list[int]:
    """Count the dialer loop's turns: "nothing more was dialed" is checked over turns of the loop, not time."""
    n = [0]

    def tick(_d) -> None:
        n[0] += 1

    d.on_tick = tick
    return n


def _wait_turns(d, n: list[int], turns: int, what: str) -> None:
    target = n[0] + turns
    wait_until(lambda: n[0] >= target, f"{turns} more turns of the dialer loop ({what})")


def test_outcomes_written_and_row_before_originate(cfg, db):
    plan = {"+380500000001": "flow:heard", "+380500000002": "busy", "+380500000003": "flow:callback",
            "+380500000004": "boom", "+380500000005": "flow:already_paid", "+380500000006": "flow:wrong_number"}
    d, esl, q, camp = _setup(cfg, plan)
    _run(d, camp)
    assert esl.rows_before_send == [True] * 6
    by_num = {a.e164: a for a in Attempt.select()}
    assert by_num["+380500000001"].outcome == "heard" and by_num["+380500000001"].heard
    assert by_num["+380500000001"].billsec_s == 11 and by_num["+380500000001"].state == "ended"
    assert by_num["+380500000002"].outcome == "busy" and by_num["+380500000002"].hangup_cause == "USER_BUSY"
    assert by_num["+380500000003"].outcome == "callback" and by_num["+380500000003"].digits == "2"
    # the flow's exception stayed in its own call: answered, nothing heard -> early hang-up, detail says why
    assert by_num["+380500000004"].outcome == "early_hangup"
    assert "prompt file missing" in by_num["+380500000004"].detail
    cb = CallbackRequest.get()
    assert (cb.e164, cb.district, cb.account.number) == ("+380500000003", "D0", "ACC-002")
    assert Account.get(Account.number == "ACC-004").claimed_paid_at is not None
    assert Phone.get(Phone.e164 == "+380500000006").valid is False
    assert sorted(r[1] for r in q.results) == sorted(
        ["heard", "busy", "callback", "early_hangup", "already_paid", "wrong_number"])
    assert Attempt.select().where(Attempt.outcome == "").count() == 0
    assert Campaign.get_by_id(camp.id).status == "done"


def test_claims_whose_calls_could_not_be_written_go_back_to_the_queue(cfg, db, monkeypatch):
    # The database connection drops between the queue's claim and the calls' rows (seen with pg_terminate_backend
    # in the two-node fault test): the claimed debtors must be given back and called, not left 'dialing' while the
    # evening ends without them.
    import peewee as pw

    plan = {f"+38050000020{i}": "flow:heard" for i in range(4)}
    d, esl, q, camp = _setup(cfg, plan, channels=2)
    by_entry = {c.entry.id: c for c in q.cands}
    given_back: list[int] = []

    def release(entries, clock):  # as the real queue's: only what is still claimed goes back
        back = [e.id for e in entries if QueueEntry.get_by_id(e.id).state == "dialing"]
        given_back.extend(back)
        q.cands[:0] = [by_entry[i] for i in back if by_entry[i] not in q.cands]

    q.release = release
    real, tries, failed, back_before_retry = dialer_mod.claim_slots, [], set(), []

    def drops_once(cap, rows, lease=None):
        tries.append(1)
        if len(tries) == 1:
            failed.update(r["account"] for r in rows)
            raise pw.OperationalError("terminating connection due to administrator command")
        if len(tries) == 2:
            back_before_retry.extend(given_back)
        return real(cap, rows, lease)

    monkeypatch.setattr(dialer_mod, "claim_slots", drops_once)
    # another live node: reconciliation may then not release 'dialing' entries itself (that node could be
    # mid-claim), so the node whose claim failed has to give its own back
    DialerNode.create(name="other-node")
    _run(d, camp)
    # the failed claim's entries came back before anything else was claimed
    assert d.stats.db_errors == 1 and failed
    assert {by_entry[i].account.id for i in back_before_retry} >= failed
    assert sorted(r[0] for r in q.results) == sorted(f"ACC-{i:03d}" for i in range(4))
    assert {r[1] for r in q.results} == {"heard"} and Attempt.select().count() == 4


def test_a_calls_end_or_facts_ride_on_its_outcome_write(cfg, db):
    """Three statements fewer per call: no 'originated' write; a channel that ends while no flow runs is written
    with the outcome in one UPDATE; the facts of a flow that ends after its channel ride on that UPDATE too."""
    plan = {"+380500000001": "busy", "+380500000002": "flow:heard", "+380500000003": "flow:gone_first"}
    d, esl, q, camp = _setup(cfg, plan)

    def flow(session, ctx) -> CallResult:
        if ctx.outcome == "gone_first":  # the debtor hangs up while the flow still runs
            esl.emit(Ev("CHANNEL_HANGUP_COMPLETE", session.uuid, **{"Hangup-Cause": "NORMAL_CLEARING",
                                                                     "variable_duration": "7",
                                                                     "variable_billsec": "6"}))
            return CallResult(outcome="heard", heard=True, heard_ms=4000, message_ms=4000, digits="")
        return _flow(session, ctx)

    d.run_call = flow
    with StatementCounter(database.obj) as counted:
        _run(d, camp)
    # busy: end+outcome; heard: answered, facts, end+outcome; gone first: answered, end, facts+outcome
    assert counted.kinds["UPDATE attempt"] == 1 + 3 + 3, counted.top(20)
    rows = {a.e164: a for a in Attempt.select()}
    busy, heard, gone = rows["+380500000001"], rows["+380500000002"], rows["+380500000003"]
    assert (busy.state, busy.outcome, busy.hangup_cause) == ("ended", "busy", "USER_BUSY")
    assert busy.ended_at is not None
    assert (heard.state, heard.outcome, heard.billsec_s, heard.heard, heard.heard_ms) == ("ended", "heard", 11,
                                                                                         True, 5000)
    assert heard.answered_at is not None and heard.detail.startswith("flow=heard")
    assert (gone.state, gone.outcome, gone.billsec_s, gone.heard, gone.heard_ms, gone.message_ms) == (
        "ended", "heard", 6, True, 4000, 4000)
    assert gone.detail.startswith("flow=heard") and gone.hangup_cause == "NORMAL_CLEARING"
    assert sorted(r[1] for r in q.results) == ["busy", "heard", "heard"]


def test_a_compiled_statement_refuses_values_bound_to_the_wrong_columns(db):
    """peewee writes SET columns in the model's order, whatever order they were passed in: a statement whose
    declared order differs would bind values to the wrong columns, so it refuses to build."""
    wrong = Compiled(lambda: Attempt.update(outcome="", state="ended"), ("outcome", "state"))
    with pytest.raises(ValueError, match="SET columns"):
        wrong(1, 2)
    assert Compiled(lambda: Attempt.update(outcome="", state="ended"), ("state", "outcome")).sql().startswith(
        'UPDATE "attempt" SET "state" = ')


def test_cap_never_exceeded(cfg, db):
    d, esl, q, camp = _setup(cfg, {}, n=40, channels=3, cps=1000.0)
    _run(d, camp)
    assert len(esl.sent) == 40
    assert esl.peak <= 3
    assert d.stats.peak_in_flight <= 3


def test_this_boxs_own_cap_holds_under_the_shared_cap(cfg, db):
    import dataclasses

    cfg = cfg.replace(freeswitch=dataclasses.replace(cfg.freeswitch, max_channels=2))
    d, esl, q, camp = _setup(cfg, {}, n=20, channels=30, cps=1000.0)
    _run(d, camp)
    assert len(esl.sent) == 20
    assert esl.peak <= 2 and d.stats.peak_in_flight == 2  # reached, never passed


def test_invalid_gateway_pauses_campaign(cfg, db):
    plan = {f"+3805000000{i:02d}": "gateway" for i in range(5)}
    d, esl, q, camp = _setup(cfg, plan, cps=2.0, scale=1.0)
    turns = _ticks(d)
    g = gevent.spawn(d.run, camp)
    wait_until(lambda: Campaign.get_by_id(camp.id).status == "paused", "the campaign to pause")
    assert d.paused
    c = Campaign.get_by_id(camp.id)
    assert c.status_reason.startswith("INVALID_GATEWAY") and "dialing.gateway" in c.status_reason
    sent = len(esl.sent)
    assert sent < 5  # stopped dialing
    _wait_turns(d, turns, 3, "paused by the trunk fault")  # at cps 2 a running loop would dial again here
    assert len(esl.sent) == sent
    assert all(o == "trunk_error" for _, o, _ in q.results)
    d.stop()
    join(g, "the dialer to stop")


def test_pause_and_stop_commands(cfg, db):
    d, esl, q, camp = _setup(cfg, {}, n=30, cps=5.0, scale=1.0)
    turns = _ticks(d)
    g = gevent.spawn(d.run, camp)
    wait_until(lambda: len(esl.sent) >= 2, "two calls placed")
    factories.set_control("command", "pause")
    wait_until(lambda: d.paused, "the pause command to be applied")
    assert Campaign.get_by_id(camp.id).status == "paused"
    sent = len(esl.sent)
    _wait_turns(d, turns, 3, "paused by command")  # at cps 5 a running loop would dial again here
    assert len(esl.sent) == sent
    factories.set_control("command", "stop")
    join(g, "the stop command to end the run")
    assert Campaign.get_by_id(camp.id).status == "stopped"
    assert len(esl.sent) < 30


def test_reconcile_after_crash(cfg, db):
    """Rows left in flight by a crashed run: a gone channel is re-queued as unknown; a live one (nobody runs its
    call flow any more) is hung up with uuid_kill and settled at once as an early hang-up."""
    d, esl, q, camp = _setup(cfg, {}, n=3)
    entries = list(QueueEntry.select().order_by(QueueEntry.id))
    gone = Attempt.create(uuid="00000000-0000-0000-0000-000000000001", campaign=camp, account=entries[0].account,
                          e164="+380500000000", node="test-node", state="answered")
    alive = Attempt.create(uuid="00000000-0000-0000-0000-000000000002", campaign=camp, account=entries[1].account,
                           e164="+380500000001", node="test-node", state="answered")
    # the flow wrote its verdict, then the process died before the hangup was seen
    heard = Attempt.create(uuid="00000000-0000-0000-0000-000000000003", campaign=camp, account=entries[2].account,
                           e164="+380500000002", node="test-node", state="answered", heard=True,
                           detail="flow=heard")
    esl.up.add(alive.uuid)
    d.campaign = camp
    counts = reconcile(d)
    assert counts["lost"] == 2 and counts["killed"] == 1 and counts["taken"] == 3  # an earlier run's rows
    assert Attempt.get_by_id(gone.id).state == "unknown" and Attempt.get_by_id(gone.id).outcome == "unknown"
    assert Attempt.get_by_id(heard.id).outcome == "heard"
    assert ("ACC-000", "unknown", "") in q.results and ("ACC-002", "heard", "") in q.results
    assert esl.killed == [alive.uuid] and alive.uuid not in esl.up  # hung up on the switch: nothing lingers
    a = Attempt.get_by_id(alive.id)
    assert (a.state, a.outcome, a.hangup_cause) == ("ended", "early_hangup", "TAKEN_OVER")
    assert ("ACC-001", "early_hangup", "") in q.results
    assert not d.tracker.flights
    # its late HANGUP_COMPLETE changes nothing
    esl.emit(Ev("CHANNEL_HANGUP_COMPLETE", alive.uuid, **{"Hangup-Cause": "NORMAL_CLEARING"}))
    assert Attempt.get_by_id(alive.id).outcome == "early_hangup" and len(q.results) == 3


def test_late_events_do_not_move_rows_back(cfg, db):
    d, esl, q, camp = _setup(cfg, {"+380500000001": "hold"})
    g = gevent.spawn(d.run, camp)
    wait_until(lambda: esl.held, "the held call to be answered")
    uuid = next(iter(esl.held))
    esl.up.discard(uuid)
    esl.emit(Ev("CHANNEL_HANGUP_COMPLETE", uuid, **{"Hangup-Cause": "NO_ANSWER"}))
    esl.emit(Ev("CHANNEL_ANSWER", uuid))  # late, out of order
    a = Attempt.get(Attempt.uuid == uuid)
    assert a.state == "ended" and a.outcome == "early_hangup"
    esl.held[uuid].set()
    join(g, "the dialer to finish")
    assert Attempt.get(Attempt.uuid == uuid).state == "ended"
    assert len(q.results) == 1  # finalized once despite the second HANGUP_COMPLETE


def test_originate_command_carries_everything(cfg):
    from ivr.dialer.originate import format_number, originate_command
    from ivr.switch.errors import UnsafeValue

    cmd = originate_command(cfg, attempt_uuid="0a1b2c3d-0000-4000-8000-000000000001", attempt_id=42,
                            account="ACC-0001", e164="+380501234567", socket_host="10.0.0.5", socket_port=8084)
    for part in ("origination_uuid=0a1b2c3d-0000-4000-8000-000000000001", "ivr_attempt_id=42",
                 "ivr_account=ACC-0001", "originate_timeout=30", "absolute_codec_string=PCMU",
                 "sched_hangup +300", "sofia/gateway/trunk/+380501234567", "'&socket(10.0.0.5:8084 async full)'",
                 f"playback_terminators={'12' if cfg.callflow.barge_in else 'none'}"):
        assert part in cmd
    assert format_number("+380501234567", "e164_digits") == "380501234567"
    assert format_number("+380501234567", "national") == "0501234567"
    with pytest.raises(UnsafeValue):
        format_number("+38050 123", "e164")
    with pytest.raises(UnsafeValue):
        originate_command(cfg, attempt_uuid="0a1b2c3d-0000-4000-8000-000000000001", attempt_id=1,
                          account="A}{", e164="+380501234567", socket_host="h", socket_port=1)


def test_reconnect_reconcile_spares_calls_whose_originate_may_be_in_transit(cfg, db, monkeypatch):
    """After a failed send the channel may still appear: a young flight is asked about again later."""
    import ivr.dialer.reconcile as rec

    d, esl, q, camp = _setup(cfg, {"+380500000001": "hold"})
    d.campaign = camp
    c = q.cands.pop()
    lease = d.ensure_lease()
    att = Attempt.create(uuid="00000000-0000-0000-0000-00000000000a", campaign=camp, account=c.account,
                         e164=c.phone.e164, node=lease.node, epoch=lease.epoch, state="created")
    flight = dialer_mod.Flight(attempt_id=att.id, uuid=att.uuid, account_id=c.account.id, e164=c.phone.e164,
                               entry=c.entry, candidate=c)
    d.tracker.add(flight)
    counts = reconcile(d)
    assert counts["young"] == 1 and counts["lost"] == 0
    assert Attempt.get_by_id(att.id).state == "created" and d._need_reconcile
    monkeypatch.setattr(rec, "YOUNG_SECONDS", 0.0)
    counts = reconcile(d)
    assert counts["lost"] == 1
    a = Attempt.get_by_id(att.id)
    assert (a.state, a.outcome) == ("unknown", "unknown")
    assert q.results == [(c.account.number, "unknown", "")]


@pytest.fixture
def keep_logging():
    """The CLI points the root logger at this test's (captured) stderr; put the old handlers back after."""
    import logging

    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in saved:
        root.addHandler(h)
    root.setLevel(level)


def test_cli_rejects_bad_arguments_clearly(tmp_path, capsys, monkeypatch, keep_logging):
    from ivr.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--scale", "500"]) == 2
    assert "--scale: 500 is out of range" in capsys.readouterr().err
    assert main(["demo", "--accounts", "3"]) == 2
    assert "--accounts: 3 is out of range" in capsys.readouterr().err
    (tmp_path / "c.yaml").write_text(f"database:\n  url: sqlite:///{tmp_path / 'x.sqlite3'}\n")
    assert main(["--config", str(tmp_path / "c.yaml"), "run", "--date", "23.11.2026"]) == 2
    assert "--date: '23.11.2026' is not a date" in capsys.readouterr().err
    assert main(["--config", str(tmp_path / "c.yaml"), "call", "NOPE", "--to", "+380501234567"]) == 1
    assert "no account 'NOPE'" in capsys.readouterr().err


def test_prompts_that_say_the_name_are_never_shared_between_debtors(cfg, db):
    """The shipped menu says {name}: a per-process prompt cache must not play one debtor's name to another."""
    from speech_fakes import FakeEngine

    from ivr.dialer.tracker import Flight
    from ivr.ledger.models import Balance
    from ivr.speech.speech import Speech

    engine = FakeEngine()
    speech = Speech(cfg, engine=engine)
    clock = ScaledClock(start=datetime(2026, 11, 23, 16, 0, tzinfo=UTC), scale=1.0)
    d = Dialer(cfg, FakeEsl({}), clock, speech, node="n1", queue=SimpleNamespace(), outbound_port=0)
    flights = []
    for i, name in enumerate(["Anna Kovalenko", "Boris Shevchuk"]):
        acc = Account.create(number=f"ACC-{i}", name=name, language="en")
        Phone.create(account=acc, position=0, raw="x", e164=f"+38050123456{i}")
        Balance.create(account=acc, as_of=DAY, amount=500, currency="UAH")
        flights.append(Flight(attempt_id=i + 1, uuid=f"u-{i}", account_id=acc.id, e164=f"+38050123456{i}"))
    menus = [d._context(f).prompt("menu") for f in flights]
    goodbyes = [d._context(f).prompt("goodbye") for f in flights]
    assert menus[0].playback != menus[1].playback  # each hears their own name
    assert any("Boris" in text for text, _voice in engine.calls)
    assert goodbyes[0] is goodbyes[1]  # a prompt without the name is asked of Speech once per process


def test_a_node_fenced_while_it_sends_an_originate_kills_that_call_writes_nothing_and_rejoins(cfg, db):
    """The one interleaving a lease check before the send cannot close: the process stalls right at the send,
    past its lease, and another node takes its calls over meanwhile. The check right after the send sees it:
    the call is hung up at once (uuid_kill), nothing is written for it, and the process rejoins as a new node."""
    from datetime import timedelta

    from ivr.dialer import lease as leases
    from ivr.ledger.models import DialerNode, utcnow

    d, esl, q, camp = _setup(cfg, {"+380500000001": "hold"})
    d.campaign = camp
    mine = d.ensure_lease()
    real_bgapi = esl.bgapi
    taken: list[int] = []

    def stalled_send(cmd):
        other = leases.register("node-b", d.node_timeout)
        DialerNode.update(heartbeat_at=utcnow() - timedelta(seconds=d.node_timeout + 5)).where(
            DialerNode.name == mine.node).execute()
        taken.extend(leases.take_over(other))
        mine.valid_until = 0.0  # the stall outlasted the lease
        return real_bgapi(cmd)

    esl.bgapi = stalled_send
    assert d._dial_some() == 1
    wait_until(lambda: esl.killed, "the call sent after the lease was lost to be hung up")
    att = Attempt.get()
    assert taken == [att.id] and esl.killed == [att.uuid] and att.uuid not in esl.up
    # the row belongs to node-b now: this process wrote nothing more (not even 'originated') and recorded nothing
    assert (att.node, att.state, att.outcome) == ("node-b", "created", "")
    assert q.results == [] and not d.tracker.flights
    assert d.node == "test-node-r1" and d.stats.fenced == 1 and d.lease.valid()
    assert DialerNode.get_by_id("test-node").fenced_by == "node-b"
