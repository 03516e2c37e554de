"""`ivr prompts …`: check the message texts, try a text aloud, pre-render a campaign's messages.

- `ivr prompts check` — load every prompts/<lang>/messages.yaml and report all problems at once.
- `ivr prompts say "text" --lang uk -o out.wav` — render a text (or `--key debt` with sample values) to a WAV.
- `ivr prompts render [--date D]` — render every segment the day's eligible accounts will hear, in parallel,
  with a progress bar, so the evening starts with a warm cache.
"""

from __future__ import annotations

import argparse
import shutil
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

from ivr.cli.common import iso_date, local_today
from ivr.errors import IvrError
from ivr.speech.templates import KEYS, LANGS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prompts", help="message texts and their audio: check, say, render",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    psub = p.add_subparsers(dest="prompts_command", metavar="ACTION", required=True)

    c = psub.add_parser("check", help="validate every prompts/<lang>/messages.yaml",
                        description="Load every message file and list all problems (unknown or missing keys and "
                                    "placeholders) with file, line and key.")
    c.set_defaults(func=cmd_check)

    s = psub.add_parser("say", help="render a text or a message to a WAV file to listen to",
                        description="Render a text with the configured engine and voice to an 8 kHz mono WAV.")
    s.add_argument("text", nargs="?", help="the text to say (or use --key)")
    s.add_argument("--lang", default=None, choices=LANGS, help="language (default: locale.language)")
    from ivr.speech.templates import KIND_KEYS

    kind_keys = [f"{kind}.{key}" for kind, keys in KIND_KEYS.items() for key in keys]
    s.add_argument("--key", choices=[*KEYS, *kind_keys], metavar="KEY",
                   help="say this message with sample values instead of a text (a key of messages.yaml, or of "
                        "installment.yaml / outage.yaml as installment.reminder, outage.planned …)")
    s.add_argument("--voice", help="engine voice (default: speech.voices[lang])")
    s.add_argument("-o", "--output", required=True, metavar="WAV", help="where to write the WAV")
    s.set_defaults(func=cmd_say)

    r = psub.add_parser("render", help="pre-render the messages of a day's eligible accounts",
                        description="Render every distinct segment the day's eligible accounts will hear "
                                    "(fixed texts once, amounts/account digits/names per distinct value).")
    r.add_argument("--date", type=iso_date, metavar="YYYY-MM-DD", help="campaign day (default: today in locale.timezone)")
    r.add_argument("--workers", type=int, default=0, help="parallel engine runs (default: CPU count)")
    r.set_defaults(func=cmd_render)


def _speech(cfg, **kw):
    from ivr.speech import Speech

    return Speech(cfg, **kw)


def cmd_check(args: argparse.Namespace) -> int:
    from ivr.cli.common import load

    cfg, _ = load(args, with_db=False)
    speech = _speech(cfg)
    langs = speech.check()
    from ivr.channels import texts as written  # SMS, e-mail and letter texts (channels.yaml), same checks
    from ivr.speech.templates import TemplateError

    if problems := written.check_all(speech.prompts_dir):
        raise TemplateError(problems)
    from ivr.speech.templates import KIND_KEYS, kind_path

    kinds_found = sorted({k for k in KIND_KEYS for lang in langs if kind_path(speech.prompts_dir, lang, k).exists()})
    print(f"message texts OK: {', '.join(langs)} ({len(KEYS)} messages each, and {written.FILE}"
          f"{''.join(f', {k}.yaml' for k in kinds_found)}) in {speech.prompts_dir}")
    for lang in langs:
        missing = [f"{k}.yaml" for k in KIND_KEYS if not kind_path(speech.prompts_dir, lang, k).exists()]
        if missing:
            print(f"{lang}: no {', '.join(missing)}: campaigns of that kind will not start for {lang} speakers")
    for lang in sorted(speech.recorded):
        print(f"{lang}: recorded voice; `ivr voice check --lang {lang}` lists missing or bad recordings")
    return 0


def sample_values(cfg, lang: str) -> dict[str, object]:
    names = {"uk": "Петренко Іван", "ru": "Иванов Сергей", "bg": "Иван Петров", "en": "John Smith"}
    addresses = {"uk": "вулиця Хрещатик, 1", "ru": "улица Крещатик, 1", "bg": "улица Витоша 1",
                 "en": "1 Main Street"}
    from datetime import time as wall

    return {"name": names[lang], "account": "1234567", "amount": Decimal("1021.50"),
            "currency": cfg.locale.currency, "overdue_months": 3, "due_date": date(2026, 8, 23),
            # the outage texts (outage.yaml: --key outage.planned …)
            "address": addresses[lang], "from_date": date(2026, 12, 12), "from_time": wall(9, 0),
            "to_date": date(2026, 12, 13), "to_time": wall(17, 30)}


