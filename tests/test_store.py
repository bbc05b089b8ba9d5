"""Schema and migrations, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

import mailticket.store.models  # noqa: F401  (registers the tables)
from mailticket import store


def test_schema_head_constant_is_alembics_head() -> None:
    config = Config()
    config.set_main_option("script_location", str(store.MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_current_head() == store.SCHEMA_HEAD


def test_upgrade_creates_the_models_schema_once(db_url: str) -> None:
    engine = store.make_engine(db_url)
    assert store.schema_version(engine) is None
    assert store.upgrade(engine) is True
    assert store.upgrade(engine) is False
    assert store.schema_version(engine) == store.SCHEMA_HEAD
    with engine.connect() as connection:
        drift = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert drift == []  # the migrations build exactly what models.py declares
    engine.dispose()


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    engine = store.make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()


def test_generated_secret_is_stable(db_url: str) -> None:
    engine = store.make_engine(db_url)
    store.upgrade(engine)
    first = store.secret(engine, None)
    assert len(first) == 64 and store.secret(engine, None) == first
    assert store.secret(engine, "configured") == b"configured"
    engine.dispose()


def test_daemons_starting_together_generate_one_secret(db_url: str) -> None:
    """Each process finds no secret and stores its own: the first commit wins, and every
    one of them signs with that one."""
    engines = [store.make_engine(db_url) for _ in range(4)]
    store.upgrade(engines[0])
    for engine in engines:
        store.schema_version(engine)  # connected: the barrier releases them into the race
    start = threading.Barrier(len(engines))
    secrets: list[bytes] = []

    def generate(engine: Engine) -> None:
        start.wait()
        secrets.append(store.secret(engine, None))

    threads = [threading.Thread(target=generate, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(secrets) == len(engines) and len(set(secrets)) == 1
    for engine in engines:
        engine.dispose()


@pytest.mark.parametrize(
    ("url", "missing"),
    [
        ("sqlite:///{tmp}/here.db", None),
        ("sqlite:///{tmp}/nowhere.db", "{tmp}/nowhere.db does not exist: run `mailticket db"),
        ("sqlite+pysqlite:///{tmp}/nowhere.db", "{tmp}/nowhere.db does not exist"),
        ("sqlite:///{tmp}/nowhere.db?timeout=5", "{tmp}/nowhere.db does not exist"),
        ("sqlite://", None),  # in memory: nothing to find
        ("sqlite:///:memory:", None),
        ("sqlite:///file:x.db?mode=ro&uri=true", None),  # SQLite's own URI: left to SQLite
        ("postgresql+psycopg://mailticket@/mailticket?host=/run/postgresql", None),
        ("not a url", None),  # the engine says what is wrong with it
    ],
)
def test_database_missing_names_a_sqlite_file_that_is_not_there(
    tmp_path: Path, url: str, missing: str | None
) -> None:
    (tmp_path / "here.db").touch()
    found = store.database_missing(url.format(tmp=tmp_path))
    if missing is None:
        assert found is None
    else:
        assert found is not None and found.startswith(missing.format(tmp=tmp_path))
    assert not (tmp_path / "nowhere.db").exists()


def test_tickets_are_paged_newest_first_and_counted(core: object) -> None:
    """The query behind `tickets list --limit/--offset/--all`, on both databases."""
    from mailticket.runtime.core import Core
    from tests.conftest import build_mail

    assert isinstance(core, Core)
    for n in range(7):
        core.intake.submit(build_mail(subject=f"q{n}", message_id=f"<p{n}@c.example>"), "smtp")
    with store.transaction(core.engine) as session:
        page = [t.number for t in store.list_tickets(session, offset=2, limit=3)]
        every = [t.number for t in store.list_tickets(session, limit=None)]
        assert (page, every) == ([5, 4, 3], [7, 6, 5, 4, 3, 2, 1])
        assert store.ticket_count(session) == 7
        assert store.ticket_count(session, status="closed") == 0
