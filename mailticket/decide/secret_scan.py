"""Secrets guard: find and mask private keys and recovery phrases in mail (pure).

Customers of a crypto wallet paste their private key or recovery phrase into support
mail. Agents must never read it in clear, so every secret is replaced by a fixed marker
(``MARKERS``); every other character stays as it was ("help!" beside a phrase stays
"help!"). Masking is idempotent: markers are blanked before a scan, and every decision
reads only text that masking leaves alone.

What is a secret: private keys in ``secret_keys`` (labelled transaction hashes are not),
recovery phrases in ``seed_phrases``. What of a mail is read (HTML attributes, text
attachments, forwarded mails): ``secret_sources``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import chain
from typing import Final

from mailticket.decide.secret_keys import find_keys
from mailticket.decide.secret_report import MARKERS, NO_SECRETS, Kind, SecretReport
from mailticket.decide.secret_sources import attachment_texts, html_texts
from mailticket.decide.seed_phrases import find_phrases
from mailticket.parse.mail import InboundMail

__all__ = [
    "MARKERS",
    "NO_SECRETS",
    "SECRET_TAG",
    "Finding",
    "Kind",
    "SecretReport",
    "find_secrets",
    "mask_secrets",
    "masked_mail",
    "scan_inbound",
    "scan_mail",
]


@dataclass(frozen=True, slots=True)
class Finding:
    """A secret at text[span[0]:span[1]]; ``language`` is the wordlist of a mnemonic."""

    kind: Kind
    span: tuple[int, int]
    language: str | None = None


SECRET_TAG: Final = "secret-exposed"  # on every ticket a secret was sent to


def find_secrets(text: str) -> tuple[Finding, ...]:
    """Every private key and recovery phrase in ``text``, in order, never overlapping."""
    scan = _blank_markers(text)
    phrases = find_phrases(scan)
    scan = _blank(scan, [(p.start, p.end) for p in phrases], "\x01")
    keys = [Finding("private_key", span) for span in find_keys(scan)]
    mnemonics = [Finding("mnemonic", (p.start, p.end), p.language) for p in phrases]
    return tuple(sorted((*keys, *mnemonics), key=lambda f: f.span))


def mask_secrets(text: str) -> str:
    """``text`` with each secret replaced by its marker; idempotent."""
    parts: list[str] = []
    position = 0
    for finding in find_secrets(text):
        start, end = finding.span
        parts += [text[position:start], MARKERS[finding.kind]]
        position = end
    parts.append(text[position:])
    return "".join(parts)


def scan_mail(
    text: str,
    html: str = "",
    subject: str = "",
    *,
    attachments: Sequence[tuple[str, bytes | None]] = (),
) -> SecretReport:
    """Secrets in a mail's text, subject, HTML (text and attribute values) or in its
    attachments (file name, content or None) that hold text, forwarded mails included."""
    texts = chain((text, subject), html_texts(html) if html else (), attachment_texts(attachments))
    kinds: set[Kind] = set()
    for part in texts:
        kinds.update(f.kind for f in find_secrets(part))
        if len(kinds) == len(MARKERS):
            break
    found = tuple(k for k in MARKERS if k in kinds)
    return SecretReport(bool(found), found)


def scan_inbound(mail: InboundMail) -> SecretReport:
    """``scan_mail`` over every part of a parsed mail, its attachments included."""
    files = tuple((a.filename, a.content) for a in mail.attachments)
    return scan_mail(mail.text, mail.html, mail.subject, attachments=files)


def masked_mail(mail: InboundMail) -> InboundMail:
    """``mail`` as agents, rules and templates may see it: subject and text masked.

    A secret split by HTML tags cannot be masked inside the HTML, so such HTML is dropped
    (the text part, or the text rendered from the HTML, stays).
    """
    html = mask_secrets(mail.html) if mail.html else ""
    if html and scan_mail("", html):
        html = ""
    return replace(
        mail, subject=mask_secrets(mail.subject), text=mask_secrets(mail.text), html=html
    )


def _blank_markers(text: str) -> str:
    blanks: dict[Kind, str] = {"private_key": "\x00", "mnemonic": "\x01"}
    for kind, blank in blanks.items():
        marker = MARKERS[kind]
        if marker in text:
            text = text.replace(marker, blank * len(marker))
    return text


def _blank(scan: str, spans: list[tuple[int, int]], blank: str) -> str:
    """``scan`` with each span overwritten by ``blank`` (same length: offsets hold)."""
    parts: list[str] = []
    position = 0
    for start, end in spans:
        parts += [scan[position:start], blank * (end - start)]
        position = end
    parts.append(scan[position:])
    return "".join(parts)
