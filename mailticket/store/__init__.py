"""The database: engine, sessions, migrations, group commit, and the named queries.

Every SQLAlchemy connection error is mapped to TemporaryFailure here, so entry points
answer 451 / exit 75 without knowing SQLAlchemy; a lock conflict between daemons
(PostgreSQL deadlock or serialization failure) is the subclass Conflict, worth retrying,
and a database that takes no writes (read-only files or server) the subclass ReadOnly.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, delete, event, false, func, text, update
from sqlalchemy import select as core_select
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    IntegrityError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
)
from sqlmodel import Session, SQLModel, col, create_engine, select

from mailticket.decide.decision_parts import GuardHistory, GuardWindows
from mailticket.errors import ConfigError, StorageFull, TemporaryFailure
from mailticket.store.models import Setting, Ticket
from mailticket.store.sqlite_guard import ReadOnlyGuard, file_problem

_TABLES = SQLModel.metadata.tables  # Core handles for the hot path (no ORM unit of work)
TICKET, PARTICIPANT, INBOUND = _TABLES["ticket"], _TABLES["participant"], _TABLES["inbound"]
MESSAGE, ATTACHMENT, EVENT = _TABLES["message"], _TABLES["attachment"], _TABLES["event"]
OUTBOX, UNDELIVERABLE = _TABLES["outbox"], _TABLES["undeliverable"]
AUTO_PAUSE, DAEMON = _TABLES["auto_pause"], _TABLES["daemon"]

MIGRATIONS = Path(__file__).parent / "migrations"
SCHEMA_HEAD = "0007"  # the newest migration; a test keeps it equal to Alembic's head


def make_engine(url: str, *, busy_timeout: float = 5.0) -> Engine:
    """An engine tuned for its backend: SQLite in WAL mode with a busy timeout. A URL
    that names no database SQLAlchemy knows is a ConfigError (one line, never a traceback
    that an MTA's pipe would bounce)."""
    try:
        return _engine(url, busy_timeout)
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        raise ConfigError(f"database.url: {exc}") from None


def _engine(url: str, busy_timeout: float) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"timeout": busy_timeout, "check_same_thread": False}
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin_immediate)
        database = engine.url.database
        if database and database != ":memory:" and not database.startswith("file:"):
            turn = _TURNS[engine] = WriteTurn(Path(database), busy_timeout)
            event.listen(
                engine, "do_connect", lambda _d, _r, args, kw: turn.guard.opening(args, kw)
            )
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=8)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # let the "begin" hook issue BEGIN IMMEDIATE
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin_immediate(connection: Any) -> None:
    """Take the write lock at BEGIN so two writers wait (busy timeout), never deadlock."""
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def upgrade(engine: Engine) -> bool:
    """Bring the schema to the newest migration; False when it already was.

    The check is one query, so ``ingest`` (a process per mail) does not pay for
    importing Alembic when there is nothing to migrate.
    """
    try:
        if schema_version(engine) == SCHEMA_HEAD:
            return False
        from alembic import command
        from alembic.config import Config as AlembicConfig

        config = AlembicConfig()
        config.set_main_option("script_location", str(MIGRATIONS))
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        return True
    except (OperationalError, InterfaceError) as exc:
        raise TemporaryFailure(f"database unavailable: {_first_line(exc)}") from exc


def schema_version(engine: Engine) -> str | None:
    """The applied migration, or None on an empty database."""
    with engine.connect() as connection:
        if not engine.dialect.has_table(connection, "alembic_version"):
            return None
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


class Conflict(TemporaryFailure):
    """The database undid our transaction to break a deadlock (or a serialization
    failure): nothing was committed, and running it again is expected to succeed."""


class ReadOnly(TemporaryFailure):
    """The database takes no writes now: its files or file system turned read-only, or
    PostgreSQL is read-only (a standby, ``default_transaction_read_only``)."""


_CONFLICTS = frozenset({"40P01", "40001"})  # deadlock_detected, serialization_failure
_DISK_FULL, _SQLITE_FULL = "53100", 13
_READ_ONLY, _SQLITE_READONLY = "25006", 8  # read_only_sql_transaction; SQLITE_READONLY_*


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """One unit of work; database outages surface as TemporaryFailure."""
    with (
        _turn(engine),
        _mapped_errors(),
        Session(engine, expire_on_commit=False) as session,
        session.begin(),
    ):
        yield session


@contextmanager
def core_transaction(engine: Engine) -> Iterator[Connection]:
    """``transaction`` without the ORM, for the hot path (intake's batches)."""
    with _turn(engine), _mapped_errors(), engine.begin() as connection:
        yield connection


