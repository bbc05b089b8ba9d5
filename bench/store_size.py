"""Store size: ``tickets list`` and threading a reply with 10,000 vs 1,000,000 tickets.

Both should cost what the answer costs, not what the table holds: the ratio of the big
store's time to the small one's should stay close to 1. Each size gets a fresh store
(a SQLite file in a temporary directory; with --postgres a scratch database created and
dropped), filled in bulk (executemany on SQLite, COPY on PostgreSQL) like a desk with
years of history: a backlog of 1,000 tickets that are not closed (most of them recent),
every other ticket closed; per ticket its requester as participant, the request and our
acknowledgement in the conversation.

Timed with the functions the CLI and the intake use (median of repeated calls):

- ``tickets list`` in four forms: no filter, ``--status open``, ``--status open --queue
  payments``, ``--queue payments`` (``store.tickets`` + ``views.ticket_summary``);
- threading a reply: by tag (``SessionView.ticket``, FOR UPDATE as in intake), by a
  References Message-ID (``store.ticket_for_message_ids``), and the intake's whole
  ``decide()`` for a reply carrying the tag or a References header.

    .venv/bin/python bench/store_size.py                                  # SQLite, 10k and 1M
    .venv/bin/python bench/store_size.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import Any

from sqlalchemy import Table, create_engine, insert, make_url, text
from sqlalchemy.engine import Connection, Engine

from mailticket import store
from mailticket.decide.decision import Context, decide
from mailticket.parse.mail import InboundMail, parse
from mailticket.runtime.core import Core, build_core
from mailticket.settings import Settings, load_settings
from mailticket.store import MESSAGE, PARTICIPANT, TICKET, views
from mailticket.store.session_view import SessionView

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
HISTORY = timedelta(days=5 * 365)
BACKLOG = 1000  # tickets not closed, whatever the store's size
QUEUES = (
    ("general",) * 10 + ("accounts",) * 4 + ("payments",) * 3 + ("security",) * 2 + ("feedback",)
)
OPEN_STATUSES = ("new", "open", "open", "pending")
CHUNK = 20_000
LOOKUPS = 300
LISTS = 15
LIST_FORMS: dict[str, tuple[str | None, str | None]] = {  # --status, --queue
    "list": (None, None),
    "list --status open": ("open", None),
    "list --status open --queue payments": ("open", "payments"),
    "list --queue payments": (None, "payments"),
}


# -- filling -------------------------------------------------------------------------------


def backlog(size: int, rng: random.Random) -> set[int]:
    """Numbers of the tickets still open: 90 % among the newest 5,000, the rest anywhere."""
    count = min(BACKLOG, size // 2)
    recent = range(max(1, size - 5000), size + 1)
    chosen = set(rng.sample(recent, min(len(recent), count * 9 // 10)))
    while len(chosen) < count:
        chosen.add(rng.randint(1, size))
    return chosen


def ticket_rows(size: int, seed: int) -> Iterator[tuple[dict[str, Any], ...]]:
    """(ticket, participant, request message, acknowledgement message) per ticket."""
    rng = random.Random(seed)
    still_open = backlog(size, rng)
    step = HISTORY / size
    for number in range(1, size + 1):
        created = NOW - HISTORY + step * number
        requester = f"user{rng.randrange(size // 3 + 1)}@customer{number % 97}.example"
        status = rng.choice(OPEN_STATUSES) if number in still_open else "closed"
        closed = status == "closed"
        ticket = {
            "number": number, "subject": f"Cannot withdraw, order {number}", "status": status,
            "priority": "normal", "queue": rng.choice(QUEUES), "requester": requester,
            "assignee": None, "tags": "", "language": "en", "linked_to": None,
            "created_at": created, "updated_at": created + timedelta(hours=2),
            "due_at": created + timedelta(hours=24),
            "first_response_at": created + timedelta(hours=1) if status != "new" else None,
            "resolved_at": None, "closed_at": created + timedelta(days=3) if closed else None,
            "fields": "{}", "due_derivation": "", "pending_since": None,
            "agent_reminded_at": None, "escalated_at": None, "requester_reminded_at": None,
            "next_action_at": None if closed else created + timedelta(hours=18),
        }  # fmt: skip
        participant = {"ticket_number": number, "address": requester, "role": "requester"}
        yield (
            ticket,
            participant,
            message(number, "in", "request", f"<req-{number}@customer.example>", requester, created),
            message(number, "out", "ack", f"<MT-{number}.ack@example.com>", "support@example.com", created),
        )  # fmt: skip


def message(
    number: int, direction: str, kind: str, message_id: str, sender: str, at: datetime
) -> dict[str, Any]:
    return {
        "ticket_number": number, "direction": direction, "kind": kind,
        "message_id": message_id, "from_addr": sender, "to_addrs": "", "subject": "order",
        "date": at, "text": "Hello, my withdrawal has not arrived.", "html": "",
        "lossy": False, "inbound_id": None,
    }  # fmt: skip


def fill(engine: Engine, size: int, seed: int) -> None:
    """Bulk insert in chunks: executemany on SQLite, COPY on PostgreSQL."""
    tables = (TICKET, PARTICIPANT, MESSAGE, MESSAGE)
    write = _copy if engine.dialect.name == "postgresql" else _executemany
    chunk: list[tuple[dict[str, Any], ...]] = []
    with engine.begin() as connection:
        for rows in ticket_rows(size, seed):
            chunk.append(rows)
            if len(chunk) == CHUNK:
                write(connection, tables, chunk)
                chunk = []
        if chunk:
            write(connection, tables, chunk)
        if engine.dialect.name == "postgresql":  # numbers were given: move the sequence on
            sequence = "pg_get_serial_sequence('ticket', 'number')"
            connection.execute(text(f"SELECT setval({sequence}, {size})"))


def _executemany(
    connection: Connection, tables: Sequence[Table], chunk: Sequence[tuple[dict[str, Any], ...]]
) -> None:
    for column, table in enumerate(tables):
        connection.execute(insert(table), [rows[column] for rows in chunk])


def _copy(
    connection: Connection, tables: Sequence[Table], chunk: Sequence[tuple[dict[str, Any], ...]]
) -> None:
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    for column, table in enumerate(tables):
        names = list(chunk[0][column])
        with cursor.copy(f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as copy:
            for rows in chunk:
                copy.write_row([_plain(rows[column][name]) for name in names])


def _plain(value: Any) -> Any:
    """Naive UTC, as the UTCDateTime column stores it."""
    return value.astimezone(UTC).replace(tzinfo=None) if isinstance(value, datetime) else value


# -- measuring ------------------------------------------------------------------------------


@dataclass
class Store:
    """One filled store and the mails to thread into it."""

    size: int
    core: Core
    fill_s: float
    anywhere: list[int]  # ticket numbers across the whole history, for single lookups
    replies: dict[str, list[tuple[InboundMail, int]]]  # by tag / by References -> ticket


Probe = Callable[[Store, int, Connection | None], object]


def interleaved(
    stores: Sequence[Store], probe: Probe, repeat: int, *, in_transaction: bool = False
) -> dict[int, float]:
    """Median ms of ``probe`` per store; the stores take turns, so a change in the
    machine's load hits every size alike. Sample -1 warms caches and is not counted."""
    samples: dict[int, list[float]] = {store.size: [] for store in stores}
    with contextlib.ExitStack() as stack:
        connections = {
            store.size: stack.enter_context(store.core.engine.begin()) if in_transaction else None
            for store in stores
        }
        for index in range(-1, repeat):
            for store in stores:
                started = time.perf_counter()
                probe(store, max(index, 0), connections[store.size])
                if index >= 0:
                    samples[store.size].append(time.perf_counter() - started)
    return {size: statistics.median(values) * 1000 for size, values in samples.items()}


