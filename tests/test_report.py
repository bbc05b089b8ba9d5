"""``mailticket report`` on SQLite and PostgreSQL: tickets made by the real intake, then the
times intake cannot set yet (first response, resolution) written directly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from mailticket import store
from mailticket.ops.report import Backlog, Report, SlaCount, Spread, build_report, percentile
from mailticket.ops.report_text import human, render
from mailticket.runtime.core import Core, build_core
from tests.conftest import Clock, build_mail, make_settings

RULES = """\
version: 1
queues:
  general: {agents: [agent@example.com]}
  security: {agents: [oncall@example.com]}
defaults: {queue: general, priority: normal}
priorities:
  urgent: {first_response: 2h}
  normal: {first_response: 24h}
rules:
  - name: hacked
    if: {subject: {contains: [hacked]}}
    then: {queue: security, priority: urgent, tags: [security]}
  - name: big customer
    if: {from: {domain: [big.example]}}
    then: {tags: [vip]}
"""
NOW = datetime(2026, 11, 9, 10, 0, tzinfo=UTC)  # Monday morning
SINCE = NOW - timedelta(days=7)


def at(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


# number: (created, sender, subject, status, first_response_at, resolved_at, closed_at)
TICKETS: dict[int, tuple[Any, ...]] = {
    1: (at(30, 10, month=10), "old@customer.example", "still broken", "open", None, None, None),
    2: (at(2, 12), "alice@customer.example", "login", "resolved", at(2, 13), at(3, 12), None),
    3: (at(3, 9), "alice@customer.example", "export", "pending", at(4, 12), None, None),
    4: (at(4, 10), "bob@big.example", "hacked!", "resolved", at(4, 10, 30), at(4, 16), None),
    5: (at(5, 10), "bob@big.example", "hacked again", "new", None, None, None),
    6: (at(6, 10), "carol@big.example", "question", "closed", None, None, at(6, 11)),
    7: (at(9, 8), "alice@customer.example", "invoice", "new", None, None, None),
}


@pytest.fixture
def filled(tmp_path: Path, db_url: str) -> Iterator[Core]:
    (tmp_path / "rules.yaml").write_text(RULES, encoding="utf-8")
    clock = Clock()
    with build_core(make_settings(tmp_path, db_url), clock=clock) as core:
        for number, (created, sender, subject, *_) in TICKETS.items():
            clock.now = created
            result = core.intake.submit(build_mail(sender=sender, subject=subject), "smtp")
            assert (result.outcome, result.ticket) == ("stored", number)
        with store.core_transaction(core.engine) as connection:
            for number, (_, _, _, status, responded, resolved, closed) in TICKETS.items():
                values = {
                    "status": status,
                    "first_response_at": responded,
                    "resolved_at": resolved,
                    "closed_at": closed,
                }
                where = store.TICKET.c.number == number
                connection.execute(update(store.TICKET).where(where).values(**values))
        yield core


def report_of(core: Core, top: int = 10) -> Report:
    with store.core_transaction(core.engine) as connection:
        return build_report(connection, SINCE, NOW, top)


def test_counts_percentiles_breaches_tags_senders_backlog(filled: Core) -> None:
    report = report_of(filled)
    assert report.opened == {"general": 4, "security": 2}
    assert report.resolved == {"general": 1, "security": 1}
    # first responses in the window: #2 after 1 h, #3 after 27 h, #4 after 30 min
    assert report.first_response.groups == {
        ("general", "normal"): Spread(2, 3600.0, 97200.0),
        ("security", "urgent"): Spread(1, 1800.0, 1800.0),
    }
    assert report.first_response.overall == Spread(3, 3600.0, 97200.0)
    assert report.resolution.groups == {
        ("general", "normal"): Spread(1, 86400.0, 86400.0),
        ("security", "urgent"): Spread(1, 21600.0, 21600.0),
    }
    assert report.resolution.overall == Spread(2, 21600.0, 86400.0)
    # due in the window: #2 answered in time, #3 answered late, #6 closed before its due
    # time, #4 in time, #5 never answered; #1 was due before, #7 is due after
    assert report.sla == {
        ("general", "normal"): SlaCount(due=3, breached=1),
        ("security", "urgent"): SlaCount(due=2, breached=1),
    }
    assert report.top_tags == [("vip", 3), ("security", 2)]
    assert report.top_senders == [
        ("alice@customer.example", 3),
        ("bob@big.example", 2),
        ("carol@big.example", 1),
    ]
    assert report.backlog == {
        ("general", "new"): Backlog(1, at(9, 8)),
        ("general", "open"): Backlog(1, at(30, 10, month=10)),
        ("general", "pending"): Backlog(1, at(3, 9)),
        ("security", "new"): Backlog(1, at(5, 10)),
    }


def test_top_limits_the_rankings(filled: Core) -> None:
    report = report_of(filled, top=1)
    assert (report.top_tags, report.top_senders) == ([("vip", 3)], [("alice@customer.example", 3)])


def test_json_and_text_shapes(filled: Core) -> None:
    report = report_of(filled)
    data = json.loads(json.dumps(report.as_dict()))
    assert data["since"] == "2026-11-02T10:00:00+00:00"
    assert data["first_response"]["all"] == {
        "count": 3,
        "p50_seconds": 3600.0,
        "p90_seconds": 97200.0,
    }
    assert data["sla"][1] == {"queue": "security", "priority": "urgent", "due": 2, "breached": 1}
    assert data["backlog"][1] == {
        "queue": "general",
        "status": "open",
        "tickets": 1,
        "oldest": "2026-10-30T10:00:00+00:00",
    }
    lines = render(report).splitlines()
    assert lines[0] == "mailticket report 2026-11-02 10:00 .. 2026-11-09 10:00 UTC"
    assert _row(lines, "general", "normal", "2") == ["general", "normal", "2", "1h", "1d", "3h"]
    assert _row(lines, "all", "5") == ["all", "5", "2"]  # SLA: 5 due, 2 breached
    assert _row(lines, "vip") == ["vip", "3"]


def _row(lines: list[str], *start: str) -> list[str]:
    """The first table row whose cells begin with ``start``."""
    for line in lines:
        cells = line.split()
        if cells[: len(start)] == list(start):
            return cells
    raise AssertionError(f"no row {start} in:\n" + "\n".join(lines))


def test_empty_database(tmp_path: Path, db_url: str) -> None:
    with build_core(make_settings(tmp_path, db_url)) as core:
        report = report_of(core)
    assert (report.opened, report.sla, report.backlog) == ({}, {}, {})
    assert report.first_response.overall is None
    assert "Backlog now" in render(report)


@pytest.mark.parametrize(
    ("values", "p50", "p90"),
    [([5.0], 5.0, 5.0), ([1.0, 2.0], 1.0, 2.0), ([float(i) for i in range(1, 11)], 5.0, 9.0)],
)
def test_nearest_rank_percentiles(values: list[float], p50: float, p90: float) -> None:
    assert (percentile(values, 50), percentile(values, 90)) == (p50, p90)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (59.6, "1m"), (150, "2m 30s"), (3600, "1h"), (97200, "1d 3h"), (90061, "1d 1h")],
)
def test_human_durations(seconds: float, text: str) -> None:
    assert human(seconds) == text


def test_the_command(tmp_path: Path, db_url: str) -> None:
    """Real clock: two mails stored just now, reported by a real ``mailticket report``."""
    settings = make_settings(tmp_path, db_url)
    with build_core(settings) as core:
        for sender in ("a@customer.example", "b@customer.example"):
            assert core.intake.submit(build_mail(sender=sender), "smtp").outcome == "stored"
    shown = _run(tmp_path, "report", "--since", "1d", "--json")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["opened"] == {"general": 2}
    assert [b["tickets"] for b in data["backlog"]] == [2]
    text = _run(tmp_path, "report")
    assert text.returncode == 0, text.stderr
    assert "Tickets by queue" in text.stdout.decode()
    wrong = _run(tmp_path, "report", "--since", "a week")
    assert wrong.returncode == 2
    assert b"not a duration: 'a week'" in wrong.stderr
    assert b"Traceback" not in wrong.stderr


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    config = str(tmp_path / "mailticket.toml")
    return subprocess.run(
        [sys.executable, "-m", "mailticket", "-c", config, *args],
        capture_output=True,
        cwd=tmp_path,
        timeout=60,
        env=dict(os.environ),
    )
