"""Scripted debtors: what the phone at each number does when the simulator calls it.

A `Debtor` is a plain description (ring time, final SIP answer or answer-and-act); a `Script` maps numbers
(digits, `+` optional) to debtors, with a default for numbers it does not know. `Script.random_mix` builds a
seeded, realistic evening for demos and benchmarks; `Script.load` reads the YAML format of `ivr sim --script`:

    default: listen                  # behaviour of numbers not listed (default: listen)
    numbers:
      "+380501234500": listen        # answers, listens until the dialer hangs up
      "380501234501": busy           # also: no_answer, unallocated, rejected, machine
      "+380501234502": {hangup_after: 2}
      "+380501234503": {press: [[1, 8.0]], ring: 3}     # digit 1 at second 8 after answer
      "+380501234504": {press: [[8, 40.0]]}             # 8 in the menu: "do not call this number again"
      "+380501234505": {menu_press: 2}  # digit 2 as soon as the menu prompt starts playing
      "+380501234506": {kind: machine, greeting: 12, beep: true}   # 12 s greeting, then the beep
      "+380501234507": {greeting: 0, replies: true}   # says nothing until spoken to
    random_mix: {seed: 7, numbers: ["+380501230000", ...]}   # optional, merged under `numbers`
    callbacks:                       # debtors who call the caller-ID number back (as its `numbers` entry behaves)
      - {number: "+380501234502", at: "19:40", timezone: Europe/Kyiv}
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ivr.errors import IvrError

FAILURES = {"busy": "USER_BUSY", "unallocated": "UNALLOCATED_NUMBER", "rejected": "CALL_REJECTED"}
KINDS = ("answer", "no_answer", "busy", "unallocated", "rejected", "machine")
LISTEN_CAP_S = 300.0  # a listening debtor still hangs up eventually (the dialer normally hangs up first)


def _is_dtmf(digit: str) -> bool:
    return len(digit) == 1 and digit in "0123456789*#ABCD"


@dataclass(frozen=True)
class Debtor:
    kind: str = "answer"
    ring_s: float = 0.0  # seconds from the INVITE to the answer or final response
    hangup_after: float | None = None  # seconds after the answer at which the debtor hangs up
    presses: tuple[tuple[str, float], ...] = ()  # (digit, seconds after answer)
    # A digit pressed when the menu prompt (play_and_get_digits) starts, as a debtor reacting to what they hear
    # does; unlike `presses`, it does not depend on how long the greeting and message took to play.
    menu_press: str = ""
    # (n, seconds): hang up that many media-seconds into the n-th playback of the call (1 = the first). Tied to
    # what is played, not to the clock, so "left 1 s into the message" holds however slowly the flow runs.
    hangup_in_playback: tuple[int, float] | None = None
    # What the far end says (the answering-machine detectors listen to it; see Call._speech in call.py):
    # `greeting_s` seconds of speech as soon as the call-flow starts (None = 0.8 s "Алло?" for a person, 8 s of
    # greeting for a machine; 0 = says nothing), whether it replies to a prompt (None = a person does, a machine
    # does not), and whether a machine's greeting ends in a beep (mod_avmd's cue).
    greeting_s: float | None = None
    replies: bool | None = None
    beep: bool = True
    # (n, digit, seconds): press `digit` that many media-seconds into the n-th playback, like `hangup_in_playback`
    # tied to what is played: a key "2 s into the message" stays inside the message however slow the set-up was.
    press_in_playback: tuple[int, str, float] | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown debtor behaviour {self.kind!r} (one of {', '.join(KINDS)})")
        for digit, at in self.presses:
            if not _is_dtmf(digit):
                raise ValueError(f"invalid DTMF digit {digit!r}")
            if at < 0:
                raise ValueError(f"press time must be >= 0, got {at}")
        if self.menu_press and not _is_dtmf(self.menu_press):
            raise ValueError(f"invalid DTMF digit {self.menu_press!r}")
        # the playback offsets arrive as tuples from code and as lists of YAML scalars from a script file: one form
        if self.hangup_in_playback is not None:
            n, at = self.hangup_in_playback
            n, at = int(n), float(at)
            if n < 1 or at < 0:
                raise ValueError(f"hangup_in_playback needs a playback number >= 1 and seconds >= 0, got {n}, {at}")
            object.__setattr__(self, "hangup_in_playback", (n, at))
        if self.press_in_playback is not None:
            n, digit, at = self.press_in_playback
            n, digit, at = int(n), str(digit), float(at)
            if n < 1 or at < 0 or not _is_dtmf(digit):
                raise ValueError("press_in_playback needs a playback number >= 1, one DTMF digit and seconds >= 0, "
                                 f"got {n}, {digit!r}, {at}")
            object.__setattr__(self, "press_in_playback", (n, digit, at))

    @property
    def opening_s(self) -> float:
        if self.greeting_s is not None:
            return self.greeting_s
        return 8.0 if self.kind == "machine" else 0.8

    @property
    def talks_back(self) -> bool:
        return self.replies if self.replies is not None else self.kind != "machine"

    @property
    def answers(self) -> bool:
        return self.kind in ("answer", "machine")

    @property
    def failure_cause(self) -> str | None:
        return FAILURES.get(self.kind)

    def hangup_at(self, listen_cap: float = LISTEN_CAP_S) -> float:
        if self.hangup_after is not None:
            return self.hangup_after
        return 40.0 if self.kind == "machine" else listen_cap

    # Constructors named after the behaviours.
    @classmethod
    def answer(cls, hangup_after: float | None = None, press: tuple[str | int, float] | None = None,
               presses: tuple = (), ring: float = 0.0, menu_press: str | int = "",
               hangup_in_playback: tuple[int, float] | None = None,
               press_in_playback: tuple[int, str | int, float] | None = None) -> Debtor:
        all_presses = [(str(d), float(t)) for d, t in presses]
        if press is not None:
            all_presses.append((str(press[0]), float(press[1])))
        return cls("answer", ring, hangup_after, tuple(sorted(all_presses, key=lambda p: p[1])), str(menu_press),
                   hangup_in_playback, press_in_playback=press_in_playback)

    @classmethod
    def listen(cls, ring: float = 0.0) -> Debtor:
        return cls("answer", ring)

    @classmethod
    def no_answer(cls) -> Debtor:
        return cls("no_answer")

    @classmethod
    def busy(cls, ring: float = 0.0) -> Debtor:
        return cls("busy", ring)

    @classmethod
    def unallocated(cls) -> Debtor:
        return cls("unallocated")

    @classmethod
    def rejected(cls, ring: float = 0.0) -> Debtor:
        return cls("rejected", ring)

    @classmethod
    def machine(cls, ring: float = 0.0, listen_s: float = 40.0, greeting_s: float | None = None,
                beep: bool = True) -> Debtor:
        return cls("machine", ring, listen_s, greeting_s=greeting_s, beep=beep)


def number_key(number: str) -> str:
    return number.lstrip("+")


DEFAULT_WEIGHTS = {  # a realistic evening (issue 3): shares of each behaviour
    "no_answer": 15, "busy": 8, "invalid": 3, "hangup_early": 20, "listen": 35, "press1": 10, "press2": 7,
    "machine": 2,
}
# behaviours a mix may also ask for by weight (not in the default evening, so seeded demos stay as they were):
# a key pressed in the menu after the message (3 already paid, 8 opt out, 9 wrong number)
EXTRA_BEHAVIOURS = ("press3", "press8", "press9")


@dataclass(frozen=True)
class CallBackPlan:
    """A debtor who calls the dialer's caller-ID number back at a local time of the evening ("19:40")."""

    number: str
    at: str          # HH:MM, local time in `timezone`
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        import re
        from zoneinfo import ZoneInfo

        if not re.fullmatch(r"\+?[0-9]{5,15}", self.number):
            raise ValueError(f"callback number {self.number!r} is not a phone number (digits, optional +)")
        m = re.fullmatch(r"([01][0-9]|2[0-3]):([0-5][0-9])", self.at)
        if not m:
            raise ValueError(f"callback time {self.at!r} is not HH:MM")
        ZoneInfo(self.timezone)  # raises on an unknown zone


