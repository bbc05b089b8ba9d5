"""Charset aliases and decoding of bodies, headers (RFC 2047) and parameters (RFC 2231).

Real senders mislabel their text: Outlook calls GBK text ``gb2312``, Big5 mail carries
Microsoft extensions, Korean mail says ``ks_c_5601-1987``. The standard library decodes
the label literally and then corrupts or rejects the text, so every decode in mailticket
goes through :func:`codecs_for`, which maps a MIME label to the Python codecs that real
mail needs, in the order to try them. Text is never dropped: when nothing decodes
strictly, undecodable bytes are replaced and the result is flagged ``lossy``.

Header values come in as the ``email`` package stores them when it reads bytes: ASCII
with the original 8-bit bytes kept as surrogate escapes, so the exact bytes can always be
recovered and decoded here rather than by the standard library's guesses.
"""

from __future__ import annotations

import binascii
import codecs
import functools
import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote_to_bytes

import charset_normalizer

_GB: Final = ("gb18030",)
_BIG5: Final = ("cp950", "big5hkscs")
_KOREAN: Final = ("cp949",)
_JIS: Final = ("iso2022_jp", "iso2022_jp_ext", "iso2022_jp_2", "iso2022_jp_3", "euc_jp", "cp932")
_SJIS: Final = ("shift_jis", "cp932")
_LATIN1: Final = ("cp1252", "latin-1")  # what "iso-8859-1" senders really write (WHATWG)
_UTF8: Final = ("utf-8",)

ALIASES: Final[dict[str, tuple[str, ...]]] = {
    **dict.fromkeys(("gb2312", "gbk", "x-gbk", "cp936", "euc-cn", "x-euc-cn", "gb18030"), _GB),
    **dict.fromkeys(("big5", "big-5", "x-big5", "cn-big5", "big5-tw", "cp950"), _BIG5),
    **dict.fromkeys(("ks_c_5601-1987", "ks_c_5601", "ks_c_5601-1989", "euc-kr"), _KOREAN),
    **dict.fromkeys(("iso-2022-jp", "csiso2022jp"), _JIS),
    **dict.fromkeys(("shift_jis", "shift-jis", "sjis", "x-sjis", "ms_kanji"), _SJIS),
    **dict.fromkeys(("iso-8859-1", "iso8859-1", "latin1", "latin-1", "l1"), _LATIN1),
    **dict.fromkeys(("uft-8", "utf8", "utf-8"), _UTF8),
    "windows-31j": ("cp932",),
    "euc-jp": ("euc_jp", "euc_jis_2004"),
    "iso-8859-8-i": ("iso-8859-8",),
    "iso-8859-6-i": ("iso-8859-6",),
    "unicode-1-1-utf-7": ("utf-7",),
}
"""MIME charset label -> Python codecs to try, in order."""

UNRELIABLE: Final = frozenset({"", "x-unknown", "unknown", "unknown-8bit", "us-ascii", "ascii"})
"""Labels that say nothing about 8-bit bytes: such text is detected, not trusted."""

_DETECT_PREFIX: Final = 64 * 1024  # detection looks at a prefix; the decode covers everything
_EW: Final = re.compile(rb"=\?([^?\s*]+)(?:\*[^?\s]*)?\?([bBqQ])\?([^?]*)\?=")
_EW_TEXT: Final = re.compile(r"=\?([^?\s*]+)(?:\*[^?\s]*)?\?[bBqQ]\?[^?]*\?=")
_META_CHARSET: Final = re.compile(rb"<meta[^>]{0,200}?charset\s*=\s*[\"']?([\w.:-]+)", re.I)
_PLACEHOLDER: Final = re.compile("\ue000(\\d+)\ue001")
_SECTION: Final = re.compile(r"^(?P<name>[^*]+)(?:\*(?P<num>\d{1,4}))?(?P<ext>\*)?$")
_FOLD: Final = re.compile(r"\r?\n\t|[\r\n]")


@dataclass(frozen=True, slots=True)
class Decoded:
    """Decoded text, and whether undecodable bytes had to be replaced."""

    text: str
    lossy: bool = False


def label(charset: str | None) -> str:
    """Normalise a declared charset label: senders quote it and vary its case."""
    return (charset or "").strip().strip("\"'").strip().lower()


@functools.lru_cache(maxsize=512)
def codecs_for(charset: str | None) -> tuple[str, ...]:
    """Python codecs to try for a MIME charset label, in order; () when Python knows none."""
    name = label(charset)
    if name in ALIASES:
        return ALIASES[name]
    try:
        canonical = codecs.lookup(name).name
        b"a".decode(canonical, "replace")  # rejects non-text codecs such as "base64" or "zlib"
    except (LookupError, ValueError):
        return ()
    return ALIASES.get(canonical, (canonical,))


def is_legacy(charset: str | None) -> bool:
    """True for a label naming a real charset other than UTF-8 (worth using as a hint)."""
    return label(charset) not in UNRELIABLE and codecs_for(charset) not in ((), _UTF8)


def _strict(data: bytes, names: tuple[str, ...]) -> str | None:
    """The first strict decode that succeeds, or None."""
    for name in names:
        try:
            return data.decode(name)
        except (UnicodeError, LookupError):
            continue
    return None


def _first_fit(data: bytes, names: tuple[str, ...]) -> Decoded:
    """The first strict decode that succeeds, else the first codec with replacement."""
    text = _strict(data, names)
    return Decoded(text) if text is not None else Decoded(data.decode(names[0], "replace"), True)


