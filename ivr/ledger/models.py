"""The ledger's tables (peewee): accounts, their numbers, debts and payments, and everything the dialer writes.

One `database` proxy is bound at start-up by `ivr.ledger.db.connect`. Money is Decimal; every timestamp is an
aware-free UTC datetime (stored naive, always UTC); dates are local calendar dates of the utility's billing.
"""

from __future__ import annotations

from datetime import UTC, datetime

import peewee as pw

database = pw.DatabaseProxy()


def utcnow() -> datetime:
    """Naive UTC now: the form every DateTimeField here stores."""
    return datetime.now(UTC).replace(tzinfo=None)


class BaseModel(pw.Model):
    class Meta:
        database = database
        legacy_table_names = False


class SchemaVersion(BaseModel):
    version = pw.IntegerField(primary_key=True)
    applied_at = pw.DateTimeField(default=utcnow)


class Account(BaseModel):
    number = pw.CharField(max_length=64, unique=True)  # the utility's account number
    name = pw.CharField(max_length=200, default="")
    address = pw.CharField(max_length=400, default="")
    district = pw.CharField(max_length=100, default="", index=True)
    language = pw.CharField(max_length=8, default="")  # '' = locale.language
    timezone = pw.CharField(max_length=64, default="")  # '' = locale.timezone
    do_not_call = pw.BooleanField(default=False)
    life_support = pw.BooleanField(default=False)
    preferred_channel = pw.CharField(max_length=16, default="voice")  # voice | sms | email | letter
    email = pw.CharField(max_length=254, default="")  # for the e-mail channel ('' = none known)
    claimed_paid_at = pw.DateTimeField(null=True)  # pressed 3 "already paid"; cleared by the next payments import
    updated_at = pw.DateTimeField(default=utcnow)
    # the latest applied accounts import (ImportRun.id) whose file listed this account; an account missing from
    # the latest FULL export is not called (ivr.ledger.eligibility); NULL = never seen by a recorded import
    seen_run = pw.IntegerField(null=True, index=True)

    @classmethod
    def by_number(cls, number: str) -> Account:
        """The account with this account number: the one lookup the commands and the console make of what a
        person typed; an IvrError naming the number when the ledger has none."""
        from ivr.errors import IvrError

        acc = cls.get_or_none(cls.number == number)
        if acc is None:
            raise IvrError(f"no account {number!r} in the ledger")
        return acc


class Phone(BaseModel):
    """One of an account's numbers, tried in `position` order."""

    account = pw.ForeignKeyField(Account, backref="phones", on_delete="CASCADE")
    position = pw.SmallIntegerField(default=0)
    raw = pw.CharField(max_length=64)  # as it came from billing
    e164 = pw.CharField(max_length=20, default="", index=True)  # '' when invalid
    valid = pw.BooleanField(default=True)
    invalid_reason = pw.CharField(max_length=200, default="")  # parse failure, UNALLOCATED_NUMBER, wrong number (9)…
    flagged_at = pw.DateTimeField(null=True)

    class Meta:
        indexes = ((("account", "position"), True),)


class Balance(BaseModel):
    """What billing says an account owed on a date."""

    account = pw.ForeignKeyField(Account, backref="balances", on_delete="CASCADE")
    as_of = pw.DateField()
    amount = pw.DecimalField(max_digits=14, decimal_places=2)
    currency = pw.CharField(max_length=3, default="")
    overdue_since = pw.DateField(null=True)

    class Meta:
        indexes = ((("account", "as_of"), True),)


class Payment(BaseModel):
    account = pw.ForeignKeyField(Account, backref="payments", on_delete="CASCADE")
    reference = pw.CharField(max_length=100, unique=True)
    amount = pw.DecimalField(max_digits=14, decimal_places=2)
    paid_on = pw.DateField(index=True)
    imported_at = pw.DateTimeField(default=utcnow)


