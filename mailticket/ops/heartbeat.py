"""Each daemon says it is alive, and what runs in it, in a row of its own.

``mailticket status`` reads those rows: which daemons are up, their listeners and IMAP
pollers, when the follow-up sweep and the outbox worker last ran; a heartbeat older than
``STALE`` is a problem (the daemon was killed, or hangs), as is no daemon at all (nothing
answers SMTP or sends the outbox).

A daemon killed with -9 leaves outbox rows claimed until their lease ends (minutes).
A daemon that starts on the same host knows for sure which earlier instances there died
(their process is gone): it takes their claims back at once. Claims of a daemon on
another host still wait for the lease, since only the lease proves that one is gone.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection, Engine

from mailticket import store
from mailticket.store import DAEMON

log = logging.getLogger(__name__)

INTERVAL: Final = timedelta(seconds=10)  # between two beats
STALE: Final = timedelta(seconds=60)  # six beats missed: the daemon is gone or hangs
WORKER_STALE: Final = timedelta(minutes=2)  # the outbox worker looks every 2 s when idle
FORGET: Final = timedelta(days=7)  # stopped daemons' rows are kept this long


@dataclass
class Liveness:
    """What the daemon's parts report, read by each beat."""

    listeners: str = ""
    pollers: str = ""
    last_sweep_at: datetime | None = None
    outbox_at: datetime | None = None


def instance_name(host: str, pid: int, started: datetime) -> str:
    return f"{host}:{pid}:{started:%Y%m%dT%H%M%SZ}"


@dataclass(frozen=True, slots=True)
class Instance:
    name: str
    host: str
    pid: int
    started_at: datetime

    @classmethod
    def this_process(cls, now: datetime) -> Instance:
        host, pid = socket.gethostname(), os.getpid()
        return cls(instance_name(host, pid, now), host, pid, now)


def register(
    connection: Connection,
    me: Instance,
    now: datetime,
    alive: Callable[[int], bool],
) -> list[str]:
    """Write this daemon's row; take back the claims of instances on this host whose
    process is gone, and forget rows stopped long ago. Returns what was taken back."""
    taken = _take_back_dead(connection, me, now, alive)
    connection.execute(delete(DAEMON).where(DAEMON.c.stopped_at < now - FORGET))
    beat(connection, me, now, Liveness())
    return taken


def _take_back_dead(
    connection: Connection, me: Instance, now: datetime, alive: Callable[[int], bool]
) -> list[str]:
    rows = connection.execute(
        select(DAEMON.c.instance, DAEMON.c.pid).where(
            DAEMON.c.host == me.host, DAEMON.c.stopped_at.is_(None)
        )
    ).all()
    notes = []
    for instance, pid in rows:
        if pid == me.pid or alive(pid):
            continue
        outbox = store.OUTBOX.c
        taken = connection.execute(
            update(store.OUTBOX)
            .where(outbox.claimed_by == instance, outbox.state == "pending")
            .values(lease_until=None, claimed_by=None)
        ).rowcount
        reason = f"died (process {pid} gone); {taken} outbox claim(s) taken back by {me.name}"
        connection.execute(
            update(DAEMON)
            .where(DAEMON.c.instance == instance)
            .values(stopped_at=now, stop_reason=reason)
        )
        notes.append(f"{instance} {reason}")
    return notes


def beat(connection: Connection, me: Instance, now: datetime, liveness: Liveness) -> None:
    """This daemon's row as it is now (written anew when the database lost it)."""
    values = {
        "beat_at": now,
        "listeners": liveness.listeners,
        "pollers": liveness.pollers,
        "last_sweep_at": liveness.last_sweep_at,
        "outbox_at": liveness.outbox_at,
    }
    found = connection.execute(
        update(DAEMON).where(DAEMON.c.instance == me.name).values(**values)
    ).rowcount
    if not found:
        connection.execute(
            insert(DAEMON),
            {"instance": me.name, "host": me.host, "pid": me.pid,
             "started_at": me.started_at, "stop_reason": "", **values},
        )  # fmt: skip


def stopped(connection: Connection, me: Instance, now: datetime) -> None:
    connection.execute(
        update(DAEMON)
        .where(DAEMON.c.instance == me.name)
        .values(beat_at=now, stopped_at=now, stop_reason="stopped")
    )


