"""A ticket as deciding and rendering need it (a pure value; ``tickets`` reads and writes it)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from mailticket.decide.states import TicketStatus


@dataclass(frozen=True, slots=True)
class TicketState:
    """A ticket as intake needs it: to write its changes and to render its mails."""

    number: int
    subject: str
    status: TicketStatus
    priority: str
    queue: str
    requester: str
    language: str
    created_at: datetime
    due_at: datetime | None
    fields: str = "{}"  # JSON of the values the rules extracted
    updated_at: datetime | None = None


def fields_of(stored: str) -> dict[str, str]:
    """The values rules extracted (JSON in the row; anything else reads as none)."""
    try:
        loaded = json.loads(stored or "{}")
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}
