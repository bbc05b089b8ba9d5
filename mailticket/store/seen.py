"""Whether a mail is stored already: its identity is its Message-ID and what it says.

An MTA's retry, the IMAP copy of an SMTP mail, a re-import: one mail, stored once. A
different mail that reuses a Message-ID is a mail of its own (``<id>#<digest>``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, insert, select

from mailticket.parse.fingerprint import canonical_bytes_digest, content_digest
from mailticket.parse.mail import InboundMail
from mailticket.store import INBOUND
from mailticket.store.tickets import new_id

_INSERT_INBOUND = insert(INBOUND)


@dataclass(frozen=True, slots=True)
class Identity:
    """What identifies a received mail, parsed or not."""

    dedupe_key: str
    message_id: str
    sha256: str


def identity(mail: InboundMail, dedupe_key: str | None = None) -> Identity:
    return Identity(dedupe_key or mail.dedupe_key, mail.message_id, mail.sha256)


def digest(mail: InboundMail) -> str:
    """The content fingerprint of a parsed mail (see ``fingerprint``)."""
    files = [(a.filename, a.size, a.content) for a in mail.attachments]
    return content_digest(mail, mail.date.isoformat() if mail.date else "", files)


@dataclass(frozen=True, slots=True)
class Seen:
    """Whether a mail was stored before, and the key it is stored under if not."""

    duplicate: bool
    dedupe_key: str
    reused: str = ""  # the Message-ID an earlier, different mail already had


_STORED = select(INBOUND.c.sha256, INBOUND.c.raw).where(INBOUND.c.dedupe_key == bindparam("key"))


def seen(connection: Connection, mail: InboundMail, parse: Callable[[bytes], InboundMail]) -> Seen:
    """Look the mail up by its identity: the Message-ID and what it says.

    A mail with a Message-ID is stored under it; a different mail that reuses it, under
    ``<id>#<digest>``. A mail without one is stored under ``sha256c:`` and the hash of its
    bytes with canonical line endings, trace headers aside (and was, before, under the
    hash of its bytes: looked up too, so a re-import adds nothing).
    """
    if not mail.has_message_id:
        canonical = f"sha256c:{canonical_bytes_digest(mail.raw)}"
        for key in (canonical, f"sha256:{mail.sha256}"):
            if connection.execute(_STORED, {"key": key}).first() is not None:
                return Seen(True, key)
        return Seen(False, canonical)
    mine = digest(mail)
    first = connection.execute(_STORED, {"key": mail.message_id}).first()
    if first is None:
        return Seen(False, mail.message_id)
    if first.sha256 == mail.sha256 or _same(first.raw, mine, parse):
        return Seen(True, mail.message_id)
    key = f"{mail.message_id}#{mine}"
    if connection.execute(_STORED, {"key": key}).first() is not None:
        return Seen(True, key)
    return Seen(False, key, reused=mail.message_id)


def _same(raw: bytes, mine: str, parse: Callable[[bytes], InboundMail]) -> bool:
    """Whether the stored mail ``raw`` says what the new one says (``mine``); a stored
    mail that no longer parses is taken as the same (it was kept, not lost)."""
    try:
        return digest(parse(raw)) == mine
    except Exception:
        return True


def store_inbound(
    connection: Connection,
    mail: Identity,
    raw: bytes,
    source: str,
    now: datetime,
    *,
    state: str,
    ticket_number: int | None,
    error: str | None = None,
) -> int:
    """The raw mail's row; returns its id."""
    values = {
        "dedupe_key": mail.dedupe_key,
        "message_id": mail.message_id,
        "sha256": mail.sha256,
        "source": source,
        "received_at": now,
        "state": state,
        "error": error,
        "ticket_number": ticket_number,
        "raw": raw,
    }
    return new_id(connection.execute(_INSERT_INBOUND, values))
