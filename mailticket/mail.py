"""Parse raw bytes into an InboundMail (pure: no I/O, no clock).

Tolerant by design: broken MIME, unknown charsets and missing headers still give a
mail; text is never dropped (undecodable bytes are replaced and the mail is flagged
``lossy``). Only bytes that are not a mail at all raise ParseError.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import mimetypes
import quopri
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.generator import BytesGenerator
from email.message import Message
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from io import BytesIO
from itertools import chain
from typing import Final

from inscriptis import get_text

from mailticket import charsets
from mailticket.charsets import Decoded
from mailticket.errors import ParseError

DEFAULT_MAX_ATTACHMENT_SIZE: Final = 10 * 1024 * 1024
MAX_DEPTH: Final = 40  # deeper MIME nesting is not walked; the raw mail keeps it anyway


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content_type: str
    size: int
    content: bytes | None  # None when over tickets.max_attachment_size (recorded, not kept)


@dataclass(frozen=True, slots=True)
class Bounce:
    """What a delivery status notification (RFC 3464) reports about a mail it returns."""

    original_message_id: str | None
    recipients: tuple[str, ...]
    action: str  # "failed", "delayed", ...
    status: str  # "5.1.1", ...


@dataclass(frozen=True, slots=True)
class InboundMail:
    raw: bytes
    sha256: str
    message_id: str  # "<...>"; synthetic "<sha256-HEX@mailticket.invalid>" when missing
    has_message_id: bool
    from_addr: str  # lower-cased addr-spec, "" when missing or unparseable
    from_name: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    reply_to: tuple[str, ...]
    subject: str
    date: datetime | None  # timezone-aware
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    headers: tuple[tuple[str, str], ...]  # (lower-case name, decoded value), in order
    content_type: str  # top-level, lower-case
    report_type: str  # report-type parameter of multipart/report, lower-case, else ""
    text: str
    html: str
    attachments: tuple[Attachment, ...]
    language: str  # "zh" or "en"
    lossy: bool
    defects: tuple[str, ...]
    bounce: Bounce | None

    def header(self, name: str) -> tuple[str, ...]:
        """Every decoded value of header ``name`` (case-insensitive)."""
        key = name.lower()
        return tuple(value for hname, value in self.headers if hname == key)

    @property
    def dedupe_key(self) -> str:
        """Identity for idempotence: the Message-ID, or the bytes' hash when there is none."""
        return self.message_id if self.has_message_id else f"sha256:{self.sha256}"


_ID: Final = re.compile(r"<[^<>\s]+>")
_TYPE: Final = re.compile(r"[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+")
_HAN: Final = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]+")
_KANA: Final = re.compile(r"[\u3040-\u30ff]+")
_NOT_LETTER: Final = re.compile(r"[\W\d_]+")
_UNSAFE: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_MESSAGE_ID_LINE: Final = re.compile(rb"(?im)^[ \t]*message-id:[ \t]*(?:\r?\n[ \t]+)?(<[^<>\s]+>)")
_ADDR_SPEC: Final = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w.-]+")
_FIELD: Final = re.compile(rb"^([A-Za-z][\w-]*)[ \t]*:[ \t]*(.*(?:\r?\n[ \t]+.*)*)", re.M)
_DSN: Final = "message/delivery-status"
_BLANK_LINE: Final = re.compile(rb"(?:\r?\n){2,}")
_BODY_TYPES: Final = frozenset({"text/plain", "text/html"})
_DEFAULT_NAMES: Final = {
    "message/rfc822": "message.eml",
    "message/global": "message.eml",
    "application/ms-tnef": "winmail.dat",
    "text/calendar": "invite.ics",  # not in Python's built-in table
}
_LOSSY_HEADERS: Final = frozenset({"subject", "from", "to", "cc", "reply-to"})
_LANGUAGE_SAMPLE: Final = 100_000  # characters; the start of a mail tells its language
_FLATTEN: Final = policy.default.clone(refold_source="none")  # keep headers as received
# Python's built-in type table only, so that names do not depend on the host's mime.types;
# built here, because creating it reads those files once (parse itself does no I/O).
_MIME_TYPES: Final = mimetypes.MimeTypes()


