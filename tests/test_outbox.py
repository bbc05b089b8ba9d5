"""The outbox worker against a real SMTP relay (aiosmtpd) that we make misbehave."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP as SMTPServer
from sqlmodel import Session, col, select

from mailticket.outbound.outbox import OutboxWorker, backoff
from mailticket.outbound.transport import MaildirTransport, SmtpTransport
from mailticket.runtime.core import Core, build_core
from mailticket.store.models import Event, Outbox
from tests.conftest import Clock, build_mail, make_settings


@dataclass
class Relay:
    """An SMTP relay whose answers to DATA are scripted: "250", "451", "550", "hang"."""

    script: list[str]
    received: list[bytes] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        answer = self.script.pop(0) if self.script else "250"
        if answer == "hang":  # the client times out; we may still have taken it
            self.received.append(envelope.original_content)
            await asyncio.sleep(5)
        if answer == "250":
            self.received.append(envelope.original_content)
        if answer in ("250", "hang"):
            return "250 OK"
        return {"451": "451 4.3.0 try later", "550": "550 5.1.1 no such user"}[answer]


@pytest.fixture
def smtp_core(tmp_path: Path, db_url: str, clock: Clock) -> Iterator[Core]:
    settings = make_settings(
        tmp_path, db_url, outbound={"transport": "smtp", "max_attempts": 3, "retry_base": "60s"}
    )
    core = build_core(settings, clock=clock)
    yield core
    core.engine.dispose()


def _rows(core: Core) -> list[Outbox]:
    with Session(core.engine) as session:
        return list(session.exec(select(Outbox).order_by(col(Outbox.id))).all())


async def _with_relay(relay: Relay, steps: Any) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTPServer(relay), "127.0.0.1", 0)
    try:
        await steps(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()


def _worker(core: Core, port: int, timeout: float = 2.0) -> OutboxWorker:
    transport = SmtpTransport(
        host="127.0.0.1", port=port, starttls=False, username=None, password=None, timeout=timeout
    )
    return OutboxWorker(core.engine, transport, core.settings.outbound, core.clock)


def test_temporary_failure_backs_off_then_delivers(smtp_core: Core, clock: Clock) -> None:
    smtp_core.intake.submit(build_mail(), "smtp")  # ack + 2 agent notifications
    relay = Relay(script=["451", "451", "451"])

    async def steps(port: int) -> None:
        worker = _worker(smtp_core, port)
        assert await worker.deliver_due() == 3
        assert await worker.deliver_due() == 0  # backing off: nothing due yet
        clock.advance(seconds=61)
        assert await worker.deliver_due() == 3

    asyncio.run(_with_relay(relay, steps))
    assert {r.state for r in _rows(smtp_core)} == {"sent"}
    assert all(r.attempts == 2 for r in _rows(smtp_core))
    assert len(relay.received) == 3


def test_a_mail_is_composed_at_its_first_delivery_and_retried_byte_for_byte(
    smtp_core: Core, clock: Clock
) -> None:
    """Intake queues a draft (composing is out of its transaction); the worker composes it
    when it first hands it over, and the row keeps those bytes: a retry sends them again."""
    smtp_core.intake.submit(build_mail(subject="Composed later"), "smtp")
    queued = _rows(smtp_core)
    assert all(row.raw == b"" and row.draft for row in queued)
    relay = Relay(script=["451", "451", "451"])
    tried: list[bytes] = []

    async def steps(port: int) -> None:
        worker = _worker(smtp_core, port)
        await worker.deliver_due()
        tried.extend(row.raw for row in _rows(smtp_core))
        clock.advance(seconds=61)
        await worker.deliver_due()

    asyncio.run(_with_relay(relay, steps))
    rows = _rows(smtp_core)
    assert all(row.draft is None and row.state == "sent" for row in rows)
    assert sorted(relay.received) == sorted(tried) == sorted(row.raw for row in rows)
    ack = next(row for row in rows if row.template == "ack")
    parsed = message_from_bytes(ack.raw, policy=policy.default)
    assert parsed["Message-ID"] == ack.message_id
    assert "[MT-1]" in parsed["Subject"] and "Composed later" in parsed["Subject"]


def test_permanent_failure_is_recorded_on_the_ticket(smtp_core: Core) -> None:
    smtp_core.intake.submit(build_mail(), "smtp")
    relay = Relay(script=["550"])

    async def steps(port: int) -> None:
        await _worker(smtp_core, port).deliver_due()

    asyncio.run(_with_relay(relay, steps))
    states = [r.state for r in _rows(smtp_core)]
    assert states == ["failed", "sent", "sent"]
    with Session(smtp_core.engine) as session:
        events = session.exec(select(Event).where(Event.kind == "delivery_failed")).all()
    assert len(events) == 1 and "550 5.1.1" in events[0].detail


def test_gives_up_after_max_attempts(smtp_core: Core, clock: Clock) -> None:
    smtp_core.intake.submit(build_mail(), "smtp", notify=True)
    relay = Relay(script=["451"] * 9)

    async def steps(port: int) -> None:
        worker = _worker(smtp_core, port)
        for _ in range(3):
            await worker.deliver_due()
            clock.advance(hours=1)

    asyncio.run(_with_relay(relay, steps))
    assert [r.state for r in _rows(smtp_core)] == ["failed"] * 3


def test_uncertain_delivery_is_retried_once_with_the_same_message_id(
    smtp_core: Core, clock: Clock
) -> None:
    smtp_core.intake.submit(build_mail(), "smtp")
    relay = Relay(script=["hang", "250", "250", "hang"])

    async def steps(port: int) -> None:
        worker = _worker(smtp_core, port, timeout=0.5)
        await worker.deliver_due()
        first = _rows(smtp_core)[0]
        assert (first.state, first.uncertain) == ("pending", 1)
        clock.advance(seconds=61)
        await worker.deliver_due()

    asyncio.run(_with_relay(relay, steps))
    ack = _rows(smtp_core)[0]
    assert (ack.state, ack.uncertain) == ("uncertain", 2)
    delivered_ids = [raw.split(b"Message-ID: ")[1].split(b"\r\n")[0] for raw in relay.received]
    assert delivered_ids.count(ack.message_id.encode()) == 2  # the same Message-ID, never a third


def _maildir_setup(tmp_path: Path, db_url: str, clock: Clock) -> tuple[Core, OutboxWorker]:
    """A core with one new ticket (three rows in the outbox) and a maildir worker."""
    core = build_core(make_settings(tmp_path, db_url), clock=clock)
    core.intake.submit(build_mail(), "smtp")
    transport = MaildirTransport(tmp_path / "outbox")
    return core, OutboxWorker(core.engine, transport, core.settings.outbound, clock)


def test_maildir_delivery_is_exactly_once_even_when_claimed_twice(
    tmp_path: Path, db_url: str, clock: Clock
) -> None:
    core, worker = _maildir_setup(tmp_path, db_url, clock)
    asyncio.run(worker.deliver_due())
    with Session(core.engine) as session:  # as if the daemon died before recording "sent"
        for row in session.exec(select(Outbox)).all():
            row.state = "pending"
            session.add(row)
        session.commit()
    asyncio.run(worker.deliver_due())
    assert len(list((tmp_path / "outbox" / "new").iterdir())) == 3
    core.engine.dispose()


def test_a_claimed_row_is_not_claimed_again_until_its_lease_ends(
    tmp_path: Path, db_url: str, clock: Clock
) -> None:
    core, worker = _maildir_setup(tmp_path, db_url, clock)
    claimed = worker.claim(10)
    assert len(claimed) == 3
    assert worker.claim(10) == []
    clock.advance(seconds=4 * 60 + 1)  # lease: (3 rows + 1) x the 60 s transport timeout
    assert len(worker.claim(10)) == 3
    core.engine.dispose()


@pytest.mark.parametrize(
    ("attempts", "expected"),
    [
        (1, timedelta(minutes=1)),
        (2, timedelta(minutes=2)),
        (4, timedelta(minutes=8)),
        (30, timedelta(hours=6)),
    ],
)
def test_backoff(attempts: int, expected: timedelta) -> None:
    assert backoff(attempts, timedelta(minutes=1)) == expected
