"""What makes two received mails the same mail (pure).

The same mail arrives more than once: an MTA retry, the IMAP copy of a mail that also came
by SMTP, a re-import. The copies differ in their trace headers (Received, Return-Path,
Delivered-To), and a relay may re-encode the body (8-bit to quoted-printable) on the way;
what they say does not change. Broken mailers, templates and phone clients, on the other
hand, reuse Message-IDs for different mails. So a mail's identity is its Message-ID *and*
what it says: author, date, subject, text and files, compared after decoding.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final, Protocol

# what delivering MTAs put on top of a mail (RFC 5321 4.4, RFC 9228): the same mail by
# SMTP, IMAP and a pipe differs in these
_TRACE: Final = re.compile(
    rb"(?:(?:return-path|delivered-to|x-original-to|received|envelope-to|x-envelope-(?:from|to))"
    rb"[ \t]*:[^\n]*\n(?:[ \t][^\n]*\n)*)",
    re.IGNORECASE,
)


class Readable(Protocol):
    """What of a parsed mail the fingerprint reads (``mail.InboundMail``)."""

    @property
    def from_addr(self) -> str: ...
    @property
    def subject(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def html(self) -> str: ...


def content_digest(mail: Readable, date: str, files: list[tuple[str, int, bytes | None]]) -> str:
    """A hash of what the mail says, blind to transfer encodings and line endings.

    ``date`` is the Date header as read (ISO, "" when missing); ``files`` the attachments'
    (name, size, content), the content None when over the size cap.
    """
    digest = hashlib.sha256()
    for part in (
        mail.from_addr,
        date,
        " ".join(mail.subject.split()),
        _lines(mail.text),
        _lines(mail.html),
    ):
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    for name, size, content in files:
        digest.update(f"{name}\0{size}\0".encode("utf-8", "surrogatepass"))
        digest.update(hashlib.sha256(content or b"").digest())
    return digest.hexdigest()


def _lines(text: str) -> str:
    """The text with canonical line endings and no trailing blanks (a relay may add or
    drop either)."""
    return "\n".join(line.rstrip() for line in text.splitlines()).strip()


def canonical_bytes_digest(raw: bytes) -> str:
    """The identity of a mail without a Message-ID: a hash of its bytes with canonical
    line endings, the trace headers delivering MTAs put on top of it left out."""
    text = raw.replace(b"\r\n", b"\n")
    position = 0
    while match := _TRACE.match(text, position):
        position = match.end()
    return hashlib.sha256(text[position:]).hexdigest()
