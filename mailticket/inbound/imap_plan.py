"""Pure decisions of the IMAP poller: which UIDs to fetch next, how to write a UID set,
and whether a mail is old enough to be imported silently. No sockets, no sessions."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_DATE = re.compile(rb"^date:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)


class MailboxBacklog:
    """UIDs still to fetch. New arrivals go first, then the oldest of the backlog, so a
    mailbox of 10,000 old mails never holds back today's mail and conversations are
    otherwise taken in the order they happened."""

    def __init__(self) -> None:
        self._fresh: deque[int] = deque()
        self._old: deque[int] = deque()
        self.high = 0  # the highest UID any search has shown

    def __len__(self) -> int:
        return len(self._fresh) + len(self._old)

    def start(self, uids: Iterable[int]) -> None:
        """The result of a full search: everything not yet known, oldest first."""
        ordered = sorted(set(uids))
        self._old.extend(ordered)
        self.high = max(self.high, *ordered) if ordered else self.high

    def arrived(self, uids: Iterable[int]) -> None:
        """UIDs above ``high`` found since: fetched before the rest of the backlog."""
        new = sorted(uid for uid in set(uids) if uid > self.high)
        self._fresh.extend(new)
        if new:
            self.high = new[-1]

    def take(self, count: int) -> list[int]:
        taken: list[int] = []
        while len(taken) < count and (self._fresh or self._old):
            taken.append((self._fresh or self._old).popleft())
        return taken

    def put_back(self, uids: Sequence[int]) -> None:
        """Taken but not fetched (the batch was full): first in line next time."""
        self._fresh.extendleft(reversed(uids))


def fit(
    uids: Sequence[int], sizes: Mapping[int, int], max_bytes: int
) -> tuple[list[int], list[int]]:
    """Split ``uids`` into a batch of at most ``max_bytes`` (never empty while one mail
    exists: a mail larger than the limit goes alone) and the rest. UIDs without a size
    have vanished from the mailbox and are dropped."""
    chosen: list[int] = []
    total = 0
    present = [uid for uid in uids if uid in sizes]
    for index, uid in enumerate(present):
        if chosen and total + sizes[uid] > max_bytes:
            return chosen, present[index:]
        chosen.append(uid)
        total += sizes[uid]
    return chosen, []


def uid_set(uids: Iterable[int]) -> str:
    """The shortest IMAP sequence set: [1, 2, 3, 7, 9, 10] -> '1:3,7,9:10'."""
    ranges: list[str] = []
    ordered = sorted(set(uids))
    start = previous = ordered[0] if ordered else 0
    for uid in ordered[1:]:
        if uid != previous + 1:
            ranges.append(_range(start, previous))
            start = uid
        previous = uid
    if ordered:
        ranges.append(_range(start, previous))
    return ",".join(ranges)


def _range(start: int, end: int) -> str:
    return str(start) if start == end else f"{start}:{end}"


def backoff(failures: int, first: float, cap: float) -> float:
    """Seconds to wait after ``failures`` faults in a row: doubling from ``first``."""
    return float(min(cap, first * 2 ** max(0, failures - 1)))


def notify_for(raw: bytes, internaldate: datetime | None, since: date | None) -> bool:
    """False for mail dated before ``since`` (it goes in without automatic answers).

    The earlier of the Date header and the server's INTERNALDATE counts: a migrated
    mailbox has recent INTERNALDATEs, a forged Date can only make a mail quieter.
    """
    if since is None:
        return True
    cutoff = datetime(since.year, since.month, since.day, tzinfo=UTC)
    dates = [d for d in (header_date(raw), internaldate) if d is not None]
    return not any(_aware(d) < cutoff for d in dates)


def header_date(raw: bytes) -> datetime | None:
    """The Date header of ``raw``, without parsing the body; None when absent or bad."""
    head = _HEADER_END.split(raw, maxsplit=1)[0]
    match = _DATE.search(head)
    if match is None:
        return None
    try:
        return parsedate_to_datetime(match[1].decode("ascii", "replace").strip())
    except (TypeError, ValueError, IndexError):
        return None


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