def parse(raw: bytes, *, max_attachment_size: int = DEFAULT_MAX_ATTACHMENT_SIZE) -> InboundMail:
    """Parse one mail; ParseError when the bytes are not a mail at all.

    The email package has known crashes on malformed MIME; any of them becomes a
    ParseError here, so intake sees exactly two outcomes and can quarantine the rest.
    """
    if not raw.strip():
        raise ParseError("empty message")
    try:
        msg = BytesParser(policy=policy.default).parsebytes(raw)
        if not any(name.strip() for name, _ in msg.raw_items()):
            raise ParseError("no header block: not a mail")
        return _build(raw, msg, max_attachment_size)
    except ParseError:
        raise
    except Exception as exc:  # the boundary named above: nothing else may escape
        raise ParseError(f"unreadable mail: {type(exc).__name__}: {exc}") from exc


def _build(raw: bytes, msg: Message, cap: int) -> InboundMail:
    """Assemble the InboundMail from the parsed tree."""
    tree = _tree(msg)
    hint = _charset_hint(tree)
    headers, headers_lossy = _headers(msg, hint)
    parts = _Parts(cap, hint, "\r\n" if b"\r\n" in raw else "\n")
    _walk(msg, parts, 0)
    text = _newlines("\n".join(parts.plain)) or _html_to_text("\n".join(parts.html))
    subject = _first(headers, "subject") or ""
    senders = _mailboxes(msg, "from", hint)
    message_id = _message_id(_first(headers, "message-id"))
    sha256 = hashlib.sha256(raw).hexdigest()
    content_type, params = _content_type(msg, hint)
    report = params.get("report-type")
    return InboundMail(
        raw=raw,
        sha256=sha256,
        message_id=message_id or f"<sha256-{sha256}@mailticket.invalid>",
        has_message_id=message_id is not None,
        from_addr=senders[0][1] if senders else "",
        from_name=senders[0][0] if senders else "",
        to=_addresses(msg, "to", hint),
        cc=_addresses(msg, "cc", hint),
        reply_to=_addresses(msg, "reply-to", hint),
        subject=subject,
        date=_date(_first(headers, "date")),
        in_reply_to=_ids(value for name, value in headers if name == "in-reply-to"),
        references=_ids(value for name, value in headers if name == "references"),
        headers=headers,
        content_type=content_type,
        report_type=report.text.lower() if report else "",
        text=text,
        html=_newlines("\n".join(parts.html)),
        attachments=tuple(parts.attachments),
        language=language(f"{subject}\n{text}"),
        lossy=headers_lossy or parts.lossy,
        defects=_defects(tree),
        bounce=_bounce(msg, content_type, report.text.lower() if report else ""),
    )


def _tree(msg: Message) -> list[Message]:
    """Every part, sub-message and status block, parents first (iterative: no recursion)."""
    found: list[Message] = []
    stack = [msg]
    while stack:
        part = stack.pop()
        found.append(part)
        stack.extend(reversed(_children(part) or []))
    return found


def _children(part: Message) -> list[Message] | None:
    """The sub-parts of a multipart or message/* part; None for a leaf."""
    if not part.is_multipart():
        return None  # and get_payload() is not called: on a leaf it may decode and fail
    payload = part.get_payload()
    return [child for child in payload if isinstance(child, Message)]


def _raw_values(part: Message, name: str) -> list[str]:
    """The raw values of header ``name`` as the parser stored them (8-bit as surrogates)."""
    return [str(value) for key, value in part.raw_items() if key.strip().lower() == name]


