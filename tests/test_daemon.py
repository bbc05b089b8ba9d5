"""`mailticket serve` as a real process: SIGTERM, kill -9 during a burst, restart."""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import subprocess
import sys
import time
from pathlib import Path

from sqlmodel import Session, create_engine, select

from mailticket.store.models import Ticket
from tests.conftest import build_mail, make_settings


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start(tmp_path: Path, port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "mailticket", "-c", str(tmp_path / "mailticket.toml"), "serve"],
        cwd=tmp_path,
        env={**os.environ, "MAILTICKET_SMTP_PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "daemon.log", "ab"),  # noqa: SIM115
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError((tmp_path / "daemon.log").read_text())


def test_sigterm_exits_0_after_in_flight_mail(tmp_path: Path) -> None:
    make_settings(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}")
    port = _free_port()
    daemon = _start(tmp_path, port)
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.sendmail("a@customer.example", ["support@example.org"], build_mail())
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(30) == 0
    engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with Session(engine) as session:
        assert len(session.exec(select(Ticket)).all()) == 1
    engine.dispose()


def test_sighup_keeps_running(tmp_path: Path) -> None:
    make_settings(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}")
    port = _free_port()
    daemon = _start(tmp_path, port)
    (tmp_path / "rules.yaml").write_text("queues: [broken\n", encoding="utf-8")
    daemon.send_signal(signal.SIGHUP)
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.sendmail("a@customer.example", ["support@example.org"], build_mail())
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(30) == 0
    assert "rules refused" in (tmp_path / "daemon.log").read_text()
