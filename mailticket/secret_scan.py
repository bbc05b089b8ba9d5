"""Secrets guard: find and mask private keys and recovery phrases in mail text (pure).

Customers of a crypto wallet paste their private key or recovery phrase into support
mail. Agents must never read it in clear, so every secret is replaced by a fixed marker
(``MARKERS``); every other character stays as it was. Masking is idempotent: markers are
blanked before a scan, and every decision reads only text that masking leaves alone.

Private keys (kind ``private_key``; the policy errs on the side of safety):
- 64 hex digits, with or without ``0x``. A transaction hash has the same shape and agents
  need it, so a run is kept when a label ends right before it (``tx``, ``txid``, ``hash``,
  ``transaction``, ``signature``, ``checksum``, ``sha256``, 交易, 哈希, 签名, 转账, so also
  交易号, 交易ID, 交易哈希, blockHash) with only punctuation and filler (``id``, ``no``,
  ``is``, 是, 为, 记录...) between; when it sits in a block-explorer path (``/tx/``,
  ``/transaction/``, ``?hash=``); or when it follows a kept hash with only list
  punctuation between (``tx: 0xA, 0xB``). Key words before the label (private key, 私钥,
  seed...) void it: "my private key for the transaction: 0x..." is masked. Any other run
  is a private key, so an unlabelled transaction hash is masked too.
- WIF (base58, ``5`` + 50 or ``K``/``L`` + 51 characters) and extended private keys
  (``xprv``, ``tprv``, ``yprv``, ``zprv``...): always, by shape; no checksum, since a
  mistyped key is still a key.
- 64-byte base58 keys (86-88 characters, the Solana/Phantom export), under the
  transaction-hash rule: a Solana transaction signature has the same shape.

Recovery phrases (kind ``mnemonic``): see ``seed_phrases``.
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Final, Literal

from mailticket.mail import InboundMail
from mailticket.seed_phrases import find_phrases

__all__ = [
    "MARKERS",
    "NO_SECRETS",
    "SECRET_TAG",
    "Finding",
    "Kind",
    "SecretReport",
    "find_secrets",
    "mask_secrets",
    "masked_mail",
    "scan_mail",
]

Kind = Literal["private_key", "mnemonic"]
MARKERS: Final[dict[Kind, str]] = {
    "private_key": "[secret removed: private key]",
    "mnemonic": "[secret removed: recovery phrase]",
}
LABEL_REACH: Final = 48  # characters before a hash where a label or key words count
LIST_GAP: Final = 24  # at most this between two hashes of one labelled list

_HEX_RUN = re.compile(r"[0-9A-Fa-f]{64,}")
_BASE58_RUN = re.compile(r"[1-9A-HJ-NP-Za-km-z]{51,}")
_HEX = frozenset("0123456789abcdefABCDEF\x00")
_ALNUM = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ\x00")
_EXTENDED = ("xprv", "yprv", "zprv", "tprv", "uprv", "vprv", "Yprv", "Zprv", "Uprv", "Vprv")
_TX_LABEL = re.compile(
    r"(?:(?<![a-z])(?:tx|txn|txid|tx_hash|tx_id|sig)s?(?![a-z])"
    r"|(?:hash|transaction|signature|checksum|digest|sha-?256)(?:e?s)?(?![a-z])"
    r"|交易|哈希|签名|簽名|转账|轉帳|校验和|摘要)"
    r"(?:[\s:=：#/.\"'`(（\[【\-]|(?<![a-z])(?:ids?|hash(?:es)?|no|number|is|are|was|were|of)(?![a-z])"
    r"|编号|號|号|值|是|为|為|记录|記錄|单号|單號)*\Z",
    re.IGNORECASE,
)
_EXPLORER = re.compile(r"/(?:tx|txs|transaction|transactions)/\S*\Z", re.IGNORECASE)
_KEY_WORDS = re.compile(
    r"private|priv\s*key|secret|seed|mnemonic|recovery|keystore|wif|xprv"
    r"|私[钥鑰]|密[钥鑰]|助[记記]|恢[复復]|[种種]子",
    re.IGNORECASE,
)
_LIST_GAP = re.compile(
    r"(?:[\s,;，、；|>*•·\-–—\"'`]|and|or|和|及|与|與|(?<!\d)\d{1,2}[.)、:：]?)*", re.IGNORECASE
)
_TAG = re.compile(r"<[^>]*>")


@dataclass(frozen=True, slots=True)
class Finding:
    """A secret at text[span[0]:span[1]]; ``language`` is the wordlist of a mnemonic."""

    kind: Kind
    span: tuple[int, int]
    language: str | None = None


@dataclass(frozen=True, slots=True)
class SecretReport:
    """What intake needs to tag the ticket and warn the requester (true when found)."""

    found: bool
    kinds: tuple[Kind, ...]

    def __bool__(self) -> bool:
        return self.found


NO_SECRETS: Final = SecretReport(False, ())
SECRET_TAG: Final = "secret-exposed"  # on every ticket a secret was sent to


def find_secrets(text: str) -> tuple[Finding, ...]:
    """Every private key and recovery phrase in ``text``, in order, never overlapping."""
    scan = _blank_markers(text)
    phrases = find_phrases(scan)
    scan = _blank(scan, [(p.start, p.end) for p in phrases], "\x01")
    keys = [Finding("private_key", span) for span in _keys(scan)]
    mnemonics = [Finding("mnemonic", (p.start, p.end), p.language) for p in phrases]
    return tuple(sorted((*keys, *mnemonics), key=lambda f: f.span))


def mask_secrets(text: str) -> str:
    """``text`` with each secret replaced by its marker; idempotent."""
    parts: list[str] = []
    position = 0
    for finding in find_secrets(text):
        start, end = finding.span
        parts += [text[position:start], MARKERS[finding.kind]]
        position = end
    parts.append(text[position:])
    return "".join(parts)


def scan_mail(text: str, html: str = "", subject: str = "") -> SecretReport:
    """Secrets in a mail's text, its HTML (tags dropped, entities decoded) or subject."""
    html_text = html_lib.unescape(_TAG.sub(" ", html)) if html else ""
    findings = find_secrets(text) + find_secrets(html_text) + find_secrets(subject)
    kinds = tuple(k for k in MARKERS if any(f.kind == k for f in findings))
    return SecretReport(bool(kinds), kinds)


