"""The BIP-39 wordlists the secrets guard looks for (pure; read once, on first use).

The lists come from ``mnemonic`` (the Trezor reference implementation): English and the
simplified and traditional Chinese lists, 2,048 entries each. What both phrase finders
share lives here: the lists and their lookups, what may stand between two words, the
keywords that announce a phrase, the checksum, and the found ``Phrase``.

The checksum is what tells a phrase from a list of ordinary words ("Interests: music,
video, game, ..."): the last 4 to 8 bits of a phrase are a hash of the others, so a list
of 12 words passes by chance once in 16, one of 24 once in 256. ``phrases`` finds the
windows of a run of words that pass.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import accumulate, pairwise, product
from typing import Final

from mnemonic import Mnemonic

LENGTHS: Final = (12, 15, 18, 21, 24)
MIN_WORDS: Final = 12
MAX_READINGS: Final = 64  # typo readings tried per window: beyond, the window does not count
SLACK: Final = 3  # other wordlist words a phrase may have on either side ("thank you")
CHINESE: Final = ("chinese_simplified", "chinese_traditional")
Window = tuple[int, int]  # (first, stop): word positions in a run

# Between two words: 1 to 24 separators, each whitespace or a line break, a comma, 、, ;,
# a slash, a quote, a bullet, a ``>`` quote mark or list numbering (1. (2) 3) 4: 5、).
SEPARATOR = r"(?:[\s,，、;；/|>*•·#\"'“”‘’\-–—]|[(\[（【]?(?<!\d)\d{1,2}(?!\d)[.)\]:：、）】]?)"
GAP: Final = re.compile(SEPARATOR + "{1,24}")
# Words that announce a phrase: a phrase they announce needs no checksum (users mistype).
KEYWORD: Final = re.compile(
    r"mnemonic|seed\s*(?:phrase|words?)|recovery\s*(?:phrase|words?|seed)|backup\s*phrase"
    r"|secret\s*(?:phrase|recovery|words)|private\s*key|助记[词码符]|助記[詞碼符]"
    r"|恢[复復](?:短[语語]|[词詞])|[种種]子(?:短[语語]|[词詞])|备份短语|備份短語|密[语語]|私[钥鑰]",
    re.IGNORECASE,
)
_KEYWORD_STEMS: Final = (
    "mnemonic",
    "seed",
    "recovery",
    "backup",
    "secret",
    "private",
    *"助恢子份密私",
)


@dataclass(frozen=True, slots=True)
class Phrase:
    """A recovery phrase at text[start:end], in the named BIP-39 wordlist."""

    start: int
    end: int
    language: str


@dataclass(frozen=True, slots=True)
class Wordlists:
    english: dict[str, int]  # word -> index
    near: dict[str, tuple[int, ...]]  # a word with one letter left out -> its indexes
    chinese: tuple[tuple[str, dict[str, int]], ...]  # (list name, character -> index)
    rarity: dict[str, float]  # Chinese character -> ln(rank + 1), simplified rank first
    groups: re.Pattern[str]  # splits text into gaps and glued runs of list characters


@functools.cache
def wordlists() -> Wordlists:
    english = Mnemonic("english").wordlist
    chinese = tuple((name, Mnemonic(name).wordlist) for name in CHINESE)
    rarity: dict[str, float] = {}
    for _, words in reversed(chinese):
        rarity.update((c, math.log(rank + 1)) for rank, c in enumerate(words))
    near: dict[str, set[int]] = {}
    for index, word in enumerate(english):
        for i in range(len(word)):
            near.setdefault(word[:i] + word[i + 1 :], set()).add(index)
    return Wordlists(
        {w: i for i, w in enumerate(english)},
        {short: tuple(sorted(indexes)) for short, indexes in near.items()},
        tuple((name, {c: i for i, c in enumerate(words)}) for name, words in chinese),
        rarity,
        re.compile(f"([{''.join(sorted(rarity))}]+)"),
    )


def split(pattern: re.Pattern[str], scan: str) -> tuple[list[str], list[int]]:
    """Gaps and matches alternating (gap first), and the offset where each part ends.

    One C-level split instead of a match object per word keeps a 1 MB body fast.
    """
    parts = pattern.split(scan)
    return parts, list(accumulate(map(len, parts)))


def keywords(scan: str) -> list[tuple[int, int]]:
    """Spans of phrase keywords (a cheap substring test first: most mail has none)."""
    lowered = scan.lower()
    if not any(stem in lowered for stem in _KEYWORD_STEMS):
        return []
    return [m.span() for m in KEYWORD.finditer(scan)]


def checksum_holds(indexes: Sequence[int]) -> bool:
    """BIP-39: the last n/33 of the 11n bits are the first bits of sha256(the others).

    ``Mnemonic.check`` says the same, but looks each word up with ``list.index``.
    """
    value = 0
    for index in indexes:
        value = value << 11 | index
    check_bits = len(indexes) // 3
    entropy = (value >> check_bits).to_bytes(len(indexes) * 4 // 3, "big")
    first_byte = hashlib.sha256(entropy).digest()[0]
    return first_byte >> (8 - check_bits) == value & ((1 << check_bits) - 1)


def phrases(
    words: Sequence[Sequence[int]],
    lines: Sequence[Window] = (),
    accept: Callable[[int, int], bool] | None = None,
) -> list[Window]:
    """The phrases in a run of words, as (first, stop) windows in order.

    ``words`` holds each word's possible indexes: one for a wordlist word, several for a
    typo, none for a word of another list; a window passes its checksum when one reading
    does (and ``accept`` agrees). A passing window counts when it fills one of ``lines``
    (the run's words on one line), or when passing windows and at most ``SLACK`` other
    words before, between and after them make up the whole run: a list of 15 ordinary
    words has four 12-word windows and a list of 24 thirteen, each passing once in 16,
    while a phrase rarely has more than "thank you" or "help" beside it. Only windows
    reachable that way are tested, so a long run of words costs little.

    The windows that count are masked together: a neighbouring word joins its phrase
    only when a window holding it passes too (once in 16 for a 12-word phrase, and far
    less for longer ones), so "help!" after a phrase usually stays; never when the
    phrase fills its line, nor when the neighbour is a typo (``_needed``).
    """
    checks = _Checks(words, accept)
    fitted = {w for w in lines if w[1] - w[0] in LENGTHS and checks.passes(*w)}
    reached = _reachable(len(words), _beside(fitted, checks.passes, len(words)))
    counted = _through(len(words), reached) | fitted
    return merge(_needed(counted, checks.typos) if checks.typos[-1] else sorted(counted))


class _Checks:
    """Which windows of one run pass the checksum; each is tested once."""

    def __init__(
        self, words: Sequence[Sequence[int]], accept: Callable[[int, int], bool] | None
    ) -> None:
        self.words, self.accept = words, accept
        lengths = list(map(len, words))
        # before each position, how many words are typos (several readings) and how
        # many are of no list: a window's count is a difference of two
        self.typos = list(accumulate(map((1).__lt__, lengths), initial=0))
        self.none = list(accumulate(map((0).__eq__, lengths), initial=0))
        self.tested: dict[Window, bool] = {}

    def passes(self, first: int, stop: int) -> bool:
        if (first, stop) not in self.tested:
            window = self.words[first:stop]
            if self.none[stop] != self.none[first]:
                holds = False
            elif self.typos[stop] == self.typos[first]:  # one reading
                holds = checksum_holds([w[0] for w in window])
            else:
                readings = math.prod(map(len, window))
                holds = readings <= MAX_READINGS and any(map(checksum_holds, product(*window)))
            accepted = holds and (self.accept is None or self.accept(first, stop))
            self.tested[first, stop] = accepted
        return self.tested[first, stop]


def _beside(
    fitted: set[Window], passes: Callable[[int, int], bool], count: int
) -> Callable[[int, int], bool]:
    """``passes``, but for windows reaching into a line that holds a phrase: on its own
    line, a phrase does not take in the "Thank you" on the next."""
    in_line = [False] * count
    for first, stop in fitted:
        in_line[first:stop] = [True] * (stop - first)
    taken = list(accumulate(in_line, initial=0))

    def beside(first: int, stop: int) -> bool:
        if taken[stop] != taken[first]:
            return (first, stop) in fitted
        return passes(first, stop)

    return beside


def _needed(windows: set[Window], typos: list[int]) -> list[Window]:
    """``windows`` without those holding a typo at an end that the others cover but for
    that word: a typo beside a phrase belongs to it only when the phrase needs it."""
    cover: dict[int, int] = {}
    for first, stop in windows:
        for i in range(first, stop):
            cover[i] = cover.get(i, 0) + 1
    kept = []
    for first, stop in sorted(windows):
        ends = {i for i in (first, stop - 1) if typos[i + 1] != typos[i]}
        if not ends or any(cover[i] < 2 for i in range(first, stop) if i not in ends):
            kept.append((first, stop))
    return kept


def _through(count: int, reached: set[Window]) -> set[Window]:
    """The reached windows from which the run's end is reached too (no new test)."""
    behind = [False] * (count + 1)
    behind[count] = True
    through: set[Window] = set()
    for first, stop in sorted(reached, key=lambda w: -w[1]):
        if any(behind[stop : stop + SLACK + 1]):
            behind[first] = True
            through.add((first, stop))
    return through


def lines(spans: Sequence[tuple[int, int]], scan: str) -> list[Window]:
    """(first, stop) of the words of a run that share a line; ``spans`` are where the
    words stand in ``scan``."""
    edges = [0]
    edges += [i for i in range(1, len(spans)) if "\n" in scan[spans[i - 1][1] : spans[i][0]]]
    edges.append(len(spans))
    return list(pairwise(edges))


def _reachable(count: int, passes: Callable[[int, int], bool]) -> set[Window]:
    """Passing windows reached from the run's start over at most SLACK words each."""
    found: set[Window] = set()
    todo, seen = [0], {0}
    while todo:
        position = todo.pop()
        for first in range(position, min(position + SLACK, count) + 1):
            for size in LENGTHS:
                stop = first + size
                if stop <= count and passes(first, stop):
                    found.add((first, stop))
                    if stop not in seen:
                        seen.add(stop)
                        todo.append(stop)
    return found


def merge(windows: Sequence[Window]) -> list[Window]:
    """Overlapping or touching windows joined: phrases in a row are one secret."""
    merged: list[tuple[int, int]] = []
    for first, stop in sorted(windows):
        if merged and first <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], stop))
        else:
            merged.append((first, stop))
    return merged
