"""Intake's transactions in a process of its own: the daemon's second core.

In one process the SMTP sessions, the outbox and the store shared one GIL, and the store
(decide, write, render) was 60 % of it. Here the store runs in a child process with its
own engine and its own writer thread (group commit as before): the daemon sends it each
parsed mail (an ``Arrival``) and answers 250 when the Result comes back, after the
child's commit. The outbox's claims and outcomes go to the child too (``submit_unit``);
the IMAP ledger's and the sweeps' jobs stay in the daemon's own writer thread. The child
never reads the rules file: it is given the rules the daemon holds, at start and after
each reload the daemon accepted. Before it says it is ready, the child rehearses (see
``warm_up``), so the daemon's first mails do not pay its one-off costs.

If the child dies, every mail it had not answered fails with TemporaryFailure (SMTP
451: the client sends it again, and what the child had committed is then a duplicate),
and the next mail starts a new child. One that died before it was ready (the database
unreachable, a crash at start-up) is restarted only after a pause, 1 s doubling up to
30 s, and mail gets 451 meanwhile: not a process started, and failing, per mail.

The child goes when the daemon goes: its pipe closes, and on Linux the kernel kills it
(PR_SET_PDEATHSIG), so a kill -9 of the daemon leaves nothing writing behind it.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import logging
import multiprocessing
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from mailticket.decide.rules import RuleSet
from mailticket.errors import TemporaryFailure
from mailticket.intake import Arrival, Result
from mailticket.runtime.batch import Unit
from mailticket.runtime.parse_pool import PRELOAD
from mailticket.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")
STOP_TIMEOUT = 30.0  # seconds the child may take to commit what it holds
READY_TIMEOUT = 60.0  # seconds ``start`` waits for the child's rehearsal
FIRST_PAUSE, MAX_PAUSE = 1.0, 30.0  # seconds before restarting a child that never served
EX_TEMPFAIL = 75  # the child's exit code when it cannot open the database
_RULES, _STOP = "rules", "stop"
_PR_SET_PDEATHSIG = 1


class StoreProcess:
    """``submit(arrival) -> Future[Result]``, answered by the child after its commit;
    ``submit_unit`` for the outbox's writes, so the daemon's process never takes a turn
    at SQLite's lock while mail is stored (its GIL made every turn it took 3x longer)."""

    def __init__(self, settings: Settings, rules: Callable[[], RuleSet]) -> None:
        self._settings = settings
        self._rules = rules  # the daemon's current rules: a child never reads the file
        self._lock = threading.Lock()
        self._child: _Child | None = None
        self._keys = itertools.count()
        self._closed = False
        self._pause = 0.0  # before the next restart of a child that died before it served
        self._restart_at: float | None = None

    def start(self) -> None:
        """Start the child now rather than on the first mail (the daemon does), and wait
        until it is ready or has exited (its exit shows on the first mail, as a 451)."""
        with self._lock:
            child = self._running()
        if not child.ready.wait(READY_TIMEOUT):
            log.warning("store process not ready after %.0fs: going on", READY_TIMEOUT)

    def submit(self, arrival: Arrival) -> Future[Result]:
        """The mail stored by the child (``intake.unit``)."""
        return self._send(arrival)

    def submit_unit(self, unit: Unit[T]) -> Future[T]:
        """Any other write, in the child's next batch: ``unit``'s functions must pickle
        (module-level functions and partials of them: the outbox's claims and outcomes)."""
        return self._send(unit)

    def _send(self, request: Arrival | Unit[Any]) -> Future[Any]:
        future: Future[Any] = Future()
        with self._lock:
            if self._closed:
                future.set_exception(TemporaryFailure("the store is shutting down"))
                return future
            try:
                self._running().send(next(self._keys), request, future)
            except TemporaryFailure as exc:  # waiting to restart the child
                future.set_exception(exc)
            except (OSError, EOFError, ValueError) as exc:  # the child is gone
                future.set_exception(TemporaryFailure(f"store process unavailable: {exc}"))
        return future

    def reload_rules(self, accepted: bool) -> None:
        """A RulesHolder observer: the child gets the rules the daemon accepted (a file
        the daemon refused never reaches it, so both keep the same last good rules)."""
        if not accepted:
            return
        with self._lock:
            child = self._child
            if child is not None:
                with contextlib.suppress(OSError, ValueError):
                    child.connection.send((_RULES, self._rules()))

    def close(self) -> None:
        """Let the child commit what it holds, answer it, and exit."""
        with self._lock:
            self._closed = True
            child, self._child = self._child, None
        if child is None:
            return
        with contextlib.suppress(OSError, ValueError):
            child.connection.send((_STOP, None))
        child.process.join(STOP_TIMEOUT)
        if child.process.is_alive():
            log.error("store process did not stop in %.0fs: killing it", STOP_TIMEOUT)
            child.process.kill()
            child.process.join()
        child.reader.join(STOP_TIMEOUT)

    @property
    def ready(self) -> bool:
        """The child has said it is ready (after its rehearsal), or has exited."""
        child = self._child
        return child is not None and child.ready.is_set()

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs (for logs and tests)."""
        child = self._child
        return child.process.pid if child is not None and child.alive else None

    def _running(self) -> _Child:
        child = self._child
        if child is not None and child.alive:
            return child
        if child is not None:
            self._hold_restart(child)
        self._child = child = _Child.start(self._settings, self._rules())
        log.info("store process started (pid %s)", child.process.pid)
        return child

    def _hold_restart(self, dead: _Child) -> None:
        """TemporaryFailure until the pause after ``dead``'s exit is over."""
        if self._restart_at is None:
            served = dead.served
            self._pause = 0.0 if served else min(max(2 * self._pause, FIRST_PAUSE), MAX_PAUSE)
            self._restart_at = dead.exited_at + self._pause
            if not served:
                log.warning("store process exited at start-up: restarting in %.0fs", self._pause)
        left = self._restart_at - time.monotonic()
        if left > 0:
            raise TemporaryFailure(f"store process unavailable, restarting in {left:.1f}s")
        self._restart_at = None


