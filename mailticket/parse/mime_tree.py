"""Read the email package's parsed tree safely: parts, raw header values, payloads.

The shared ground of the parser's stages (:mod:`mailticket.parse.mail` for the envelope,
:mod:`mailticket.parse.mime_parts` for the body, :mod:`mailticket.parse.dsn` for bounces). Every
read here avoids a known trap: leaves are never asked for sub-parts, header values are
taken raw (8-bit bytes kept as surrogates for :mod:`mailticket.parse.charsets`), and a tree
no generator can write still comes back as bytes.
"""

from __future__ import annotations

import re
from email import policy
from email.generator import BytesGenerator
from email.message import Message
from io import BytesIO
from typing import Final

from mailticket.parse import charsets, mime_params
from mailticket.parse.charsets import Decoded

DELIVERY_STATUS: Final = "message/delivery-status"  # read by dsn, not walked as a body part

_TYPE: Final = re.compile(r"[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+")
_FLATTEN: Final = policy.default.clone(refold_source="none")  # keep headers as received
_FOLD: Final = re.compile(r"\r?\n(?=[ \t])")


class _Unfolding(policy.Compat32):
    """``compat32`` whose header lookups are unfolded (RFC 5322 2.2.3).

    The parser is the email package's; with this policy it builds no header objects (with
    ``policy.default`` it parses every Content-Type as it reads, half the parse's time,
    and crashes on some broken RFC 2231 parameters). Only the parser's own lookups
    (Content-Type, the boundary) come through here: every stage reads raw values. A
    folded boundary is found; so is an unquoted one holding "=" (Outlook's).
    """

    def header_fetch_parse(self, name: str, value: str) -> str:
        return str(super().header_fetch_parse(name, _FOLD.sub("", value)))


READ: Final = _Unfolding()


def tree(msg: Message) -> list[Message]:
    """Every part, sub-message and status block, parents first (iterative: no recursion)."""
    found: list[Message] = []
    stack = [msg]
    while stack:
        part = stack.pop()
        found.append(part)
        stack.extend(reversed(children(part) or []))
    return found


def children(part: Message) -> list[Message] | None:
    """The sub-parts of a multipart or message/* part; None for a leaf."""
    if not part.is_multipart():
        return None  # and get_payload() is not called: on a leaf it may decode and fail
    payload = part.get_payload()
    return [child for child in payload if isinstance(child, Message)]


def raw_values(part: Message, name: str) -> list[str]:
    """The raw values of header ``name`` as the parser stored them (8-bit as surrogates)."""
    return [str(value) for key, value in part.raw_items() if key.strip().lower() == name]


def content_type(part: Message, hint: str | None) -> tuple[str, dict[str, Decoded]]:
    """The part's lower-case type (the parser's default when missing or invalid) and params."""
    values = raw_values(part, "content-type")
    value, params = mime_params.header_params(values[0] if values else "", hint)
    match = _TYPE.match(value)
    return (match[0] if match else part.get_default_type()), params


def payload_bytes(part: Message) -> bytes:
    """The decoded payload (base64, quoted-printable, uuencode undone) of a leaf part."""
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def flatten(msg: Message, linesep: str) -> bytes:
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
    """Best effort for a tree no generator can write (broken, or nested too deep for its
    recursion): raw headers, payloads as received, the declared boundaries between parts."""
    newline = linesep.encode()
    head = charsets.to_bytes("".join(f"{k}: {v}{linesep}" for k, v in msg.raw_items())) + newline
    parts = children(msg)
    if parts is None:
        payload = msg.get_payload()  # a leaf's: the text as received, 8-bit bytes as surrogates
        return head + charsets.to_bytes(payload if isinstance(payload, str) else "")
    boundary = msg.get_boundary()
    if not boundary:  # message/*: the inner message follows the headers
        return head + b"".join(_as_received(child, linesep) for child in parts)
    dash = charsets.to_bytes(f"--{boundary}")
    body = b"".join(dash + newline + _as_received(c, linesep) + newline for c in parts)
    return head + body + dash + b"--" + newline
