"""Which reading of undeclared or mislabelled 8-bit bytes is the text the sender wrote (pure).

Header bytes are short: a subject holds a dozen non-ASCII bytes, too few for a statistical
detector (charset-normalizer rates "тест" in KOI8-R, CP1251 and Shift_JIS alike). So each
candidate codec's reading is scored by how much it looks like writing: about one point
per non-ASCII byte that reads as a plausible letter, and a loss for each sign of mojibake:

- letters of one script and one language per word, with vowels, in a normal case pattern
  ("Açăo" or "Błšd" are not words; "Aзгo", "ФЕУф", "Рбрбдьрпхлпт" are not either);
- Chinese, Japanese and Korean characters by frequency (see :mod:`letter_tables`): the
  everyday ones score, rare ones cost (Latin or Cyrillic bytes read as GBK land on rare
  ones: "A玢o r醦ida"); a lone ideograph glued to a Latin word, simplified and
  traditional forms mixed, kana or hangul among simplified-only characters all cost;
- controls, private-use characters, box drawing and stray Latin-1 signs (``¤ ¦ ¨ ´``),
  and signs between two letters ("Нх€Т"), cost.

:func:`best_reading` weighs every candidate, with a head start for what the mail
declares, and says by how much the winner leads: a lead below :data:`CONFIDENT` is a
guess, which callers flag lossy.
"""

from __future__ import annotations

import functools
import itertools
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from mailticket.parse.letter_tables import VOWELS, cjk_tables, latin_alphabets, letter_ranks

CANDIDATES: Final = (
    "cp1252",
    "iso-8859-15",
    "iso-8859-2",
    "cp1250",
    "cp1257",
    "cp1254",
    "cp1251",
    "koi8-r",
    "koi8-u",
    "iso-8859-5",
    "iso-8859-7",
    "cp1253",
    "cp1255",
    "cp1256",
    "cp874",
    "gb18030",
    "cp950",
    "big5hkscs",
    "cp949",
    "cp932",
    "euc_jp",
)
"""Codecs tried for 8-bit bytes that are not UTF-8, in the order ties are broken."""

PRIOR: Final = 4.0
"""The head start of a declared charset (a body's, an encoded word's): about four bytes
of evidence. A reading must beat it by more than that to be taken instead."""

BASE_RATE: Final = {"gb18030": 1.0, "cp1252": 0.3}
"""A small head start for the charsets most mailticket users write in besides UTF-8
(SPEC.md: requesters write GBK/GB2312), and for the most common legacy one: a tie
between Chinese and another reading is Chinese, one between Western and others Western."""

CONFIDENT: Final = 4.0
"""The lead over the next reading below which a choice is a guess (flagged lossy)."""

_TOP_LETTER: Final = 1.0  # among the 8 most frequent letters of a language
_FREQUENT_LETTER: Final = 0.8  # among its 26 most frequent letters
_KNOWN_LETTER: Final = 0.5  # in a language's alphabet
_RARE_LETTER: Final = -1.5  # in no alphabet of the candidate codecs' languages
_TOP_HAN: Final = 2.5  # one of the most frequent ideographs or syllables (two bytes)
_COMMON_HAN: Final = 0.0  # in a national standard's first level: everyday, but so is
# where Cyrillic and Greek bytes land when read as GBK ("耘釉"): frequency must decide
_COMMON_HANGUL: Final = 0.5  # in KS X 1001
_LEVEL2_HAN: Final = -0.4  # second level: names, literature
_UNLISTED_HAN: Final = -1.0  # in no standard's levels: GBK's extension areas
_RARE_HAN: Final = -2.5  # extension A, compatibility ideographs, outside KS X 1001
_KANA: Final = 1.5
_BAD: Final = -5.0  # controls, unassigned, private use
_ODD_SIGN: Final = -1.5  # signs mojibake is made of
_MIXED: Final = -3.0  # per non-ASCII letter of a word in two scripts
_CASE_FLIP: Final = -2.0  # an upper-case letter after a lower-case one in a word
_GLUED: Final = -1.5  # per side of a lone ideograph touching Latin letters

