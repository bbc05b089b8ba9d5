"""Is a mail's identity readable one way only? (pure)

Anyone can write any header, and a header that two programs read differently is an
attack: intake keyed a From on ``agent@corp.test`` while the DKIM check, reading the
decoded value, saw ``mallory@evil.test``. mailticket reads every identity once
(:mod:`mailticket.parse.mail`) and uses that reading everywhere; this module says when that
reading cannot be trusted to act on:

- a header RFC 5322 allows once appears twice (a replayed, signed mail with a second
  ``Subject: [MT-2]`` or ``Message-ID`` on top: intake reads the top one, DKIM the other);
- From, Sender or Reply-To names a different set of mailboxes under the strict parser
  (the email package's header registry), under mailticket's reading (encoded words hidden
  while the list is split), or with encoded words decoded first (what a naive verifier
  does), or From does not name exactly one mailbox.

Such a mail is still a ticket's mail: it just never acts as an agent and never adds
participants.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from email import policy
from email.utils import getaddresses
from typing import Final

from mailticket.parse import charsets

# RFC 5322 3.6: at most one of each (Bcc aside, which a received mail should not carry)
SINGLETONS: Final = (
    "from",
    "sender",
    "reply-to",
    "to",
    "cc",
    "subject",
    "message-id",
    "date",
    "in-reply-to",
    "references",
)
IDENTITY_HEADERS: Final = ("from", "sender", "reply-to")

Decode = Callable[[str, bool], str]  # (raw value, decode encoded words?) -> text


def repeated(names: Iterable[str]) -> tuple[str, ...]:
    """The singleton headers that appear more than once, by their lower-case names."""
    seen: dict[str, int] = {}
    for name in names:
        seen[name] = seen.get(name, 0) + 1
    return tuple(name for name in SINGLETONS if seen.get(name, 0) > 1)


def readings(raw: str, decode: Decode) -> tuple[frozenset[str], ...]:
    """The lower-case addr-specs of one address header value, read three ways."""
    undecoded = decode(raw, False)
    return (
        _strict(undecoded),
        _hidden_words(undecoded),
        frozenset(address.lower() for _, address in _split(decode(raw, True)) if address),
    )


def problems(headers: Sequence[tuple[str, str]], decode: Decode) -> tuple[str, ...]:
    """Why the mail's identity is not to be acted on; empty when it is readable one way.

    ``headers`` are the top-level (lower-case name, raw value) pairs, in order.
    """
    found = [f"{name} header repeated" for name in repeated(name for name, _ in headers)]
    for name in IDENTITY_HEADERS:
        values = [raw for key, raw in headers if key == name]
        if not values:
            if name == "from":
                found.append("no From header")
            continue
        read = readings(values[0], decode)
        if len(set(read)) > 1:
            shown = " / ".join(", ".join(sorted(r)) or "nothing" for r in read)
            found.append(f"{name} reads differently to different parsers ({shown})")
        elif name == "from" and len(read[0]) != 1:
            found.append(f"From names {len(read[0])} mailboxes")
    return tuple(found)


def _strict(value: str) -> frozenset[str]:
    try:
        header = policy.default.header_factory("from", value)
        return frozenset(a.addr_spec.lower() for a in header.addresses if a.addr_spec)
    except Exception:  # the registry's parser has known crashes on hostile input
        return frozenset({"(unparseable)"})


def _hidden_words(value: str) -> frozenset[str]:
    hidden, words = charsets.hide_words(value)
    return frozenset(
        charsets.show_words(address, words).lower() for _, address in _split(hidden) if address
    )


def _split(value: str) -> list[tuple[str, str]]:
    try:
        return getaddresses([value])
    except RecursionError:  # the stdlib recurses once per ":" (group syntax)
        return [("", "(unparseable)")]
