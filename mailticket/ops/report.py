"""``mailticket report``: the week at a glance for a support lead.

Counting happens in the database (GROUP BY). Percentiles need every value of a group,
and SQLite has no percentile function: the database computes the durations and sorts
them (one fetch per measure), Python cuts the groups. Durations are calendar time.

Windows: *opened* counts tickets created in it, *resolved* tickets whose ``resolved_at``
is in it, *first response* and *resolution* times the tickets that got one in it, and
*SLA* the tickets whose ``due_at`` fell in it. The backlog is now, whatever the window.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Float, and_, case, func, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from mailticket.store import TICKET

DONE = ("resolved", "closed")  # statuses that are no longer backlog
TOP = 10


@dataclass(frozen=True, slots=True)
class Spread:
    """How long a group took, in seconds: nearest-rank percentiles (values that occurred)."""

    count: int
    p50: float
    p90: float


@dataclass(frozen=True, slots=True)
class Measure:
    """One duration measured over every ticket and by (queue, priority)."""

    overall: Spread | None
    groups: dict[tuple[str, str], Spread]


@dataclass(frozen=True, slots=True)
class SlaCount:
    due: int  # tickets whose first-response time fell in the window
    breached: int


@dataclass(frozen=True, slots=True)
class Backlog:
    count: int
    oldest: datetime  # creation of the oldest ticket in that queue and status


@dataclass(frozen=True, slots=True)
class Report:
    since: datetime
    until: datetime
    opened: dict[str, int]  # by queue
    resolved: dict[str, int]
    first_response: Measure
    resolution: Measure
    sla: dict[tuple[str, str], SlaCount]  # by (queue, priority)
    top_tags: list[tuple[str, int]]
    top_senders: list[tuple[str, int]]
    backlog: dict[tuple[str, str], Backlog]  # by (queue, status)

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` shape: durations in seconds, times in ISO 8601 UTC."""
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "opened": self.opened,
            "resolved": self.resolved,
            "first_response": _measure_dict(self.first_response),
            "resolution": _measure_dict(self.resolution),
            "sla": [
                {"queue": q, "priority": p, "due": s.due, "breached": s.breached}
                for (q, p), s in self.sla.items()
            ],
            "top_tags": [{"tag": t, "tickets": n} for t, n in self.top_tags],
            "top_senders": [{"sender": s, "tickets": n} for s, n in self.top_senders],
            "backlog": [
                {"queue": q, "status": s, "tickets": b.count, "oldest": b.oldest.isoformat()}
                for (q, s), b in self.backlog.items()
            ],
        }


def _measure_dict(measure: Measure) -> dict[str, Any]:
    def spread(s: Spread) -> dict[str, Any]:
        return {"count": s.count, "p50_seconds": s.p50, "p90_seconds": s.p90}

    return {
        "all": spread(measure.overall) if measure.overall else None,
        "by_queue_priority": [
            {"queue": q, "priority": p, **spread(s)} for (q, p), s in measure.groups.items()
        ],
    }


def build_report(connection: Connection, since: datetime, now: datetime, top: int = TOP) -> Report:
    """Everything the report shows for the window [since, now]."""
    t = TICKET.c
    return Report(
        since=since,
        until=now,
        opened=_count_by_queue(connection, t.created_at, since, now),
        resolved=_count_by_queue(connection, t.resolved_at, since, now),
        first_response=_measure(connection, t.first_response_at, since, now),
        resolution=_measure(connection, t.resolved_at, since, now),
        sla=_sla(connection, since, now),
        top_tags=_top_tags(connection, since, now, top),
        top_senders=_top_senders(connection, since, now, top),
        backlog=_backlog(connection),
    )


# -- the queries --------------------------------------------------------------------------


def _within(column: ColumnElement[datetime], since: datetime, now: datetime) -> ColumnElement[bool]:
    return and_(column >= since, column <= now)


def _count_by_queue(
    connection: Connection, column: ColumnElement[datetime], since: datetime, now: datetime
) -> dict[str, int]:
    query = (
        select(TICKET.c.queue, func.count())
        .where(_within(column, since, now))
        .group_by(TICKET.c.queue)
        .order_by(TICKET.c.queue)
    )
    return {queue: int(n) for queue, n in connection.execute(query)}


