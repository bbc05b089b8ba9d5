"""Find BIP-39 recovery phrases in text (pure): the policy, and the English finder.

Wordlists (English, simplified and traditional Chinese) and separators: see ``bip39``.

- English: 12 or more wordlist words in a row, case-insensitive; a run of 13 or 30 is
  masked whole. A typo (4-9 letters, one edit away from a wordlist word) is tolerated when
  typos are at least 6 words apart; one at either end counts only when it makes the 12.
  No checksum: users mistype, and prose does not give 12 wordlist words in a row ("a",
  "the", "of", "to", "is" are not in the list; 7 is the longest run in 5.7 MB of English).
- Chinese, a separator between every character: 12 or more in a row whose characters are
  as rare as random draws (``chinese_phrases.RARITY``); no checksum.
- Chinese without separators is where the lists fail: they hold the 2,048 most frequent
  characters, 98 % of ordinary text, and prose is full of 12-character runs. A glued
  phrase needs proof that it is random: a line of exactly 12/15/18/21/24 characters whose
  BIP-39 checksum holds and whose rarity is at least ``GLUED_RARITY`` (5.8); or, with no
  checksum (typos), a mnemonic keyword (助记词, 私钥, seed phrase...) just before 12+
  characters of which 12 in a row reach ``RARITY`` (5.4). The mask then runs from the
  keyword to the end of the line, or to the first comma once it holds 12 characters (48
  at most, to a group's end).

Rarity is the mean ln(rank + 1) of the characters; the Chinese lists are ordered by
frequency. Random phrases score 6.6 on average, prose 4.8: of 5,000 generated 12-word
phrases 0.02 % fall under 5.4 and 0.7 % under 5.8 (longer phrases vary less).
False positives measured: none in the development mail corpus (1,174 files) nor in 5.7 MB
of English (licences, package docs, Python sources); in 3.6 MB of Chinese UI catalogues
(gettext zh_CN/zh_TW) 7 lines, and 5 in 260 KB of old Traditional Chinese man pages
written with a space between every character.

Each decision reads only its run and the text back to the previous finding, so masked
text scans the same way again (idempotence). In the scanned text ``\\x00`` stands for a
masked key (glued like the letters it replaced) and ``\\x01`` for a masked phrase.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from mailticket.bip39 import GAP, MIN_WORDS, Phrase, Wordlists, split, wordlists
from mailticket.chinese_phrases import find_chinese

__all__ = ["Phrase", "find_phrases"]

TYPO_DISTANCE: Final = 6  # typos closer than this many words end the run

_LETTERS = re.compile(r"([A-Za-z]+)")
_HIT_STRETCH = re.compile("1+(?:01+)*")  # no phrase spans two non-words in a row
_GLUE = frozenset("0123456789\x00")  # a word touching one of these is no word


def find_phrases(scan: str) -> list[Phrase]:
    """Every recovery phrase in ``scan``, in order."""
    lists = wordlists()
    english = list(_english(_tokens(scan, lists)))
    return sorted(english + find_chinese(scan, lists, english), key=lambda p: p.start)


# English: one token per word; None for a word that ends a run.


@dataclass(frozen=True, slots=True)
class _Token:
    start: int
    end: int
    typo: bool


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
        hit = word in lists.english
        joined = previous is not None and (before == " " or GAP.fullmatch(before) is not None)
        typo_allowed = previous is None or not previous.typo
        token: _Token | None = None
        if before[-1:] in _GLUE or after[:1] in _GLUE or not 3 <= len(word) <= 9:
            token = None
        elif hit or (typo_allowed and _typo(word, lists)):
            token = _Token(ends[i - 1], ends[i], not hit)
        if previous is not None and (token is None or not joined):
            yield None
        if token is not None:
            yield token
        previous = token


def _typo(word: str, lists: Wordlists) -> bool:
    """One insertion, deletion, substitution or swap away from an English wordlist word."""
    if len(word) < 4:
        return False
    if word in lists.deletions:
        return True
    shorter = (word[:i] + word[i + 1 :] for i in range(len(word)))
    return any(s in lists.english or s in lists.deletions for s in shorter)


def _english(tokens: Iterator[_Token | None]) -> Iterator[Phrase]:
    """Runs cut at non-words and at typos closer than TYPO_DISTANCE; 12+ words each."""
    part: list[_Token] = []
    last_typo = -TYPO_DISTANCE
    for token in tokens:
        if token is None or (token.typo and len(part) - last_typo < TYPO_DISTANCE):
            yield from _english_part(part)
            part, last_typo = [], -TYPO_DISTANCE
            continue
        if token.typo:
            last_typo = len(part)
        part.append(token)
    yield from _english_part(part)


def _english_part(part: list[_Token]) -> Iterator[Phrase]:
    """A typo at either end belongs to the phrase only when the phrase needs it."""
    core = part[1:] if part and part[0].typo else part
    core = core[:-1] if core and core[-1].typo else core
    words = core if len(core) >= MIN_WORDS else part
    if len(words) >= MIN_WORDS and len(core) >= MIN_WORDS - 2:
        yield Phrase(words[0].start, words[-1].end, "english")
