"""`ivr sms send | preview | receipts` end to end: a config file, a SQLite ledger and the simulated SMSC."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from campaign_support import acc

from ivr.cli import main
from ivr.ledger.db import connect
from ivr.ledger.models import Account, Message
from ivr.sim.smsc import SimSmsc, SimThread

PROMPTS = Path(__file__).resolve().parent.parent / "prompts"


@pytest.fixture
def smsc():
    with SimThread(SimSmsc(password="s3cret9", receipt_delay_s=0.01)) as sim:
        yield sim


def write_config(tmp_path: Path, smsc, monkeypatch) -> Path:
    monkeypatch.setenv("IVR_SMPP_PASSWORD", "s3cret9")  # from the environment, never from the file
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({
        "database": {"url": f"sqlite:///{tmp_path / 'ivr.sqlite3'}"},
        "speech": {"prompts_dir": str(PROMPTS), "cache_dir": "cache"},
        "logging": {"level": "INFO"},
        "channels": {"enabled": True, "sms_windows": ["00:00-24:00"]},
        "sms": {"host": "127.0.0.1", "port": smsc.port, "receipt_wait_seconds": 60},
    }), encoding="utf-8")
    connect(f"sqlite:///{tmp_path / 'ivr.sqlite3'}")
    return path


def test_send_then_preview(tmp_path, smsc, monkeypatch, capsys):
    cfg = write_config(tmp_path, smsc, monkeypatch)
    a = acc()
    Account.update(preferred_channel="sms").where(Account.id == a.id).execute()
    acc()  # prefers calls: no SMS
    assert main(["--config", str(cfg), "sms", "send", "--no-progress"]) == 0
    captured = capsys.readouterr()
    out, ours = captured.out, captured.err  # ivr's log lines go to standard error (ivr.logs)
    assert "1 sent" in out and "1 delivered" in out
    assert Message.get().status == "delivered"
    assert len(smsc.messages()) == 1
    assert "event=sms_sent" in ours and "event=smpp_bound" in ours
    assert "s3cret9" not in ours  # the SMPP password is never logged
    assert a.phones[0].e164 not in ours  # numbers masked in logs
    assert main(["--config", str(cfg), "sms", "preview", a.number]) == 0
    out = capsys.readouterr().out
    assert "UCS-2 (70 single / 67 per part)" in out and "500,00 UAH" in out


def test_send_without_an_smsc_says_where_it_looked(tmp_path, monkeypatch, capsys):
    with SimThread(SimSmsc()) as sim:
        port = sim.port
    cfg = write_config(tmp_path, sim, monkeypatch)
    a = acc()
    Account.update(preferred_channel="sms").where(Account.id == a.id).execute()
    assert main(["--config", str(cfg), "sms", "send", "--no-progress", "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert f"cannot reach the SMSC at 127.0.0.1:{port}" in err and "Traceback" not in err
