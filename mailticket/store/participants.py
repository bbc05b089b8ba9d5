"""Who is on a ticket: the requester and the Cc participants its answers go to."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import BindParameter, Connection, bindparam, delete, insert, select

from mailticket.decide.states import EventKind
from mailticket.store import PARTICIPANT
from mailticket.store.ticket_log import event

_NUMBER: BindParameter[int] = bindparam("number")
_INSERT_PARTICIPANT = insert(PARTICIPANT)
_PARTICIPANTS = (
    select(PARTICIPANT.c.address)
    .where(PARTICIPANT.c.ticket_number == _NUMBER)
    .order_by(PARTICIPANT.c.address)
)


def participants(connection: Connection, number: int) -> list[str]:
    return list(connection.execute(_PARTICIPANTS, {"number": number}).scalars())


def add_participants(
    connection: Connection, number: int, wanted: Iterable[tuple[str, str]], known: Iterable[str]
) -> list[str]:
    """Add the addresses not yet known; returns those added."""
    seen = set(known)
    rows: list[dict[str, Any]] = []
    for address, role in wanted:
        if address and address not in seen:
            seen.add(address)
            rows.append({"ticket_number": number, "address": address, "role": role})
    if rows:
        connection.execute(_INSERT_PARTICIPANT, rows)
    return [row["address"] for row in rows]


_REMOVE_PARTICIPANT = delete(PARTICIPANT).where(
    PARTICIPANT.c.ticket_number == bindparam("ticket"),
    PARTICIPANT.c.address == bindparam("address"),
    PARTICIPANT.c.role != "requester",
)


def participant_events(
    connection: Connection,
    number: int,
    added: Sequence[str],
    removed: Sequence[str],
    why: str,
    now: datetime,
) -> list[dict[str, Any]]:
    """Add and remove Cc participants; one log row per change (who may now read the
    ticket's answers is never changed silently)."""
    events = []
    known = participants(connection, number)
    for address in add_participants(connection, number, [(a, "cc") for a in added], known):
        events.append(event(number, EventKind.PARTICIPANT, f"+{address}: {why}", now))
    for address in removed:
        gone = connection.execute(_REMOVE_PARTICIPANT, {"ticket": number, "address": address})
        if gone.rowcount:
            events.append(event(number, EventKind.PARTICIPANT, f"-{address}: {why}", now))
    return events
