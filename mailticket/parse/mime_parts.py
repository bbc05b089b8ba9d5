"""Walk a mail's MIME tree into its body text, HTML and attachments (pure).

Text is never dropped: undecodable bytes are replaced and the body is flagged ``lossy``.
Of a ``multipart/alternative`` the first plain text that is not blank and the last HTML
are kept; every other part that is not body text becomes an :class:`AttachedFile`
(forwarded mails too), named safely and capped in size. Parts nested deeper than
``limits.MAX_DEPTH`` are kept whole as one attachment; both limits leave a note
(``Body.notes``). Outlook's ``winmail.dat`` (TNEF) is unpacked: its files become the
attachments (the blob itself stays in the raw mail).

A mail that has text somewhere shows it: when its own body is blank, the text of what
it carries is its body, in order: an attached or wrapped message (a top-level
``message/rfc822`` from GroupWise, a digest; not the returned message of a delivery
report), a text part sent with a file name, a TNEF body.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import quopri
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesParser
from typing import Final

from inscriptis import get_text

from mailticket.parse import charsets, limits, mime_params, mime_tree, tnef
from mailticket.parse.charsets import Decoded

_UNSAFE: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_BODY_TYPES: Final = frozenset({"text/plain", "text/html"})
_DEFAULT_NAMES: Final = {
    "message/rfc822": "message.eml",
    "message/global": "message.eml",
    "application/ms-tnef": "winmail.dat",
    "text/calendar": "invite.ics",  # not in Python's built-in table
}
_NESTED_NAME: Final = "parts.eml"  # a multipart below limits.MAX_DEPTH, kept whole
# Python's built-in type table only, so that names do not depend on the host's mime.types;
# built here, because creating it reads those files once (parse itself does no I/O).
_MIME_TYPES: Final = mimetypes.MimeTypes()


@dataclass(frozen=True, slots=True)
class AttachedFile:
    filename: str
    content_type: str
    size: int
    content: bytes | None  # None when over tickets.max_attachment_size (recorded, not kept)


@dataclass(frozen=True, slots=True)
class Body:
    """What a mail says: its text (rendered from the HTML when it has none) and files."""

    text: str
    html: str
    attachments: tuple[AttachedFile, ...]
    lossy: bool
    notes: tuple[str, ...]  # what a limit left out (see mailticket.parse.limits)


def read_body(msg: Message, *, cap: int, hint: str | None, linesep: str) -> Body:
    """The body of ``msg``; attachments over ``cap`` bytes are recorded without content.

    ``hint`` is the charset for undeclared 8-bit parameters; ``linesep`` the line ending
    attached messages are written back with (the one the raw mail uses).
    """
    report = mime_tree.content_type(msg, hint)[0] == "multipart/report"
    parts = _Parts(cap, hint, linesep, report=report)
    _walk(msg, parts, 0)
    text, html = _settle(parts)
    return Body(
        text=text,
        html=_newlines(html),
        attachments=tuple(parts.attachments),
        lossy=parts.lossy,
        notes=tuple(parts.notes),
    )


def _settle(parts: _Parts) -> tuple[str, str]:
    """The text and HTML of a walk: the plain text, else the HTML's rendering, else the
    text of what the mail carries (``parts.spare``, walked only when needed)."""
    html = "\n".join(parts.html)
    text = _newlines("\n".join(parts.plain))
    text = text if text.strip() else _html_to_text(html)
    if text.strip() or not parts.spare:
        return text, html
    spare = _Parts(parts.cap, parts.hint, parts.linesep)  # its attachments are thrown away
    for fill in parts.spare:
        fill(spare)
    spare_text, spare_html = _settle(spare)
    parts.lossy = parts.lossy or spare.lossy
    return (
        (spare_text, html if html.strip() else spare_html) if spare_text.strip() else (text, html)
    )


@dataclass(slots=True)
class _Parts:
    """What one walk over the MIME tree collects (mutable, private to one parse call)."""

    cap: int
    hint: str | None
    linesep: str
    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    attachments: list[AttachedFile] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # text to show when the mail's own is blank, in order (see _settle)
    spare: list[Callable[[_Parts], None]] = field(default_factory=list)
    lossy: bool = False
    report: bool = False  # a delivery report: its returned message is no text of its own

    def branch(self) -> _Parts:
        """A collector for one alternative; attachments, notes, spare text are shared."""
        return _Parts(
            self.cap,
            self.hint,
            self.linesep,
            attachments=self.attachments,
            notes=self.notes,
            spare=self.spare,
            report=self.report,
        )


def _walk(part: Message, parts: _Parts, depth: int) -> None:
    """Sort one part into body text, HTML or attachments, recursing into multiparts."""
    content_type = mime_tree.content_type(part, parts.hint)[0]
    children = mime_tree.children(part)
    if children is None:
        _leaf(part, content_type, parts, depth == 0)
    elif content_type == mime_tree.DELIVERY_STATUS:
        return  # read by dsn.read_bounce
    elif content_type.startswith("message/"):
        data = _message_bytes(part, children, parts.linesep)
        parts.attachments.append(_attachment(part, content_type, data, parts))
        if not parts.report:
            parts.spare.append(lambda target: _walk_message(part, children, target, depth))
    elif depth >= limits.MAX_DEPTH:  # the whole subtree, headers and boundaries, as a file
        data = mime_tree.flatten(part, parts.linesep)
        parts.attachments.append(_attachment(part, content_type, data, parts))
        parts.notes.append(limits.depth_note(parts.attachments[-1].filename))
    elif content_type == "multipart/alternative":
        _walk_alternative(children, parts, depth)
    else:
        for child in children:
            _walk(child, parts, depth + 1)


def _walk_alternative(children: list[Message], parts: _Parts, depth: int) -> None:
    """Take the plain text of the first alternative that has some and the HTML of the last."""
    branches = [parts.branch() for _ in children]
    for child, branch in zip(children, branches, strict=True):
        _walk(child, branch, depth + 1)
    plain = next((branch for branch in branches if "".join(branch.plain).strip()), None)
    html = next((branch for branch in reversed(branches) if branch.html), None)
    for chosen, target in ((plain, parts.plain), (html, parts.html)):
        if chosen is not None:
            target.extend(chosen.plain if target is parts.plain else chosen.html)
            parts.lossy = parts.lossy or chosen.lossy


def _leaf(part: Message, content_type: str, parts: _Parts, root: bool) -> None:
    """A part without children: body text (plain or HTML) or an attachment.

    A text part that carries a file name is a file the sender attached, even when marked
    inline (Apple Mail), unless it is the whole mail; its text stays in the attachment.
    """
    disposition = _disposition(part, parts.hint)[0]
    filename = _filename(part, parts.hint)
    body_type = content_type in _BODY_TYPES or content_type.startswith("multipart/")
    inline = disposition != "attachment" and (not filename or root)
    data = mime_tree.payload_bytes(part)
    if tnef.is_tnef(content_type, filename, data) and _unpack_tnef(data, parts):
        return
    if not (body_type and inline):
        parts.attachments.append(_attachment(part, content_type, data, parts))
        if content_type in _BODY_TYPES and disposition != "attachment":  # named, not attached
            parts.spare.append(lambda target: _text(part, content_type, data, target))
        return
    _text(part, content_type, data, parts)


def _text(part: Message, content_type: str, data: bytes, parts: _Parts) -> None:
    """Decode a text part into the plain text or the HTML of ``parts``."""
    charset = mime_tree.content_type(part, parts.hint)[1].get("charset")
    html = content_type == "text/html"
    declared = charset.text if charset else charsets.html_charset(data) if html else None
    decoded = charsets.decode_body(data, declared)
    (parts.html if html else parts.plain).append(decoded.text)
    parts.lossy = parts.lossy or decoded.lossy


def _unpack_tnef(data: bytes, parts: _Parts) -> bool:
    """Outlook's winmail.dat: its files as attachments, its body as spare text; False
    when it cannot be read (it is then kept as it is)."""
    winmail = tnef.unpack(data)
    if winmail is None:
        return False
    for name, content in winmail.files:
        guessed = _MIME_TYPES.guess_type(name, strict=False)[0] if name else None
        parts.attachments.append(
            _stored(safe_filename(name), guessed or "application/octet-stream", content, parts)
        )

    def fill(target: _Parts) -> None:
        target.plain.append(winmail.text)
        target.html.append(winmail.html)
        target.lossy = target.lossy or winmail.lossy

    parts.spare.append(fill)
    return True


def _walk_message(part: Message, children: list[Message], parts: _Parts, depth: int) -> None:
    """Walk the message an attached or wrapping message/* part carries, as body text."""
    if depth >= limits.MAX_DEPTH:
        return
    encoding = "".join(mime_tree.raw_values(part, "content-transfer-encoding")[:1])
    if encoding.strip().lower() in ("base64", "quoted-printable"):  # not undone by the parser
        data = _message_bytes(part, children, parts.linesep)
        try:
            children = [BytesParser(policy=mime_tree.READ).parsebytes(data)]
        except RecursionError:  # nested beyond the parser's reach: it stays an attachment
            return
    for child in children:
        _walk(child, parts, depth + 1)


def _disposition(part: Message, hint: str | None) -> tuple[str, dict[str, Decoded]]:
    """The lower-case Content-Disposition ("attachment", "inline", "") and its params."""
    values = mime_tree.raw_values(part, "content-disposition")
    return mime_params.header_params(values[0] if values else "", hint)


def _filename(part: Message, hint: str | None) -> str:
    """The declared file name: Content-Disposition filename, else Content-Type name."""
    for found in (
        _disposition(part, hint)[1].get("filename"),
        mime_tree.content_type(part, hint)[1].get("name"),
    ):
        if found and found.text.strip():
            return found.text
    return ""


def _attachment(part: Message, content_type: str, data: bytes, parts: _Parts) -> AttachedFile:
    """An attachment of the MIME tree."""
    return _stored(safe_filename(_filename(part, parts.hint)), content_type, data, parts)


def _stored(name: str, content_type: str, data: bytes, parts: _Parts) -> AttachedFile:
    """An attachment; its content is dropped (size kept) when it is over the cap."""
    name = name or _default_name(content_type, len(parts.attachments) + 1)
    content = data if len(data) <= parts.cap else None
    if content is None:
        parts.notes.append(limits.attachment_note(name, len(data), parts.cap))
    return AttachedFile(filename=name, content_type=content_type, size=len(data), content=content)


def _message_bytes(part: Message, payload: list[Message], linesep: str) -> bytes:
    """The bytes of an attached message; undo a transfer encoding the parser did not."""
    data = b"".join(mime_tree.flatten(inner, linesep) for inner in payload)
    encoding = "".join(mime_tree.raw_values(part, "content-transfer-encoding")[:1])
    encoding = encoding.strip().lower()
    try:
        if encoding == "base64":
            return base64.b64decode(data.strip())
        if encoding == "quoted-printable":
            return quopri.decodestring(data.strip())
    except (binascii.Error, ValueError):
        pass
    return data


def safe_filename(name: str) -> str:
    """A file name safe to store and offer for download: no directories, no control or
    bidi-override characters, no leading dots, at most 255 characters (extension kept)."""
    base = re.split(r"[/\\]", name)[-1]
    base = _UNSAFE.sub("", base).strip().lstrip(".").strip()
    if len(base) > 255:
        stem, dot, ext = base.rpartition(".")
        base = f"{stem[: 254 - len(ext)]}.{ext}" if dot and len(ext) < 20 else base[:255]
    return base


def _default_name(content_type: str, index: int) -> str:
    """``attachment-N`` with an extension guessed from the content type."""
    if content_type in _DEFAULT_NAMES:
        return _DEFAULT_NAMES[content_type]
    if content_type.startswith("multipart/"):
        return _NESTED_NAME
    return f"attachment-{index}{_MIME_TYPES.guess_extension(content_type) or ''}"


def _newlines(text: str) -> str:
    """Normalise CRLF and lone CR to LF."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _html_to_text(html: str) -> str:
    """A plain-text rendering of an HTML-only mail (inscriptis keeps tables and lists)."""
    if not html.strip():
        return ""
    try:
        return _newlines(str(get_text(html)))
    except Exception:  # a rendering bug must not cost the mail: fall back to bare tag removal
        return _newlines(re.sub(r"<[^>]*>", " ", html))