def _detect(data: bytes) -> str | None:
    """The codec charset-normalizer guesses for an unlabelled text (never raises)."""
    try:
        best = charset_normalizer.from_bytes(data[:_DETECT_PREFIX]).best()
    except Exception:  # a detector bug must not cost us the mail; we fall back to replacement
        return None
    return None if best is None else best.encoding


def decode_body(data: bytes, charset: str | None) -> Decoded:
    """Decode a text part: its (aliased) charset, else UTF-8, else replacement (lossy).

    When the label says nothing (missing, unknown, us-ascii) and the bytes are not UTF-8,
    charset-normalizer guesses; well-labelled mail never pays for detection.
    """
    names = codecs_for(charset)
    if names and label(charset) not in UNRELIABLE:
        return _first_fit(data, (*names, "utf-8"))
    text = _strict(data, _UTF8)
    if text is not None:
        return Decoded(text)
    return _first_fit(data, (_detect(data) or "utf-8",))


def decode_8bit(data: bytes, charset: str | None = None, hint: str | None = None) -> Decoded:
    """Decode header bytes: the declared charset, else UTF-8, the mail's charset, GB18030.

    Too short for detection, so this tries the likely candidates: ``hint`` is the charset
    the mail declares for its body, which is what most clients also use for raw headers.
    """
    names = codecs_for(charset)
    if names and label(charset) not in UNRELIABLE:
        return _first_fit(data, (*names, "utf-8"))
    return _first_fit(data, ("utf-8", *codecs_for(hint), "gb18030"))


def unfold(raw: str) -> str:
    """Unfold a header value (RFC 5322 2.2.3); a folded tab becomes one space."""
    return _FOLD.sub(lambda m: " " if m[0].endswith("\t") else "", raw).strip()


def to_bytes(value: str) -> bytes:
    """The original bytes of a value read by the email package (surrogate-escaped 8-bit)."""
    return value.encode("utf-8", "surrogateescape")


def decode_header(raw: str, hint: str | None = None, *, words: bool = True) -> Decoded:
    """Decode a raw header value: unfold, decode 8-bit bytes and RFC 2047 encoded words.

    With ``words=False`` encoded words are left as they are, so that address lists can be
    split before display names are decoded (a decoded name may contain "," or "<").
    """
    value = unfold(raw)
    if value.isascii() and (not words or "=?" not in value):
        return Decoded(value)
    chunks = _chunks(to_bytes(value)) if words else [([to_bytes(value)], None)]
    decoded = [decode_8bit(b"".join(parts), charset, hint) for parts, charset in chunks]
    return Decoded("".join(d.text for d in decoded), any(d.lossy for d in decoded))


def _chunks(data: bytes) -> list[tuple[list[bytes], str | None]]:
    """Split header bytes into literal runs (charset None) and encoded-word runs.

    Whitespace between two encoded words is dropped (RFC 2047 6.2), and adjacent words in
    one charset are joined before decoding, because senders split multi-byte characters
    across words.
    """
    out: list[tuple[list[bytes], str | None]] = []
    pos = 0
    for match in _EW.finditer(data):
        gap = data[pos : match.start()]
        if gap and not (gap.isspace() and out and out[-1][1] is not None):
            _append(out, gap, None)
        word = _word_bytes(match[2], match[3])
        if word is None:
            _append(out, match[0], None)
        else:
            _append(out, word, match[1].decode("latin-1").lower())
        pos = match.end()
    if pos < len(data):
        _append(out, data[pos:], None)
    return out


def _append(out: list[tuple[list[bytes], str | None]], data: bytes, charset: str | None) -> None:
    """Add bytes to the last run when it has the same charset, else start a new run."""
    if out and out[-1][1] == charset:
        out[-1][0].append(data)
    else:
        out.append(([data], charset))


def _word_bytes(encoding: bytes, text: bytes) -> bytes | None:
    """The bytes of one encoded word, or None when its encoding is broken beyond repair."""
    try:
        if encoding.lower() == b"q":
            return binascii.a2b_qp(text, header=True)
        text = text.rstrip(b"=")
        text = text[: len(text) - 1] if len(text) % 4 == 1 else text  # a stray last char
        return binascii.a2b_base64(text + b"=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


def word_charsets(raw: str) -> list[str]:
    """The charsets the encoded words of a raw header value declare."""
    return [match[1] for match in _EW_TEXT.finditer(raw)]


def html_charset(data: bytes) -> str | None:
    """The charset an HTML document names in a <meta> tag (for a part whose header does not)."""
    match = _META_CHARSET.search(data[:4096])
    return match[1].decode("ascii", "replace") if match else None


def hide_words(text: str) -> tuple[str, list[str]]:
    """Replace each encoded word by a placeholder atom, so that an address list can be split
    without the word's content ("<x@y>", ",") taking part; :func:`show_words` undoes it."""
    words: list[str] = []

    def hide(match: re.Match[str]) -> str:
        words.append(match[0])
        return f"\ue000{len(words) - 1}\ue001"

    return _EW_TEXT.sub(hide, text), words


def show_words(text: str, words: list[str]) -> str:
    """Put back the encoded words :func:`hide_words` replaced."""
    return _PLACEHOLDER.sub(lambda match: words[int(match[1])], text)


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
