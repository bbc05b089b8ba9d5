"""Read a delivery status notification (RFC 3464) into a :class:`Bounce` (pure).

Tolerant of what real MTAs send: a broken status part before the good one, status
blocks the email package could not split, "Name : value" fields, a report whose
boundary is broken (then the whole body is read as text).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message
from typing import Final

from mailticket import charsets, mime_tree
from mailticket.message_ids import message_id

_MESSAGE_ID_LINE: Final = re.compile(rb"(?im)^[ \t]*message-id:[ \t]*(?:\r?\n[ \t]+)?(<[^<>\s]+>)")
_FIELD: Final = re.compile(rb"^([A-Za-z][\w-]*)[ \t]*:[ \t]*(.*(?:\r?\n[ \t]+.*)*)", re.M)
_BLANK_LINE: Final = re.compile(rb"(?:\r?\n){2,}")
_DSN: Final = mime_tree.DELIVERY_STATUS


@dataclass(frozen=True, slots=True)
class Bounce:
    """What a delivery status notification (RFC 3464) reports about a mail it returns."""

    original_message_id: str | None
    recipients: tuple[str, ...]
    action: str  # "failed", "delayed", ...
    status: str  # "5.1.1", ...


def read_bounce(msg: Message, content_type: str, report_type: str) -> Bounce | None:
    """The RFC 3464 report of a ``multipart/report; report-type=delivery-status`` mail.

    ``content_type`` and ``report_type`` are the mail's own, lower-case. Every status
    part counts (some MTAs send a broken one first).
    """
    if content_type != "multipart/report":
        return None
    children = mime_tree.children(msg) or []
    types = [mime_tree.content_type(child, None)[0] for child in children]
    if _DSN not in types and report_type != "delivery-status":
        return None
    if children:
        parts = [child for child, kind in zip(children, types, strict=True) if kind == _DSN]
        blocks = [block for part in parts for block in _status_blocks(part)]
    else:  # the boundary is broken: the report is one text
        blocks = _text_blocks(mime_tree.payload_bytes(msg))
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
    blocks = mime_tree.children(part)  # the parser splits the blocks, unless an encoding stopped it
    if blocks is None:
        return _text_blocks(mime_tree.payload_bytes(part))
    return _text_blocks(b"\n\n".join(mime_tree.flatten(block, "\n") for block in blocks))


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
        inner = mime_tree.children(child)
        if content_type.startswith("message/") and content_type != _DSN:
            found = mime_tree.raw_values(inner[0], "message-id") if inner else []
            if found:
                return message_id(charsets.unfold(found[0]))
        elif content_type == "text/rfc822-headers" and (found_id := _id_line(child)):
            return found_id
    return None


def _id_line(part: Message) -> str | None:
    """The first ``Message-ID: <...>`` line in the text of a leaf part."""
    match = _MESSAGE_ID_LINE.search(mime_tree.payload_bytes(part))
    return match[1].decode("ascii", "replace") if match else None
