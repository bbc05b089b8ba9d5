"""The last stage of the outbox: hand one rendered mail to a maildir or an SMTP relay.

A transport attempts once and classifies the result; the outbox owns retries and state.
What matters most is *when* an SMTP session failed: before the message was sent, a
retry is safe (TEMPORARY); after the payload went out but before the final reply, the
relay may already have accepted it (UNCERTAIN), so a blind retry could send it twice.
"""

from __future__ import annotations

import asyncio
import enum
import os
import re
import ssl
import tempfile
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import dkim
from aiosmtplib import (
    SMTP,
    SMTPAuthenticationError,
    SMTPDataError,
    SMTPException,
    SMTPRecipientRefused,
    SMTPResponseException,
    SMTPServerDisconnected,
    SMTPStatus,
)

from mailticket.errors import TemporaryFailure
from mailticket.outbound.dkim_sign import DkimSigner, build_signer
from mailticket.settings import OutboundSettings


class Outcome(enum.Enum):
    SENT = "sent"
    TEMPORARY = "temporary"  # 4xx, refused connection, DNS, timeout before the payload: retry
    PERMANENT = "permanent"  # 5xx to this message: do not retry, record on the ticket
    UNCERTAIN = "uncertain"  # lost after the payload was sent: the relay may have accepted it


@dataclass(frozen=True, slots=True)
class Delivery:
    outcome: Outcome
    detail: str  # one line for logs and the ticket
    rejected: tuple[str, ...] = ()  # recipients refused individually at RCPT


class Transport(Protocol):
    async def deliver(
        self, *, key: str, sender: str, recipients: Sequence[str], message: bytes
    ) -> Delivery: ...


def build_transport(settings: OutboundSettings) -> Transport:
    """The transport ``[outbound]`` asks for, DKIM-signing when configured.

    Raises ConfigError when the DKIM key cannot sign: better not to start than to send
    unsigned mail.
    """
    signer = build_signer(settings)
    transport: Transport
    if settings.transport == "smtp":
        transport = SmtpTransport(
            host=settings.host,
            port=settings.port,
            starttls=settings.starttls,
            username=settings.username,
            password=settings.password,
            timeout=settings.timeout.total_seconds(),
        )
    else:
        transport = MaildirTransport(settings.maildir)
    return transport if signer is None else SigningTransport(transport, signer)


class SigningTransport:
    """Puts a DKIM signature on each mail at delivery, then hands it to ``inner``.

    The signature is made per attempt (so a retry after a key rotation has the new key's)
    in a thread: an RSA-2048 signature in dkimpy costs about 12 ms of CPU.
    """

    def __init__(self, inner: Transport, signer: DkimSigner) -> None:
        self._inner, self._signer = inner, signer

    async def deliver(
        self, *, key: str, sender: str, recipients: Sequence[str], message: bytes
    ) -> Delivery:
        try:
            signature = await asyncio.to_thread(self._signer.signature, message)
        except dkim.DKIMException as exc:  # never sent unsigned; retrying cannot help
            return Delivery(Outcome.PERMANENT, f"cannot DKIM-sign: {_one_line(str(exc))}")
        signed = message if signature is None else signature + message
        delivery = await self._inner.deliver(
            key=key, sender=sender, recipients=recipients, message=signed
        )
        if signature is not None:
            return delivery
        note = f"not DKIM-signed: From is outside {self._signer.domain}"
        return replace(delivery, detail=f"{delivery.detail}; {note}")


# --- maildir -------------------------------------------------------------------------

_SAFE_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-")


class MaildirTransport:
    """Deliver into a maildir, idempotently: one file per outbox key, however often retried."""

    def __init__(self, path: Path) -> None:
        self._path = path

    async def deliver(
        self, *, key: str, sender: str, recipients: Sequence[str], message: bytes
    ) -> Delivery:
        """Store ``message`` byte for byte; a maildir has no envelope, its headers address it."""
        name = _file_name(key)
        try:
            fresh = await asyncio.to_thread(self._store, name, message)
        except OSError as exc:
            return Delivery(Outcome.TEMPORARY, f"maildir {self._path}: {exc}")
        verb = "delivered to" if fresh else "already delivered to"
        return Delivery(Outcome.SENT, f"{verb} {self._path / 'new' / name}")

    def _store(self, name: str, message: bytes) -> bool:
        """Write to tmp/, fsync, link into new/; False when ``name`` was already delivered."""
        tmp, new, cur = (self._path / sub for sub in ("tmp", "new", "cur"))
        for directory in (tmp, new, cur):
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if (new / name).exists() or (cur / name).exists() or any(cur.glob(f"{name}:*")):
            return False  # a mail reader may have moved it to cur/ and added flags
        fd, staged = tempfile.mkstemp(prefix=f"{name}.", dir=tmp)  # unique, mode 0o600
        try:
            _write_synced(fd, message)
            os.link(staged, new / name)  # unlike rename, never replaces an earlier delivery
        except FileExistsError:
            return False  # a concurrent attempt won the race; staged is removed below
        finally:
            os.unlink(staged)
        _sync_directory(new)
        return True


