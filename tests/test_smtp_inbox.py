"""The SMTP listener over a real socket with a real client (smtplib)."""

from __future__ import annotations

import hashlib
import smtplib
import sqlite3
import time
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from mailticket.runtime.core import Core, build_core
from mailticket.store.models import Inbound, Outbox, Ticket
from tests.conftest import Clock, build_mail, make_settings
from tests.daemon_thread import DaemonThread


def _client(port: int) -> smtplib.SMTP:
    return smtplib.SMTP("127.0.0.1", port, timeout=10)


def test_mail_is_committed_before_250(tmp_path: Path, db_url: str, clock: Clock) -> None:
    core = build_core(make_settings(tmp_path, db_url), clock=clock)
    with DaemonThread(core) as daemon, _client(daemon.ports["smtp"]) as client:
        client.sendmail("alice@customer.example", ["support@example.org"], build_mail())
        # 250 has been received: the mail must already be in the database
        with Session(core.engine) as session:
            assert len(session.exec(select(Inbound)).all()) == 1
            assert len(session.exec(select(Ticket)).all()) == 1
    assert daemon.exit_code == 0
    core.engine.dispose()


def test_acknowledgement_reaches_the_outbox_maildir(
    tmp_path: Path, db_url: str, clock: Clock
) -> None:
    core = build_core(make_settings(tmp_path, db_url), clock=clock)
    with DaemonThread(core) as daemon, _client(daemon.ports["smtp"]) as client:
        client.sendmail("alice@customer.example", ["support@example.org"], build_mail())
        deadline = time.monotonic() + 10
        while (
            time.monotonic() < deadline and len(list((tmp_path / "outbox" / "new").glob("*"))) < 3
        ):
            time.sleep(0.05)
    files = sorted((tmp_path / "outbox" / "new").glob("*"))
    assert len(files) == 3
    assert any(b"Subject: [MT-1] Cannot log in" in f.read_bytes() for f in files)
    core.engine.dispose()


def test_unknown_recipient_gets_550(tmp_path: Path, clock: Clock) -> None:
    settings = make_settings(
        tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", smtp={"accept": ["support@example.org"]}
    )
    core = build_core(settings, clock=clock)
    with DaemonThread(core) as daemon, _client(daemon.ports["smtp"]) as client:
        client.ehlo()
        client.mail("alice@customer.example")
        code, text = client.rcpt("nobody@example.org")
        assert code == 550 and text.startswith(b"5.1.1")
        assert client.rcpt("Support@Example.org")[0] == 250
    core.engine.dispose()


def test_oversize_mail_gets_552_and_size_is_announced(tmp_path: Path, clock: Clock) -> None:
    settings = make_settings(
        tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", smtp={"max_message_size": 20_000}
    )
    core = build_core(settings, clock=clock)
    with DaemonThread(core) as daemon, _client(daemon.ports["smtp"]) as client:
        client.ehlo()
        assert client.esmtp_features["size"] == "20000"
        big = build_mail(body="x" * 70 + "\n" * 1 + ("y" * 70 + "\n") * 400)
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:  # SIZE= declared at MAIL FROM
            client.sendmail("alice@customer.example", ["support@example.org"], big)
        assert (refused.value.smtp_code, refused.value.smtp_error[:5]) == (552, b"5.3.4")
        client.rset()
        client.mail("alice@customer.example")  # no SIZE=: the limit bites during DATA
        client.rcpt("support@example.org")
        code, text = client.data(big)
        assert (code, text[:5]) == (552, b"5.3.4")
    with Session(core.engine) as session:
        assert session.exec(select(Inbound)).all() == []
    core.engine.dispose()