@contextmanager
def rolled_back(engine: Engine) -> Iterator[Connection]:
    """``core_transaction`` whose work is always undone: a rehearsal."""
    with _turn(engine), _mapped_errors(), engine.connect() as connection:
        transaction = connection.begin()
        try:
            yield connection
        finally:
            transaction.rollback()


class WriteTurn:
    """SQLite's writers take turns here first: a thread lock in the process, an flock on
    the database file between processes (the daemon and its store process, the CLI).

    SQLite's own busy handler makes a waiting writer sleep 1, 2, 5 ... 100 ms between
    tries, so one that commits in a tight loop (the store process under load) starves
    the others (the outbox's claims). A waiter here gets the turn as soon as it is
    free. flock does not touch SQLite's own POSIX locks on the same file.
    """

    def __init__(self, path: Path, timeout: float) -> None:
        self.path = path
        self._timeout = timeout
        self._lock = threading.Lock()
        self._fd: int | None = None
        self.guard = ReadOnlyGuard(path)  # files turned read-only: no transaction, no SIGBUS

    @contextmanager
    def held(self, engine: Engine) -> Iterator[None]:
        if not self._lock.acquire(timeout=self._timeout):
            raise TemporaryFailure(f"database busy: no turn to write in {self._timeout:g}s")
        try:
            if problem := self.guard.problem(engine):
                raise ReadOnly(f"database read-only: {problem}")
            fd = self._file()
            self._wait_for(fd)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            self._lock.release()

    def _file(self) -> int:
        if self._fd is None:
            try:
                self._fd = os.open(self.path, os.O_RDONLY | os.O_CREAT, 0o600)
            except OSError as exc:
                raise TemporaryFailure(f"database unavailable: {exc}") from exc
        return self._fd

    def _wait_for(self, fd: int) -> None:
        deadline = time.monotonic() + self._timeout
        pause = 0.0002
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TemporaryFailure(
                        f"database busy: another process kept it for {self._timeout:g}s"
                    ) from None
                time.sleep(pause)
                pause = min(pause * 2, 0.002)


_TURNS: weakref.WeakKeyDictionary[Engine, WriteTurn] = weakref.WeakKeyDictionary()


def _turn(engine: Engine) -> AbstractContextManager[None]:
    turn = _TURNS.get(engine)
    return turn.held(engine) if turn is not None else nullcontext()


@contextmanager
def _mapped_errors() -> Iterator[None]:
    try:
        yield
    except DBAPIError as exc:
        if not is_unavailable(exc):
            raise
        if getattr(exc.orig, "sqlstate", None) in _CONFLICTS:
            raise Conflict(f"lock conflict: {_first_line(exc)}") from exc
        if _is_full(exc):
            raise StorageFull(f"database storage full: {_first_line(exc)}") from exc
        if _is_read_only(exc):
            raise ReadOnly(f"database read-only: {_first_line(exc)}") from exc
        raise TemporaryFailure(f"database unavailable: {_first_line(exc)}") from exc


def _is_full(exc: DBAPIError) -> bool:
    """SQLite's SQLITE_FULL, PostgreSQL's disk_full, or ENOSPC in the message (PostgreSQL
    reports a failed WAL or data file write as an I/O error naming it)."""
    orig = exc.orig
    return (
        getattr(orig, "sqlite_errorcode", None) == _SQLITE_FULL
        or getattr(orig, "sqlstate", None) == _DISK_FULL
        or "no space left on device" in str(orig).lower()
    )


def write_problem(engine: Engine) -> str | None:
    """Why the database takes no write now, or None: its files, then a write rehearsed
    and rolled back."""
    turn = _TURNS.get(engine)
    found = file_problem(turn.path) if turn is not None else None
    if found is not None:
        return f"database read-only: {found}"
    try:
        with rolled_back(engine) as connection:
            connection.execute(_NO_WRITE)
    except ReadOnly as exc:
        return str(exc)
    return None


def _is_read_only(exc: DBAPIError) -> bool:
    """SQLite's SQLITE_READONLY (any extended code) or PostgreSQL's read-only transaction."""
    code = getattr(exc.orig, "sqlite_errorcode", None)
    return (isinstance(code, int) and code & 0xFF == _SQLITE_READONLY) or getattr(
        exc.orig, "sqlstate", None
    ) == _READ_ONLY


def connection_of(session: Session | Connection) -> Connection:
    """The Core connection of a session's transaction (or the connection itself)."""
    return session if isinstance(session, Connection) else session.connection()


