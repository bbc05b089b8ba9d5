"""The limits of mailticket.parse.limits, each through the real intake (SQLite, parser pool).

A mail over a hard limit is quarantined with a reason naming the limit and its raw bytes
kept exactly; past a soft limit the mail is stored and the note says what was left out.
The time bound is tested in test_parse_pool, the SMTP size limit (552) in test_smtp_inbox.
"""

from __future__ import annotations

import base64
import logging
import pickle
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlmodel import Session, select

from mailticket.errors import LimitExceeded, MailRejected, ParseError, SenderRejected
from mailticket.parse import limits
from mailticket.parse.mail import parse
from mailticket.runtime.core import Core, build_core
from mailticket.store.models import Attachment, Inbound, Ticket
from tests.conftest import Clock, make_settings

HEAD = (
    b"From: Alice <alice@customer.example>\r\nTo: support@example.org\r\n"
    b"Subject: limits\r\nMessage-ID: <limit@customer.example>\r\n"
)


@pytest.fixture
def core(tmp_path: Path, clock: Clock) -> Iterator[Core]:
    settings = make_settings(
        tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", tickets={"max_attachment_size": 1000}
    )
    with build_core(settings, clock=clock) as built:
        yield built


def inbound(core: Core) -> list[Inbound]:
    with Session(core.engine) as session:
        return list(session.exec(select(Inbound)).all())


def quarantined(core: Core, raw: bytes) -> Inbound:
    """Submit ``raw``; it must be quarantined, kept byte for byte; returns its row."""
    result = core.intake.submit(raw, "smtp")
    [row] = inbound(core)
    assert (result.outcome, row.state, row.raw) == ("quarantined", "quarantined", raw)
    assert row.error == result.detail
    return row


def stored(core: Core, raw: bytes) -> Ticket:
    """Submit ``raw``; it must open a ticket, its bytes kept; returns the ticket."""
    assert core.intake.submit(raw, "smtp").outcome == "stored"
    assert [row.raw for row in inbound(core)] == [raw]
    with Session(core.engine) as session:
        [ticket] = session.exec(select(Ticket)).all()
        return ticket


def with_fields(count: int) -> bytes:
    """A mail whose header block has exactly ``count`` fields."""
    extra = b"".join(b"X-Filler-%d: x\r\n" % i for i in range(count - HEAD.count(b"\r\n")))
    return HEAD + extra + b"\r\nbody\r\n"


def test_header_fields_up_to_the_limit_are_read(core: Core) -> None:
    stored(core, with_fields(limits.MAX_HEADER_FIELDS))


def test_one_header_field_too_many_is_quarantined(
    core: Core, caplog: pytest.LogCaptureFixture
) -> None:
    raw = with_fields(limits.MAX_HEADER_FIELDS + 1)
    with caplog.at_level(logging.WARNING, logger="mailticket.intake"):
        row = quarantined(core, raw)
    reason = "limit: the mail has 1,001 header fields (limit 1,000)"
    assert row.error == reason
    assert [r.getMessage() for r in caplog.records if reason in r.getMessage()]


