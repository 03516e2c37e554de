"""A large generated ledger written by bulk SQL (INSERT ... SELECT over a counter), for the console's benchmark.

    build(db, accounts=1_000_000, calls_per_account=2)

One campaign on DAY (done), every account with one phone (2 % invalid), one balance (a third overdue), 20 %
with a payment after the campaign day and 5 % with one before it, some on the do-not-call list (flag or
entry), some who said "already paid"; 90 % queued; `calls_per_account` calls each with an outcome mix like
bench_report.py's; a callback request per 'callback' call, filed under the account's district as the dialer
files them (half of them still open). The values come from integer hashes of the row number, so two builds are
the same. SQLite and PostgreSQL (the same statements but for string formatting). 1,000,000 accounts / 2,000,000
calls take about two minutes on SQLite.
"""

from __future__ import annotations

import time
from datetime import date

import peewee as pw

DAY = date(2026, 11, 23)
DISTRICTS = ["Center", "North", "South", "East", "West", "Old Town", "Riverside", "Hills"]
# outcome by (hash % 100): the same shares as bench_report.OUTCOMES
OUTCOME_CASE = ("CASE WHEN h < 30 THEN 'heard' WHEN h < 38 THEN 'early_hangup' WHEN h < 63 THEN 'no_answer' "
                "WHEN h < 73 THEN 'busy' WHEN h < 79 THEN 'pay_now' WHEN h < 83 THEN 'callback' "
                "WHEN h < 86 THEN 'invalid_number' WHEN h < 88 THEN 'wrong_number' WHEN h < 90 THEN 'already_paid' "
                "ELSE 'failed' END")


def _dialect(db: pw.Database) -> dict[str, str]:
    if isinstance(db, pw.PostgresqlDatabase):
        return {"pad7": "lpad(CAST({0} AS text), 7, '0')", "pad12": "lpad(CAST({0} AS text), 12, '0')",
                "seconds": "(TIMESTAMP '{0}' + ({1}) * INTERVAL '1 second')",
                "days": "(DATE '{0}' + ({1}))", "true": "TRUE", "false": "FALSE"}
    return {"pad7": "substr('0000000' || ({0}), -7)", "pad12": "substr('000000000000' || ({0}), -12)",
            "seconds": "datetime('{0}', ({1}) || ' seconds')",
            "days": "date('{0}', ({1}) || ' days')", "true": "1", "false": "0"}


