"""One blocking IMAP connection (imapclient): connect, select, search, fetch, settle, wait.

It runs on its account's own thread; the async poller (``imap_inbox``) never calls it
from the event loop. Everything is by UID. TLS is ``ssl`` or ``starttls``; a server
without STARTTLS, or a failed handshake, is an error: the password never goes out in
plain text because TLS did not work.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError, LoginError

from mailticket.inbound.imap_plan import uid_set
from mailticket.settings import ImapAccount

SEEN = b"\\Seen"
DELETED = b"\\Deleted"
FAULTS = (OSError, IMAPClientError)  # socket, TLS (ssl.SSLError is an OSError), protocol


class ImapFault(Exception):
    """A mailbox problem this module found itself (no STARTTLS, no password, ...)."""


def describe(exc: BaseException) -> str:
    """One line for logs and ``mailticket status``."""
    if isinstance(exc, LoginError):
        return f"login refused: {_one_line(exc)}"
    if isinstance(exc, ConnectionRefusedError | socket.gaierror):
        return f"unreachable: {_one_line(exc)}"
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return f"TLS failed: {_one_line(exc)}"
    if isinstance(exc, TimeoutError):
        return "timed out waiting for the server"
    if isinstance(exc, ImapFault):
        return _one_line(exc)
    return f"{type(exc).__name__}: {_one_line(exc)}"


def _text(parts: tuple[object, ...]) -> str:
    words = [p.decode("utf-8", "replace") if isinstance(p, bytes) else str(p) for p in parts]
    return " ".join(" ".join(words).split())


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if text[:2] in ("b'", 'b"') and text[-1:] == text[1]:  # imaplib's bytes, repr'd
        text = text[2:-1]
    return text or type(exc).__name__


def create_folder(client: IMAPClient, name: str) -> None:
    """Create ``name`` unless it exists. Another poller creating it at the same moment is
    success too: ``NO [ALREADYEXISTS]`` (RFC 5530), or a NO in other words after which
    the folder is there."""
    if client.folder_exists(name):
        return
    try:
        client.create_folder(name)
    except IMAPClientAbortError:
        raise  # the connection is gone: nothing to ask it
    except IMAPClientError as exc:
        if "[ALREADYEXISTS]" not in str(exc) and not client.folder_exists(name):
            raise


@dataclass(frozen=True, slots=True)
class Fetched:
    uid: int
    raw: bytes
    internaldate: datetime | None


class Alarm:
    """Wakes a thread blocked in ``Mailbox.wait`` from any thread (a socket pair)."""

    def __init__(self) -> None:
        self._receive, self._send = socket.socketpair()

    def set(self) -> None:
        with contextlib.suppress(OSError):  # already closed: nobody waits any more
            self._send.send(b"!")

    def wait(self, other: socket.socket | None, timeout: float) -> bool:
        """Block until ``other`` is readable, the alarm is set, or ``timeout``; True when
        ``other`` has data. (A selector: ``select()`` fails on descriptors over 1023.)"""
        with selectors.DefaultSelector() as selector:
            selector.register(self._receive, selectors.EVENT_READ)
            if other is not None:
                selector.register(other, selectors.EVENT_READ)
            ready = selector.select(timeout)
        return any(key.fileobj is other for key, _ in ready)

    def close(self) -> None:
        self._receive.close()
        self._send.close()


class Mailbox:
    def __init__(
        self, account: ImapAccount, *, timeout: float, ssl_context: ssl.SSLContext | None
    ) -> None:
        self.account = account
        self._timeout = timeout
        self._context = ssl_context
        self._client: IMAPClient | None = None

    @property
    def client(self) -> IMAPClient:
        if self._client is None:
            raise ImapFault("not connected")
        return self._client

    def open(self) -> int:
        """Connect, secure, log in, select the folder; returns its UIDVALIDITY."""
        account = self.account
        password = self._password()
        context = self._context or ssl.create_default_context()
        client = IMAPClient(
            account.host,
            account.port,
            ssl=account.ssl,
            ssl_context=context if account.ssl else None,
            timeout=self._timeout,
        )
        self._client = client
        if account.starttls and not account.ssl:
            if not client.has_capability("STARTTLS"):
                raise ImapFault("server offers no STARTTLS: refusing to log in in plain text")
            client.starttls(context)
        client.login(account.username, password)
        client.normalise_times = False  # aware INTERNALDATEs
        if account.processed_folder:
            create_folder(client, account.processed_folder)
        selected = client.select_folder(account.folder)
        return int(selected[b"UIDVALIDITY"])

    def _password(self) -> str:
        if self.account.password is not None:
            return self.account.password
        if self.account.password_file is not None:
            try:
                return self.account.password_file.read_text(encoding="utf-8").strip("\r\n")
            except OSError as exc:
                raise ImapFault(f"password_file: {exc.strerror}: {exc.filename}") from exc
        raise ImapFault("neither password nor password_file is set")

    def uids(self) -> list[int]:
        """Every UID in the folder: the ledger, not ``\\Seen``, says what is done."""
        return list(self.client.search("ALL"))

    def uids_above(self, uid: int) -> list[int]:
        """UIDs greater than ``uid``. The NOOP first: a server reports new mail at the end
        of a command, so a SEARCH alone can announce a mail that its result lacks."""
        _, responses = self.client.noop()
        for response in responses:
            if isinstance(response, tuple) and response[:1] == (b"NO",):
                # e.g. Dovecot after the selected folder was deleted and recreated: its
                # view is stale until a new login; reconnecting reads the new UIDVALIDITY
                raise ImapFault(f"server reported: {_text(response[1:])}; reconnecting")
        # "n:*" also yields the highest UID when that is below n
        return [found for found in self.client.search(["UID", f"{uid + 1}:*"]) if found > uid]

    def sizes(self, uids: Sequence[int]) -> dict[int, int]:
        response = self.client.fetch(list(uids), [b"RFC822.SIZE"])
        return {uid: int(data[b"RFC822.SIZE"]) for uid, data in response.items()}

    def fetch(self, uids: Sequence[int]) -> list[Fetched]:
        """The mails byte for byte, without setting ``\\Seen`` (BODY.PEEK)."""
        response = self.client.fetch(list(uids), [b"BODY.PEEK[]", b"INTERNALDATE"])
        return [
            Fetched(uid, response[uid][b"BODY[]"], response[uid].get(b"INTERNALDATE"))
            for uid in uids
            if uid in response and b"BODY[]" in response[uid]
        ]

    def settle(self, uids: Sequence[int]) -> None:
        """After the commit: ``\\Seen``, then move to ``processed_folder`` when there is one
        (COPY + ``\\Deleted`` + UID EXPUNGE on servers without MOVE; without UIDPLUS the
        copies stay flagged ``\\Deleted``: a plain EXPUNGE would remove others' mail)."""
        client, target, uids_text = self.client, self.account.processed_folder, uid_set(uids)
        client.add_flags(uids_text, [SEEN], silent=True)
        if not target or target == self.account.folder:  # moving there would loop forever
            return
        if client.has_capability("MOVE"):
            client.move(uids_text, target)
            return
        client.copy(uids_text, target)
        client.add_flags(uids_text, [DELETED], silent=True)
        if client.has_capability("UIDPLUS"):
            client.uid_expunge(uids_text)

    def wait(self, timeout: float, alarm: Alarm, *, idle: bool) -> None:
        """Until the server reports a change (IDLE), ``timeout``, or the alarm.

        Instead of imapclient's ``idle_check`` (which reads a non-blocking socket and
        fails with "unterminated line" when a server splits a line across two writes,
        mjs/imapclient#519), wait for the socket to become readable and end the IDLE
        with ``idle_done``, which reads whole lines; the caller then searches by UID.
        A change reported in the same packet as IDLE's "+ idling" lands in imaplib's
        buffer, not the socket, and is only seen at ``timeout`` (``poll_interval``); the
        caller's NOOP + SEARCH right before each IDLE keeps that window to a round trip.
        """
        client = self.client
        if not (idle and client.has_capability("IDLE")):
            alarm.wait(None, timeout)  # the caller's NOOP + SEARCH follows
            return
        client.idle()
        alarm.wait(client.socket(), timeout)
        client.idle_done()

    def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.logout()
        except Exception:  # already broken: nothing to say goodbye to
            with contextlib.suppress(Exception):
                client.shutdown()
