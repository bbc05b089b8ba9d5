"""dsn.read_bounce: every common bounce form, read from fixtures and literal mails.

The fixtures in tests/mails/bounces/ are written for these tests after the forms real
MTAs send (qmail, Exim, Exchange, Gmail, Postfix, Sendmail, Domino); each returns our
acknowledgement ``<MT-1.fixture@example.org>`` to alice@customer.example.
"""

from __future__ import annotations

from collections.abc import Iterator
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from sqlmodel import Session, select

from mailticket.parse import mime_tree
from mailticket.parse.dsn import Bounce, read_bounce
from mailticket.runtime.core import Core, build_core
from mailticket.store.models import Event, Outbox, Ticket, Undeliverable
from tests.conftest import Clock, build_mail, make_settings

BOUNCES = Path(__file__).resolve().parent / "mails" / "bounces"
OURS = "<MT-1.fixture@example.org>"
ALICE = ("alice@customer.example",)


def bounce_of(raw: bytes) -> Bounce | None:
    """read_bounce as mail.parse calls it: with the mail's own type and report-type."""
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    content_type, params = mime_tree.content_type(msg, None)
    report = params.get("report-type")
    return read_bounce(msg, content_type, report.text.lower() if report else "")


def fixture(name: str) -> Bounce | None:
    return bounce_of((BOUNCES / name).read_bytes())


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("qmail.eml", Bounce(OURS, ALICE, "failed", "5.1.1")),
        ("exim.eml", Bounce(OURS, ALICE, "failed", "5.2.1")),
        ("exchange.eml", Bounce(OURS, ALICE, "failed", "5.1.10")),
        ("exchange2003.eml", Bounce(OURS, ALICE, "failed", "5.1.1")),  # bob did not fail
        ("gmail.eml", Bounce(OURS, ALICE, "failed", "5.1.1")),
        ("postfix.eml", Bounce(OURS, ALICE, "failed", "5.2.2")),
        ("sendmail.eml", Bounce(OURS, ALICE, "failed", "5.1.1")),
        ("domino.eml", Bounce(OURS, ALICE, "failed", "5.0.0")),
        # a gateway under an ordinary name: its subject says what it is
        ("gateway_returned_mail.eml", Bounce(OURS, ALICE, "failed", "5.1.1")),
        ("return_path_daemon.eml", Bounce(OURS, ALICE, "failed", "5.1.1")),  # MAILER-DAEMON's
        # words the tables do not know, from the null sender: Mailman's detectors read it
        ("scanner_rejected.eml", Bounce(OURS, ALICE, "failed", "5.0.0")),
    ],
)
def test_failure_notices_are_read(name: str, expected: Bounce) -> None:
    bounce = fixture(name)
    assert bounce == expected
    assert bounce.permanent


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("gmail_delayed.eml", Bounce(OURS, ALICE, "delayed", "4.0.0")),
        ("exim_delayed.eml", Bounce(None, ALICE, "delayed", "4.2.2")),  # names no Message-ID
        ("qmail_expired.eml", Bounce(OURS, ALICE, "failed", "4.4.7")),  # the queue gave up
        # Sendmail's warning, sent as "Mail Delivery Subsystem" from an ordinary address
        ("daemon_display_name.eml", Bounce(OURS, ALICE, "delayed", "4.4.7")),
    ],
)
def test_temporary_reports_do_not_block(name: str, expected: Bounce) -> None:
    bounce = fixture(name)
    assert bounce == expected
    assert not bounce.permanent


@pytest.mark.parametrize(
    "name",
    [
        "out_of_office.eml",
        "forwarded_bounce.eml",
        "read_receipt.eml",
        "lotus_auto.eml",
        "rt_autoreply.eml",
        "auto_reply_no_colon.eml",
        "list_server_notice.eml",
    ],
)
def test_other_mail_is_no_bounce(name: str) -> None:
    assert fixture(name) is None