_ALPHABETS: Final = frozenset({"latin", "cyrillic", "greek", "hebrew", "arabic", "thai"})
_CJK: Final = frozenset({"han", "kana", "hangul"})
_SCRIPTS: Final = {
    "LATIN": "latin",
    "CYRILLIC": "cyrillic",
    "GREEK": "greek",
    "HEBREW": "hebrew",
    "ARABIC": "arabic",
    "THAI": "thai",
    "HIRAGANA": "kana",
    "KATAKANA": "kana",
}
_PUNCTUATION: Final = frozenset("“”‘’„‚–—…«»‹›•·¡¿€£©®°±×÷™\u00a0")
_ODD_SIGNS: Final = frozenset("¤¦¨¯´¸¬ˆ˜¹²³¼½¾ªº¶§µ¢˘˛˝ˇ΅΄")
_IN_WORD: Final = frozenset("’‘‐–·\u00ad")  # may stand between two letters of a word
_CACHED: Final = 256  # characters: texts up to this long have their scores remembered


@dataclass(frozen=True, slots=True)
class Reading:
    """The best reading of some bytes: its codec, its score, and its lead over the next."""

    codec: str
    score: float
    lead: float

    @property
    def confident(self) -> bool:
        """False when the choice is a guess: another reading is about as good."""
        return self.lead >= CONFIDENT


def best_reading(
    samples: Sequence[bytes], prefer: Sequence[str] = (), candidates: Sequence[str] = CANDIDATES
) -> Reading | None:
    """The codec whose strict reading of every sample scores best, or None when no codec
    reads them all. ``prefer`` (declared or hinted codecs) start :data:`PRIOR` ahead."""
    scored: dict[str, tuple[float, float, str]] = {}  # text -> (rank, score, codec)
    for codec in dict.fromkeys((*prefer, *candidates)):
        try:
            texts = [sample.decode(codec) for sample in samples]
        except (UnicodeError, LookupError):
            continue
        key = "\x00".join(texts)  # equal texts count once
        if key not in scored:
            score = sum(plausibility(text) for text in texts)
            scored[key] = (score + _head_start(codec, prefer, score), score, codec)
    if not scored:
        return None
    ranked = sorted(scored.values(), key=lambda item: -item[0])
    (top, score, codec), rest = ranked[0], ranked[1:]
    return Reading(codec, score, top - rest[0][0] if rest else float("inf"))


def _head_start(codec: str, prefer: Sequence[str], score: float) -> float:
    """A hint helps a plausible reading only: it never makes mojibake the text."""
    if score <= 0:
        return 0.0
    return (PRIOR if codec in prefer else 0.0) + BASE_RATE.get(codec, 0.0)


def plausibility(text: str) -> float:
    """How much ``text`` looks like writing rather than mojibake (0 for ASCII text)."""
    if text.isascii():
        return 0.0
    return _short(text) if len(text) <= _CACHED else _plausibility(text)


@functools.lru_cache(maxsize=4096)
def _short(text: str) -> float:
    """Header-sized texts come again (one mail's headers read twice, a thread's subject)."""
    return _plausibility(text)


def _plausibility(text: str) -> float:
    score = 0.0
    start = 0
    for index, char in enumerate(text):
        info = _info(char)
        if info.script in _ALPHABETS:
            continue
        score += _word(text[start:index]) + info.score
        start = index + 1
        if info.script in _CJK:
            score += _glued(text, index)
        elif not (char.isascii() or char in _IN_WORD):
            score += _between_letters(text, index)
    return score + _word(text[start:]) + _han_consistency(text)


@dataclass(frozen=True, slots=True)
class _Info:
    script: str  # "latin", "cyrillic", ..., "han", "kana", "hangul", "" (not a letter)
    score: float  # what the character is worth on its own (alphabet letters: in _word)
    upper: bool = False
    lower: bool = False


