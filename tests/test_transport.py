"""Transports against a real maildir on disk and a real aiosmtpd server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from email.parser import Parser
from email.policy import SMTPUTF8
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP as Server
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from mailticket.outbound.notices import Envelope as NoticeEnvelope
from mailticket.outbound.notices import Rendered, compose
from mailticket.outbound.transport import (
    Delivery,
    MaildirTransport,
    Outcome,
    SmtpTransport,
    build_transport,
)
from mailticket.settings import OutboundSettings

SENDER = "support@example.org"
ALICE, BOB = "alice@example.com", "bob@example.com"
MESSAGE = (
    b"From: Support <support@example.org>\r\n"
    b"To: alice@example.com\r\n"
    b"Subject: [MT-7] Printer on fire\r\n"
    b"Message-ID: <mt-7-1@example.org>\r\n"
    b"\r\n"
    b"Hello Alice,\r\n"
    b".a line starting with a dot survives dot-stuffing\r\n"
    b".\r\n"
)
SHORT = 0.5  # client timeout for the cases that must time out


# --- maildir ---------------------------------------------------------------------------


def maildir_deliver(root: Path, key: str, message: bytes = MESSAGE) -> Delivery:
    transport = MaildirTransport(root)
    return asyncio.run(
        transport.deliver(key=key, sender=SENDER, recipients=[ALICE], message=message)
    )


def test_maildir_writes_one_file_with_identical_bytes(tmp_path: Path) -> None:
    delivery = maildir_deliver(tmp_path / "outbox", "42")

    assert delivery.outcome is Outcome.SENT
    files = list((tmp_path / "outbox" / "new").iterdir())
    assert [f.read_bytes() for f in files] == [MESSAGE]
    assert list((tmp_path / "outbox" / "tmp").iterdir()) == []
    assert (tmp_path / "outbox" / "cur").is_dir()


def test_maildir_same_key_twice_leaves_one_file(tmp_path: Path) -> None:
    maildir_deliver(tmp_path, "42")
    again = maildir_deliver(tmp_path, "42", b"Subject: a different rendering\r\n\r\n")

    assert again.outcome is Outcome.SENT
    assert "already delivered" in again.detail
    assert [f.read_bytes() for f in (tmp_path / "new").iterdir()] == [MESSAGE]


def test_maildir_mail_moved_to_cur_by_a_reader_is_not_delivered_again(tmp_path: Path) -> None:
    maildir_deliver(tmp_path, "42")
    (delivered,) = (tmp_path / "new").iterdir()
    delivered.rename(tmp_path / "cur" / f"{delivered.name}:2,S")

    assert maildir_deliver(tmp_path, "42").outcome is Outcome.SENT
    assert list((tmp_path / "new").iterdir()) == []


def test_maildir_keys_become_distinct_safe_names(tmp_path: Path) -> None:
    keys = ["../escape", "a/b", "a_2fb", "a:b", "工单"]
    for key in keys:
        assert maildir_deliver(tmp_path / "box", key).outcome is Outcome.SENT

    names = [f.name for f in (tmp_path / "box" / "new").iterdir()]
    assert len(names) == len(keys)
    assert all(":" not in n and "/" not in n and n.isascii() for n in names)
    assert list(tmp_path.iterdir()) == [tmp_path / "box"]


def test_maildir_that_cannot_be_created_is_temporary(tmp_path: Path) -> None:
    in_the_way = tmp_path / "outbox"
    in_the_way.write_text("not a directory")

    delivery = maildir_deliver(in_the_way, "42")

    assert delivery.outcome is Outcome.TEMPORARY
    assert str(in_the_way) in delivery.detail


# --- SMTP: a real server with scripted handlers ----------------------------------------


class Recorder:
    """Accepts everything and remembers what arrived, and how."""

    def __init__(self) -> None:
        self.senders: list[str] = []
        self.received: list[Envelope] = []
        self.over_tls: list[bool] = []
        self.authenticated: list[bool] = []

    async def handle_MAIL(
        self, server: Server, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        self.senders.append(address)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: Server, session: Session, envelope: Envelope) -> str:
        self.received.append(envelope)
        self.over_tls.append(session.ssl is not None)
        self.authenticated.append(bool(session.authenticated))
        return "250 2.0.0 Ok: queued as 42"


class RefuseRecipients(Recorder):
    def __init__(self, replies: dict[str, str]) -> None:
        super().__init__()
        self.replies = replies

    async def handle_RCPT(
        self, server: Server, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.replies:
            return self.replies[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"


class ReplyToMail(Recorder):
    def __init__(self, reply: str) -> None:
        super().__init__()
        self.reply = reply

    async def handle_MAIL(
        self, server: Server, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        return self.reply


class ReplyToData(Recorder):
    def __init__(self, reply: str) -> None:
        super().__init__()
        self.reply = reply

    async def handle_DATA(self, server: Server, session: Session, envelope: Envelope) -> str:
        await super().handle_DATA(server, session, envelope)
        return self.reply


class RefuseEhlo(Recorder):
    async def handle_EHLO(
        self, server: Server, session: Session, envelope: Envelope, name: str, lines: list[str]
    ) -> list[str]:
        return ["554 5.7.1 go away"]


class StallAfterPayload(Recorder):
    async def handle_DATA(self, server: Server, session: Session, envelope: Envelope) -> str:
        await super().handle_DATA(server, session, envelope)
        await asyncio.sleep(10 * SHORT)  # cancelled when the client hangs up
        return "250 too late"


class DropAfterPayload(Recorder):
    async def handle_DATA(self, server: Server, session: Session, envelope: Envelope) -> str:
        await super().handle_DATA(server, session, envelope)
        assert server.transport is not None
        server.transport.close()
        await asyncio.sleep(10 * SHORT)  # cancelled by connection_lost
        return "250 never sent"


class StallAtDataCommand(Server):
    async def smtp_DATA(self, arg: str) -> None:
        await asyncio.sleep(10 * SHORT)


class DropAtDataCommand(Server):
    async def smtp_DATA(self, arg: str) -> None:
        assert self.transport is not None
        self.transport.close()


@asynccontextmanager
async def smtp_server(
    handler: Recorder, server_class: type[Server] = Server, **options: Any
) -> AsyncIterator[int]:
    """A real aiosmtpd server on an ephemeral port; yields the port."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: server_class(handler, hostname="localhost", loop=loop, **options), "127.0.0.1", 0
    )
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()
        await asyncio.sleep(0.01)  # let the server side see the disconnect and clean up


