"""Write a Decision to the store: tickets, conversation, events, participants.

Runs inside the caller's transaction; nothing here commits. Rows are written with Core
statements (one executemany per table and mail), not ORM objects: intake writes about
ten rows a mail, and the ORM's unit of work cost several times what the database did.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BindParameter,
    Connection,
    CursorResult,
    bindparam,
    insert,
    select,
    update,
)

from mailticket.decide.decision import Decision
from mailticket.decide.decision_parts import NO_CHANGES, Changes
from mailticket.decide.rules import RuleSet
from mailticket.decide.states import EventKind, TicketStatus
from mailticket.decide.threads import clean_subject
from mailticket.decide.ticket_state import TicketState, fields_of
from mailticket.followup import clocks as sla
from mailticket.parse.mail import InboundMail
from mailticket.store import ATTACHMENT, EVENT, INBOUND, MESSAGE, TICKET, UNDELIVERABLE
from mailticket.store.participants import add_participants
from mailticket.store.ticket_log import event

MAX_SUBJECT = 998  # a header line's limit; the raw mail keeps the rest


# Statements built once (see ``store``): intake runs them for every mail.
_NUMBER: BindParameter[int] = bindparam("number")
_TICKET_ROW = select(TICKET).where(TICKET.c.number == _NUMBER)
_TICKET_LOCKED = _TICKET_ROW.with_for_update()
_UPDATE_TICKET = update(TICKET).where(TICKET.c.number == bindparam("ticket"))
_CONVERSATION = (
    select(MESSAGE.c.message_id, MESSAGE.c.direction, MESSAGE.c.from_addr, MESSAGE.c.to_addrs)
    .where(MESSAGE.c.ticket_number == _NUMBER)
    .order_by(MESSAGE.c.id)
)
_INSERT_TICKET = insert(TICKET)
_INSERT_INBOUND, _INSERT_MESSAGE = insert(INBOUND), insert(MESSAGE)
_INSERT_ATTACHMENT, _INSERT_EVENT = insert(ATTACHMENT), insert(EVENT)


CONVERSATION_DEPTH = 20  # Message-IDs of a conversation that a mail references


def conversation(connection: Connection, number: int, address: str) -> list[str]:
    """The Message-IDs of what ``address`` has seen of the ticket, oldest first: the mails
    it sent and those we sent it. A mail to it references these, so that its client shows
    one conversation per ticket (its client never saw the mails between us and others)."""
    seen = []
    for row in connection.execute(_CONVERSATION, {"number": number}):
        if row.direction == "in":
            mine = row.from_addr == address
        else:
            mine = address in (row.to_addrs or "").split(",")
        if mine and row.message_id:
            seen.append(row.message_id)
    return seen[-CONVERSATION_DEPTH:]


def open_ticket(
    connection: Connection,
    mail: InboundMail,
    decision: Decision,
    prefix: str,
    now: datetime,
    rules: RuleSet,
    *,
    created_at: datetime | None = None,
    clock_runs: bool = True,
) -> TicketState:
    """The new ticket's row. Silent intake (import, old IMAP mail) opens it with its
    clocks stopped: no reminder or escalation for a backlog nobody was told about, until
    a new mail or an agent acts on it (``touch`` starts them then)."""
    routing = decision.routing
    assert routing is not None
    status = (
        TicketStatus.CLOSED
        if routing.drop
        else TicketStatus.SPAM
        if decision.spam
        else TicketStatus.NEW
    )
    due = rules.first_due(routing.priority, now) if clock_runs else None
    due_at = due.at if due else None
    created = created_at or now
    clock = sla.TicketClock(status=status, created_at=created, due_at=due_at)
    fields = json.dumps(dict(routing.fields), ensure_ascii=False)
    subject = clean_subject(mail.subject[: MAX_SUBJECT * 4], prefix)[:MAX_SUBJECT] or "(no subject)"
    values = {
        "subject": subject,
        "status": status,
        "priority": routing.priority,
        "queue": routing.queue,
        "requester": mail.from_addr,
        "assignee": routing.assignee,
        "tags": " ".join(routing.tags),
        "language": mail.language,
        "linked_to": decision.linked_to,
        "created_at": created,
        "updated_at": now,
        "due_at": due_at,
        "closed_at": now if routing.drop else None,
        "fields": fields,
        "due_derivation": due.derivation if due else ("" if clock_runs else STOPPED),
        "next_action_at": sla.next_due(clock, rules.followup_policy(routing.priority)),
    }
    number = new_id(connection.execute(_INSERT_TICKET, values))
    wanted = [(mail.from_addr, "requester")] if mail.from_addr else []
    add_participants(connection, number, wanted, known=())  # Cc: participant_events
    return TicketState(
        number, subject, status, routing.priority, routing.queue, mail.from_addr,
        mail.language, created, due_at, fields,
    )  # fmt: skip


def locked_ticket(connection: Connection, number: int) -> TicketState:
    """The ticket row, locked until the commit (decide() has locked it already)."""
    row = connection.execute(_TICKET_LOCKED, {"number": number}).one()
    return _state(row)


STATUS_LISTING = 50  # tickets a ``status`` answer lists, most recently updated first


def requester_tickets(connection: Connection, address: str) -> list[TicketState]:
    """The tickets ``address`` opened, most recently updated first (for ``status``)."""
    query = (
        select(TICKET)
        .where(TICKET.c.requester == address)
        .order_by(TICKET.c.updated_at.desc(), TICKET.c.number.desc())
        .limit(STATUS_LISTING)
    )
    return [_state(row) for row in connection.execute(query)]


def _state(row: Any) -> TicketState:
    return TicketState(
        row.number, row.subject, TicketStatus(row.status), row.priority, row.queue, row.requester,
        row.language, row.created_at, row.due_at, row.fields, row.updated_at,
    )  # fmt: skip


def new_id(result: CursorResult[Any]) -> int:
    """The primary key the INSERT just generated."""
    key = result.inserted_primary_key
    assert key is not None
    number: int = key[0]
    return number


def add_message(
    connection: Connection,
    number: int,
    mail: InboundMail,
    kind: str,
    inbound_id: int,
    now: datetime,
) -> None:
    values = {
        "ticket_number": number,
        "direction": "in",
        "kind": kind,
        "message_id": mail.message_id,
        "from_addr": mail.from_addr,
        "to_addrs": ",".join((*mail.to, *mail.cc)),
        "subject": _no_nul(mail.subject),
        "date": mail.date or now,
        "text": _no_nul(mail.text),
        "html": _no_nul(mail.html),
        "lossy": mail.lossy,
        "inbound_id": inbound_id,
    }
    result = connection.execute(_INSERT_MESSAGE, values)
    if mail.attachments:
        row = new_id(result)
        connection.execute(
            _INSERT_ATTACHMENT,
            [
                {
                    "message_row": row,
                    "filename": part.filename,
                    "content_type": part.content_type,
                    "size": part.size,
                    "content": part.content,
                }
                for part in mail.attachments
            ],
        )


def record_bounce(
    connection: Connection, number: int, mail: InboundMail, now: datetime, block: timedelta
) -> dict[str, Any]:
    """Block the bounced recipients for ``block`` when the failure is permanent; returns
    the ticket's log row. A delayed report or a 4.x.x failure blocks no one."""
    bounce = mail.bounce
    recipients = bounce.recipients if bounce else ()
    status = f"{bounce.action} {bounce.status}" if bounce else "failed"
    if bounce is None or bounce.permanent:
        mark_undeliverable(connection, recipients, now + block, f"{status} ({mail.message_id})")
    else:
        status += " (temporary: not blocked)"
    return event(
        number,
        EventKind.DELIVERY_DELAYED
        if bounce and bounce.action == "delayed"
        else EventKind.DELIVERY_FAILED,
        f"{', '.join(recipients) or 'recipient'}: {status}",
        now,
        message_id=bounce.original_message_id if bounce else None,
    )


