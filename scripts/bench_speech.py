#!/usr/bin/env python3
"""Benchmark: personalized debt messages ready per second for 100,000 accounts, three ways, in one run.

1. naive — one espeak-ng run plus resampling to 8 kHz (pydub) per FULL message, timed on a sample
   (--naive-sample, default 1,000) and extrapolated to all accounts;
2. cold cache — empty cache: plan every message, render each distinct segment once (in parallel), then build
   every message's playback string;
3. warm cache — a fresh Speech (as a new process would be) over the filled cache builds every message again;
   and a second pass in the same process (segment durations already in memory).

Accounts are synthetic but realistic (amounts 100.00-20,000.00 with kopecks, 8-digit account numbers, names
from 400 surnames x 60 first names, ~120 distinct overdue dates), Ukrainian, UAH.
Usage: .venv/bin/python scripts/bench_speech.py [--accounts N] [--naive-sample N] [--workers N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ivr.config import parse_config  # noqa: E402
from ivr.speech import MessageFacts, Speech, tts  # noqa: E402
from ivr.speech.dates import say_date  # noqa: E402
from ivr.speech.money import amount_in_words  # noqa: E402
from ivr.speech.speech import spell  # noqa: E402

SURNAMES = [f"{a}{b}" for a in ("Петр", "Іван", "Коваль", "Шевч", "Бонд", "Ткач", "Крав", "Олійн", "Мельн", "Лис",
                                "Савч", "Руд", "Марч", "Гонч", "Кузьм", "Павл", "Панч", "Сидор", "Кость", "Гриц")
            for b in ("енко", "ук", "чук", "ишин", "ів", "ович", "ець", "ак", "ій", "ський", "енчук", "юк", "ан",
                      "ар", "ін", "ко", "ишак", "ух", "ейко", "ич")]
FIRST = ["Іван", "Петро", "Олена", "Марія", "Андрій", "Оксана", "Василь", "Наталія", "Микола", "Ірина", "Сергій",
         "Тетяна", "Олег", "Юлія", "Богдан", "Галина", "Віктор", "Світлана", "Дмитро", "Людмила"] * 3


def synthetic_facts(n: int, seed: int = 7) -> list[MessageFacts]:
    rnd = random.Random(seed)
    due = [date(2026, 11, 20) - timedelta(days=30 + i * 3) for i in range(120)]
    out = []
    for _ in range(n):
        d = rnd.choice(due)
        out.append(MessageFacts(
            name=f"{rnd.choice(SURNAMES)} {rnd.choice(FIRST)}", account=f"{rnd.randrange(10**7, 10**8)}",
            amount=Decimal(rnd.randrange(10_000, 2_000_000)) / 100, currency="UAH",
            overdue_months=(date(2026, 11, 23) - d).days // 30, due_date=d, company="Міськводоканал",
            office_phone="+380441234567", lang="uk"))
    return out


def full_text(f: MessageFacts) -> str:
    """The whole message as one text, as a naive renderer would send it to the engine."""
    return (f"Нагадуємо, що на особовому рахунку {' '.join(spell(f.account, 'uk'))} є заборгованість за послуги: "
            f"{amount_in_words(f.amount, f.currency, 'uk')}. Борг не сплачено з {say_date(f.due_date, 'uk')}. "
            "Просимо сплатити його найближчим часом. Якщо борг залишиться несплаченим, постачання послуги може "
            "бути обмежено, а справу передано до суду. Якщо у вас є запитання, зателефонуйте до нашого офісу за "
            f"номером {' '.join(spell(f.office_phone, 'uk'))}.")


def naive(sample: list[MessageFacts], out_dir: Path) -> tuple[float, float, int]:
    """espeak-ng + resample to 8 kHz per full message; returns (seconds, mean audio s, bytes per message)."""
    engine = tts.EspeakEngine()
    audio_ms = 0
    size = 0
    started = time.perf_counter()
    for i, f in enumerate(sample):
        raw = out_dir / "raw.wav"
        engine.synth(full_text(f), "uk", raw)
        seg = tts.AudioSegment.from_wav(str(raw)).set_channels(1).set_sample_width(2).set_frame_rate(8000)
        out = out_dir / f"{i % 50}.wav"
        seg.export(str(out), format="wav")
        audio_ms += len(seg)
        size += out.stat().st_size
    return time.perf_counter() - started, audio_ms / len(sample) / 1000, size // len(sample)


def build_all(speech: Speech, facts: list[MessageFacts]) -> float:
    started = time.perf_counter()
    for f in facts:
        speech.debt_message(f)
    return time.perf_counter() - started


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--accounts", type=int, default=100_000)
    ap.add_argument("--naive-sample", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=0, help="parallel engine runs when cold (default: CPU count)")
    ap.add_argument("--keep", metavar="DIR", help="cache folder to use and keep (default: a temporary one)")
    args = ap.parse_args()

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-speech-"))
    if (work / "cache").exists():
        shutil.rmtree(work / "cache")
    cfg = parse_config({"speech": {"cache_dir": str(work / "cache"), "cache_max_mb": 100_000}},
                       base_dir=Path(__file__).resolve().parent.parent, env={})
    facts = synthetic_facts(args.accounts)
    n = len(facts)
    print(f"{n} accounts; {len({f.amount for f in facts})} distinct amounts, "
          f"{len({f.name for f in facts})} distinct names")

    naive_dir = work / "naive"
    naive_dir.mkdir(parents=True, exist_ok=True)
    sample = facts[:args.naive_sample]
    secs, audio_s, msg_bytes = naive(sample, naive_dir)
    naive_rate = len(sample) / secs
    print(f"naive: {len(sample)} full messages in {secs:.1f} s = {naive_rate:.1f} msg/s "
          f"(mean message {audio_s:.1f} s, {msg_bytes / 1e3:.0f} KB); {n} would take {n / naive_rate / 60:.1f} min "
          f"and {n * msg_bytes / 1e9:.1f} GB")

    speech = Speech(cfg)
    started = time.perf_counter()
    jobs = [(f.lang, speech.plan(f.lang, "debt", **Speech.debt_values(f))) for f in facts]
    plan_s = time.perf_counter() - started
    rendered = speech.prerender(jobs, workers=args.workers)
    render_s = time.perf_counter() - started - plan_s
    build_s = build_all(speech, facts)
    cold = time.perf_counter() - started
    print(f"cold cache: {n / cold:.0f} msg/s ({cold:.1f} s: plan {plan_s:.1f} s, {rendered} distinct segments "
          f"rendered in {render_s:.1f} s, playback strings {build_s:.1f} s); cache "
          f"{speech.cache.size_bytes() / 1e6:.1f} MB")

    fresh = Speech(cfg)  # a new process: nothing in memory, everything on disk
    warm = build_all(fresh, facts)
    again = build_all(fresh, facts)
    print(f"warm cache (new process): {n / warm:.0f} msg/s ({warm:.1f} s); same process again: "
          f"{n / again:.0f} msg/s ({again:.1f} s); engine runs: {fresh.cache.renders}")
    print(f"warm vs naive: {n / warm / naive_rate:.0f}x (target >= 50x); cold vs naive: {n / cold / naive_rate:.0f}x")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
