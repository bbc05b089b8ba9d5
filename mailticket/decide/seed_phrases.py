"""Find BIP-39 recovery phrases in text (pure): the policy, and the English finder.

Wordlists (English, simplified and traditional Chinese), separators, keywords and the
checksum: see ``bip39``.

- English: a run of wordlist words (case-insensitive; any separators of ``bip39.GAP``
  between them: spaces, line breaks, commas, slashes, dashes, quotes, list numbering)
  holds a phrase where 12, 15, 18, 21 or 24 words in a row pass the BIP-39 checksum,
  with at most 3 other words of the run on either side, or filling their line (see
  ``bip39.phrases``). A list of ordinary words ("Interests: music, video, game, ...")
  passes once in 16 at 12 words and at worst once in 4 at 15 (bench/SECRETS.md). Only
  the passing words are masked: "help!" after a phrase stays, but for once in 16. A
  typo (4-9 letters, one edit away from a wordlist word) is read as each word it may
  stand for (at most 64 readings a window); typos must be at least 6 words apart.
- A run that holds no such phrase (a wrong word, typos too close, more words around)
  is still masked when a keyword announces it (``bip39.KEYWORD``: seed phrase, recovery
  words, mnemonic, private key, 助记词...; at most ``KEYWORD_REACH`` characters before it,
  in the same sentence): from the keyword on, when 12 words or more.
- Chinese, spaced or glued: see ``chinese_phrases``.

Prose does not give 12 wordlist words in a row ("a", "the", "of", "to", "is" are not in
the list; 7 is the longest run in 5.7 MB of English), lists do: the checksum tells them
apart. False positives measured: bench/SECRETS.md.

Each decision reads only its run and the text back to the previous finding, so masked
text scans the same way again (idempotence). In the scanned text ``\\x00`` stands for a
masked key (glued like the letters it replaced) and ``\\x01`` for a masked phrase.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from mailticket.decide.bip39 import (
    GAP,
    KEYWORD,
    MIN_WORDS,
    Phrase,
    Wordlists,
    lines,
    phrases,
    split,
    wordlists,
)
from mailticket.decide.chinese_phrases import find_chinese

__all__ = ["Phrase", "find_phrases"]

TYPO_DISTANCE: Final = 6  # typos closer than this many words end the run
KEYWORD_REACH: Final = 40  # characters between a keyword and the phrase it announces
KEYWORD_SIZE: Final = 24  # characters a keyword may have (seed phrase, secret recovery...)

_LETTERS = re.compile(r"([A-Za-z]+)")
_HIT_STRETCH = re.compile("1+(?:01+)*")  # no phrase spans two non-words in a row
_GLUE = frozenset("0123456789\x00")  # a word touching one of these is no word
_SENTENCE_END = re.compile(r"[.!?。！？](?:\s|\Z)|[\x00\x01]")


def find_phrases(scan: str) -> list[Phrase]:
    """Every recovery phrase in ``scan``, in order."""
    lists = wordlists()
    english: list[Phrase] = []
    for part in _english(_tokens(scan, lists)):
        english += _english_phrases(part, scan, english[-1].end if english else 0)
    return sorted(english + find_chinese(scan, lists, english), key=lambda p: p.start)


# English: one token per word; None for a word that ends a run.


@dataclass(frozen=True, slots=True)
class _Token:
    start: int
    end: int
    indexes: tuple[int, ...]  # the wordlist words it may be: one, or several for a typo
    typo: bool = False


def _tokens(scan: str, lists: Wordlists) -> Iterator[_Token | None]:
    """Wordlist words and typos; None where a run breaks (tokens in a row are joined)."""
    parts, ends = split(_LETTERS, scan)
    hits = "".join(["1" if w.lower() in lists.english else "0" for w in parts[1::2]])
    for stretch in _HIT_STRETCH.finditer(hits):
        if stretch.end() - stretch.start() >= MIN_WORDS - 2 and "1" * 5 in stretch.group():
            first, stop = max(stretch.start() - 1, 0), min(stretch.end() + 1, len(hits))
            yield None  # with a word either side: a typo may open or close the phrase
            yield from _stretch_tokens(parts, ends, first, stop, lists)


def _stretch_tokens(
    parts: list[str], ends: list[int], first: int, stop: int, lists: Wordlists
) -> Iterator[_Token | None]:
    previous: _Token | None = None
    for i in range(2 * first + 1, 2 * stop + 1, 2):
        word, before, after = parts[i].lower(), parts[i - 1], parts[i + 1]
        index = lists.english.get(word)
        joined = previous is not None and (before == " " or GAP.fullmatch(before) is not None)
        token: _Token | None = None
        if before[-1:] in _GLUE or after[:1] in _GLUE or not 3 <= len(word) <= 9:
            token = None
        elif index is not None:
            token = _Token(ends[i - 1], ends[i], (index,))
        elif previous is None or not previous.typo:
            readings = _readings(word, lists)
            token = _Token(ends[i - 1], ends[i], readings, True) if readings else None
        if previous is not None and (token is None or not joined):
            yield None
        if token is not None:
            yield token
        previous = token


def _readings(word: str, lists: Wordlists) -> tuple[int, ...]:
    """The wordlist words one insertion, deletion, substitution or swap from ``word``."""
    if len(word) < 4:
        return ()
    found = set(lists.near.get(word, ()))
    for i in range(len(word)):
        shorter = word[:i] + word[i + 1 :]
        found.update(lists.near.get(shorter, ()))
        if shorter in lists.english:
            found.add(lists.english[shorter])
    return tuple(sorted(found))


def _english(tokens: Iterator[_Token | None]) -> Iterator[list[_Token]]:
    """Runs cut at non-words and at typos closer than TYPO_DISTANCE; 12+ words each."""
    part: list[_Token] = []
    last_typo = -TYPO_DISTANCE
    for token in tokens:
        if token is None or (token.typo and len(part) - last_typo < TYPO_DISTANCE):
            if len(part) >= MIN_WORDS:
                yield part
            part, last_typo = [], -TYPO_DISTANCE
            continue
        if token.typo:
            last_typo = len(part)
        part.append(token)
    if len(part) >= MIN_WORDS:
        yield part


def _english_phrases(part: list[_Token], scan: str, floor: int) -> list[Phrase]:
    """Checksummed phrases; else the run after a keyword, if one announces it."""
    spans = phrases([t.indexes for t in part], lines([(t.start, t.end) for t in part], scan))
    if spans:
        return [Phrase(part[a].start, part[b - 1].end, "english") for a, b in spans]
    announced = _announced(part, scan, floor)
    return [announced] if announced else []


def _announced(part: list[_Token], scan: str, floor: int) -> Phrase | None:
    """The words after a keyword, when 12 or more (a typo at an end only if needed)."""
    reach = max(floor, part[0].start - KEYWORD_REACH - KEYWORD_SIZE)
    for mark in KEYWORD.finditer(scan, reach, part[-1].start):
        m_start, m_end = mark.span()
        words = [t for t in part if t.start >= m_end]
        gap_end = words[0].start
        if m_start < floor or gap_end - m_end > KEYWORD_REACH:
            continue
        if _SENTENCE_END.search(scan, m_end, gap_end):
            continue
        core = words[1:] if words[0].typo else words
        core = core[:-1] if core and core[-1].typo else core
        chosen = core if len(core) >= MIN_WORDS else words
        if len(chosen) >= MIN_WORDS and len(core) >= MIN_WORDS - 2:
            return Phrase(chosen[0].start, chosen[-1].end, "english")
    return None
