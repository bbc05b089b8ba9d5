"""Find Chinese recovery phrases (pure; the English finder and the lists: ``seed_phrases``).

- A separator between every character (spaces, 、, commas, slashes, numbering): 12, 15,
  18, 21 or 24 characters in a row that pass the BIP-39 checksum (either list), placed
  in their stretch as ``bip39.phrases`` asks, and whose characters are as rare as random
  draws (``RARITY``, 5.4); without a checksum (a wrong character), the whole stretch
  when a keyword (助记词, 私钥, seed phrase...) stands at most ``KEYWORD_REACH``
  characters before it and it is rare enough. Characters left beside a phrase are
  judged as glued pieces, as they will be once the phrase is masked.
- Chinese without separators is where the lists fail: they hold the 2,048 most frequent
  characters, 98 % of ordinary text, and prose is full of 12-character runs. A glued
  phrase needs proof that it is random: a line of exactly 12/15/18/21/24 characters whose
  checksum holds and whose rarity is at least ``GLUED_RARITY`` (5.8); or, with no
  checksum (typos), a keyword just before 12+ characters of which 12 in a row reach
  ``RARITY``. The mask then runs from the keyword to the end of the line, or to the first
  comma once it holds 12 characters (48 at most, to a group's end).

Rarity is the mean ln(rank + 1) of the characters; the Chinese lists are ordered by
frequency. Random phrases score 6.6 on average, prose 4.8: of 5,000 generated 12-word
phrases 0.02 % fall under 5.4 and 0.7 % under 5.8 (longer phrases vary less).

A run is glued groups (start, end) of wordlist characters joined by separators; one
character is one word. A run splits into stretches of single characters (spaced
phrases) and glued pieces, judged line by line and keyword by keyword. Whatever is left
beside a phrase is judged again as it will look once the phrase is masked, which keeps
masking idempotent without scanning anything twice.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from typing import Final

from mailticket.decide.bip39 import (
    GAP,
    LENGTHS,
    MIN_WORDS,
    Phrase,
    Wordlists,
    checksum_holds,
    keywords,
    lines,
    merge,
    phrases,
    split,
)

RARITY: Final = 5.4
GLUED_RARITY: Final = 5.8  # no keyword: 6 lines over it in 3.6 MB of Chinese UI strings
KEYWORD_REACH: Final = 8  # characters between a keyword and the phrase it announces
KEYWORD_SCOPE: Final = 48  # characters after a keyword that may hold its phrase

_CJK = re.compile("[\u4e00-\u9fff]")
_BLANKS = re.compile(r"[\x00\x01]")
_CLAUSE = re.compile(r"[,，;；]")
Group = tuple[int, int]


def find_chinese(scan: str, lists: Wordlists, taken: Sequence[Phrase]) -> list[Phrase]:
    """Chinese phrases in ``scan``; ``taken`` are the English ones, in order."""
    ends = [p.end for p in taken]
    found: list[Phrase] = []
    marks: list[Group] | None = None  # looked for once there is a run
    for run in _chinese_runs(scan, lists):
        marks = keywords(scan) if marks is None else marks
        floor = max(found[-1].end if found else 0, _last_before(ends, run[0][0]))
        found += _chinese(run, scan, marks, floor, lists)
    return found


def _last_before(ends: list[int], position: int) -> int:
    i = bisect_left(ends, position + 1)
    return ends[i - 1] if i else 0


def _chinese_runs(scan: str, lists: Wordlists) -> Iterator[list[Group]]:
    """Glued groups of list characters joined by gaps, 12 characters or more."""
    if scan.isascii() or not _CJK.search(scan):
        return
    parts, ends = split(lists.groups, scan)
    run: list[Group] = []
    for i in range(1, len(parts), 2):
        group = (ends[i - 1], ends[i])
        if run and GAP.fullmatch(parts[i - 1]):
            run.append(group)
            continue
        if run and sum(e - s for s, e in run) >= MIN_WORDS:
            yield run
        run = [group]
    if run and sum(e - s for s, e in run) >= MIN_WORDS:
        yield run


def _chinese(
    groups: list[Group], scan: str, keywords: Sequence[Group], floor: int, lists: Wordlists
) -> list[Phrase]:
    """Spaced phrases first; what is left goes through ``_pieces`` as glued pieces."""
    found: list[Phrase] = []
    piece: list[Group] = []
    for single, stretch in _stretches(groups):
        spans = []
        if single and len(stretch) >= MIN_WORDS:
            spans = _spaced(stretch, scan, keywords, found[-1].end if found else floor, lists)
        position = 0
        for first, stop in spans:
            piece += stretch[position:first]
            found += _pieces(piece, scan, keywords, found[-1].end if found else floor, lists)
            text = "".join(scan[s:e] for s, e in stretch[first:stop])
            found.append(Phrase(stretch[first][0], stretch[stop - 1][1], _language(text, lists)))
            piece, position = [], stop
        piece += stretch[position:]
    found += _pieces(piece, scan, keywords, found[-1].end if found else floor, lists)
    return found


def _spaced(
    stretch: list[Group], scan: str, keywords: Sequence[Group], floor: int, lists: Wordlists
) -> list[Group]:
    """(first, stop) of the phrases in a stretch of single characters: all of it when a
    keyword announces it, else the windows whose checksum holds; rare enough either way."""
    text = "".join(scan[s:e] for s, e in stretch)
    if _announces(keywords, stretch[0][0], scan, floor) and _rarity(text, lists) >= RARITY:
        return [(0, len(stretch))]
    rows = lines(stretch, scan)
    found: list[Group] = []
    for _, index in lists.chinese:
        words = [(index[c],) if c in index else () for c in text]
        found += phrases(words, rows, lambda a, b: _rarity(text[a:b], lists) >= RARITY)
    return merge(sorted(found))


def _announces(keywords: Sequence[Group], start: int, scan: str, floor: int) -> bool:
    """A keyword ends at most KEYWORD_REACH characters before ``start``, nothing masked
    between."""
    first = bisect_left(keywords, start - KEYWORD_REACH, key=lambda k: k[1])
    return any(
        floor <= k_start and k_end <= start and not _BLANKS.search(scan, k_end, start)
        for k_start, k_end in keywords[first:]
    )


def _stretches(groups: list[Group]) -> Iterator[tuple[bool, list[Group]]]:
    """Alternate maximal stretches of single characters (True) and of longer groups."""
    stretch: list[Group] = []
    single = True
    for group in groups:
        is_single = group[1] - group[0] == 1
        if stretch and is_single != single:
            yield single, stretch
            stretch = []
        single = is_single
        stretch.append(group)
    if stretch:
        yield single, stretch


def _pieces(
    groups: list[Group], scan: str, keywords: Sequence[Group], floor: int, lists: Wordlists
) -> list[Phrase]:
    """A glued piece: checksummed lines, then keyword phrases in the segments between."""
    found: list[Phrase] = []
    segment: list[Group] = []
    for line in _lines(groups, 0, len(groups), scan):
        phrase = _line_phrase(line, scan, lists)
        if phrase is None:
            segment += line
            continue
        found += _announced(segment, scan, keywords, floor, lists)
        found.append(phrase)
        floor, segment = phrase.end, []
    return found + _announced(segment, scan, keywords, floor, lists)


def _lines(groups: list[Group], first: int, stop: int, scan: str) -> Iterator[list[Group]]:
    line: list[Group] = []
    for i in range(first, stop):
        line.append(groups[i])
        if i + 1 == stop or "\n" in scan[groups[i][1] : groups[i + 1][0]]:
            yield line
            line = []


def _line_phrase(line: list[Group], scan: str, lists: Wordlists) -> Phrase | None:
    """The line as a phrase: exactly 12/15/18/21/24 characters, checksum, rare enough."""
    text = "".join(scan[s:e] for s, e in line)
    if len(text) not in LENGTHS or _rarity(text, lists) < GLUED_RARITY:
        return None
    for _, index in lists.chinese:
        if all(c in index for c in text) and checksum_holds([index[c] for c in text]):
            return Phrase(line[0][0], line[-1][1], _language(text, lists))
    return None


def _announced(
    groups: list[Group], scan: str, keywords: Sequence[Group], floor: int, lists: Wordlists
) -> list[Phrase]:
    """Keyword phrases in a segment whose whole lines have no checksum.

    A phrase that starts or ends inside a line leaves a partial line beside it, which is
    a line of its own once the phrase is masked: those are checked again.
    """
    found: list[Phrase] = []
    ends = [e for _, e in groups]
    first = 0
    while first < len(groups):
        hit = _after_keyword(groups, first, ends, scan, keywords, floor, lists)
        if hit is None:
            break
        start, end = hit
        at = bisect_left(ends, start, first)  # the group holding ``start``, or the next
        line = groups[_line_start(groups, first, at, scan) : at + 1]
        before = [(s, min(e, start)) for s, e in line if s < start]
        found += filter(None, [_line_phrase(before, scan, lists)])
        found.append(Phrase(start, end, _language(_text(scan, groups, at, start, end), lists)))
        first, floor = bisect_left(ends, end + 1, first), end
        if first < len(groups) and "\n" not in scan[end : groups[first][0]]:
            line = next(_lines(groups, first, len(groups), scan))
            phrase = _line_phrase(line, scan, lists)
            if phrase is not None:
                found.append(phrase)
                first, floor = first + len(line), phrase.end
    return found


def _line_start(groups: list[Group], first: int, at: int, scan: str) -> int:
    """Index of the first group on the line of ``groups[at]``, not before ``first``."""
    at = min(at, len(groups) - 1)
    while at > first and "\n" not in scan[groups[at - 1][1] : groups[at][0]]:
        at -= 1
    return at


def _after_keyword(
    groups: list[Group],
    first: int,
    ends: list[int],
    scan: str,
    keywords: Sequence[Group],
    floor: int,
    lists: Wordlists,
) -> Group | None:
    """From a keyword to the end of its clause, when 12 words in a row there look random."""
    reach = bisect_left(keywords, groups[first][0] - KEYWORD_REACH, key=lambda k: k[1])
    for k_start, k_end in keywords[reach:]:
        if k_end >= groups[-1][1]:
            break
        if k_start < floor or _BLANKS.search(scan, k_end, groups[first][0]):
            continue
        at = bisect_left(ends, k_end + 1, first)
        start = max(k_end, groups[at][0])
        end = _clause_end(groups, at, start, scan)
        if _best_rarity(_text(scan, groups, at, start, end), lists) >= RARITY:
            return start, end
    return None


def _clause_end(groups: list[Group], at: int, start: int, scan: str) -> int:
    """The end of the group before a line break, or a comma once 12 words are in."""
    count = 0
    for i in range(at, len(groups)):
        s, e = groups[i]
        count += e - max(s, start)
        if i + 1 == len(groups):
            return e
        gap = scan[e : groups[i + 1][0]]
        if "\n" in gap or count >= KEYWORD_SCOPE or (count >= MIN_WORDS and _CLAUSE.search(gap)):
            return e
    return groups[-1][1]


def _text(
    scan: str, groups: list[Group], at: int, start: int, end: int, limit: int = KEYWORD_SCOPE
) -> str:
    """The characters of groups[at:] from ``start`` to ``end`` (at most ``limit``)."""
    parts: list[str] = []
    size = 0
    for i in range(at, len(groups)):
        s, e = groups[i]
        if s >= end or size >= limit:
            break
        parts.append(scan[max(s, start) : min(e, end, max(s, start) + limit - size)])
        size += len(parts[-1])
    return "".join(parts)


def _rarity(text: str, lists: Wordlists) -> float:
    return sum(lists.rarity[c] for c in text) / len(text)


def _best_rarity(text: str, lists: Wordlists) -> float:
    """The highest rarity of 12 consecutive characters (0 when there are fewer)."""
    if len(text) < MIN_WORDS:
        return 0.0
    values = [lists.rarity[c] for c in text]
    window = best = sum(values[:MIN_WORDS])
    for i in range(MIN_WORDS, len(values)):
        window += values[i] - values[i - MIN_WORDS]
        best = max(best, window)
    return best / MIN_WORDS


def _language(text: str, lists: Wordlists) -> str:
    """The Chinese list holding most of the characters; a checksum settles a tie."""

    def fit(entry: tuple[str, dict[str, int]]) -> tuple[int, bool]:
        inside = sum(c in entry[1] for c in text)
        whole = inside == len(text) and len(text) in LENGTHS
        return inside, whole and checksum_holds([entry[1][c] for c in text])

    return max(lists.chinese, key=fit)[0]