def masked_mail(mail: InboundMail) -> InboundMail:
    """``mail`` as agents, rules and templates may see it: subject and text masked.

    A secret split by HTML tags cannot be masked inside the HTML, so such HTML is dropped
    (the text part, or the text rendered from the HTML, stays).
    """
    html = mask_secrets(mail.html) if mail.html else ""
    if html and scan_mail("", html):
        html = ""
    return replace(mail, subject=mask_secrets(mail.subject), text=mask_secrets(mail.text), html=html)


def _blank_markers(text: str) -> str:
    blanks: dict[Kind, str] = {"private_key": "\x00", "mnemonic": "\x01"}
    for kind, blank in blanks.items():
        marker = MARKERS[kind]
        if marker in text:
            text = text.replace(marker, blank * len(marker))
    return text


def _blank(scan: str, spans: list[tuple[int, int]], blank: str) -> str:
    """``scan`` with each span overwritten by ``blank`` (same length: offsets hold)."""
    parts: list[str] = []
    position = 0
    for start, end in spans:
        parts += [scan[position:start], blank * (end - start)]
        position = end
    parts.append(scan[position:])
    return "".join(parts)


def _keys(scan: str) -> Iterator[tuple[int, int]]:
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
            end - start == 64
            and scan[end : end + 1] not in _HEX
            and scan[start - 1 : start] != "\x00"
        ):
            prefixed = (
                scan[start - 2 : start] in ("0x", "0X") and scan[start - 3 : start - 2] not in _HEX
            )
            yield (start - 2 if prefixed and start >= 2 else start), end, True
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


def _is_transaction(scan: str, start: int, previous_end: int, kept_end: int) -> bool:
    """A hash the requester labelled as a transaction (see the module docstring)."""
    listed = kept_end == previous_end and start - kept_end <= LIST_GAP
    if listed and _LIST_GAP.fullmatch(scan, kept_end, start):
        return True
    window = scan[max(previous_end, start - LABEL_REACH) : start]
    window = window[max(window.rfind("\x00"), window.rfind("\x01")) + 1 :]
    labelled = _TX_LABEL.search(window) or _EXPLORER.search(window)
    if not labelled:
        return False
    return not _KEY_WORDS.search(window, 0, labelled.start())
