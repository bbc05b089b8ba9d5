"""Write a Decision to the store: tickets, conversation, events, outbox rows.

Runs inside the caller's transaction; nothing here commits.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session, select

from mailticket import store
from mailticket.decision import Decision, TicketFacts
from mailticket.mail import InboundMail
from mailticket.models import (
    Attachment,
    Event,
    Inbound,
    Message,
    Participant,
    Ticket,
    Undeliverable,
)
from mailticket.threads import clean_subject


class SessionView:
    """The read-only StoreView that decide() uses, over an open session."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def ticket(self, number: int) -> TicketFacts | None:
        row = self._session.get(Ticket, number)
        if row is None:
            return None
        addresses = self._session.exec(
            select(Participant.address).where(Participant.ticket_number == number)
        ).all()
        return TicketFacts(
            number=number,
            status=row.status,
            queue=row.queue,
            requester=row.requester,
            participants=frozenset(addresses),
            closed_at=row.closed_at,
        )

    def ticket_for_message_ids(self, message_ids: Sequence[str]) -> int | None:
        return store.ticket_for_message_ids(self._session, message_ids)

    def auto_replies_since(self, address: str, since: datetime) -> int:
        return store.auto_replies_since(self._session, address, since)

    def undeliverable(self, address: str, now: datetime) -> bool:
        return store.undeliverable_until(self._session, address, now) is not None


def open_ticket(
    session: Session, mail: InboundMail, decision: Decision, prefix: str, now: datetime
) -> Ticket:
    routing = decision.routing
    assert routing is not None
    ticket = Ticket(
        subject=clean_subject(mail.subject, prefix) or "(no subject)",
        status="closed" if routing.drop else "new",
        priority=routing.priority,
        queue=routing.queue,
        requester=mail.from_addr,
        assignee=routing.assignee,
        tags=" ".join(routing.tags),
        language=mail.language,
        linked_to=decision.linked_to,
        created_at=now,
        updated_at=now,
        closed_at=now if routing.drop else None,
        fields=json.dumps(dict(routing.fields), ensure_ascii=False),
    )
    session.add(ticket)
    session.flush()
    assert ticket.number is not None
    _add_participants(session, ticket.number, mail, requester=mail.from_addr)
    return ticket


def _add_participants(
    session: Session, number: int, mail: InboundMail, *, requester: str | None
) -> None:
    known = set(
        session.exec(select(Participant.address).where(Participant.ticket_number == number)).all()
    )
    wanted = [(requester, "requester")] if requester else []
    wanted += [(address, "cc") for address in mail.cc]
    for address, role in wanted:
        if address and address not in known:
            known.add(address)
            session.add(Participant(ticket_number=number, address=address, role=role))


def store_inbound(
    session: Session,
    mail: InboundMail,
    source: str,
    now: datetime,
    *,
    state: str,
    ticket_number: int | None,
    error: str | None = None,
) -> Inbound:
    row = Inbound(
        dedupe_key=mail.dedupe_key,
        message_id=mail.message_id,
        sha256=mail.sha256,
        source=source,
        received_at=now,
        state=state,
        error=error,
        ticket_number=ticket_number,
        raw=mail.raw,
    )
    session.add(row)
    session.flush()
    return row


def add_message(
    session: Session, ticket: Ticket, mail: InboundMail, kind: str, inbound_id: int, now: datetime
) -> Message:
    assert ticket.number is not None
    message = Message(
        ticket_number=ticket.number,
        direction="in",
        kind=kind,
        message_id=mail.message_id,
        from_addr=mail.from_addr,
        to_addrs=",".join((*mail.to, *mail.cc)),
        subject=_no_nul(mail.subject),
        date=mail.date or now,
        text=_no_nul(mail.text),
        html=_no_nul(mail.html),
        lossy=mail.lossy,
        inbound_id=inbound_id,
    )
    session.add(message)
    session.flush()
    assert message.id is not None
    for part in mail.attachments:
        session.add(
            Attachment(
                message_row=message.id,
                filename=part.filename,
                content_type=part.content_type,
                size=part.size,
                content=part.content,
            )
        )
    if kind in ("reply", "request") and ticket.number is not None:
        _add_participants(session, ticket.number, mail, requester=None)
    return message


def log_event(
    session: Session,
    ticket_number: int,
    kind: str,
    detail: str,
    now: datetime,
    *,
    message_id: str | None = None,
    rules_version: str | None = None,
) -> None:
    session.add(
        Event(
            ticket_number=ticket_number,
            at=now,
            kind=kind,
            detail=detail,
            message_id=message_id,
            rules_version=rules_version,
        )
    )


def set_status(session: Session, ticket: Ticket, status: str, now: datetime, why: str) -> None:
    if ticket.status == status:
        return
    assert ticket.number is not None
    log_event(session, ticket.number, "status", f"{ticket.status} -> {status}: {why}", now)
    ticket.status = status
    if status == "closed":
        ticket.closed_at = now
    elif status == "resolved":
        ticket.resolved_at = now
    else:
        ticket.closed_at = None


def mark_undeliverable(
    session: Session, addresses: Sequence[str], until: datetime, reason: str
) -> None:
    for address in addresses:
        row = session.get(Undeliverable, address) or Undeliverable(
            address=address, until=until, reason=reason
        )
        row.until, row.reason = until, reason
        session.add(row)


def _no_nul(text: str) -> str:
    """PostgreSQL text cannot hold NUL; the raw mail keeps the original bytes."""
    return text.replace("\x00", "\ufffd")
