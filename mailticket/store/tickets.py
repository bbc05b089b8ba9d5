"""Write a Decision to the store: tickets, conversation, events, participants.

Runs inside the caller's transaction; nothing here commits. Rows are written with Core
statements (one executemany per table and mail), not ORM objects: intake writes about
ten rows a mail, and the ORM's unit of work cost several times what the database did.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BindParameter,
    Connection,
    CursorResult,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlmodel import Session

from mailticket import store
from mailticket.decide.decision import Context, Decision, Pending, TicketFacts
from mailticket.decide.decision_parts import NO_CHANGES, Changes, GuardHistory, GuardWindows
from mailticket.decide.rules import RuleSet
from mailticket.decide.threads import clean_subject
from mailticket.decide.ticket_state import TicketState, fields_of
from mailticket.followup import clocks as sla
from mailticket.outbound.outgoing import Outgoing
from mailticket.parse.fingerprint import canonical_bytes_digest, content_digest
from mailticket.parse.mail import InboundMail
from mailticket.store import ATTACHMENT, EVENT, INBOUND, MESSAGE, PARTICIPANT, TICKET, UNDELIVERABLE

MAX_SUBJECT = 998  # a header line's limit; the raw mail keeps the rest


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
            status=row.status,
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
_TICKET_ROW = select(TICKET).where(TICKET.c.number == _NUMBER)
_TICKET_LOCKED = _TICKET_ROW.with_for_update()
_UPDATE_TICKET = update(TICKET).where(TICKET.c.number == bindparam("ticket"))
_REQUESTER = select(TICKET.c.requester).where(TICKET.c.number == _NUMBER)
_PARTICIPANTS = (
    select(PARTICIPANT.c.address)
    .where(PARTICIPANT.c.ticket_number == _NUMBER)
    .order_by(PARTICIPANT.c.address)
)
_CONVERSATION = (
    select(MESSAGE.c.message_id, MESSAGE.c.direction, MESSAGE.c.from_addr, MESSAGE.c.to_addrs)
    .where(MESSAGE.c.ticket_number == _NUMBER)
    .order_by(MESSAGE.c.id)
)
_SINCE: BindParameter[datetime] = bindparam("since")
_LIMIT: BindParameter[int] = bindparam("limit")
_RECEIVED_ON_TICKET = select(func.count()).select_from(  # by the time we received them
    select(EVENT.c.id)
    .where(EVENT.c.ticket_number == _NUMBER, EVENT.c.kind == "received", EVENT.c.at >= _SINCE)
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
        EVENT.c.kind == "confirm_requested",
        EVENT.c.message_id.in_(bindparam("ids", expanding=True)),
    )
    .order_by(EVENT.c.id.desc())
)
_CONFIRMED = select(EVENT.c.id).where(
    EVENT.c.ticket_number == _NUMBER,
    EVENT.c.kind == "confirmed",
    EVENT.c.message_id == bindparam("id"),
)
_UNVERIFIED = select(MESSAGE.c.text, MESSAGE.c.to_addrs).where(
    MESSAGE.c.ticket_number == _NUMBER,
    MESSAGE.c.message_id == bindparam("id"),
    MESSAGE.c.kind == "unverified",
)
_INSERT_TICKET, _INSERT_PARTICIPANT = insert(TICKET), insert(PARTICIPANT)
_INSERT_INBOUND, _INSERT_MESSAGE = insert(INBOUND), insert(MESSAGE)
_INSERT_ATTACHMENT, _INSERT_EVENT = insert(ATTACHMENT), insert(EVENT)


def participants(connection: Connection, number: int) -> list[str]:
    return list(connection.execute(_PARTICIPANTS, {"number": number}).scalars())


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
    status = "closed" if routing.drop else "spam" if decision.spam else "new"
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
        row.number, row.subject, row.status, row.priority, row.queue, row.requester,
        row.language, row.created_at, row.due_at, row.fields, row.updated_at,
    )  # fmt: skip


def new_id(result: CursorResult[Any]) -> int:
    """The primary key the INSERT just generated."""
    key = result.inserted_primary_key
    assert key is not None
    number: int = key[0]
    return number


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
        events.append(event(number, "participant", f"+{address}: {why}", now))
    for address in removed:
        gone = connection.execute(_REMOVE_PARTICIPANT, {"ticket": number, "address": address})
        if gone.rowcount:
            events.append(event(number, "participant", f"-{address}: {why}", now))
    return events


@dataclass(frozen=True, slots=True)
class Identity:
    """What identifies a received mail, parsed or not."""

    dedupe_key: str
    message_id: str
    sha256: str


def identity(mail: InboundMail, dedupe_key: str | None = None) -> Identity:
    return Identity(dedupe_key or mail.dedupe_key, mail.message_id, mail.sha256)


def digest(mail: InboundMail) -> str:
    """The content fingerprint of a parsed mail (see ``fingerprint``)."""
    files = [(a.filename, a.size, a.content) for a in mail.attachments]
    return content_digest(mail, mail.date.isoformat() if mail.date else "", files)


@dataclass(frozen=True, slots=True)
class Seen:
    """Whether a mail was stored before, and the key it is stored under if not."""

    duplicate: bool
    dedupe_key: str
    reused: str = ""  # the Message-ID an earlier, different mail already had


_STORED = select(INBOUND.c.sha256, INBOUND.c.raw).where(INBOUND.c.dedupe_key == bindparam("key"))


def seen(connection: Connection, mail: InboundMail, parse: Callable[[bytes], InboundMail]) -> Seen:
    """Look the mail up by its identity: the Message-ID and what it says.

    A mail with a Message-ID is stored under it; a different mail that reuses it, under
    ``<id>#<digest>``. A mail without one is stored under ``sha256c:`` and the hash of its
    bytes with canonical line endings, trace headers aside (and was, before, under the
    hash of its bytes: looked up too, so a re-import adds nothing).
    """
    if not mail.has_message_id:
        canonical = f"sha256c:{canonical_bytes_digest(mail.raw)}"
        for key in (canonical, f"sha256:{mail.sha256}"):
            if connection.execute(_STORED, {"key": key}).first() is not None:
                return Seen(True, key)
        return Seen(False, canonical)
    mine = digest(mail)
    first = connection.execute(_STORED, {"key": mail.message_id}).first()
    if first is None:
        return Seen(False, mail.message_id)
    if first.sha256 == mail.sha256 or _same(first.raw, mine, parse):
        return Seen(True, mail.message_id)
    key = f"{mail.message_id}#{mine}"
    if connection.execute(_STORED, {"key": key}).first() is not None:
        return Seen(True, key)
    return Seen(False, key, reused=mail.message_id)


def _same(raw: bytes, mine: str, parse: Callable[[bytes], InboundMail]) -> bool:
    """Whether the stored mail ``raw`` says what the new one says (``mine``); a stored
    mail that no longer parses is taken as the same (it was kept, not lost)."""
    try:
        return digest(parse(raw)) == mine
    except Exception:
        return True


def store_inbound(
    connection: Connection,
    mail: Identity,
    raw: bytes,
    source: str,
    now: datetime,
    *,
    state: str,
    ticket_number: int | None,
    error: str | None = None,
) -> int:
    """The raw mail's row; returns its id."""
    values = {
        "dedupe_key": mail.dedupe_key,
        "message_id": mail.message_id,
        "sha256": mail.sha256,
        "source": source,
        "received_at": now,
        "state": state,
        "error": error,
        "ticket_number": ticket_number,
        "raw": raw,
    }
    return new_id(connection.execute(_INSERT_INBOUND, values))


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


