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
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

import charset_normalizer

from mailticket.parse import charset_guess

_GB: Final = ("gb18030",)
_BIG5: Final = ("cp950", "big5hkscs")
_KOREAN: Final = ("cp949",)
_JIS: Final = ("iso2022_jp", "iso2022_jp_ext", "iso2022_jp_2", "iso2022_jp_3", "euc_jp", "cp932")
_SJIS: Final = ("shift_jis", "cp932")
_LATIN1: Final = ("cp1252", "latin-1")  # what "iso-8859-1" senders really write (WHATWG)
_UTF8: Final = ("utf-8",)
_UNICODE: Final = frozenset({"utf-8", "utf-7", "utf-16", "utf-16-le", "utf-16-be", "utf-32"})
_MULTIBYTE: Final = frozenset({*_GB, *_BIG5, *_KOREAN, *_JIS, *_SJIS, "euc_jp", "euc_jis_2004"})

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
_FOLD: Final = re.compile(r"\r?\n\t|[\r\n]")
_SUSPICIOUS: Final = 0.3  # points per 8-bit byte below which a declared reading is reread
_OVERRIDE: Final = charset_guess.PRIOR  # how much better another reading must be to win
_AGREES: Final = 0.6  # points per 8-bit byte at which a hinted reading is plainly the text
_IN_A_WORD: Final = re.compile(rb"[A-Za-z][\x80-\xff]|[\x80-\xff][A-Za-z]")


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
    """Decode header bytes (an encoded word's, an RFC 2231 value's, raw 8-bit) by evidence.

    A declared charset is taken unless its reading is mojibake and another reads clearly
    better (``=?iso-8859-1?`` words carrying UTF-8 or GBK): then that one, flagged lossy.
    Undeclared bytes are UTF-8 when they are valid UTF-8; else the reading that looks
    most like writing (:mod:`charset_guess`), with ``hint`` (the charset the mail
    declares elsewhere) a head start, not a verdict; flagged lossy when it is a guess.
    """
    names = codecs_for(charset)
    if names and label(charset) not in UNRELIABLE:
        return _declared(data, names)
    if data.isascii():
        return Decoded(data.decode("ascii"))
    text = _strict(data, _UTF8)
    if text is not None:
        return Decoded(text)
    return _by_evidence(data, codecs_for(hint) if is_legacy(hint) else (), "utf-8")


def _declared(data: bytes, names: tuple[str, ...]) -> Decoded:
    """Bytes under a declared charset: kept unless another reading is clearly the text."""
    text = _strict(data, names)
    if data.isascii() or (text is not None and names[0] in _UNICODE):
        return Decoded(text if text is not None else data.decode("ascii"))
    utf8 = _strict(data, _UTF8)
    if utf8 is not None:  # valid UTF-8 under a legacy label: hardly ever an accident
        if text is None or charset_guess.plausibility(utf8) > charset_guess.plausibility(text):
            return Decoded(utf8, lossy=True)
        return Decoded(text)
    if text is None:  # the label is wrong: whatever reads best is a guess
        return Decoded(_by_evidence(data, (), names[0]).text, lossy=True)
    if names[0] in _MULTIBYTE:  # a strict double-byte decode is evidence enough
        return Decoded(text)
    score = charset_guess.plausibility(text)
    if score > _SUSPICIOUS * _eight_bit(data):
        return Decoded(text)
    reading = charset_guess.best_reading([data])  # clearly better: by more than a hint's lead
    if reading is None or not reading.confident or reading.score <= max(score, 0) + _OVERRIDE:
        return Decoded(text)
    return Decoded(data.decode(reading.codec), lossy=True)


@functools.lru_cache(maxsize=1024)  # one mail reads its From three times (headers, address, name)
def _by_evidence(data: bytes, prefer: tuple[str, ...], fallback: str) -> Decoded:
    """The reading that looks most like writing; ``fallback`` with replacement when none
    does, or when a few isolated bytes give too little evidence to read them at all.
    A preferred reading that reads well is taken at once (and the others not tried)."""
    text = _strict(data, prefer) if prefer else None
    if text is not None and charset_guess.plausibility(text) >= _AGREES * _eight_bit(data):
        return Decoded(text)
    reading = charset_guess.best_reading([data], prefer)
    preferred = reading is not None and reading.codec in prefer
    if reading is None or reading.score <= 0 or not (preferred or _enough(data)):
        return Decoded(data.decode(fallback, "replace"), lossy=True)
    lossy = not (reading.confident and (preferred or not prefer))
    return Decoded(data.decode(reading.codec), lossy=lossy)


def _enough(data: bytes) -> bool:
    """Evidence enough to read undeclared bytes: three non-ASCII bytes, or one inside a
    word ("Caf\xe9"); a lone "\xff" could be anything."""
    return _eight_bit(data) >= 3 or _IN_A_WORD.search(data) is not None


def _eight_bit(data: bytes) -> int:
    return sum(byte > 0x7F for byte in data)


def header_hint(values: Iterable[str], hint: str | None) -> str | None:
    """The charset of a mail's raw 8-bit header values, judged on all of them at once
    (one header is short evidence; a mail's From, Subject and To together say more),
    with ``hint`` (the charset the mail declares for its body or encoded words) a head
    start. Returns the charset when the evidence is clear, else ``hint`` unchanged; pass
    the result as the ``hint`` of :func:`decode_header` for that mail's headers."""
    samples = [data for data in map(_raw_sample, values) if data is not None]
    if not samples:
        return hint
    prefer = codecs_for(hint) if is_legacy(hint) else ()
    reading = charset_guess.best_reading(samples, prefer)
    if reading is None or reading.score <= 0 or not reading.confident:
        return hint
    return hint if reading.codec in prefer else reading.codec


def _raw_sample(value: str) -> bytes | None:
    """A header value's bytes when they hold 8-bit bytes that are not UTF-8."""
    if value.isascii():
        return None
    data = to_bytes(unfold(value))
    return None if _strict(data, _UTF8) is not None else data


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
