"""The BIP-39 wordlists the secrets guard looks for (pure; read once, on first use).

The lists come from ``mnemonic`` (the Trezor reference implementation): English and the
simplified and traditional Chinese lists, 2,048 entries each. What both phrase finders
share lives here: the lists and their lookups, what may stand between two words, the
checksum, and the found ``Phrase``.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Final

from mnemonic import Mnemonic

LENGTHS: Final = frozenset({12, 15, 18, 21, 24})
MIN_WORDS: Final = 12
CHINESE: Final = ("chinese_simplified", "chinese_traditional")

# Between two words: 1 to 24 separators, each whitespace or a line break, a comma, 、, ;,
# a bullet, a ``>`` quote mark or list numbering (1. (2) 3) 4: 5、).
SEPARATOR = r"(?:[\s,，、;；|>*•·#\-–—]|[(\[（【]?(?<!\d)\d{1,2}(?!\d)[.)\]:：、）】]?)"
GAP: Final = re.compile(SEPARATOR + "{1,24}")


@dataclass(frozen=True, slots=True)
class Phrase:
    """A recovery phrase at text[start:end], in the named BIP-39 wordlist."""

    start: int
    end: int
    language: str


@dataclass(frozen=True, slots=True)
class Wordlists:
    english: frozenset[str]
    deletions: frozenset[str]  # every English word with one letter left out
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
    return Wordlists(
        frozenset(english),
        frozenset(w[:i] + w[i + 1 :] for w in english for i in range(len(w))),
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


def checksum_holds(indexes: Sequence[int]) -> bool:
    """BIP-39: the last n/33 of the 11n bits are the first bits of sha256(the others).

    ``Mnemonic.check`` says the same, but looks each word up with ``list.index``.
    """
    value = 0
    for index in indexes:
        value = value << 11 | index
    check_bits = len(indexes) * 11 // 33
    entropy = (value >> check_bits).to_bytes((len(indexes) * 11 - check_bits) // 8, "big")
    first_byte = hashlib.sha256(entropy).digest()[0]
    return first_byte >> (8 - check_bits) == value & ((1 << check_bits) - 1)