def listing(status: str | None, queue: str | None) -> Probe:
    """What ``mailticket tickets list [--status S] [--queue Q]`` does, without printing."""

    def probe(store_: Store, index: int, connection: Connection | None) -> object:
        with store.transaction(store_.core.engine) as session:
            tickets = store.tickets(session, status=status, queue=queue)
            return [views.ticket_summary(ticket, "MT") for ticket in tickets]

    return probe


def by_tag(store_: Store, index: int, connection: Connection | None) -> object:
    assert connection is not None
    return SessionView(connection, lock=True).ticket(store_.anywhere[index])


def by_references(store_: Store, index: int, connection: Connection | None) -> object:
    assert connection is not None
    number = store_.anywhere[index]
    wanted = [f"<req-{number}@customer.example>", "<unknown@elsewhere.example>"]
    found = store.ticket_for_message_ids(connection, wanted)
    assert found == number, (found, number)
    return found


def deciding(kind: str) -> Probe:
    """The intake's whole decision for a reply (reads under FOR UPDATE, as intake does)."""

    def probe(store_: Store, index: int, connection: Connection | None) -> object:
        assert connection is not None
        core = store_.core
        mail, number = store_.replies[kind][index]
        context = Context(core.settings.tickets, core.rules(), core.signer, NOW)
        decision = decide(mail, SessionView(connection, lock=True), context)
        assert decision.ticket == number, (decision.thread, number)
        return decision

    return probe


def reply(number: int, requester: str, *, tagged: bool) -> InboundMail:
    mail = EmailMessage()
    mail["From"] = requester
    mail["To"] = "support@example.com"
    mail["Subject"] = f"Re: [MT-{number}] Cannot withdraw" if tagged else "Re: Cannot withdraw"
    mail["Message-ID"] = f"<reply-{number}-{uuid.uuid4().hex[:8]}@customer.example>"
    if not tagged:
        mail["In-Reply-To"] = mail["References"] = f"<req-{number}@customer.example>"
    mail.set_content("It is still not there.\n")
    return parse(mail.as_bytes(policy=SMTP))


