"""The durable outbox: rows written with the change that caused them, delivered later.

Every daemon may run a worker: a row is claimed with a lease (and SKIP LOCKED on
PostgreSQL), so two workers never hand the same mail to the transport at once.
Temporary failures back off exponentially up to ``max_attempts``; an uncertain delivery
(timeout after DATA) is retried once with the same Message-ID, then reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import Connection, bindparam, insert, update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from mailticket import store
from mailticket.batch import Unit
from mailticket.errors import TemporaryFailure
from mailticket.models import Outbox
from mailticket.notices import Envelope, Rendered, compose
from mailticket.settings import OutboundSettings
from mailticket.store import EVENT, MESSAGE, OUTBOX
from mailticket.transport import Delivery, Outcome, Transport
from mailticket.writer import Writer

log = logging.getLogger(__name__)
T = TypeVar("T")
BATCH = 10
MAX_BACKOFF = timedelta(hours=6)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One mail to send: rendered, addressed, its Message-ID fixed."""

    ticket_number: int | None
    template: str
    rendered: Rendered
    envelope: Envelope
    attachments: tuple[tuple[str, str, bytes], ...] = ()  # (filename, content type, bytes)


def enqueue(
    session: Session,
    *,
    ticket_number: int | None,
    template: str,
    rendered: Rendered,
    envelope: Envelope,
) -> None:
    """Add the mail to the outbox and to the ticket's conversation, in the caller's transaction."""
    enqueue_many(session.connection(), [Outgoing(ticket_number, template, rendered, envelope)])


_INSERT_OUTBOX, _INSERT_MESSAGE = insert(OUTBOX), insert(MESSAGE)  # built once (see store)


def enqueue_many(connection: Connection, mails: Sequence[Outgoing]) -> None:
    """``enqueue`` for several mails: one INSERT each for the outbox and the conversation."""
    if not mails:
        return
    connection.execute(_INSERT_OUTBOX, [_outbox_row(mail) for mail in mails])
    conversation = [_message_row(mail) for mail in mails if mail.ticket_number is not None]
    if conversation:
        connection.execute(_INSERT_MESSAGE, conversation)


def _outbox_row(mail: Outgoing) -> dict[str, Any]:
    envelope = mail.envelope
    return {
        "ticket_number": mail.ticket_number,
        "template": mail.template,
        "message_id": envelope.message_id,
        "sender": envelope.sender,
        "recipient": envelope.to,
        "extra_recipients": ",".join(envelope.cc),
        "automatic": envelope.auto_submitted == "auto-replied",
        "raw": compose(mail.rendered, envelope, mail.attachments),
        "state": "pending",
        "attempts": 0,
        "uncertain": 0,
        "next_attempt_at": envelope.date,
        "created_at": envelope.date,
    }


def _message_row(mail: Outgoing) -> dict[str, Any]:
    envelope = mail.envelope
    return {
        "ticket_number": mail.ticket_number,
        "direction": "out",
        "kind": mail.template,
        "message_id": envelope.message_id,
        "from_addr": envelope.sender,
        "to_addrs": ",".join((envelope.to, *envelope.cc)),
        "subject": mail.rendered.subject,
        "date": envelope.date,
        "text": mail.rendered.text,
        "html": "",
        "lossy": False,
        "inbound_id": None,
    }


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    sender: str
    recipients: tuple[str, ...]
    raw: bytes
    message_id: str
    template: str
    ticket_number: int | None
    attempts: int  # counting this one
    uncertain: int