@functools.lru_cache(maxsize=16384)
def _info(char: str) -> _Info:
    """The script and standalone score of one character."""
    if char.isascii():
        return _Info("latin" if char.isalpha() else "", 0.0, char.isupper(), char.islower())
    category = unicodedata.category(char)
    script = _script(char)
    if category[0] == "L":
        if script in _CJK:
            return _Info(script, _cjk_score(char, script))
        if script in _ALPHABETS:
            return _Info(script, _letter_score(char, script), category == "Lu", category == "Ll")
        return _Info("", _ODD_SIGN if script == "halfwidth" else _RARE_LETTER)
    if category == "Mn" and script in ("hebrew", "arabic", "thai"):
        return _Info(script, _KNOWN_LETTER)  # vowel signs: part of the word
    if category in ("Cc", "Cn", "Co", "Cs"):
        return _Info("", _BAD)
    return _Info("", _sign_score(char, category))


def _script(char: str) -> str:
    name = unicodedata.name(char, "")
    first = name.split(" ", 1)[0]
    if first == "CJK" and "IDEOGRAPH" in name:
        return "han"
    if first == "HANGUL" and "SYLLABLE" in name:
        return "hangul"
    if first == "HALFWIDTH" and "KATAKANA" in name:
        return "halfwidth"  # Latin-1 bytes read as Shift_JIS
    return _SCRIPTS.get(first.split("-", 1)[0], "other")  # KATAKANA-HIRAGANA: "ー"


def _letter_score(char: str, script: str) -> float:
    lowered = char.lower()
    rank = letter_ranks().get(lowered)
    if rank is not None:
        return _TOP_LETTER if rank < 8 else _FREQUENT_LETTER
    known = {
        "latin": any(lowered in alphabet for alphabet in latin_alphabets()),
        "cyrillic": "\u0430" <= lowered <= "\u044f" or lowered in "ёіїєґўђјљњћџ",
        "greek": "\u03ac" <= lowered <= "\u03ce",
        "hebrew": "\u05d0" <= char <= "\u05ea",
        "arabic": "\u0621" <= char <= "\u064a",
        "thai": "\u0e01" <= char <= "\u0e2e" and char not in "ฃฅฦ",
    }
    return _KNOWN_LETTER if known[script] else _RARE_LETTER


def _sign_score(char: str, category: str) -> float:
    """Punctuation, symbols, marks, spaces and digits beyond ASCII."""
    if char in _PUNCTUATION:
        return 0.5
    if char in _ODD_SIGNS or "\u2500" <= char <= "\u25ff" or category == "Mn":
        return _ODD_SIGN  # box drawing and blocks: KOI8's upper half; stray marks
    if "\u3000" <= char <= "\u303f" or "\uff01" <= char <= "\uff5e":
        return 1.0  # CJK punctuation and full-width forms: two bytes of CJK text
    return -1.0


def _cjk_score(char: str, script: str) -> float:
    tables = cjk_tables()
    if script == "kana":
        return _KANA
    if script == "hangul":
        if char in tables.top_hangul:
            return _TOP_HAN
        return _COMMON_HANGUL if char in tables.hangul else _RARE_HAN
    if char in tables.top:
        return _TOP_HAN
    if char in tables.level1:
        return _COMMON_HAN
    if char in tables.level2:
        return _LEVEL2_HAN
    return _UNLISTED_HAN if "\u4e00" <= char <= "\u9fff" else _RARE_HAN


def _neighbours(text: str, index: int) -> tuple[_Info, _Info]:
    before = text[index - 1] if index else " "
    after = text[index + 1] if index + 1 < len(text) else " "
    return _info(before), _info(after)


