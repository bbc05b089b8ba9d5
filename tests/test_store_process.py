"""The store process: intake's transactions in a child of the daemon, with real processes.

What it must keep: a mail is answered only after the child committed it; a child that
dies fails only the mails it had not answered (451, never a lost or a doubled mail) and
the next mail starts a new one; the child follows the daemon's rules reloads; and a
``kill -9`` of the daemon takes the child (and every other process of it) along.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import smtplib
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlmodel import Session, select

from mailticket.errors import TemporaryFailure
from mailticket.intake import Arrival
from mailticket.outbound.outbox import OutboxWorker
from mailticket.outbound.transport import Delivery, Outcome
from mailticket.runtime.core import Core, build_core
from mailticket.runtime.store_process import FIRST_PAUSE, StoreProcess
from mailticket.settings import Settings
from mailticket.store.models import Outbox, Ticket
from tests.conftest import Clock, build_mail, make_settings
from tests.daemon_process import DaemonProcess, write_config
from tests.daemon_thread import DaemonThread
from tests.dovecot import free_port


def arrival(core: Core, raw: bytes) -> Arrival:
    return core.intake.arrival(raw, "smtp", True, core.intake.parse(raw), core.clock())


def tickets(core: Core) -> list[Ticket]:
    with Session(core.engine) as session:
        return list(session.exec(select(Ticket).order_by(Ticket.number)).all())


def test_mails_are_stored_by_the_child_and_answered_after_its_commit(
    core: Core, settings: Settings
) -> None:
    store = StoreProcess(settings, core.rules)
    try:
        mails = [build_mail(subject=f"Request {n}") for n in range(20)]
        futures = [store.submit(arrival(core, raw)) for raw in mails]
        results = [future.result(30) for future in futures]
        again = store.submit(arrival(core, mails[0])).result(30)
    finally:
        store.close()
    assert [r.outcome for r in results] == ["stored"] * 20
    assert again.outcome == "duplicate"
    stored = {t.subject: t.number for t in tickets(core)}
    assert {r.ticket for r in results} == set(stored.values())
    assert sorted(stored) == sorted(f"Request {n}" for n in range(20))


def test_the_outbox_claims_and_records_through_the_child(core: Core, settings: Settings) -> None:
    """In the daemon the outbox worker writes through the store process, so the
    daemon's own process never waits for (or holds) SQLite's write lock."""
    core.intake.submit(build_mail(subject="Needs an acknowledgement"), "smtp")
    store = StoreProcess(settings, core.rules)
    try:
        worker = OutboxWorker(core.engine, _Taking(), settings.outbound, core.clock, store)
        assert asyncio.run(worker.deliver_due()) == 3  # the ack, the agents' notifications
        assert asyncio.run(worker.deliver_due()) == 0  # recorded as sent by the child
    finally:
        store.close()
    with Session(core.engine) as session:
        rows = session.exec(select(Outbox)).all()
    assert sorted((row.template, row.state, row.attempts) for row in rows) == [
        ("ack", "sent", 1),
        ("agent_new", "sent", 1),
        ("agent_new", "sent", 1),
    ]


class _Taking:
    """A transport that takes every mail."""

    async def deliver(
        self, *, key: str, sender: str, recipients: Sequence[str], message: bytes
    ) -> Delivery:
        return Delivery(Outcome.SENT, "taken")


def test_a_child_that_dies_fails_its_mails_and_the_next_mail_starts_another(
    core: Core, settings: Settings
) -> None:
    store = StoreProcess(settings, core.rules)
    try:
        store.start()
        first = store.pid
        assert first is not None
        raw = build_mail(subject="Sent while the store died")
        os.kill(first, signal.SIGSTOP)  # the mail is sent, never read
        lost = store.submit(arrival(core, raw))
        os.kill(first, signal.SIGKILL)
        with pytest.raises(TemporaryFailure, match="store process exited"):
            lost.result(30)
        assert tickets(core) == []  # nothing of it was committed: the client sends it again
        retried = store.submit(arrival(core, raw)).result(30)
        second = store.pid
    finally:
        store.close()
    assert retried.outcome == "stored"
    assert second is not None and second != first
    assert [t.subject for t in tickets(core)] == ["Sent while the store died"]


def test_the_child_routes_by_the_rules_the_daemon_reloaded(
    tmp_path: Path, db_url: str, clock: Clock
) -> None:
    settings = make_settings(tmp_path, db_url)
    rules = tmp_path / "rules.yaml"
    with build_core(settings, clock=clock) as core, DaemonThread(core) as daemon:
        send(daemon.ports["smtp"], build_mail(subject="hacked account", message_id="<a@c.example>"))
        rules.write_text(
            rules.read_text(encoding="utf-8")
            + "rules:\n  - name: hacked\n    if: {subject: {contains: hacked}}\n"
            + "    then: {queue: security, priority: urgent}\n",
            encoding="utf-8",
        )
        assert core.rules.reload()
        send(daemon.ports["smtp"], build_mail(subject="hacked again", message_id="<b@c.example>"))
    routed = [(t.subject, t.queue, t.priority) for t in tickets(core)]
    assert routed == [
        ("hacked account", "general", "normal"),
        ("hacked again", "security", "urgent"),
    ]


def send(port: int, raw: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.sendmail("alice@customer.example", ["support@example.org"], raw)


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (its children, theirs, ...), from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc").exists(), reason="reads the process tree from /proc")
def test_kill_9_of_the_daemon_leaves_no_process_of_it_behind(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "rules.yaml").write_text("version: 1\nqueues: {general: {}}\n", encoding="utf-8")
    tables: dict[str, dict[str, object]] = {
        "database": {"url": f"sqlite:///{tmp_path / 'mailticket.db'}"},
        "smtp": {"port": port},
        "outbound": {"maildir": str(tmp_path / "outbox")},
        "tickets": {"support_address": "support@example.org", "secret": "test"},
    }
    write_config(tmp_path / "mailticket.toml", tables, [])
    with DaemonProcess(tmp_path, port) as daemon:
        send(port, build_mail(subject="Before the crash"))  # the store child has worked
        below = descendants(daemon.pid)
        assert len(below) >= 3, "a fork server, the store process and the parser workers"
        os.kill(daemon.pid, signal.SIGKILL)
        deadline = time.monotonic() + 15
        while any(alive(pid) for pid in below) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = sorted(pid for pid in below if alive(pid))
    assert left == [], f"still running after the daemon was killed: {left}"


def test_a_child_that_cannot_open_the_database_is_restarted_after_a_pause_not_per_mail(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The database unreachable when the child starts: it exits, and mail gets 451 at
    once until a pause (doubling) is over; one child is started per pause, not per mail."""
    for name in ("here", "down"):
        (tmp_path / name).mkdir()
    here = make_settings(tmp_path / "here", f"sqlite:///{tmp_path / 'here.db'}")
    unreachable = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test"
    down = make_settings(tmp_path / "down", unreachable, tickets={"secret": ""})  # read at start
    with (
        build_core(here) as local,
        caplog.at_level(logging.INFO, "mailticket.runtime.store_process"),
    ):
        store = StoreProcess(down, local.rules)
        try:
            store.start()  # returns once the child has exited
            assert store.ready and store.pid is None
            for n in range(5):
                with pytest.raises(TemporaryFailure, match="restarting in"):
                    store.submit(arrival(local, build_mail(subject=f"r{n}"))).result(10)
            starts_during_the_pause = started(caplog)
            time.sleep(FIRST_PAUSE + 0.1)
            with pytest.raises(TemporaryFailure, match="exited"):  # a new child, down again
                store.submit(arrival(local, build_mail(subject="after"))).result(30)
            with pytest.raises(TemporaryFailure, match="restarting in"):
                store.submit(arrival(local, build_mail(subject="doubled"))).result(10)
        finally:
            store.close()
    assert starts_during_the_pause == 1
    assert started(caplog) == 2
    pauses = [r.getMessage() for r in caplog.records if "exited at start-up" in r.getMessage()]
    assert [p.rpartition(" ")[2] for p in pauses] == ["1s", "2s"]


def started(caplog: pytest.LogCaptureFixture) -> int:
    return sum(r.getMessage().startswith("store process started") for r in caplog.records)
