"""The durable outbox: rows written with the change that caused them, delivered later.

Every daemon may run a worker: a row is claimed with a lease (and SKIP LOCKED on
PostgreSQL), so two workers never hand the same mail to the transport at once.
Temporary failures back off exponentially up to ``max_attempts``; an uncertain delivery
(timeout after DATA) is retried once with the same Message-ID, then reported.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy.engine import Engine
from sqlmodel import Session

from mailticket import store
from mailticket.errors import TemporaryFailure
from mailticket.models import Event, Message, Outbox
from mailticket.notices import Envelope, Rendered, compose
from mailticket.settings import OutboundSettings
from mailticket.transport import Delivery, Outcome, Transport

log = logging.getLogger(__name__)
T = TypeVar("T")
BATCH = 10
MAX_BACKOFF = timedelta(hours=6)


def enqueue(
    session: Session,
    *,
    ticket_number: int | None,
    template: str,
    rendered: Rendered,
    envelope: Envelope,
) -> Outbox:
    """Add the mail to the outbox and to the ticket's conversation, in the caller's transaction."""
    row = Outbox(
        ticket_number=ticket_number,
        template=template,
        message_id=envelope.message_id,
        sender=envelope.sender,
        recipient=envelope.to,
        extra_recipients=",".join(envelope.cc),
        automatic=envelope.auto_submitted == "auto-replied",
        raw=compose(rendered, envelope),
        next_attempt_at=envelope.date,
        created_at=envelope.date,
    )
    session.add(row)
    if ticket_number is not None:
        session.add(
            Message(
                ticket_number=ticket_number,
                direction="out",
                kind=template,
                message_id=envelope.message_id,
                from_addr=envelope.sender,
                to_addrs=",".join((envelope.to, *envelope.cc)),
                subject=rendered.subject,
                date=envelope.date,
                text=rendered.text,
            )
        )
    return row


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    sender: str
    recipients: tuple[str, ...]
    raw: bytes
    message_id: str


class OutboxWorker:
    def __init__(
        self,
        engine: Engine,
        transport: Transport,
        settings: OutboundSettings,
        clock: Callable[[], datetime],
        executor: Executor | None = None,
    ) -> None:
        self._engine = engine
        self._transport = transport
        self._settings = settings
        self._clock = clock
        self._executor = executor  # the daemon's single SQLite writer, or None: any thread
        self._wakeup = asyncio.Event()
        self.loop: asyncio.AbstractEventLoop | None = None  # set by run(), for wake-ups

    async def _in_thread(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    def wake(self) -> None:
        """Called after a commit that added rows: deliver now rather than at the next tick."""
        self._wakeup.set()

    async def run(self, stop: asyncio.Event, idle: float = 2.0) -> None:
        self.loop = asyncio.get_running_loop()
        pause = idle
        while not stop.is_set():
            try:
                delivered = await self.deliver_due()
                pause = idle
            except TemporaryFailure as exc:
                log.warning("outbox: %s; retrying in %.0fs", exc, pause)
                delivered, pause = 0, min(pause * 2, 60.0)
            if delivered:
                continue
            self._wakeup.clear()
            waiters = {
                asyncio.ensure_future(stop.wait()),
                asyncio.ensure_future(self._wakeup.wait()),
            }
            _, pending = await asyncio.wait(waiters, timeout=pause, return_when="FIRST_COMPLETED")
            for task in pending | waiters:
                task.cancel()

    async def deliver_due(self, limit: int = BATCH) -> int:
        """Claim due rows, hand each to the transport, record each outcome. Returns the count."""
        claimed = await self._in_thread(self.claim, limit)
        for row in claimed:
            delivery = await self._transport.deliver(
                key=str(row.id), sender=row.sender, recipients=row.recipients, message=row.raw
            )
            await self._in_thread(self._record, row, delivery)
        return len(claimed)

    def claim(self, limit: int) -> list[Claimed]:
        """Lease up to ``limit`` due rows to this worker (SKIP LOCKED on PostgreSQL)."""
        now = self._clock()
        with store.transaction(self._engine) as session:
            rows = store.due_outbox(session, now, limit)
            # long enough for every row of the batch to time out in turn; a crashed
            # daemon's rows come back to the others after it
            lease = self._settings.timeout * (len(rows) + 1)
            for row in rows:
                row.lease_until = now + lease
                row.attempts += 1
                session.add(row)
            return [_claimed(row) for row in rows]

    def _record(self, claimed: Claimed, delivery: Delivery) -> None:
        now = self._clock()
        with store.transaction(self._engine) as session:
            row = session.get(Outbox, claimed.id)
            if row is None:
                return
            _apply_outcome(row, delivery, now, self._settings)
            row.lease_until = None
            session.add(row)
            if row.state in ("failed", "uncertain") and row.ticket_number is not None:
                session.add(_failure_event(row, delivery, now))
        log.info(
            "outbox %s %s -> %s: %s",
            claimed.message_id,
            claimed.recipients,
            row.state,
            delivery.detail,
        )


def _claimed(row: Outbox) -> Claimed:
    extra = tuple(a for a in row.extra_recipients.split(",") if a)
    assert row.id is not None
    return Claimed(row.id, row.sender, (row.recipient, *extra), row.raw, row.message_id)


def _apply_outcome(
    row: Outbox, delivery: Delivery, now: datetime, settings: OutboundSettings
) -> None:
    row.last_error = None if delivery.outcome is Outcome.SENT else delivery.detail
    if delivery.outcome is Outcome.SENT:
        row.state, row.sent_at = "sent", now
    elif delivery.outcome is Outcome.PERMANENT:
        row.state = "failed"
    elif delivery.outcome is Outcome.UNCERTAIN:
        row.uncertain += 1
        row.state = "uncertain" if row.uncertain > 1 else "pending"
        row.next_attempt_at = now + settings.retry_base
    elif row.attempts >= settings.max_attempts:
        row.state = "failed"
    else:
        row.next_attempt_at = now + backoff(row.attempts, settings.retry_base)


def backoff(attempts: int, base: timedelta) -> timedelta:
    """base, 2*base, 4*base, ... capped at six hours."""
    delay: timedelta = base * (2 ** max(attempts - 1, 0))
    return min(delay, MAX_BACKOFF)


def _failure_event(row: Outbox, delivery: Delivery, now: datetime) -> Event:
    assert row.ticket_number is not None
    verb = "could not be confirmed" if row.state == "uncertain" else "failed"
    return Event(
        ticket_number=row.ticket_number,
        at=now,
        kind="delivery_failed" if row.state == "failed" else "delivery_uncertain",
        detail=f"{row.template} to {row.recipient} {verb} after {row.attempts} attempt(s): {delivery.detail}",
        message_id=row.message_id,
    )
