"""The heard rule: did the debtor hear a message, judged from one playback's events.

What a real FreeSWITCH 1.10 showed (shared/freeswitch/README.md, the transcripts in tests/fixtures):
- `Playback-Status: done` proves nothing: a debtor who hangs up 2 s into a 6 s file still gives `done`, with
  `Application-Response: PLAYBACK ERROR` on the EXECUTE_COMPLETE and CHANNEL_HANGUP arriving BEFORE PLAYBACK_STOP.
- `variable_playback_ms` is rounded up (4096 ms after 2.2 s); `variable_playback_last_offset_pos` (samples at
  8 kHz) tracked the real position within 15 ms in every early stop.
- A segment list (`file_string://a!b!c`) gives ONE PLAYBACK_START/STOP for the whole list, and the offset counts
  from the start of the list (90000 = 11.25 s for 11.0 s of audio; 23840 = 2.98 s when the debtor hung up at
  ~2.96 s), so the same rule applies with the list's total length.

So a message counts as heard only if all of these hold:
1. its EXECUTE_COMPLETE arrived with `Application-Response: FILE PLAYED`;
2. its PLAYBACK_STOP arrived and no CHANNEL_HANGUP came before it (the channel was up while it played);
3. the position reached (`playback_last_offset_pos` / 8 ms) is at least `share` x the stored duration —
   or, with barge-in, the playback was broken (`Playback-Status: break`) by one of the allowed keys
   (`playback_terminator_used`): the key press is the proof of attention.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SAMPLES_PER_MS = 8  # prompts are 8 kHz mono; playback_last_offset_pos counts samples

FILE_PLAYED = "FILE PLAYED"


@dataclass(frozen=True)
class Heard:
    heard: bool
    heard_ms: int    # position reached in the message, ms (capped at the message length)
    why: str         # short reason, for the attempt's detail and the log
    key: str = ""    # the barge-in key that ended the message ('' = none)


def _value(events: list[Any], name: str) -> str:
    for ev in events:
        if ev is not None:
            v = ev.get(name)
            if v:
                return v
    return ""


def offset_ms(result: Any) -> int | None:
    """Position reached by the playback, ms, from `variable_playback_last_offset_pos` (None when absent/bad)."""
    raw = _value([result.complete, result.playback_stop], "variable_playback_last_offset_pos")
    if not raw.isdigit():
        return None
    return int(raw) // SAMPLES_PER_MS


def judge(result: Any, message_ms: int, share: float, keys: str = "") -> Heard:
    """Apply the heard rule to the ExecResult of the message's `playback`.

    `message_ms` is the stored duration (Rendered.duration_ms), `share` is cfg.callflow.heard_share, `keys` the
    barge-in keys whose press ends the message as proof of attention ('' when barge-in is off).
    """
    complete = result.complete
    if complete is None:
        return Heard(False, 0, "no EXECUTE_COMPLETE for the message (channel gone)")
    response = complete.get("Application-Response") or getattr(result, "response", "") or ""
    pos = offset_ms(result)
    reached = 0 if pos is None else pos
    if message_ms > 0:
        reached = min(reached, message_ms)
    if response != FILE_PLAYED:
        return Heard(False, reached, f"playback ended with {response or 'no response'}")
    stop = result.playback_stop
    if stop is None:
        return Heard(False, reached, "no PLAYBACK_STOP: cannot prove the message played")
    if result.hangup_seen_before_stop:
        return Heard(False, reached, "caller hung up before the message ended")
    status = stop.get("Playback-Status") or ""
    if status == "break" and keys:
        used = _value([stop, complete], "variable_playback_terminator_used")
        if used and used in keys:
            return Heard(True, reached, f"key {used} pressed during the message", key=used)
    if pos is None:
        return Heard(False, 0, "no playback position reported")
    if message_ms <= 0:
        return Heard(False, reached, "message length unknown")
    needed = share * message_ms
    if pos >= needed:
        return Heard(True, reached, f"played {pos} of {message_ms} ms")
    return Heard(False, reached, f"stopped at {pos} of {message_ms} ms (status {status or '?'})")