class _Child:
    def __init__(self, process: Any, connection: Connection) -> None:
        self.process = process
        self.connection = connection
        self.alive = True
        self._pending: dict[int, Future[Any]] = {}
        self._lock = threading.Lock()
        self.ready = threading.Event()  # set by its first message (or by its exit)
        self.served = False  # it said it was ready: it opened the database
        self.exited_at = 0.0  # once not alive
        self.reader = threading.Thread(target=self._read, name="store-results", daemon=True)

    @classmethod
    def start(cls, settings: Settings, rules: RuleSet) -> _Child:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)
        ours, theirs = context.Pipe()
        process = context.Process(
            target=_serve, args=(settings, rules, theirs), name="mailticket-store", daemon=True
        )
        process.start()
        theirs.close()
        child = cls(process, ours)
        child.reader.start()
        return child

    def send(self, key: int, request: Arrival | Unit[Any], future: Future[Any]) -> None:
        with self._lock:
            if not self.alive:
                raise EOFError("the store process has exited")
            self.connection.send((key, request))
            self._pending[key] = future

    def _read(self) -> None:
        """Hand each Result to its caller; when the child is gone, fail the rest."""
        while True:
            try:
                answers = self.connection.recv()
            except (EOFError, OSError):
                break
            self.served = True
            self.ready.set()
            for key, value, error in answers:
                with self._lock:
                    future = self._pending.pop(key, None)
                if future is None:
                    continue
                if error is not None:
                    future.set_exception(error)
                else:
                    future.set_result(value)
        self.exited_at = time.monotonic()
        with self._lock:
            self.alive = False
            lost, self._pending = self._pending, {}
        self.ready.set()  # after ``alive``: start() returns to a child known to be gone
        self.process.join(5)
        code = self.process.exitcode
        if lost:
            log.error("store process exited (code %s) with %d mails unanswered", code, len(lost))
        for future in lost.values():
            future.set_exception(TemporaryFailure(f"store process exited (code {code})"))
        self.connection.close()


# -- in the child ----------------------------------------------------------------------


def _serve(settings: Settings, rules: RuleSet, connection: Connection) -> None:
    """The child, one thread: take every request that has come (up to a batch: mails,
    and the outbox's claims and outcomes), run them in one transaction
    (``batch.run_batch``), answer each after the commit."""
    from mailticket.ops.logs import configure
    from mailticket.runtime.batch import run_batch
    from mailticket.runtime.core import build_core  # the child's own engine, rules and templates
    from mailticket.runtime.warm_up import settle_garbage_collector
    from mailticket.runtime.writer import MAX_BATCH

    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the daemon decides when to stop
    configure(settings.log.format, settings.log.level)
    try:
        core = build_core(settings, migrate=False, rules=rules)
    except Exception as exc:  # one line, not a traceback: the daemon starts another later
        log.error("store process cannot open the database: %s", str(exc).splitlines()[0])
        raise SystemExit(EX_TEMPFAIL) from None
    with core:
        core.warm_up()
        settle_garbage_collector()
        connection.send([])  # ready: no answers yet
        running = True
        while running:
            taken = _take(connection, MAX_BATCH)
            running = taken.more
            if taken.rules is not None:
                core.rules.current = taken.rules
            if not taken.arrivals:
                continue
            units = [
                core.intake.unit(request) if isinstance(request, Arrival) else request
                for _, request in taken.arrivals
            ]
            outcomes = run_batch(core.engine, units)
            answers = [
                (key, done.value, None if done.error is None else _portable(done.error))
                for (key, _), done in zip(taken.arrivals, outcomes, strict=True)
            ]
            try:
                connection.send(answers)
            except (OSError, ValueError):
                break  # the daemon is gone: what was committed is a duplicate next time
    connection.close()


@dataclass
class _Taken:
    arrivals: list[tuple[int, Arrival | Unit[Any]]] = field(default_factory=list)
    rules: RuleSet | None = None  # the daemon reloaded its rules: these
    more: bool = True  # False: the daemon said stop, or is gone


def _take(connection: Connection, limit: int) -> _Taken:
    """Wait for a request, then take what else is there, never waiting for more."""
    taken = _Taken()
    try:
        while len(taken.arrivals) < limit:
            if (taken.arrivals or taken.rules) and not connection.poll():
                break
            key, value = connection.recv()
            if key == _STOP:
                taken.more = False
                break
            if key == _RULES:
                taken.rules = value
            else:
                taken.arrivals.append((key, value))
    except (EOFError, OSError):
        taken.more = False
    return taken


def _portable(exc: BaseException) -> BaseException:
    """The error as the daemon can unpickle and act on it (451 for a TemporaryFailure)."""
    if isinstance(exc, TemporaryFailure):  # StorageFull stays itself (452)
        return type(exc)(str(exc))
    return RuntimeError(f"{type(exc).__name__}: {exc}")


def _die_with_parent() -> None:
    """Linux: SIGKILL this process when the process that started it dies."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
