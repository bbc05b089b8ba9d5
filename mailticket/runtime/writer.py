"""A writer thread: mail that arrives together is committed together.

The daemon has one for its own jobs (and for intake with ``database.writer = "thread"``);
its store process runs the same batches in a loop of its own (``store_process``).

SQLite takes one writer at a time (its busy handler makes waiting threads sleep in
steps of up to 100 ms); PostgreSQL takes many, but every transaction costs round trips
and a commit. So callers hand units of work (one mail each) to a single thread, which
takes whatever is waiting -- up to ``max_batch`` units, never waiting for more -- runs
them in one transaction (``batch.run_batch``: a failing mail is undone alone), and
only then answers each caller; the outbox worker's claims and outcomes are units too.
Plain jobs (the IMAP ledger, the follow-up sweep) come through the same queue in arrival
order, each in a transaction of its own: under a flood of mail they wait for one batch,
never for the flood.

A Writer is a ``concurrent.futures.Executor``, so ``loop.run_in_executor(writer, job)``
works; ``submit_unit`` is the group-commit path.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from sqlalchemy.engine import Engine

from mailticket.runtime.batch import Unit, run_batch

T = TypeVar("T")
P = ParamSpec("P")
MAX_BATCH = 32


@dataclass(frozen=True, slots=True)
class _Job:
    run: Callable[[], Any]
    future: Future[Any]


@dataclass(frozen=True, slots=True)
class _Unit:
    unit: Unit[Any]
    future: Future[Any]


class Writer(Executor):
    def __init__(self, engine: Engine, *, max_batch: int = MAX_BATCH) -> None:
        self._engine = engine
        self._max_batch = max_batch
        self._queue: deque[_Job | _Unit] = deque()
        self._ready = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._serve, name="writer", daemon=True)
        self._thread.start()

    def submit_unit(self, unit: Unit[T]) -> Future[T]:
        """Run ``unit`` in the next batch; the future resolves after that batch's commit."""
        future: Future[T] = Future()
        self._put(_Unit(unit, future))
        return future

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Run a job (which opens its own transaction) in turn with the batches."""
        future: Future[T] = Future()
        self._put(_Job(lambda: fn(*args, **kwargs), future))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop taking work; what is queued is still written."""
        with self._ready:
            self._closing = True
            self._ready.notify()
        if wait:
            self._thread.join()

    def _put(self, entry: _Job | _Unit) -> None:
        with self._ready:
            if self._closing:
                raise RuntimeError("the writer is shut down")
            self._queue.append(entry)
            self._ready.notify()

    def _serve(self) -> None:
        while (taken := self._take()) is not None:
            if isinstance(taken, _Job):
                _run_job(taken)
            else:
                self._run_units(taken)

    def _take(self) -> _Job | list[_Unit] | None:
        """The next job, or every unit waiting in a row (up to the batch size)."""
        with self._ready:
            while not self._queue:
                if self._closing:
                    return None
                self._ready.wait()
            first = self._queue.popleft()
            if isinstance(first, _Job):
                return first
            units = [first]
            while self._queue and len(units) < self._max_batch:
                if not isinstance(self._queue[0], _Unit):
                    break
                units.append(self._queue.popleft())  # type: ignore[arg-type]
            return units

    def _run_units(self, units: list[_Unit]) -> None:
        live = [unit for unit in units if unit.future.set_running_or_notify_cancel()]
        if not live:
            return
        try:
            outcomes = run_batch(self._engine, [entry.unit for entry in live])
        except BaseException as exc:  # run_batch keeps errors per unit; this is a bug
            for unit in live:
                unit.future.set_exception(exc)
            return
        for unit, done in zip(live, outcomes, strict=True):
            if done.error is not None:
                unit.future.set_exception(done.error)
            else:
                unit.future.set_result(done.value)


def _run_job(job: _Job) -> None:
    if not job.future.set_running_or_notify_cancel():
        return
    try:
        result = job.run()
    except BaseException as exc:
        job.future.set_exception(exc)
    else:
        job.future.set_result(result)
