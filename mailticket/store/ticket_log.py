"""A ticket's log: the events that say what happened to it, and why (``EventKind``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert
from sqlmodel import Session

from mailticket.decide.decision import Context, Decision
from mailticket.decide.states import EventKind
from mailticket.outbound.outgoing import Outgoing
from mailticket.parse.mail import InboundMail
from mailticket.store import EVENT

_INSERT_EVENT = insert(EVENT)


def event(
    number: int,
    kind: EventKind,
    detail: str,
    now: datetime,
    *,
    message_id: str | None = None,
    rules_version: str | None = None,
) -> dict[str, Any]:
    """One row of the ticket's log, to write with ``add_events``."""
    return {
        "ticket_number": number,
        "at": now,
        "kind": kind,
        "detail": detail,
        "message_id": message_id,
        "rules_version": rules_version,
    }


def decision_events(
    number: int, mail: InboundMail, decision: Decision, ctx: Context, source: str
) -> list[dict[str, Any]]:
    """The log rows that say why: received, threaded, automatic, linked, routed, notes."""

    def row(kind: EventKind, detail: str, version: str | None = None) -> dict[str, Any]:
        return event(
            number, kind, detail, ctx.now, message_id=mail.message_id, rules_version=version
        )

    sender = mail.from_addr or "unknown sender"
    rows = [
        row(EventKind.RECEIVED, f"{decision.kind} from {sender} via {source}"),
        row(EventKind.THREADED, decision.thread.evidence),
    ]
    if decision.authentication:
        rows.append(row(EventKind.AUTHENTICATED, decision.authentication))
    if decision.verdict.automatic:
        rows.append(row(EventKind.AUTOMATIC, "; ".join(decision.verdict.reasons)))
    if decision.linked_to is not None:
        rows.append(row(EventKind.LINKED, f"linked to {ctx.settings.prefix}-{decision.linked_to}"))
    if decision.routing is not None:
        routing = decision.routing
        matched = ", ".join(routing.matched) or "no rule (defaults)"
        detail = f"queue {routing.queue}, priority {routing.priority}; matched: {matched}"
        rows.append(row(EventKind.ROUTED, detail, ctx.rules.version))
    return rows + [row(EventKind.NOTE, note) for note in decision.notes]


def queued_event(mail: Outgoing, now: datetime) -> dict[str, Any]:
    assert mail.ticket_number is not None
    detail = f"{mail.template} to {mail.envelope.to}"
    return event(
        mail.ticket_number, EventKind.MAIL_QUEUED, detail, now, message_id=mail.envelope.message_id
    )


def add_events(connection: Connection, events: Sequence[dict[str, Any]]) -> None:
    if events:
        connection.execute(_INSERT_EVENT, list(events))


def log_event(
    session: Session,
    ticket_number: int,
    kind: EventKind,
    detail: str,
    now: datetime,
    *,
    message_id: str | None = None,
    rules_version: str | None = None,
) -> None:
    """One event, written now (for callers outside intake's batch of rows)."""
    row = event(
        ticket_number, kind, detail, now, message_id=message_id, rules_version=rules_version
    )
    add_events(session.connection(), [row])
