"""Prometheus metrics on ``metrics.port``.

Counters and the intake histogram live in this process (prometheus_client's default
registry, next to its process and GC metrics); the daemon calls the ``observe_*``
functions. The gauges (outbox, quarantine, overdue tickets) are what the database
says at scrape time, so several daemons on one database all report the same truth;
a scrape while the database is down still answers, with ``mailticket_database_up 0``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from threading import Thread
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from mailticket import store
from mailticket.errors import TemporaryFailure

log = logging.getLogger(__name__)

SOURCES = ("smtp", "imap", "pipe", "import")
OUTCOMES = ("stored", "duplicate", "quarantined", "ignored", "tempfail")
DELIVERIES = ("sent", "retrying", "uncertain", "failed")
UNSENT = ("pending", "failed", "uncertain")  # outbox states worth a gauge (sent ones pile up)

disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series: noise

MAILS = Counter(
    "mailticket_mails_received", "Mails through intake, by path and outcome", ["source", "outcome"]
)
AUTOMATIC = Counter(
    "mailticket_mails_automatic", "Mails judged automatic (never answered)", ["source"]
)
OPENED = Counter("mailticket_tickets_opened", "Tickets opened")
INTAKE_SECONDS = Histogram(
    "mailticket_intake_seconds",
    "From the raw mail to its commit (parse, decide, store)",
    ["source"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
DELIVERED = Counter(
    "mailticket_outbound_deliveries", "Delivery attempts of outgoing mail, by result", ["result"]
)
REMINDERS = Counter("mailticket_reminders_sent", "Time-driven mails sent, by kind", ["kind"])
RELOADS = Counter("mailticket_rules_reloads", "rules.yaml reloads, by result", ["result"])

for _source in SOURCES:  # every series exists from the start, so rate() sees the first one
    AUTOMATIC.labels(_source)
    INTAKE_SECONDS.labels(_source)
    for _outcome in OUTCOMES:
        MAILS.labels(_source, _outcome)
for _result in DELIVERIES:
    DELIVERED.labels(_result)
for _result in ("ok", "failed"):
    RELOADS.labels(_result)


# -- what the daemon calls ------------------------------------------------------------------


def observe_intake(
    source: str, outcome: str, seconds: float, *, opened: bool = False, automatic: bool = False
) -> None:
    """One mail through intake: ``outcome`` is Result.outcome, or "tempfail"."""
    MAILS.labels(source, outcome).inc()
    INTAKE_SECONDS.labels(source).observe(seconds)
    if opened:
        OPENED.inc()
    if automatic:
        AUTOMATIC.labels(source).inc()


def observe_delivery(state: str, outcome: str) -> None:
    """One attempt: the outbox row's new ``state`` and the transport's ``outcome``."""
    if outcome == "uncertain":
        result = "uncertain"
    else:
        result = state if state in ("sent", "failed") else "retrying"
    DELIVERED.labels(result).inc()


def observe_reminder(kind: str) -> None:
    REMINDERS.labels(kind).inc()


def observe_rules_reload(ok: bool) -> None:
    RELOADS.labels("ok" if ok else "failed").inc()


# -- the exporter ---------------------------------------------------------------------------


Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class MetricsServer:
    """The HTTP exporter; ``close`` stops it (also as a context manager)."""

    port: int
    _server: WSGIServer = field(repr=False)
    _thread: Thread = field(repr=False)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def start_metrics(port: int, host: str, engine: Engine, clock: Clock = utcnow) -> MetricsServer:
    """Serve /metrics on host:port (0: any free port) in a thread of its own."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Exposition(DatabaseCollector(engine, clock)))
    server, thread = start_http_server(port, addr=host, registry=registry)
    bound = int(server.server_port)
    log.info("metrics on http://%s:%s/metrics", host, bound)
    return MetricsServer(bound, server, thread)


class _Exposition(Collector):
    """One exporter's view: the process-wide registry plus this database's gauges.

    A registry per exporter, so two exporters in one process (tests, two engines)
    never clash over the gauge names.
    """

    def __init__(self, database: DatabaseCollector) -> None:
        self._database = database

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()
        yield from self._database.collect()


class DatabaseCollector(Collector):
    """Gauges read from the database at each scrape: counts over indexed columns only."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock
        self._was_up = True

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("mailticket_database_up", "1 when the last scrape read the database")
        try:
            with store.core_transaction(self._engine) as connection:
                families = list(_database_gauges(connection, self._clock()))
        except (SQLAlchemyError, TemporaryFailure) as exc:
            if self._was_up:
                log.warning("metrics: database unavailable: %s", str(exc).splitlines()[0])
            self._was_up = False
            up.add_metric([], 0)
            yield up
            return
        self._was_up = True
        up.add_metric([], 1)
        yield up
        yield from families


def _database_gauges(connection: Connection, now: datetime) -> Iterator[Metric]:
    outbox = GaugeMetricFamily(
        "mailticket_outbox_messages", "Outgoing mails not sent yet, by state", labels=["state"]
    )
    query = (
        select(store.OUTBOX.c.state, func.count())
        .where(store.OUTBOX.c.state.in_(UNSENT))
        .group_by(store.OUTBOX.c.state)
    )
    counts = {str(state): int(n) for state, n in connection.execute(query)}
    for state in UNSENT:
        outbox.add_metric([state], counts.get(state, 0))
    yield outbox
    inbound = store.INBOUND.c
    quarantined = select(func.count()).where(inbound.state == "quarantined")
    yield GaugeMetricFamily(
        "mailticket_quarantined_mails",
        "Mails waiting in `mailticket quarantine list`",
        value=connection.execute(quarantined).scalar_one(),
    )
    t = store.TICKET.c
    overdue = select(func.count()).where(
        t.status.in_(("new", "open")), t.first_response_at.is_(None), t.due_at < now
    )
    yield GaugeMetricFamily(
        "mailticket_overdue_tickets",
        "Open tickets past their first-response time",
        value=connection.execute(overdue).scalar_one(),
    )
