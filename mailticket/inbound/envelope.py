"""The SMTP envelope written on top of the mail, as a delivering MTA does (pure).

The envelope (MAIL FROM, RCPT TO) travels beside the mail, not in it; at final delivery an
MTA writes it into the mail so that it is not lost:

- ``Return-Path: <sender>`` (RFC 5321 4.4), ``<>`` for the null sender that bounces and
  auto-replies use (RFC 5321 4.5.5);
- ``Delivered-To: recipient``, one per envelope recipient in RCPT order (RFC 9228).

Postfix's local delivery writes both (its pipe transport with the flags ``R`` and ``D``),
and so does Dovecot's LMTP. Both are trace headers: they say which way a copy came, not
what the mail says; the same mail by another path is the same mail. The SMTP listener and
``mailticket ingest --sender/--recipient`` write them; the topmost Return-Path is then the
one this delivery wrote (a sender may write their own below it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

RETURN_PATH: Final = "Return-Path"
DELIVERED_TO: Final = "Delivered-To"
TRACE_HEADERS: Final = (RETURN_PATH, DELIVERED_TO)  # the names this module writes
_MAX_LINE: Final = 998  # octets of a header line without CRLF (RFC 5322 2.1.1)


def stamp(raw: bytes, sender: str | None, recipients: Sequence[str] = ()) -> bytes:
    """``raw`` with the envelope on top, in the mail's own line endings.

    ``sender`` None: not known (no Return-Path is written); ``""`` or ``"<>"``: the null
    sender. Raises ValueError for an address no header can hold (see ``writable``).
    """
    lines = [] if sender is None else [f"{RETURN_PATH}: <{_checked(sender, null=True)}>"]
    lines += [f"{DELIVERED_TO}: {_checked(recipient, null=False)}" for recipient in recipients]
    newline = _newline(raw)
    return "".join(line + newline for line in lines).encode("utf-8", "surrogateescape") + raw


def writable(address: str) -> bool:
    """Whether ``address`` fits on one header line: no control characters (CR, LF) and
    at most 998 octets. Non-ASCII (SMTPUTF8, RFC 6532) is written as UTF-8."""
    try:
        encoded = address.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that no bytes decoded to
        return False
    longest = len(encoded) + len(DELIVERED_TO) + 4  # "Delivered-To: <address>" at most
    return longest <= _MAX_LINE and all(32 <= byte != 127 for byte in encoded)


def _checked(address: str, *, null: bool) -> str:
    bare = _bare(address)
    if not writable(bare) or not (bare or null):
        raise ValueError(f"no header can hold this address: {address!r}")
    return bare


def _bare(address: str) -> str:
    """The address without the angle brackets SMTP puts around it; "" for ``<>``."""
    address = address.strip()
    if address.startswith("<") and address.endswith(">"):
        address = address[1:-1].strip()
    return address


def _newline(raw: bytes) -> str:
    """CRLF when the mail's first line ends so (SMTP), else LF (a pipe, a file)."""
    end = raw.find(b"\n")
    return "\r\n" if end > 0 and raw[end - 1 : end] == b"\r" else "\n"
