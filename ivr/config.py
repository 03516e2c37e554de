"""Loading and validating `config.yaml`.

Every setting lives in a frozen dataclass below, with its safe default. `load_config` reads the YAML, checks each
value against its field (type, allowed values, range), reports unknown keys (a typo must not pass silently) and
raises one ConfigError listing every problem by key path, bad value and what is allowed. The ESL password may
come from the environment (IVR_ESL_PASSWORD) so it need not sit in the file.
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

CONFIG_ENV = "IVR_CONFIG"
PASSWORD_ENV = "IVR_ESL_PASSWORD"
NODE_ENV = "IVR_NODE"  # which entry of the config's `nodes:` section applies to this process
SMPP_PASSWORD_ENV = "IVR_SMPP_PASSWORD"
DEFAULT_PATH = "config.yaml"

_WINDOW_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
_CAUSE_RE = re.compile(r"^[A-Z][A-Z0-9_]{1,63}$")


class ConfigError(ValueError):
    """One or more invalid settings; `problems` lists them one per line."""

    def __init__(self, problems: list[str], source: str = "config") -> None:
        self.problems = problems
        super().__init__(f"{source}: {len(problems)} problem(s):\n  " + "\n  ".join(problems))


def _opt(default: Any, doc: str, **rules: Any) -> Any:
    """A field with a default, a one-line doc and validation rules (choices, min, max, check)."""
    meta = {"doc": doc, **rules}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: typing.cast(Any, type(d)(d)), metadata=meta)
    return field(default=default, metadata=meta)


def _check_window(value: str) -> str | None:
    m = _WINDOW_RE.match(value)
    if not m:
        return "a window 'HH:MM-HH:MM'"
    start = int(m[1]) * 60 + int(m[2])
    end = int(m[3]) * 60 + int(m[4])
    if end <= start or end > 24 * 60:
        return "a window whose end is after its start, within one day"
    return None


def _check_tz(value: str) -> str | None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return "an IANA time zone such as Europe/Kyiv"
    return None


def _check_cause(value: str) -> str | None:
    return None if _CAUSE_RE.match(value) else "a hangup cause name in capitals, e.g. USER_BUSY"


def _check_iso_date(value: str) -> str | None:
    return None if re.match(r"^\d{4}-\d{2}-\d{2}$", value) else "a date YYYY-MM-DD"


def _check_dial_template(value: str) -> str | None:
    if "{number}" not in value:
        return "a template containing {number}"
    if re.search(r"[\s\r\n{},|']", value.replace("{number}", "").replace("{gateway}", "")):
        return "a template without spaces, quotes, braces, commas or '|' outside {number} and {gateway}"
    return None


def _check_regex(value: str) -> str | None:
    try:
        re.compile(value)
    except re.error as exc:
        return f"a regular expression ({exc})"
    return None if value else "a non-empty regular expression"


def _check_ident(value: str) -> str | None:
    return None if re.match(r"^[A-Za-z0-9_.-]*$", value) else "letters, digits, '_', '.', '-' only"


def _check_host(value: str) -> str | None:
    return None if re.match(r"^[A-Za-z0-9_.:-]+$", value) else "a host name or IP address"


def _check_callerid_number(value: str) -> str | None:
    return None if re.match(r"^\+?[0-9]{1,20}$", value) else "digits with an optional leading +"


def _check_transfer(value: str) -> str | None:
    # "<extension> [<dialplan> [<context>]]" as given to the transfer application
    return None if re.match(r"^[A-Za-z0-9_+*#.-]+( [A-Za-z0-9_.-]+){0,2}$", value) else "'EXTENSION [DIALPLAN [CONTEXT]]'"


@dataclass(frozen=True)
class DatabaseConfig:
    url: str = _opt("sqlite:///data/ivr.sqlite3", "sqlite:///PATH (WAL) or postgresql://user:pass@host/db",
                    check=lambda v: None if re.match(r"^(sqlite:///|postgres(ql)?://)", v) else
                    "a URL starting with sqlite:/// or postgresql://")


@dataclass(frozen=True)
class LocaleConfig:
    country: str = _opt("UA", "ISO country: default phone region and public holidays",
                        check=lambda v: None if re.match(r"^[A-Z]{2}$", v) else "a two-letter ISO country code")
    subdivision: str = _opt("", "holidays subdivision (state/province) or empty", check=_check_ident)
    timezone: str = _opt("Europe/Kyiv", "time zone of accounts that have none", check=_check_tz)
    currency: str = _opt("UAH", "currency of balances", choices=("UAH", "RUB", "BGN", "EUR", "USD"))
    language: str = _opt("uk", "message language of accounts that have none", choices=("uk", "ru", "bg", "en"))


_LANG_KEY = {"key_check": lambda v: None if v in ("uk", "ru", "bg", "en") else "uk, ru, bg or en"}


@dataclass(frozen=True)
class CompanyConfig:
    name: str = _opt("City Water", "company name said in messages")
    names: dict[str, str] = _opt({}, "company name per message language (uk, ru, bg, en); others say company.name",
                                 **_LANG_KEY)
    phone: str = _opt("+380441234567", "office phone said in messages")


@dataclass(frozen=True)
class FreeswitchConfig:
    host: str = _opt("127.0.0.1", "event socket host", check=_check_host)
    port: int = _opt(8021, "event socket port", min=1, max=65535)
    password: str = _opt("ClueCon", "event socket password (env IVR_ESL_PASSWORD overrides; never logged)")
    command_timeout: float = _opt(10.0, "seconds to wait for any ESL reply", min=0.5, max=120)
    reconnect_max_delay: float = _opt(30.0, "longest back-off between reconnect tries, seconds", min=1, max=600)
    outbound_bind_host: str = _opt("127.0.0.1", "address the call-flow server listens on", check=_check_host)
    outbound_bind_port: int = _opt(8084, "port the call-flow server listens on", min=1, max=65535)
    outbound_advertise_host: str = _opt("127.0.0.1", "address FreeSWITCH connects to in socket(host:port)",
                                        check=_check_host)
    max_channels: int = _opt(0, "this box's own channel cap, under the shared pacing cap (0 = none)", min=0,
                             max=10000)


@dataclass(frozen=True)
class DialingConfig:
    dial_string: str = _opt("sofia/gateway/{gateway}/{number}", "endpoint template; {number} is the debtor's digits",
                            check=_check_dial_template)
    gateway: str = _opt("trunk", "SIP gateway name substituted for {gateway}", check=_check_ident)
    number_format: str = _opt("e164", "how {number} is written", choices=("e164", "e164_digits", "national"))
    caller_id_number: str = _opt("0000000000", "caller id number shown to debtors", check=_check_callerid_number)
    caller_id_name: str = _opt("Utility", "caller id name shown to debtors")
    originate_timeout: int = _opt(30, "seconds to ring before NO_ANSWER", min=5, max=120)
    max_call_seconds: int = _opt(300, "hard limit on one call's length", min=30, max=3600)
    allowed_countries: list[str] = _opt([],
                                        "countries whose numbers may be dialled, ISO codes ([] = locale.country only)",
                                        item_check=lambda v: None if re.match(r"^[A-Z]{2}$", v) else
                                        "a two-letter ISO country code such as UA")
    number_types: list[str] = _opt(
        ["mobile", "fixed_line"], "number types that may be dialled (mobile, fixed_line, toll_free, voip, "
        "personal_number); premium-rate, shared-cost, UAN, voicemail and pager numbers never are",
        item_check=lambda v: None if v in ("mobile", "fixed_line", "toll_free", "voip", "personal_number") else
        "one of mobile, fixed_line, toll_free, voip, personal_number")
    codec_string: str = _opt("PCMU", "absolute_codec_string: RFC 2833 digits only arrived with PCMU",
                             check=lambda v: None if re.match(r"^[A-Za-z0-9.@_]+(:[A-Za-z0-9.@_]+)*$", v) else
                             "codec names joined by ':' e.g. PCMU or PCMU:PCMA")
    node_timeout_seconds: float = _opt(30.0, "seconds without a heartbeat before another dialer process takes a "
                                       "node's calls over (its lease lasts a third of this)", min=3, max=600)


@dataclass(frozen=True)
class PacingConfig:
    channels: int = _opt(30, "most concurrent calls on the trunk", min=1, max=10000)
    cps: float = _opt(5.0, "most new calls per second", min=0.1, max=1000)
    congestion_causes: list[str] = _opt(
        ["NORMAL_CIRCUIT_CONGESTION", "SWITCH_CONGESTION", "NORMAL_TEMPORARY_FAILURE", "DESTINATION_OUT_OF_ORDER"],
        "hangup causes that mean 'slow down'", item_check=_check_cause)
    congestion_threshold: int = _opt(5, "congestion causes within congestion_window_seconds that trigger a slow-down",
                                     min=1, max=10000)
    congestion_window_seconds: float = _opt(10.0, "window for counting congestion causes", min=1, max=3600)
    slowdown_factor: float = _opt(0.5, "rate multiplier applied on each congestion burst", min=0.05, max=0.95)
    recovery_seconds: float = _opt(30.0, "seconds without congestion before the rate steps back up", min=1, max=3600)


@dataclass(frozen=True)
class WindowsConfig:
    weekday: list[str] = _opt(["18:00-21:00"], "call windows Monday-Friday, debtor's local time",
                              item_check=_check_window)
    weekend: list[str] = _opt(["09:00-20:00"], "call windows Saturday-Sunday", item_check=_check_window)
    holiday: list[str] = _opt(["09:00-20:00"], "call windows on public holidays ([] = no calls)",
                              item_check=_check_window)
    quiet_dates: list[str] = _opt([], "dates with no calls at all (YYYY-MM-DD)", item_check=_check_iso_date)


@dataclass(frozen=True)
class EligibilityConfig:
    threshold: float = _opt(100.0, "remaining debt above this qualifies", min=0, max=1e9)
    overdue_months: int = _opt(1, "any debt overdue this many calendar months qualifies (0 = off)", min=0, max=120)
    max_data_age_hours: int = _opt(36, "ivr run refuses to start when the last accounts or payments import is older "
                                       "(0 = no check)", min=0, max=24 * 366)
    balance_includes_same_day_payments: bool = _opt(
        False, "true: billing's balance already counts payments dated on the balance date; false: they reduce it")


@dataclass(frozen=True)
class RetryConfig:
    early_hangup_pause_seconds: int = _opt(120, "pause before re-calling someone who hung up mid-message",
                                           min=0, max=86400)
    delays: dict[str, int] = _opt(
        {"USER_BUSY": 900, "NO_ANSWER": 1800, "NO_USER_RESPONSE": 1800, "SUBSCRIBER_ABSENT": 3600,
         "NORMAL_TEMPORARY_FAILURE": 600, "RECOVERY_ON_TIMER_EXPIRE": 600, "NETWORK_OUT_OF_ORDER": 900,
         "NORMAL_CIRCUIT_CONGESTION": 300, "SWITCH_CONGESTION": 300, "DESTINATION_OUT_OF_ORDER": 600,
         "ORIGINATOR_CANCEL": 1800, "MEDIA_TIMEOUT": 900, "ALLOTTED_TIMEOUT": 1800},
        "seconds before retrying, per hangup cause", key_check=_check_cause, min=0, max=7 * 86400)
    default_delay: int = _opt(1800, "retry delay for causes not listed in delays", min=0, max=7 * 86400)
    never_retry: list[str] = _opt(["UNALLOCATED_NUMBER", "INVALID_NUMBER_FORMAT", "CALL_REJECTED"],
                                  "causes after which the number is not called again", item_check=_check_cause)
    invalid_number_causes: list[str] = _opt(["UNALLOCATED_NUMBER", "INVALID_NUMBER_FORMAT"],
                                            "causes that flag the number invalid on the account",
                                            item_check=_check_cause)
    max_attempts_per_day: int = _opt(4, "call attempts per account per local day", min=1, max=100)
    max_attempts_per_campaign: int = _opt(8, "call attempts per account per campaign", min=1, max=1000)
    contact_caps: str = _opt("off", "answered-contact caps preset: off, or collection (1/day, 2/week, 8/month)",
                             choices=("off", "collection", "custom"))
    contacts_per_day: int = _opt(0, "answered contacts per debtor per day when contact_caps is custom (0 = no cap)",
                                 min=0, max=100)
    contacts_per_week: int = _opt(0, "answered contacts per debtor per week (custom)", min=0, max=100)
    contacts_per_month: int = _opt(0, "answered contacts per debtor per month (custom)", min=0, max=1000)


@dataclass(frozen=True)
class CampaignConfig:
    holdout_share: float = _opt(0.0, "share of eligible debtors drawn at random each evening and not contacted by "
                                     "any channel, to measure the effect (0 = none; e.g. 0.05)", min=0.0, max=0.5)


def _check_menu_key(value: str) -> str | None:
    return None if value in ("0", "1", "2", "3", "9") else "a menu key: 1 pay now, 2 callback, 3 already paid, " \
        "9 wrong number, 0 hear again (callflow.optout_key is offered with the menu's text)"


@dataclass(frozen=True)
class InstallmentConfig:
    remind_days_before: list[int] = _opt([3, 0], "installment reminders this many days before each due date "
                                         "(0 = on the day)", item_check=lambda v: None if 0 <= v <= 60 else
                                         "whole days from 0 to 60")
    missed_days_after: int = _opt(1, "a call about a missed installment this many days after the due date "
                                  "(0 = none)", min=0, max=60)
    windows: list[str] = _opt([], "installment call windows every day ([] = the windows section)",
                              item_check=_check_window)
    max_attempts_per_day: int = _opt(3, "installment call attempts per account per local day", min=1, max=100)
    max_attempts_per_campaign: int = _opt(4, "installment call attempts per account per campaign", min=1,
                                          max=1000)
    menu: list[str] = _opt(["1", "2", "3", "0"], "menu keys an installment call offers", item_check=_check_menu_key)


@dataclass(frozen=True)
class OutageConfig:
    notice_days: list[int] = _opt([10, 3], "planned outages are announced this many days before they start",
                                  item_check=lambda v: None if 0 <= v <= 60 else "whole days from 0 to 60")
    windows: list[str] = _opt([], "planned-outage call windows every day ([] = the windows section)",
                              item_check=_check_window)
    emergency_windows: list[str] = _opt(["08:00-22:00"], "emergency-outage call windows, every day (holidays and "
                                        "quiet dates too)", item_check=_check_window)
    max_attempts_per_day: int = _opt(3, "outage call attempts per account per local day", min=1, max=100)
    max_attempts_per_campaign: int = _opt(6, "outage call attempts per account per notice", min=1, max=1000)
    menu: list[str] = _opt(["2", "0"], "menu keys an outage call offers (2 = an operator calls back)",
                           item_check=_check_menu_key)
CAMPAIGN_KINDS = ("debt", "installment", "outage")


def _check_kind(value: str) -> str | None:
    return None if value in CAMPAIGN_KINDS else "one of " + ", ".join(CAMPAIGN_KINDS)


@dataclass(frozen=True)
class LifeSupportConfig:
    after_informed: dict[str, str] = _opt(
        {"debt": "robot", "installment": "robot", "outage": "never"},
        "per campaign kind, what may follow once an operator has informed a life-support account in person: robot "
        "(automated reminders) or never (people only); before that the robot never calls them",
        key_check=_check_kind, choices=("robot", "never"))


@dataclass(frozen=True)
class LadderConfig:
    second_call_after_heard: int = _opt(1, "heard calls (since the last payment) that move a debtor from the "
                                        "reminder call to the second call", min=1, max=100)
    operator_after_heard: int = _opt(2, "heard calls before an operator calls in person", min=1, max=100)
    operator_after_days: int = _opt(7, "days since the first heard call, without payment, before the operator "
                                    "call", min=0, max=3650)
    letter_after_days: int = _opt(14, "days since the first heard call, without payment, before the letter",
                                  min=0, max=3650)
    manual_hold_days: int = _opt(30, "a stage set by hand (`ivr ladder move`, the console) holds this many days "
                                 "before the rules move the account again", min=0, max=3650)


@dataclass(frozen=True)
class CourtConfig:
    threshold: float = _opt(1000.0, "remaining debt above this may become a court candidate", min=0, max=1e9)
    min_heard_calls: int = _opt(2, "heard calls on record (since the last payment) a court candidate needs; never "
                                "fewer than 1", min=1, max=100)
    days_without_payment: int = _opt(30, "days since the first heard call without any payment", min=1, max=3650)
    require_letter: bool = _opt(True, "a court candidate also needs a letter printed since the last payment")


CHANNEL_NAMES = ("voice", "sms", "email", "letter")


def _check_order_item(value: str) -> str | None:
    return None if value in ("preferred", *CHANNEL_NAMES) else "preferred, voice, sms, email or letter"


def _check_channel(value: str) -> str | None:
    return None if value in CHANNEL_NAMES else "voice, sms, email or letter"


def _check_link(value: str) -> str | None:
    if not value:
        return None
    if not re.match(r"^https://[^\s{}]+(\{account\}[^\s{}]*)?$", value) or "{account}" not in value:
        return "'' or an https:// address containing {account}, e.g. https://pay.example.com/?acc={account}"
    return None


@dataclass(frozen=True)
class ChannelsConfig:
    enabled: bool = _opt(False, "false: calls only (preferred_channel ignored); true: follow channels.order")
    order: list[str] = _opt(["preferred", "voice", "sms", "letter"],
                            "channels tried in turn for a reminder ('preferred' = the account's preferred_channel "
                            "from billing; a channel not set up is skipped)", item_check=_check_order_item)
    try_days: dict[str, int] = _opt({"voice": 2, "sms": 1, "email": 2},
                                    "days a channel is given to reach the debtor before the next one is tried",
                                    key_check=_check_channel, min=0, max=60)
    per_week: dict[str, int] = _opt({"sms": 2, "email": 2, "letter": 1},
                                    "messages per debtor per 7 days, per channel (0 = none)",
                                    key_check=_check_channel, min=0, max=50)
    per_day: dict[str, int] = _opt({"sms": 1, "email": 1},
                                   "messages per debtor per local day, per channel", key_check=_check_channel,
                                   min=0, max=10)
    sms_windows: list[str] = _opt(["09:00-20:00"], "when SMS may be sent, every day, debtor's local time",
                                  item_check=_check_window)
    payment_link: str = _opt("", "payment link template for {link} in written texts ('' = none)",
                             check=_check_link)
    letter_font: str = _opt("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
                            "TrueType font with Cyrillic for letters (its -Bold twin is used when present)")


@dataclass(frozen=True)
class SmsConfig:
    host: str = _opt("", "SMSC host for SMPP 3.4 ('' = SMS not set up)", check=lambda v: None if not v else
                     _check_host(v))
    port: int = _opt(2775, "SMSC port", min=1, max=65535)
    system_id: str = _opt("ivr", "SMPP system_id (login)", check=_check_ident)
    password: str = _opt("", "SMPP password (better: env IVR_SMPP_PASSWORD; never logged)")
    system_type: str = _opt("", "SMPP system_type, if the provider asks for one", check=_check_ident)
    bind: str = _opt("transceiver", "transceiver (receipts on the same link) or transmitter (plus a receiver "
                                    "link for receipts)", choices=("transceiver", "transmitter"))
    source_addr: str = _opt("IVR", "sender: digits (a number) or up to 11 letters/digits (alphanumeric)",
                            check=lambda v: None if re.match(r"^(\+?[0-9]{1,15}|[A-Za-z0-9 ._-]{1,11})$", v)
                            else "a number, or up to 11 letters and digits")
    max_per_second: float = _opt(10.0, "submit_sm per second (each part counts)", min=0.1, max=1000)
    receipt_wait_seconds: int = _opt(30, "after sending, how long to keep the link open for delivery receipts",
                                     min=0, max=3600)
    enquire_link_seconds: int = _opt(30, "idle seconds between enquire_link keep-alives", min=5, max=600)
    reconnect_attempts: int = _opt(5, "re-binds tried after the link drops before the run gives up",
                                   min=0, max=100)
    timeout_seconds: int = _opt(10, "how long to wait for the SMSC's answer to one PDU", min=1, max=120)


@dataclass(frozen=True)
class EmailConfig:
    host: str = _opt("", "SMTP server ('' = e-mail not set up); user and password come from env IVR_SMTP_USER "
                         "and IVR_SMTP_PASSWORD only", check=lambda v: None if not v else _check_host(v))
    port: int = _opt(587, "SMTP port (587 submission with STARTTLS, 465 TLS)", min=1, max=65535)
    security: str = _opt("starttls", "starttls (required), tls (port 465) or none (a local relay only)",
                         choices=("starttls", "tls", "none"))
    from_address: str = _opt("", "sender address, e.g. billing@example.com",
                             check=lambda v: None if not v or re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", v)
                             else "an e-mail address")
    from_name: str = _opt("", "sender name shown to the debtor ('' = company.name)")
    reply_to: str = _opt("", "Reply-To address ('' = none)",
                         check=lambda v: None if not v or re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", v)
                         else "an e-mail address")
    ca_file: str = _opt("", "extra CA certificate file trusted for the server ('' = the system's)")
    timeout_seconds: int = _opt(30, "how long to wait for the SMTP server", min=1, max=300)
    max_per_second: float = _opt(5.0, "messages per second", min=0.1, max=100)


@dataclass(frozen=True)
class CallflowConfig:
    right_party_check: bool = _opt(False, "ask 'is this <name>? press 1' before saying the amount")
    barge_in: bool = _opt(True, "keys 1/2 may end the message early (the key press proves attention)")
    heard_share: float = _opt(0.9, "share of the message that must have played to count as heard", min=0.1, max=1.0)
    menu_timeout_ms: int = _opt(5000, "silence after the menu before it is repeated", min=1000, max=30000)
    digit_timeout_ms: int = _opt(3000, "time between digits", min=500, max=10000)
    menu_rounds: int = _opt(2, "times the menu is offered before goodbye", min=1, max=5)
    paynow_transfer: str = _opt("paynow XML ivr_paynow", "transfer target for key 1: 'EXTENSION DIALPLAN CONTEXT'",
                                check=_check_transfer)
    replays_max: int = _opt(2, "times key 0 may replay the message", min=0, max=5)
    optout_key: str = _opt("8", "menu key that puts the number on the do-not-call list ('' = no such key)",
                           check=lambda v: None if re.fullmatch(r"[0-9]?", v) else "one digit 0-9, or '' for none")
    machine_detection: str = _opt("off", "answering machines: off, avmd (mod_avmd beep events) or heuristic "
                                  "(a long greeting / no reply to 'hello', no module needed)",
                                  choices=("off", "avmd", "heuristic"))
    machine_action: str = _opt("message", "what a detected machine gets: message (the machine_message prompt: "
                               "company and office number only) or hangup (nothing)", choices=("message", "hangup"))
    machine_wait_ms: int = _opt(6000, "avmd: how long after the answer a beep may still mark a machine before "
                                "the message starts", min=1000, max=30000)
    machine_greeting_ms: int = _opt(4000, "heuristic: speech still going this long after the answer = a "
                                    "machine's greeting", min=1500, max=15000)
    machine_reply_ms: int = _opt(3000, "heuristic: silence this long after the 'hello' prompt = a machine",
                                 min=1000, max=10000)
    machine_silence_threshold: int = _opt(200, "heuristic: audio energy below which a 20 ms frame counts as "
                                          "silence (wait_for_silence threshold)", min=10, max=10000)


def _check_hhmm(value: str) -> str | None:
    return None if re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value) else "a time HH:MM"


def _check_groups(value: str) -> str | None:
    return None if re.fullmatch(r"[1-4](-[1-4])*", value) else "group sizes 1-4 joined by '-', e.g. 3-3-2-2"


TTS_ENGINES = ("espeak-ng", "command", "piper")
ENGINES = (*TTS_ENGINES, "recorded")


@dataclass(frozen=True)
class SpeechConfig:
    engine: str = _opt("espeak-ng", "how messages are voiced, unless speech.engines names one for the language",
                       choices=ENGINES)
    engines: dict[str, str] = _opt({}, "engine per language, e.g. {uk: recorded}", choices=ENGINES, **_LANG_KEY)
    fallback_engine: str = _opt("espeak-ng", "engine 'recorded': TTS engine for names and missing clips",
                                choices=TTS_ENGINES)
    command: str = _opt("", "engine 'command': argv template with {text_file}, {voice}, {out}")
    voices: dict[str, str] = _opt({"uk": "uk", "ru": "ru", "bg": "bg", "en": "en-us"}, "TTS voice per language",
                                  **_LANG_KEY)
    piper_models: dict[str, str] = _opt({}, "engine 'piper': voice model (.onnx) per language",
                                        **_LANG_KEY)
    prompts_dir: str = _opt("prompts", "folder holding <lang>/messages.yaml (and <lang>/audio, <lang>/kit)")
    cache_dir: str = _opt("data/prompt-cache", "folder of rendered WAV files")
    cache_max_mb: int = _opt(2048, "prompt cache size before least-recently-used files are evicted", min=10,
                             max=10_000_000)
    playback_dir: str = _opt("", "the cache folder as FreeSWITCH sees it, if it is mounted elsewhere ('' = same)")
    segment_mode: str = _opt("list", "play a message as a list of cached segments, or joined into one WAV per message",
                             choices=("list", "joined"))
    day_from: str = _opt("12:00", "{hello} says good day (not good morning) from this local time", check=_check_hhmm)
    evening_from: str = _opt("18:00", "{hello} says good evening from this local time", check=_check_hhmm)
    account_reading: str = _opt("digits", "account numbers said digit by digit, or in pairs (12 34 5)",
                                choices=("digits", "pairs"))
    account_pause_ms: int = _opt(220, "pause between the digits (or pairs) of an account number", min=0, max=1500)
    amount_pause_ms: int = _opt(600, "pause after the amount, so it sinks in", min=0, max=3000)
    phone_groups: str = _opt("3-3-2-2", "office phone said in groups of these sizes (national number)",
                             check=_check_groups)


@dataclass(frozen=True)
class ImportConfig:
    encoding: str = _opt("auto", "CSV encoding", choices=("auto", "utf-8", "cp1251"))
    delimiter: str = _opt("auto", "CSV delimiter", choices=("auto", ",", ";", "\t"))
    decimal: str = _opt("auto", "decimal separator in amounts", choices=("auto", ".", ","))
    date_format: str = _opt("auto", "date format in files: auto, or a strptime pattern like %d.%m.%Y")
    phone_separator: str = _opt(";|,", "characters separating several numbers in one phone field")
    account_columns: dict[str, str] = _opt(
        {"account": "account", "name": "name", "phones": "phone", "address": "address", "district": "district",
         "language": "language", "timezone": "timezone", "balance": "balance", "balance_date": "balance_date",
         "overdue_since": "overdue_since", "do_not_call": "do_not_call", "life_support": "life_support",
         "preferred_channel": "preferred_channel", "email": "email"},
        "our field -> column name in the billing export (accounts)")
    payment_columns: dict[str, str] = _opt(
        {"account": "account", "amount": "amount", "date": "date", "reference": "reference"},
        "our field -> column name in the billing export (payments)")
    rejects_dir: str = _opt("data/rejects", "where rejected rows are written")
    account_number_pattern: str = _opt(
        "[0-9A-Za-zА-ЯЁЄІЇҐа-яёєіїґ_./-]{1,64}",
        "regular expression a whole account number must match (Cyrillic letters allowed by default)",
        check=_check_regex)
    accounts_export: str = _opt("full", "full: the accounts file lists every account (one missing is not called until "
                                "it reappears); changes: only accounts that changed", choices=("full", "changes"))
    anomaly_total_debt_rise: float = _opt(0.3, "hold a full export whose total debt rose more than this share "
                                          "over the previous full export's (0 = off)", min=0, max=100)
    anomaly_debt_factor: float = _opt(2.0, "a debt counts as risen when it is at least this many times the "
                                      "ledger's latest balance", min=1.01, max=1000)
    anomaly_debt_rise_share: float = _opt(0.1, "hold an export in which more than this share of the debts "
                                          "compared have risen so (0 = off)", min=0, max=1)
    anomaly_vanished_share: float = _opt(0.2, "hold a full export that leaves out more than this share of the "
                                         "accounts the previous full export listed (0 = off)", min=0, max=1)
    anomaly_count_change: float = _opt(0.2, "hold a full export whose account count differs from the previous "
                                       "full export's by more than this share (0 = off)", min=0, max=100)
    anomaly_min_accounts: int = _opt(20, "the anomaly checks need this many accounts to compare (shares of a "
                                     "handful of accounts mean nothing)", min=1, max=10_000_000)
    duplicates: str = _opt("reject", "an account twice in one file: reject both rows, or keep_first",
                           choices=("reject", "keep_first"))
    unknown_accounts: str = _opt("list", "payments for accounts not in the ledger: list them (not rejects), or reject",
                                 choices=("list", "reject"))


@dataclass(frozen=True)
class ReportConfig:
    output_dir: str = _opt("reports", "where reports and exports are written")


@dataclass(frozen=True)
class LoggingConfig:
    level: str = _opt("INFO", "log level", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    mask_numbers: bool = _opt(True, "mask phone numbers in logs (+38050***4567)")
    file: str = _opt("", "log file ('' = standard error only)")


@dataclass(frozen=True)
class MetricsConfig:
    port: int = _opt(0, "Prometheus metrics port for `ivr run` (0 = off)", min=0, max=65535)
    bind: str = _opt("127.0.0.1", "address the metrics endpoint listens on", check=_check_host)


@dataclass(frozen=True)
class InboundConfig:
    recent_days: int = _opt(7, "a caller whose number got a message tonight or within this many days hears it "
                            "again when calling back", min=0, max=90)
    fallback_transfer: str = _opt("office XML ivr_office", "where an unknown caller is transferred: "
                                  "'EXTENSION DIALPLAN CONTEXT'", check=_check_transfer)


@dataclass(frozen=True)
class WebConfig:
    bind: str = _opt("127.0.0.1", "address the staff console (`ivr web`) listens on", check=_check_host)
    port: int = _opt(8080, "port of the staff console", min=1, max=65535)
    secret_key: str = _opt("", "session signing key ('' = generated once into secret_key_file; env "
                               "IVR_WEB_SECRET_KEY overrides)")
    secret_key_file: str = _opt("data/web-secret.key", "where the generated session key is kept (mode 600)")
    session_minutes: int = _opt(60, "a console session ends after this many minutes without a request",
                                min=1, max=7 * 24 * 60)
    login_attempts: int = _opt(5, "wrong passwords in a row that block a login name", min=1, max=100)
    login_block_minutes: int = _opt(15, "how long a blocked login name waits", min=1, max=24 * 60)
    upload_dir: str = _opt("data/uploads", "where billing files uploaded on the Import page are kept")
    cookie_secure: bool = _opt(False, "send the session cookie over HTTPS only (true behind a TLS reverse proxy)")


@dataclass(frozen=True)
class Config:
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    locale: LocaleConfig = field(default_factory=LocaleConfig)
    company: CompanyConfig = field(default_factory=CompanyConfig)
    freeswitch: FreeswitchConfig = field(default_factory=FreeswitchConfig)
    dialing: DialingConfig = field(default_factory=DialingConfig)
    pacing: PacingConfig = field(default_factory=PacingConfig)
    windows: WindowsConfig = field(default_factory=WindowsConfig)
    eligibility: EligibilityConfig = field(default_factory=EligibilityConfig)
    retry: RetryConfig = field(default_factory=RetryConfig)
    campaign: CampaignConfig = field(default_factory=CampaignConfig)
    installment: InstallmentConfig = field(default_factory=InstallmentConfig)
    outage: OutageConfig = field(default_factory=OutageConfig)
    life_support: LifeSupportConfig = field(default_factory=LifeSupportConfig)
    ladder: LadderConfig = field(default_factory=LadderConfig)
    court: CourtConfig = field(default_factory=CourtConfig)
    channels: ChannelsConfig = field(default_factory=ChannelsConfig)
    sms: SmsConfig = field(default_factory=SmsConfig)
    email: EmailConfig = field(default_factory=EmailConfig)
    callflow: CallflowConfig = field(default_factory=CallflowConfig)
    inbound: InboundConfig = field(default_factory=InboundConfig)
    speech: SpeechConfig = field(default_factory=SpeechConfig)
    imports: ImportConfig = field(default_factory=ImportConfig, metadata={"key": "import"})
    report: ReportConfig = field(default_factory=ReportConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    web: WebConfig = field(default_factory=WebConfig)
    base_dir: Path = field(default=Path("."), metadata={"internal": True})
    # the campaign kind this config was narrowed to (ivr.campaign.kinds.config_for: its windows, retry caps)
    campaign_kind: str = field(default="debt", metadata={"internal": True})

    def path(self, value: str) -> Path:
        """A path setting resolved against the folder holding config.yaml."""
        p = Path(value)
        return p if p.is_absolute() else (self.base_dir / p)

    def replace(self, **sections: Any) -> Config:
        return dataclasses.replace(self, **sections)


# --- validation -------------------------------------------------------------------------------------------------

def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is list:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    if origin is dict:
        k, v = typing.get_args(tp)
        return f"a mapping of {_type_name(k)} to {_type_name(v)}"
    return {str: "text", int: "a whole number", float: "a number", bool: "true or false"}.get(tp, str(tp))


def _scalar(value: Any, tp: Any, key: str, meta: dict, problems: list[str]) -> Any:
    def bad(allowed: str) -> None:
        problems.append(f"{key}: {value!r} is not allowed; expected {allowed}")

    if tp is bool:
        if not isinstance(value, bool):
            bad("true or false")
            return None
    elif tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            bad("a whole number")
            return None
    elif tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            bad("a number")
            return None
        value = float(value)
    elif tp is str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            bad("text")
            return None
        if "\r" in value or "\n" in value:
            bad("a single line (no CR/LF)")
            return None
    lo, hi = meta.get("min"), meta.get("max")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and (
            (lo is not None and value < lo) or (hi is not None and value > hi)):
        bad(f"a value from {lo} to {hi}")
        return None
    choices = meta.get("choices")
    if choices and value not in choices:
        bad("one of " + ", ".join(map(str, choices)))
        return None
    check = meta.get("check")
    if check and (msg := check(value)):
        bad(msg)
        return None
    return value


def _build(cls: type, data: Any, prefix: str, problems: list[str]) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        problems.append(f"{prefix or 'config'}: expected a mapping of settings, got {type(data).__name__}")
        return cls()
    hints = typing.get_type_hints(cls)
    fields = {f.metadata.get("key", f.name): f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    for key in data:
        if key not in fields:
            where = f"{prefix}.{key}" if prefix else str(key)
            problems.append(f"{where}: unknown setting; known here: {', '.join(sorted(fields))}")
    kwargs: dict[str, Any] = {}
    for key, f in fields.items():
        if key not in data:
            continue
        path = f"{prefix}.{key}" if prefix else key
        tp = hints[f.name]
        value = data[key]
        if dataclasses.is_dataclass(tp):
            kwargs[f.name] = _build(tp, value, path, problems)
            continue
        meta = dict(f.metadata)
        origin = typing.get_origin(tp)
        if origin is list:
            if not isinstance(value, list):
                problems.append(f"{path}: {value!r} is not allowed; expected {_type_name(tp)}")
                continue
            item_meta = {"check": meta.get("item_check")}
            items = [_scalar(v, typing.get_args(tp)[0], f"{path}[{i}]", item_meta, problems)
                     for i, v in enumerate(value)]
            if None not in items:
                kwargs[f.name] = items
        elif origin is dict:
            if not isinstance(value, dict):
                problems.append(f"{path}: {value!r} is not allowed; expected {_type_name(tp)}")
                continue
            kt, vt = typing.get_args(tp)
            out = {}
            for k, v in value.items():
                kk = _scalar(k, kt, f"{path}.{k}", {"check": meta.get("key_check")}, problems)
                vv = _scalar(v, vt, f"{path}.{k}", {kk: vv for kk, vv in meta.items()
                                                    if kk in ("min", "max", "choices")}, problems)
                if kk is not None and vv is not None:
                    out[kk] = vv
            merged = dict(f.default_factory()) if f.default_factory is not dataclasses.MISSING else {}
            merged.update(out)
            kwargs[f.name] = merged
        elif isinstance(tp, types.UnionType):
            kwargs[f.name] = value
        else:
            v = _scalar(value, tp, path, meta, problems)
            if v is not None:
                kwargs[f.name] = v
    return cls(**kwargs)


# the menu keys the call flow gives a meaning of its own (ivr.callflow.flow); an extra key must not take one
MENU_KEYS = {"1": "pay now", "2": "callback", "3": "already paid", "9": "wrong number", "0": "hear the message again"}


def _cross_checks(cfg: Config, problems: list[str]) -> None:
    key = cfg.callflow.optout_key
    if key in MENU_KEYS:
        problems.append(f"callflow.optout_key: {key!r} is already the menu key for {MENU_KEYS[key]}; choose a key "
                        "the menu does not use (" + ", ".join(f"{k} {v}" for k, v in MENU_KEYS.items()) + ")")
    used = speech_engines_in_use(cfg)
    if "command" in used and "{out}" not in cfg.speech.command:
        problems.append("speech.command: must contain {out} when speech.engine (or speech.engines / "
                        "speech.fallback_engine) is command")
    for lang in ("uk", "ru", "bg", "en"):
        if tts_engine_for(cfg, lang) == "piper" and not cfg.speech.piper_models.get(lang):
            problems.append(f"speech.piper_models.{lang}: a voice model (.onnx) is needed, since {lang} is said by "
                            "piper")
    if cfg.speech.day_from >= cfg.speech.evening_from:
        problems.append(f"speech.evening_from: {cfg.speech.evening_from!r} must be later than speech.day_from "
                        f"({cfg.speech.day_from!r})")
    ladder = cfg.ladder
    if ladder.operator_after_heard < ladder.second_call_after_heard:
        problems.append(f"ladder.operator_after_heard: {ladder.operator_after_heard} must be at least "
                        f"ladder.second_call_after_heard ({ladder.second_call_after_heard}): the ladder goes up")
    if cfg.email.host and not cfg.email.from_address:
        problems.append("email.from_address: required when email.host is set (the sender of the reminders)")
    for key in ("account", "name", "phones"):
        if key not in cfg.imports.account_columns:
            problems.append(f"import.account_columns.{key}: required column mapping is missing")
    for key in ("account", "amount", "date", "reference"):
        if key not in cfg.imports.payment_columns:
            problems.append(f"import.payment_columns.{key}: required column mapping is missing")


def _select_node(data: Any, node: str | None, problems: list[str]) -> Any:
    """The document with the `nodes:` section taken out and, when a node is named, its overrides merged in.

    `nodes:` maps a dialer node's name to settings that differ on that node (typically its own FreeSWITCH box:
    `freeswitch.host`, `outbound_advertise_host`, `max_channels`); everything else is shared."""
    if not isinstance(data, dict) or ("nodes" not in data and not node):
        return data
    data = dict(data)
    nodes = data.pop("nodes", None) or {}
    if not isinstance(nodes, dict) or not all(isinstance(v, dict) for v in nodes.values()):
        problems.append("nodes: expected a mapping of node name -> settings that differ on that node")
        return data
    if not node:
        return data
    if node not in nodes:
        # without a nodes: section every node shares one config (a name is then only the node's name, e.g.
        # systemd's %H); with one, a name it does not list is a typo
        if nodes:
            problems.append(f"nodes.{node}: no such node in the config (--node / {NODE_ENV}); known: "
                            f"{', '.join(sorted(map(str, nodes)))}")
        return data
    return _merged(data, nodes[node])


def _merged(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merged(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
    return out


def engine_for(cfg: Config, lang: str) -> str:
    """How `lang` is voiced: speech.engines[lang], else speech.engine."""
    return cfg.speech.engines.get(lang, cfg.speech.engine)


def tts_engine_for(cfg: Config, lang: str) -> str:
    """The TTS engine that speaks `lang` (for a recorded language: what says names and missing clips)."""
    engine = engine_for(cfg, lang)
    return cfg.speech.fallback_engine if engine == "recorded" else engine


def speech_engines_in_use(cfg: Config) -> dict[str, str]:
    """Every engine some language uses (recorded languages bring their fallback), with one language using it."""
    out: dict[str, str] = {}
    for lang in ("uk", "ru", "bg", "en"):
        out.setdefault(engine_for(cfg, lang), lang)
        out.setdefault(tts_engine_for(cfg, lang), lang)
    return out


def parse_config(data: Any, base_dir: Path = Path("."), env: dict[str, str] | None = None,
                 source: str = "config", node: str | None = None) -> Config:
    """Validate a parsed YAML document; raise ConfigError naming every bad key. `node` (or env IVR_NODE) picks
    that node's overrides from the `nodes:` section."""
    problems: list[str] = []
    env = os.environ if env is None else env
    data = _select_node(data, node or env.get(NODE_ENV) or None, problems)
    cfg = _build(Config, data, "", problems)
    if env.get(PASSWORD_ENV):
        cfg = cfg.replace(freeswitch=dataclasses.replace(cfg.freeswitch, password=env[PASSWORD_ENV]))
    if env.get(SMPP_PASSWORD_ENV):
        cfg = cfg.replace(sms=dataclasses.replace(cfg.sms, password=env[SMPP_PASSWORD_ENV]))
    _cross_checks(cfg, problems)
    if problems:
        raise ConfigError(problems, source)
    return cfg.replace(base_dir=base_dir)