def _file_name(key: str) -> str:
    """A maildir-safe name for ``key``; escaping is injective, so keys never share a file."""
    if not key:
        raise ValueError("empty delivery key")
    safe = "".join(chr(b) if b in _SAFE_BYTES else f"_{b:02x}" for b in key.encode())
    return f"{safe}.mailticket"


def _write_synced(fd: int, data: bytes) -> None:
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _sync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- SMTP ----------------------------------------------------------------------------


class _Phase(enum.Enum):
    SESSION = "before the session was ready"  # connect, EHLO, STARTTLS, AUTH
    ENVELOPE = "before the message was sent"  # MAIL, RCPT, DATA command
    PAYLOAD = "after the message was sent; the relay may have accepted it"


@dataclass(slots=True)
class _Progress:
    phase: _Phase = _Phase.SESSION


# 5xx replies that mean "fix the configuration", not "this message is undeliverable".
_CONFIGURATION_CODES = frozenset({530, 535})
_LINE_ENDING = re.compile(rb"\r\n|\r|\n")
_LEADING_DOT = re.compile(rb"(?m)^\.")
_NEEDS_SMTPUTF8 = "recipient needs SMTPUTF8; the relay does not offer it"


class SmtpTransport:
    """Deliver through a relay; with ``starttls`` set, never in plain text."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        starttls: bool,
        username: str | None,
        password: str | None,
        timeout: float,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self._host, self._port, self._timeout = host, port, timeout
        self._starttls, self._username, self._password = starttls, username, password
        self._tls_context = tls_context or ssl.create_default_context()

    async def deliver(
        self, *, key: str, sender: str, recipients: Sequence[str], message: bytes
    ) -> Delivery:
        """One attempt; every library error is mapped to an Outcome here and nowhere else."""
        if not recipients:
            return Delivery(Outcome.PERMANENT, "no recipients")
        progress = _Progress()
        smtp = SMTP(
            hostname=self._host,
            port=self._port,
            timeout=self._timeout,
            start_tls=False,
            tls_context=self._tls_context,
        )
        try:
            return await self._send(smtp, progress, sender, recipients, message)
        except TemporaryFailure as exc:
            return Delivery(Outcome.TEMPORARY, str(exc))
        except SMTPResponseException as exc:
            return _replied(progress.phase, exc.code, exc.message)
        except (SMTPException, OSError) as exc:  # timeouts, disconnects, refusals, TLS
            return _lost(progress.phase, _one_line(str(exc) or type(exc).__name__))
        except ValueError as exc:  # an address aiosmtplib will not put on a command line
            return Delivery(Outcome.PERMANENT, _bad_address(exc))
        finally:
            smtp.close()

    async def _send(
        self,
        smtp: SMTP,
        progress: _Progress,
        sender: str,
        recipients: Sequence[str],
        message: bytes,
    ) -> Delivery:
        await self._open(smtp)
        progress.phase = _Phase.ENVELOPE
        options, encoding = _mail_options(smtp, [sender, *recipients], message)
        await smtp.mail(sender, options=options, encoding=encoding)
        refused = await _add_recipients(smtp, recipients, encoding)
        if len(refused) == len(recipients):
            return _all_refused(refused)
        reply = await self._transfer(smtp, progress, message)
        with suppress(SMTPException, OSError):
            await smtp.quit()
        refusals = "".join(f"; refused {r}: {_describe(e)}" for r, e in refused.items())
        return Delivery(Outcome.SENT, f"{reply}{refusals}", rejected=tuple(refused))

    async def _open(self, smtp: SMTP) -> None:
        await smtp.connect()
        await smtp.ehlo()
        if self._starttls:
            await self._upgrade(smtp)
        if self._username is not None:
            try:
                await smtp.login(self._username, self._password or "")
            except SMTPAuthenticationError as exc:
                raise TemporaryFailure(f"authentication failed: {_describe(exc)}") from exc

    async def _upgrade(self, smtp: SMTP) -> None:
        """STARTTLS or nothing: a relay that cannot upgrade gets no plain-text fallback."""
        where = f"{self._host}:{self._port}"
        if not smtp.supports_extension("starttls"):
            raise TemporaryFailure(f"{where} does not offer STARTTLS, which is required")
        try:
            await smtp.starttls()
        except (SMTPException, OSError) as exc:  # refusal, handshake or certificate error
            raise TemporaryFailure(f"STARTTLS with {where} failed: {_one_line(str(exc))}") from exc

    async def _transfer(self, smtp: SMTP, progress: _Progress, message: bytes) -> str:
        """DATA by hand, so we know whether the payload left before the connection broke."""
        start = await smtp.execute_command(b"DATA")
        if start.code != SMTPStatus.start_input:
            raise SMTPDataError(start.code, start.message)
        if smtp.protocol is None:
            raise SMTPServerDisconnected("Connection lost")
        progress.phase = _Phase.PAYLOAD
        smtp.protocol.write(_dot_stuffed(message))
        reply = await smtp.protocol.read_response(timeout=self._timeout)
        if reply.code != SMTPStatus.completed:
            raise SMTPDataError(reply.code, reply.message)
        return f"{reply.code} {_one_line(reply.message)}"


def _mail_options(smtp: SMTP, addresses: Sequence[str], message: bytes) -> tuple[list[str], str]:
    """MAIL FROM parameters and the address encoding the relay's extensions allow."""
    options = (
        [] if message.isascii() or not smtp.supports_extension("8bitmime") else ["BODY=8BITMIME"]
    )
    if all(a.isascii() for a in addresses) or not smtp.supports_extension("smtputf8"):
        return options, "ascii"  # a non-ASCII recipient is then refused: _NEEDS_SMTPUTF8
    return [*options, "SMTPUTF8"], "utf-8"


