"""Faults with real parts: nothing accepted is lost, nothing is sent twice.

Proven elsewhere and not repeated here: PostgreSQL stopped mid-stream (test_pg_outage),
a locked SQLite database (test_smtp_inbox), one kill -9 during a burst (test_daemon), each
relay answer (test_transport) and 451/550/timeout through the outbox worker (test_outbox),
IMAP cut mid-fetch, killed between commit and flag, database down (test_imap_inbox).

Here: kill -9 at random points, three times, with the MTAs resending (both databases);
a full disk under SQLite and PostgreSQL; a relay down, then busy, refusing and hanging;
the database lost while the outbox records a delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import default
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlmodel import Session, col, select

from mailticket.errors import TemporaryFailure
from mailticket.outbound.outbox import OutboxWorker, backoff
from mailticket.outbound.transport import build_transport
from mailticket.runtime.core import Core, build_core
from mailticket.store.models import Event, Inbound, Outbox, Ticket
from tests.conftest import Clock, build_mail, make_settings
from tests.dovecot import free_port
from tests.fault_daemon import LOST, Mta, ServeProcess, clean_environment
from tests.fault_disk import fill, free_bytes, postgres_on, small_disk
from tests.fault_relay import LockingRelay, Relay

AGENTS = 2  # conftest's rules: every new ticket notifies two agents


# -- looking at the result from outside the daemon ---------------------------------------


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)  # each look reads the database: do not compete with the daemon


@contextmanager
def session_on(url: str) -> Iterator[Session]:
    """A session of its own (no daemon hooks: a read never waits for a writer)."""
    engine = create_engine(url)
    try:
        with Session(engine) as session:
            yield session
    finally:
        engine.dispose()


def stored_ids(url: str) -> Counter[str]:
    """How often each Message-ID is stored (the Inbound table: every accepted mail)."""
    with session_on(url) as session:
        return Counter(session.exec(select(Inbound.message_id)).all())


def inbound_states(url: str) -> set[str]:
    with session_on(url) as session:
        return set(session.exec(select(Inbound.state)).all())


def ticket_count(url: str) -> int:
    with session_on(url) as session:
        return len(session.exec(select(Ticket.number)).all())


def outbox_states(url: str) -> Counter[str]:
    with session_on(url) as session:
        return Counter(session.exec(select(Outbox.state)).all())


def drained(url: str, tickets: int) -> bool:
    """Every ack and agent notification of ``tickets`` new tickets is sent."""
    return outbox_states(url) == {"sent": tickets * (1 + AGENTS)}


def assert_each_sent_once(maildir: Path, requesters: list[str]) -> None:
    """No Message-ID twice, one ack per requester, one notification per agent and ticket."""
    parser = BytesHeaderParser(policy=default)
    mails: list[Message] = [parser.parsebytes(path.read_bytes()) for path in maildir.iterdir()]
    ids = Counter(str(mail["Message-ID"]) for mail in mails)
    assert [mid for mid, count in ids.items() if count > 1] == []
    acks = Counter(str(mail["To"]) for mail in mails if mail["Auto-Submitted"] == "auto-replied")
    assert acks == dict.fromkeys(requesters, 1)
    assert len(mails) == len(requesters) * (1 + AGENTS)


def new_requests(
    prefix: str, count: int, body: str = "Hello, I cannot log in.\n"
) -> dict[str, bytes]:
    """Distinct new requests, one requester each, so each must get exactly one ack."""
    return {
        f"<{prefix}{n}@faults.example>": build_mail(
            sender=f"{prefix}{n}@customer.example",
            subject=f"request {n}",
            body=body,
            message_id=f"<{prefix}{n}@faults.example>",
        )
        for n in range(count)
    }


def requesters(mta: Mta) -> list[str]:
    return [mid.strip("<>").replace("@faults.example", "@customer.example") for mid in mta.raw]


# -- kill -9 -----------------------------------------------------------------------------

MAILS = 400  # room after three kills: intake outruns the outbox under a flood
CLIENTS = 4
KILLS = 3


def test_kill_9_at_random_points_loses_nothing_and_acks_once(tmp_path: Path, db_url: str) -> None:
    """Every 250 is stored; after the MTAs resend, every mail is stored and acked once."""
    seed = random.randrange(2**32)
    print(f"kill points from seed {seed}")  # shown when the test fails
    rng = random.Random(seed)
    make_settings(tmp_path, db_url, outbound={"timeout": "0.2s"})  # short leases after a kill
    mta = Mta(new_requests("k", MAILS))
    port = free_port()
    committed_unanswered: set[str] = set()
    for _ in range(KILLS):
        assert _killed_mid_load(tmp_path, port, mta, rng.randint(5, 50)) == -signal.SIGKILL
        assert mta.unanswered(), f"seed {seed}: the kill came after the load"
        stored = stored_ids(db_url)
        assert set(mta.accepted()) <= set(stored), f"seed {seed}: a 250 was lost"
        committed_unanswered |= set(stored) - set(mta.accepted())

    with ServeProcess(tmp_path, port) as daemon:  # the MTAs resend everything unanswered
        mta.send_round(port, CLIENTS)
        assert mta.unanswered() == [], f"seed {seed}"
        wait_until(lambda: drained(db_url, MAILS), "the outbox to drain")
        assert daemon.terminate() == 0

    lost = [mid for mid, code in mta.answers if code == LOST]
    print(f"no answer at a kill: {len(lost)}, of which committed: {len(committed_unanswered)}")
    redone = daemon.log.read_text().count("already delivered")  # written, "sent" not recorded
    print(f"outbound mails written before a kill but recorded after it: {redone}")
    assert redone, f"seed {seed}: no kill fell between a delivery and its record"
    assert {code for _, code in mta.answers} <= {250, LOST}, f"seed {seed}"
    stored = stored_ids(db_url)
    assert set(stored) == set(mta.raw) and set(stored.values()) == {1}
    assert ticket_count(db_url) == MAILS
    assert_each_sent_once(tmp_path / "outbox" / "new", requesters(mta))


def _killed_mid_load(tmp_path: Path, port: int, mta: Mta, after: int) -> int:
    """Start serve, let the MTAs send; once ``after`` more mails got their 250, SIGKILL it
    the instant the outbox writes a mail: most likely before that is recorded as sent."""
    target = len(mta.accepted()) + after
    maildir = tmp_path / "outbox" / "new"
    with ServeProcess(tmp_path, port) as daemon:
        threads = mta.start_round(port, CLIENTS)
        wait_until(lambda: len(mta.accepted()) >= target, "accepted mail")
        written = _count(maildir)
        deadline = time.monotonic() + 10
        while _count(maildir) == written and time.monotonic() < deadline:
            time.sleep(0.001)
        status = daemon.kill()
    for thread in threads:
        thread.join(30)
    return status


def _count(directory: Path) -> int:
    return len(os.listdir(directory)) if directory.exists() else 0


# -- a full disk -------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def database_on_small_disk(request: pytest.FixtureRequest) -> Iterator[tuple[str, Path]]:
    """(database URL, the disk it lives on); PostgreSQL as a private cluster."""
    with small_disk("64m") as disk:
        if request.param == "sqlite":
            yield f"sqlite:///{disk / 'mailticket.db'}", disk
            return
        with postgres_on(disk) as cluster:
            yield cluster.url, disk


def ingest(tmp_path: Path, mail: Path) -> subprocess.CompletedProcess[str]:
    config = str(tmp_path / "mailticket.toml")
    return subprocess.run(
        [sys.executable, "-m", "mailticket", "-c", config, "ingest", str(mail)],
        capture_output=True,
        text=True,
        env=clean_environment(),
        check=False,
    )


DISK_FULL = re.compile(r"(disk is full|No space left on device).* -> 452")


def test_full_disk_defers_every_way_in_then_stores_once(
    tmp_path: Path, database_on_small_disk: tuple[str, Path]
) -> None:
    url, disk = database_on_small_disk
    make_settings(tmp_path, url, outbound={"timeout": "0.2s"})  # the outbox is elsewhere
    body = "A long description of the problem.\n" * 600  # 20 KiB: more than any free page
    mta = Mta(new_requests("full", 10, body))
    piped = tmp_path / "piped.eml"
    piped.write_bytes(build_mail(sender="pipe@customer.example", message_id="<pipe@x.example>"))
    port = free_port()
    with ServeProcess(tmp_path, port) as daemon:  # migrated while there was room
        filler = fill(disk)
        assert free_bytes(disk) == 0
        mta.send_round(port)
        while_full = [code for _, code in mta.answers]
        refused = ingest(tmp_path, piped)
        assert stored_ids(url) == {}  # the disk really refused them all

        filler.unlink()
        mta.send_round(port)  # the MTAs retry
        accepted = ingest(tmp_path, piped)
        wait_until(lambda: drained(url, len(mta.raw) + 1), "the outbox to drain")
        assert daemon.terminate() == 0
    assert len(while_full) == len(mta.raw) and set(while_full) == {452}, while_full
    assert refused.returncode == 75, refused.stderr  # EX_TEMPFAIL: the MTA keeps the mail
    assert accepted.returncode == 0, accepted.stderr
    assert mta.unanswered() == []
    counts = stored_ids(url)
    assert set(counts) == {*mta.raw, "<pipe@x.example>"} and set(counts.values()) == {1}
    assert inbound_states(url) == {"processed"}  # a full disk quarantines nothing
    maildir = tmp_path / "outbox" / "new"
    assert_each_sent_once(maildir, [*requesters(mta), "pipe@customer.example"])
    assert DISK_FULL.search(daemon.log.read_text())  # serve says why it deferred


# -- the outbound relay ------------------------------------------------------------------

SCRIPT = {
    "flaky@customer.example": ["451", "451"],  # then 250
    "gone@customer.example": ["550"],
    "slow@customer.example": ["hang", "hang"],  # the payload arrives, the answer never does
}


def test_relay_down_busy_refusing_and_hanging(tmp_path: Path, clock: Clock) -> None:
    """Retries with backoff through each fault; each mail reaches the relay at most once,
    the uncertain one exactly twice; the refused and the uncertain one are on their tickets."""
    port = free_port()  # closed again: the relay is down until started
    outbound = {"transport": "smtp", "port": port, "timeout": "0.5s", "max_attempts": 6}
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", outbound=outbound)
    relay = Relay(port, SCRIPT)
    with build_core(settings, clock=clock) as core:
        for address in SCRIPT:
            core.intake.submit(build_mail(sender=address, message_id=f"<{address}>"), "smtp")
        asyncio.run(_relay_scenario(core, relay, clock))
        rows = _outbox(core)
        events = _events(core)
    acks = {row.recipient: row for row in rows if row.recipient in SCRIPT}
    assert {to: (row.state, row.attempts) for to, row in acks.items()} == {
        "flaky@customer.example": ("sent", 5),  # down, busy, 451, 451, 250
        "gone@customer.example": ("failed", 3),  # down, busy, 550
        "slow@customer.example": ("uncertain", 4),  # down, busy, timeout, timeout: reported
    }
    assert {row.state for row in rows if row.recipient not in SCRIPT} == {"sent"}
    slow, gone = acks["slow@customer.example"], acks["gone@customer.example"]
    reached = relay.message_ids()
    assert {mid: n for mid, n in reached.items() if n > 1} == {slow.message_id: 2}
    assert set(reached) == {row.message_id for row in rows} - {gone.message_id}
    assert [(e.ticket_number, e.kind) for e in events] == [
        (gone.ticket_number, "delivery_failed"),
        (slow.ticket_number, "delivery_uncertain"),
    ]
    assert "550 5.1.1" in events[0].detail and "may have accepted it" in events[1].detail


async def _relay_scenario(core: Core, relay: Relay, clock: Clock) -> None:
    transport = build_transport(core.settings.outbound)
    worker = OutboxWorker(core.engine, transport, core.settings.outbound, clock)
    rows = len(SCRIPT) * (1 + AGENTS)

    async def attempt_after(wait: timedelta) -> int:
        """Nothing is due a second early; everything due is claimed once the time comes."""
        clock.advance(seconds=wait.total_seconds() - 1)
        assert await worker.deliver_due() == 0
        clock.advance(seconds=1)
        return await worker.deliver_due()

    base = core.settings.outbound.retry_base
    assert await worker.deliver_due() == rows  # attempt 1: connection refused
    assert all("before the session was ready" in (row.last_error or "") for row in _outbox(core))
    relay.busy = True
    await relay.start()
    assert await attempt_after(base) == rows  # attempt 2: 421 at the greeting
    assert relay.turned_away == rows and relay.received == []
    relay.busy = False
    assert await attempt_after(2 * base) == rows  # attempt 3: agents 250, acks 451/550/hang
    assert await attempt_after(base) == 1  # the uncertain one, once more, same Message-ID
    assert await attempt_after(backoff(3, base) - base) == 1  # flaky: 451 again
    assert await attempt_after(backoff(4, base)) == 1  # flaky: 250
    clock.advance(days=30)
    assert await worker.deliver_due() == 0  # nothing left to retry, ever
    await relay.stop()


def _outbox(core: Core) -> list[Outbox]:
    with Session(core.engine) as session:
        return list(session.exec(select(Outbox).order_by(col(Outbox.id))).all())


def _events(core: Core) -> list[Event]:
    kinds = ("delivery_failed", "delivery_uncertain")
    with Session(core.engine) as session:
        query = select(Event).where(col(Event.kind).in_(kinds)).order_by(col(Event.id))
        return list(session.exec(query).all())


def test_database_lost_while_recording_a_delivery_sends_nothing_twice(
    tmp_path: Path, clock: Clock
) -> None:
    port = free_port()
    database = tmp_path / "db.sqlite"
    settings = make_settings(
        tmp_path,
        f"sqlite:///{database}",
        outbound={"transport": "smtp", "port": port, "timeout": "0.5s"},
        database={"busy_timeout": "0.2s"},
    )
    relay = LockingRelay(port, database)

    async def scenario(worker: OutboxWorker) -> None:
        await relay.start()
        with contextlib.suppress(TemporaryFailure):
            await worker.deliver_due()
        assert relay.received  # the fault happened: sent, and "sent" not written
        assert outbox_states(settings.database.url) == {"pending": 1 + AGENTS}
        relay.lock.execute("ROLLBACK")  # the database is back
        for _ in range(3):
            clock.advance(minutes=5)  # past any lease
            await worker.deliver_due()
        await relay.stop()

    with build_core(settings, clock=clock) as core:
        core.intake.submit(build_mail(), "smtp")
        transport = build_transport(settings.outbound)
        asyncio.run(scenario(OutboxWorker(core.engine, transport, settings.outbound, clock)))
    relay.lock.close()
    assert outbox_states(settings.database.url) == {"sent": 1 + AGENTS}
    assert set(relay.message_ids().values()) == {1}