def send(
    handler: Recorder,
    *,
    recipients: Sequence[str] = (ALICE,),
    message: bytes = MESSAGE,
    server_class: type[Server] = Server,
    server_options: dict[str, Any] | None = None,
    sender: str = SENDER,
    timeout: float = 5.0,
    starttls: bool = False,
    username: str | None = None,
    password: str | None = None,
    tls_context: ssl.SSLContext | None = None,
) -> Delivery:
    """Deliver one mail through SmtpTransport to a fresh server running ``handler``."""

    async def scenario() -> Delivery:
        async with smtp_server(handler, server_class, **(server_options or {})) as port:
            transport = SmtpTransport(
                host="127.0.0.1",
                port=port,
                starttls=starttls,
                username=username,
                password=password,
                timeout=timeout,
                tls_context=tls_context,
            )
            return await transport.deliver(
                key="42", sender=sender, recipients=recipients, message=message
            )

    return asyncio.run(scenario())


def test_smtp_accepted_mail_arrives_byte_for_byte() -> None:
    handler = Recorder()

    delivery = send(handler, recipients=[ALICE, BOB])

    assert delivery == Delivery(Outcome.SENT, "250 2.0.0 Ok: queued as 42")
    (envelope,) = handler.received
    assert envelope.mail_from == SENDER
    assert envelope.rcpt_tos == [ALICE, BOB]
    assert envelope.original_content == MESSAGE


def test_smtp_eight_bit_body_is_declared() -> None:
    handler = Recorder()
    message = MESSAGE.replace(b"Hello", "Grüß dich".encode())

    assert send(handler, message=message).outcome is Outcome.SENT
    assert handler.received[0].mail_options == ["BODY=8BITMIME"]
    assert handler.received[0].original_content == message


def test_smtp_non_ascii_address_uses_smtputf8_when_offered() -> None:
    handler = Recorder()

    delivery = send(
        handler, recipients=["jörg@example.com"], server_options={"enable_SMTPUTF8": True}
    )

    assert delivery.outcome is Outcome.SENT
    assert handler.received[0].rcpt_tos == ["jörg@example.com"]
    assert "SMTPUTF8" in handler.received[0].mail_options


def test_smtp_non_ascii_address_without_smtputf8_is_permanent() -> None:
    handler = Recorder()

    delivery = send(handler, recipients=["jörg@example.com"])

    assert delivery == Delivery(
        Outcome.PERMANENT,
        "all recipients refused: jörg@example.com: 553 recipient needs SMTPUTF8; the relay"
        " does not offer it",
        rejected=("jörg@example.com",),
    )
    assert handler.received == []


def test_smtp_without_smtputf8_the_other_recipients_still_get_the_mail() -> None:
    handler = Recorder()

    delivery = send(handler, recipients=["jörg@example.com", ALICE])

    assert delivery.outcome is Outcome.SENT
    assert delivery.rejected == ("jörg@example.com",)
    assert delivery.detail.endswith(
        "; refused jörg@example.com: 553 recipient needs SMTPUTF8; the relay does not offer it"
    )
    assert handler.received[0].rcpt_tos == [ALICE]
    assert "SMTPUTF8" not in handler.received[0].mail_options


