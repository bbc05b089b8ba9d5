"""The pieces a Decision is made of: what is known of a ticket, what to change, what to send.

Shared by ``decision`` (which mail goes where) and ``replies`` (what an agent's or a
requester's mail on a ticket asks for); both are pure, intake applies the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class TicketFacts:
    number: int
    status: str
    queue: str
    requester: str
    participants: frozenset[str]  # lower-case addresses, the requester included
    closed_at: datetime | None
    assignee: str | None = None
    priority: str = ""
    cc: tuple[str, ...] = ()  # the participants besides the requester
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Answer:
    """One mail to send because of this mail."""

    template: str
    to: str
    automatic: bool  # an automatic answer: ``Auto-Submitted: auto-replied``, counted by the cap
    cc: tuple[str, ...] = ()
    text: str = ""  # a person's words the template carries (agent_reply, agent_note...)
    errors: tuple[str, ...] = ()  # agent_error: why the commands were refused
    relayed: bool = False  # a person's words relayed as they wrote them: no Auto-Submitted
    proposed_cc: tuple[str, ...] = ()  # Cc a requester named, not added: agents decide
    delayed: bool = False  # the global budget is used up: sent when it allows, not dropped
    confirms: str = ""  # agent_confirm: the Message-ID of the mail a reply would apply


@dataclass(frozen=True, slots=True)
class Changes:
    """What an agent's commands (and a public reply) change on a ticket besides its status."""

    assignee: str | None = None
    priority: str | None = None
    queue: str | None = None
    tags_added: tuple[str, ...] = ()
    tags_removed: tuple[str, ...] = ()
    answered: bool = False  # an agent answered the requester: first response, pending clock
    cc_added: tuple[str, ...] = ()  # participants an agent (#cc add) or a verified mail adds
    cc_removed: tuple[str, ...] = ()
    # what `extract` rules found in the mail's new text: a missing field is filled, a
    # different value replaces the old one (both logged)
    fields: tuple[tuple[str, str], ...] = ()

    def __bool__(self) -> bool:
        return self != NO_CHANGES


NO_CHANGES = Changes()


@dataclass(frozen=True, slots=True)
class Window:
    """Automatic answers sent since ``since``; counting may stop at ``limit``."""

    since: datetime
    limit: int


@dataclass(frozen=True, slots=True)
class GuardWindows:
    """The loop guards' budgets as windows (``tickets.auto_reply_*``)."""

    day: Window  # to one address: max_auto_replies_per_sender in 24 h
    burst: Window  # to one address: auto_reply_burst
    ticket: Window  # to one address on one ticket: auto_reply_per_ticket
    total: Window  # to anyone: auto_reply_global


@dataclass(frozen=True, slots=True)
class GuardHistory:
    """What the loop guards know of one address, read at once (one query, not six)."""

    bounced_until: datetime | None  # a permanent bounce blocks it until then
    paused_until: datetime | None  # a tripped budget paused it until then
    day: int
    burst: int
    ticket: int  # 0 when the answer is on no ticket
    total: int
