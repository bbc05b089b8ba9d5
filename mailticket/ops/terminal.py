"""Text from mail made safe to print on a terminal or in a log line (pure).

A subject, a Message-ID or an error may carry control characters. Printed raw, an ESC
sequence repaints an admin's terminal (or hides a line of it), a CR or LF forges a log
line, and a bidi override reorders what is shown. Every such character is escaped
visibly instead: C0 and C1 controls and DEL as ``\\x1b``, ``\\n``...; the Unicode line and
paragraph separators and the bidi controls as ``\\u202e``. Everything else (Chinese
included) stays as written. JSON output gets the same characters as ``\\u`` escapes,
so it stays valid JSON and safe to ``cat``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

_NAMED: Final = {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"}
_BIDI: Final = (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))
UNSAFE: Final = frozenset((*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029, *_BIDI))


def _escape(point: int) -> str:
    return _NAMED.get(point) or (f"\\x{point:02x}" if point < 0x100 else f"\\u{point:04x}")


_ESCAPES: Final = {point: _escape(point) for point in UNSAFE}
_KEEP_NEWLINES: Final = {point: text for point, text in _ESCAPES.items() if point != 0x0A}
# json.dumps escapes C0 itself; what it leaves raw can only be inside a JSON string
_JSON_ESCAPES: Final = {point: f"\\u{point:04x}" for point in UNSAFE if point >= 0x7F}


def printable(text: object) -> str:
    """``text`` (``str()`` of it) on one line, every control character escaped."""
    return str(text).translate(_ESCAPES)


def printable_lines(text: str) -> str:
    """``text`` with its line breaks kept (a traceback, a report) and every other control
    character escaped."""
    return text.translate(_KEEP_NEWLINES)


def json_text(
    data: Any, *, indent: int | None = None, default: Callable[[Any], Any] | None = None
) -> str:
    """``json.dumps`` with UTF-8 kept as written and every unsafe character escaped.

    ``ensure_ascii=False`` leaves DEL, C1 controls and the bidi controls raw; they can
    only occur inside JSON strings, where ``\\uXXXX`` means the same character.
    """
    dumped = json.dumps(data, ensure_ascii=False, indent=indent, default=default)
    return dumped.translate(_JSON_ESCAPES)