def test_locked_database_answers_451_and_loses_nothing(tmp_path: Path, clock: Clock) -> None:
    db = tmp_path / "db.sqlite"
    settings = make_settings(tmp_path, f"sqlite:///{db}", database={"busy_timeout": "0.3s"})
    core = build_core(settings, clock=clock)
    with DaemonThread(core) as daemon:
        locker = sqlite3.connect(db, isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")
        with _client(daemon.ports["smtp"]) as client:
            with pytest.raises(smtplib.SMTPDataError) as caught:
                client.sendmail("alice@customer.example", ["support@example.org"], build_mail())
            assert caught.value.smtp_code == 451
        locker.execute("ROLLBACK")
        locker.close()
        with _client(daemon.ports["smtp"]) as client:  # the MTA retries later
            client.sendmail("alice@customer.example", ["support@example.org"], build_mail())
    with Session(core.engine) as session:
        assert len(session.exec(select(Ticket)).all()) == 1
    core.engine.dispose()


def test_many_connections_each_mail_exactly_once(tmp_path: Path, db_url: str, clock: Clock) -> None:
    from concurrent.futures import ThreadPoolExecutor

    core = build_core(make_settings(tmp_path, db_url), clock=clock)

    def send(port: int, worker: int) -> int:
        with _client(port) as client:
            for n in range(10):
                mail = build_mail(
                    subject=f"w{worker} n{n}", message_id=f"<w{worker}.n{n}@c.example>"
                )
                client.sendmail("alice@customer.example", ["support@example.org"], mail)
        return 10

    with DaemonThread(core) as daemon, ThreadPoolExecutor(8) as pool:
        sent = sum(pool.map(lambda w: send(daemon.ports["smtp"], w), range(8)))
    with Session(core.engine) as session:
        assert len(session.exec(select(Inbound)).all()) == sent == 80
    core.engine.dispose()


def test_starttls_when_a_certificate_is_configured(tmp_path: Path, clock: Clock) -> None:
    import ssl
    import subprocess

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    settings = make_settings(
        tmp_path,
        f"sqlite:///{tmp_path / 'db.sqlite'}",
        smtp={"tls_cert": str(cert), "tls_key": str(key)},
    )
    core = build_core(settings, clock=clock)
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False
    with DaemonThread(core) as daemon, _client(daemon.ports["smtp"]) as client:
        client.ehlo()
        assert client.has_extn("starttls")
        client.starttls(context=context)
        client.ehlo()
        client.sendmail("alice@customer.example", ["support@example.org"], build_mail())
    with Session(core.engine) as session:
        assert len(session.exec(select(Ticket)).all()) == 1
    core.engine.dispose()


# --- what an MTA takes: long lines, the envelope, 8BITMIME and SMTPUTF8 ----------------


def _mail(sender: bytes, body: bytes, *, subject: bytes = b"Question", html: bool = False) -> bytes:
    """A mail written by hand (the email package folds or encodes what these tests need raw)."""
    kind = b"html" if html else b"plain"
    return (
        b"From: " + sender + b"\r\nTo: support@example.org\r\nSubject: " + subject + b"\r\n"
        b"Date: Mon, 02 Nov 2026 09:00:00 +0000\r\n"
        b"Message-ID: <" + hashlib.sha256(sender + body).hexdigest().encode() + b"@c.example>\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: text/" + kind + b"; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n" + body + b"\r\n"
    )


def _stored(core: Core) -> list[Inbound]:
    with Session(core.engine) as session:
        return list(session.exec(select(Inbound).order_by(col(Inbound.id))).all())


def _acks(core: Core) -> list[str]:
    with Session(core.engine) as session:
        return list(session.exec(select(Outbox.recipient).where(Outbox.template == "ack")).all())


def _html_line(size: int) -> bytes:
    """HTML on one line of ``size`` bytes, with 8-bit text in it."""
    head, paragraph, tail = b"<html><body>", "<p>Grüße, 你好</p>".encode(), b"</body></html>"
    room = size - len(head) - len(tail)
    filled = paragraph * (room // len(paragraph))
    return head + filled + b" " * (room - len(filled)) + tail


@pytest.mark.parametrize(
    "line",
    [_html_line(5000), b"." + b"x" * 100_000],  # HTML on one line; 100 KB, dot-stuffed
    ids=["5000-byte-html", "100kb"],
)
def test_long_lines_are_taken_and_stored_byte_exact(
    tmp_path: Path, db_url: str, clock: Clock, line: bytes
) -> None:
    core = build_core(make_settings(tmp_path, db_url), clock=clock)
    mail = _mail(b"Alice <alice@customer.example>", line, html=line.startswith(b"<"))
    with DaemonThread(core) as daemon, _client(daemon.ports["smtp"]) as client:
        client.sendmail(
            "alice@customer.example", ["support@example.org"], mail, ["BODY=8BITMIME"]
        )  # raises unless 250
    (stored,) = _stored(core)
    envelope = b"Return-Path: <alice@customer.example>\r\nDelivered-To: support@example.org\r\n"
    assert stored.raw == envelope + mail
    assert stored.state == "processed" and stored.ticket_number == 1
    core.engine.dispose()


def test_a_line_longer_than_the_size_limit_gets_552(tmp_path: Path, clock: Clock) -> None:
    settings = make_settings(
        tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", smtp={"max_message_size": 20_000}
    )
    core = build_core(settings, clock=clock)
    with DaemonThread(core) as daemon, _client(daemon.ports["smtp"]) as client:
        client.ehlo()
        client.mail("alice@customer.example")
        client.rcpt("support@example.org")
        code, text = client.data(_mail(b"alice@customer.example", b"y" * 30_000))
        assert (code, text[:5]) == (552, b"5.3.4")  # too big, not a permanent 500
        client.rset()
        client.sendmail("alice@customer.example", ["support@example.org"], build_mail())
    assert len(_stored(core)) == 1
    core.engine.dispose()


def test_the_envelope_is_written_on_top_and_the_null_sender_is_automatic(
    tmp_path: Path, db_url: str, clock: Clock
) -> None:
    """A plain-text failure notice from a mail system sent as MAIL FROM:<> gets no answer;
    a Return-Path the sender wrote into the mail is below the listener's and counts not."""
    core = build_core(make_settings(tmp_path, db_url), clock=clock)
    notice = _mail(b"Mail Gateway <gw@relay.example>", b"We could not pass on your message.")
    person = b"Return-Path: <>\r\n" + _mail(b"bob@customer.example", b"Hello, I need help.")
    with DaemonThread(core) as daemon, _client(daemon.ports["smtp"]) as client:
        client.sendmail("", ["support@example.org", "Support@Example.org"], notice)
        client.sendmail("bob@customer.example", ["support@example.org"], person)
    bounce, request = _stored(core)
    assert bounce.raw == (
        b"Return-Path: <>\r\nDelivered-To: support@example.org\r\n"
        b"Delivered-To: Support@Example.org\r\n" + notice
    )
    assert request.raw.startswith(b"Return-Path: <bob@customer.example>\r\nDelivered-To: ")
    assert _acks(core) == ["bob@customer.example"]
    core.engine.dispose()


def test_an_address_no_header_can_hold_is_refused_at_mail_and_rcpt(
    tmp_path: Path, clock: Clock
) -> None:
    """A tab inside a quoted local part is valid SMTP, but would break the header line."""
    core = build_core(make_settings(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}"), clock=clock)
    with DaemonThread(core) as daemon, _client(daemon.ports["smtp"]) as client:
        client.ehlo()
        assert client.docmd('MAIL FROM:<"a\tb"@customer.example>')[0] == 553
        assert client.docmd("MAIL FROM:<alice@customer.example>")[0] == 250
        assert client.docmd('RCPT TO:<"x\ty"@example.org>')[0] == 553
    assert _stored(core) == []
    core.engine.dispose()


def test_the_same_mail_by_smtp_and_from_the_mailbox_is_one_mail(
    tmp_path: Path, db_url: str, clock: Clock
) -> None:
    """The copy Dovecot wrote to the mailbox differs only in its trace headers."""
    core = build_core(make_settings(tmp_path, db_url), clock=clock)
    mail = build_mail(message_id="<once@customer.example>")
    with DaemonThread(core) as daemon, _client(daemon.ports["smtp"]) as client:
        client.sendmail("alice@customer.example", ["support@example.org"], mail)
    dovecot = (
        b"Return-Path: <alice@customer.example>\r\nDelivered-To: support@example.org\r\n"
        b"Received: from mx.example.org by imap.example.org with LMTP; Mon, 2 Nov 2026\r\n"
    )
    assert core.intake.submit(dovecot + mail, "imap").outcome == "duplicate"
    assert len(_stored(core)) == 1
    core.engine.dispose()


@pytest.mark.parametrize(
    ("envelope_sender", "header", "requester"),
    [
        ("josé@example.com", "José <josé@example.com>", "josé@example.com"),
        ('"System Administrator"@example.com', '"System Administrator"@example.com',
         '"system administrator"@example.com'),
    ],
    ids=["smtputf8", "quoted-local-part"],
)  # fmt: skip
def test_international_and_quoted_senders_are_requesters(
    tmp_path: Path, db_url: str, clock: Clock, envelope_sender: str, header: str, requester: str
) -> None:
    core = build_core(make_settings(tmp_path, db_url), clock=clock)
    mail = _mail(header.encode(), "Bonjour, ça ne marche pas.".encode())
    with DaemonThread(core) as daemon, _client(daemon.ports["smtp"]) as client:
        client.ehlo()
        assert client.has_extn("smtputf8") and client.has_extn("8bitmime")
        options = ["SMTPUTF8", "BODY=8BITMIME"] if not envelope_sender.isascii() else []
        client.sendmail(envelope_sender, ["support@example.org"], mail, options)
        deadline = time.monotonic() + 10
        while (
            time.monotonic() < deadline and len(list((tmp_path / "outbox" / "new").glob("*"))) < 3
        ):
            time.sleep(0.05)
    (stored,) = _stored(core)
    assert stored.state == "processed" and stored.ticket_number == 1  # never quarantined
    assert stored.raw.startswith(f"Return-Path: <{envelope_sender}>\r\n".encode())
    with Session(core.engine) as session:
        assert session.exec(select(Ticket.requester)).one() == requester
    assert _acks(core) == [requester]
    sent = [f.read_bytes() for f in (tmp_path / "outbox" / "new").iterdir()]
    assert sum(f"\r\nTo: {requester}\r\n".encode() in raw for raw in sent) == 1
    core.engine.dispose()