def cmd_say(args: argparse.Namespace) -> int:
    from ivr.cli.common import load
    from ivr.speech import tts

    cfg, _ = load(args, with_db=False)
    lang = args.lang or cfg.locale.language
    out = Path(args.output)
    if not out.parent.exists():
        raise IvrError(f"{out.parent}: folder does not exist")
    if args.key:
        speech = _speech(cfg, segment_mode="joined")
        rendered = speech.prompt(lang, args.key, **sample_values(cfg, lang))
        shutil.copyfile(rendered.files[0], out)
        ms = rendered.duration_ms
    elif args.text:
        if "\n" in args.text or "\r" in args.text:
            raise IvrError("the text must be one line")
        engine = tts.make_engine(cfg)
        ms = tts.render(engine, args.text, args.voice or cfg.speech.voices.get(lang, lang), out)
    else:
        raise IvrError("give a text to say, or --key MESSAGE")
    print(f"wrote {out} ({ms / 1000:.2f} s, 8000 Hz mono 16-bit)")
    return 0


def eligible_facts(cfg, day: date) -> list:
    """MessageFacts of the day's eligible accounts (ivr.ledger.eligibility when present)."""
    from ivr.ledger.models import Account, Balance
    from ivr.speech.facts import MessageFacts, company_name, facts_for_account, remaining_debt

    try:
        from ivr.ledger.eligibility import evaluate
    except ImportError:
        evaluate = None
    out = []
    if evaluate is not None:
        # set-based: the verdicts carry amount and overdue date; one query each for accounts and currencies
        verdicts = {v.account_id: v for v in evaluate(cfg, day) if v.eligible}
        currency = {b.account_id: b.currency for b in Balance.select(Balance.account, Balance.currency)
                    .where((Balance.as_of <= day) & (Balance.currency != "")).order_by(Balance.as_of)}
        for acc in Account.select().where(Account.id.in_(list(verdicts))):
            v = verdicts[acc.id]
            out.append(MessageFacts(
                name=acc.name, account=acc.number, amount=max(Decimal(v.remaining), Decimal("0.00")),
                currency=currency.get(acc.id) or cfg.locale.currency, overdue_months=v.overdue_months,
                due_date=v.overdue_since, company=company_name(cfg, acc.language or cfg.locale.language),
                office_phone=cfg.company.phone, lang=acc.language or cfg.locale.language))
        return out
    for acc in Account.select().where(Account.do_not_call == False):  # noqa: E712 (peewee expression)
        amount = remaining_debt(acc, day, cfg)
        if amount > 0:
            out.append(facts_for_account(cfg, acc, day, amount=amount))
    return out


def cmd_render(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ivr.cli.common import load

    cfg, _ = load(args)
    day = args.date or local_today(cfg)
    speech = _speech(cfg)
    speech.check()
    started = time.monotonic()
    facts = eligible_facts(cfg, day)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns) as progress:
        task = progress.add_task("planning messages", total=len(facts))
        jobs = []
        for lang in sorted({f.lang for f in facts} | {cfg.locale.language}):
            for key in KEYS:
                if key not in ("debt", "menu", "right_party"):
                    jobs.append((lang, speech.plan(lang, key)))
        for f in facts:
            jobs.append((f.lang, speech.plan(f.lang, "debt", **speech.debt_values(f))))
            jobs.append((f.lang, speech.plan(f.lang, "menu", name=f.name)))
            if cfg.callflow.right_party_check:
                jobs.append((f.lang, speech.plan(f.lang, "right_party", name=f.name)))
            progress.advance(task)
        seg_task = progress.add_task("rendering segments", total=None)

        def tick(done: int, total: int) -> None:
            progress.update(seg_task, completed=done, total=total)

        rendered = speech.prerender(jobs, workers=args.workers, progress=tick)
        if speech.segment_mode == "joined":
            join_task = progress.add_task("joining messages", total=len(jobs))
            for lang, plan in jobs:
                speech.render_plan(lang, plan)
                progress.advance(join_task)
    distinct = len({p.text for _, plan in jobs for p in plan if p.text})
    print(f"{day}: {len(facts)} eligible accounts, {distinct} distinct segments, {rendered} rendered now, "
          f"cache {speech.cache.size_bytes() / 1e6:.1f} MB, {time.monotonic() - started:.1f} s")
    return 0
