"""The pieces a Decision is made of: what is known of a ticket, what to change, what to send.

Shared by ``decision`` (which mail goes where) and ``replies`` (what an agent's or a
requester's mail on a ticket asks for); both are pure, intake applies the result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal, Protocol

from mailticket.decide import agent_auth
from mailticket.decide.guard import Verdict
from mailticket.decide.rules import Routing, RuleSet
from mailticket.decide.secret_report import NO_SECRETS, SecretReport
from mailticket.decide.states import MessageKind, TicketStatus
from mailticket.decide.threads import MessageIdSigner, ThreadMatch
from mailticket.settings import SpamSettings, TicketSettings


@dataclass(frozen=True, slots=True)
class TicketFacts:
    number: int
    status: TicketStatus
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


@dataclass(frozen=True, slots=True)
class Pending:
    """An agent's mail that was not applied, and the request to confirm it."""

    request_id: str  # the agent_confirm mail's Message-ID
    message_id: str  # the unverified mail's
    text: str
    recipients: tuple[str, ...]  # its To and Cc


class StoreView(Protocol):
    """What decide() may read. Implemented over a session, or in memory in tests."""

    def ticket(self, number: int) -> TicketFacts | None: ...
    def ticket_for_message_ids(self, message_ids: Sequence[str]) -> int | None: ...
    def requester_of(self, number: int) -> str | None: ...
    def undeliverable(self, address: str, now: datetime) -> bool: ...
    def guard_history(
        self, address: str, ticket: int | None, now: datetime, windows: GuardWindows
    ) -> GuardHistory: ...
    def received_on_ticket(self, number: int, since: datetime, limit: int) -> int: ...
    def opened_by(self, address: str, since: datetime, limit: int) -> int: ...
    def pending_confirmation(self, number: int, message_ids: Sequence[str]) -> Pending | None: ...


Action = Literal["new", "append", "bounce", "ignore", "status"]


@dataclass(frozen=True, slots=True)
class Pause:
    """An address that used up a budget for automatic answers (``tickets.auto_reply_*``)."""

    address: str
    reason: str


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    thread: ThreadMatch
    action: Action
    ticket: int | None  # the existing ticket for append / bounce
    kind: MessageKind
    linked_to: int | None = None
    routing: Routing | None = None
    status_change: TicketStatus | None = None
    answers: tuple[Answer, ...] = ()
    notes: tuple[str, ...] = ()
    secrets: SecretReport = NO_SECRETS  # private keys / recovery phrases found (masked for agents)
    changes: Changes = NO_CHANGES  # an agent's commands
    authentication: str = ""  # how a mail from an agent's address was (or was not) trusted
    pauses: tuple[Pause, ...] = ()  # addresses whose automatic answers stop: a budget tripped
    participants: tuple[str, ...] = ()  # Cc that become participants (a verified mail)
    proposed: tuple[str, ...] = ()  # Cc that do not: shown to agents (#cc add)
    spam: str = ""  # the trusted MTA's spam verdict: stored, never answered
    confirmed: str = ""  # the agent_confirm request this mail answered: its mail applied

    def with_note(self, note: str) -> Decision:
        return replace(self, notes=(note, *self.notes))


@dataclass(frozen=True, slots=True)
class Context:
    settings: TicketSettings
    rules: RuleSet
    signer: MessageIdSigner
    now: datetime
    notify: bool = True  # False for bulk import without --notify, and for mail before `since`
    require_agent_auth: bool = True  # agents.require_authenticated
    # the From domain's proof (DKIM, trusted Authentication-Results), checked before the
    # transaction (DNS) for a mail from an agent's address or naming new Cc
    agent_auth: agent_auth.AuthVerdict | None = None
    trusted_source: bool = False  # a trusted relay or IMAP account: its verdict headers count
    spam: SpamSettings | None = None
    authserv_id: str | None = None

    @property
    def own_addresses(self) -> frozenset[str]:
        own = {self.settings.support_address, self.settings.comment_address or ""}
        return frozenset(a.lower() for a in own if a)