def _content_type(part: Message, hint: str | None) -> tuple[str, dict[str, Decoded]]:
    """The part's lower-case type (the parser's default when missing or invalid) and params."""
    values = _raw_values(part, "content-type")
    value, params = charsets.header_params(values[0] if values else "", hint)
    match = _TYPE.match(value)
    return (match[0] if match else part.get_default_type()), params


def _charset_hint(tree: list[Message]) -> str | None:
    """The first non-UTF-8 charset the mail declares, for a part or in an encoded word:
    its raw 8-bit headers are most likely in the same one."""
    declared = (_content_type(part, None)[1].get("charset") for part in tree)
    labels = (found.text for found in declared if found)
    words = (
        name for _, value in tree[0].raw_items() for name in charsets.word_charsets(str(value))
    )
    return next((name for name in chain(labels, words) if charsets.is_legacy(name)), None)


def _headers(msg: Message, hint: str | None) -> tuple[tuple[tuple[str, str], ...], bool]:
    """Every header decoded, in order; lossy when one a person reads needed replacement."""
    pairs: list[tuple[str, str]] = []
    lossy = False
    for name, value in msg.raw_items():
        key = name.strip().lower()
        decoded = charsets.decode_header(str(value), hint)
        pairs.append((key, decoded.text))
        lossy = lossy or (decoded.lossy and key in _LOSSY_HEADERS)
    return tuple(pairs), lossy


def _first(headers: tuple[tuple[str, str], ...], name: str) -> str | None:
    """The first decoded value of header ``name``, or None."""
    return next((value for key, value in headers if key == name), None)


def _mailboxes(msg: Message, name: str, hint: str | None) -> list[tuple[str, str]]:
    """(display name, lower-case addr-spec) of each address with an "@" in header ``name``.

    The list is split with encoded words hidden: a decoded display name may hold "," or
    "<x@y>", which must never become an address of its own (From spoofing).
    """
    raw = ", ".join(
        charsets.decode_header(v, hint, words=False).text for v in _raw_values(msg, name)
    )
    hidden, words = charsets.hide_words(raw)
    try:
        pairs = getaddresses([hidden])
    except RecursionError:  # the stdlib recurses once per ":" (group syntax); a hostile list
        pairs = [("", found) for found in _ADDR_SPEC.findall(hidden)]
    return [
        (
            charsets.decode_header(charsets.show_words(display, words), hint).text,
            addr.strip().lower(),
        )
        for display, addr in pairs
        if "@" in addr
    ]


def _addresses(msg: Message, name: str, hint: str | None) -> tuple[str, ...]:
    """The lower-case addr-specs of header ``name``, in order, without repeats."""
    return tuple(dict.fromkeys(addr for _, addr in _mailboxes(msg, name, hint)))


def _ids(values: Iterable[str]) -> tuple[str, ...]:
    """Every ``<...>`` id in the values, in order, without repeats."""
    return tuple(dict.fromkeys(found for value in values for found in _ID.findall(value)))


def _message_id(value: str | None) -> str | None:
    """The ``<...>`` id without whitespace; a bare id gets its brackets; None when empty."""
    compact = re.sub(r"\s+", "", value or "")
    match = _ID.search(compact)
    if match:
        return match[0]
    compact = compact.strip("<>")
    return f"<{compact}>" if compact else None


def _date(value: str | None) -> datetime | None:
    """The Date header as an aware datetime (naive means UTC), None when unparseable."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def language(text: str) -> str:
    """ "zh" when Han characters are a meaningful share of the text, else "en".

    Japanese also uses Han characters; text with more than a little kana is not Chinese
    (its writers are better served by the English templates than the Chinese ones).
    """
    sample = text[:_LANGUAGE_SAMPLE]
    han = sum(map(len, _HAN.findall(sample)))
    if not han or sum(map(len, _KANA.findall(sample))) * 2 > han:
        return "en"
    letters = len(_NOT_LETTER.sub("", sample))
    return "zh" if han >= 5 or han * 10 >= letters else "en"


def _defects(tree: list[Message]) -> tuple[str, ...]:
    """The email package's defect class names found anywhere in the mail, without repeats."""
    return tuple(dict.fromkeys(type(defect).__name__ for part in tree for defect in part.defects))


