"""The IMAP poller: one task per ``[[imap]]`` account, exactly once by UID ledger.

For every batch: fetch ``BODY.PEEK[]`` -> ``submit`` (returns after the commit) -> ledger
row -> ``\\Seen`` and move to ``processed_folder`` -> ledger ``done``. A crash before the
commit leaves the mail untouched on the server; a crash after it is caught up on restart
(the ledger, or the intake's Message-ID/sha256 dedupe when the ledger row is missing).
While the database is down the poller fetches nothing and leaves the mailbox alone.

Each account has a thread of its own for the blocking imapclient calls, so a hung
server stalls only its account; faults are logged once per change of state, recorded
for ``mailticket status`` and retried with exponential backoff. The daemon hands in
``submit(raw, notify)``; this module knows nothing of tickets.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import ssl
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

from sqlalchemy.engine import Engine

from mailticket.errors import TemporaryFailure
from mailticket.inbound import imap_ledger as ledger
from mailticket.inbound.imap_ledger import Folder, account_name
from mailticket.inbound.imap_mailbox import FAULTS, Alarm, Fetched, ImapFault, Mailbox, describe
from mailticket.inbound.imap_plan import MailboxBacklog, backoff, fit, notify_for
from mailticket.settings import ImapAccount

log = logging.getLogger(__name__)
T = TypeVar("T")


class Accepted(Protocol):
    """What ``submit`` returns (``intake.Result``): the mail's identity for the ledger."""

    @property
    def message_id(self) -> str: ...


Submit = Callable[[bytes, bool, bool], Awaitable[Accepted]]  # (raw, notify, trusted)
Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class Tuning:
    """Limits with production defaults; tests shorten the waits."""

    batch_count: int = 100  # mails per FETCH
    batch_bytes: int = 16 * 1024 * 1024  # bytes per FETCH (a bigger mail goes alone)
    idle_renew: float = 25 * 60.0  # RFC 2177: servers may end an IDLE after 29 minutes
    timeout: float = 60.0  # one IMAP command (connect, read)
    backoff_first: float = 2.0
    backoff_max: float = 300.0


async def run_imap_accounts(
    accounts: Sequence[ImapAccount],
    submit: Submit,
    engine: Engine,
    clock: Clock,
    stop: asyncio.Event,
    *,
    writer: Executor | None = None,
    tuning: Tuning = Tuning(),
    ssl_context: ssl.SSLContext | None = None,
) -> None:
    """Poll every account until ``stop``; never raises for a mailbox or database fault.

    ``writer``: where ledger and status writes run (the daemon's SQLite writer thread);
    by default each account's own thread. ``ssl_context``: instead of the system's.
    """
    pollers = [
        AccountPoller(account, submit, engine, clock, stop, writer, tuning, ssl_context)
        for account in accounts
    ]
    await asyncio.gather(*(poller.run() for poller in pollers))


