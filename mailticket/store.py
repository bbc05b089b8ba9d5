"""The database: engine, sessions, migrations, and the named queries the use cases need.

Every SQLAlchemy connection error is mapped to TemporaryFailure here, so entry points
answer 451 / exit 75 without knowing SQLAlchemy.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, or_, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlmodel import Session, col, create_engine, select

from mailticket.errors import TemporaryFailure
from mailticket.models import Inbound, Message, Outbox, Setting, Ticket, Undeliverable

MIGRATIONS = Path(__file__).parent / "migrations"
SCHEMA_HEAD = "0002"  # the newest migration; a test keeps it equal to Alembic's head


def make_engine(url: str, *, busy_timeout: float = 5.0) -> Engine:
    """An engine tuned for its backend: SQLite in WAL mode with a busy timeout."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"timeout": busy_timeout, "check_same_thread": False}
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin_immediate)
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


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """One unit of work; database outages surface as TemporaryFailure."""
    try:
        with Session(engine, expire_on_commit=False) as session, session.begin():
            yield session
    except (OperationalError, InterfaceError) as exc:
        raise TemporaryFailure(f"database unavailable: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def secret(engine: Engine, configured: str | None) -> bytes:
    """The Message-ID signing secret: configured, or generated once into the database."""
    if configured:
        return configured.encode()
    with transaction(engine) as session:
        row = session.get(Setting, "tickets.secret")
        if row is None:
            row = Setting(key="tickets.secret", value=secrets.token_hex(32))
            session.add(row)
    return row.value.encode()


# -- named queries ---------------------------------------------------------------------


def inbound_exists(session: Session, dedupe_key: str) -> bool:
    return (
        session.exec(select(Inbound.id).where(Inbound.dedupe_key == dedupe_key)).first() is not None
    )


def delete_inbound(session: Session, inbound_id: int) -> None:
    row = session.get(Inbound, inbound_id)
    if row is not None:
        session.delete(row)
        session.flush()


def ticket_for_message_ids(session: Session, message_ids: Sequence[str]) -> int | None:
    """The ticket of the newest stored message among ``message_ids`` (ours or theirs)."""
    if not message_ids:
        return None
    query = (
        select(Message.ticket_number)
        .where(col(Message.message_id).in_(list(message_ids)))
        .order_by(col(Message.id).desc())
        .limit(1)
    )
    return session.exec(query).first()


def auto_replies_since(session: Session, recipient: str, since: datetime) -> int:
    query = select(func.count()).where(
        Outbox.recipient == recipient,
        col(Outbox.automatic).is_(True),
        Outbox.created_at >= since,
    )
    return int(session.exec(query).one())


def undeliverable_until(session: Session, address: str, now: datetime) -> datetime | None:
    row = session.get(Undeliverable, address)
    return row.until if row is not None and row.until > now else None


def due_outbox(session: Session, now: datetime, limit: int) -> Sequence[Outbox]:
    """Pending rows whose time has come and whose lease (if any) has run out."""
    query = (
        select(Outbox)
        .where(
            Outbox.state == "pending",
            Outbox.next_attempt_at <= now,
            or_(col(Outbox.lease_until).is_(None), col(Outbox.lease_until) < now),
        )
        .order_by(col(Outbox.next_attempt_at))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return session.exec(query).all()


def tickets(
    session: Session, *, status: str | None = None, queue: str | None = None, limit: int = 500
) -> Sequence[Ticket]:
    query = select(Ticket).order_by(col(Ticket.number).desc()).limit(limit)
    if status:
        query = query.where(Ticket.status == status)
    if queue:
        query = query.where(Ticket.queue == queue)
    return session.exec(query).all()
