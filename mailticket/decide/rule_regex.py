"""Regular expressions of rules.yaml, run by RE2: time linear in the text, never backtracking.

Why RE2 (``google-re2``) rather than ``re`` or ``regex`` with a timeout: every pattern an
admin writes runs on every mail a stranger sends. RE2 guarantees matching time linear in
the mail's size for every pattern, so no pattern and no mail can stall intake, and no
per-mail timer or worker thread is needed. The price is known up front and checked at
load: no look-around and no back-references (a pattern using them is refused with the
construct named), and ``\\w``, ``\\d``, ``\\b`` are ASCII only (write ``\\p{Han}``,
``\\p{L}``, ``\\pN`` for other scripts), and ``$`` is only the very end of the text
(Python's also matches before a final newline; ``(?m)`` gives line ends).

Texts are matched as UTF-8 bytes, encoded once per mail by the caller (the RE2 binding
would re-encode a ``str`` for every pattern).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import re2  # type: ignore[import-untyped]  # the binding ships no type information

_OPTIONS: Final = re2.Options()
_OPTIONS.log_errors = False  # errors come back as exceptions; RE2's own stderr log is noise

_HINTS: Final = (
    ("invalid perl operator: (?=", "look-ahead is not available"),
    ("invalid perl operator: (?!", "look-ahead is not available"),
    ("invalid perl operator: (?<", "look-behind is not available"),
    ("invalid perl operator: (?x", "verbose mode (?x) is not available"),
    ("invalid perl operator: (?#", "comments (?#...) are not available"),
    ("invalid escape sequence: \\Z", "write \\z for the end of the text"),
    ("invalid escape sequence: \\", "back-references and this escape are not available"),
    ("invalid repetition size", "repetition counts above 1000 are not available"),
)
WHY_RE2: Final = "mailticket uses RE2 so matching time stays linear in the mail's size"


@dataclass(frozen=True, slots=True)
class Pattern:
    """A compiled pattern and the source the admin wrote (for messages)."""

    source: str
    compiled: Any  # re2._Regexp: the binding ships no type information

    def search(self, text: bytes) -> tuple[str, str] | None:
        """(whole match, first named group or whole match) of the first match, or None."""
        found = self.compiled.search(text)
        if found is None:
            return None
        whole = _text(found.group(0))
        names = self.compiled.groupindex
        if not names:
            return whole, whole
        first = min(names.values())
        value = found.group(first)
        return whole, _text(value) if value is not None else whole

    def matches_empty(self) -> bool:
        return self.compiled.fullmatch(b"") is not None


def compile_pattern(source: str) -> Pattern:
    """Compile ``source`` under RE2; ValueError naming what RE2 does not support."""
    try:
        return Pattern(source, re2.compile(source, _OPTIONS))
    except re2.error as exc:
        raise ValueError(_explain(source, exc)) from None


def encode(text: str) -> bytes:
    """UTF-8 for RE2; stray surrogates from lossy decoding become '?' rather than errors."""
    return text.encode("utf-8", "replace")


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _explain(source: str, exc: Exception) -> str:
    detail = exc.args[0] if exc.args else str(exc)
    problem = detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(detail)
    hint = next((hint for prefix, hint in _HINTS if problem.startswith(prefix)), None)
    if hint is None:
        return f"bad regex '{source}': {problem}"
    return f"regex '{source}' is not supported: {problem} ({hint}; {WHY_RE2})"
