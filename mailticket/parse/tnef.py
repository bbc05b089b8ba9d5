"""Unpack Outlook's TNEF (``winmail.dat``, application/ms-tnef): its body and files (pure).

Outlook sends its rich-text mail as a TNEF blob that other clients show as an opaque
``winmail.dat``. :func:`unpack` reads it with ``tnefparse``: the body (plain text, else
HTML, else the compressed RTF body decompressed with ``compressed_rtf`` and turned into
text by ``striprtf``) and the files inside. A blob that cannot be read gives None: the
caller keeps it as an attachment, and the raw mail keeps it in any case.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final

import compressed_rtf  # type: ignore[import-untyped]
import tnefparse  # type: ignore[import-untyped]
from striprtf.striprtf import rtf_to_text

from mailticket.parse import charsets

SIGNATURE: Final = b"\x78\x9f\x3e\x22"  # 0x223E9F78, little-endian
TYPES: Final = frozenset({"application/ms-tnef", "application/vnd.ms-tnef"})

_EMBEDDED: Final = "message.tnef"  # an attached Outlook item: a TNEF stream of its own
logging.getLogger("tnefparse").setLevel(logging.CRITICAL)  # it logs every odd blob it reads


@dataclass(frozen=True, slots=True)
class Winmail:
    """What a TNEF blob holds: its body as text and HTML, and its files."""

    text: str
    html: str
    files: tuple[tuple[str, bytes], ...]  # (file name as sent, "" when none; content)
    lossy: bool


def is_tnef(content_type: str, filename: str, data: bytes) -> bool:
    """A TNEF blob: labelled as one, or named winmail.dat (some gateways relabel it)."""
    named = content_type in TYPES or filename.strip().lower() == "winmail.dat"
    return named and data.startswith(SIGNATURE)


def unpack(data: bytes) -> Winmail | None:
    """The body and files of a TNEF blob; None when it holds neither or cannot be read."""
    try:
        blob = tnefparse.TNEF(data, do_checksum=False)
        files = tuple(_file(attachment, blob.codepage) for attachment in blob.attachments)
        text, html, lossy = _body(blob)
    except Exception:  # a broken blob must not cost the mail: it stays an attachment
        return None
    if not (files or text.strip() or html.strip()):
        return None
    return Winmail(text=text, html=html, files=files, lossy=lossy)


def _body(blob: tnefparse.TNEF) -> tuple[str, str, bool]:
    """(text, html, lossy): the plain body, the HTML body, else the RTF body as text."""
    codepage = blob.codepage or "cp1252"
    text = _text(blob.body, codepage)
    html = _text(blob.htmlbody, codepage)
    if text.text.strip() or html.text.strip() or not blob._rtfbody:
        return text.text, html.text, text.lossy or html.lossy
    rtf = compressed_rtf.decompress(blob._rtfbody + b"\x00")
    plain = str(rtf_to_text(rtf.decode("latin-1"), encoding=codepage, errors="replace"))  # type: ignore[no-untyped-call]
    return plain, "", "\ufffd" in plain


def _text(value: str | bytes | None, codepage: str) -> charsets.Decoded:
    """A body property: tnefparse gives str for Unicode properties, bytes for the others."""
    if isinstance(value, str):
        return charsets.Decoded(value.rstrip("\x00"))
    return charsets.decode_body((value or b"").rstrip(b"\x00"), codepage)


def _file(attachment: tnefparse.tnef.TNEFAttachment, codepage: str | None) -> tuple[str, bytes]:
    """(name, content) of one attached file; an embedded Outlook item keeps its bytes."""
    try:
        name = attachment.long_filename()
    except UnicodeDecodeError:  # tnefparse reads a title in the sender's code page as UTF-8
        name = attachment._name  # the title's bytes, then
    if isinstance(name, bytes):
        name = charsets.decode_8bit(name.rstrip(b"\x00"), None, codepage).text
    name = str(name).rstrip("\x00")
    if not name and hasattr(attachment, "embed"):
        name = _EMBEDDED
    data = attachment.data
    return name, data if isinstance(data, bytes) else bytes(data)
