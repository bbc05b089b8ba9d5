"""A Decision's answers as outgoing mails: rendered, tagged, addressed, signed.

Pure given the renderer and the signer; intake writes the result to the outbox in the
transaction that changes the ticket.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final

from mailticket.decide.decision import Answer
from mailticket.decide.secret_scan import NO_SECRETS, SecretReport, mask_secrets
from mailticket.decide.threads import MessageIdSigner, with_tag
from mailticket.decide.ticket_state import TicketState, fields_of
from mailticket.outbound.agent_files import NO_FILES, AgentFiles, files_for_agents
from mailticket.outbound.notices import Envelope, Renderer
from mailticket.outbound.outgoing import Outgoing
from mailticket.parse.mail import InboundMail
from mailticket.settings import TicketSettings

# notifications that carry a requester's (or participant's) mail to an agent
_CARRY_FILES: Final = frozenset({"agent_new", "agent_update"})
# the mail agents get: in the agents' language (agents.language or the queue's), every other
# in the requester's; agent_reply is an agent's words relayed to the requester
AGENT_TEMPLATES: Final = frozenset({
    "agent_new", "agent_update", "agent_note", "agent_error", "agent_confirm",
    "agent_digest", "loop_suspected", "reminder_agent", "escalation",
})  # fmt: skip


def language_for(template: str, requester_language: str, agent_language: str) -> str:
    """The language ``template`` is rendered in: its reader's."""
    return agent_language if template in AGENT_TEMPLATES else requester_language


@dataclass(frozen=True, slots=True)
class TicketView:
    """What templates see as ``ticket``."""

    number: int
    tag: str
    subject: str
    status: str
    priority: str
    queue: str
    requester: str
    created_at: datetime
    due_at: datetime | None
    fields: dict[str, str]  # what the rules extracted, e.g. tx_hash: a template can ask for it


class Answers:
    def __init__(
        self,
        settings: TicketSettings,
        renderer: Renderer,
        signer: MessageIdSigner,
        *,
        files_budget: int = 10 * 1024 * 1024,
    ) -> None:
        self._settings = settings
        self._renderer = renderer
        self._signer = signer
        self._files_budget = files_budget  # agents.max_attachment_bytes

    def outgoing(
        self,
        ticket: TicketState,
        mail: InboundMail,
        answer: Answer,
        now: datetime,
        *,
        secret_warning: SecretReport = NO_SECRETS,
        thread: Sequence[str] = (),
        agent_language: str = "en",
    ) -> Outgoing:
        """The mail ``answer`` asks for, on ``ticket``, in reply to ``mail`` (masked already).

        ``thread`` is what the recipient has seen of the ticket (``tickets.conversation``):
        the mail answers the last of it, so each recipient's client shows one
        conversation per ticket. ``secret_warning`` is true when the requester sent a
        private key or recovery phrase: the acknowledgement tells them never to do that.
        """
        settings = self._settings
        files = self._agent_files(mail, answer, secret_warning)
        context = {
            "ticket": ticket_view(ticket, settings.prefix),
            "files": files.notes,
            "message": mail,
            "settings": settings,
            "secret_warning": secret_warning,
            "text": answer.text,
            "errors": answer.errors,
            "proposed_cc": answer.proposed_cc,
        }
        language = language_for(answer.template, ticket.language, agent_language)
        rendered = self._renderer.render(answer.template, language, context)
        subject = with_tag(rendered.subject, settings.prefix, ticket.number)
        envelope = ticket_envelope(
            settings,
            self._signer,
            ticket.number,
            answer.to,
            thread,
            now,
            auto_submitted=_auto_submitted(answer),
            cc=answer.cc,
            reply_to=self._reply_to(answer),
            answering=mail,
        )
        attached = _relayed_files(mail) if answer.relayed else files.attached
        return Outgoing(
            ticket.number, answer.template, replace(rendered, subject=subject), envelope, attached
        )

    def status_reply(
        self, mail: InboundMail, answer: Answer, listing: Sequence[TicketState], now: datetime
    ) -> Outgoing:
        """The ``status`` answer: the sender's tickets, on no ticket."""
        settings = self._settings
        context: dict[str, Any] = {
            "tickets": [_listed(t, settings.prefix) for t in listing],
            "message": mail,
            "settings": settings,
        }
        rendered = self._renderer.render(answer.template, mail.language, context)
        envelope = Envelope(
            sender=settings.support_address,
            to=answer.to,
            cc=(),
            message_id=self._signer.new(0, answer.to),
            in_reply_to=mail.message_id,
            references=(*mail.references, mail.message_id),
            auto_submitted=_auto_submitted(answer),
            date=now,
            reply_to=settings.support_address,
        )
        return Outgoing(None, answer.template, rendered, envelope)

    def _agent_files(self, mail: InboundMail, answer: Answer, secrets: SecretReport) -> AgentFiles:
        """The requester's files for a notification that carries their mail to an agent."""
        if answer.template not in _CARRY_FILES or not mail.attachments:
            return NO_FILES
        return files_for_agents(mail.attachments, self._files_budget, secrets=bool(secrets))

    def _reply_to(self, answer: Answer) -> str:
        """A reply to an internal note is a note too, when there is an address for notes."""
        if answer.template == "agent_note" and self._settings.comment_address:
            return self._settings.comment_address
        return self._settings.support_address