@pytest.mark.parametrize(
    ("action", "status", "permanent"),
    [
        ("failed", "5.1.1", True),
        ("", "5.5.0", True),  # a report that names no action
        ("failed", "4.4.7", False),
        ("delayed", "4.4.1", False),
        ("delivered", "2.0.0", False),
        ("expired", "5.4.7", False),
    ],
)
def test_permanent(action: str, status: str, permanent: bool) -> None:
    assert Bounce(None, ALICE, action, status).permanent is permanent


def report(*blocks: str, returned: str = "") -> bytes:
    """An RFC 3464 report with the given per-recipient blocks."""
    fields = "\n\n".join(blocks)
    tail = f"--r\nContent-Type: text/rfc822-headers\n\n{returned}\n" if returned else ""
    return (
        "From: MAILER-DAEMON@mx.customer.example\nTo: support@example.org\n"
        "Subject: Delivery report\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="r"\n\n'
        "--r\nContent-Type: text/plain\n\nSee below.\n"
        f"--r\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx\n\n{fields}\n"
        f"{tail}--r--\n"
    ).encode()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (  # failed and delayed recipients in one report: only the failed one is reported
            report(
                "Final-Recipient: rfc822; slow@customer.example\nAction: delayed\nStatus: 4.4.1",
                "Final-Recipient: rfc822; alice@customer.example\nAction: failed\nStatus: 5.1.1",
                returned=f"Message-ID: {OURS}",
            ),
            Bounce(OURS, ALICE, "failed", "5.1.1"),
        ),
        (  # a source-routed recipient
            report(
                "Final-Recipient: rfc822; @relay.example:Alice@Customer.example\nAction: failed"
            ),
            Bounce(None, ALICE, "failed", "5.0.0"),
        ),
        (  # the address as we wrote it, not the one an alias or a forward led to
            report(
                "Final-Recipient: rfc822; alice.example@mailhost.customer.example\n"
                "Original-Recipient: rfc822;alice@customer.example\nAction: failed\nStatus: 5.1.1"
            ),
            Bounce(None, ALICE, "failed", "5.1.1"),
        ),
        (  # an Original-Recipient that holds no address
            report(
                "Original-Recipient: rfc822;alice\n"
                "Final-Recipient: rfc822; alice@customer.example\nAction: failed\nStatus: 5.1.1"
            ),
            Bounce(None, ALICE, "failed", "5.1.1"),
        ),
        (  # a status part with no recipient: the notice's text names it
            report("Action: failed\nStatus: 5.1.1").replace(
                b"See below.", b"<alice@customer.example>: User unknown"
            ),
            Bounce(None, ALICE, "failed", "5.1.1"),
        ),
    ],
)
def test_report_fields(raw: bytes, expected: Bounce) -> None:
    assert bounce_of(raw) == expected


def notice(headers: str, body: str) -> bytes:
    return f"{headers}\nTo: support@example.org\n\n{body}".encode()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (  # Verizon/James: the original is named only by In-Reply-To, the recipient by RCPT TO
            notice(
                f"From: post_master@vtext.example\nSubject: Re: hello\nIn-Reply-To: {OURS}",
                "Error: Invalid user address\n\n  RCPT TO: alice@customer.example\n"
                "  From: support@example.org\n",
            ),
            Bounce(OURS, ALICE, "failed", "5.0.0"),
        ),
        (  # a notice naming nobody: the returned mail had one recipient
            notice(
                "From: MAILER-DAEMON@mx.customer.example\nSubject: Undeliverable mail",
                "Your message could not be delivered.\n\n--- Original message follows.\n\n"
                "From: support@example.org\nTo: Alice <alice@customer.example>\n"
                f"Message-ID: {OURS}\n",
            ),
            Bounce(OURS, ALICE, "failed", "5.0.0"),
        ),
        (  # "please contact postmaster@..." names no recipient; the sender is never one
            notice(
                "From: MAILER-DAEMON <>\nSubject: Mail delivery failed",
                "Delivery to support@example.org's recipient alice@customer.example failed.\n"
                "Questions: postmaster@mx.customer.example\n",
            ),
            Bounce(None, ALICE, "failed", "5.0.0"),
        ),
    ],
)
def test_notice_fields(raw: bytes, expected: Bounce) -> None:
    assert bounce_of(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        # a person (no automatic sign) quoting a bounce's words
        notice("From: alice@customer.example\nSubject: Undelivered Mail", "Delivery has failed"),
        # a mail system writing something that is no failure notice
        notice("From: postmaster@customer.example\nSubject: Thanks", "We will fix the MX record."),
        # a mail system's subject from a person's address, naming no recipient, returning
        # nothing (the guard calls it automatic by its subject; it is no bounce)
        notice("From: alice@customer.example\nSubject: Undeliverable: parcel", "Resend it?"),
        # an autoresponder (RFC 3834) listing addresses the way a failure notice does
        notice(
            "From: alice@customer.example\nReturn-Path: <>\nAuto-Submitted: auto-replied\n"
            "Subject: Away",
            "I am away. Write to Ann, ann@customer.example, or Bob, bob@customer.example, instead.",
        ),
        # a null Return-Path below the delivering MTA's is the sender's, not ours to believe
        notice(
            "Return-Path: <alice@customer.example>\nReturn-Path: <>\n"
            "From: alice@customer.example\nSubject: Failed delivery",
            "Your courier could not deliver my order.",
        ),
        # an abuse report from a mail system is another report type
        notice(
            "From: MAILER-DAEMON@mx.customer.example\nSubject: Abuse report\n"
            "Content-Type: multipart/report; report-type=feedback-report; boundary=x",
            "--x\nContent-Type: text/plain\n\nUndeliverable spam\n--x--\n",
        ),
    ],
)
def test_no_bounce(raw: bytes) -> None:
    assert bounce_of(raw) is None


