"""The console in a real browser: headless Chromium (Debian's chromium + chromium-driver) driven by selenium against
a real `ivr web` process, while `ivr demo` runs an evening against the simulated FreeSWITCH in another process.

One flow, so the whole costs about a minute: log in, see the evening start calling, pause it from the Controls
page and see "paused by anna", take and close a callback request on the worklist, open a debtor found by account
number and put the account on the do-not-call list, edit a message text and hear the preview (the audio element
loads a WAV). Every wait is a bounded poll for the thing itself (generous ceilings: it only fails on a real hang).
The console runs on a copy of the message texts, never the repository's own.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ivr.ledger.db import connect
from ivr.ledger.models import Account, CallbackRequest, DncEntry
from ivr.speech.speech import REPO_PROMPTS

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]

IVR = [sys.executable, "-c", "import sys; from ivr.cli import main; sys.exit(main())"]
PASSWORD = "correct horse battery"
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")


def wait_for(what: str, check, ceiling: float = 90.0, every: float = 0.25):
    """Poll `check` until it returns something truthy; fail naming `what` after `ceiling` seconds."""
    end = time.monotonic() + ceiling
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {ceiling:.0f} s waiting for {what}")
        time.sleep(every)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture
def evening(tmp_path: Path):
    """`ivr demo` (30 accounts, clock x5 from 17:59:30, 2 channels) and `ivr web` on its database."""
    (tmp_path / "config.yaml").write_text(f"speech:\n  cache_dir: {tmp_path / 'cache'}\n", encoding="utf-8")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    demo_err = (tmp_path / "demo.err").open("w")
    demo = subprocess.Popen([*IVR, "--config", str(tmp_path / "config.yaml"), "demo", "--accounts", "30",
                             "--scale", "5", "--start", "17:59:30", "--channels", "2"],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=demo_err, env=env)
    procs = [demo]
    try:
        folder = tmp_path / "data" / "demo"
        wait_for("the demo's campaign", lambda: "eligible tonight" in (tmp_path / "demo.err").read_text(
            encoding="utf-8", errors="replace") or demo.poll() is not None, 120)
        assert demo.poll() is None, (tmp_path / "demo.err").read_text(errors="replace")
        shutil.copytree(REPO_PROMPTS, tmp_path / "prompts")
        (tmp_path / "web.yaml").write_text(
            "database:\n  url: sqlite:///data/demo/ivr.sqlite3\n"
            f"speech:\n  prompts_dir: prompts\n  cache_dir: {tmp_path / 'cache'}\n", encoding="utf-8")
        demo_cfg = str(tmp_path / "web.yaml")
        run = subprocess.run([*IVR, "--config", demo_cfg, "user", "add", "anna", "--role", "admin",
                              "--password-stdin"], input=PASSWORD + "\n", capture_output=True, text=True,
                             timeout=120, cwd=tmp_path, env=env)
        assert run.returncode == 0, run.stderr
        web_out = (tmp_path / "web.out").open("w")
        web = subprocess.Popen([*IVR, "--config", demo_cfg, "web", "--port", "0"], cwd=tmp_path, stdout=web_out,
                               stderr=subprocess.STDOUT, env=env)
        procs.append(web)
        url = wait_for("the console's address", lambda: (m := re.search(r"http://[\d.]+:\d+/", (
            tmp_path / "web.out").read_text(errors="replace"))) and m.group(0), 60)
        yield url, folder, tmp_path
    finally:
        for p in reversed(procs):
            stop(p)


@pytest.fixture
def browser(tmp_path: Path):
    if not (CHROMIUM and DRIVER):
        why = "chromium and chromium-driver are not installed (scripts/setup.sh --browser installs them)"
        if os.environ.get("IVR_TEST_REQUIRE_BROWSER"):  # set by scripts/test.sh: in CI a skip would hide them
            pytest.fail(why)
        pytest.skip(why)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--mute-audio", "--autoplay-policy=no-user-gesture-required", "--window-size=1280,1000", f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def headline(driver) -> tuple[str, str]:
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    try:
        el = driver.find_element("id", "headline")
        return el.get_attribute("data-code") or "", el.text
    except (NoSuchElementException, StaleElementReferenceException):  # htmx is swapping the panel
        return "", ""


def text_of(driver, element_id: str) -> str:
    """An element's text, or "" while htmx is swapping it (a found element may be replaced before it is read)."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    try:
        return driver.find_element("id", element_id).text
    except (NoSuchElementException, StaleElementReferenceException):
        return ""