def test_smtp_quoted_local_part_is_a_recipient() -> None:
    handler = Recorder()
    quoted = '"system administrator"@example.com'

    assert send(handler, recipients=[quoted]).outcome is Outcome.SENT
    assert handler.received[0].rcpt_tos == [quoted]


def _answer_to(address: str) -> bytes:
    """An answer as notices composes it, to ``address``."""
    rendered = Rendered("[MT-7] Reçu", "Bonjour José,\nnous avons reçu votre demande.\n", None)
    envelope = NoticeEnvelope(
        sender=SENDER,
        to=address,
        cc=(),
        message_id="<MT-7.abc@example.org>",
        in_reply_to=None,
        references=(),
        auto_submitted="auto-replied",
        date=datetime(2026, 11, 2, 9, 0, tzinfo=UTC),
    )
    return compose(rendered, envelope)


def test_an_answer_to_a_utf8_address_goes_out_with_smtputf8_byte_for_byte() -> None:
    handler = Recorder()
    message = _answer_to("José <josé@example.com>")

    delivery = send(
        handler,
        recipients=["josé@example.com"],
        message=message,
        server_options={"enable_SMTPUTF8": True},
    )

    assert delivery.outcome is Outcome.SENT
    (received,) = handler.received
    assert sorted(received.mail_options) == ["BODY=8BITMIME", "SMTPUTF8"]
    assert received.original_content == message
    header = Parser(policy=SMTPUTF8).parsestr(message.decode())["To"]  # RFC 6532: UTF-8
    assert [(a.display_name, a.addr_spec) for a in header.addresses] == [
        ("José", "josé@example.com")
    ]
    assert b"\r\nTo: =?utf-8?b?Sm9zw6k=?= <jos\xc3\xa9@example.com>\r\n" in message


def test_maildir_writes_an_answer_to_a_utf8_address(tmp_path: Path) -> None:
    message = _answer_to("josé@example.com")

    assert maildir_deliver(tmp_path, "42", message).outcome is Outcome.SENT
    assert [f.read_bytes() for f in (tmp_path / "new").iterdir()] == [message]
    assert "\r\nTo: josé@example.com\r\n".encode() in message


def test_smtp_sender_that_cannot_be_put_on_a_command_line_is_permanent() -> None:
    handler = Recorder()

    delivery = send(handler, sender="support desk@example.org")

    assert delivery.outcome is Outcome.PERMANENT
    assert delivery.detail.startswith("invalid address:")
    assert handler.senders == []


def test_smtp_session_refused_at_ehlo_is_temporary() -> None:
    delivery = send(RefuseEhlo())

    assert delivery == Delivery(Outcome.TEMPORARY, "554 5.7.1 go away")


@pytest.mark.parametrize(
    ("reply", "outcome"),
    [
        ("451 4.3.0 try again later", Outcome.TEMPORARY),
        ("552 5.3.4 message too big", Outcome.PERMANENT),
        ("554 5.7.1 spam", Outcome.PERMANENT),
    ],
)
def test_smtp_reply_to_the_payload(reply: str, outcome: Outcome) -> None:
    delivery = send(ReplyToData(reply))

    assert delivery == Delivery(outcome, reply)


@pytest.mark.parametrize(
    ("reply", "outcome"),
    [
        ("550 5.7.1 sender rejected", Outcome.PERMANENT),
        ("451 4.7.1 greylisted", Outcome.TEMPORARY),
        ("530 5.7.0 authentication required", Outcome.TEMPORARY),  # configuration, not mail
    ],
)
def test_smtp_reply_to_mail_from(reply: str, outcome: Outcome) -> None:
    handler = ReplyToMail(reply)

    assert send(handler) == Delivery(outcome, reply)
    assert handler.received == []


@pytest.mark.parametrize(
    ("replies", "outcome"),
    [
        ({ALICE: "550 5.1.1 user unknown", BOB: "550 5.1.1 user unknown"}, Outcome.PERMANENT),
        ({ALICE: "450 4.2.1 mailbox busy", BOB: "450 4.2.1 mailbox busy"}, Outcome.TEMPORARY),
        ({ALICE: "550 5.1.1 user unknown", BOB: "450 4.2.1 mailbox busy"}, Outcome.TEMPORARY),
    ],
)
def test_smtp_all_recipients_refused(replies: dict[str, str], outcome: Outcome) -> None:
    handler = RefuseRecipients(replies)

    delivery = send(handler, recipients=[ALICE, BOB])

    assert delivery.outcome is outcome
    assert delivery.rejected == (ALICE, BOB)
    assert delivery.detail == (
        f"all recipients refused: {ALICE}: {replies[ALICE]}; {BOB}: {replies[BOB]}"
    )
    assert handler.received == []