@dataclass
class Script:
    debtors: dict[str, Debtor] = field(default_factory=dict)
    default: Debtor = field(default_factory=lambda: Debtor("answer", 0.0, 120.0))
    # how long a listening debtor stays on the line before hanging up himself (call-seconds); tests on a scaled
    # clock raise it, so that a slow machine stretching a call never turns a listener into an early hang-up
    listen_cap_s: float = LISTEN_CAP_S
    callbacks: list[CallBackPlan] = field(default_factory=list)  # debtors who call back (SimServer schedules)

    def add(self, number: str, debtor: Debtor) -> Script:
        self.debtors[number_key(number)] = debtor
        return self

    def for_number(self, number: str) -> Debtor:
        return self.debtors.get(number_key(number), self.default)

    @classmethod
    def random_mix(cls, numbers, seed: int = 0, weights: dict[str, float] | None = None,
                   message_s: float = 40.0) -> Script:
        """Seeded mix of behaviours; `message_s` is about how long the message is (early hang-ups fall inside)."""
        w = dict(DEFAULT_WEIGHTS if weights is None else weights)
        unknown = set(w) - set(DEFAULT_WEIGHTS) - set(EXTRA_BEHAVIOURS)
        if unknown:
            raise ValueError(f"unknown behaviour(s) in weights: {', '.join(sorted(unknown))}")
        rng = random.Random(seed)
        speech_rng = random.Random(seed * 7919 + 17)  # its own stream: the behaviours stay what they were per seed
        names = list(w)
        cum = list(w.values())
        script = cls()
        for number in numbers:
            kind = rng.choices(names, cum)[0]
            ring = round(rng.uniform(1.0, 8.0), 2)
            if kind == "no_answer":
                d = Debtor.no_answer()
            elif kind == "busy":
                d = Debtor.busy(ring=round(rng.uniform(0.5, 3.0), 2))
            elif kind == "invalid":
                d = Debtor.unallocated()
            elif kind == "hangup_early":
                d = Debtor.answer(hangup_after=round(rng.uniform(1.0, message_s * 0.8), 1), ring=ring)
            elif kind == "listen":
                d = Debtor.answer(hangup_after=None, ring=ring)
            elif kind == "machine":
                d = Debtor.machine(ring=ring)
            else:
                # the key goes in when the menu starts, as a listener's does: a key at a fixed call-second lands
                # in the message (and is lost) whenever the flow runs late, which is the switch's load, not the
                # debtor's choice (the draw is kept so that a seed still gives the same evening)
                rng.uniform(0.5, 3.0)
                d = Debtor.answer(menu_press=kind[-1], ring=ring)
            script.add(number, _with_speech(d, speech_rng))
        return script

    def dump(self, path: str | Path) -> Path:
        """Write the script in the format `load` and `ivr sim --script` read (for a simulator in another process)."""
        path = Path(path)
        data = {"default": _debtor_spec(self.default),
                "numbers": {number: _debtor_spec(d) for number, d in self.debtors.items()}}
        if self.callbacks:
            data["callbacks"] = [{"number": c.number, "at": c.at, "timezone": c.timezone} for c in self.callbacks]
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Script:
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise IvrError(f"cannot read debtor script {path}: {exc}") from exc
        if not isinstance(data, dict):
            raise IvrError(f"{path}: the script must be a mapping with 'numbers' (and optional 'default')")
        script = cls()
        mix = data.get("random_mix")
        if mix:
            if not isinstance(mix, dict) or not isinstance(mix.get("numbers"), list):
                raise IvrError(f"{path}: random_mix needs a 'numbers' list")
            try:
                script = cls.random_mix([str(n) for n in mix["numbers"]], int(mix.get("seed", 0)),
                                        mix.get("weights"))
            except (ValueError, TypeError) as exc:
                raise IvrError(f"{path}: random_mix: {exc}") from exc
        if "default" in data:
            script.default = _debtor_from(data["default"], f"{path}: default")
        numbers = data.get("numbers") or {}
        if not isinstance(numbers, dict):
            raise IvrError(f"{path}: 'numbers' must be a mapping of number -> behaviour")
        for number, spec in numbers.items():
            num = str(number)
            if not num.lstrip("+").isdigit():
                raise IvrError(f"{path}: numbers: {num!r} is not a phone number (digits, optional +)")
            script.add(num, _debtor_from(spec, f"{path}: number {num}"))
        for i, item in enumerate(data.get("callbacks") or []):
            if not isinstance(item, dict) or set(item) - {"number", "at", "timezone"}:
                raise IvrError(f"{path}: callbacks item {i + 1}: expected {{number, at, timezone}}, got {item!r}")
            try:
                script.callbacks.append(CallBackPlan(str(item.get("number", "")), str(item.get("at", "")),
                                                     str(item.get("timezone", "UTC"))))
            except (ValueError, KeyError) as exc:
                raise IvrError(f"{path}: callbacks item {i + 1}: {exc}") from exc
        return script


