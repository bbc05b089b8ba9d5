"""A SQLite database that turns read-only while the daemon serves: SMTP answers 451, the
daemon stays up (no SIGBUS), ``mailticket status`` says so, and mail is taken again as
soon as the database is writable, without a restart.

Real parts: an ext4 file system of its own on a loop device, ``mailticket serve`` as a
process, SMTP through smtplib, the CLI as a process. Two ways a disk turns read-only:
its files made immutable (``chattr +i``, even root cannot write them; undone after),
and ext4 after an error (``errors=remount-ro``), which lasts until it is unmounted.
Before the fix, a write to the WAL's shared memory after its pages were written back
killed the store process with SIGBUS on the first mail after ``chattr +i``.
"""

from __future__ import annotations

import json
import os
import smtplib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import build_mail, make_settings, pg_schema
from tests.daemon_process import DaemonProcess
from tests.dovecot import free_port
from tests.fault_disk import Ext4Disk, ext4_disk
from tests.test_cli import run

# how the daemon logs a store process killed by SIGBUS (once per death; the outbox
# worker's retry line repeats "exited (code -7)")
SIGBUS_EXIT = "store_process: store process exited (code -7)"


@pytest.fixture
def disk() -> Iterator[Ext4Disk]:
    with ext4_disk("64M") as made:
        yield made


@pytest.fixture
def daemon(tmp_path: Path, disk: Ext4Disk) -> Iterator[DaemonProcess]:
    port = free_port()
    make_settings(tmp_path, f"sqlite:///{disk.path / 'db.sqlite'}", smtp={"port": port})
    with DaemonProcess(tmp_path, port) as started:
        yield started
    assert started.exit_code == 0, started.log()


class Sender:
    """One new requester a mail (no budget for automatic answers is ever reached)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.accepted = 0
        self._count = 0

    def send(self) -> int:
        """The SMTP reply code to one new mail."""
        self._count += 1
        raw = build_mail(sender=f"r{self._count}@customer.example", subject=f"m{self._count}")
        try:
            with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as client:
                client.sendmail(f"r{self._count}@customer.example", ["support@example.org"], raw)
        except smtplib.SMTPResponseException as exc:
            return exc.smtp_code
        self.accepted += 1
        return 250

    def until_accepted(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.send() != 250:
            assert time.monotonic() < deadline, "mail still refused"
            time.sleep(0.2)


def database_files(disk: Ext4Disk) -> list[Path]:
    found = [disk.path / f"db.sqlite{suffix}" for suffix in ("", "-wal", "-shm")]
    assert all(path.exists() for path in found), found  # WAL mode, in use
    return found


def assert_up(daemon: DaemonProcess) -> None:
    """The daemon is alive. Its store process may have been killed by SIGBUS once, if the
    files turned read-only in the microseconds between the guard's check and a write (the
    daemon restarts it and answers 451 meanwhile); a second one would mean the guard does
    not hold."""
    state = Path(f"/proc/{daemon.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    assert state != "Z", daemon.log()
    assert daemon.log().count(SIGBUS_EXIT) <= 1, daemon.log()


def status(directory: Path) -> tuple[int, str]:
    done = run(directory, "status")
    return done.returncode, done.stdout.decode() + done.stderr.decode()


def stored(directory: Path) -> int:
    return len(json.loads(run(directory, "tickets", "list", "--json").stdout))


def test_immutable_files_get_451_and_mail_flows_again_after(
    tmp_path: Path, disk: Ext4Disk, daemon: DaemonProcess
) -> None:
    sender = Sender(daemon.port)
    for _ in range(3):  # SIGBUS depended on timing: a few rounds
        assert sender.send() == 250
        os.sync()  # the shared memory's pages written back: the next write to one faults
        with disk.immutable(*database_files(disk)):
            assert [sender.send() for _ in range(3)] == [451, 451, 451]
            assert_up(daemon)
            code, shown = status(tmp_path)
            assert code == 1, shown
            assert "PROBLEM    database read-only: " in shown
            assert "db.sqlite-shm: Operation not permitted" in shown
        sender.until_accepted()  # no restart
        assert status(tmp_path)[0] == 0
    assert_up(daemon)
    assert "database read-only: " in daemon.log()
    assert stored(tmp_path) == sender.accepted


def test_a_file_system_turned_read_only_by_an_error(
    tmp_path: Path, disk: Ext4Disk, daemon: DaemonProcess
) -> None:
    sender = Sender(daemon.port)
    assert [sender.send() for _ in range(3)] == [250, 250, 250]
    os.sync()
    disk.fail()
    assert [sender.send() for _ in range(5)] == [451] * 5
    time.sleep(1)  # the outbox and the scheduler look at the database meanwhile
    assert sender.send() == 451
    assert_up(daemon)
    code, shown = status(tmp_path)
    assert code == 1, shown
    assert "PROBLEM    database read-only: " in shown and "Read-only file system" in shown
    assert stored(tmp_path) == 3  # reading still works, from a new process


def test_a_read_only_postgresql_is_a_temporary_failure(tmp_path: Path, postgres_url: str) -> None:
    """A standby after a failover, or ``default_transaction_read_only``: exit 75 (the MTA
    keeps the mail), nothing quarantined, and ``status`` says why."""
    with pg_schema(postgres_url) as url:
        make_settings(tmp_path, url)
        assert run(tmp_path, "db", "upgrade").returncode == 0
        make_settings(tmp_path, url + "%20-cdefault_transaction_read_only%3Don")
        ingested = run(tmp_path, "ingest", stdin=build_mail())
        assert ingested.returncode == 75, ingested.stderr
        assert b"database read-only: cannot execute INSERT in a read-only transaction" in (
            ingested.stderr
        )
        code, shown = status(tmp_path)
        assert code == 1, shown
        assert (
            "PROBLEM    database read-only: cannot execute UPDATE in a read-only transaction"
            in (shown)
        )
        make_settings(tmp_path, url)
        assert json.loads(run(tmp_path, "quarantine", "list", "--json").stdout) == []
        assert run(tmp_path, "ingest", stdin=build_mail()).returncode == 0