def test_smtp_one_recipient_refused_is_sent_to_the_other() -> None:
    handler = RefuseRecipients({BOB: "550 5.1.1 user unknown"})

    delivery = send(handler, recipients=[ALICE, BOB])

    assert delivery.outcome is Outcome.SENT
    assert delivery.rejected == (BOB,)
    assert f"refused {BOB}: 550 5.1.1 user unknown" in delivery.detail
    assert handler.received[0].rcpt_tos == [ALICE]


def test_smtp_connection_refused_is_temporary() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again below: nothing listens there

    transport = SmtpTransport(
        host="127.0.0.1", port=port, starttls=False, username=None, password=None, timeout=SHORT
    )
    delivery = asyncio.run(
        transport.deliver(key="42", sender=SENDER, recipients=[ALICE], message=MESSAGE)
    )

    assert delivery.outcome is Outcome.TEMPORARY
    assert "before the session was ready" in delivery.detail


@pytest.mark.parametrize(
    ("server_class", "handler_class", "outcome"),
    [
        (StallAtDataCommand, Recorder, Outcome.TEMPORARY),
        (DropAtDataCommand, Recorder, Outcome.TEMPORARY),
        (Server, StallAfterPayload, Outcome.UNCERTAIN),
        (Server, DropAfterPayload, Outcome.UNCERTAIN),
    ],
    ids=["timeout-before-payload", "drop-before-payload", "timeout-after", "drop-after"],
)
def test_smtp_lost_connection_around_data(
    server_class: type[Server], handler_class: type[Recorder], outcome: Outcome
) -> None:
    handler = handler_class()

    delivery = send(handler, server_class=server_class, timeout=SHORT)

    assert delivery.outcome is outcome
    payload_left = outcome is Outcome.UNCERTAIN
    assert ("may have accepted it" in delivery.detail) is payload_left
    assert len(handler.received) == int(payload_left)


# --- SMTP: STARTTLS and AUTH -----------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for 127.0.0.1."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


def check_login(
    server: Server, session: Session, envelope: Envelope, mechanism: str, data: object
) -> AuthResult:
    good = isinstance(data, LoginPassword) and (data.login, data.password) == (b"agent", b"s3cret")
    return AuthResult(success=good, handled=False)


def test_starttls_and_login_deliver_over_tls(certificate: tuple[Path, Path]) -> None:
    handler = Recorder()
    options = {
        "tls_context": server_tls(certificate),
        "require_starttls": True,
        "authenticator": check_login,
    }

    delivery = send(
        handler,
        server_options=options,
        starttls=True,
        username="agent",
        password="s3cret",
        tls_context=ssl.create_default_context(cafile=str(certificate[0])),
    )

    assert delivery.outcome is Outcome.SENT
    assert handler.over_tls == [True]
    assert handler.authenticated == [True]
    assert handler.received[0].original_content == MESSAGE


def test_starttls_required_but_not_offered_sends_nothing() -> None:
    handler = Recorder()

    delivery = send(handler, starttls=True)

    assert delivery.outcome is Outcome.TEMPORARY
    assert "does not offer STARTTLS" in delivery.detail
    assert handler.senders == []
    assert handler.received == []


def test_starttls_with_an_untrusted_certificate_sends_nothing(
    certificate: tuple[Path, Path],
) -> None:
    handler = Recorder()

    delivery = send(handler, server_options={"tls_context": server_tls(certificate)}, starttls=True)

    assert delivery.outcome is Outcome.TEMPORARY
    assert "STARTTLS" in delivery.detail
    assert "certificate verify failed" in delivery.detail
    assert handler.senders == []


def test_login_without_tls_succeeds_when_the_relay_allows_it() -> None:
    handler = Recorder()
    options = {"authenticator": check_login, "auth_require_tls": False}

    delivery = send(handler, server_options=options, username="agent", password="s3cret")

    assert delivery.outcome is Outcome.SENT
    assert handler.authenticated == [True]


def test_wrong_password_is_temporary() -> None:
    handler = Recorder()
    options = {"authenticator": check_login, "auth_require_tls": False}

    delivery = send(handler, server_options=options, username="agent", password="wrong")

    assert delivery.outcome is Outcome.TEMPORARY
    assert delivery.detail.startswith("authentication failed: 535")
    assert handler.senders == []


# --- composition -----------------------------------------------------------------------


def test_build_transport_follows_the_settings(tmp_path: Path) -> None:
    maildir = OutboundSettings(maildir=tmp_path)
    smtp = OutboundSettings(transport="smtp", host="relay", timeout=timedelta(seconds=3))

    assert isinstance(build_transport(maildir), MaildirTransport)
    assert isinstance(build_transport(smtp), SmtpTransport)
