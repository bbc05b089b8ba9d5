"""A mail to send, as decided: rendered, addressed, its Message-ID fixed (a pure value).

Answers and follow-ups make them; the outbox stores and delivers them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mailticket.outbound.notices import Envelope, Rendered


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One mail to send: rendered, addressed, its Message-ID fixed."""

    ticket_number: int | None
    template: str
    rendered: Rendered
    envelope: Envelope
    attachments: tuple[tuple[str, str, bytes], ...] = ()  # (filename, content type, bytes)
    not_before: datetime | None = None  # delayed by the global budget (see intake)