@dataclass(slots=True)
class _Parts:
    """What one walk over the MIME tree collects (mutable, private to one parse call)."""

    cap: int
    hint: str | None
    linesep: str
    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    lossy: bool = False

    def branch(self) -> _Parts:
        """A collector for one alternative; attachments go to the shared list."""
        return _Parts(self.cap, self.hint, self.linesep, attachments=self.attachments)


def _walk(part: Message, parts: _Parts, depth: int) -> None:
    """Sort one part into body text, HTML or attachments, recursing into multiparts."""
    content_type = _content_type(part, parts.hint)[0]
    children = _children(part)
    if children is None:
        _leaf(part, content_type, parts, depth == 0)
    elif content_type == _DSN:
        return  # read by _bounce
    elif content_type.startswith("message/") or depth >= MAX_DEPTH:
        data = _message_bytes(part, children, parts.linesep)
        parts.attachments.append(_attachment(part, content_type, data, parts))
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
    plain = next((branch for branch in branches if branch.plain), None)
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
    data = _payload_bytes(part)
    if not (body_type and inline):
        parts.attachments.append(_attachment(part, content_type, data, parts))
        return
    charset = _content_type(part, parts.hint)[1].get("charset")
    html = content_type == "text/html"
    declared = charset.text if charset else charsets.html_charset(data) if html else None
    decoded = charsets.decode_body(data, declared)
    (parts.html if html else parts.plain).append(decoded.text)
    parts.lossy = parts.lossy or decoded.lossy


def _payload_bytes(part: Message) -> bytes:
    """The decoded payload (base64, quoted-printable, uuencode undone) of a leaf part."""
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def _disposition(part: Message, hint: str | None) -> tuple[str, dict[str, Decoded]]:
    """The lower-case Content-Disposition ("attachment", "inline", "") and its params."""
    values = _raw_values(part, "content-disposition")
    return charsets.header_params(values[0] if values else "", hint)


def _filename(part: Message, hint: str | None) -> str:
    """The declared file name: Content-Disposition filename, else Content-Type name."""
    for found in (
        _disposition(part, hint)[1].get("filename"),
        _content_type(part, hint)[1].get("name"),
    ):
        if found and found.text.strip():
            return found.text
    return ""


def _attachment(part: Message, content_type: str, data: bytes, parts: _Parts) -> Attachment:
    """An attachment; its content is dropped (size kept) when it is over the cap."""
    name = safe_filename(_filename(part, parts.hint))
    name = name or _default_name(content_type, len(parts.attachments) + 1)
    content = data if len(data) <= parts.cap else None
    return Attachment(filename=name, content_type=content_type, size=len(data), content=content)


def _message_bytes(part: Message, payload: list[Message], linesep: str) -> bytes:
    """The bytes of an attached message; undo a transfer encoding the parser did not."""
    data = b"".join(_flatten(inner, linesep) for inner in payload)
    encoding = "".join(_raw_values(part, "content-transfer-encoding")[:1]).strip().lower()
    try:
        if encoding == "base64":
            return base64.b64decode(data.strip())
        if encoding == "quoted-printable":
            return quopri.decodestring(data.strip())
    except (binascii.Error, ValueError):
        pass
    return data


def _flatten(msg: Message, linesep: str) -> bytes:
    """A parsed message back to bytes, headers as received."""
    buffer = BytesIO()
    try:
        generator = BytesGenerator(
            buffer, mangle_from_=False, policy=_FLATTEN.clone(linesep=linesep)
        )
        generator.flatten(msg)  # type: ignore[arg-type]  # stub wants EmailMessage; any Message works
    except Exception:  # the generator cannot write some broken trees, in many ways
        return _as_received(msg, linesep)
    return buffer.getvalue()