async def _add_recipients(
    smtp: SMTP, recipients: Sequence[str], encoding: str
) -> dict[str, SMTPResponseException]:
    """RCPT each recipient; the refused ones, with the reply that refused them."""
    refused: dict[str, SMTPResponseException] = {}
    for recipient in recipients:
        if encoding == "ascii" and not recipient.isascii():  # RFC 6531: no downgrade
            refused[recipient] = SMTPResponseException(553, _NEEDS_SMTPUTF8)
            continue
        try:
            await smtp.rcpt(recipient, encoding=encoding)
        except SMTPRecipientRefused as exc:
            refused[recipient] = exc
        except ValueError as exc:  # never sent: refuse it here as a relay would
            refused[recipient] = SMTPResponseException(553, _bad_address(exc))
    return refused


def _all_refused(refused: dict[str, SMTPResponseException]) -> Delivery:
    """PERMANENT only when no refusal was temporary: a 4xx recipient may work later."""
    outcomes = {_replied(_Phase.ENVELOPE, e.code, e.message).outcome for e in refused.values()}
    outcome = Outcome.PERMANENT if outcomes == {Outcome.PERMANENT} else Outcome.TEMPORARY
    detail = "; ".join(f"{r}: {_describe(e)}" for r, e in refused.items())
    return Delivery(outcome, f"all recipients refused: {detail}", rejected=tuple(refused))


def _replied(phase: _Phase, code: int, text: str) -> Delivery:
    """Classify a relay's reply; refusals of the session are configuration, so temporary."""
    detail = f"{code} {_one_line(text)}"
    if not 400 <= code < 600:  # garbled or out-of-sequence: as good as a broken connection
        return _lost(phase, detail)
    permanent = code >= 500 and phase is not _Phase.SESSION and code not in _CONFIGURATION_CODES
    return Delivery(Outcome.PERMANENT if permanent else Outcome.TEMPORARY, detail)


def _lost(phase: _Phase, detail: str) -> Delivery:
    outcome = Outcome.UNCERTAIN if phase is _Phase.PAYLOAD else Outcome.TEMPORARY
    return Delivery(outcome, f"{detail} ({phase.value})")


def _dot_stuffed(message: bytes) -> bytes:
    """The DATA payload: CRLF line endings, leading dots doubled, the final dot line."""
    body = _LINE_ENDING.sub(b"\r\n", message)
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    return _LEADING_DOT.sub(b"..", body) + b".\r\n"


def _bad_address(exc: ValueError) -> str:
    if isinstance(exc, UnicodeEncodeError):
        return "non-ASCII address; the relay does not offer SMTPUTF8"
    return f"invalid address: {_one_line(str(exc))}"


def _describe(exc: SMTPResponseException) -> str:
    return f"{exc.code} {_one_line(exc.message)}"


def _one_line(text: str) -> str:
    return " ".join(text.split())
