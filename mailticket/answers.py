"""A Decision's answers as outgoing mails: rendered, tagged, addressed, signed.

Pure given the renderer and the signer; intake writes the result to the outbox in the
transaction that changes the ticket.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime

from mailticket.decision import Answer
from mailticket.mail import InboundMail
from mailticket.notices import Envelope, Renderer
from mailticket.outbox import Outgoing
from mailticket.secret_scan import NO_SECRETS, SecretReport, mask_secrets
from mailticket.settings import TicketSettings
from mailticket.threads import MessageIdSigner, with_tag
from mailticket.tickets import TicketState


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
        self, settings: TicketSettings, renderer: Renderer, signer: MessageIdSigner
    ) -> None:
        self._settings = settings
        self._renderer = renderer
        self._signer = signer

    def outgoing(
        self,
        ticket: TicketState,
        mail: InboundMail,
        answer: Answer,
        now: datetime,
        *,
        secret_warning: SecretReport = NO_SECRETS,
    ) -> Outgoing:
        """The mail ``answer`` asks for, on ``ticket``, in reply to ``mail`` (masked already).

        ``secret_warning`` is true when the requester sent a private key or recovery
        phrase: the acknowledgement tells them never to do that.
        """
        settings = self._settings
        context = {
            "ticket": ticket_view(ticket, settings.prefix),
            "message": mail,
            "settings": settings,
            "secret_warning": secret_warning,
        }
        rendered = self._renderer.render(answer.template, ticket.language, context)
        subject = with_tag(rendered.subject, settings.prefix, ticket.number)
        envelope = Envelope(
            sender=settings.support_address,
            to=answer.to,
            cc=(),
            message_id=self._signer.new(ticket.number),
            in_reply_to=mail.message_id,
            references=(*mail.references, mail.message_id),
            auto_submitted="auto-replied" if answer.automatic else "auto-generated",
            date=now,
            reply_to=settings.support_address,
        )
        return Outgoing(
            ticket.number, answer.template, replace(rendered, subject=subject), envelope
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
        fields=_fields(ticket.fields),
    )


def _fields(stored: str) -> dict[str, str]:
    try:
        loaded = json.loads(stored or "{}")
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}
