"""Content-Type and Content-Disposition parameters as real senders write them (pure).

RFC 2231 (``name*=utf-8''..``, continuations ``name*0*=``, in any order), encoded words
inside quotes (Outlook's, against RFC 2047), raw 8-bit bytes, quoted-strings holding
``;`` or Windows paths: every value is decoded through :mod:`mailticket.parse.charsets`, with
its charset aliases and its reading by evidence.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import unquote_to_bytes

from mailticket.parse.charsets import Decoded, decode_8bit, decode_header, to_bytes, unfold

_SECTION: Final = re.compile(r"^(?P<name>[^*]+)(?:\*(?P<num>\d{1,4}))?(?P<ext>\*)?$")


def header_params(raw: str, hint: str | None = None) -> tuple[str, dict[str, Decoded]]:
    """Split a Content-Type/-Disposition value into its lower-case value and its parameters.

    Parameter values are decoded: RFC 2231 (``name*=utf-8''..``, continuations
    ``name*0*=``, with the charset aliases), encoded words inside quotes, raw 8-bit bytes.
    An RFC 2231 value wins over a plain one of the same name.
    """
    first, *rest = _split_params(unfold(raw))
    plain: dict[str, Decoded] = {}
    sections: dict[str, list[tuple[int, bool, str]]] = {}
    for piece in rest:
        key, sep, value = piece.partition("=")
        match = _SECTION.match(key.strip().lower())
        if not sep or match is None:
            continue
        value = _unquote(value.strip())
        if match["num"] is None and match["ext"] is None:
            plain.setdefault(match["name"], decode_header(value, hint))
        else:
            entry = (int(match["num"] or 0), match["ext"] is not None, value)
            sections.setdefault(match["name"], []).append(entry)
    extended = {name: _join_sections(parts, hint) for name, parts in sections.items()}
    return first.strip().lower(), plain | extended


def _split_params(value: str) -> list[str]:
    """Split on ';' outside double quotes (a quoted filename may contain ';')."""
    pieces: list[str] = []
    start, quoted, escaped = 0, False, False
    for index, char in enumerate(value):
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == ";" and not quoted:
            pieces.append(value[start:index])
            start = index + 1
    pieces.append(value[start:])
    return pieces


def _unquote(value: str) -> str:
    """Remove the quotes of a quoted-string, keeping backslashes of Windows paths."""
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace("\\\\", "\\").replace('\\"', '"')
    return value.strip('"')


def _join_sections(parts: list[tuple[int, bool, str]], hint: str | None) -> Decoded:
    """Join RFC 2231 sections in order and decode them with the charset of the first."""
    parts.sort(key=lambda part: part[0])
    charset: str | None = None
    data: list[bytes] = []
    for index, (_, encoded, value) in enumerate(parts):
        if index == 0 and encoded and value.count("'") >= 2:
            charset, _lang, value = value.split("'", 2)
        data.append(unquote_to_bytes(to_bytes(value)) if encoded else to_bytes(value))
    return decode_8bit(b"".join(data), charset, hint)