class ImportRun(BaseModel):
    """One `ivr import` of a billing file: when, what, and what came of it (eligibility reads the last
    payments import: an "already paid" claim stands only until the next payments file arrives)."""

    kind = pw.CharField(max_length=16, index=True)  # accounts | payments
    file = pw.CharField(max_length=400, default="")
    started_at = pw.DateTimeField(default=utcnow)
    finished_at = pw.DateTimeField(null=True, index=True)
    rows = pw.IntegerField(default=0)
    loaded = pw.IntegerField(default=0)
    updated = pw.IntegerField(default=0)
    unchanged = pw.IntegerField(default=0)
    rejected = pw.IntegerField(default=0)
    rejects_file = pw.CharField(max_length=400, default="")
    # applied | held (an anomaly: nothing applied, see detail) | confirmed (applied despite an anomaly)
    status = pw.CharField(max_length=16, default="applied", index=True)
    full = pw.BooleanField(default=False)  # an accounts export that lists EVERY account (import.accounts_export)
    accounts = pw.IntegerField(default=0)  # distinct accounts applied from the file
    total_debt = pw.DecimalField(max_digits=16, decimal_places=2, null=True)  # sum of the file's positive balances
    not_in_ledger = pw.IntegerField(default=0)  # payments for accounts the ledger does not know
    invalid_phones = pw.IntegerField(default=0)  # numbers in the file that will not be dialled
    detail = pw.TextField(default="")  # JSON: the anomaly checks and their figures
    confirmed_by = pw.CharField(max_length=100, default="")  # who applied a held export anyway


class InstallmentPlan(BaseModel):
    account = pw.ForeignKeyField(Account, backref="plans", on_delete="CASCADE")
    starts_on = pw.DateField()
    active = pw.BooleanField(default=True)
    # the plan's id in billing (`ivr import plans`); '' = made here before plans were imported
    reference = pw.CharField(max_length=64, default="", index=True)


class InstallmentDue(BaseModel):
    plan = pw.ForeignKeyField(InstallmentPlan, backref="dues", on_delete="CASCADE")
    due_on = pw.DateField()
    amount = pw.DecimalField(max_digits=14, decimal_places=2)


class Campaign(BaseModel):
    """One local evening of calls of one kind. status: waiting | running | paused | stopped | done.

    kind: debt | installment | outage (ivr.campaign.kinds). Several campaigns share an evening (and the trunk's
    cap), served by `priority` (lower first). `ref` tells apart campaigns of one kind on one day: '' for the
    debt evening; installment 'remind' / 'missed'; an outage's notice 'O<id>-v<version>-n<days>' or its
    correction 'O<id>-v<version>-fix' (`outage_id` names the Outage)."""

    day = pw.DateField(index=True)
    kind = pw.CharField(max_length=16, default="debt", index=True)
    ref = pw.CharField(max_length=64, default="")
    priority = pw.SmallIntegerField(default=3)
    outage_id = pw.IntegerField(null=True, index=True)
    status = pw.CharField(max_length=16, default="waiting")
    status_reason = pw.CharField(max_length=400, default="")  # e.g. "INVALID_GATEWAY: check dialing.gateway"
    created_at = pw.DateTimeField(default=utcnow)
    started_at = pw.DateTimeField(null=True)
    finished_at = pw.DateTimeField(null=True)
    eligible_count = pw.IntegerField(default=0)
    # the hold-out draw (ivr.campaign.holdout), made once when the evening first starts: the share asked for,
    # the seed of the draw (so it can be re-done and checked) and how many were held out; seed '' = no draw yet
    holdout_share = pw.FloatField(default=0.0)
    holdout_seed = pw.CharField(max_length=32, default="")
    holdout_count = pw.IntegerField(default=0)

    class Meta:
        indexes = ((("day", "kind", "ref"), True),)


class Holdout(BaseModel):
    """A debtor drawn at random into an evening's hold-out group: not contacted that evening by any channel.

    The report compares their payments with those of the contacted debtors: the only comparison that measures
    the effect of contacting people (the groups differ by chance alone)."""

    campaign = pw.ForeignKeyField(Campaign, backref="holdouts", on_delete="CASCADE")
    account = pw.ForeignKeyField(Account, on_delete="CASCADE")
    drawn_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("campaign", "account"), True),)


class QueueEntry(BaseModel):
    """An account waiting to be called in a campaign.

    state: waiting | dialing | done | given_up. Lower `priority` goes first (early hang-ups get -1, the front);
    `not_before` (UTC) holds retry delays. `outcome` is the account's final word for the evening.
    """

    campaign = pw.ForeignKeyField(Campaign, backref="queue", on_delete="CASCADE")
    account = pw.ForeignKeyField(Account, on_delete="CASCADE")
    state = pw.CharField(max_length=16, default="waiting", index=True)
    priority = pw.IntegerField(default=0)
    not_before = pw.DateTimeField(default=utcnow)
    attempts = pw.IntegerField(default=0)
    phone_index = pw.SmallIntegerField(default=0)  # which of the account's numbers is next
    outcome = pw.CharField(max_length=32, default="")
    reason = pw.CharField(max_length=200, default="")
    updated_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("campaign", "account"), True), (("campaign", "state", "priority", "not_before"), False))