def build(db: pw.Database, accounts: int = 1_000_000, calls_per_account: int = 2, log=print) -> None:
    """Write the ledger into an empty (migrated) database, in one transaction."""
    d = _dialect(db)
    pad7, secs, days = d["pad7"].format, d["seconds"].format, d["days"].format
    t, f = d["true"], d["false"]
    now = "2026-11-23 08:00:00"
    day = DAY.isoformat()
    districts = " UNION ALL ".join(f"SELECT {i} AS k, '{name}' AS name" for i, name in enumerate(DISTRICTS))
    h = "((i * 2654435761) % 1000003)"  # a cheap integer hash of the row number
    steps = [
        ("counter", "CREATE TABLE bench_seq (i INTEGER PRIMARY KEY)"),
        ("counter", f"INSERT INTO bench_seq (i) WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s "
                    f"WHERE i < {accounts}) SELECT i FROM s"),
        ("accounts", "INSERT INTO account (id, number, name, address, district, language, timezone, do_not_call, "
                     "life_support, preferred_channel, email, claimed_paid_at, updated_at, seen_run) "
                     f"SELECT i, 'ACC' || {pad7('i')}, 'Debtor ' || i, i || ' Main St', dn.name, '', '', "
                     f"CASE WHEN i % 97 = 0 THEN {t} ELSE {f} END, {f}, 'voice', '', "
                     f"CASE WHEN i % 53 = 0 THEN {secs(now, 'i % 3600')} END, '{now}', NULL "
                     f"FROM bench_seq JOIN ({districts}) dn ON dn.k = i % {len(DISTRICTS)}"),
        ("phones", "INSERT INTO phone (account_id, position, raw, e164, valid, invalid_reason, flagged_at) "
                   f"SELECT i, 0, '050' || {pad7('i')}, CASE WHEN i % 50 = 0 THEN '' ELSE '+38050' || {pad7('i')} "
                   f"END, CASE WHEN i % 50 = 0 THEN {f} ELSE {t} END, "
                   "CASE WHEN i % 50 = 0 THEN 'too short' ELSE '' END, NULL FROM bench_seq"),
        ("balances", "INSERT INTO balance (account_id, as_of, amount, currency, overdue_since) "
                     f"SELECT i, {days(day, '-3')}, 5 + {h} % 4995, 'UAH', "
                     f"CASE WHEN i % 3 = 0 THEN {days(day, '-100')} END FROM bench_seq"),
        ("payments", "INSERT INTO payment (account_id, reference, amount, paid_on, imported_at) "
                     f"SELECT i, 'P' || i, 50 + {h} % 2950, {days(day, 'i % 10')}, '{now}' FROM bench_seq "
                     "WHERE i % 5 = 0"),
        ("payments", "INSERT INTO payment (account_id, reference, amount, paid_on, imported_at) "
                     f"SELECT i, 'Q' || i, 20 + {h} % 400, {days(day, '-1')}, '{now}' FROM bench_seq "
                     "WHERE i % 20 = 1"),
        ("dnc", "INSERT INTO dnc_entry (kind, value, reason, until, added_by, added_at, source, removed_at, "
                "removed_by, removed_reason) "
                f"SELECT 'number', '+38050' || {pad7('i')}, 'asked on the phone', NULL, 'bench', '{now}', 'cli', "
                "NULL, '', '' FROM bench_seq WHERE i % 211 = 0"),
        ("campaign", "INSERT INTO campaign (id, day, status, status_reason, created_at, started_at, finished_at, "
                     "eligible_count, holdout_share, holdout_seed, holdout_count) "
                     f"VALUES (1, '{day}', 'done', '', '{now}', NULL, NULL, {accounts * 9 // 10}, 0, '', 0)"),
        ("queue", "INSERT INTO queue_entry (campaign_id, account_id, state, priority, not_before, attempts, "
                  "phone_index, outcome, reason, updated_at) "
                  f"SELECT 1, i, 'done', 0, '{now}', 1, 0, '', '', '{now}' FROM bench_seq WHERE i % 10 <> 9"),
    ]
    for j in range(calls_per_account):
        hj = f"(((i * {calls_per_account} + {j}) * 2654435761) % 1000003)"
        steps.append(("calls", "INSERT INTO attempt (uuid, campaign_id, account_id, accounts, e164, node, epoch, "
                      "state, outcome, created_at, answered_at, ended_at, hangup_cause, heard, heard_ms, "
                      "message_ms, digits, duration_s, billsec_s, detail, kind) "
                      f"SELECT {pad7('i')} || '-{j:04d}-4000-8000-' || {d['pad12'].format('h')}, 1, i, "
                      f"'ACC' || {pad7('i')}, '+38050' || {pad7('i')}, 'bench', 0, 'ended', o, "
                      f"{secs('2026-11-23 16:00:00', f'{hj} % 10800')}, "
                      f"CASE WHEN o IN ('heard', 'early_hangup', 'pay_now', 'callback', 'wrong_number', "
                      f"'already_paid') THEN {secs('2026-11-23 16:00:08', f'{hj} % 10800')} END, NULL, "
                      f"'NORMAL_CLEARING', CASE WHEN o IN ('heard', 'pay_now', 'callback', 'already_paid') "
                      f"THEN {t} ELSE {f} END, 0, 0, CASE o WHEN 'pay_now' THEN '1' WHEN 'callback' THEN '2' "
                      "ELSE '' END, 20, 10, '', 'campaign' "
                      f"FROM (SELECT i, {hj} AS h, {OUTCOME_CASE.replace('h <', f'{hj} % 100 <')} AS o "
                      "FROM bench_seq) AS c"))
    steps += [
        ("callbacks", "INSERT INTO callback_request (account_id, attempt_id, e164, district, created_at, handled_at, "
                      "taken_by, taken_at, result, promised_on, next_call_at, closed_by) "
                      "SELECT t.account_id, t.id, t.e164, a.district, t.created_at, "
                      "CASE WHEN t.id % 2 = 0 THEN t.created_at END, '', NULL, '', NULL, NULL, '' "
                      "FROM attempt t JOIN account a ON a.id = t.account_id WHERE t.outcome = 'callback'"),
        ("counter", "DROP TABLE bench_seq"),
    ]
    postgres = isinstance(db, pw.PostgresqlDatabase)
    with db.atomic():
        for label, sql in steps:
            t0 = time.perf_counter()
            db.execute_sql(sql.replace("%", "%%") if postgres else sql)  # psycopg2 reads % as a placeholder
            log(f"  {label:10} {time.perf_counter() - t0:7.1f} s")
    if postgres:
        for table in ("account", "campaign", "attempt", "callback_request", "payment", "phone", "balance",
                      "queue_entry", "dnc_entry"):
            db.execute_sql(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                           f"(SELECT COALESCE(MAX(id), 1) FROM {table}))")
        db.execute_sql("ANALYZE")
    else:
        db.execute_sql("ANALYZE")
