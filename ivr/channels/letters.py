"""Letters for the post: one PDF per district (one A4 page per debtor) and one CSV for the mail house.

`print_due(cfg, day, clock)` is what `ivr letters` runs: the evening's accounts to contact (hold-out left out)
whose current channel is 'letter' (ivr.channels.rules: every channel before it in `channels.order` was tried
and did not reach them) and who have a postal address, under `channels.per_week.letter`. Each gets a page: the
company, the date, the addressee block (name, address, account), and the `letter` text of their language
(prompts/<lang>/channels.yaml). The font is a TrueType font with Cyrillic (`channels.letter_font`, DejaVu Sans
from Debian's fonts-dejavu-core by default, installed by scripts/setup.sh). A Message row per letter
(channel 'letter', status 'printed', provider_id 'FILE#PAGE') is written with the PDF, so a second run the
same day prints nobody twice.

Files: <report.output_dir>/letters/<day>/letters-<day>-<HHMMSS>-<district>.pdf and letters-<day>-<HHMMSS>.csv
(district, account, name, address, language, file, page; cells a spreadsheet would evaluate are quoted); each
run has its own time stamp, so nothing printed earlier is overwritten.
"""

from __future__ import annotations

import csv
import logging
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from ivr.campaign.windows import aware_utc
from ivr.channels import rules, texts
from ivr.clock import Clock
from ivr.config import Config
from ivr.errors import IvrError
from ivr.ledger.importer import spreadsheet_safe
from ivr.ledger.models import Account, Message

log = logging.getLogger(__name__)

CSV_COLUMNS = ["district", "account", "name", "address", "language", "file", "page"]
FONT, FONT_BOLD = "IvrLetter", "IvrLetter-Bold"


@dataclass
class LetterRun:
    considered: int = 0
    printed: int = 0
    files: list[Path] = field(default_factory=list)
    csv: Path | None = None
    skipped: dict[str, int] = field(default_factory=dict)


def _file_part(district: str) -> str:
    return re.sub(r"[^\w-]+", "_", district.strip(), flags=re.UNICODE).strip("_") or "no_district"


def register_fonts(path: str) -> None:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    regular = Path(path)
    if not regular.is_file():
        raise IvrError(f"channels.letter_font: {path} not found (install fonts-dejavu-core: bash scripts/setup.sh)")
    bold = regular.with_name(regular.stem + "-Bold" + regular.suffix)
    pdfmetrics.registerFont(TTFont(FONT, str(regular)))
    pdfmetrics.registerFont(TTFont(FONT_BOLD, str(bold if bold.is_file() else regular)))


@dataclass(frozen=True)
class Page:
    """What one letter says, already laid out in lines (the PDF only draws them)."""

    sender: list[str]
    date_line: str
    addressee: list[str]
    body: list[str]  # paragraphs


def page_for(cfg: Config, acc: Account, day: date, body_text: str) -> Page:
    address = [p.strip() for p in acc.address.split(",") if p.strip()]
    return Page(sender=[cfg.company.name, cfg.company.phone], date_line=day.strftime("%d.%m.%Y"),
                addressee=[acc.name, *address, f"# {acc.number}"], body=body_text.split("\n\n"))


def draw(canvas, page: Page) -> None:
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.lib.utils import simpleSplit

    width, height = A4
    left, right = 25 * mm, width - 20 * mm
    y = height - 25 * mm
    canvas.setFont(FONT_BOLD, 12)
    for line in page.sender:
        if line:
            canvas.drawString(left, y, line)
            canvas.setFont(FONT, 10)
            y -= 5 * mm
    canvas.setFont(FONT, 10)
    canvas.drawRightString(right, height - 25 * mm, page.date_line)
    # the addressee block sits where a DL window envelope shows it
    y = height - 55 * mm
    canvas.setFont(FONT, 11)
    for line in page.addressee:
        canvas.drawString(110 * mm, y, line[:60])
        y -= 5.5 * mm
    y = min(y, height - 100 * mm) - 5 * mm
    size, leading = 11, 15
    canvas.setFont(FONT, size)
    lines = []
    for para in page.body:
        lines.extend(w for written in para.split("\n") for w in simpleSplit(written, FONT, size, right - left))
        lines.append(None)  # paragraph gap
    for line in lines:
        if line is None:
            y -= leading * 0.6
            continue
        if y < 25 * mm:
            break  # a text longer than a page is cut, never spilled onto the next debtor's page
        canvas.drawString(left, y, line)
        y -= leading


def print_due(cfg: Config, day: date, clock: Clock, *, out_dir: Path | None = None,
              progress: Callable[[int, int], None] | None = None) -> LetterRun:
    """Write the day's letters (see the module docstring)."""
    from reportlab.pdfgen.canvas import Canvas

    from ivr.channels.sms import prepare_evening

    if not cfg.channels.enabled:
        raise IvrError("channels.enabled is false in config.yaml: letters are off")
    run = LetterRun()
    now_aware = aware_utc(clock.now())
    camp, accounts = prepare_evening(cfg, day, clock)
    due, skipped = rules.due(cfg, "letter", accounts, now_aware, lambda a: a.address.strip())
    run.considered, run.skipped = len(accounts), dict(skipped)
    if not due:
        return run
    register_fonts(cfg.channels.letter_font)
    folder = out_dir or cfg.path(cfg.report.output_dir) / "letters" / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    templates = texts.loader(cfg)
    by_district: dict[str, list[Account]] = defaultdict(list)
    for acc, _address in due:
        by_district[acc.district].append(acc)
    now = now_aware.replace(tzinfo=None)
    # every run writes files of its own: a second run the same day never overwrites the first one's letters
    stamp = f"{day.isoformat()}-{now:%H%M%S}"
    rows: list[list[str]] = []
    done = 0
    for district in sorted(by_district):
        path = folder / f"letters-{stamp}-{_file_part(district)}.pdf"
        canvas = Canvas(str(path), invariant=1)
        canvas.setTitle(f"{cfg.company.name}: letters {day.isoformat()} {district}")
        pages = []
        for n, acc in enumerate(sorted(by_district[district], key=lambda a: a.number), start=1):
            lang = acc.language or cfg.locale.language
            tpl = templates(lang)["letter"]
            draw(canvas, page_for(cfg, acc, day, texts.render(tpl, texts.facts_for(cfg, acc, day))))
            canvas.showPage()
            pages.append((acc, lang, n))
        canvas.save()  # the file first, then the ledger: a crash in between prints again rather than never
        for acc, lang, n in pages:
            Message.create(account=acc, campaign=camp, channel="letter", kind="reminder", language=lang,
                           address=acc.address[:400], status="printed", provider_id=f"{path.name}#{n}",
                           created_at=now, sent_at=now)
            rows.append([district, acc.number, acc.name, acc.address, lang, path.name, str(n)])
            done += 1
            if progress:
                progress(done, len(due))
        run.files.append(path)
        log.info("event=letters_written district=%s pages=%d file=%s", district, len(pages), path.name)
    run.csv = folder / f"letters-{stamp}.csv"
    with run.csv.open("w", newline="", encoding="utf-8-sig") as fh:
        w = csv.writer(fh)
        w.writerow(CSV_COLUMNS)
        w.writerows([[spreadsheet_safe(c) for c in r] for r in rows])
    run.printed = done
    return run
