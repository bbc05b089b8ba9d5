"""Time-driven work from the database: reminders, escalations, auto-close.

Each sweep claims the tickets whose ``next_action_at`` has come (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL, so several daemons share the work and none takes a ticket
another holds; SQLite has one writer at a time anyway), asks the pure ``sla.decide``
for the one action due, and writes the action's outbox row, the clock column that
records it and the next ``next_action_at`` in one transaction. A crash before the
commit leaves everything as it was; after it, the action is recorded: each reminder
is sent exactly once, and a daemon that was down sends one for all the times it missed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import fields, replace
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from mailticket import store
from mailticket.decide.rules import RuleSet
from mailticket.decide.states import EventKind, TicketStatus
from mailticket.decide.threads import MessageIdSigner, with_tag
from mailticket.decide.ticket_state import TicketState
from mailticket.followup import clocks as sla
from mailticket.outbound.answers import TicketView, language_for, ticket_envelope, ticket_view
from mailticket.outbound.notices import Renderer
from mailticket.outbound.outbox import enqueue
from mailticket.settings import TicketSettings
from mailticket.store import ticket_log, tickets
from mailticket.store.models import Message, Ticket

log = logging.getLogger(__name__)
BATCH = 100


class FollowupSweep:
    def __init__(
        self,
        engine: Engine,
        settings: TicketSettings,
        rules: Callable[[], RuleSet],
        renderer: Renderer,
        signer: MessageIdSigner,
        clock: Callable[[], datetime],
        on_action: Callable[[str], None] = lambda kind: None,
        *,
        agent_language: str = "en",
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._rules = rules
        self._renderer = renderer
        self._signer = signer
        self._clock = clock
        self._on_action = on_action
        self._agent_language = agent_language  # agents.language

    def run(self, limit: int = BATCH) -> int:
        """Sweep until nothing is due; returns the number of actions taken."""
        taken = 0
        while True:
            claimed, actions = self._sweep_once(limit)
            taken += actions
            if claimed < limit:
                return taken

    def _sweep_once(self, limit: int) -> tuple[int, int]:
        now = self._clock()
        rules = self._rules()
        actions: list[str] = []
        with store.transaction(self._engine) as session:
            due = session.exec(
                select(Ticket)
                .where(col(Ticket.next_action_at) <= now)
                .order_by(col(Ticket.next_action_at))
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            for ticket in due:
                kind = self._step(session, ticket, rules, now)
                if kind is not None:
                    actions.append(kind)
        for kind in actions:  # after the commit: counted once, as sent
            self._on_action(kind)
        return len(due), len(actions)

    def _step(self, session: Session, ticket: Ticket, rules: RuleSet, now: datetime) -> str | None:
        assert ticket.number is not None
        clock = sla.TicketClock.from_row(ticket)
        decision = sla.decide(clock, rules.followup_policy(ticket.priority), now)
        action = decision.action
        ticket.next_action_at = decision.next_check
        if action is None:
            session.add(ticket)
            return None
        after = sla.record(clock, action, now)
        for field in fields(sla.TicketClock):
            setattr(ticket, field.name, getattr(after, field.name))
        if after.status != clock.status:
            ticket.closed_at = now
        ticket.updated_at = now
        session.add(ticket)
        kind = action.kind.value
        ticket_log.log_event(session, ticket.number, EventKind(kind), action.reason, now)
        template = action.kind.template
        if template is not None:
            language = rules.agent_language(ticket.queue, self._agent_language)
            for recipient in self._recipients(session, ticket, action.kind, rules, now):
                self._send(session, ticket, template, recipient, action.reason, now, language)
        log.info("[%s-%s] %s: %s", self._settings.prefix, ticket.number, kind, action.reason)
        return kind

    def _recipients(
        self, session: Session, ticket: Ticket, kind: sla.ActionKind, rules: RuleSet, now: datetime
    ) -> list[str]:
        agents = [ticket.assignee] if ticket.assignee else list(rules.agents_of(ticket.queue))
        if kind is sla.ActionKind.ESCALATE:
            queue = rules.queues.get(ticket.queue)
            wanted = [queue.escalate_to] if queue and queue.escalate_to else agents
        elif kind is sla.ActionKind.REMIND_AGENTS:
            wanted = agents
        else:
            wanted = [ticket.requester]
        return [
            address
            for address in dict.fromkeys(a.lower() for a in wanted if a)
            if store.undeliverable_until(session, address, now) is None
        ]

    def _send(
        self,
        session: Session,
        ticket: Ticket,
        template: str,
        recipient: str,
        reason: str,
        now: datetime,
        agent_language: str,
    ) -> None:
        assert ticket.number is not None
        prefix = self._settings.prefix
        context: dict[str, Any] = {
            "ticket": _view(ticket, prefix),
            "settings": self._settings,
            "reason": reason,
        }
        language = language_for(template, ticket.language, agent_language)
        rendered = self._renderer.render(template, language, context)
        thread = tickets.conversation(session.connection(), ticket.number, recipient)
        thread = thread or _thread(session, ticket.number)  # never wrote to them: the ticket's
        rendered = replace(rendered, subject=with_tag(rendered.subject, prefix, ticket.number))
        envelope = ticket_envelope(
            self._settings,
            self._signer,
            ticket.number,
            recipient,
            thread,
            now,
            auto_submitted="auto-generated",
        )
        enqueue(
            session,
            ticket_number=ticket.number,
            template=template,
            rendered=rendered,
            envelope=envelope,
        )
        ticket_log.log_event(
            session,
            ticket.number,
            EventKind.MAIL_QUEUED,
            f"{template} to {recipient}",
            now,
            message_id=envelope.message_id,
        )


def _thread(session: Session, number: int) -> list[str]:
    """The ids of the mails the ticket received, oldest first: the reminder threads under
    the conversation. Never ours: each of our ids proves its own recipient's mailbox."""
    rows = session.exec(
        select(Message.message_id)
        .where(Message.ticket_number == number, Message.direction == "in")
        .order_by(col(Message.id))
    ).all()
    return [m for m in rows if m]


def _view(ticket: Ticket, prefix: str) -> TicketView:
    """The same ``ticket`` the intake's templates see (subject masked, fields included)."""
    assert ticket.number is not None
    state = TicketState(
        ticket.number, ticket.subject, TicketStatus(ticket.status), ticket.priority, ticket.queue,
        ticket.requester, ticket.language, ticket.created_at, ticket.due_at, ticket.fields,
    )  # fmt: skip
    return ticket_view(state, prefix)
