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


@dataclass(frozen=True, slots=True)
class Changes:
    """What an agent's commands (and a public reply) change on a ticket besides its status."""

    assignee: str | None = None
    priority: str | None = None
    queue: str | None = None
    tags_added: tuple[str, ...] = ()
    tags_removed: tuple[str, ...] = ()
    answered: bool = False  # an agent answered the requester: first response, pending clock

    def __bool__(self) -> bool:
        return self != NO_CHANGES


NO_CHANGES = Changes()