def config_path(explicit: str | None = None, env: dict[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(explicit or env.get(CONFIG_ENV) or DEFAULT_PATH)


def load_config(path: str | Path | None = None, env: dict[str, str] | None = None,
                node: str | None = None) -> Config:
    """Read and validate a config file; a missing file gives the defaults only when no path was named. `node`
    (or env IVR_NODE): apply that node's overrides from the `nodes:` section."""
    p = config_path(str(path) if path else None, env)
    if not p.exists():
        if path is None and (os.environ if env is None else env).get(CONFIG_ENV) is None:
            return parse_config({}, Path("."), env, node=node)
        raise ConfigError([f"{p}: file not found"], str(p))
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError([f"not valid YAML: {exc}"], str(p)) from None
    return parse_config(data, p.resolve().parent, env, str(p), node=node)


def describe_defaults() -> list[tuple[str, Any, str]]:
    """(key path, default, doc) for every setting: used to check config.yaml documents them all."""
    out: list[tuple[str, Any, str]] = []

    def walk(cls: type, prefix: str) -> None:
        hints = typing.get_type_hints(cls)
        inst = cls()
        for f in dataclasses.fields(cls):
            if f.metadata.get("internal"):
                continue
            key = f.metadata.get("key", f.name)
            path = f"{prefix}.{key}" if prefix else key
            if dataclasses.is_dataclass(hints[f.name]):
                walk(hints[f.name], path)
            else:
                out.append((path, getattr(inst, f.name), f.metadata.get("doc", "")))

    walk(Config, "")
    return out
