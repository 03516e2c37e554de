"""`ivr voice …`: the human voice of the recorded engine.

- `ivr voice kit --lang uk` — the script a speaker reads: one line per clip (file, words to say, an example of
  where it is used): the fixed prompts of prompts/uk/messages.yaml, the company name, and the number kit (every
  word the amount, date, month, digit and phone grammar can say, in each gender and plural form it needs).
- `ivr voice check --lang uk` — which clips are missing (those segments are said by the TTS engine instead) or bad
  (unreadable, wrong rate, too quiet, clipped, too much or no silence at the edges). Exit code 1 when any are.
"""

from __future__ import annotations

import argparse

from ivr.speech.money import CURRENCIES
from ivr.speech.numbers import LANGS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("voice", help="recorded voice: the script to record, and the check of the recordings",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    vsub = p.add_subparsers(dest="voice_command", metavar="ACTION", required=True)
    for name, func, text in (("kit", cmd_kit, "print the script a speaker reads (one line per clip)"),
                             ("check", cmd_check, "list missing or bad recordings of a language")):
        c = vsub.add_parser(name, help=text, description=text)
        c.add_argument("--lang", choices=LANGS, help="language (default: locale.language)")
        c.add_argument("--currency", action="append", choices=[*CURRENCIES, "all"],
                       help="currencies whose words the kit holds (repeatable; default: locale.currency)")
        c.set_defaults(func=func)


def _clips(args: argparse.Namespace):  # noqa: ANN202
    from ivr.cli.common import load
    from ivr.speech import Speech
    from ivr.speech.facts import company_name
    from ivr.speech.kit import number_kit, prompt_clips

    cfg, _ = load(args, with_db=False)
    lang = args.lang or cfg.locale.language
    chosen = args.currency or [cfg.locale.currency]
    currencies = CURRENCIES if "all" in chosen else tuple(dict.fromkeys(chosen))
    speech = Speech(cfg)
    speech.check()
    clips = prompt_clips(speech._templates[lang], company_name(cfg, lang)) + number_kit(lang, currencies)
    return cfg, lang, speech.prompts_dir / lang, clips


def cmd_kit(args: argparse.Namespace) -> int:
    _, lang, lang_dir, clips = _clips(args)
    print(f"# Recordings for {lang}: {len(clips)} clips. Record each line as its own WAV file (any rate, 16-bit, "
          "mono or stereo),")
    print(f"# in a quiet room, a moment of silence before and after, at one even voice; save it under {lang_dir}/")
    print("# as the first column says. Columns: file | say exactly this | where it is used")
    for clip in clips:
        print(f"{clip.folder}/{clip.key}.wav | {clip.text} | {clip.example}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from ivr.config import engine_for
    from ivr.speech.recorded import check

    cfg, lang, lang_dir, clips = _clips(args)
    findings = check(lang_dir, clips)
    missing = [f for f in findings if f.missing]
    bad = [f for f in findings if f.problem and not f.missing]
    for f in missing + bad:
        print(f"{f.clip.folder}/{f.clip.key}.wav ({f.clip.text}): {f.problem}")
    fine = len(findings) - len(missing) - len(bad)
    print(f"{lang}: {len(findings)} clips in {lang_dir}: {fine} fine, {len(missing)} missing (said by the TTS "
          f"engine instead), {len(bad)} bad")
    if engine_for(cfg, lang) != "recorded":
        print(f"note: {lang} is voiced by {engine_for(cfg, lang)}; set speech.engines.{lang}: recorded to use "
              "these recordings")
    return 1 if missing or bad else 0