def touch(
    connection: Connection,
    ticket: TicketState,
    status: TicketStatus | None,
    now: datetime,
    rules: RuleSet,
    changes: Changes = NO_CHANGES,
) -> tuple[TicketState, list[dict[str, Any]]]:
    """Record activity on the ticket (``updated_at``), a status change and an agent's
    changes; returns the ticket as it is now and the log rows of the changes.

    A status change or an answer moves the follow-up clock, so ``next_action_at`` is
    computed again; a new priority also moves the first-response due time (counted from
    the ticket's creation, as if it had always had that priority).
    """
    values: dict[str, Any] = {"updated_at": now}
    status = status if status != ticket.status else None
    if status is None and not changes and ticket.due_at is not None:
        connection.execute(_UPDATE_TICKET, {**values, "ticket": ticket.number})
        return ticket, []
    row = connection.execute(_TICKET_ROW, {"number": ticket.number}).one()
    clock = sla.TicketClock.from_row(row)
    if status is not None:
        values.update(_status_values(status, now))
        clock = replace(clock, status=status)
        if status == "resolved":
            clock = replace(clock, resolved_at=now)
        if status == "pending":
            clock = replace(clock, pending_since=now)
    if changes.answered:
        if row.first_response_at is None:
            values["first_response_at"] = now
            clock = replace(clock, first_response_at=now)
        if clock.status == "pending":  # waiting on the requester again, from now
            values["pending_since"] = now
            clock = replace(clock, pending_since=now)
    events = _changed(row, changes, values, now, rules)
    events += _start_stopped_clock(row, values, now, rules)
    if "due_at" in values:
        clock = replace(clock, due_at=values["due_at"])
    priority = values.get("priority", row.priority)
    values["next_action_at"] = sla.next_due(clock, rules.followup_policy(priority))
    connection.execute(_UPDATE_TICKET, {**values, "ticket": ticket.number})
    after = replace(
        ticket,
        status=values.get("status", ticket.status),
        priority=priority,
        queue=values.get("queue", ticket.queue),
        due_at=values.get("due_at", ticket.due_at),
        fields=values.get("fields", ticket.fields),
    )
    return after, events


