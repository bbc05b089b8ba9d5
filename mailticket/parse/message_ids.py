"""Message-ID syntax in header values (pure): one normalised id, or every id in order.

Used for the mail's own Message-ID and its threading headers (:mod:`mailticket.parse.mail`)
and for the id of the mail a bounce returns (:mod:`mailticket.parse.dsn`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

_ID: Final = re.compile(r"<[^<>\s]+>")


def message_id(value: str | None) -> str | None:
    """The ``<...>`` id without whitespace; a bare id gets its brackets; None when empty."""
    compact = re.sub(r"\s+", "", value or "")
    match = _ID.search(compact)
    if match:
        return match[0]
    compact = compact.strip("<>")
    return f"<{compact}>" if compact else None


def ids(values: Iterable[str]) -> tuple[str, ...]:
    """Every ``<...>`` id in the values, in order, without repeats."""
    return tuple(dict.fromkeys(found for value in values for found in _ID.findall(value)))
