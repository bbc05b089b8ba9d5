"""Schema and migrations, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlmodel import SQLModel

import mailticket.models  # noqa: F401  (registers the tables)
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
