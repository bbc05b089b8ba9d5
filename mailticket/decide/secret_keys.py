"""Find private keys in text (pure): hex, WIF, extended and base58 keys, whole or split.

The policy errs on the side of safety: a key-shaped run is a key unless the requester
labelled it as a transaction hash.

- 64 hex digits, with or without ``0x``; also split in two to four pieces over lines (a
  wrapped or hand-broken key; ``>`` quote marks allowed), or in groups of 4, 8 or 16
  separated by spaces, dashes or line breaks. A split key needs digits and letters.
- A transaction hash has the same shape and agents need it, so a run is kept when it is
  labelled: a label (``tx``, ``txid``, ``hash``, ``transaction``, ``signature``,
  ``checksum``, ``sha256``, ``md5``, 交易, 哈希, 签名, 转账...) ends right before it with
  only punctuation and filler (``id``, ``no``, ``is``, 是, 为, 记录...) between; for a
  ``0x`` run, anywhere in the same sentence up to ``LABEL_WORDS`` words before it ("The
  TxID of my withdrawal is 0x...", "Tx Hash (from Etherscan): 0x..."): Ethereum hashes
  are shown with ``0x``, while MetaMask exports keys without it. A run is also kept in a
  block-explorer path (``/tx/``, ``/transaction/``, ``?hash=``) and after a kept hash with
  only list punctuation between (``tx: 0xA, 0xB``). Key words (private, key, secret,
  seed, 私钥...) before the label (for a ``0x`` run, anywhere in its sentence) void it:
  "my private key for the transaction: 0x..." is masked. Any other run is a key.
- WIF (base58, ``5`` + 50 or ``K``/``L`` + 51 characters) and extended private keys
  (``xprv``, ``tprv``, ``yprv``, ``zprv``...): always, by shape; no checksum, since a
  mistyped key is still a key.
- 64-byte base58 keys (86-88 characters, the Solana/Phantom export), under the
  transaction-hash rule: a Solana transaction signature has the same shape.

In the scanned text ``\\x00`` stands for a masked key, ``\\x01`` for a masked phrase.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final

__all__ = ["find_keys"]

LABEL_REACH: Final = 48  # characters before a hash where a label or key words count
SENTENCE_REACH: Final = 64  # the same for a label in the sentence of a 0x hash
LABEL_WORDS: Final = 6  # words at most between a label and a 0x hash
LIST_GAP: Final = 24  # at most this between two hashes of one labelled list
KEY_HEX: Final = 64

_HEX_RUN = re.compile(r"[0-9A-Fa-f]{64,}")
_BASE58_RUN = re.compile(r"[1-9A-HJ-NP-Za-km-z]{51,}")
_HEX = frozenset("0123456789abcdefABCDEF\x00")
_ALNUM = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ\x00")
_EXTENDED = ("xprv", "yprv", "zprv", "tprv", "uprv", "vprv", "Yprv", "Zprv", "Uprv", "Vprv")
# Pieces of hex joined by a space, a dash, or a line break with quote marks.
_JOINER = r"(?:[ \t]*\r?\n[ \t]*(?:>[ \t]*)*|[ \t]{1,2}|[ \t]?[-–][ \t]?)"
_PIECE = r"[0-9A-Fa-f]{2,}(?![0-9A-Za-z\x00])"
# The pattern opens with a class, not a look-behind, so that the regex engine skips
# ahead to the next hex digit (twice as fast); the look-behind follows that digit.
_PIECES = re.compile(
    rf"[0-9A-Fa-f](?:(?<![0-9A-Za-z\x00].)|(?<=0[xX].))[0-9A-Fa-f]+(?![0-9A-Za-z\x00])"
    rf"(?:{_JOINER}{_PIECE})+"
)
_HEX_PIECE = re.compile(r"[0-9A-Fa-f]{2,}")
_GROUP_SIZES: Final = (4, 8, 16)
_TX_WORD = (
    r"(?<![a-z])(?:tx|txn|txid|txhash|tx_hash|tx_id|sig)s?(?![a-z])"
    r"|(?:hash|transaction|signature|checksum|digest|sha-?256|md5)(?:e?s)?(?![a-z])"
    r"|交易|哈希|签名|簽名|转账|轉帳|校验和|摘要"
)
_FILLER = (
    r"(?:[\s:=：#/.\"'`(（\[【\-]|(?<![a-z])(?:ids?|hash(?:es)?|no|number|is|are|was|were|of)"
    r"(?![a-z])|编号|號|号|值|是|为|為|记录|記錄|单号|單號)*"
)
_TX_LABEL = re.compile(rf"(?:{_TX_WORD}){_FILLER}\Z", re.IGNORECASE)
_TX_WORDS = re.compile(_TX_WORD, re.IGNORECASE)
_EXPLORER = re.compile(r"/(?:tx|txs|transaction|transactions)/\S*\Z", re.IGNORECASE)
_KEY_WORDS = re.compile(
    r"private|priv\s*key|(?<![a-z])keys?(?![a-z])|secret|seed|mnemonic|recovery|keystore"
    r"|wif|xprv|私[钥鑰]|密[钥鑰]|助[记記]|恢[复復]|[种種]子",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"[.!?。！？](?:\s|\Z)|\n\s*\n")
_WORD = re.compile(r"[A-Za-z]+|[\u4e00-\u9fff]{1,2}")
_LIST_GAP = re.compile(
    r"(?:[\s,;，、；|>*•·\-–—\"'`]|and|or|和|及|与|與|(?<!\d)\d{1,2}[.)、:：]?)*", re.IGNORECASE
)


def find_keys(scan: str) -> Iterator[tuple[int, int]]:
    """Spans of private keys; labelled transaction hashes and signatures are left out."""
    previous_end = 0
    kept_end = -1
    for start, end, ambiguous in sorted(_candidates(scan), key=lambda c: (c[0], -c[1])):
        if start < previous_end:
            continue
        if ambiguous and _is_transaction(scan, start, previous_end, kept_end):
            kept_end = end
        else:
            yield start, end
        previous_end = end


def _candidates(scan: str) -> Iterator[tuple[int, int, bool]]:
    """(start, end, ambiguous) of every run shaped like a key.

    ``\\x00`` (a masked key) counts as glued, as the key it replaced did.
    """
    for m in _HEX_RUN.finditer(scan):
        start, end = m.span()
        if (
            end - start == KEY_HEX
            and scan[end : end + 1] not in _HEX
            and scan[start - 1 : start] != "\x00"
        ):
            yield _with_prefix(scan, start), end, True
    yield from _split_keys(scan)
    for m in _BASE58_RUN.finditer(scan):
        start, end = m.span()
        if scan[start - 1 : start] in _ALNUM or scan[end : end + 1] in _ALNUM:
            continue
        run, size = m.group(), end - start
        wif = (size == 51 and run[0] == "5") or (size == 52 and run[0] in "KL")
        if wif or (run.startswith(_EXTENDED) and 104 <= size <= 112):
            yield start, end, False
        elif 86 <= size <= 88:
            yield start, end, True


def _with_prefix(scan: str, start: int) -> int:
    """``start`` moved back over a ``0x`` that is not itself glued to hex."""
    prefixed = scan[start - 2 : start] in ("0x", "0X") and scan[start - 3 : start - 2] not in _HEX
    return start - 2 if prefixed and start >= 2 else start


def _split_keys(scan: str) -> Iterator[tuple[int, int, bool]]:
    """Keys in pieces: groups of one size, or two to four pieces over lines."""
    for m in _PIECES.finditer(scan):
        if m.end() - m.start() <= KEY_HEX:
            continue
        pieces = [p.span() for p in _HEX_PIECE.finditer(scan, m.start(), m.end())]
        for first, stop in [*_groups(pieces, scan), *_lines(pieces, scan)]:
            start = _with_prefix(scan, pieces[first][0])
            digits = "".join(scan[s:e] for s, e in pieces[first:stop])
            glued = scan[start - 1 : start] in _ALNUM  # to a "0x" glued to letters
            if not (glued or digits.isdigit() or digits.isalpha()):
                yield start, pieces[stop - 1][1], True


def _groups(pieces: list[tuple[int, int]], scan: str) -> Iterator[tuple[int, int]]:
    """(first, stop) of runs of equal groups making 64 digits. Letter-only groups at
    either end of a longer run (words such as "face" or "added") may be left out."""
    first = 0
    while first < len(pieces):
        size = pieces[first][1] - pieces[first][0]
        stop = first + 1
        while stop < len(pieces) and pieces[stop][1] - pieces[stop][0] == size:
            stop += 1
        if size in _GROUP_SIZES and stop - first >= KEY_HEX // size:
            extra = stop - first - KEY_HEX // size
            for left in range(extra + 1):
                right = stop - (extra - left)
                trimmed = [*pieces[first : first + left], *pieces[right:stop]]
                if all(scan[s:e].isalpha() for s, e in trimmed):
                    yield first + left, right
                    break
        first = stop


def _lines(pieces: list[tuple[int, int]], scan: str) -> Iterator[tuple[int, int]]:
    """(first, stop) of two to four pieces, each after the first opening a line, that
    make 64 digits."""
    first = 0
    while first < len(pieces) - 1:
        total = pieces[first][1] - pieces[first][0]
        for stop in range(first + 1, min(first + 4, len(pieces))):
            if "\n" not in scan[pieces[stop - 1][1] : pieces[stop][0]]:
                break
            total += pieces[stop][1] - pieces[stop][0]
            if total >= KEY_HEX:
                break
        else:
            stop = first
        if total == KEY_HEX and stop > first:
            yield first, stop + 1
            first = stop + 1
        else:
            first += 1


def _is_transaction(scan: str, start: int, previous_end: int, kept_end: int) -> bool:
    """A hash the requester labelled as a transaction (see the module docstring)."""
    listed = kept_end == previous_end and start - kept_end <= LIST_GAP
    if listed and _LIST_GAP.fullmatch(scan, kept_end, start):
        return True
    window = _window(scan, start, previous_end, LABEL_REACH)
    labelled = _TX_LABEL.search(window) or _EXPLORER.search(window)
    if labelled:
        return not _KEY_WORDS.search(window, 0, labelled.start())
    prefixed = scan[start : start + 2] in ("0x", "0X")
    return prefixed and _in_labelled_sentence(_window(scan, start, previous_end, SENTENCE_REACH))


def _window(scan: str, start: int, previous_end: int, reach: int) -> str:
    """The text before ``start``: ``reach`` characters, not back over a finding."""
    window = scan[max(previous_end, start - reach) : start]
    return window[max(window.rfind("\x00"), window.rfind("\x01")) + 1 :]


def _in_labelled_sentence(window: str) -> bool:
    """A label at most LABEL_WORDS words before, in the same sentence, no key words."""
    ends = [m.end() for m in _SENTENCE.finditer(window)]
    sentence = window[ends[-1] if ends else 0 :]
    labels = [m.end() for m in _TX_WORDS.finditer(sentence)]
    if not labels or _KEY_WORDS.search(sentence):
        return False
    return len(_WORD.findall(sentence, labels[-1])) <= LABEL_WORDS
