"""``mailticket import PATH``: every mail of an mbox file or a maildir through the intake.

Mails go in batches: one transaction (one commit) per ``BATCH`` mails, while the parser
pool already parses the next batch. Re-running adds nothing (the intake deduplicates),
so an interrupted import is resumed by running it again.
"""

from __future__ import annotations

import mailbox
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from mailticket.intake import Intake

Progress = Callable[[int], None]
BATCH = 50


def open_mailbox(path: Path) -> mailbox.Mailbox:
    if path.is_dir():
        if not (path / "cur").is_dir() and not (path / "new").is_dir():
            raise ValueError(f"{path}: a directory but not a maildir (no cur/ or new/)")
        return mailbox.Maildir(path, factory=None, create=False)
    if path.is_file():
        return mailbox.mbox(path, factory=None, create=False)
    raise ValueError(f"{path}: no such file or directory")


def dated_mails(box: mailbox.Mailbox) -> Iterator[tuple[bytes, datetime | None]]:
    """Each mail with the time its mailbox says it was delivered: the date of an mbox
    ``From `` line, a maildir file's delivery time (for a mail without a Date header)."""
    for key in box.iterkeys():
        yield box.get_bytes(key), _delivered(box, key)


def _delivered(box: mailbox.Mailbox, key: str) -> datetime | None:
    try:
        if isinstance(box, mailbox.Maildir):
            return datetime.fromtimestamp(box.get_message(key).get_date(), UTC)
        if isinstance(box, mailbox.mbox):
            line = box.get_message(key).get_from()  # "sender Fri Jul  8 12:08:34 2011"
            return datetime.strptime(" ".join(line.split()[-5:]), "%a %b %d %H:%M:%S %Y").replace(
                tzinfo=UTC
            )
    except (ValueError, OSError, OverflowError):
        return None
    return None


def import_mailbox(
    intake: Intake, path: Path, *, notify: bool, progress: Progress | None = None
) -> Counter[str]:
    """Submit every mail; returns how many were stored, duplicate, quarantined, ignored."""
    box = open_mailbox(path)
    outcomes: Counter[str] = Counter()
    for results in intake.submit_stream(dated_mails(box), "import", notify=notify, batch=BATCH):
        outcomes.update(result.outcome for result in results)
        if progress is not None:
            progress(outcomes.total())
    return outcomes
