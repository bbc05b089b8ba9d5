"""The states of a ticket and of an outgoing mail, and the kinds of a ticket's log (pure).

StrEnums: stored and shown as their plain values ("open"), equal to them, and a typo in
the code ("pendng") is a type error instead of a ticket stuck in a status nobody reads.
The database keeps plain strings; they become these where rows are read.
"""

from __future__ import annotations

from enum import StrEnum


class TicketStatus(StrEnum):
    NEW = "new"  # nobody has acted on it yet
    OPEN = "open"  # being worked on
    PENDING = "pending"  # an agent answered: waiting on the requester
    RESOLVED = "resolved"  # an agent says it is done; a reply reopens it
    CLOSED = "closed"
    SPAM = "spam"  # the trusted MTA's verdict: stored, never answered (#notspam)


class MessageKind(StrEnum):
    """What a mail received on a ticket is (``decide``): shown in ``tickets show``."""

    REQUEST = "request"  # opened a ticket
    REPLY = "reply"  # the requester or a participant wrote again
    AGENT = "agent"  # an agent's answer, relayed to the requester
    NOTE = "note"  # an agent's internal note
    COMMANDS = "commands"  # an agent's commands only
    REFUSED = "refused"  # an agent's mail with a bad command: nothing applied
    UNVERIFIED = "unverified"  # from an agent's address without proof, or from a stranger
    AUTO = "auto"  # an autoreply or notice about the ticket: kept, never answered
    SPAM = "spam"  # the trusted MTA's verdict
    BOUNCE = "bounce"  # a delivery report about one of our mails
    IGNORED = "ignored"  # automatic mail naming no ticket: kept, nothing else
    STATUS = "status"  # asked for the sender's list of tickets


class OutboxState(StrEnum):
    PENDING = "pending"  # waiting for its (next) attempt
    SENT = "sent"
    FAILED = "failed"  # refused for good, or out of attempts
    UNCERTAIN = "uncertain"  # the relay may have taken it: not sent again by itself


class EventKind(StrEnum):
    """An entry of a ticket's log (docs/operations.md explains each)."""

    RECEIVED = "received"
    THREADED = "threaded"
    AUTHENTICATED = "authenticated"
    AUTOMATIC = "automatic"
    LINKED = "linked"
    ROUTED = "routed"
    NOTE = "note"
    LIMIT = "limit"
    STATUS = "status"
    ASSIGNED = "assigned"
    QUEUE = "queue"
    PRIORITY = "priority"
    TAGS = "tags"
    FIELD = "field"
    CLOCK = "clock"
    PARTICIPANT = "participant"
    PAUSED = "paused"
    MAIL_QUEUED = "mail_queued"
    DELIVERY_FAILED = "delivery_failed"
    DELIVERY_UNCERTAIN = "delivery_uncertain"
    DELIVERY_DELAYED = "delivery_delayed"  # a DSN that says the relay still tries
    CONFIRM_REQUESTED = "confirm_requested"
    CONFIRMED = "confirmed"
    MESSAGE_ID_REUSED = "message_id_reused"
    # the follow-up sweep's actions (followup.clocks.ActionKind)
    REMINDER_AGENT = "reminder_agent"
    ESCALATION = "escalation"
    REMINDER_REQUESTER = "reminder_requester"
    CLOSE_PENDING = "close_pending"
    CLOSE_RESOLVED = "close_resolved"
