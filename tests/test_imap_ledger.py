"""The IMAP ledger and poller status on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from mailticket import store
from mailticket.inbound import imap_ledger as ledger
from mailticket.inbound.imap_ledger import Folder
from mailticket.settings import ImapAccount
from mailticket.store.models import PollerStatus

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
ACCOUNT = ImapAccount(host="imap.example.com", username="support", password="x")


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    built = store.make_engine(db_url)
    store.upgrade(built)
    yield built
    built.dispose()


def test_account_name_is_the_configured_name_or_user_host_folder() -> None:
    assert ledger.account_name(ACCOUNT) == "support@imap.example.com/INBOX"
    assert ledger.account_name(ACCOUNT.model_copy(update={"name": "helpdesk"})) == "helpdesk"


def test_record_is_idempotent_and_settling_is_tracked(engine: Engine) -> None:
    key = Folder.of(ACCOUNT, 42)
    ledger.record(engine, key, [(1, "<a@x>"), (2, "<b@x>")], T0)
    ledger.record(engine, key, [(2, "<b@x>"), (3, "<c@x>")], T0)  # a second daemon, say
    assert ledger.known(engine, key, [1, 2, 3, 4]) == {1, 2, 3}
    assert ledger.unsettled(engine, key) == [1, 2, 3]
    ledger.mark_done(engine, key, [1, 3])
    assert ledger.unsettled(engine, key) == [2]
    other_folder = Folder(key.account, "Archive", 42)
    assert ledger.known(engine, other_folder, [1, 2, 3]) == set()


def test_a_new_uidvalidity_forgets_the_old_epoch_only(engine: Engine) -> None:
    old, new = Folder.of(ACCOUNT, 1), Folder.of(ACCOUNT, 2)
    ledger.record(engine, old, [(1, "<a@x>"), (2, "<b@x>")], T0)
    ledger.record(engine, Folder(old.account, "Other", 1), [(1, "<c@x>")], T0)
    assert ledger.forget_other_epochs(engine, new) == 2
    assert ledger.known(engine, old, [1, 2]) == set()
    assert ledger.known(engine, Folder(old.account, "Other", 1), [1]) == {1}
    assert ledger.forget_other_epochs(engine, new) == 0


def test_status_keeps_the_last_success_and_the_last_error(engine: Engine) -> None:
    ledger.save_status(engine, "a", T0)
    ledger.save_status(engine, "a", T0 + timedelta(minutes=1), error="unreachable: refused")
    ledger.save_status(engine, "a", T0 + timedelta(minutes=2))
    with Session(engine) as session:
        row = ledger.statuses(session)["a"]
    assert row.last_ok_at == T0 + timedelta(minutes=2)
    assert row.last_error == "unreachable: refused"
    assert row.last_error_at == T0 + timedelta(minutes=1)
    with Session(engine) as session:
        assert session.get(PollerStatus, "b") is None
