"""Parse mail in worker processes, each mail under a time bound.

A mail that keeps its worker busy longer than ``tickets.max_processing_time`` (10,000
MIME parts take seconds) has the worker killed and replaced, and comes back as
ProcessingTimeout; a worker that dies (a crash in a C extension, the OOM killer) comes
back as ParseError. Either way intake quarantines the mail raw and goes on. Parsing
off the daemon's process also puts the second core to work while the first runs the
SMTP sessions and the store.

The daemon's workers are forked from a fork server that imported the parser once: a
worker started later (after a kill) never inherits the daemon's threads or locks. A
one-shot command (``ingest``: a process per mail) that is still single-threaded forks
its workers directly, sparing the fork server's start (half a second).

``submit_nearby`` spares the daemon the round trip for the common mail: one that is small
and has few parts is parsed right there, on the event loop's thread, under an alarm of
``NEARBY_BUDGET``; a bigger mail, or one the alarm stops, goes to a worker as before, with
the whole time bound. The round trip (pipes, the pool's threads) cost a mail more wall
time than its parse.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import replace
from functools import partial
from multiprocessing.util import Finalize
from typing import Any

from pebble import ProcessExpired, ProcessPool

from mailticket.decide.secret_scan import scan_inbound
from mailticket.errors import MailRejected, ParseError, TemporaryFailure
from mailticket.parse.mail import InboundMail, parse
from mailticket.runtime.warm_up import sample_mails

log = logging.getLogger(__name__)
Parse = Callable[[bytes, int], InboundMail]
# What the fork server imports once, for every child it forks: the parser workers and
# the daemon's store process (whichever starts it first sets it).
PRELOAD = ["mailticket.runtime.parse_pool", "mailticket.runtime.core"]
# A mail parsed nearby: at most this big, with at most this many boundary lines (the parse
# is linear in both: ~1 ms for a typical mail). The alarm is the backstop, not the rule.
NEARBY_MAX_BYTES = 64 * 1024
NEARBY_MAX_BOUNDARIES = 32
NEARBY_BUDGET = 0.1  # seconds


class ProcessingTimeout(MailRejected):
    """Parsing the mail took longer than ``tickets.max_processing_time``."""


class _OverBudget(Exception):
    """The alarm stopped a nearby parse: the mail goes to a worker instead."""


def parse_lean(raw: bytes, max_attachment_size: int) -> InboundMail:
    """Parse in a worker, and look for secrets there too (the store's thread is the
    daemon's bottleneck); the raw bytes are not sent back (the caller has them)."""
    mail = parse(raw, max_attachment_size=max_attachment_size)
    return replace(mail, raw=b"", secrets=scan_inbound(mail))


class ParsePool:
    """A pool of parser processes, started on first use; ``close`` stops it."""

    def __init__(
        self,
        *,
        max_attachment_size: int,
        time_limit: float,
        workers: int = 2,
        function: Parse = parse_lean,  # a module-level function: workers import it by name
    ) -> None:
        self._cap = max_attachment_size
        self._limit = time_limit
        self._workers = workers
        self._function = function
        self._pool: ProcessPool | None = None
        self._lock = threading.Lock()

    def submit(self, raw: bytes) -> Future[InboundMail]:
        """The parsed mail, or ParseError / ProcessingTimeout / TemporaryFailure."""
        parsed: Future[InboundMail] = Future()
        try:
            task = self._running().schedule(self._function, (raw, self._cap), timeout=self._limit)
        except RuntimeError as exc:  # the pool broke down (and is replaced next time)
            self._discard()
            parsed.set_exception(TemporaryFailure(f"parser unavailable: {exc}"))
            return parsed
        task.add_done_callback(partial(_settle, parsed, raw, self._limit))
        return parsed

    def submit_nearby(self, raw: bytes) -> Future[InboundMail]:
        """``submit``, but a small mail is parsed here when this is the main thread (the
        only one an alarm can interrupt); the future is then already resolved."""
        if not _nearby(raw) or threading.current_thread() is not threading.main_thread():
            return self.submit(raw)
        outcome: Future[InboundMail] = Future()
        try:
            with _alarm(NEARBY_BUDGET):
                outcome.set_result(self._function(raw, self._cap))
        except _OverBudget:
            log.info(
                "a %d-byte mail took over %gs to parse: parsing it in a worker",
                len(raw),
                NEARBY_BUDGET,
            )
            return self.submit(raw)
        except Exception as exc:
            outcome.set_exception(exc)
        parsed: Future[InboundMail] = Future()
        _settle(parsed, raw, self._limit, outcome)  # as a worker's outcome is
        return parsed

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.stop()  # type: ignore[no-untyped-call]
            pool.join()

    def start(self) -> None:
        """Start the workers now rather than on the first mail (the daemon does), and
        parse the warm-up mails here and in the workers (see ``warm_up``)."""
        self._running(long_running=True)
        with contextlib.suppress(Exception):  # a failure here shows on the first mail
            samples = sample_mails()
            for raw in samples:  # what submit_nearby will parse here
                self._function(raw, self._cap)
            for parsed in [self.submit(raw) for raw in samples]:
                parsed.result()

    def _running(self, *, long_running: bool = False) -> ProcessPool:
        with self._lock:
            if self._pool is None or not self._pool.active:
                context = _context(long_running or threading.active_count() > 1)
                self._pool = ProcessPool(max_workers=self._workers, context=context)
                # Stopped when this ParsePool goes away, and at exit before multiprocessing
                # joins its children (the workers would otherwise keep the process alive).
                Finalize(self, _stop, args=(self._pool,), exitpriority=10)
            return self._pool

    def _discard(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.stop()  # type: ignore[no-untyped-call]


def _nearby(raw: bytes) -> bool:
    return len(raw) <= NEARBY_MAX_BYTES and raw.count(b"\n--") <= NEARBY_MAX_BOUNDARIES


@contextlib.contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    """Raise _OverBudget in this (the main) thread when the block takes over ``seconds``;
    an alarm someone else had set (pytest-timeout does) is put back, none the later."""

    def expired(signum: int, frame: object) -> None:
        raise _OverBudget

    previous = signal.signal(signal.SIGALRM, expired)
    pending, interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    if pending:  # theirs comes first: ours stops the block, theirs fires on the way out
        signal.setitimer(signal.ITIMER_REAL, min(seconds, pending))
    started = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if pending:
            left = pending - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 0.001), interval)


def _stop(pool: ProcessPool) -> None:
    pool.stop()  # type: ignore[no-untyped-call]
    pool.join()


def _context(server: bool) -> Any:
    if not server:
        return multiprocessing.get_context("fork")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def _settle(parsed: Future[InboundMail], raw: bytes, limit: float, task: Future[Any]) -> None:
    """Translate the worker's outcome into intake's: a mail, or why it is quarantined."""
    try:
        mail = task.result()
    except TimeoutError:
        parsed.set_exception(ProcessingTimeout(f"processing took longer than {limit:g}s"))
    except ProcessExpired as exc:
        parsed.set_exception(ParseError(f"parser process died (exit code {exc.exitcode})"))
    except MailRejected as exc:
        parsed.set_exception(exc)
    except Exception as exc:  # a parser bug must not lose the mail
        log.error("parser failed on a %d-byte mail: %r", len(raw), exc)
        parsed.set_exception(ParseError(f"parser error: {exc!r}"))
    else:
        parsed.set_result(replace(mail, raw=raw))