ATTEMPT_IN_FLIGHT = ("created", "originated", "answered")


def attempt_unsettled() -> pw.Expression:
    """Attempt rows not finished yet: in flight, or ended without their outcome written (a flow still finishing,
    or a finalize waiting for the database). Whoever owns such a call still holds its debtor."""
    return Attempt.state.in_(ATTEMPT_IN_FLIGHT) | (Attempt.state.in_(("ended", "unknown")) & (Attempt.outcome == ""))


class Attempt(BaseModel):
    """One call. Written (state 'created') BEFORE its originate is sent; updated as events arrive.

    state: created | originated | answered | ended | unknown ('originated' is no longer written: rows of older
    versions may carry it; it means what 'created' means).
    outcome: heard | early_hangup | not_heard | no_answer | busy | invalid_number | rejected | failed |
             congestion | pay_now | callback | already_paid | wrong_number | opted_out | unknown | trunk_error |
             rate_limited (refused by the switch for our rate before a channel existed: not the debtor's attempt) |
             machine (an answering machine answered: it heard no message; retried like no_answer)
    kind: campaign | test. A test call (`ivr call`, to a staff phone) plays a debtor's message but is never that
    debtor's attempt: caps, outcomes, eligibility and the report's totals leave it out.
    """

    uuid = pw.CharField(max_length=36, unique=True)  # origination_uuid = FreeSWITCH Unique-ID
    campaign = pw.ForeignKeyField(Campaign, backref="attempts", null=True, on_delete="SET NULL")
    account = pw.ForeignKeyField(Account, backref="attempts", on_delete="CASCADE")
    accounts = pw.CharField(max_length=400, default="")  # all account numbers whose message this call carried
    e164 = pw.CharField(max_length=20, index=True)
    node = pw.CharField(max_length=64, default="")  # which dialer process owns it (placed it, or took it over)
    epoch = pw.IntegerField(default=0)  # the owner's lease epoch: writes of the call's results check node AND epoch
    state = pw.CharField(max_length=16, default="created", index=True)
    outcome = pw.CharField(max_length=32, default="", index=True)
    created_at = pw.DateTimeField(default=utcnow, index=True)
    answered_at = pw.DateTimeField(null=True)
    ended_at = pw.DateTimeField(null=True)
    hangup_cause = pw.CharField(max_length=64, default="")
    heard = pw.BooleanField(default=False)
    heard_ms = pw.IntegerField(default=0)  # how far the message got (playback_last_offset_pos / 8)
    message_ms = pw.IntegerField(default=0)  # stored length of the message played
    digits = pw.CharField(max_length=32, default="")
    duration_s = pw.IntegerField(default=0)
    billsec_s = pw.IntegerField(default=0)
    detail = pw.CharField(max_length=400, default="")
    kind = pw.CharField(max_length=16, default="campaign", index=True)

    class Meta:
        # `ivr status` (and the console's Tonight page) count a campaign's calls by outcome every few seconds:
        # this index answers that from the index alone, without reading the call rows
        indexes = ((("campaign", "outcome"), False),)


class CallbackRequest(BaseModel):
    """A debtor pressed 2: an operator calls back. Open until a person closes it (handled_at, closed_by);
    the worklist (ivr.ledger.callbacks) keeps who took it, the last result and any second call planned."""

    account = pw.ForeignKeyField(Account, backref="callbacks", on_delete="CASCADE")
    attempt = pw.ForeignKeyField(Attempt, null=True, on_delete="SET NULL")
    e164 = pw.CharField(max_length=20)
    district = pw.CharField(max_length=100, default="", index=True)
    created_at = pw.DateTimeField(default=utcnow)
    handled_at = pw.DateTimeField(null=True)
    taken_by = pw.CharField(max_length=100, default="")  # the operator working it ('' = nobody)
    taken_at = pw.DateTimeField(null=True)
    result = pw.CharField(max_length=32, default="")  # the last result recorded (ivr.ledger.callbacks.RESULTS)
    promised_on = pw.DateField(null=True)  # "promised to pay by DATE"
    next_call_at = pw.DateTimeField(null=True)  # a second call planned (naive UTC)
    closed_by = pw.CharField(max_length=100, default="")


