"""Exit codes an MTA acts on: `ingest` must never make Postfix bounce a customer's mail."""

from __future__ import annotations

from pathlib import Path

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
    (tmp_path / "rules.yaml").write_text("version: 1\nqueues: {general: {}}\nrulez: []\n")
    ingest = run(tmp_path, "ingest", stdin=build_mail())
    assert ingest.returncode == 75, ingest.stderr
    assert b"rules.yaml:3" in ingest.stderr
    (tmp_path / "rules.yaml").write_text("version: 1\nqueues: {general: {}}\n")
    assert run(tmp_path, "ingest", stdin=build_mail()).returncode == 0
