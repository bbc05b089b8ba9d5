"""`mailticket serve` as a real process: SIGTERM, kill -9 during a burst, restart."""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
from email import message_from_bytes, policy
from pathlib import Path

from sqlmodel import Session, create_engine, select

from mailticket.models import Inbound, Ticket
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


def test_kill_9_during_a_burst_loses_nothing_and_acks_once(tmp_path: Path) -> None:
    """Every mail that got 250 is stored exactly once; after a restart each ticket gets one ack."""
    db = tmp_path / "db.sqlite"
    make_settings(tmp_path, f"sqlite:///{db}", outbound={"timeout": "1s"})
    port = _free_port()
    daemon = _start(tmp_path, port)
    accepted: list[str] = []
    lock = threading.Lock()

    def sender(worker: int) -> None:
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
                for n in range(60):
                    mid = f"<w{worker}n{n}@burst.example>"
                    mail = build_mail(sender=f"user{worker}-{n}@customer.example", message_id=mid)
                    client.sendmail("x@customer.example", ["support@example.org"], mail)
                    with lock:
                        accepted.append(mid)
        except (smtplib.SMTPException, OSError):
            return  # the daemon died under us: what was not acknowledged is the MTA's to retry

    threads = [threading.Thread(target=sender, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    while len(accepted) < 100:
        time.sleep(0.01)
    daemon.send_signal(signal.SIGKILL)
    daemon.wait(10)
    for thread in threads:
        thread.join(30)
    assert 100 <= len(accepted) < 480

    daemon = _start(tmp_path, port)  # restart: the outbox delivers what was committed
    engine = create_engine(f"sqlite:///{db}")
    with Session(engine) as session:
        stored = {row.message_id for row in session.exec(select(Inbound)).all()}
        tickets = len(session.exec(select(Ticket)).all())
    assert set(accepted) <= stored
    acks = _wait_for_acks(tmp_path / "outbox" / "new", tickets)
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(30) == 0
    engine.dispose()
    assert sorted(acks.values()) == [1] * tickets


def _wait_for_acks(maildir: Path, expected: int) -> dict[str, int]:
    deadline = time.monotonic() + 60
    acks: dict[str, int] = {}
    while time.monotonic() < deadline:
        acks = {}
        for path in maildir.iterdir():
            mail = message_from_bytes(path.read_bytes(), policy=policy.default)
            if mail["Auto-Submitted"] == "auto-replied":
                acks[str(mail["To"])] = acks.get(str(mail["To"]), 0) + 1
        if len(acks) >= expected:
            break
        time.sleep(0.2)
    return acks