_UPDATE_ROW = update(OUTBOX).where(OUTBOX.c.id == bindparam("row"))


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
        self._unrecorded: list[tuple[Claimed, Delivery]] = []  # outcomes the store refused

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
        """Claim due rows, hand each to the transport, record each outcome. Returns the count.

        With the daemon's writer, an outcome is committed with the next batch of mail
        (group commit) while the next row is already being delivered: under a flood of
        mail the worker waits for one batch per claim, not one per row.
        """
        await self._record_unrecorded()
        claimed = await self._in_thread(self.claim, limit)
        recorded: list[tuple[Claimed, Delivery, asyncio.Future[str]]] = []
        for row in claimed:
            delivery = await self._transport.deliver(
                key=str(row.id), sender=row.sender, recipients=row.recipients, message=row.raw
            )
            recorded.append((row, delivery, self._record_later(row, delivery)))
            if not isinstance(self._executor, Writer):
                with contextlib.suppress(TemporaryFailure):  # kept below
                    await recorded[-1][2]  # one transaction at a time
        failure: TemporaryFailure | None = None
        for row, delivery, state in recorded:
            try:
                outcome = await state
            except TemporaryFailure as exc:  # delivered, but the store is down: keep the outcome
                self._unrecorded.append((row, delivery))
                failure = failure or exc
                continue
            log.info(
                "outbox %s %s -> %s: %s", row.message_id, row.recipients, outcome, delivery.detail
            )
        if failure is not None:
            raise failure
        return len(claimed)

    async def _record_unrecorded(self) -> None:
        """Outcomes learnt while the store was down, written before anything is claimed,
        so a mail the relay took is not handed to it again when its lease ends."""
        while self._unrecorded:
            row, delivery = self._unrecorded[0]
            await self._record_later(row, delivery)  # TemporaryFailure: still down, kept
            self._unrecorded.pop(0)

    def _record_later(self, claimed: Claimed, delivery: Delivery) -> asyncio.Future[str]:
        if isinstance(self._executor, Writer):
            unit = Unit(partial(self._record_on, claimed, delivery), _reraise)
            return asyncio.wrap_future(self._executor.submit_unit(unit))
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._executor, self._record, claimed, delivery)

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

    def _record(self, claimed: Claimed, delivery: Delivery) -> str:
        """The outcome in a transaction of its own; returns the row's new state."""
        with store.core_transaction(self._engine) as connection:
            return self._record_on(claimed, delivery, connection)

    def _record_on(self, claimed: Claimed, delivery: Delivery, connection: Connection) -> str:
        """Write the outcome (in the writer's batch, or in ``_record``'s transaction)."""
        now = self._clock()
        values = _outcome(claimed, delivery, now, self._settings)
        connection.execute(_UPDATE_ROW, {"row": claimed.id, **values})
        state: str = values.get("state", "pending")
        if state in ("failed", "uncertain") and claimed.ticket_number is not None:
            connection.execute(insert(EVENT), _failure_event(claimed, state, delivery, now))
        return state


def _reraise(connection: Connection, error: Exception) -> str:
    raise error


def _claimed(row: Outbox) -> Claimed:
    extra = tuple(a for a in row.extra_recipients.split(",") if a)
    assert row.id is not None
    return Claimed(
        row.id, row.sender, (row.recipient, *extra), row.raw, row.message_id,
        row.template, row.ticket_number, row.attempts, row.uncertain,
    )  # fmt: skip


def _outcome(
    claimed: Claimed, delivery: Delivery, now: datetime, settings: OutboundSettings
) -> dict[str, Any]:
    """The row's new values after this delivery (it is leased to us: nobody else writes it)."""
    values: dict[str, Any] = {
        "lease_until": None,
        "last_error": None if delivery.outcome is Outcome.SENT else delivery.detail,
    }
    if delivery.outcome is Outcome.SENT:
        values |= {"state": "sent", "sent_at": now}
    elif delivery.outcome is Outcome.PERMANENT:
        values["state"] = "failed"
    elif delivery.outcome is Outcome.UNCERTAIN:
        uncertain = claimed.uncertain + 1
        values |= {
            "uncertain": uncertain,
            "state": "uncertain" if uncertain > 1 else "pending",
            "next_attempt_at": now + settings.retry_base,
        }
    elif claimed.attempts >= settings.max_attempts:
        values["state"] = "failed"
    else:
        values["next_attempt_at"] = now + backoff(claimed.attempts, settings.retry_base)
    return values


def backoff(attempts: int, base: timedelta) -> timedelta:
    """base, 2*base, 4*base, ... capped at six hours."""
    delay: timedelta = base * (2 ** max(attempts - 1, 0))
    return min(delay, MAX_BACKOFF)


def _failure_event(
    claimed: Claimed, state: str, delivery: Delivery, now: datetime
) -> dict[str, Any]:
    verb = "could not be confirmed" if state == "uncertain" else "failed"
    what = f"{claimed.template} to {claimed.recipients[0]}"
    return {
        "ticket_number": claimed.ticket_number,
        "at": now,
        "kind": "delivery_failed" if state == "failed" else "delivery_uncertain",
        "detail": f"{what} {verb} after {claimed.attempts} attempt(s): {delivery.detail}",
        "message_id": claimed.message_id,
        "rules_version": None,
    }
