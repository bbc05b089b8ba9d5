"""Read-only views of the store for the CLI: the JSON shapes of the contract."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlmodel import Session, col, func, select
from sqlmodel.sql.expression import SelectOfScalar

from mailticket import store
from mailticket.decide.secret_scan import mask_secrets
from mailticket.decide.ticket_state import fields_of
from mailticket.store.models import Attachment, Event, Inbound, Message, Outbox, Ticket


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def ticket_summary(ticket: Ticket, prefix: str, *, raw: bool = False) -> dict[str, Any]:
    """``raw`` shows private keys and recovery phrases a requester sent; else they are masked."""
    shown = _shown(raw)
    return {
        "number": ticket.number,
        "tag": f"{prefix}-{ticket.number}",
        "subject": shown(ticket.subject),
        "status": ticket.status,
        "priority": ticket.priority,
        "queue": ticket.queue,
        "requester": ticket.requester,
        "assignee": ticket.assignee,
        "tags": ticket.tags.split(),
        "linked_to": ticket.linked_to,
        "created_at": iso(ticket.created_at),
        "updated_at": iso(ticket.updated_at),
        "due_at": iso(ticket.due_at),
    }


def ticket_detail(
    session: Session, ticket: Ticket, prefix: str, *, raw: bool = False
) -> dict[str, Any]:
    messages = session.exec(
        select(Message).where(Message.ticket_number == ticket.number).order_by(col(Message.id))
    ).all()
    events = session.exec(
        select(Event).where(Event.ticket_number == ticket.number).order_by(col(Event.id))
    ).all()
    shown = _shown(raw)
    files = _files([m.id for m in messages if m.id is not None], session)
    return {
        **ticket_summary(ticket, prefix, raw=raw),
        "due_derivation": ticket.due_derivation or None,
        "fields": fields_of(ticket.fields),  # extracted from the masked mail: nothing to hide
        "messages": [_message(m, shown, files.get(m.id or 0, [])) for m in messages],
        "events": [_event(e) for e in events],
    }


def _shown(raw: bool) -> Callable[[str], str]:
    return str if raw else mask_secrets


def _files(message_rows: Sequence[int], session: Session) -> dict[int, list[dict[str, Any]]]:
    """The attachments of those messages, by message row; their content is not read."""
    if not message_rows:
        return {}
    table = store.ATTACHMENT
    query = (
        sa.select(table.c.id, table.c.message_row, table.c.filename, table.c.content_type,
                  table.c.size, table.c.content.is_not(None))
        .where(table.c.message_row.in_(message_rows))
        .order_by(table.c.id)
    )  # fmt: skip
    files: dict[int, list[dict[str, Any]]] = {}
    for row_id, message_row, filename, content_type, size, is_kept in session.connection().execute(
        query
    ):
        files.setdefault(message_row, []).append(
            {"id": row_id, "filename": filename, "content_type": content_type,
             "size": size, "kept": bool(is_kept)}
        )  # fmt: skip
    return files


def attachment(session: Session, number: int, attachment_id: int) -> Attachment | None:
    """Attachment ``attachment_id`` when it belongs to a message of ticket ``number``."""
    query = (
        select(Attachment)
        .join(Message, col(Message.id) == col(Attachment.message_row))
        .where(Attachment.id == attachment_id, Message.ticket_number == number)
    )
    return session.exec(query).first()


def _message(
    message: Message, shown: Callable[[str], str], files: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "direction": message.direction,
        "kind": message.kind,
        "from": message.from_addr,
        "to": [a for a in message.to_addrs.split(",") if a],
        "subject": shown(message.subject),
        "message_id": message.message_id,
        "date": iso(message.date),
        "text": shown(message.text),
        "lossy": message.lossy,
        "attachments": files,
    }


def _event(event: Event) -> dict[str, Any]:
    return {
        "at": iso(event.at),
        "kind": event.kind,
        "detail": event.detail,
        "message_id": event.message_id,
        "rules_version": event.rules_version,
    }


Row = TypeVar("Row")


@dataclass(frozen=True, slots=True)
class ListWindow:
    """Which rows of a list: from ``offset``, at most ``limit`` (None: every row)."""

    offset: int = 0
    limit: int | None = 500

    def of(self, query: SelectOfScalar[Row]) -> SelectOfScalar[Row]:
        return query.offset(self.offset).limit(self.limit)


@dataclass(frozen=True, slots=True)
class Page:
    """The rows a list shows, and how many there are in all."""

    rows: list[dict[str, Any]]
    total: int
    offset: int = 0

    def cut(self) -> str | None:
        """What the list leaves out, and how to see it; None when it shows every row.

        ``showing 500 of 1234: --all or --offset 500 for more``"""
        end = self.offset + len(self.rows)
        if self.offset == 0 and end >= self.total:
            return None
        shown = f"{self.offset + 1}-{end}" if self.offset and self.rows else str(len(self.rows))
        more = f"--all or --offset {end} for more" if end < self.total else "--all for every row"
        return f"showing {shown} of {self.total}: {more}"


def ticket_page(
    session: Session, prefix: str, window: ListWindow, *, status: str | None, queue: str | None
) -> Page:
    """Tickets, newest first."""
    found = store.list_tickets(
        session, status=status, queue=queue, offset=window.offset, limit=window.limit
    )
    return Page(
        [ticket_summary(t, prefix) for t in found],
        store.ticket_count(session, status=status, queue=queue),
        window.offset,
    )


def outbox_page(session: Session, window: ListWindow) -> Page:
    """Outgoing mail, newest first."""
    rows = session.exec(window.of(select(Outbox).order_by(col(Outbox.id).desc()))).all()
    return Page([_outbox_row(row) for row in rows], _count(session, Outbox), window.offset)


def _outbox_row(row: Outbox) -> dict[str, Any]:
    return {
        "id": row.id,
        "ticket": row.ticket_number,
        "template": row.template,
        "to": row.recipient,
        "message_id": row.message_id,
        "state": row.state,
        "attempts": row.attempts,
        "next_attempt_at": iso(row.next_attempt_at),
        "last_error": row.last_error,
    }


def quarantine_page(session: Session, window: ListWindow) -> Page:
    """Quarantined mail, oldest first (dropped mail is no longer listed)."""
    waiting = Inbound.state == "quarantined"
    query = select(Inbound).where(waiting).order_by(col(Inbound.id))
    return Page(
        [_quarantined_row(row) for row in session.exec(window.of(query)).all()],
        _count(session, Inbound, waiting),
        window.offset,
    )


def _quarantined_row(row: Inbound) -> dict[str, Any]:
    return {
        "id": row.id,
        "message_id": row.message_id,
        "source": row.source,
        "received_at": iso(row.received_at),
        "error": row.error,
        "bytes": len(row.raw),
    }


def _count(session: Session, model: Any, *where: Any) -> int:
    return int(session.exec(select(func.count()).select_from(model).where(*where)).one())


def counts(session: Session, column: Any, model: Any) -> dict[str, int]:
    query = select(column, func.count()).select_from(model).group_by(column)
    return {str(key): int(value) for key, value in session.exec(query).all()}


def overdue(session: Session, now: datetime) -> int:
    query = (
        select(func.count())
        .select_from(Ticket)
        .where(
            col(Ticket.due_at) < now,
            col(Ticket.first_response_at).is_(None),
            col(Ticket.status).in_(["new", "open"]),
        )
    )
    return int(session.exec(query).one())


def outbox_ids(session: Session, states: Sequence[str]) -> list[int]:
    query = select(Outbox.id).where(col(Outbox.state).in_(list(states)))
    return [i for i in session.exec(query).all() if i is not None]