class CallbackNote(BaseModel):
    """One result an operator recorded on a callback request (its history, oldest first)."""

    request = pw.ForeignKeyField(CallbackRequest, backref="notes", on_delete="CASCADE")
    at = pw.DateTimeField(default=utcnow)
    actor = pw.CharField(max_length=100)
    result = pw.CharField(max_length=32)
    promised_on = pw.DateField(null=True)
    next_call_at = pw.DateTimeField(null=True)
    note = pw.CharField(max_length=500, default="")
    closed = pw.BooleanField(default=False)


class Control(BaseModel):
    """Live settings shared by every dialer process: channels, cps, and the campaign command.

    key: 'channels' | 'cps' | 'command' (run | pause | stop). The dialer polls this table about once a second.
    """

    key = pw.CharField(max_length=32, primary_key=True)
    value = pw.CharField(max_length=200)
    updated_at = pw.DateTimeField(default=utcnow)


class DialerNode(BaseModel):
    """A running dialer process and what it last reported (for `ivr status`), and its lease (ivr.dialer.lease).

    `epoch` goes up at every (re)start under this name; a heartbeat renews the lease only while `epoch` is the
    process's own and `fenced_at` is empty. Another process that takes the node's calls over sets `fenced_at`."""

    name = pw.CharField(max_length=64, primary_key=True)
    started_at = pw.DateTimeField(default=utcnow)
    heartbeat_at = pw.DateTimeField(default=utcnow)
    in_flight = pw.IntegerField(default=0)
    esl_state = pw.CharField(max_length=32, default="")
    rate = pw.FloatField(default=0.0)  # current effective calls per second after congestion back-off
    stats = pw.TextField(default="{}")  # JSON snapshot: outcomes, errors, reconnects
    epoch = pw.IntegerField(default=0)
    fenced_at = pw.DateTimeField(null=True)  # when another process took this node's calls over (lease lost)
    fenced_by = pw.CharField(max_length=64, default="")


class Message(BaseModel):
    """One SMS, e-mail or letter sent to a debtor (ivr.channels): where to, what became of it.

    channel: sms | email | letter. status: queued | sent | delivered | failed | bounced | expired | printed.
    `provider_id` is what the provider answered (SMPP message_id of the first part, SMTP Message-ID); delivery
    receipts are matched on it. An SMS of several parts keeps every part's id in `detail`.
    """

    account = pw.ForeignKeyField(Account, backref="messages", on_delete="CASCADE")
    campaign = pw.ForeignKeyField(Campaign, backref="messages", null=True, on_delete="SET NULL")
    channel = pw.CharField(max_length=8, index=True)
    kind = pw.CharField(max_length=32, default="reminder")  # which text (prompts/<lang>/channels.yaml)
    language = pw.CharField(max_length=8, default="")
    address = pw.CharField(max_length=400, default="")  # E.164, e-mail address or postal address
    status = pw.CharField(max_length=16, default="queued", index=True)
    provider_id = pw.CharField(max_length=200, default="", index=True)
    parts = pw.SmallIntegerField(default=1)
    created_at = pw.DateTimeField(default=utcnow, index=True)
    sent_at = pw.DateTimeField(null=True)
    delivered_at = pw.DateTimeField(null=True)
    error = pw.CharField(max_length=400, default="")
    detail = pw.TextField(default="")


class AuditEvent(BaseModel):
    """One change a person made (ivr.ledger.audit): who, when, what, to what."""

    at = pw.DateTimeField(default=utcnow, index=True)
    actor = pw.CharField(max_length=100, index=True)  # console user, or cli:<unix user>
    action = pw.CharField(max_length=64, index=True)  # control.channels | dnc.add | prompts.save | …
    target = pw.CharField(max_length=200, default="")
    detail = pw.TextField(default="")


class DncEntry(BaseModel):
    """One do-not-call entry (ivr.ledger.dnc): a phone number (E.164) or an account number, why, until when, who.

    Removing an entry records who removed it, when and why (removed_*); the row itself is never deleted, so the
    list's history can always be answered for. `until` is the last local day it applies (None = for good).
    """

    kind = pw.CharField(max_length=8)  # number | account
    value = pw.CharField(max_length=64, index=True)  # the E.164 number or the account number
    reason = pw.CharField(max_length=400)
    until = pw.DateField(null=True)
    added_by = pw.CharField(max_length=100)
    added_at = pw.DateTimeField(default=utcnow)
    source = pw.CharField(max_length=200, default="")  # cli | import FILE line N | key 8 on call UUID
    removed_at = pw.DateTimeField(null=True, index=True)
    removed_by = pw.CharField(max_length=100, default="")
    removed_reason = pw.CharField(max_length=400, default="")


