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
from concurrent.futures import Future
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection, bindparam, func, insert, or_, select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from mailticket import store
from mailticket.decide.states import EventKind, OutboxState
from mailticket.errors import TemporaryFailure
from mailticket.outbound.notices import Envelope, Rendered, compose, compose_draft, draft
from mailticket.outbound.outgoing import Outgoing
from mailticket.outbound.transport import Delivery, Outcome, Transport
from mailticket.runtime.batch import Unit
from mailticket.settings import OutboundSettings
from mailticket.store import EVENT, MESSAGE, OUTBOX
from mailticket.store.models import Outbox
from mailticket.units import Rate

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
) -> None:
    """Add the mail to the outbox and to the ticket's conversation, in the caller's transaction."""
    enqueue_many(session.connection(), [Outgoing(ticket_number, template, rendered, envelope)])


def message_bytes(row: Outbox) -> bytes:
    """A row's mail as it will be (or was) sent: its bytes, or its draft composed."""
    return row.raw if row.draft is None else compose_draft(row.draft)


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
        # composed at delivery, out of this transaction; a relayed file is composed now
        "raw": compose(mail.rendered, envelope, mail.attachments) if mail.attachments else b"",
        "draft": None if mail.attachments else draft(mail.rendered, envelope),
        "state": OutboxState.PENDING,
        "attempts": 0,
        "uncertain": 0,
        "next_attempt_at": mail.not_before or envelope.date,
        "created_at": envelope.date,
    }