def measure(stores: Sequence[Store], lookups: int, lists: int) -> dict[str, dict[int, float]]:
    timings = {
        name: interleaved(stores, listing(status, queue), lists)
        for name, (status, queue) in LIST_FORMS.items()
    }
    timings["thread: SessionView.ticket (tag)"] = interleaved(
        stores, by_tag, lookups, in_transaction=True
    )
    timings["thread: ticket_for_message_ids (References)"] = interleaved(
        stores, by_references, lookups, in_transaction=True
    )
    for kind in ("tag", "References"):
        timings[f"thread: decide() a reply ({kind})"] = interleaved(
            stores, deciding(kind), min(lookups, BACKLOG // 3), in_transaction=True
        )
    return timings


# -- stores ---------------------------------------------------------------------------------


@contextlib.contextmanager
def scratch_database(base: str) -> Iterator[str]:
    """A PostgreSQL database of our own, dropped afterwards (even when connections linger)."""
    name = f"mt_store_size_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
        admin.dispose()


def settings_for(workdir: Path, url: str) -> Settings:
    config = workdir / "mailticket.toml"
    config.write_text(
        f"[database]\nurl = {json.dumps(url)}\n"
        f"[outbound]\nmaildir = {json.dumps(str(workdir / 'outbox'))}\n"
        f'[tickets]\nsupport_address = "support@example.com"\n'
        f"rules_file = {json.dumps(str(ROOT / 'rules.yaml'))}\n"
        f'templates_dir = {json.dumps(str(ROOT / "templates"))}\nsecret = "bench"\n',
        encoding="utf-8",
    )
    return load_settings(config, environ={})


def open_store(
    stack: contextlib.ExitStack, size: int, args: argparse.Namespace, workdir: Path
) -> Store:
    """A fresh store of ``size`` tickets, filled, with its samples drawn."""
    directory = workdir / str(size)
    directory.mkdir()
    if args.postgres:
        url = stack.enter_context(scratch_database(args.postgres))
    else:
        url = f"sqlite:///{directory / 'mailticket.db'}"
    core = stack.enter_context(build_core(settings_for(directory, url), clock=lambda: NOW))
    started = time.perf_counter()
    fill(core.engine, size, args.seed)
    if args.postgres:  # autovacuum would have done it on a store that grew over years
        with core.engine.connect() as connection:
            connection.execute(text("ANALYZE"))
            connection.commit()
    filled = time.perf_counter() - started
    rng = random.Random(args.seed + 1)
    with core.engine.connect() as connection:  # replies come to the tickets still open
        still_open = connection.execute(
            text("SELECT number, requester FROM ticket WHERE status <> 'closed'")
        ).all()
    chosen = rng.sample(still_open, min(BACKLOG // 3, len(still_open)))
    replies = {
        kind: [(reply(n, who, tagged=kind == "tag"), n) for n, who in chosen]
        for kind in ("tag", "References")
    }
    anywhere = [rng.randint(1, size) for _ in range(args.lookups)]
    print(f"{size:,} tickets: filled in {filled:.0f} s", flush=True)
    return Store(size, core, filled, anywhere, replies)


def report(backend: str, stores: Sequence[Store], timings: dict[str, dict[int, float]]) -> None:
    base = stores[0].size
    sizes = [store.size for store in stores]
    ratio_heads = "".join(f"{f'{size // 1000:,}k/{base // 1000:,}k':>12}" for size in sizes[1:])
    print(f"\n{backend}, median ms{'':<37}" + "".join(f"{s:>12,}" for s in sizes) + ratio_heads)
    print(f"  {'fill (s)':<54}" + "".join(f"{s.fill_s:>12.1f}" for s in stores))
    for name, by_size in timings.items():
        values = "".join(f"{by_size[size]:>12.3f}" for size in sizes)
        ratios = "".join(f"{by_size[size] / by_size[base]:>12.2f}" for size in sizes[1:])
        print(f"  {name:<54}{values}{ratios}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--postgres", metavar="URL", help="PostgreSQL instead of SQLite")
    parser.add_argument("--lookups", type=int, default=LOOKUPS, help="samples per lookup")
    parser.add_argument("--lists", type=int, default=LISTS, help="samples per list form")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    backend = "postgresql" if args.postgres else "sqlite"
    with (
        tempfile.TemporaryDirectory(prefix="bench-store-size-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        stores = [open_store(stack, size, args, Path(tmp)) for size in args.sizes]
        timings = measure(stores, args.lookups, args.lists)
    report(backend, stores, timings)
    fills = {store.size: store.fill_s for store in stores}
    print(json.dumps({"backend": backend, "fill_s": fills, "median_ms": timings}))


if __name__ == "__main__":
    main()