def is_unavailable(exc: BaseException) -> bool:
    """A connection, lock or server problem, or a database that takes no writes (as
    opposed to a bad statement or row)."""
    return isinstance(exc, OperationalError | InterfaceError) or (
        isinstance(exc, DBAPIError) and (exc.connection_invalidated or _is_read_only(exc))
    )


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def secret(engine: Engine, configured: str | None) -> bytes:
    """The Message-ID signing secret: configured, or generated once into the database.

    Daemons starting together on a new database may both generate one: the first
    commit wins and every daemon uses that one."""
    if configured:
        return configured.encode()
    if (stored := _setting(engine, _SECRET)) is not None:
        return stored.encode()
    try:
        with transaction(engine) as session:
            session.add(Setting(key=_SECRET, value=secrets.token_hex(32)))
    except IntegrityError:
        pass  # another process stored its secret first
    stored = _setting(engine, _SECRET)
    assert stored is not None, "a committed secret vanished"
    return stored.encode()


_SECRET = "tickets.secret"


def _setting(engine: Engine, key: str) -> str | None:
    with transaction(engine) as session:
        row = session.get(Setting, key)
        return None if row is None else row.value


def database_missing(url: str) -> str | None:
    """Why a command that expects an existing database should not create one, or None.

    A SQLite file that does not exist means a wrong path (a relative one, a mistyped
    one), not a new installation: ``ingest`` or ``import`` would fill a database the
    daemon does not read. Only ``db upgrade`` and ``serve`` create one."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None  # not a URL: the engine says so
    name = parsed.database
    if parsed.get_backend_name() != "sqlite" or not name or name == ":memory:":
        return None
    if name.startswith("file:") or Path(name).exists():
        return None
    return f"{name} does not exist: run `mailticket db upgrade` or `serve` first"


# -- named queries ----------------------------------------------------------------------
#
# The hot ones are built once, with bind parameters: SQLAlchemy then finds the compiled
# form by the statement's memoized cache key, where a statement built per call costs
# ~50 µs of Python to build and key (intake runs about ten a mail).

_INBOUND_EXISTS = core_select(INBOUND.c.id).where(INBOUND.c.dedupe_key == bindparam("key")).limit(1)
_DELETE_INBOUND = delete(INBOUND).where(INBOUND.c.id == bindparam("row"))
_SET_INBOUND_ERROR = update(INBOUND).where(INBOUND.c.id == bindparam("row"))
_TICKET_FOR_MESSAGE_IDS = (
    core_select(MESSAGE.c.ticket_number)
    .where(MESSAGE.c.message_id.in_(bindparam("ids", expanding=True)))
    .order_by(MESSAGE.c.id.desc())
    .limit(1)
)
_UNDELIVERABLE_UNTIL = core_select(UNDELIVERABLE.c.until).where(
    UNDELIVERABLE.c.address == bindparam("address")
)
_NO_WRITE = update(TICKET).where(false()).values(subject=TICKET.c.subject)  # still a write
_PAUSED_UNTIL = core_select(AUTO_PAUSE.c.until).where(AUTO_PAUSE.c.address == bindparam("address"))


def inbound_exists(session: Session | Connection, dedupe_key: str) -> bool:
    return connection_of(session).execute(_INBOUND_EXISTS, {"key": dedupe_key}).first() is not None


def delete_inbound(session: Session | Connection, inbound_id: int) -> None:
    connection_of(session).execute(_DELETE_INBOUND, {"row": inbound_id})


def set_inbound_error(session: Session | Connection, inbound_id: int, error: str) -> None:
    connection_of(session).execute(_SET_INBOUND_ERROR, {"row": inbound_id, "error": error})


def ticket_for_message_ids(session: Session | Connection, message_ids: Sequence[str]) -> int | None:
    """The ticket of the newest stored message among ``message_ids`` (ours or theirs)."""
    if not message_ids:
        return None
    found = connection_of(session).execute(_TICKET_FOR_MESSAGE_IDS, {"ids": list(message_ids)})
    number: int | None = found.scalar()
    return number


def _sent_automatically(*where: Any, limit: str) -> Any:
    """How many automatic answers match, counted up to the bind parameter ``limit``: a
    budget only asks whether it is used up, and the global one can match thousands."""
    capped = (
        core_select(OUTBOX.c.id)
        .where(OUTBOX.c.automatic.is_(True), *where)
        .limit(bindparam(limit))
        .subquery()
    )
    return core_select(func.count()).select_from(capped).scalar_subquery()


_TO_ADDRESS = OUTBOX.c.recipient == bindparam("address")
_GUARD_HISTORY = core_select(
    _UNDELIVERABLE_UNTIL.scalar_subquery().label("bounced_until"),
    _PAUSED_UNTIL.scalar_subquery().label("paused_until"),
    _sent_automatically(_TO_ADDRESS, OUTBOX.c.created_at >= bindparam("day"), limit="day_n"),
    _sent_automatically(_TO_ADDRESS, OUTBOX.c.created_at >= bindparam("burst"), limit="burst_n"),
    _sent_automatically(
        _TO_ADDRESS,
        OUTBOX.c.ticket_number == bindparam("ticket"),
        OUTBOX.c.created_at >= bindparam("per_ticket"),
        limit="ticket_n",
    ),
    _sent_automatically(OUTBOX.c.created_at >= bindparam("total"), limit="total_n"),
)


def guard_history(
    session: Session | Connection,
    address: str,
    ticket: int | None,
    now: datetime,
    windows: GuardWindows,
) -> GuardHistory:
    """Everything the loop guards ask about ``address``, in one round trip."""
    values = {
        "address": address,
        "ticket": ticket if ticket is not None else -1,
        "day": windows.day.since,
        "day_n": windows.day.limit,
        "burst": windows.burst.since,
        "burst_n": windows.burst.limit,
        "per_ticket": windows.ticket.since,
        "ticket_n": windows.ticket.limit,
        "total": windows.total.since,
        "total_n": windows.total.limit,
    }
    row = connection_of(session).execute(_GUARD_HISTORY, values).one()
    bounced, paused, day, burst, on_ticket, total = row
    return GuardHistory(
        bounced_until=_still(bounced, now),
        paused_until=_still(paused, now),
        day=day,
        burst=burst,
        ticket=on_ticket,
        total=total,
    )


def _still(until: datetime | None, now: datetime) -> datetime | None:
    return until if until is not None and until > now else None


def undeliverable_until(
    session: Session | Connection, address: str, now: datetime
) -> datetime | None:
    until = connection_of(session).execute(_UNDELIVERABLE_UNTIL, {"address": address}).scalar()
    return _still(until, now)


def list_tickets(
    session: Session,
    *,
    status: str | None = None,
    queue: str | None = None,
    offset: int = 0,
    limit: int | None = 500,
) -> Sequence[Ticket]:
    """Tickets, newest first, from ``offset``; at most ``limit`` (None: all of them)."""
    query = select(Ticket).where(*_ticket_filter(status, queue))
    return session.exec(query.order_by(col(Ticket.number).desc()).offset(offset).limit(limit)).all()


def ticket_count(session: Session, *, status: str | None = None, queue: str | None = None) -> int:
    query = select(func.count()).select_from(Ticket).where(*_ticket_filter(status, queue))
    return int(session.exec(query).one())


def _ticket_filter(status: str | None, queue: str | None) -> list[Any]:
    return [
        *([Ticket.status == status] if status else []),
        *([Ticket.queue == queue] if queue else []),
    ]


def drop_quarantined(
    session: Session | Connection,
    *,
    inbound_id: int | None = None,
    received_before: datetime | None = None,
) -> list[tuple[int, str]]:
    """Give up on quarantined mail (one row, or every one received before a moment):
    its row stays, bytes and error included, in state ``dropped``, which ``status`` no
    longer counts as a problem; a re-delivery of it is a duplicate. Returns the
    (id, Message-ID) of each row dropped."""
    where = [INBOUND.c.state == "quarantined"]
    if inbound_id is not None:
        where.append(INBOUND.c.id == inbound_id)
    if received_before is not None:
        where.append(INBOUND.c.received_at < received_before)
    connection = connection_of(session)
    found = connection.execute(
        core_select(INBOUND.c.id, INBOUND.c.message_id).where(*where).order_by(INBOUND.c.id)
    ).all()
    connection.execute(update(INBOUND).where(*where).values(state="dropped"))
    return [(row.id, row.message_id) for row in found]


def auto_replies_total_since(session: Session | Connection, since: datetime) -> int:
    query = core_select(func.count()).where(
        OUTBOX.c.automatic.is_(True), OUTBOX.c.created_at >= since
    )
    return int(connection_of(session).execute(query).scalar_one())


def pause(
    session: Session | Connection, address: str, now: datetime, until: datetime, reason: str
) -> None:
    """Pause automatic answers to ``address`` until ``until`` (a later pause extends it)."""
    connection = connection_of(session)
    values = {"since": now, "until": until, "reason": reason}
    found = connection.execute(update(AUTO_PAUSE).where(AUTO_PAUSE.c.address == address), values)
    if found.rowcount == 0:
        connection.execute(AUTO_PAUSE.insert(), {"address": address, **values})


def pauses(session: Session | Connection, now: datetime) -> list[tuple[str, datetime, str]]:
    """The addresses paused now: (address, until, reason)."""
    query = (
        core_select(AUTO_PAUSE.c.address, AUTO_PAUSE.c.until, AUTO_PAUSE.c.reason)
        .where(AUTO_PAUSE.c.until > now)
        .order_by(AUTO_PAUSE.c.until.desc())
    )
    return [(row.address, row.until, row.reason) for row in connection_of(session).execute(query)]