def event(
    number: int,
    kind: str,
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

    def row(kind: str, detail: str, version: str | None = None) -> dict[str, Any]:
        return event(
            number, kind, detail, ctx.now, message_id=mail.message_id, rules_version=version
        )

    sender = mail.from_addr or "unknown sender"
    rows = [
        row("received", f"{decision.kind} from {sender} via {source}"),
        row("threaded", decision.thread.evidence),
    ]
    if decision.authentication:
        rows.append(row("authenticated", decision.authentication))
    if decision.verdict.automatic:
        rows.append(row("automatic", "; ".join(decision.verdict.reasons)))
    if decision.linked_to is not None:
        rows.append(row("linked", f"linked to {ctx.settings.prefix}-{decision.linked_to}"))
    if decision.routing is not None:
        routing = decision.routing
        matched = ", ".join(routing.matched) or "no rule (defaults)"
        detail = f"queue {routing.queue}, priority {routing.priority}; matched: {matched}"
        rows.append(row("routed", detail, ctx.rules.version))
    return rows + [row("note", note) for note in decision.notes]


def queued_event(mail: Outgoing, now: datetime) -> dict[str, Any]:
    assert mail.ticket_number is not None
    detail = f"{mail.template} to {mail.envelope.to}"
    return event(
        mail.ticket_number, "mail_queued", detail, now, message_id=mail.envelope.message_id
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
        "delivery_delayed" if bounce and bounce.action == "delayed" else "delivery_failed",
        f"{', '.join(recipients) or 'recipient'}: {status}",
        now,
        message_id=bounce.original_message_id if bounce else None,
    )


def add_events(connection: Connection, events: Sequence[dict[str, Any]]) -> None:
    if events:
        connection.execute(_INSERT_EVENT, list(events))


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
    """One event, written now (for callers outside intake's batch of rows)."""
    row = event(
        ticket_number, kind, detail, now, message_id=message_id, rules_version=rules_version
    )
    add_events(session.connection(), [row])


def touch(
    connection: Connection,
    ticket: TicketState,
    status: str | None,
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
    return [event(row.number, "clock", f"first-response clock started: due {due.derivation}", now)]


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
        events.append(event(number, "assigned", detail, now))
    if changes.queue is not None and changes.queue != row.queue:
        values["queue"] = changes.queue
        events.append(event(number, "queue", f"{row.queue} -> {changes.queue}", now))
    if changes.priority is not None and changes.priority != row.priority:
        values["priority"] = changes.priority
        due = rules.first_due(changes.priority, row.created_at)
        values["due_at"] = due.at if due else None
        values["due_derivation"] = due.derivation if due else ""
        when = f"first response due {due.derivation}" if due else "no first-response time"
        detail = f"{row.priority} -> {changes.priority}; {when}"
        events.append(event(number, "priority", detail, now))
    tags = row.tags.split()
    wanted = [
        t for t in dict.fromkeys((*tags, *changes.tags_added)) if t not in changes.tags_removed
    ]
    if wanted != tags:
        values["tags"] = " ".join(wanted)
        added = [f"+{t}" for t in wanted if t not in tags]
        removed = [f"-{t}" for t in tags if t not in wanted]
        events.append(event(number, "tags", " ".join((*added, *removed)), now))
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
        events.append(event(row.number, "field", detail, now))
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