def _glued(text: str, index: int) -> float:
    """One or two ideographs, kana or hangul glued to Latin letters are a misread word
    ("A玢o", "Stra遝", "Za鄴單"); a longer run ("iPhone手机") is ordinary."""
    before, after = _neighbours(text, index)
    if before.script in _CJK and after.script in _CJK:
        return 0.0
    run = 1 + (before.script in _CJK) + (after.script in _CJK)
    far = text[index - 2 : index - 1] if before.script in _CJK else text[index + 2 : index + 3]
    if run > 1 and far and _info(far).script in _CJK:
        return 0.0  # the edge of a run of three or more
    edge = after if before.script in _CJK else before
    sides = (before, after) if run == 1 else (edge,)
    return _GLUED / run * sum(1 for near in sides if near.script in _ALPHABETS)


def _between_letters(text: str, index: int) -> float:
    """A sign between two letters ("Нх€Т") is a letter that another codec reads."""
    before, after = _neighbours(text, index)
    return _ODD_SIGN if before.script in _ALPHABETS and after.script in _ALPHABETS else 0.0


@functools.lru_cache(maxsize=8192)
def _word(word: str) -> float:
    """A run of alphabet letters: its letters' scores, less the signs of mojibake."""
    if word.isascii():
        return 0.0
    infos = [_info(char) for char in word]
    foreign = [info for char, info in zip(word, infos, strict=True) if not char.isascii()]
    score = sum(info.score for info in foreign)
    if len({info.script for info in infos}) > 1:
        return score + _MIXED * len(foreign)
    flips = sum(1 for a, b in itertools.pairwise(infos) if a.lower and b.upper)
    score += _CASE_FLIP * flips + _shape(word, infos) * len(foreign)
    if infos[0].script == "latin":
        score += _latin_word(word, len(foreign))
    elif infos[0].script in ("hebrew", "arabic", "thai"):
        score += _marks(word)
    elif infos[0].script == "greek":
        score += _ODD_SIGN * ("ς" in word[:-1])  # final sigma inside a word
    return score


def _shape(word: str, infos: list[_Info]) -> float:
    """Per foreign letter: capitals followed by small letters ("РЬПЕШё"), all capitals,
    no vowels in a longer word ("Рбрбдьрпхлпт")."""
    penalty = 0.0
    if infos[0].script not in ("latin", "cyrillic", "greek"):
        return penalty  # no case, and vowels are marks or unwritten
    if len(infos) > 2 and infos[0].upper and infos[1].upper and any(i.lower for i in infos):
        penalty -= 1.0
    elif len(infos) > 1 and not any(info.lower for info in infos):
        penalty -= 0.3
    if len(word) > 3:
        vowels = sum(1 for char in word.lower() if char in VOWELS)
        penalty -= 1.0 if vowels * 5 < len(word) else 0.0
    return penalty


def _marks(word: str) -> float:
    """Vowel signs and other marks: on a letter, at most two stacked (Thai "ที่")."""
    penalty, run = 0.0, 0
    for index, char in enumerate(word):
        run = run + 1 if unicodedata.category(char) == "Mn" else 0
        if run and (index == run - 1 or run > 2):
            penalty += _ODD_SIGN
    return penalty


def _latin_word(word: str, foreign: int) -> float:
    """Accents without a word around them ("Åëëçíéêü"); letters of no one language
    ("Błšd", "Pøíliš")."""
    plain = len(word) - foreign
    score = -1.0 * (foreign - 2 * plain - 1) if foreign > 2 * plain + 1 else 0.0
    letters = {char.lower() for char in word if not char.isascii()}
    if len(letters) > 1 and not any(letters <= alphabet for alphabet in latin_alphabets()):
        score += _ODD_SIGN
    return score


def _han_consistency(text: str) -> float:
    """Simplified-only with traditional-only characters, or with kana or hangul, in one
    text: one of the two is misread."""
    tables = cjk_tables()
    simplified = sum(1 for char in text if char in tables.simplified_only)
    if not simplified:
        return 0.0
    traditional = sum(1 for char in text if char in tables.traditional_only)
    others = any(_info(char).script in ("kana", "hangul") for char in text)
    return -1.5 * (min(simplified, traditional) + (simplified if others else 0))
