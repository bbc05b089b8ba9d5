"""`mailticket status` knows which daemons run and what runs in them (their heartbeat);
a daemon killed with -9 and started again takes back its outbox claims at once."""

from __future__ import annotations

import json
import os
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from mailticket.ops import heartbeat
from mailticket.ops.status import collect
from mailticket.runtime.core import Core
from mailticket.store.models import Daemon, Outbox
from tests.conftest import Clock, build_mail, make_settings
from tests.daemon_process import DaemonProcess, write_config
from tests.daemon_thread import DaemonThread

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _problems(core: Core) -> list[str]:
    return [p for p in collect(core).problems if "daemon" in p]


def test_a_running_daemon_is_seen_with_its_listener_and_a_stopped_one_is_a_problem(
    core: Core, clock: Clock
) -> None:
    assert _problems(core) == [
        "no daemon is running: nothing answers SMTP or sends the outbox (none has ever run here)"
    ]
    with DaemonThread(core) as daemon:
        port = daemon.ports["smtp"]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # the first round of the outbox worker, a sweep
            [row] = collect(core).daemons
            if row.outbox_at and row.last_sweep_at and row.listeners:
                break
            time.sleep(0.1)
        health = collect(core)
        [row] = health.daemons
        assert row.listeners == f"smtp 127.0.0.1:{port}"
        assert row.alive(clock()) and row.instance.startswith(
            f"{socket.gethostname()}:{os.getpid()}:"
        )
        assert _problems(core) == []
        [line] = [x for x in health.lines() if x.startswith("daemon ")]
        assert f"smtp 127.0.0.1:{port}" in line and "up" in line
    [row] = collect(core).daemons
    assert (row.stopped_at, row.stop_reason) == (clock(), "stopped")
    assert _problems(core) == [
        "no daemon is running: nothing answers SMTP or sends the outbox"
        f" (last heartbeat {clock().isoformat()})"
    ]
    report = collect(core).as_dict()
    assert (
        report["daemons"][0]["alive"] is False and report["daemons"][0]["stop_reason"] == "stopped"
    )


def _row(**values: object) -> Daemon:
    defaults: dict[str, object] = {
        "instance": "mx1:100:x", "host": "mx1", "pid": 100, "started_at": T0, "beat_at": T0,
        "listeners": "smtp 0.0.0.0:25", "pollers": "", "stop_reason": "",
        "last_sweep_at": T0, "outbox_at": T0,
    }  # fmt: skip
    return Daemon(**(defaults | values))


def _health(row: Daemon) -> heartbeat.DaemonHealth:
    names = [f for f in heartbeat.DaemonHealth.__dataclass_fields__]
    return heartbeat.DaemonHealth(**{n: getattr(row, n) for n in names})


@pytest.mark.parametrize(
    ("row", "later", "expected"),
    [
        (_row(), timedelta(seconds=30), []),
        (
            _row(),
            timedelta(minutes=5),
            [
                "no daemon is running: nothing answers SMTP or sends the outbox"
                " (last heartbeat 2026-12-01T09:00:00+00:00)",
                "daemon mx1:100:x stopped beating at 2026-12-01T09:00:00+00:00 without"
                " stopping (killed? hung?)",
            ],
        ),
        (
            _row(beat_at=T0 + timedelta(minutes=5)),
            timedelta(minutes=5),
            [
                "daemon mx1:100:x: the outbox worker has not run since 2026-12-01T09:00:00+00:00",
                "daemon mx1:100:x: the follow-up sweep has not run since 2026-12-01T09:00:00+00:00",
            ],
        ),
        (
            _row(beat_at=T0 + timedelta(minutes=5), outbox_at=None, last_sweep_at=None),
            timedelta(minutes=5),
            [
                "daemon mx1:100:x: the outbox worker has not run since the start"
                " (2026-12-01T09:00:00+00:00)",
                "daemon mx1:100:x: the follow-up sweep has not run since the start"
                " (2026-12-01T09:00:00+00:00)",
            ],
        ),
        (_row(outbox_at=None, last_sweep_at=None), timedelta(seconds=5), []),  # just started
    ],
)
def test_what_status_calls_a_problem(row: Daemon, later: timedelta, expected: list[str]) -> None:
    assert heartbeat.problems([_health(row)], T0 + later, timedelta(seconds=30)) == expected


# -- kill -9 -----------------------------------------------------------------------------


class _SilentRelay:
    """Accepts SMTP connections and never answers: a delivery hangs until its timeout."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._server.accept()
            except OSError:
                return
            self._held.append(connection)

    def close(self) -> None:
        self._server.close()
        for connection in self._held:
            connection.close()


@pytest.fixture
def silent_relay() -> Iterator[_SilentRelay]:
    relay = _SilentRelay()
    yield relay
    relay.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _config(directory: Path, db_url: str, smtp_port: int, outbound: dict[str, object]) -> None:
    make_settings(directory, db_url)  # the tests' rules.yaml
    write_config(
        directory / "mailticket.toml",
        {
            "database": {"url": db_url},
            "smtp": {"port": smtp_port},
            "outbound": outbound,
            "tickets": {
                "support_address": "support@example.org",
                "rules_file": str(directory / "rules.yaml"),
                "secret": "test-secret",
            },
            "scheduler": {"sweep_interval": "1s"},
        },
        [],
    )


def _claims(db_url: str) -> list[tuple[str, str | None, datetime | None]]:
    from mailticket.store import make_engine

    engine = make_engine(db_url)
    try:
        with Session(engine) as session:
            rows = session.exec(select(Outbox)).all()
            return [(r.state, r.claimed_by, r.lease_until) for r in rows]
    finally:
        engine.dispose()


def test_a_daemon_killed_and_started_again_takes_back_its_claims_at_once(
    tmp_path: Path, db_url: str, silent_relay: _SilentRelay
) -> None:
    port = _free_port()
    relay = {"transport": "smtp", "host": "127.0.0.1", "port": silent_relay.port, "timeout": "120s"}
    _config(tmp_path, db_url, port, relay)
    first = DaemonProcess(tmp_path, port)
    first.start()
    first.wait_ready()

    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.sendmail("alice@customer.example", ["support@example.org"], build_mail())
    deadline = time.monotonic() + 30
    while not any(c[1] for c in _claims(db_url)) and time.monotonic() < deadline:
        time.sleep(0.2)
    claims = _claims(db_url)
    claimed = [c for c in claims if c[1]]
    assert claimed, claims  # the dead daemon holds them, for minutes (120 s a row)
    os.kill(first.pid, signal.SIGKILL)
    assert first.stop() == -signal.SIGKILL

    (tmp_path / "outbox").mkdir(exist_ok=True)
    _config(tmp_path, db_url, port, {"maildir": str(tmp_path / "outbox")})
    with DaemonProcess(tmp_path, port) as second:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if all(state == "sent" for state, _, _ in _claims(db_url)):
                break
            time.sleep(0.2)
        assert all(state == "sent" for state, _, _ in _claims(db_url)), second.log()
        assert "outbox claim(s) taken back by" in second.log()
        shown = subprocess.run(
            [sys.executable, "-m", "mailticket", "-c", str(tmp_path / "mailticket.toml"),
             "status", "--json"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    report = json.loads(shown.stdout)
    dead = [d for d in report["daemons"] if d["stop_reason"] and "died" in d["stop_reason"]]
    assert len(dead) == 1 and f"{len(claimed)} outbox claim(s) taken back" in dead[0]["stop_reason"]