class WebUser(BaseModel):
    """A person who may use the staff console (ivr.admin.users). role: admin | manager | operator."""

    name = pw.CharField(max_length=64, unique=True)
    role = pw.CharField(max_length=16)
    password_hash = pw.CharField(max_length=200)  # argon2id, never the password
    active = pw.BooleanField(default=True)
    created_at = pw.DateTimeField(default=utcnow)
    disabled_at = pw.DateTimeField(null=True)
    last_login_at = pw.DateTimeField(null=True)


class LoginThrottle(BaseModel):
    """Wrong passwords in a row per login name (known or not, so blocking tells nothing about who exists)."""

    name = pw.CharField(max_length=64, primary_key=True)
    failures = pw.IntegerField(default=0)
    last_failure_at = pw.DateTimeField(null=True)
    blocked_until = pw.DateTimeField(null=True)


class SupplyLink(BaseModel):
    """An account fed from a supply point of the grid (`ivr import supply-points`, the network scheme's export)."""

    account = pw.ForeignKeyField(Account, backref="supply_links", on_delete="CASCADE")
    point = pw.CharField(max_length=64, index=True)
    updated_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("account", "point"), True),)


class Outage(BaseModel):
    """A planned or emergency outage of some supply points (ivr.campaign.outages). Times are naive UTC.

    status: scheduled | cancelled. `version` goes up each time the times change or the outage is cancelled:
    whoever was told an earlier version gets a correction."""

    code = pw.CharField(max_length=64, unique=True)  # the dispatchers' id ('' on the command line: O<id>)
    kind = pw.CharField(max_length=16)  # planned | emergency
    starts_at = pw.DateTimeField()
    ends_at = pw.DateTimeField()
    reason = pw.CharField(max_length=400, default="")
    status = pw.CharField(max_length=16, default="scheduled", index=True)
    version = pw.IntegerField(default=1)
    created_at = pw.DateTimeField(default=utcnow)
    updated_at = pw.DateTimeField(default=utcnow)
    created_by = pw.CharField(max_length=100, default="")


class OutagePoint(BaseModel):
    outage = pw.ForeignKeyField(Outage, backref="points", on_delete="CASCADE")
    point = pw.CharField(max_length=64, index=True)

    class Meta:
        indexes = ((("outage", "point"), True),)


class Tally(BaseModel):
    """Running counts kept by database triggers (ivr.ledger.tally): a campaign's calls per outcome (kind
    'outcome') and its queue entries per state (kind 'queue'), so `ivr status` never counts millions of rows."""

    kind = pw.CharField(max_length=16)
    campaign_id = pw.IntegerField()  # no foreign key: the triggers keep it right when a campaign goes
    key = pw.CharField(max_length=32)
    n = pw.BigIntegerField(default=0)

    class Meta:
        table_name = "tally"
        indexes = ((("kind", "campaign_id", "key"), True),)


class StoredVerdict(BaseModel):
    """One account's eligibility verdict for a day, kept by ivr.ledger.verdicts so the console's lists page by SQL.
    Only accounts on one of the two lists are stored: eligible, or owing and excluded."""

    day = pw.DateField()
    account_id = pw.IntegerField()  # no foreign key: a deleted account is marked changed and its row dropped
    number = pw.CharField(max_length=64)
    name = pw.CharField(max_length=200, default="")
    district = pw.CharField(max_length=100, default="")
    eligible = pw.BooleanField()
    remaining = pw.DecimalField(max_digits=14, decimal_places=2)
    reasons = pw.TextField(default="")  # one reason per line, as the verdict lists them
    search = pw.TextField(default="")  # the reasons in lower case: what the reason filter matches

    class Meta:
        table_name = "stored_verdict"
        primary_key = pw.CompositeKey("day", "account_id")
        # a list in account order, by district, by amount; the reason filter reads the last one alone (covering:
        # no lookup of the wide row per account)
        indexes = ((("day", "eligible", "account_id"), False),
                   (("day", "eligible", "district", "account_id"), False),
                   (("day", "eligible", "remaining", "account_id"), False),
                   (("day", "eligible", "account_id", "search"), False))


