"""Shared fixtures: databases (SQLite always, PostgreSQL when reachable; required in CI),
a controllable clock, settings in a temporary directory, and a mail builder."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from mailticket.runtime.core import Core, build_core
from mailticket.settings import Settings, load_settings

PG_URL = os.environ.get("MAILTICKET_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
ROOT = Path(__file__).resolve().parents[1]


class Clock:
    """A clock tests move by hand: time is an argument, never read inside domain code."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 2, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def _postgres_available() -> str | None:
    try:
        engine = create_engine(PG_URL)
        with engine.connect() as connection:
            connection.execute(text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:
        return str(exc).splitlines()[0]


@pytest.fixture(scope="session")
def postgres_url() -> str:
    problem = _postgres_available()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required in CI but unreachable at {PG_URL}: {problem}")
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {problem}")
    return PG_URL


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of each kind; PostgreSQL gets a schema of its own per test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'mailticket.db'}"
        return
    with pg_schema(request.getfixturevalue("postgres_url")) as url:
        yield url


@contextmanager
def pg_schema(base: str) -> Iterator[str]:
    """A URL whose connections see only a new, empty schema (dropped afterwards)."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{base}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


RULES = """\
version: 1
queues:
  general: {agents: [agent@example.com, second@example.com]}
  security: {agents: [oncall@example.com], escalate_to: lead@example.com}
defaults: {queue: general, priority: normal}
priorities:
  urgent: {first_response: 2h, remind_every: 30m}
  normal: {first_response: 24h}
"""


def make_settings(tmp_path: Path, db_url: str, **sections: dict[str, object]) -> Settings:
    """Settings rooted in tmp_path: rules, outbox maildir, the shipped templates."""
    rules = tmp_path / "rules.yaml"
    if not rules.exists():
        rules.write_text(RULES, encoding="utf-8")
    config: dict[str, dict[str, object]] = {
        "database": {"url": db_url},
        "smtp": {"port": 0},
        "outbound": {"maildir": str(tmp_path / "outbox")},
        "tickets": {
            "support_address": "support@example.org",
            "rules_file": str(rules),
            "templates_dir": str(ROOT / "templates"),
            "secret": "test-secret",
        },
    }
    for section, values in sections.items():
        config.setdefault(section, {}).update(values)
    path = tmp_path / "mailticket.toml"
    path.write_text(_toml(config), encoding="utf-8")
    return load_settings(path, environ={})


def _toml(config: dict[str, dict[str, object]]) -> str:
    import json

    lines: list[str] = []
    for section, values in config.items():
        lines.append(f"[{section}]")
        lines += [
            f"{key} = {json.dumps(value, ensure_ascii=False)}" for key, value in values.items()
        ]
    return "\n".join(lines) + "\n"


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return make_settings(tmp_path, db_url)


@pytest.fixture
def core(settings: Settings, clock: Clock) -> Iterator[Core]:
    with build_core(settings, clock=clock) as built:
        yield built


def build_mail(
    *,
    sender: str = "Alice <alice@customer.example>",
    to: str = "support@example.org",
    subject: str = "Cannot log in",
    body: str = "Hello, I cannot log in since this morning.\n",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: str | None = None,
    cc: str | None = None,
    headers: dict[str, str] | None = None,
    charset: str = "utf-8",
    date: datetime | None = None,
) -> bytes:
    """A realistic mail as bytes; ``message_id=""`` leaves the Message-ID out."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    if cc:
        message["Cc"] = cc
    message["Subject"] = subject
    message["Date"] = format_datetime(date or datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
    if message_id != "":
        message["Message-ID"] = message_id or make_msgid(domain="customer.example")
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
    if references:
        message["References"] = references
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body, charset=charset)
    return message.as_bytes(policy=SMTP)  # CRLF, as mail travels


def last_sent_to(core: Core, address: str) -> str | None:
    """The Message-ID of the newest mail we queued for ``address``: an agent who replies to
    it proves they read that mailbox (our ids are signed per recipient)."""
    from sqlmodel import Session, col, select

    from mailticket.store.models import Outbox

    with Session(core.engine) as session:
        query = (
            select(Outbox.message_id)
            .where(Outbox.recipient == address)
            .order_by(col(Outbox.id).desc())
            .limit(1)
        )
        return session.exec(query).first()


def pretend_daemon_running(engine: Engine, now: datetime | None = None) -> None:
    """A fresh heartbeat row, as a running daemon writes it: for `status` tests that are
    about something else (without it, `status` rightly says no daemon runs)."""
    from mailticket.ops import heartbeat

    now = now or datetime.now(UTC)
    me = heartbeat.Instance("test-host:1:pretend", "test-host", 1, now)
    liveness = heartbeat.Liveness("smtp 127.0.0.1:2525", "", now, now)
    with engine.begin() as connection:
        heartbeat.beat(connection, me, now, liveness)