# What people and machines say when they answer (an assumption, not a measurement: no recordings of real
# answers were available). People: "Алло?" 0.3-2 s; 8 % say nothing until spoken to; 4 % talk on for 4-7 s.
# Machines: greetings of 2-20 s (a quarter under 4 s: "Залиште повідомлення"); 10 % without a beep.
def _with_speech(d: Debtor, rng: random.Random) -> Debtor:
    import dataclasses

    if d.kind == "machine":
        short = rng.random() < 0.25
        greeting = round(rng.uniform(2.0, 4.0) if short else rng.uniform(4.0, 20.0), 1)
        return dataclasses.replace(d, greeting_s=greeting, beep=rng.random() >= 0.10)
    if d.kind != "answer":
        return d
    roll = rng.random()
    if roll < 0.08:
        greeting = 0.0
    elif roll < 0.12:
        greeting = round(rng.uniform(4.0, 7.0), 1)
    else:
        greeting = round(rng.uniform(0.3, 2.0), 1)
    return dataclasses.replace(d, greeting_s=greeting)


def _debtor_spec(d: Debtor) -> dict:
    """The YAML form of one debtor: what _debtor_from reads back."""
    spec: dict = {"kind": d.kind, "ring": d.ring_s}
    if d.hangup_after is not None:
        spec["hangup_after"] = d.hangup_after
    if d.presses:
        spec["press"] = [[digit, at] for digit, at in d.presses]
    if d.menu_press:
        spec["menu_press"] = d.menu_press
    if d.greeting_s is not None:
        spec["greeting"] = d.greeting_s
    if d.replies is not None:
        spec["replies"] = d.replies
    if not d.beep:
        spec["beep"] = False
    if d.hangup_in_playback is not None:
        spec["hangup_in_playback"] = list(d.hangup_in_playback)
    if d.press_in_playback is not None:
        spec["press_in_playback"] = list(d.press_in_playback)
    return spec


