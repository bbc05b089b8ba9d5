"""What of a mail the secrets guard reads besides its text and subject (pure).

- HTML: its text (tags dropped, entities decoded) and, apart, the values of its tags'
  attributes: a key can hide in a link's ``href``. ``data:`` URIs (inline images) are
  left out.
- Attachments that hold text: by name .txt, .csv, .tsv, .json, .log, .md, or any name
  whose type in Python's built-in table is text/*; HTML files as above; a file without
  an extension whose start is UTF-8 text. Forwarded mails (.eml, message/rfc822) are
  read with the email package and ``mime_parts``: subject, text, HTML and their own
  attachments, ``MAX_DEPTH`` levels down. Each file is read up to ``MAX_FILE`` bytes and
  all of them together up to ``MAX_TOTAL``: a secret past that is missed, so that one
  mail costs at most about a second (a 1 MB scan takes 100-250 ms).
"""

from __future__ import annotations

import html as html_lib
import mimetypes
import re
from collections.abc import Iterator, Sequence
from email.parser import BytesParser
from pathlib import PurePosixPath
from typing import Final

from mailticket.parse import charsets, mime_parts, mime_tree

__all__ = ["MAX_FILE", "MAX_TOTAL", "attachment_texts", "html_texts"]

MAX_FILE: Final = 1024 * 1024
MAX_TOTAL: Final = 4 * 1024 * 1024
MAX_DEPTH: Final = 3  # forwarded mails inside forwarded mails
SNIFF: Final = 4096  # bytes read to tell whether a file without extension is text

Attachments = Sequence[tuple[str, bytes | None]]

_TEXT_SUFFIXES: Final = frozenset({".txt", ".text", ".csv", ".tsv", ".json", ".log", ".md"})
_HTML_SUFFIXES: Final = frozenset({".html", ".htm", ".xhtml"})
_MIME_TYPES: Final = mimetypes.MimeTypes()  # the built-in table: the host's does not count
_TAG = re.compile(r"<[^>]*>")
_BREAK = re.compile(r"<(?:br|/p|/div|/li|/tr|/h[1-6])\b[^>]*>", re.IGNORECASE)
_ATTRIBUTE = re.compile(r"""[\s"'/][\w:.-]+\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""")
_HEADER_LINE = re.compile(rb"[A-Za-z][A-Za-z0-9-]*:[ \t]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def html_texts(html: str) -> tuple[str, str]:
    """The text of ``html`` (tags dropped, line breaks kept) and its attribute values,
    one a line."""
    values = (
        next(v for v in m.groups() if v is not None)
        for tag in _TAG.finditer(html)
        for m in _ATTRIBUTE.finditer(tag.group())
    )
    attributes = "\n".join(v for v in values if not v.lstrip().lower().startswith("data:"))
    text = _TAG.sub(" ", _BREAK.sub("\n", html))
    return html_lib.unescape(text), html_lib.unescape(attributes)


def attachment_texts(attachments: Attachments) -> Iterator[str]:
    """The texts to scan in ``attachments`` (file name, content or None), in order."""
    budget = MAX_TOTAL
    stack = [(name, content, 0) for name, content in reversed(attachments)]
    while stack and budget > 0:
        name, content, depth = stack.pop()
        kind = _kind(name, content) if content else None
        if not content or kind is None:
            continue
        data = _head(content, min(MAX_FILE, budget))
        budget -= len(data)
        if kind == "message" and depth < MAX_DEPTH:  # deeper: its bytes are read as text
            texts, inner = _message(data)
            yield from texts
            stack.extend((n, c, depth + 1) for n, c in reversed(inner))
        elif kind == "html":
            yield from html_texts(_decode(data))
        else:
            yield from _decodings(data)


def _kind(name: str, content: bytes) -> str | None:
    """How an attachment is read: "text", "html", "message", or None (not at all)."""
    suffix = PurePosixPath(name.lower()).suffix
    guessed = (_MIME_TYPES.guess_type(f"file{suffix}")[0] or "") if suffix else ""
    if suffix == ".eml" or guessed == "message/rfc822":
        return "message"
    if suffix in _HTML_SUFFIXES:
        return "html"
    if suffix in _TEXT_SUFFIXES or guessed.startswith("text/"):
        return "text"
    if suffix:
        return None
    if _HEADER_LINE.match(content):
        return "message"
    return "text" if _is_text(content[:SNIFF]) else None


def _is_text(head: bytes) -> bool:
    """UTF-8 (a character cut at the end allowed) without control characters."""
    text = head.decode("utf-8", "ignore")
    return len(text.encode()) >= len(head) - 3 and not _CONTROL.search(text)


def _head(content: bytes, limit: int) -> bytes:
    """At most ``limit`` bytes, cut after a line break when there is one near the end."""
    if len(content) <= limit:
        return content
    cut = content.rfind(b"\n", max(0, limit - SNIFF), limit)
    return content[: cut + 1 if cut >= 0 else limit]


def _decode(data: bytes) -> str:
    return charsets.decode_body(data, None).text


def _decodings(data: bytes) -> list[str]:
    """A text file's text; one not in UTF-8 is read as detected and also as GB18030 and
    Big5, the ANSI code pages of Chinese Windows (detection fails on short text)."""
    try:
        return [data.decode("utf-8")]
    except UnicodeDecodeError:
        pass
    texts = [_decode(data)]
    for codec in ("gb18030", "cp950"):
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue
        if text not in texts:
            texts.append(text)
    return texts


def _message(data: bytes) -> tuple[list[str], list[tuple[str, bytes | None]]]:
    """Subject, text and HTML of a forwarded mail, and its attachments."""
    try:
        msg = BytesParser(policy=mime_tree.READ).parsebytes(data)
        body = mime_parts.read_body(msg, cap=MAX_FILE, hint=None, linesep="\n")
        subject = [charsets.decode_header(v).text for v in mime_tree.raw_values(msg, "subject")]
    except Exception:  # a mail the parser cannot read: its bytes are read as text instead
        return [_decode(data)], []
    texts = [*subject, body.text, *(html_texts(body.html) if body.html else ())]
    return texts, [(a.filename, a.content) for a in body.attachments]
