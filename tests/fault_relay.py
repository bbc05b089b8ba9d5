"""An outbound relay (aiosmtpd) on a fixed port that a test makes misbehave: down (nothing
listens), busy (421 at the greeting), or up with scripted answers to DATA per recipient.
It keeps every payload it may have taken, so a test can count Message-IDs."""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from email.parser import BytesHeaderParser
from email.policy import default
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP

ANSWERS = {
    "250": "250 2.0.0 queued",
    "451": "451 4.3.0 try later",
    "550": "550 5.1.1 no such user",
    "hang": "250 2.0.0 too late",  # after the client gave up waiting
}
BUSY = b"421 4.3.2 relay.example busy, try again later\r\n"


class Relay:
    def __init__(self, port: int, script: dict[str, list[str]] | None = None) -> None:
        """``script``: per recipient, the answers to its next DATAs ("250", "451", "550",
        "hang": take the payload, never answer); 250 once the list is used up."""
        self.port = port
        self.script = {address: list(answers) for address, answers in (script or {}).items()}
        self.busy = False
        self.turned_away = 0
        self.received: list[bytes] = []
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._session, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def message_ids(self) -> Counter[str]:
        """How often each Message-ID reached the relay (payloads it may have accepted)."""
        parser = BytesHeaderParser(policy=default)
        return Counter(str(parser.parsebytes(raw)["Message-ID"]) for raw in self.received)

    def _session(self) -> asyncio.Protocol:
        if self.busy:
            self.turned_away += 1
            return _Busy()
        return SMTP(self, hostname="relay.example")

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        answers = self.script.get(envelope.rcpt_tos[0], [])
        answer = answers.pop(0) if answers else "250"
        if answer in ("250", "hang"):
            self.received.append(envelope.original_content)
        if answer == "hang":
            await asyncio.sleep(30)  # cancelled when the client gives up and hangs up
        return ANSWERS[answer]


class _Busy(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(BUSY)
        transport.close()


class LockingRelay(Relay):
    """Takes every mail, but while the first is in flight the SQLite database becomes
    unavailable: an exclusive lock, held until the test rolls ``lock`` back."""

    def __init__(self, port: int, database: Path) -> None:
        super().__init__(port)
        self.lock = sqlite3.connect(database, isolation_level=None)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if not self.received:
            self.lock.execute("BEGIN EXCLUSIVE")
        return await super().handle_DATA(server, session, envelope)