# Through the real intake (SQLite): a bounce about our acknowledgement.


@pytest.fixture
def core(tmp_path: Path, clock: Clock) -> Iterator[Core]:
    with build_core(
        make_settings(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}"), clock=clock
    ) as built:
        yield built


def _bounce_about_the_ack(core: Core, name: str) -> bytes:
    """A first mail from alice, and the fixture ``name`` returning its acknowledgement."""
    assert core.intake.submit(build_mail(), "smtp").ticket == 1
    with Session(core.engine) as session:
        sent = [o.message_id for o in session.exec(select(Outbox)).all() if o.template == "ack"]
    return (BOUNCES / name).read_bytes().replace(OURS.encode(), sent[0].encode())


def _state(core: Core) -> tuple[int, list[str], list[str], bool]:
    """Tickets, outbox templates, ticket 1's events, whether alice is blocked."""
    with Session(core.engine) as session:
        tickets = len(session.exec(select(Ticket)).all())
        outbox = [o.template for o in session.exec(select(Outbox)).all()]
        events = session.exec(select(Event).where(Event.ticket_number == 1)).all()
        blocked = session.get(Undeliverable, ALICE[0]) is not None
    return tickets, outbox, [f"{e.kind}: {e.detail}" for e in events], blocked


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("qmail.eml", "5.1.1"),
        ("exchange.eml", "5.1.10"),
        ("gateway_returned_mail.eml", "5.1.1"),
        ("scanner_rejected.eml", "5.0.0"),
    ],
)
def test_a_bounce_of_our_ack_is_recorded_and_blocks_the_requester(
    core: Core, name: str, status: str
) -> None:
    raw = _bounce_about_the_ack(core, name)
    before = _state(core)
    result = core.intake.submit(raw, "smtp")
    tickets, outbox, events, blocked = _state(core)
    assert (result.outcome, result.ticket) == ("stored", 1)
    assert (tickets, outbox) == (before[0], before[1])  # no new ticket, no answer
    assert f"delivery_failed: {ALICE[0]}: failed {status}" in events
    assert blocked
    core.intake.submit(build_mail(subject="Another question"), "smtp")
    assert _state(core)[1].count("ack") == 1  # no acknowledgement while blocked


def test_a_delayed_report_is_recorded_but_blocks_no_one(core: Core) -> None:
    raw = _bounce_about_the_ack(core, "gmail_delayed.eml")
    assert core.intake.submit(raw, "smtp").ticket == 1
    assert not _state(core)[3]
    core.intake.submit(build_mail(subject="Another question"), "smtp")
    assert _state(core)[1].count("ack") == 2
