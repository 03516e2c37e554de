"""Test support for the call flow: real transcript events turned into ExecResults, and a scripted CallSession.

`exec_results(name, conn)` replays one outbound-socket connection of a real FreeSWITCH transcript through the
project's parser and groups its events per executed application the way CallSession.execute reports them
(the app's EXECUTE_COMPLETE, its PLAYBACK_STOP, whether CHANNEL_HANGUP came before that STOP, whether the
channel hung up before the app completed, the DTMF digits seen meanwhile).
`FakeSession` plays back a list of such results, one per `execute`, and records every command it was given.
"""

from __future__ import annotations

import re

from conftest import load_transcript

from ivr.speech import Rendered
from ivr.switch.framing import Event, FrameParser, parse_event
from ivr.switch.outbound import ExecResult

__all__ = ["ExecResult", "FakeSession", "events", "group", "one", "edited"]


def events(name: str, conn: str | None = None) -> list[Event]:
    """Every event FreeSWITCH sent on one connection of a transcript, parsed by the project parser."""
    t = load_transcript(name)
    frames = FrameParser().feed(t.stream("in", conn))
    return [parse_event(f) for f in frames if f.content_type == "text/event-plain"]


def group(evs: list[Event]) -> list[ExecResult]:
    """One ExecResult per application run on the channel, in order (the socket app itself excluded)."""
    out: list[ExecResult] = []
    current: dict | None = None
    hungup = False
    for ev in evs:
        name = ev.name
        if name == "CHANNEL_HANGUP":
            hungup = True
            if current is not None and current["stop"] is None:
                current["hangup_first"] = True
        elif name == "CHANNEL_EXECUTE" and ev.get("Application") != "socket":
            current = {"uuid": ev.get("Application-UUID"), "stop": None, "hangup_first": hungup, "dtmf": []}
        elif current is not None and name == "PLAYBACK_STOP" and current["stop"] is None:
            current["stop"] = ev
        elif current is not None and name == "DTMF":
            current["dtmf"].append(ev.get("DTMF-Digit") or "")
        elif (current is not None and name == "CHANNEL_EXECUTE_COMPLETE"
              and ev.get("Application-UUID") == current["uuid"]):
            out.append(ExecResult(app=ev.get("Application") or "", response=ev.get("Application-Response") or "",
                                  complete=ev, playback_stop=current["stop"],
                                  hangup_seen_before_stop=current["hangup_first"], hungup=hungup,
                                  dtmf=current["dtmf"]))
            current = None
    return out


def exec_results(name: str, conn: str | None = None) -> list[ExecResult]:
    return group(events(name, conn))


def one(name: str, app: str, index: int = 0, conn: str | None = None) -> ExecResult:
    """The index-th execution of `app` in a transcript connection."""
    found = [r for r in exec_results(name, conn) if r.app == app]
    return found[index]


def edited(ev: Event, **changes: str) -> Event:
    """A copy of a real plain event with some header values replaced (name -> new raw value).

    Used only where no transcript holds the case (key 0, the right-party variable); everything else stays as the
    real server sent it.
    """
    body = ev.frame.body.decode("utf-8")
    for key, value in changes.items():
        body, n = re.subn(rf"(?m)^{re.escape(key)}: .*$", f"{key}: {value}", body)
        assert n, f"{key} not in event"
    data = body.encode("utf-8")
    frame = FrameParser().feed(b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % len(data) + data)[0]
    return parse_event(frame)


def pagd_choice(digit: str, var: str = "ivr_choice") -> ExecResult:
    """The real 'pressed 1 in the menu' result (outbound_heard_press1), with another digit and/or variable."""
    real = one("outbound_heard_press1", "play_and_get_digits")
    complete = real.complete
    if var != "ivr_choice":
        body = complete.frame.body.decode("utf-8").replace("variable_ivr_choice: ", f"variable_{var}: ")
        data = body.encode("utf-8")
        complete = parse_event(FrameParser().feed(
            b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % len(data) + data)[0])
    complete = edited(complete, **{f"variable_{var}": digit})
    return ExecResult(app=real.app, response=real.response, complete=complete, playback_stop=real.playback_stop,
                      hangup_seen_before_stop=False, hungup=False, dtmf=[digit])


# -- the usual pieces, all from real connections ---------------------------------------------------------------
def msg_heard() -> ExecResult:
    return one("outbound_call_heard", "playback", 0)


def msg_early_hangup() -> ExecResult:
    return one("outbound_early_hangup", "playback", 0)


def prompt_played() -> ExecResult:
    return one("outbound_call_heard", "playback", 1)  # goodbye.wav, played to the end


def prompt_hungup() -> ExecResult:
    return msg_early_hangup()


def pagd_press(digit: str) -> ExecResult:
    if digit == "1":
        return one("outbound_heard_press1", "play_and_get_digits")
    if digit == "2":
        return one("outbound_press2_callback", "play_and_get_digits")
    return pagd_choice(digit)


def pagd_timeout() -> ExecResult:
    return one("outbound_menu_timeout_invalid", "play_and_get_digits", conn="8105")


def pagd_invalid_then_nothing() -> ExecResult:
    return one("outbound_menu_timeout_invalid", "play_and_get_digits", conn="8106")


def transfer_done() -> ExecResult:
    return one("outbound_transfer_paynow", "transfer")


def msg_barge_in_key1() -> ExecResult:
    return one("outbound_dtmf_during_message", "playback", 0, conn="a")


MSG = Rendered(playback="/var/lib/ivr/prompts/msg_6s.wav", duration_ms=6000)
PROMPTS = {key: Rendered(playback=f"/var/lib/ivr/prompts/{key}.wav", duration_ms=2000)
           for key in ("greeting", "right_party", "menu", "invalid", "pay_now", "callback_confirmed", "already_paid",
                       "wrong_number", "optout_confirmed", "goodbye", "no_input")}


class ScriptError(BaseException):
    """The flow did something the script did not expect (BaseException: run_call must not swallow it)."""


class FakeSession:
    """A CallSession that answers each `execute` with the next scripted (app, ExecResult)."""

    def __init__(self, script: list[tuple[str, ExecResult | BaseException]], uuid: str = "f00d-0001") -> None:
        self.script = list(script)
        self.uuid = uuid
        self.commands: list[tuple[str, str]] = []
        self.hungup = False
        self.hangup_event: Event | None = None
        self.variables: dict[str, str] = {}  # the channel's variables as its connect reply would show them

    def variable(self, name: str, default: str | None = None) -> str | None:
        return self.variables.get(name, default)

    def execute(self, app: str, arg: str = "", timeout: float | None = None) -> ExecResult:
        self.commands.append((app, arg))
        if self.hungup:
            raise ScriptError(f"execute {app} after the channel hung up")
        if not self.script:
            raise ScriptError(f"unexpected execute {app} {arg}")
        want, result = self.script.pop(0)
        if want != app:
            raise ScriptError(f"expected {want}, flow executed {app} {arg}")
        if isinstance(result, BaseException):
            raise result
        if result.hungup:
            self.hungup = True
        return result

    def set(self, var: str, value: str) -> None:
        self.commands.append(("set", f"{var}={value}"))

    def hangup(self, cause: str = "NORMAL_CLEARING") -> None:
        if self.hungup:
            raise ScriptError("hangup sent after the channel hung up")
        self.commands.append(("hangup", cause))
        self.hungup = True

    @property
    def apps(self) -> list[str]:
        return [c[0] for c in self.commands]
