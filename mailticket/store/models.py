"""The database tables (SQLModel). Schema changes go through migrations/ (Alembic).

Inbound mail is stored once per identity (``Inbound.dedupe_key``); everything a
ticket shows hangs off ``Ticket``; ``Outbox`` rows are written in the same
transaction as the change that caused them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Dialect, Index, LargeBinary, Text
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in Python, naive UTC in every database (SQLite has no zones)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: mailticket stores aware UTC times only")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Ticket(SQLModel, table=True):
    # `tickets list --status S --queue Q`: SQLite (never ANALYZEd) would use the status index
    # alone and read every ticket of that status
    __table_args__ = (Index("ix_ticket_queue_status", "queue", "status"),)

    number: int | None = Field(default=None, primary_key=True)
    subject: str = Field(sa_type=Text)
    status: str = Field(default="new", index=True)  # new, open, pending, resolved, closed
    priority: str
    queue: str = Field(index=True)
    requester: str = Field(index=True)
    assignee: str | None = None
    tags: str = ""  # space-separated words
    language: str = "en"
    linked_to: int | None = None
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    due_at: datetime | None = Field(default=None, index=True, sa_type=UTCDateTime)
    first_response_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    fields: str = Field(default="{}", sa_type=Text)  # JSON: values the rules' `extract` pulled
    due_derivation: str = Field(default="", sa_type=Text)  # how due_at was computed, readable
    # the follow-up clock (sla.py): when each time-driven step was taken, and the next check
    pending_since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    agent_reminded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    escalated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    requester_reminded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    next_action_at: datetime | None = Field(default=None, index=True, sa_type=UTCDateTime)


class Participant(SQLModel, table=True):
    ticket_number: int = Field(foreign_key="ticket.number", primary_key=True)
    address: str = Field(primary_key=True, index=True)
    role: str  # requester, cc


class Inbound(SQLModel, table=True):
    """Every accepted mail, byte for byte: the proof that nothing is lost."""

    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(unique=True, max_length=998)
    message_id: str = Field(max_length=998)
    sha256: str = Field(max_length=64)
    source: str  # smtp, imap, pipe, import
    received_at: datetime = Field(sa_type=UTCDateTime)
    state: str = Field(index=True)  # processed, quarantined
    error: str | None = Field(default=None, sa_type=Text)
    ticket_number: int | None = Field(default=None, foreign_key="ticket.number")
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class Message(SQLModel, table=True):
    """One entry of a ticket's conversation, inbound or outbound."""

    id: int | None = Field(default=None, primary_key=True)
    ticket_number: int = Field(foreign_key="ticket.number", index=True)
    direction: str  # in, out
    kind: str  # request, reply, note, unverified, bounce, auto, ack, notification, ...
    message_id: str = Field(index=True, max_length=998)
    from_addr: str
    to_addrs: str = Field(default="", sa_type=Text)  # comma-separated
    subject: str = Field(sa_type=Text)
    date: datetime = Field(sa_type=UTCDateTime)
    text: str = Field(sa_type=Text)
    html: str = Field(default="", sa_type=Text)
    lossy: bool = False
    inbound_id: int | None = Field(default=None, foreign_key="inbound.id")
    # an outbound entry's Outbox row has the same message_id


class Attachment(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    message_row: int = Field(foreign_key="message.id", index=True)
    filename: str
    content_type: str
    size: int
    content: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))


class Event(SQLModel, table=True):
    """The ticket's log: what happened, when, and why."""

    id: int | None = Field(default=None, primary_key=True)
    ticket_number: int = Field(foreign_key="ticket.number", index=True)
    at: datetime = Field(sa_type=UTCDateTime)
    kind: str  # received, threaded, routed, status, ack, delivery_failed, ...
    detail: str = Field(sa_type=Text)
    message_id: str | None = None
    rules_version: str | None = None


class Outbox(SQLModel, table=True):
    """A mail to send, with its final Message-ID and bytes, until the transport takes it."""

    __table_args__ = (
        Index("ix_outbox_due", "state", "next_attempt_at"),
        Index("ix_outbox_recipient_auto", "recipient", "automatic", "created_at"),
        Index("ix_outbox_auto_created", "automatic", "created_at"),  # the global budget
    )

    id: int | None = Field(default=None, primary_key=True)
    ticket_number: int | None = Field(default=None, foreign_key="ticket.number", index=True)
    template: str
    message_id: str = Field(unique=True, max_length=998)
    sender: str
    recipient: str  # the main recipient; the automatic-answer cap counts these
    extra_recipients: str = Field(default="", sa_type=Text)  # comma-separated Cc
    automatic: bool
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # b"" until composed
    draft: str | None = Field(default=None, sa_type=Text)  # notices.draft, until composed
    state: str = "pending"  # pending, sent, failed, uncertain
    attempts: int = 0
    uncertain: int = 0  # deliveries whose outcome we could not learn (timeout after DATA)
    next_attempt_at: datetime = Field(sa_type=UTCDateTime)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    claimed_by: str | None = Field(default=None, max_length=300)  # the daemon instance
    last_error: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Undeliverable(SQLModel, table=True):
    """A recipient that bounced: no automatic mail to it until ``until``."""

    address: str = Field(primary_key=True)
    until: datetime = Field(sa_type=UTCDateTime)
    reason: str = Field(sa_type=Text)


class AutoPause(SQLModel, table=True):
    """An address whose automatic answers are paused: it used up an automatic-mail budget."""

    __tablename__ = "auto_pause"

    address: str = Field(primary_key=True)
    since: datetime = Field(sa_type=UTCDateTime)
    until: datetime = Field(sa_type=UTCDateTime)
    reason: str = Field(sa_type=Text)


class Setting(SQLModel, table=True):
    """Values generated once and shared by every daemon on this database (e.g. the secret)."""

    key: str = Field(primary_key=True)
    value: str = Field(sa_type=Text)


class ImapSeen(SQLModel, table=True):
    """The IMAP ledger: a mailbox UID whose mail is committed, so it is never fetched twice.

    ``done`` turns true once the message is flagged/moved on the server; a row left
    false after a crash only needs the server-side step repeated.
    """

    account: str = Field(primary_key=True)
    folder: str = Field(primary_key=True)
    uidvalidity: int = Field(sa_type=BigInteger, primary_key=True)
    uid: int = Field(sa_type=BigInteger, primary_key=True)
    dedupe_key: str = Field(max_length=998)
    done: bool = False
    at: datetime = Field(sa_type=UTCDateTime)


class PollerStatus(SQLModel, table=True):
    """What ``mailticket status`` shows per IMAP account (written by the daemon polling it)."""

    account: str = Field(primary_key=True)
    last_ok_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, sa_type=Text)
    last_error_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Daemon(SQLModel, table=True):
    """One ``mailticket serve`` process, as its heartbeat last said (``mailticket status``).

    ``instance`` is host:pid:start; a daemon restarted on the same host takes back the
    outbox claims of an instance there whose process is gone (``heartbeat``)."""

    instance: str = Field(primary_key=True, max_length=300)
    host: str = Field(max_length=255)
    pid: int
    started_at: datetime = Field(sa_type=UTCDateTime)
    beat_at: datetime = Field(sa_type=UTCDateTime)
    stopped_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    stop_reason: str = Field(default="", sa_type=Text)
    listeners: str = Field(default="", sa_type=Text)  # "smtp 127.0.0.1:2525"
    pollers: str = Field(default="", sa_type=Text)  # IMAP accounts, comma-separated
    last_sweep_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    outbox_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # last worker round
