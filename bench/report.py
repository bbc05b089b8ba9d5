"""Report benchmark: what ``mailticket report`` costs on a large ticket table.

Fills a fresh database (SQLite file, or a new PostgreSQL schema) with N tickets spread
over a year (random queues, priorities, statuses, tags, 20,000 senders; 90 % answered,
70 % resolved), then times ``build_report`` for the last 7 days, three times.
``--indexes`` first adds indexes on ticket.created_at, first_response_at and
resolved_at (not in the schema yet) to show what they would save.

    .venv/bin/python bench/report.py --tickets 200000 [--postgres URL] [--indexes]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text

from mailticket import store
from mailticket.ops.report import build_report

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 11, 9, 10, tzinfo=UTC)


def tickets(count: int, seed: int = 1) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    for _ in range(count):
        created = NOW - timedelta(days=rng.uniform(0, 365))
        answered = created + timedelta(hours=rng.uniform(0, 48))
        resolved = created + timedelta(hours=rng.uniform(1, 200))
        yield {
            "subject": "benchmark",
            "status": rng.choice(["new", "open", "pending", "resolved", "closed"]),
            "priority": rng.choice(["low", "normal", "high", "urgent"]),
            "queue": rng.choice(["general", "billing", "security", "accounts"]),
            "requester": f"user{rng.randrange(20000)}@customer.example",
            "tags": rng.choice(["", "", "vip", "security vip", "refund"]),
            "created_at": created,
            "updated_at": created,
            "due_at": created + timedelta(hours=24),
            "first_response_at": answered if rng.random() < 0.9 else None,
            "resolved_at": resolved if rng.random() < 0.7 and resolved < NOW else None,
        }


@contextmanager
def database(postgres: str | None) -> Iterator[str]:
    if postgres is None:
        with tempfile.TemporaryDirectory() as directory:
            yield f"sqlite:///{directory}/report.db"
        return
    sys.path.insert(0, str(ROOT))
    from tests.conftest import pg_schema

    with pg_schema(postgres) as url:
        yield url


def run(url: str, count: int, indexes: bool) -> dict[str, Any]:
    engine = store.make_engine(url)
    store.upgrade(engine)
    rows = list(tickets(count))
    with store.core_transaction(engine) as connection:
        for start in range(0, count, 5000):
            connection.execute(insert(store.TICKET), rows[start : start + 5000])
        if indexes:
            for column in ("created_at", "first_response_at", "resolved_at"):
                connection.execute(text(f"CREATE INDEX ix_bench_{column} ON ticket ({column})"))
        connection.execute(text("ANALYZE"))
    seconds = []
    for _ in range(3):
        started = time.perf_counter()
        with store.core_transaction(engine) as connection:
            report = build_report(connection, NOW - timedelta(days=7), NOW)
        seconds.append(round(time.perf_counter() - started, 3))
    engine.dispose()
    return {
        "database": engine.dialect.name,
        "tickets": count,
        "indexes": indexes,
        "opened_in_window": sum(report.opened.values()),
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=200_000)
    parser.add_argument("--postgres", help="a PostgreSQL URL (a new schema is used)")
    parser.add_argument("--indexes", action="store_true")
    args = parser.parse_args()
    with database(args.postgres) as url:
        print(json.dumps(run(url, args.tickets, args.indexes)))


if __name__ == "__main__":
    main()
