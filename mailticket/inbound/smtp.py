"""The SMTP listener (aiosmtpd): check recipients, take DATA, submit, answer.

The handler knows nothing of tickets: it is given ``submit(raw, notify) -> awaitable`` and
answers 250 only after that returns (the mail is committed), 451 when the store is down.
It takes what Postfix takes: lines of any length up to the message size, 8-bit bodies
(8BITMIME) and UTF-8 addresses (SMTPUTF8). As a delivering MTA does, it writes the
envelope on top of the mail (:mod:`mailticket.inbound.envelope`): Return-Path and Delivered-To.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import ssl
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from mailticket.errors import StorageFull, TemporaryFailure
from mailticket.inbound import envelope as trace

log = logging.getLogger(__name__)

OK = "250 2.0.0 OK: queued"
UNKNOWN_RECIPIENT = "550 5.1.1 Recipient address rejected: not a mailbox here"
STORAGE_DOWN = "451 4.3.0 Temporary failure: storage unavailable, try again later"
STORAGE_FULL = "452 4.3.1 Insufficient system storage, try again later"
TOO_BIG = "552 5.3.4 Message too big for system"
LOCAL_ERROR = "451 4.3.0 Temporary local error, try again later"
SENDER_OK = "250 2.1.0 OK"
RECIPIENT_OK = "250 2.1.5 OK"
BAD_SENDER = "553 5.1.7 Sender address cannot be written into a header"
BAD_RECIPIENT = "553 5.1.3 Recipient address cannot be written into a header"

Submit = Callable[[bytes, bool, bool], Awaitable[object]]  # (raw, notify, trusted)


class InboxHandler:
    def __init__(
        self,
        submit: Submit,
        accept: Collection[str],
        max_size: int,
        trusted_relays: Collection[str] = (),
    ) -> None:
        self._submit = submit
        self._accept = frozenset(address.lower() for address in accept)
        self._max_size = max_size
        self._trusted = tuple(ipaddress.ip_network(net) for net in trusted_relays)
        self.in_flight = 0

    def trusted(self, session: Session) -> bool:
        """Whether the peer is one of ``agents.trusted_relays``: only then are the
        Authentication-Results and spam headers it added read (any sender can write them)."""
        peer = session.peer[0] if isinstance(session.peer, tuple) and session.peer else None
        if not self._trusted or not isinstance(peer, str):
            return False
        try:
            address = ipaddress.ip_address(peer.partition("%")[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self._trusted)

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if not trace.writable(address):  # control characters: it would break the Return-Path
            return BAD_SENDER
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return SENDER_OK

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self._accept and address.lower() not in self._accept:
            return UNKNOWN_RECIPIENT
        if not trace.writable(address):
            return BAD_RECIPIENT
        envelope.rcpt_tos.append(address)
        return RECIPIENT_OK

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        if len(content) > self._max_size:
            log.warning("smtp: %d-byte message over smtp.max_message_size -> 552", len(content))
            return TOO_BIG
        raw = trace.stamp(content, envelope.mail_from, envelope.rcpt_tos)
        self.in_flight += 1
        try:
            await self._submit(raw, True, self.trusted(session))
        except StorageFull as exc:
            log.warning("smtp: %s -> 452", exc)
            return STORAGE_FULL
        except TemporaryFailure as exc:
            log.warning("smtp: %s -> 451", exc)
            return STORAGE_DOWN
        except Exception:
            log.exception("smtp: unexpected error -> 451")
            return LOCAL_ERROR
        finally:
            self.in_flight -= 1
        return OK


class _InboxSMTP(SMTP):
    """aiosmtpd's SMTP, taking lines of any length and answering oversize mail with the
    enhanced status code 5.3.4."""

    def __init__(self, handler: InboxHandler, *, data_size_limit: int, **options: Any) -> None:
        # aiosmtpd answers a permanent 500 to a DATA line over 1,001 octets (RFC 5321's
        # limit); real mail breaks it (HTML on one line) and Postfix takes it. The same
        # number bounds its stream reader: a line as long as the largest message (plus a
        # stuffed dot) fits, so only a message over the size limit has a longer line.
        self.line_length_limit = data_size_limit + 1
        super().__init__(handler, data_size_limit=data_size_limit, **options)

    async def push(self, status: Any) -> None:
        text = status.decode() if isinstance(status, bytes) else str(status)
        if text.startswith(("552 Error", "500 Line too long")):
            log.warning("smtp: message over smtp.max_message_size (%s) -> 552", text[4:].strip())
            status = TOO_BIG
        await super().push(status)


async def start_smtp(
    handler: InboxHandler,
    host: str,
    port: int,
    *,
    max_size: int,
    tls_context: ssl.SSLContext | None = None,
) -> asyncio.Server:
    """Listen on (host, port) in the running loop; close the returned server to stop."""
    loop = asyncio.get_running_loop()

    def factory() -> SMTP:
        return _InboxSMTP(
            handler,
            data_size_limit=max_size,
            enable_SMTPUTF8=True,
            decode_data=False,
            tls_context=tls_context,
            require_starttls=False,
            hostname=None,
            ident="mailticket",
        )

    return await loop.create_server(factory, host, port)