class AccountPoller:
    def __init__(
        self,
        account: ImapAccount,
        submit: Submit,
        engine: Engine,
        clock: Clock,
        stop: asyncio.Event,
        writer: Executor | None,
        tuning: Tuning,
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        self.account = account
        self.name = account_name(account)
        self._submit = submit
        self._engine = engine
        self._clock = clock
        self._stop = stop
        self._tuning = tuning
        self._ssl_context = ssl_context
        self._thread = ThreadPoolExecutor(1, thread_name_prefix=f"imap {self.name}")
        self._writer = writer or self._thread
        self._alarm = Alarm()
        self._state = "starting"  # "ok" or the last error's text: log only changes
        self._synced = False  # this session caught up at least once
        self._unsaved: tuple[str, datetime] | None = None  # an error the database missed

    async def run(self) -> None:
        ringer = asyncio.create_task(self._ring_on_stop())
        failures, tuning = 0, self._tuning
        try:
            while not self._stop.is_set():
                if await self._session():
                    continue  # stopped
                # a session that had caught up counts as a fresh start: a short pause
                failures = 1 if self._synced else failures + 1
                await self._pause(backoff(failures, tuning.backoff_first, tuning.backoff_max))
        finally:
            ringer.cancel()
            self._thread.shutdown(wait=False)
            self._alarm.close()

    async def _ring_on_stop(self) -> None:
        await self._stop.wait()
        self._alarm.set()  # wakes the thread out of IDLE or a poll wait

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    async def _session(self) -> bool:
        """One connection, until ``stop`` or a fault; False after a fault."""
        self._synced = False
        mailbox = Mailbox(self.account, timeout=self._tuning.timeout, ssl_context=self._ssl_context)
        try:
            await self._follow(mailbox)
            return True
        except TemporaryFailure as exc:
            await self._failed(f"{exc}; leaving the mail on the server")
        except (*FAULTS, ImapFault) as exc:
            await self._failed(describe(exc))
        except Exception as exc:  # a bug must not end polling for good
            log.exception("imap %s: unexpected error", self.name)
            await self._failed(describe(exc))
        finally:
            # queued behind whatever the thread still does (a connect that has not timed
            # out yet), but not awaited: stopping never waits for a dead server
            self._thread.submit(mailbox.close)
        return False

    async def _follow(self, mailbox: Mailbox) -> None:
        """Catch up, then wait for news (IDLE or poll) and catch up again, until stop."""
        key = Folder.of(self.account, await self._io(mailbox.open))
        forgotten = await self._db(ledger.forget_other_epochs, self._engine, key)
        if forgotten:
            log.warning(
                "imap %s: UIDVALIDITY is now %d; %d ledger rows of the old epoch dropped, "
                "mail already stored is recognised by its Message-ID",
                self.name,
                key.uidvalidity,
                forgotten,
            )
        await self._settle(mailbox, key, await self._db(ledger.unsettled, self._engine, key))
        backlog = MailboxBacklog()
        backlog.start(await self._unknown(key, await self._io(mailbox.uids)))
        wait = min(self.account.poll_interval.total_seconds(), self._tuning.idle_renew)
        while not self._stop.is_set():
            await self._drain(mailbox, key, backlog)
            await self._ok()
            await self._io(mailbox.wait, wait, self._alarm, idle=self.account.idle)

    async def _drain(self, mailbox: Mailbox, key: Folder, backlog: MailboxBacklog) -> None:
        """Bounded batches until a fresh look at the folder finds nothing left to fetch;
        new mail is looked for before each batch, so it never waits for the backlog."""
        while not self._stop.is_set():
            fresh = await self._io(mailbox.uids_above, backlog.high)
            backlog.arrived(await self._unknown(key, fresh))
            if not backlog:
                return
            candidates = backlog.take(self._tuning.batch_count)
            sizes = await self._io(mailbox.sizes, candidates)
            chosen, rest = fit(candidates, sizes, self._tuning.batch_bytes)
            backlog.put_back(rest)
            if chosen:
                mails = await self._io(mailbox.fetch, chosen)
                log.debug(
                    "imap %s: fetched %d mails, %d bytes",
                    self.name,
                    len(mails),
                    sum(len(m.raw) for m in mails),
                )
                await self._ingest(mailbox, key, mails)

    async def _ingest(self, mailbox: Mailbox, key: Folder, mails: Sequence[Fetched]) -> None:
        """Submit each mail; whatever was committed is then recorded and settled, even
        when a later mail of the batch hits a database outage."""
        committed: list[tuple[int, str]] = []
        try:
            for mail in mails:
                if self._stop.is_set():
                    break
                notify = notify_for(mail.raw, mail.internaldate, self.account.since)
                result = await self._submit(
                    mail.raw, notify, self.account.trust_authentication_results
                )
                committed.append((mail.uid, result.message_id or _digest(mail.raw)))
        finally:
            if committed:
                mine = await self._db(ledger.record, self._engine, key, committed, self._clock())
                await self._settle(mailbox, key, sorted(mine))  # another daemon settles the rest

    async def _settle(self, mailbox: Mailbox, key: Folder, uids: list[int]) -> None:
        if uids:
            await self._io(mailbox.settle, uids)
            await self._db(ledger.mark_done, self._engine, key, uids)

    async def _unknown(self, key: Folder, uids: list[int]) -> list[int]:
        done = await self._db(ledger.known, self._engine, key, uids)
        return [uid for uid in uids if uid not in done]

    async def _ok(self) -> None:
        self._synced = True
        if self._state != "ok":
            how = "connected" if self._state == "starting" else "recovered"
            log.info("imap %s: %s, mailbox in sync", self.name, how)
            self._state = "ok"
        await self._status(None)

    async def _failed(self, error: str) -> None:
        if error != self._state:
            log.warning("imap %s: %s", self.name, error)
            self._state = error
        else:
            log.debug("imap %s: still failing: %s", self.name, error)
        await self._status(error)

    async def _status(self, error: str | None) -> None:
        """Best effort: while the database is down there is nowhere to write; the error
        is then written (with its time) before the next status that can be."""
        now = self._clock()
        try:
            if self._unsaved is not None:
                text, at = self._unsaved
                await self._db(ledger.save_status, self._engine, self.name, at, error=text)
                self._unsaved = None
            await self._db(ledger.save_status, self._engine, self.name, now, error=error)
        except TemporaryFailure:
            if error is not None:
                self._unsaved = (error, now)

    async def _io(self, call: Callable[..., T], *args: object, **kwargs: object) -> T:
        """A blocking IMAP step, on this account's thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, functools.partial(call, *args, **kwargs))

    async def _db(self, call: Callable[..., T], *args: object, **kwargs: object) -> T:
        """A database step, on the writer (SQLite takes one writer at a time)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer, functools.partial(call, *args, **kwargs))


def _digest(raw: bytes) -> str:
    return f"sha256:{hashlib.sha256(raw).hexdigest()}"