def _measure(
    connection: Connection, end: ColumnElement[datetime], since: datetime, now: datetime
) -> Measure:
    """Seconds from creation to ``end`` for the tickets whose ``end`` is in the window."""
    t = TICKET.c
    seconds = SecondsBetween(t.created_at, end)
    query = (
        select(t.queue, t.priority, seconds)
        .where(_within(end, since, now))
        .order_by(t.queue, t.priority, seconds)
    )
    groups: dict[tuple[str, str], list[float]] = {}
    for (queue, priority), rows in itertools.groupby(connection.execute(query), _group_key):
        groups[(queue, priority)] = [round(float(row[2]), 3) for row in rows]
    every = list(heapq.merge(*groups.values()))
    return Measure(
        overall=spread(every) if every else None,
        groups={key: spread(values) for key, values in groups.items()},
    )


def _group_key(row: Sequence[Any]) -> tuple[str, str]:
    return row[0], row[1]


def _sla(connection: Connection, since: datetime, now: datetime) -> dict[tuple[str, str], SlaCount]:
    """Breached: answered after ``due_at``, or not answered (nor closed) by then."""
    t = TICKET.c
    unanswered = and_(
        t.first_response_at.is_(None),
        or_(t.resolved_at.is_(None), t.resolved_at > t.due_at),
        or_(t.closed_at.is_(None), t.closed_at > t.due_at),
    )
    breached = case((or_(t.first_response_at > t.due_at, unanswered), 1), else_=0)
    query = (
        select(t.queue, t.priority, func.count(), func.sum(breached))
        .where(_within(t.due_at, since, now))
        .group_by(t.queue, t.priority)
        .order_by(t.queue, t.priority)
    )
    return {
        (q, p): SlaCount(int(due), int(late or 0)) for q, p, due, late in connection.execute(query)
    }


def _top_tags(
    connection: Connection, since: datetime, now: datetime, top: int
) -> list[tuple[str, int]]:
    """The database counts each distinct tag set; Python splits the (few) sets into words."""
    t = TICKET.c
    query = (
        select(t.tags, func.count())
        .where(_within(t.created_at, since, now), t.tags != "")
        .group_by(t.tags)
    )
    counts: Counter[str] = Counter()
    for tags, n in connection.execute(query):
        for tag in set(tags.split()):
            counts[tag] += int(n)
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:top]


def _top_senders(
    connection: Connection, since: datetime, now: datetime, top: int
) -> list[tuple[str, int]]:
    t = TICKET.c
    n = func.count().label("n")
    query = (
        select(t.requester, n)
        .where(_within(t.created_at, since, now))
        .group_by(t.requester)
        .order_by(n.desc(), t.requester)
        .limit(top)
    )
    return [(sender, int(count)) for sender, count in connection.execute(query)]


def _backlog(connection: Connection) -> dict[tuple[str, str], Backlog]:
    t = TICKET.c
    query = (
        select(t.queue, t.status, func.count(), func.min(t.created_at))
        .where(t.status.not_in(DONE))
        .group_by(t.queue, t.status)
        .order_by(t.queue, t.status)
    )
    return {(q, s): Backlog(int(n), oldest) for q, s, n, oldest in connection.execute(query)}


# -- durations and percentiles ------------------------------------------------------------


def spread(values: Sequence[float]) -> Spread:
    """p50 and p90 of sorted ``values``."""
    return Spread(len(values), percentile(values, 50), percentile(values, 90))


def percentile(ordered: Sequence[float], p: float) -> float:
    """Nearest rank: the smallest value with at least p % of the values at or below it."""
    if not ordered:
        raise ValueError("percentile of no values")
    return ordered[max(0, math.ceil(p * len(ordered) / 100) - 1)]


class SecondsBetween(FunctionElement[float]):
    """``end - start`` in seconds, in SQL (each database spells it its own way)."""

    type = Float()
    inherit_cache = True
    name = "seconds_between"


@compiles(SecondsBetween, "sqlite")
def _seconds_sqlite(element: SecondsBetween, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = _operands(element, compiler, kw)
    return f"((julianday({end}) - julianday({start})) * 86400.0)"


@compiles(SecondsBetween, "postgresql")
def _seconds_postgresql(element: SecondsBetween, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = _operands(element, compiler, kw)
    return f"EXTRACT(EPOCH FROM ({end} - {start}))"


def _operands(element: SecondsBetween, compiler: SQLCompiler, kw: dict[str, Any]) -> list[str]:
    clauses: Iterable[Any] = element.clauses
    return [compiler.process(clause, **kw) for clause in clauses]