STOPPED = "clock stopped: silent intake"


def _start_stopped_clock(
    row: Any, values: dict[str, Any], now: datetime, rules: RuleSet
) -> list[dict[str, Any]]:
    """A ticket opened by a silent import starts its first-response clock when someone
    acts on it (a new mail, an agent): counted from now, not from the old mail's date."""
    if row.due_derivation != STOPPED or "due_at" in values or row.first_response_at:
        return []
    if values.get("status", row.status) not in sla.CLOCK_RUNS:
        return []
    due = rules.first_due(values.get("priority", row.priority), now)
    if due is None:
        return []
    values["due_at"], values["due_derivation"] = due.at, due.derivation
    return [
        event(
            row.number, EventKind.CLOCK, f"first-response clock started: due {due.derivation}", now
        )
    ]


def _status_values(status: str, now: datetime) -> dict[str, Any]:
    values: dict[str, Any] = {"status": status}
    if status == "closed":
        values["closed_at"] = now
    else:
        values["closed_at"] = None
    if status == "resolved":
        values["resolved_at"] = now
    if status == "pending":
        values["pending_since"] = now
    return values


def _changed(
    row: Any, changes: Changes, values: dict[str, Any], now: datetime, rules: RuleSet
) -> list[dict[str, Any]]:
    """Write an agent's changes into ``values``; one log row each."""
    number = row.number
    events = []
    if changes.assignee is not None and changes.assignee != row.assignee:
        values["assignee"] = changes.assignee
        detail = f"{row.assignee or 'nobody'} -> {changes.assignee}"
        events.append(event(number, EventKind.ASSIGNED, detail, now))
    if changes.queue is not None and changes.queue != row.queue:
        values["queue"] = changes.queue
        events.append(event(number, EventKind.QUEUE, f"{row.queue} -> {changes.queue}", now))
    if changes.priority is not None and changes.priority != row.priority:
        values["priority"] = changes.priority
        due = rules.first_due(changes.priority, row.created_at)
        values["due_at"] = due.at if due else None
        values["due_derivation"] = due.derivation if due else ""
        when = f"first response due {due.derivation}" if due else "no first-response time"
        detail = f"{row.priority} -> {changes.priority}; {when}"
        events.append(event(number, EventKind.PRIORITY, detail, now))
    tags = row.tags.split()
    wanted = [
        t for t in dict.fromkeys((*tags, *changes.tags_added)) if t not in changes.tags_removed
    ]
    if wanted != tags:
        values["tags"] = " ".join(wanted)
        added = [f"+{t}" for t in wanted if t not in tags]
        removed = [f"-{t}" for t in tags if t not in wanted]
        events.append(event(number, EventKind.TAGS, " ".join((*added, *removed)), now))
    events += _fields_changed(row, changes.fields, values, now)
    return events


def _fields_changed(
    row: Any, found: Sequence[tuple[str, str]], values: dict[str, Any], now: datetime
) -> list[dict[str, Any]]:
    """Fields a later mail fills or changes; the old value stays in the log."""
    stored = fields_of(row.fields)
    merged = dict(stored)
    events = []
    for name, value in found:
        old = merged.get(name)
        if old == value:
            continue
        merged[name] = value
        detail = f"{name} = {value}" if old is None else f"{name}: {old} -> {value}"
        events.append(event(row.number, EventKind.FIELD, detail, now))
    if events:
        values["fields"] = json.dumps(merged, ensure_ascii=False)
    return events


def mark_undeliverable(
    connection: Connection, addresses: Sequence[str], until: datetime, reason: str
) -> None:
    for address in addresses:
        values = {"until": until, "reason": reason}
        found = connection.execute(
            update(UNDELIVERABLE).where(UNDELIVERABLE.c.address == address), values
        )
        if found.rowcount == 0:
            connection.execute(insert(UNDELIVERABLE), {"address": address, **values})


def _no_nul(text: str) -> str:
    """PostgreSQL text cannot hold NUL; the raw mail keeps the original bytes."""
    return text.replace("\x00", "\ufffd")