def test_log_in_watch_the_evening_pause_it_and_close_a_callback(evening, browser):
    url, folder, root = evening
    d = browser
    d.get(url + "tonight")
    assert "/login" in d.current_url
    d.find_element("id", "name").send_keys("anna")
    d.find_element("id", "password").send_keys(PASSWORD)
    d.find_element("id", "login").click()
    wait_for("the Tonight page", lambda: d.current_url.endswith("/tonight"), 30)
    assert d.find_element("id", "whoami").text.startswith("anna")

    # the page refreshes itself (htmx): the evening starts calling without a reload
    wait_for("the evening to start calling", lambda: headline(d)[0] == "calling", 120)
    shown = wait_for("the channels in use", lambda: re.fullmatch(r"(\d+) / (\d+)", text_of(d, "channels")), 30)
    in_use, cap = (int(x) for x in shown.groups())
    assert 0 <= in_use <= 2 and cap >= 2  # the demo's --channels 2 is its own; the cap shown is config's

    # pause it from the Controls page, and see who paused it on Tonight
    d.get(url + "lang/en")
    d.get(url + "controls")
    d.find_element("id", "do-pause").click()
    wait_for("the pause to be recorded", lambda: text_of(d, "command") == "pause", 30)
    d.get(url + "tonight")
    code, text = wait_for("the dialer to pause", lambda: headline(d)[0] == "paused" and headline(d), 60)
    assert re.fullmatch(r"Paused by anna at \d\d:\d\d", text), text

    # the evening's report so far
    d.get(url + "reports")
    # the first view of an evening's report is built in the background: the page says so and reloads itself
    wait_for("the evening's report", lambda: d.find_elements("id", "totals") and
             d.find_elements("css selector", "#people td.name"), 120)

    # a callback request on the worklist: take it, record the result and close it
    connect(f"sqlite:///{folder / 'ivr.sqlite3'}")
    acc = Account.select().order_by(Account.id).first()
    req = CallbackRequest.create(account=acc, e164="+380501112299", district="Browser district")
    d.get(url + "callbacks")
    row = d.find_element("id", f"cb-{req.id}")
    assert "+380501112299" in row.text
    row.find_element("css selector", "button.take").click()
    wait_for("the request's page", lambda: d.current_url.endswith(f"/callbacks/{req.id}"), 30)
    assert d.find_element("id", "taken-by").text == "anna"
    from selenium.webdriver.support.ui import Select
    Select(d.find_element("id", "result")).select_by_value("paid")
    d.find_element("id", "note").send_keys("paid at the bank")
    d.find_element("id", "close").click()
    d.find_element("id", "save-result").click()
    wait_for("the worklist again", lambda: d.current_url.endswith("/callbacks"), 30)
    assert not d.find_elements("id", f"cb-{req.id}")
    closed = CallbackRequest.get_by_id(req.id)
    assert (closed.closed_by, closed.result) == ("anna", "paid") and closed.handled_at is not None

    # a debtor found by account number: put the account on the do-not-call list
    d.get(url + "accounts")
    d.find_element("id", "q").send_keys(acc.number)
    Select(d.find_element("id", "by")).select_by_value("account")
    d.find_element("id", "find").click()
    wait_for("the debtor's page", lambda: d.current_url.endswith(f"/accounts/{acc.number}"), 30)
    assert d.find_element("id", "debtor-name").text == acc.name
    d.find_element("id", "dnc-reason").send_keys("asked by letter")
    d.find_element("id", "dnc-add").click()
    wait_for("the entry on the page", lambda: "asked by letter" in text_of(d, "dnc"), 30)
    entry = DncEntry.get(DncEntry.value == acc.number)
    assert (entry.kind, entry.added_by) == ("account", "anna")

    # edit a text (the goodbye) and save it; then hear the debt message for this account
    d.get(url + "messages?lang=uk")
    box = d.find_element("id", "text")
    text = box.get_attribute("value")
    changed = text.replace("goodbye: \"", "goodbye: \"Дякуємо. ", 1)
    assert changed != text
    d.execute_script("arguments[0].value = arguments[1];", box, changed)
    d.find_element("id", "save").click()
    wait_for("the text saved", lambda: d.find_elements("id", "saved"), 30)
    assert (root / "prompts" / "uk" / "messages.yaml").read_text(encoding="utf-8") == changed
    d.find_element("id", "preview-account").send_keys(acc.number)
    Select(d.find_element("id", "preview-key")).select_by_value("goodbye")
    d.find_element("id", "play").click()
    duration = wait_for("the audio element to load the WAV", lambda: d.execute_script(
        "const a = document.getElementById('player'); return a && a.readyState >= 1 ? a.duration : 0;"), 60)
    assert duration > 0.5