def _as_received(msg: Message, linesep: str) -> bytes:
    """Best effort for a tree no generator can write: raw headers and decoded payloads."""
    head = "".join(f"{name}: {value}{linesep}" for name, value in msg.raw_items())
    children = _children(msg)
    body = (
        [_payload_bytes(msg)] if children is None else [_as_received(c, linesep) for c in children]
    )
    return charsets.to_bytes(head + linesep) + linesep.encode().join(body)


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


def _bounce(msg: Message, content_type: str, report_type: str) -> Bounce | None:
    """The RFC 3464 report of a ``multipart/report; report-type=delivery-status`` mail.

    Every status part counts (some MTAs send a broken one first).
    """
    if content_type != "multipart/report":
        return None
    children = _children(msg) or []
    types = [_content_type(child, None)[0] for child in children]
    if _DSN not in types and report_type != "delivery-status":
        return None
    if children:
        parts = [child for child, kind in zip(children, types, strict=True) if kind == _DSN]
        blocks = [block for part in parts for block in _status_blocks(part)]
    else:  # the boundary is broken: the report is one text
        blocks = _text_blocks(_payload_bytes(msg))
    recipients = _recipients(blocks, "final-recipient") or _recipients(blocks, "original-recipient")
    per_recipient = [b for b in blocks if b.keys() & {"final-recipient", "action", "status"}]
    failed = [b for b in per_recipient if b.get("action", "").lower() == "failed"]
    chosen = (failed or per_recipient or [{}])[0]
    return Bounce(
        original_message_id=_returned_id(children, types) if children else _id_line(msg),
        recipients=recipients,
        action=chosen.get("action", "").strip().lower(),
        status=(chosen.get("status", "").split() or [""])[0],
    )


def _status_blocks(part: Message) -> list[dict[str, str]]:
    """The field blocks of a message/delivery-status part."""
    blocks = _children(part)  # the parser splits the blocks, unless an encoding stopped it
    if blocks is None:
        return _text_blocks(_payload_bytes(part))
    return _text_blocks(b"\n\n".join(_flatten(block, "\n") for block in blocks))


def _text_blocks(data: bytes) -> list[dict[str, str]]:
    """The fields of each paragraph by lower-case name (the first of each name wins).

    Read here rather than by the email package, which drops "Name : value" fields
    (Mimecast writes them so).
    """
    blocks: list[dict[str, str]] = []
    for chunk in _BLANK_LINE.split(data):
        fields: dict[str, str] = {}
        for match in _FIELD.finditer(chunk):
            value = charsets.unfold(match[2].decode("utf-8", "replace"))
            fields.setdefault(match[1].decode("ascii").lower(), value)
        blocks.append(fields)
    return blocks


def _recipients(blocks: list[dict[str, str]], field_name: str) -> tuple[str, ...]:
    """The addresses of ``field_name`` (``rfc822; user@host``) in every block, lower-case."""
    found = (
        b[field_name].split(";", 1)[-1].strip().strip("<>").lower()
        for b in blocks
        if field_name in b
    )
    return tuple(dict.fromkeys(address for address in found if address))


def _returned_id(children: list[Message], types: list[str]) -> str | None:
    """The Message-ID of the returned mail (message/rfc822 or text/rfc822-headers part)."""
    for child, content_type in zip(children, types, strict=True):
        inner = _children(child)
        if content_type.startswith("message/") and content_type != _DSN:
            found = _raw_values(inner[0], "message-id") if inner else []
            if found:
                return _message_id(charsets.unfold(found[0]))
        elif content_type == "text/rfc822-headers" and (found_id := _id_line(child)):
            return found_id
    return None


def _id_line(part: Message) -> str | None:
    """The first ``Message-ID: <...>`` line in the text of a leaf part."""
    match = _MESSAGE_ID_LINE.search(_payload_bytes(part))
    return match[1].decode("ascii", "replace") if match else None
