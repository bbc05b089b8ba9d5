"""Exit codes an MTA acts on: `ingest` must never make Postfix bounce a customer's mail."""

from __future__ import annotations

import mailbox
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.conftest import build_mail, make_settings
from tests.test_cli import run


def test_ingest_with_a_broken_config_file_exits_75_not_78(tmp_path: Path) -> None:
    (tmp_path / "mailticket.toml").write_text("[smtp]\nprot = 25\n")
    ingest = run(tmp_path, "ingest", stdin=build_mail())
    assert ingest.returncode == 75, ingest.stderr
    assert b"smtp.prot: unknown key" in ingest.stderr
    assert b"Traceback" not in ingest.stderr
    listing = run(tmp_path, "tickets", "list")  # an admin command says "configuration"
    assert listing.returncode == 78


def test_ingest_with_a_broken_rules_file_exits_75_and_stores_nothing(tmp_path: Path) -> None:
    make_settings(tmp_path, f"sqlite:///{tmp_path / 'mt.db'}")
    assert run(tmp_path, "db", "upgrade").returncode == 0
    (tmp_path / "rules.yaml").write_text("version: 1\nqueues: {general: {}}\nrulez: []\n")
    ingest = run(tmp_path, "ingest", stdin=build_mail())
    assert ingest.returncode == 75, ingest.stderr
    assert b"rules.yaml:3" in ingest.stderr
    (tmp_path / "rules.yaml").write_text("version: 1\nqueues: {general: {}}\n")
    assert run(tmp_path, "ingest", stdin=build_mail()).returncode == 0


def test_db_upgrade_creates_a_new_database_and_runs_again(tmp_path: Path, db_url: str) -> None:
    """The first command on a new installation (docs/postgresql.md): the schema, and the
    generated secret that daemons started together then share."""
    make_settings(tmp_path, db_url, tickets={"secret": ""})
    created = run(tmp_path, "db", "upgrade")
    assert (created.returncode, created.stdout) == (0, b"schema upgraded\n"), created.stderr
    again = run(tmp_path, "db", "upgrade")
    assert (again.returncode, again.stdout) == (0, b"schema already current\n"), again.stderr
    engine = create_engine(db_url)
    with engine.connect() as connection:
        keys = connection.execute(text("SELECT key FROM setting")).scalars().all()
    engine.dispose()
    assert keys == ["tickets.secret"]
    assert run(tmp_path, "ingest", stdin=build_mail()).returncode == 0


def test_ingest_and_import_refuse_a_database_that_is_not_there(tmp_path: Path) -> None:
    """A wrong path must not become a new, empty database the daemon never reads: the MTA
    keeps the mail (75) until `db upgrade` or `serve` has created it."""
    database = tmp_path / "site.db"
    make_settings(tmp_path, f"sqlite:///{database}")
    archive = tmp_path / "old.mbox"
    box = mailbox.mbox(archive)
    box.add(build_mail())
    box.close()
    advice = f"{database} does not exist: run `mailticket db upgrade` or `serve` first"

    ingest = run(tmp_path, "ingest", stdin=build_mail())
    assert ingest.returncode == 75
    assert ingest.stderr.decode().splitlines() == [f"mailticket: {advice}"]
    imported = run(tmp_path, "import", str(archive))
    assert imported.returncode == 1
    assert imported.stderr.decode().splitlines() == [f"mailticket: {advice}"]
    assert not database.exists()

    assert run(tmp_path, "db", "upgrade").returncode == 0
    assert run(tmp_path, "ingest", stdin=build_mail()).returncode == 0
    assert run(tmp_path, "import", str(archive)).returncode == 0