def next_automatic_slot(connection: Connection, now: datetime, budget: Rate) -> datetime:
    """The start of the first period in which the global budget for automatic answers
    has room, counting those sent in the last period and those already scheduled."""
    query = (
        select(func.count())
        .select_from(OUTBOX)
        .where(OUTBOX.c.automatic.is_(True), OUTBOX.c.next_attempt_at > now - budget.period)
    )
    taken = int(connection.execute(query).scalar_one())
    return now + budget.period * (taken // budget.limit)


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
    draft: str | None = None  # raw is b"" until the worker composes this
    composed: bool = False  # composed for this delivery: the outcome keeps the bytes


class UnitStore(Protocol):
    """Where the worker's claims and outcomes are written: the daemon's writer thread,
    or its store process (both group-commit them with the mail)."""

    def submit_unit(self, unit: Unit[T]) -> Future[T]: ...


_DUE = (
    select(OUTBOX)
    .where(
        OUTBOX.c.state == OutboxState.PENDING,
        OUTBOX.c.next_attempt_at <= bindparam("now"),
        or_(OUTBOX.c.lease_until.is_(None), OUTBOX.c.lease_until < bindparam("now")),
    )
    .order_by(OUTBOX.c.next_attempt_at)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)
_UPDATE_ROW = update(OUTBOX).where(OUTBOX.c.id == bindparam("row"))


def claim_due(
    connection: Connection, *, now: datetime, limit: int, timeout: timedelta, claimant: str = ""
) -> list[Claimed]:
    """Lease up to ``limit`` due rows to this worker (SKIP LOCKED on PostgreSQL).

    A module-level function of picklable arguments: the store process runs it too."""
    rows = connection.execute(_DUE, {"now": now, "limit": limit}).all()
    if not rows:
        return []
    # long enough for every row of the batch to time out in turn; a crashed daemon's
    # rows come back to the others after it
    lease_until = now + timeout * (len(rows) + 1)
    leases = [
        {"row": row.id, "lease_until": lease_until, "attempts": row.attempts + 1,
         "claimed_by": claimant or None}
        for row in rows
    ]  # fmt: skip
    connection.execute(_UPDATE_ROW, leases)
    return [_claimed(row) for row in rows]


def record_outcome(
    connection: Connection,
    *,
    claimed: Claimed,
    delivery: Delivery,
    now: datetime,
    settings: OutboundSettings,
) -> str:
    """Write the outcome of one delivery; returns the row's new state (picklable, as
    ``claim_due``). A mail composed for this delivery keeps its bytes: what was sent,
    and what a retry sends again."""
    values = _outcome(claimed, delivery, now, settings)
    if claimed.composed:
        values |= {"raw": claimed.raw, "draft": None}
    connection.execute(_UPDATE_ROW, {"row": claimed.id, **values})
    state = OutboxState(values.get("state", OutboxState.PENDING))
    if state in (OutboxState.FAILED, OutboxState.UNCERTAIN) and claimed.ticket_number is not None:
        connection.execute(_INSERT_EVENT, _failure_event(claimed, state, delivery, now))
    return state


_INSERT_EVENT = insert(EVENT)


class OutboxWorker:
    def __init__(
        self,
        engine: Engine,
        transport: Transport,
        settings: OutboundSettings,
        clock: Callable[[], datetime],
        units: UnitStore | None = None,
        *,
        on_outcome: Callable[[str, str], None] = lambda state, outcome: None,
        claimant: str = "",
    ) -> None:
        self._engine = engine
        self._on_outcome = on_outcome  # (the row's new state, the transport's outcome)
        self._transport = transport
        self._settings = settings
        self._clock = clock
        self._units = units  # None: each claim and outcome in a transaction of its own
        self._wakeup = asyncio.Event()
        self.loop: asyncio.AbstractEventLoop | None = None  # set by run(), for wake-ups
        self._unrecorded: list[tuple[Claimed, Delivery]] = []  # outcomes the store refused
        self._claimant = claimant  # the daemon instance (heartbeat): its claims carry it
        self.last_round_at: datetime | None = None  # the last look at the outbox that worked

    def wake(self) -> None:
        """Called after a commit that added rows: deliver now rather than at the next tick."""
        self._wakeup.set()

    async def run(self, stop: asyncio.Event, idle: float = 2.0) -> None:
        self.loop = asyncio.get_running_loop()
        pause = idle
        while not stop.is_set():
            self._wakeup.clear()  # before the claim: a wake-up during it is not lost
            try:
                delivered = await self.deliver_due()
                self.last_round_at = self._clock()
                pause = idle
            except TemporaryFailure as exc:
                log.warning("outbox: %s; retrying in %.0fs", exc, pause)
                delivered, pause = 0, min(pause * 2, 60.0)
            if delivered:
                continue
            waiters = {
                asyncio.ensure_future(stop.wait()),
                asyncio.ensure_future(self._wakeup.wait()),
            }
            _, pending = await asyncio.wait(waiters, timeout=pause, return_when="FIRST_COMPLETED")
            for task in pending | waiters:
                task.cancel()

    async def deliver_due(self, limit: int = BATCH) -> int:
        """Claim due rows, hand each to the transport, record each outcome. Returns the count.

        With the daemon's writer or store process, an outcome is committed with the next
        batch of mail (group commit) while the next row is already being delivered:
        under a flood of mail the worker waits for one batch per claim, not one per row.
        """
        await self._record_unrecorded()
        claimed = await self._write(self._claim_unit(limit))
        recorded: list[tuple[Claimed, Delivery, asyncio.Future[str]]] = []
        for row in claimed:
            if row.draft is not None:  # its bytes fixed now, and kept with the outcome
                row = replace(row, raw=compose_draft(row.draft), draft=None, composed=True)
            delivery = await self._transport.deliver(
                key=str(row.id), sender=row.sender, recipients=row.recipients, message=row.raw
            )
            recorded.append((row, delivery, self._write(self._record_unit(row, delivery))))
            if self._units is None:
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
            self._on_outcome(outcome, delivery.outcome.value)
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
            await self._write(self._record_unit(row, delivery))  # TemporaryFailure: kept
            self._unrecorded.pop(0)

    def claim(self, limit: int) -> list[Claimed]:
        """``claim_due`` now, in a transaction of its own."""
        return _alone(self._engine, self._claim_unit(limit))

    def _claim_unit(self, limit: int) -> Unit[list[Claimed]]:
        timeout = self._settings.timeout
        work = partial(
            claim_due, now=self._clock(), limit=limit, timeout=timeout, claimant=self._claimant
        )
        return Unit(work, _reraise)

    def _record_unit(self, claimed: Claimed, delivery: Delivery) -> Unit[str]:
        work = partial(
            record_outcome,
            claimed=claimed,
            delivery=delivery,
            now=self._clock(),
            settings=self._settings,
        )
        return Unit(work, _reraise)

    def _write(self, unit: Unit[T]) -> asyncio.Future[T]:
        if self._units is not None:
            return asyncio.wrap_future(self._units.submit_unit(unit))
        return asyncio.get_running_loop().run_in_executor(None, _alone, self._engine, unit)


def _alone(engine: Engine, unit: Unit[T]) -> T:
    with store.core_transaction(engine) as connection:
        return unit.run(connection)


def _reraise(connection: Connection, error: Exception) -> Any:
    raise error


def _claimed(row: Any) -> Claimed:
    extra = tuple(a for a in row.extra_recipients.split(",") if a)
    return Claimed(
        row.id, row.sender, (row.recipient, *extra), row.raw, row.message_id,
        row.template, row.ticket_number, row.attempts + 1, row.uncertain, row.draft,
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
        values |= {"state": OutboxState.SENT, "sent_at": now}
    elif delivery.outcome is Outcome.PERMANENT:
        values["state"] = OutboxState.FAILED
    elif delivery.outcome is Outcome.UNCERTAIN:
        uncertain = claimed.uncertain + 1
        values |= {
            "uncertain": uncertain,
            "state": OutboxState.UNCERTAIN if uncertain > 1 else OutboxState.PENDING,
            "next_attempt_at": now + settings.retry_base,
        }
    elif claimed.attempts >= settings.max_attempts:
        values["state"] = OutboxState.FAILED
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
    verb = "could not be confirmed" if state == OutboxState.UNCERTAIN else OutboxState.FAILED
    what = f"{claimed.template} to {claimed.recipients[0]}"
    return {
        "ticket_number": claimed.ticket_number,
        "at": now,
        "kind": EventKind.DELIVERY_FAILED
        if state == OutboxState.FAILED
        else EventKind.DELIVERY_UNCERTAIN,
        "detail": f"{what} {verb} after {claimed.attempts} attempt(s): {delivery.detail}",
        "message_id": claimed.message_id,
        "rules_version": None,
    }
