"""The IMAP ledger and poller status in the database: the truth about which mailbox UIDs
are committed (never ``\\Seen``, never sequence numbers), and what ``status`` shows.

A row is written after the intake commit and marked ``done`` after the mail is flagged
or moved on the server. Rows are inserted "or ignored", so two daemons polling the
same mailbox only repeat work the intake's dedupe already makes harmless.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from mailticket import store
from mailticket.settings import ImapAccount
from mailticket.store.models import ImapSeen, PollerStatus


def account_name(account: ImapAccount) -> str:
    """How logs and ``mailticket status`` name an account."""
    return account.name or f"{account.username}@{account.host}/{account.folder}"


@dataclass(frozen=True, slots=True)
class Folder:
    """One mailbox folder in one UIDVALIDITY epoch: the ledger's key without the UID."""

    account: str  # username@host: stable when the admin renames the account
    folder: str
    uidvalidity: int

    @classmethod
    def of(cls, account: ImapAccount, uidvalidity: int) -> Folder:
        return cls(f"{account.username}@{account.host}", account.folder, uidvalidity)

    def rows(self) -> tuple[ColumnElement[bool], ...]:
        return (
            col(ImapSeen.account) == self.account,
            col(ImapSeen.folder) == self.folder,
            col(ImapSeen.uidvalidity) == self.uidvalidity,
        )


def forget_other_epochs(engine: Engine, key: Folder) -> int:
    """Drop rows of an earlier UIDVALIDITY (their UIDs mean nothing now); how many."""
    with store.transaction(engine) as session:
        result = session.execute(
            delete(ImapSeen).where(
                col(ImapSeen.account) == key.account,
                col(ImapSeen.folder) == key.folder,
                col(ImapSeen.uidvalidity) != key.uidvalidity,
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)


def known(engine: Engine, key: Folder, uids: Sequence[int]) -> set[int]:
    """Those of ``uids`` the ledger already holds (committed, settled or not)."""
    if not uids:
        return set()
    query = select(ImapSeen.uid).where(
        *key.rows(), col(ImapSeen.uid) >= min(uids), col(ImapSeen.uid) <= max(uids)
    )
    with store.transaction(engine) as session:
        return set(session.exec(query).all()) & set(uids)


def unsettled(engine: Engine, key: Folder) -> list[int]:
    """Committed mails not yet flagged/moved (a crash or drop came in between)."""
    query = select(ImapSeen.uid).where(*key.rows(), col(ImapSeen.done).is_(False))
    with store.transaction(engine) as session:
        return sorted(session.exec(query).all())


def record(
    engine: Engine, key: Folder, entries: Sequence[tuple[int, str]], now: datetime
) -> list[int]:
    """Ledger rows for committed mails: (UID, dedupe key), not yet settled.

    Returns the UIDs this call recorded: the caller settles those. A UID another daemon
    recorded first is that daemon's to flag and move (two MOVEs of one mail at the same
    moment leave two copies in the processed folder, or fail with EXPUNGEISSUED)."""
    values = [
        {
            "account": key.account,
            "folder": key.folder,
            "uidvalidity": key.uidvalidity,
            "uid": uid,
            "dedupe_key": dedupe_key,
            "done": False,
            "at": now,
        }
        for uid, dedupe_key in entries
    ]
    with store.transaction(engine) as session:
        statement = _insert(session, ImapSeen).values(values).on_conflict_do_nothing()
        return list(session.execute(statement.returning(col(ImapSeen.uid))).scalars())


def mark_done(engine: Engine, key: Folder, uids: Sequence[int]) -> None:
    with store.transaction(engine) as session:
        session.execute(
            update(ImapSeen).where(*key.rows(), col(ImapSeen.uid).in_(list(uids))).values(done=True)
        )


def save_status(engine: Engine, account: str, now: datetime, *, error: str | None = None) -> None:
    """Record a successful poll (``error`` None) or the error that just happened."""
    changes: dict[str, Any] = (
        {"last_ok_at": now} if error is None else {"last_error": error, "last_error_at": now}
    )
    with store.transaction(engine) as session:
        statement = _insert(session, PollerStatus).values(account=account, **changes)
        session.execute(statement.on_conflict_do_update(index_elements=["account"], set_=changes))


def statuses(session: Session) -> dict[str, PollerStatus]:
    return {row.account: row for row in session.exec(select(PollerStatus)).all()}


def _insert(session: Session, table: Any) -> Any:
    """INSERT with ON CONFLICT, in the dialect of the session's database."""
    bind = session.get_bind()
    dialect = postgresql if bind.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)