def process_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host (one we may not signal counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def run_heartbeat(
    engine: Engine,
    me: Instance,
    liveness: Callable[[], Liveness],
    clock: Callable[[], datetime],
    stop: asyncio.Event,
    executor: Executor | None = None,
    interval: timedelta = INTERVAL,
) -> None:
    """Beat every ``interval`` until ``stop``; then write that the daemon stopped."""
    loop = asyncio.get_running_loop()

    def write(step: Callable[[Connection, Instance, datetime], None]) -> None:
        with store.core_transaction(engine) as connection:  # the read-only guard first
            step(connection, me, clock())

    def one_beat(connection: Connection, me: Instance, now: datetime) -> None:
        beat(connection, me, now, liveness())

    pause = 2.0  # the second beat comes sooner: status sees the parts come up
    while True:
        try:
            await loop.run_in_executor(executor, write, one_beat)
        except Exception as exc:  # the database is down (intake says so): beat again later
            log.debug("heartbeat not written: %s", exc)
        try:
            await asyncio.wait_for(stop.wait(), pause)
            break
        except TimeoutError:
            pause = interval.total_seconds()
    try:
        await loop.run_in_executor(executor, write, stopped)
    except Exception as exc:
        log.warning("could not record the stop: %s", exc)


# -- what status reads ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DaemonHealth:
    instance: str
    started_at: datetime
    beat_at: datetime
    stopped_at: datetime | None
    stop_reason: str
    listeners: str
    pollers: str
    last_sweep_at: datetime | None
    outbox_at: datetime | None

    def alive(self, now: datetime) -> bool:
        return self.stopped_at is None and now - self.beat_at <= STALE

    def as_dict(self, now: datetime) -> dict[str, Any]:
        return {
            "instance": self.instance,
            "alive": self.alive(now),
            "started_at": _iso(self.started_at),
            "beat_at": _iso(self.beat_at),
            "stopped_at": _iso(self.stopped_at),
            "stop_reason": self.stop_reason or None,
            "listeners": [x for x in self.listeners.split(", ") if x],
            "imap_pollers": [x for x in self.pollers.split(", ") if x],
            "last_sweep_at": _iso(self.last_sweep_at),
            "outbox_worker_at": _iso(self.outbox_at),
        }

    def line(self, now: datetime) -> str:
        if self.stopped_at is not None:
            return f"{self.instance}: {self.stop_reason or 'stopped'} at {_iso(self.stopped_at)}"
        parts = [
            "up" if self.alive(now) else f"NO HEARTBEAT since {_iso(self.beat_at)}",
            self.listeners or "no listener",
            f"imap {self.pollers}" if self.pollers else "",
            f"sweep {_ago(self.last_sweep_at, now)}",
            f"outbox {_ago(self.outbox_at, now)}",
        ]
        return f"{self.instance}: " + ", ".join(p for p in parts if p)


def daemons(connection: Connection) -> list[DaemonHealth]:
    rows = connection.execute(select(DAEMON).order_by(DAEMON.c.started_at.desc())).all()
    names = [f.name for f in fields(DaemonHealth)]
    return [DaemonHealth(**{name: getattr(r, name) for name in names}) for r in rows]


def problems(found: Sequence[DaemonHealth], now: datetime, sweep_interval: timedelta) -> list[str]:
    """What an admin must look at: no daemon running, one that stopped beating, a part of
    a running daemon that stopped working."""
    sweep_stale = max(sweep_interval * 3, WORKER_STALE)
    running = [d for d in found if d.alive(now)]
    issues = []
    if not running:
        last = max((d.beat_at for d in found), default=None)
        since = f" (last heartbeat {_iso(last)})" if last else " (none has ever run here)"
        issues.append("no daemon is running: nothing answers SMTP or sends the outbox" + since)
    for d in found:
        if d.stopped_at is None and not d.alive(now) and now - d.beat_at < FORGET:
            issues.append(
                f"daemon {d.instance} stopped beating at {_iso(d.beat_at)} without stopping"
                " (killed? hung?)"
            )
    for d in running:  # a part that has not run yet counts from the daemon's start
        if now - (d.outbox_at or d.started_at) > WORKER_STALE:
            when = _iso(d.outbox_at) or f"the start ({_iso(d.started_at)})"
            issues.append(f"daemon {d.instance}: the outbox worker has not run since {when}")
        if now - (d.last_sweep_at or d.started_at) > sweep_stale:
            when = _iso(d.last_sweep_at) or f"the start ({_iso(d.started_at)})"
            issues.append(f"daemon {d.instance}: the follow-up sweep has not run since {when}")
    return issues


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _ago(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "not yet"
    return f"{max(0, int((now - moment).total_seconds()))}s ago"