def with_header_of(size: int) -> bytes:
    """A mail with a folded ``X-Long`` field of ``size`` bytes (name, colon, space, value)."""
    value = b"\r\n ".join([b"a" * 70] * ((size - 8) // 73)) or b""
    value += b"b" * (size - 8 - len(value))
    return HEAD + b"X-Long: " + value + b"\r\n\r\nbody\r\n"


def test_a_header_field_of_the_limit_is_read(core: Core) -> None:
    stored(core, with_header_of(limits.MAX_HEADER_BYTES))


def test_a_header_field_over_the_limit_is_quarantined(core: Core) -> None:
    row = quarantined(core, with_header_of(limits.MAX_HEADER_BYTES + 1))
    assert row.error == "limit: the mail has a 'X-Long' field of 102,401 bytes (limit 102,400)"


def test_the_limits_apply_to_the_header_blocks_of_parts(core: Core) -> None:
    fields = b"".join(b"X-Part-%d: y\r\n" % i for i in range(limits.MAX_HEADER_FIELDS))
    raw = (
        HEAD + b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n" + fields + b"\r\nhello\r\n--b--\r\n"
    )
    row = quarantined(core, raw)
    assert row.error == "limit: MIME part 1 has 1,001 header fields (limit 1,000)"


TEXT = b"Content-Type: text/plain\r\n\r\ndeep inside\r\n"


def nested(depth: int, leaf: bytes = TEXT) -> bytes:
    """A mail whose ``leaf`` part sits ``depth`` multiparts deep."""
    opening = b"".join(
        b'Content-Type: multipart/mixed; boundary="n%d"\r\n\r\n--n%d\r\n' % (i, i)
        for i in range(depth)
    )
    closing = b"".join(b"\r\n--n%d--\r\n" % i for i in reversed(range(depth)))
    return HEAD + opening + leaf + closing


def test_parts_nested_up_to_the_limit_are_read() -> None:
    mail = parse(nested(limits.MAX_DEPTH))
    assert (mail.text, mail.attachments, mail.limit_notes) == ("deep inside\n", (), ())


def test_deeper_parts_are_kept_whole_as_an_attachment(core: Core) -> None:
    raw = nested(limits.MAX_DEPTH + 5)
    ticket = stored(core, raw)
    with Session(core.engine) as session:
        [kept] = session.exec(select(Attachment)).all()
    assert (ticket.requester, kept.filename, kept.content_type) == (
        "alice@customer.example",
        "parts.eml",
        "multipart/mixed",
    )
    assert kept.content is not None
    inner = message_from_bytes(kept.content, policy=policy.default)
    assert [p.get_content() for p in inner.walk() if not p.is_multipart()] == ["deep inside\r\n"]
    assert parse(raw).limit_notes == (
        "MIME nesting deeper than 40 levels: the deeper parts are kept whole as 'parts.eml'",
    )


def test_hundreds_of_levels_are_still_kept_whole(core: Core) -> None:
    """Past what the generator's recursion writes, the parts are kept as they were read."""
    leaf = b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    raw = nested(300, leaf + base64.encodebytes(b"deep inside\r\n"))
    stored(core, raw)
    [kept] = parse(raw).attachments  # the default cap: the fixture's is 1,000 bytes
    assert kept.content is not None
    inner = message_from_bytes(kept.content, policy=policy.default)
    assert [p.get_content() for p in inner.walk() if not p.is_multipart()] == ["deep inside\r\n"]


def test_nesting_the_parser_cannot_read_is_quarantined(core: Core) -> None:
    row = quarantined(core, nested(2000))
    assert row.error == f"limit: {limits.TOO_DEEP}"


def test_an_attachment_over_the_cap_keeps_its_name_and_size(core: Core) -> None:
    data = bytes(range(256)) * 8  # 2,048 bytes; the cap is 1,000
    raw = (
        HEAD + b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
        b"--b\r\nContent-Type: application/octet-stream\r\n"
        b'Content-Disposition: attachment; filename="big.bin"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(data) + b"--b--\r\n"
    )
    stored(core, raw)
    with Session(core.engine) as session:
        [kept] = session.exec(select(Attachment)).all()
    assert (kept.filename, kept.size, kept.content) == ("big.bin", 2048, None)
    assert parse(raw, max_attachment_size=1000).limit_notes == (
        "attachment 'big.bin' is 2,048 bytes, over tickets.max_attachment_size (1,000): "
        "its name and size are kept, not its content",
    )


@pytest.mark.parametrize(
    ("sender", "reason"),
    [
        (b"", "sender: no From header"),
        (b"From: Customer\r\n", "sender: no valid address in From 'Customer'"),
        (
            b"From: a@customer.example, b@customer.example\r\n",
            "sender: From names 2 mailboxes (a@customer.example, b@customer.example): the requester is ambiguous",
        ),
    ],
)
def test_a_mail_without_one_valid_sender_is_quarantined(
    core: Core, sender: bytes, reason: str
) -> None:
    raw = (
        sender + b"To: support@example.org\r\nSubject: help\r\nMessage-ID: <s@x.example>\r\n\r\nhi"
    )
    assert quarantined(core, raw).error == reason


def test_a_bounce_from_mailer_daemon_without_a_domain_is_not_quarantined(core: Core) -> None:
    raw = (
        b"From: Mail Delivery Subsystem <MAILER-DAEMON>\r\nTo: support@example.org\r\n"
        b"Subject: Returned mail\r\nMessage-ID: <b@mx.example>\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="r"\r\n\r\n'
        b"--r\r\nContent-Type: text/plain\r\n\r\nundeliverable\r\n"
        b"--r\r\nContent-Type: message/delivery-status\r\n\r\n"
        b"Reporting-MTA: dns; mx.example\r\n\r\n"
        b"Final-Recipient: rfc822; gone@customer.example\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        b"--r--\r\n"
    )
    assert core.intake.submit(raw, "smtp").outcome in ("ignored", "stored")
    assert [row.state for row in inbound(core)] in (["ignored"], ["processed"])


def test_the_quarantine_row_and_the_log_line_name_the_message_id(
    core: Core, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="mailticket.intake"):
        row = quarantined(core, with_fields(limits.MAX_HEADER_FIELDS + 1))
    assert row.message_id == "<limit@customer.example>"
    assert any(
        r.getMessage().startswith("<limit@customer.example> quarantined: limit: ")
        for r in caplog.records
    )


def test_rejections_name_the_mail_across_the_parser_process(core: Core) -> None:
    assert core.parser is not None
    failed = core.parser.submit(with_fields(limits.MAX_HEADER_FIELDS + 1)).exception(30)
    assert isinstance(failed, LimitExceeded)
    assert failed.message_id == "<limit@customer.example>"


@pytest.mark.parametrize("kind", [MailRejected, ParseError, LimitExceeded, SenderRejected])
def test_rejections_keep_their_message_id_when_pickled(kind: type[MailRejected]) -> None:
    copy = pickle.loads(pickle.dumps(kind("why", "<m@x.example>")))
    assert (type(copy), str(copy), copy.message_id) == (kind, "why", "<m@x.example>")
