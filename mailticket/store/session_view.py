"""What decide() may read of the store (its StoreView), over the intake's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import BindParameter, Connection, bindparam, func, select
from sqlmodel import Session

from mailticket import store
from mailticket.decide.decision_parts import GuardHistory, GuardWindows, Pending, TicketFacts
from mailticket.decide.states import EventKind, TicketStatus
from mailticket.store import EVENT, MESSAGE, TICKET
from mailticket.store.participants import participants


class SessionView:
    """The read-only StoreView that decide() uses, over an open session.

    With ``lock`` (intake) a ticket is read ``FOR UPDATE``: the decision is made on the
    state that the same transaction then changes, even with several daemons.
    """

    def __init__(self, session: Session | Connection, *, lock: bool = False) -> None:
        self._session = store.connection_of(session)
        self._lock = lock

    def ticket(self, number: int) -> TicketFacts | None:
        query = _TICKET_FACTS_LOCKED if self._lock else _TICKET_FACTS
        connection = self._session
        row = connection.execute(query, {"number": number}).first()
        if row is None:
            return None
        found = participants(connection, number)
        return TicketFacts(
            number=number,
            status=TicketStatus(row.status),
            queue=row.queue,
            requester=row.requester,
            participants=frozenset(found),
            closed_at=row.closed_at,
            assignee=row.assignee,
            priority=row.priority,
            cc=tuple(address for address in found if address != row.requester),
            tags=tuple(row.tags.split()),
        )

    def requester_of(self, number: int) -> str | None:
        found: str | None = self._session.execute(_REQUESTER, {"number": number}).scalar()
        return found

    def ticket_for_message_ids(self, message_ids: Sequence[str]) -> int | None:
        return store.ticket_for_message_ids(self._session, message_ids)

    def undeliverable(self, address: str, now: datetime) -> bool:
        return store.undeliverable_until(self._session, address, now) is not None

    def guard_history(
        self, address: str, ticket: int | None, now: datetime, windows: GuardWindows
    ) -> GuardHistory:
        return store.guard_history(self._session, address, ticket, now, windows)

    def received_on_ticket(self, number: int, since: datetime, limit: int) -> int:
        values = {"number": number, "since": since, "limit": limit}
        return int(self._session.execute(_RECEIVED_ON_TICKET, values).scalar_one())

    def opened_by(self, address: str, since: datetime, limit: int) -> int:
        values = {"address": address, "since": since, "limit": limit}
        return int(self._session.execute(_OPENED_BY, values).scalar_one())

    def pending_confirmation(self, number: int, message_ids: Sequence[str]) -> Pending | None:
        """The unverified mail an agent_confirm request among ``message_ids`` asked about,
        unless a reply has applied it already."""
        if not message_ids:
            return None
        values = {"number": number, "ids": list(message_ids)}
        for request_id, original in self._session.execute(_CONFIRM_REQUESTS, values):
            if self._session.execute(_CONFIRMED, {"number": number, "id": request_id}).first():
                continue
            found = self._session.execute(_UNVERIFIED, {"number": number, "id": original}).first()
            if found is not None:
                recipients = tuple(filter(None, (found.to_addrs or "").split(",")))
                return Pending(request_id, original, found.text, recipients)
        return None


# Statements built once (see ``store``): intake runs them for every mail.
_NUMBER: BindParameter[int] = bindparam("number")
_TICKET_FACTS = select(
    TICKET.c.status,
    TICKET.c.queue,
    TICKET.c.requester,
    TICKET.c.closed_at,
    TICKET.c.assignee,
    TICKET.c.priority,
    TICKET.c.tags,
).where(TICKET.c.number == _NUMBER)
_TICKET_FACTS_LOCKED = _TICKET_FACTS.with_for_update()
_REQUESTER = select(TICKET.c.requester).where(TICKET.c.number == _NUMBER)
_SINCE: BindParameter[datetime] = bindparam("since")
_LIMIT: BindParameter[int] = bindparam("limit")
_RECEIVED_ON_TICKET = select(func.count()).select_from(  # by the time we received them
    select(EVENT.c.id)
    .where(
        EVENT.c.ticket_number == _NUMBER, EVENT.c.kind == EventKind.RECEIVED, EVENT.c.at >= _SINCE
    )
    .limit(_LIMIT)
    .subquery()
)
_OPENED_BY = select(func.count()).select_from(
    select(TICKET.c.number)
    .where(TICKET.c.requester == bindparam("address"), TICKET.c.created_at >= _SINCE)
    .limit(_LIMIT)
    .subquery()
)
_CONFIRM_REQUESTS = (
    select(EVENT.c.message_id, EVENT.c.detail)
    .where(
        EVENT.c.ticket_number == _NUMBER,
        EVENT.c.kind == EventKind.CONFIRM_REQUESTED,
        EVENT.c.message_id.in_(bindparam("ids", expanding=True)),
    )
    .order_by(EVENT.c.id.desc())
)
_CONFIRMED = select(EVENT.c.id).where(
    EVENT.c.ticket_number == _NUMBER,
    EVENT.c.kind == EventKind.CONFIRMED,
    EVENT.c.message_id == bindparam("id"),
)
_UNVERIFIED = select(MESSAGE.c.text, MESSAGE.c.to_addrs).where(
    MESSAGE.c.ticket_number == _NUMBER,
    MESSAGE.c.message_id == bindparam("id"),
    MESSAGE.c.kind == "unverified",
)
