"""Group commit: several units of work (one mail each) in one transaction, one commit.

    first try      every unit in one transaction, no savepoints: the common case, cheap
    a unit raises  roll back; the same batch again, each unit in a SAVEPOINT; a unit
                   that fails again is undone alone and replaced by what it stores on
                   failure (intake: the mail raw, quarantined); still one commit
    a conflict     (a PostgreSQL deadlock or serialization failure between daemons)
                   each unit alone, retried with a short backoff
    store down     every unit gets the TemporaryFailure: nothing was committed

A unit's value is only handed out after its commit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy.engine import Connection, Engine

from mailticket.errors import TemporaryFailure
from mailticket.store import Conflict, core_transaction, is_unavailable

log = logging.getLogger(__name__)
T = TypeVar("T")
RETRIES = 3  # a unit alone, after a conflict


@dataclass(frozen=True, slots=True)
class Unit(Generic[T]):
    """One piece of work inside a shared transaction."""

    run: Callable[[Connection], T]  # raises when it fails: the batch is run again
    failed: Callable[[Connection, Exception], T]  # in its place, when ``run`` fails again


@dataclass(frozen=True, slots=True)
class Done(Generic[T]):
    """How one unit ended: its value once committed, or the error that stopped it."""

    value: T | None = None
    error: BaseException | None = None

    def result(self) -> T:
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]  # None only when T allows it


def run_batch(engine: Engine, units: Sequence[Unit[Any]]) -> list[Done[Any]]:
    """Run ``units`` in one transaction and commit once (see the module docstring)."""
    for guarded in (False, True):
        try:
            return _together(engine, units, guarded=guarded)
        except Conflict as exc:
            if len(units) > 1:
                log.warning("%s: storing the %d mails of the batch one by one", exc, len(units))
            return [_alone(engine, unit) for unit in units]
        except TemporaryFailure as exc:
            return [Done(error=exc) for _ in units]
        except Exception:
            if guarded:  # only a bug in run_batch itself gets here
                raise
    raise AssertionError("unreachable")


def _together(engine: Engine, units: Sequence[Unit[Any]], *, guarded: bool) -> list[Done[Any]]:
    with core_transaction(engine) as connection:
        if not guarded:
            return [Done(unit.run(connection)) for unit in units]
        return [_in_savepoint(connection, unit) for unit in units]


def _in_savepoint(connection: Connection, unit: Unit[Any]) -> Done[Any]:
    try:
        with connection.begin_nested():
            return Done(unit.run(connection))
    except Exception as exc:
        if is_unavailable(exc):
            raise
        error = exc
    try:
        with connection.begin_nested():
            return Done(unit.failed(connection, error))
    except Exception as exc:
        if is_unavailable(exc):
            raise
        return Done(error=exc)


def _alone(engine: Engine, unit: Unit[Any]) -> Done[Any]:
    error: TemporaryFailure | None = None
    for attempt in range(RETRIES + 1):
        if attempt:
            time.sleep(0.02 * 2**attempt)  # let the other transaction finish
        try:
            return _together(engine, [unit], guarded=True)[0]
        except Conflict as exc:
            error = exc
        except TemporaryFailure as exc:
            return Done(error=exc)
    return Done(error=error)