@dataclass(frozen=True, slots=True)
class ListedTicket:
    """A line of the ``status`` answer."""

    number: int
    tag: str
    subject: str
    status: str
    updated_at: datetime


def _listed(ticket: TicketState, prefix: str) -> ListedTicket:
    updated = ticket.updated_at or ticket.created_at
    return ListedTicket(
        ticket.number, f"[{prefix}-{ticket.number}]", mask_secrets(ticket.subject),
        ticket.status, updated,
    )  # fmt: skip


REFERENCES_DEPTH: Final = 20  # the newest Message-IDs of a conversation a mail references


def ticket_envelope(
    settings: TicketSettings,
    signer: MessageIdSigner,
    number: int,
    to: str,
    thread: Sequence[str],
    now: datetime,
    *,
    auto_submitted: str | None,
    cc: tuple[str, ...] = (),
    reply_to: str | None = None,
    answering: InboundMail | None = None,
) -> Envelope:
    """The envelope of every mail we send on a ticket (answers, relays, follow-ups): from
    the support address, its Message-ID signed for its one recipient, threaded under
    ``thread``, what that recipient has seen of the ticket."""
    in_reply_to, references = _threading(answering, to, thread)
    return Envelope(
        sender=settings.support_address,
        to=to,
        cc=cc,
        message_id=signer.new(number, to),
        in_reply_to=in_reply_to,
        references=references,
        auto_submitted=auto_submitted,
        date=now,
        reply_to=reply_to or settings.support_address,
    )


def _threading(
    mail: InboundMail | None, to: str, thread: Sequence[str]
) -> tuple[str | None, tuple[str, ...]]:
    """In-Reply-To and References: what ``to`` has seen of the ticket; with nothing yet,
    the mail itself when ``to`` wrote it. Never another person's ids: an agent's
    notification ids prove the agent's mailbox and must not reach a requester."""
    if thread:
        return thread[-1], tuple(thread[-REFERENCES_DEPTH:])
    if mail is not None and to == mail.from_addr:
        return mail.message_id, (*mail.references[-REFERENCES_DEPTH + 1 :], mail.message_id)
    return None, ()


def _auto_submitted(answer: Answer) -> str | None:
    """RFC 3834: an automatic answer is ``auto-replied``, a notification ``auto-generated``,
    a person's words relayed carry none (the requester's own auto-responder may answer)."""
    if answer.relayed:
        return None
    return "auto-replied" if answer.automatic else "auto-generated"


def _relayed_files(mail: InboundMail) -> tuple[tuple[str, str, bytes], ...]:
    """The files an agent attached, sent on with their words (those kept under the cap)."""
    return tuple(
        (a.filename, a.content_type, a.content) for a in mail.attachments if a.content is not None
    )


def ticket_view(ticket: TicketState, prefix: str) -> TicketView:
    return TicketView(
        number=ticket.number,
        tag=f"[{prefix}-{ticket.number}]",
        subject=mask_secrets(ticket.subject),
        status=ticket.status,
        priority=ticket.priority,
        queue=ticket.queue,
        requester=ticket.requester,
        created_at=ticket.created_at,
        due_at=ticket.due_at,
        fields=fields_of(ticket.fields),
    )
