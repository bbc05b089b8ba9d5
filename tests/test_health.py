"""``mailticket status``: IMAP accounts whose last error is newer than their last poll."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mailticket import store
from mailticket.inbound import imap_ledger
from mailticket.ops.status import PollerHealth
from tests.conftest import make_settings, pretend_daemon_running

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
LATER = T0 + timedelta(minutes=5)


@pytest.mark.parametrize(
    ("ok", "error_at", "failing"),
    [
        (None, None, False),  # configured, never polled yet
        (T0, None, False),
        (None, T0, True),  # never got through
        (T0, LATER, True),
        (LATER, T0, False),  # recovered
    ],
)
def test_failing_means_the_last_error_is_newer(
    ok: datetime | None, error_at: datetime | None, failing: bool
) -> None:
    error = "unreachable" if error_at else None
    assert PollerHealth("a", ok, error, error_at).failing is failing


IMAP = """
[[imap]]
name = "{name}"
host = "127.0.0.1"
username = "support"
password = "x"
"""


def status(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    config = str(tmp_path / "mailticket.toml")
    return subprocess.run(
        [sys.executable, "-m", "mailticket", "-c", config, "status", "--json"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )


def test_status_shows_each_account_and_exits_1_while_one_fails(tmp_path: Path, db_url: str) -> None:
    make_settings(tmp_path, db_url)
    with (tmp_path / "mailticket.toml").open("a") as config:
        config.write(IMAP.format(name="sales") + IMAP.format(name="support"))
    engine = store.make_engine(db_url)
    store.upgrade(engine)
    imap_ledger.save_status(engine, "sales", T0)
    imap_ledger.save_status(engine, "support", T0)
    imap_ledger.save_status(engine, "support", LATER, error="login refused: wrong password")
    imap_ledger.save_status(engine, "removed", LATER, error="unreachable")  # not configured
    pretend_daemon_running(engine)

    failing = status(tmp_path)
    assert failing.returncode == 1, failing.stderr
    report = json.loads(failing.stdout)
    assert [(p["account"], p["failing"]) for p in report["imap"]] == [
        ("sales", False),
        ("support", True),
    ]
    assert report["problems"] == [
        "IMAP support: login refused: wrong password (since 2026-11-02T10:05:00+00:00)"
    ]

    imap_ledger.save_status(engine, "support", LATER + timedelta(seconds=1))
    recovered = status(tmp_path)
    assert recovered.returncode == 0, recovered.stdout
    engine.dispose()


def test_status_says_when_agents_are_trusted_by_their_from_alone(tmp_path: Path) -> None:
    from mailticket.ops.status import collect
    from mailticket.runtime.core import build_core

    unsafe = make_settings(
        tmp_path, f"sqlite:///{tmp_path}/u.db", agents={"require_authenticated": False}
    )
    with build_core(unsafe) as core:
        assert any("require_authenticated = false" in p for p in collect(core).problems)
    safe = make_settings(tmp_path, f"sqlite:///{tmp_path}/s.db")
    with build_core(safe) as core:
        assert not any("require_authenticated" in p for p in collect(core).problems)
