"""Which ticket a mail belongs to, and the evidence (pure; stored ids come in as a lookup).

Evidence, strongest first:
1. our signed Message-ID (``<MT-123.<nonce><hmac>@host>``) in In-Reply-To/References;
2. the tracking tag ``[MT-123]`` anywhere in the subject;
3. an In-Reply-To/References naming any Message-ID we have stored (ours or theirs).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

_NONCE_HEX = 12
_SIG_HEX = 16
_REPLY_PREFIX = re.compile(
    r"^\s*(?:(?:re|fw|fwd|aw|wg|sv|vs|antw|tr|rif|r|答复|回复|转发|回覆|轉寄)\s*(?:\[\d+\])?\s*[:：]\s*)+",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class ThreadMatch:
    ticket: int | None
    evidence: str  # human-readable: why this ticket, or why none


# the brackets a tag comes in: ASCII, and those Chinese and Japanese input methods type
# (full-width, lenticular, tortoise shell, corner); a full-width hyphen or digits too
_OPEN, _CLOSE = "[［【〔〖「『", "]］】〕〗」』"
_HYPHEN = "-－‐–"


@lru_cache(maxsize=32)
def _tag_pattern(prefix: str) -> re.Pattern[str]:
    return re.compile(
        rf"[{re.escape(_OPEN)}]\s*{re.escape(prefix)}\s*[{_HYPHEN}]\s*(\d{{1,12}})\s*[{re.escape(_CLOSE)}]",
        re.IGNORECASE,
    )


def tag(prefix: str, number: int) -> str:
    return f"[{prefix}-{number}]"


def find_tag(subject: str, prefix: str) -> int | None:
    """The ticket number of the first ``[PREFIX-n]`` tag in the subject."""
    match = _tag_pattern(prefix).search(subject)
    return int(match[1]) if match else None  # int() reads full-width digits too


def clean_subject(subject: str, prefix: str) -> str:
    """The subject without reply/forward prefixes and tracking tags, for new tickets."""
    without_tags = _tag_pattern(prefix).sub("", subject)
    previous = None
    while previous != without_tags:
        previous = without_tags
        without_tags = _REPLY_PREFIX.sub("", without_tags).strip()
    return " ".join(without_tags.split())


def with_tag(subject: str, prefix: str, number: int) -> str:
    """The subject carrying the ticket's tag exactly once."""
    if find_tag(subject, prefix) == number:
        return subject
    return f"{tag(prefix, number)} {clean_subject(subject, prefix)}".strip()


@dataclass(frozen=True, slots=True)
class MessageIdSigner:
    """Signs the Message-IDs we send so that a reply proves which ticket it answers, and,
    for a mail to one recipient, that the replier reads that recipient's mailbox.

    ``<MT-123.<nonce><sig>.<to-sig>@host>``: ``sig`` signs the ticket, ``to-sig`` the ticket
    and the recipient. Only the recipient (and whoever they forward it to) has seen the
    id, so a mail that references it from that address is that address's owner's: an
    agent who replies to a notification acts, without DKIM. The id is never copied into
    a mail to anyone else (``tickets.conversation`` gives each recipient their own).
    """

    secret: bytes
    prefix: str
    host: str

    def new(self, number: int, recipient: str | None = None) -> str:
        nonce = secrets.token_hex(_NONCE_HEX // 2)
        signed = f"{nonce}{self._sign(number, nonce)}"
        if recipient:
            signed += "." + self._sign(number, nonce, recipient.lower())
        return f"<{self.prefix}-{number}.{signed}@{self.host}>"

    def verify(self, message_id: str) -> int | None:
        """The ticket number of one of our Message-IDs, or None when it is not ours.

        Ticket 0 signs mail on no ticket (the ``status`` list): a reply to it names no
        ticket, so it is None too and the reply is threaded like any new mail."""
        match = _signed_pattern(self.prefix).match(message_id.strip())
        if not match:
            return None
        number, token = int(match[1]), match[2]
        if number == 0:
            return None
        nonce, signature = token[:_NONCE_HEX], token[_NONCE_HEX:]
        expected = self._sign(number, nonce)
        return number if hmac.compare_digest(signature, expected) else None

    def sent_to(self, message_id: str, address: str) -> int | None:
        """The ticket of one of our Message-IDs that we sent to ``address``, else None."""
        match = _signed_pattern(self.prefix).match(message_id.strip())
        if not match or not match[3] or self.verify(message_id) is None:
            return None
        number, nonce = int(match[1]), match[2][:_NONCE_HEX]
        expected = self._sign(number, nonce, address.lower())
        return number if hmac.compare_digest(match[3], expected) else None

    def _sign(self, number: int, nonce: str, recipient: str = "") -> str:
        payload = f"{self.prefix}-{number}.{nonce}"
        if recipient:
            payload += f" to {recipient}"
        return hmac.new(self.secret, payload.encode(), hashlib.sha256).hexdigest()[:_SIG_HEX]


@lru_cache(maxsize=32)
def _signed_pattern(prefix: str) -> re.Pattern[str]:
    width = _NONCE_HEX + _SIG_HEX
    return re.compile(
        rf"^<{re.escape(prefix)}-(\d{{1,12}})\.([0-9a-f]{{{width}}})(?:\.([0-9a-f]{{{_SIG_HEX}}}))?@[^>]+>$"
    )


def replied_to(
    reference_ids: Sequence[str], address: str, signer: MessageIdSigner
) -> tuple[int, str] | None:
    """(ticket, id) of the newest of our Message-IDs sent to ``address`` that the mail
    references: proof that its sender reads that mailbox."""
    for message_id in reversed(reference_ids):
        number = signer.sent_to(message_id, address) if address else None
        if number is not None:
            return number, message_id
    return None


def find_thread(
    subject: str,
    reference_ids: Sequence[str],
    *,
    prefix: str,
    signer: MessageIdSigner,
    lookup: Callable[[Sequence[str]], int | None],
) -> ThreadMatch:
    """Decide the ticket of a mail from its subject and In-Reply-To + References ids."""
    for message_id in reversed(reference_ids):
        number = signer.verify(message_id)
        if number is not None:
            return ThreadMatch(number, f"signed Message-ID {message_id} in the references")
    number = find_tag(subject, prefix)
    if number is not None:
        return ThreadMatch(number, f"tag {tag(prefix, number)} in the subject")
    if reference_ids:
        number = lookup(reference_ids)
        if number is not None:
            return ThreadMatch(number, "In-Reply-To/References names a stored Message-ID")
    return ThreadMatch(None, "no tag, no known reference: new ticket")


def mentioned_numbers(text: str, prefix: str) -> tuple[int, ...]:
    """Ticket numbers written in a body as ``MT-123`` or ``[MT-123]``."""
    pattern = re.compile(rf"(?<![\w-]){re.escape(prefix)}-(\d{{1,12}})(?![\w])", re.IGNORECASE)
    return tuple(dict.fromkeys(int(found) for found in pattern.findall(text)))
