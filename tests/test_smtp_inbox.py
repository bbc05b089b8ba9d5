"""The SMTP listener over a real socket with a real client (smtplib)."""

from __future__ import annotations

import smtplib
import sqlite3
import time
from pathlib import Path

import pytest
from sqlmodel import Session, select

from mailticket.core import build_core
from mailticket.models import Inbound, Ticket
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
