"""The IMAP poller's pure decisions, by tables: batch order, batch size, UID sets,
backoff, and which mails go in without automatic answers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from mailticket.inbound.imap_plan import (
    MailboxBacklog,
    backoff,
    fit,
    header_date,
    notify_for,
    uid_set,
)


@pytest.mark.parametrize(
    ("uids", "expected"),
    [
        ([], ""),
        ([7], "7"),
        ([1, 2, 3], "1:3"),
        ([1, 2, 3, 7, 9, 10], "1:3,7,9:10"),
        ([10, 9, 3, 1, 2, 2], "1:3,9:10"),
    ],
)
def test_uid_set(uids: list[int], expected: str) -> None:
    assert uid_set(uids) == expected


@pytest.mark.parametrize(
    ("sizes", "limit", "chosen", "rest"),
    [
        ({1: 10, 2: 10, 3: 10}, 25, [1, 2], [3]),
        ({1: 10, 2: 10, 3: 10}, 30, [1, 2, 3], []),
        ({1: 99, 2: 10}, 25, [1], [2]),  # too big for any batch: alone
        ({2: 10, 3: 10}, 25, [2, 3], []),  # 1 vanished from the mailbox
        ({}, 25, [], []),
    ],
)
def test_fit(sizes: dict[int, int], limit: int, chosen: list[int], rest: list[int]) -> None:
    assert fit([1, 2, 3], sizes, limit) == (chosen, rest)


def test_backlog_takes_new_arrivals_before_the_old_mail() -> None:
    backlog = MailboxBacklog()
    backlog.start([5, 1, 3, 2, 4])
    assert backlog.take(2) == [1, 2]
    backlog.arrived([9, 4, 8])  # 4 is not new: at or below the highest UID seen
    assert backlog.high == 9
    assert backlog.take(3) == [8, 9, 3]
    backlog.put_back([9, 3])
    assert backlog.take(10) == [9, 3, 4, 5]
    assert not backlog


@pytest.mark.parametrize(
    ("failures", "seconds"), [(1, 2.0), (2, 4.0), (3, 8.0), (8, 256.0), (9, 300.0), (50, 300.0)]
)
def test_backoff_doubles_up_to_the_cap(failures: int, seconds: float) -> None:
    assert backoff(failures, 2.0, 300.0) == seconds


def mail(date_header: str | None) -> bytes:
    head = f"Date: {date_header}\r\n" if date_header else ""
    return (
        f"From: a@example.com\r\n{head}Subject: x\r\n\r\nDate: 1 Jan 1990 00:00 +0000\r\n".encode()
    )


SINCE = date(2026, 6, 1)
RECENT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("date_header", "internaldate", "since", "notify"),
    [
        ("Mon, 2 Nov 2026 09:00:00 +0000", RECENT, SINCE, True),
        ("Sat, 1 Mar 2025 09:00:00 +0000", RECENT, SINCE, False),  # migrated old mail
        ("Mon, 2 Nov 2026 09:00:00 +0000", datetime(2026, 1, 5, tzinfo=UTC), SINCE, False),
        (None, RECENT, SINCE, True),  # the body's "Date:" line is not a header
        (None, None, SINCE, True),
        ("not a date", RECENT, SINCE, True),
        ("Sun, 31 May 2026 23:30:00 -0100", RECENT, SINCE, True),  # 00:30 UTC on June 1
        ("Sat, 1 Mar 2025 09:00:00 +0000", None, None, True),  # no since: always notify
    ],
)
def test_notify_for(
    date_header: str | None, internaldate: datetime | None, since: date | None, notify: bool
) -> None:
    assert notify_for(mail(date_header), internaldate, since) is notify


def test_header_date_reads_folded_headers_and_keeps_the_zone() -> None:
    raw = b"Subject: x\r\nDATE: Mon, 2 Nov 2026\r\n 09:00:00 +0800\r\n\r\nbody"
    assert header_date(raw) == datetime(2026, 11, 2, 9, 0, tzinfo=timezone(timedelta(hours=8)))
