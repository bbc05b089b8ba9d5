"""PostgreSQL stops while mail arrives: 451 and exit 75, then nothing accepted is lost.

Runs on a private cluster (tests/pg_cluster.py), never on the shared server.
"""

from __future__ import annotations

import os
import smtplib
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from mailticket.runtime.core import build_core
from mailticket.store.models import Inbound
from tests.conftest import Clock, build_mail, make_settings
from tests.daemon_thread import DaemonThread
from tests.pg_cluster import Cluster, private_cluster

CLIENTS = 4


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    with private_cluster() as running:
        yield running


class Senders:
    """SMTP clients sending numbered mails until each has seen a few 451s in a row."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.accepted: list[str] = []
        self.deferred: dict[str, bytes] = {}
        self.other: list[str] = []
        self.lock = threading.Lock()

    def run(self, worker: int, stop: threading.Event) -> None:
        with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as client:
            streak, n = 0, 0
            while streak < 3 and n < 400:
                n += 1
                message_id = f"<w{worker}.n{n}@outage.example>"
                raw = build_mail(subject=f"w{worker} n{n}", message_id=message_id)
                code = self.send(client, raw)
                streak = streak + 1 if code == 451 else 0
                with self.lock:
                    if code == 250:
                        self.accepted.append(message_id)
                    elif code == 451:
                        self.deferred[message_id] = raw
                    else:
                        self.other.append(f"{message_id}: {code}")
                if stop.is_set() and code == 250 and n > 200:
                    break  # the cluster never went down under this client

    @staticmethod
    def send(client: smtplib.SMTP, raw: bytes) -> int:
        try:
            client.sendmail("a@customer.example", ["support@example.org"], raw)
        except smtplib.SMTPDataError as exc:
            client.rset()
            return exc.smtp_code
        return 250


def test_postgres_stopping_mid_stream_loses_nothing(
    tmp_path: Path, cluster: Cluster, clock: Clock
) -> None:
    settings = make_settings(tmp_path, cluster.url)
    with build_core(settings, clock=clock) as core, DaemonThread(core) as daemon:
        senders = Senders(daemon.ports["smtp"])
        stopped = threading.Event()
        threads = [threading.Thread(target=senders.run, args=(w, stopped)) for w in range(CLIENTS)]
        for thread in threads:
            thread.start()
        _wait_until(lambda: len(senders.accepted) >= 20)
        cluster.stop()  # mid-stream: sessions are cut while mails are being stored
        stopped.set()
        for thread in threads:
            thread.join(60)
        assert len(senders.deferred) >= CLIENTS * 3  # every client got its 451s
        assert senders.other == []

        mail = tmp_path / "one.eml"
        mail.write_bytes(build_mail(subject="by pipe", message_id="<pipe@outage.example>"))
        assert _ingest(tmp_path, mail).returncode == 75  # EX_TEMPFAIL: the MTA retries

        cluster.start()
        with smtplib.SMTP("127.0.0.1", daemon.ports["smtp"], timeout=30) as client:
            for message_id, raw in sorted(senders.deferred.items()):  # the MTAs retry
                assert _retry(client, raw) == 250, message_id
        assert _ingest(tmp_path, mail).returncode == 0

        with Session(core.engine) as session:
            counts = Counter(session.exec(select(Inbound.message_id)).all())
            total = session.exec(select(func.count()).select_from(Inbound)).one()
    expected = {*senders.accepted, *senders.deferred, "<pipe@outage.example>"}
    assert set(counts) == expected  # every mail that got 250 is there...
    assert set(counts.values()) == {1} and total == len(expected)  # ...exactly once


def _retry(client: smtplib.SMTP, raw: bytes) -> int:
    """Send until stored: the first attempts may still meet connections cut by the stop."""
    for _ in range(20):
        code = Senders.send(client, raw)
        if code != 451:
            return code
        time.sleep(0.2)
    return 451


def _ingest(tmp_path: Path, mail: Path) -> subprocess.CompletedProcess[bytes]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MAILTICKET_")}
    command = [sys.executable, "-m", "mailticket", "-c", str(tmp_path / "mailticket.toml")]
    return subprocess.run(
        [*command, "ingest", str(mail)], capture_output=True, env=environment, check=False
    )


def _wait_until(condition: object, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.01)