def _debtor_from(spec, where: str) -> Debtor:
    try:
        if isinstance(spec, str):
            if spec == "listen":
                return Debtor.listen()
            if spec == "machine":
                return Debtor.machine()
            return Debtor(spec)
        if isinstance(spec, dict):
            allowed = {"kind", "ring", "hangup_after", "press", "menu_press", "hangup_in_playback", "greeting",
                       "replies", "beep", "press_in_playback"}
            bad = set(spec) - allowed
            if bad:
                raise ValueError(f"unknown key(s) {', '.join(sorted(bad))} (allowed: {', '.join(sorted(allowed))})")
            kind = spec.get("kind", "answer")
            presses = tuple((str(d), float(t)) for d, t in (spec.get("press") or []))
            hangup = spec.get("hangup_after")
            cut = spec.get("hangup_in_playback")
            greeting = spec.get("greeting")
            replies = spec.get("replies")
            if replies is not None and not isinstance(replies, bool):
                raise ValueError(f"replies must be true or false, got {replies!r}")
            beep = spec.get("beep", True)
            if not isinstance(beep, bool):
                raise ValueError(f"beep must be true or false, got {beep!r}")
            return Debtor(kind, float(spec.get("ring", 0.0)),
                          None if hangup is None else float(hangup), presses, str(spec.get("menu_press", "")), cut,
                          None if greeting is None else float(greeting), replies, beep,
                          spec.get("press_in_playback"))
    except (ValueError, TypeError) as exc:
        raise IvrError(f"{where}: {exc}") from exc
    raise IvrError(f"{where}: expected a behaviour name or a mapping, got {spec!r}")