class VerdictState(BaseModel):
    """Which day's verdicts are stored, built when, under which rules (ivr.ledger.verdicts)."""

    day = pw.DateField(primary_key=True)
    built_at = pw.DateTimeField(default=utcnow)
    refreshed_at = pw.DateTimeField(default=utcnow)
    fingerprint = pw.CharField(max_length=64)
    accounts = pw.IntegerField(default=0)  # accounts evaluated by the build
    counts = pw.TextField(default="{}")  # JSON {"eligible"|"excluded": {district: rows}}, kept with the rows

    class Meta:
        table_name = "verdict_state"


class VerdictDirty(BaseModel):
    """Accounts whose verdict may have changed since it was stored, written by triggers (ivr.ledger.verdicts);
    a NULL account_id means every account (a full accounts export changed who is missing from it)."""

    account_id = pw.IntegerField(null=True)

    class Meta:
        table_name = "verdict_dirty"


class ReportCache(BaseModel):
    """A campaign's morning report as last built (ivr.report.stored): its figures as JSON, its charts, the
    evening's trend row, and the ledger marks it was built at (to tell when it is out of date)."""

    campaign = pw.ForeignKeyField(Campaign, primary_key=True, on_delete="CASCADE")
    generated_at = pw.DateTimeField(default=utcnow)
    watermark = pw.CharField(max_length=400)
    summary = pw.TextField()  # ReportData without its people (ivr.report.codec)
    charts = pw.TextField(default="[]")  # data: URIs of the page's charts
    evening = pw.TextField(default="")  # the trends row of this evening (ivr.report.trends.Evening)
    people = pw.IntegerField(default=0)

    class Meta:
        table_name = "report_cache"


class ReportPerson(BaseModel):
    """One person row of a stored report, in the report's order (pos), as the Reports page shows it."""

    campaign = pw.ForeignKeyField(Campaign, on_delete="CASCADE")
    pos = pw.IntegerField()
    account_id = pw.IntegerField()
    account = pw.CharField(max_length=64)
    name = pw.CharField(max_length=200, default="")
    district = pw.CharField(max_length=100, default="")
    number_masked = pw.CharField(max_length=32, default="")
    debt = pw.DecimalField(max_digits=14, decimal_places=2)
    calls = pw.TextField(default="[]")  # JSON [[local "HH:MM", outcome label], ...]
    final_label = pw.CharField(max_length=32, default="")
    paid = pw.DecimalField(max_digits=14, decimal_places=2)
    search = pw.TextField(default="")  # account, name, district, masked number in lower case

    class Meta:
        table_name = "report_person"
        indexes = ((("campaign", "pos"), True),)


class LifeSupportNotice(BaseModel):
    """A person told a life-support account about something (ivr.campaign.lifesupport): who, when, which kind.

    kind: debt | installment | outage. Until one exists for a kind, the robot never calls the account about that
    kind; after it, `life_support.after_informed` decides whether automated reminders may follow."""

    account = pw.ForeignKeyField(Account, backref="life_support_notices", on_delete="CASCADE")
    kind = pw.CharField(max_length=16)
    informed_at = pw.DateTimeField(default=utcnow)  # when the person reached the debtor (naive UTC)
    informed_by = pw.CharField(max_length=100)
    note = pw.CharField(max_length=500, default="")
    recorded_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("account", "kind", "informed_at"), False),)


class LadderMove(BaseModel):
    """One step of an account on the escalation ladder (ivr.campaign.ladder): reminder | second_call |
    operator_call | letter | court. `by` is 'rules' for a move the rules made (recorded by `ivr ladder --record`)
    or the person who moved it by hand (also in the audit log); a hand move holds for `ladder.manual_hold_days`."""

    account = pw.ForeignKeyField(Account, backref="ladder_moves", on_delete="CASCADE")
    stage = pw.CharField(max_length=16)
    at = pw.DateTimeField(default=utcnow, index=True)
    day = pw.DateField()  # the local day the move applies from
    by = pw.CharField(max_length=100, default="rules")
    reason = pw.CharField(max_length=400, default="")

    class Meta:
        indexes = ((("account", "at"), False),)


ALL_MODELS: list[type[BaseModel]] = [
    SchemaVersion, Account, Phone, Balance, Payment, ImportRun, InstallmentPlan, InstallmentDue, Campaign, QueueEntry,
    Attempt, CallbackRequest, CallbackNote, Control, DialerNode, AuditEvent, DncEntry, WebUser, LoginThrottle,
    Tally, Holdout, Message, LifeSupportNotice, LadderMove, SupplyLink, Outage, OutagePoint, StoredVerdict,
    VerdictState, VerdictDirty, ReportCache, ReportPerson,
]
