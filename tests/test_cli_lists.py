"""Lists admins read (tickets, outbox, quarantine): paged, never cut silently, in
columns that fit their content; quarantined mail dropped or replayed with honest exits."""

from __future__ import annotations

import json
import mailbox
from pathlib import Path

import pytest

from mailticket import store
from tests.conftest import build_mail, make_settings, pretend_daemon_running
from tests.test_cli import run


@pytest.fixture
def configured(tmp_path: Path) -> Path:
    """SQLite only: these tests start the CLI a dozen times each (about 1.5 s a process),
    and what they check (paging, columns, exits) is the CLI's, not the database's; the
    paged query itself runs on PostgreSQL in test_store."""
    url = f"sqlite:///{tmp_path / 'mailticket.db'}"
    make_settings(tmp_path, url)
    engine = store.make_engine(url)
    store.upgrade(engine)
    engine.dispose()
    return tmp_path


def _archive(folder: Path, count: int) -> Path:
    path = folder / "archive.mbox"
    box = mailbox.mbox(path)
    for n in range(count):
        box.add(build_mail(subject=f"question {n}", message_id=f"<q{n}@customer.example>"))
    box.close()
    return path


def _numbers(folder: Path, *options: str) -> tuple[list[int], str]:
    listed = run(folder, "tickets", "list", "--json", *options)
    assert listed.returncode == 0, listed.stderr
    return [t["number"] for t in json.loads(listed.stdout)], listed.stderr.decode()


def test_tickets_list_pages_and_says_when_it_is_cut(configured: Path) -> None:
    assert run(configured, "import", str(_archive(configured, 5))).returncode == 0
    assert _numbers(configured) == ([5, 4, 3, 2, 1], "")
    assert _numbers(configured, "--limit", "2") == (
        [5, 4],
        "mailticket: showing 2 of 5: --all or --offset 2 for more\n",
    )
    assert _numbers(configured, "--limit", "2", "--offset", "2") == (
        [3, 2],
        "mailticket: showing 3-4 of 5: --all or --offset 4 for more\n",
    )
    assert _numbers(configured, "--limit", "2", "--offset", "4") == (
        [1],
        "mailticket: showing 5-5 of 5: --all for every row\n",
    )
    assert _numbers(configured, "--limit", "2", "--all") == ([5, 4, 3, 2, 1], "")
    text = run(configured, "tickets", "list", "--limit", "3")
    assert len(text.stdout.splitlines()) == 3
    assert text.stderr == b"mailticket: showing 3 of 5: --all or --offset 3 for more\n"


def test_tickets_list_stops_at_500_by_default_and_says_so(configured: Path) -> None:
    imported = run(configured, "import", str(_archive(configured, 501)))
    assert imported.returncode == 0, imported.stderr
    assert b"INFO" not in imported.stderr  # the summary line, not one line per mail
    assert imported.stdout.strip().endswith(b"501 stored")
    listed = run(configured, "tickets", "list")
    assert len(listed.stdout.splitlines()) == 500
    assert listed.stderr == b"mailticket: showing 500 of 501: --all or --offset 500 for more\n"
    numbers, note = _numbers(configured, "--all")
    assert (len(numbers), note) == (501, "")


def test_outbox_list_columns_fit_their_content(configured: Path) -> None:
    long_sender = "a.very.long.requester.name@customer-subsidiary.example"
    assert run(configured, "ingest", stdin=build_mail(sender=long_sender)).returncode == 0
    lines = run(configured, "outbox", "list").stdout.decode().splitlines()
    assert {line.index("attempts=") for line in lines} == {lines[0].index("attempts=")}
    assert any(long_sender in line for line in lines)
    rows = json.loads(run(configured, "outbox", "list", "--json", "--limit", "1").stdout)
    cut = run(configured, "outbox", "list", "--limit", "1")
    assert len(rows) == 1
    assert cut.stderr.decode().startswith(f"mailticket: showing 1 of {len(lines)}: ")


def _garbage(n: int) -> bytes:
    fields = b"".join(b"X-Filler: %d\r\n" % i for i in range(1001))  # quarantined
    return b"From: a@customer.example\r\nMessage-ID: <junk%d@x>\r\n" % n + fields


def _quarantined(folder: Path) -> list[int]:
    return [row["id"] for row in json.loads(run(folder, "quarantine", "list", "--json").stdout)]


def test_quarantine_drop_makes_status_healthy_again(configured: Path) -> None:
    engine = store.make_engine(f"sqlite:///{configured / 'mailticket.db'}")
    pretend_daemon_running(engine)  # status is about the quarantine here
    engine.dispose()
    for n in range(3):
        assert run(configured, "ingest", stdin=_garbage(n)).stdout.startswith(b"quarantined")
    first, *others = _quarantined(configured)
    page = run(configured, "quarantine", "list", "--limit", "2")
    assert page.stderr == b"mailticket: showing 2 of 3: --all or --offset 2 for more\n"

    dropped = run(configured, "quarantine", "drop", str(first))
    assert (dropped.returncode, dropped.stdout) == (0, f"{first}: dropped <junk0@x>\n".encode())
    assert _quarantined(configured) == others
    assert run(configured, "status").returncode == 1
    again = run(configured, "quarantine", "drop", str(first))
    assert again.returncode == 1
    assert again.stderr == f"mailticket: no quarantined mail with id {first}\n".encode()

    assert run(configured, "quarantine", "drop", "--older-than", "30d").stdout == b"0 dropped\n"
    assert _quarantined(configured) == others
    everything = run(configured, "quarantine", "drop", "--older-than", "0s")
    assert everything.stdout.decode().splitlines()[-1] == "2 dropped"
    assert _quarantined(configured) == []

    status = run(configured, "status", "--json")
    assert status.returncode == 0, status.stdout
    assert json.loads(status.stdout)["inbound"] == {"dropped": 3}
    redelivered = run(configured, "ingest", stdin=_garbage(0))  # dropped, not forgotten
    assert redelivered.stdout.startswith(b"duplicate")


def test_quarantine_drop_needs_an_id_or_an_age(configured: Path) -> None:
    assert run(configured, "quarantine", "drop").returncode == 2
    assert run(configured, "quarantine", "drop", "1", "--older-than", "1d").returncode == 2
    bad = run(configured, "quarantine", "drop", "--older-than", "soon")
    assert bad.returncode == 2
    assert b"not a duration" in bad.stderr


def test_quarantine_replay_that_fails_again_exits_1(configured: Path) -> None:
    run(configured, "ingest", stdin=_garbage(0))
    (row,) = _quarantined(configured)
    replay = run(configured, "quarantine", "replay", str(row))
    assert replay.returncode == 1
    assert replay.stdout.startswith(f"{row}: quarantined".encode())
    assert replay.stderr.endswith(b"mailticket: 1 of 1 still quarantined\n")
    every = run(configured, "quarantine", "replay", "--all")
    assert every.returncode == 1
    assert _quarantined(configured) == [row]
