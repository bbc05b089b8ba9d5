"""The envelope written on top of a mail (pure), and what the guard reads from it."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from mailticket.decide.guard import classify
from mailticket.inbound.envelope import TRACE_HEADERS, stamp, writable
from mailticket.parse.mail import parse

CRLF_MAIL = b"From: alice@customer.example\r\nSubject: Hello\r\n\r\nHi\r\n"
LF_MAIL = CRLF_MAIL.replace(b"\r\n", b"\n")


@pytest.mark.parametrize(
    ("raw", "sender", "recipients", "head"),
    [
        (CRLF_MAIL, "alice@customer.example", ["support@example.org"],
         b"Return-Path: <alice@customer.example>\r\nDelivered-To: support@example.org\r\n"),
        (CRLF_MAIL, "<alice@customer.example>", [], b"Return-Path: <alice@customer.example>\r\n"),
        (CRLF_MAIL, "<>", [], b"Return-Path: <>\r\n"),  # aiosmtpd's null sender
        (CRLF_MAIL, "", [], b"Return-Path: <>\r\n"),  # Postfix's ${sender} for it
        (LF_MAIL, "", ["a@example.org", "b@example.org"],  # a pipe: the mail's LF, RCPT order
         b"Return-Path: <>\nDelivered-To: a@example.org\nDelivered-To: b@example.org\n"),
        (CRLF_MAIL, None, ["support@example.org"], b"Delivered-To: support@example.org\r\n"),
        (CRLF_MAIL, None, [], b""),  # no envelope known: the mail as it came
        (CRLF_MAIL, "josé@example.com", [], "Return-Path: <josé@example.com>\r\n".encode()),
        (CRLF_MAIL, '"System Administrator"@example.com', [],
         b'Return-Path: <"System Administrator"@example.com>\r\n'),
        (CRLF_MAIL, "\udcffx@example.com", [], b"Return-Path: <\xffx@example.com>\r\n"),  # 8-bit
        (b"", "", [], b"Return-Path: <>\n"),
    ],
)  # fmt: skip
def test_stamp_writes_the_envelope_on_top(
    raw: bytes, sender: str | None, recipients: Sequence[str], head: bytes
) -> None:
    assert stamp(raw, sender, recipients) == head + raw


@pytest.mark.parametrize(
    ("sender", "recipients"),
    [
        ("a@example.com\r\nBcc: x@example.com", []),
        ("a@example.com", ["b@example.com\nX-Evil: 1"]),
        ("a\x00@example.com", []),
        ("a@example.com", [""]),  # a recipient is someone; only the sender may be null
        ("a@example.com", ["<>"]),
        ("x" * 990 + "@example.com", []),  # no header line holds it (998 octets)
        ("\ud800@example.com", []),  # a lone surrogate: no bytes to write
    ],
)
def test_an_address_no_header_can_hold_is_refused(sender: str, recipients: list[str]) -> None:
    with pytest.raises(ValueError, match="no header can hold"):
        stamp(CRLF_MAIL, sender, recipients)


def test_writable_takes_what_a_header_line_holds() -> None:
    longest = "x" * (998 - len("Delivered-To: <@example.com>")) + "@example.com"
    assert writable(longest) and not writable("x" + longest)
    assert writable('"System Administrator"@example.com') and writable("用户@例子.中国")
    assert not writable("a\tb@example.com")


def test_the_names_written_are_trace_headers() -> None:
    stamped = stamp(CRLF_MAIL, "a@example.com", ["b@example.com"])
    written = [line.split(b":")[0].decode() for line in stamped.splitlines()[:2]]
    assert written == list(TRACE_HEADERS) == ["Return-Path", "Delivered-To"]


def _reasons(raw: bytes) -> tuple[str, ...]:
    return classify(parse(raw), ["support@example.org"]).reasons


HUMAN = (
    b"From: Alice <alice@customer.example>\r\nSubject: Printer\r\nMessage-ID: <p@c>\r\n\r\nHi\r\n"
)


def test_the_null_sender_makes_a_mail_automatic() -> None:
    assert _reasons(stamp(HUMAN, "alice@customer.example")) == ()
    assert _reasons(stamp(HUMAN, "")) == ("null Return-Path",)
    assert _reasons(stamp(HUMAN, "MAILER-DAEMON")) == ("Return-Path: MAILER-DAEMON",)


def test_only_the_topmost_return_path_counts() -> None:
    """The delivery writes the topmost; any below are the sender's own words."""
    own_null = b"Return-Path: <>\r\nReturn-Path: <MAILER-DAEMON@x.example>\r\n" + HUMAN
    assert _reasons(stamp(own_null, "alice@customer.example")) == ()
    own_person = b"Return-Path: <alice@customer.example>\r\n" + HUMAN
    assert _reasons(stamp(own_person, "")) == ("null Return-Path",)
