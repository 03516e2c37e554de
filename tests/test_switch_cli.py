"""`ivr switch check` / `ivr switch originate`: clear output and clear errors, never a traceback."""

from __future__ import annotations

import yaml
from esl_fakes import FakeServer, in_frames, reply

from ivr.cli import main

STATUS = in_frames("inbound_auth_ok_api.jsonl")[2]


def fake_freeswitch(password: str) -> FakeServer:
    def script(peer, _n):
        peer.send(b"Content-Type: auth/request\n\n")
        while (cmd := peer.read(timeout=10)) is not None:
            if cmd.word == "auth":
                ok = cmd.line == f"auth {password}"
                peer.send(reply("+OK accepted" if ok else "-ERR invalid"))
                if not ok:
                    return
            elif cmd.word == "event":
                peer.send(reply("+OK event listener enabled plain"))
            elif cmd.line == "api status":
                peer.send(STATUS)
            elif cmd.word == "exit":
                peer.send(reply("+OK bye"))
                return

    return FakeServer(script)


def write_config(tmp_path, port: int, password: str) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"freeswitch": {"host": "127.0.0.1", "port": port, "password": password},
                                    "database": {"url": f"sqlite:///{tmp_path / 'db.sqlite3'}"}}))
    return str(path)


def test_check_prints_status(tmp_path, capsys):
    server = fake_freeswitch("Secret-1")
    try:
        rc = main(["--config", write_config(tmp_path, server.port, "Secret-1"), "switch", "check", "--timeout", "2"])
    finally:
        server.stop()
    out = capsys.readouterr().out
    assert rc == 0 and "password accepted" in out and "UP 0 years" in out


def test_check_with_a_wrong_password_is_one_clear_line(tmp_path, capsys):
    server = fake_freeswitch("Secret-1")
    try:
        rc = main(["--config", write_config(tmp_path, server.port, "Wrong-2"), "switch", "check", "--timeout", "2"])
    finally:
        server.stop()
    err = capsys.readouterr().err
    assert rc == 1 and "refused the event-socket password" in err
    assert "Traceback" not in err and "Wrong-2" not in err


def test_originate_preview_and_refusal(tmp_path, capsys):
    cfg = write_config(tmp_path, 8021, "x")
    assert main(["--config", cfg, "switch", "originate", "+380501234567", "--name", "Іваненко, Олена"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("originate {origination_uuid=") and "ivr_debtor_name='Іваненко\\, Олена'" in out
    assert main(["--config", cfg, "switch", "originate", "+380501234567,+380509999999"]) == 1
    assert "refused" in capsys.readouterr().err
