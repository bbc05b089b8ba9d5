"""The IMAP poller against a real Dovecot: pickup, exactly once across crashes and
UIDVALIDITY changes, servers without MOVE, TLS, network and database faults."""

from __future__ import annotations

import asyncio
import logging
import re
import smtplib
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import Session, col, select

from mailticket.inbound import imap_ledger
from mailticket.inbound.imap import Accepted, Submit, Tuning, run_imap_accounts
from mailticket.inbound.imap_ledger import Folder
from mailticket.ops.status import collect
from mailticket.runtime.core import Core, build_core, utcnow
from mailticket.settings import ImapAccount
from mailticket.store.models import ImapSeen, Inbound, Outbox, PollerStatus, Ticket
from tests.conftest import ROOT, Clock, build_mail, make_settings
from tests.daemon_thread import DaemonThread
from tests.dovecot import NO_MOVE, PASSWORD, Dovecot, free_port, running_dovecot
from tests.tcp_proxy import Proxy

FAST = Tuning(batch_count=50, idle_renew=30, timeout=10, backoff_first=0.1, backoff_max=0.5)
SEEN = b"\\Seen"
# A mail arriving in the instant between the poller's last look and its IDLE can be
# reported in the same packet as IDLE's "+ idling", which imapclient has already read;
# the poller then finds it at its next poll_interval. Tests that prove pickup *by IDLE*
# (poll_interval 300 s) append only once the poller is surely idling.
IDLE_SETTLE = 0.3
FETCHED = re.compile(r"fetched (\d+) mails, (\d+) bytes")


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    with running_dovecot() as server:
        yield server


@pytest.fixture(scope="module")
def dovecot_tls() -> Iterator[Dovecot]:
    with running_dovecot(tls=True) as server:
        yield server


def account(server: Dovecot, user: str, **overrides: Any) -> ImapAccount:
    values: dict[str, Any] = {
        "host": server.host,
        "port": server.port,
        "ssl": False,
        "username": user,
        "password": PASSWORD,
        "processed_folder": "Processed",
        "poll_interval": 300,  # only IDLE picks mail up within a test's patience
    }
    return ImapAccount(**{**values, **overrides})


class PollerThread:
    """``run_imap_accounts`` on a loop of its own, as the daemon runs it."""

    def __init__(
        self,
        core: Core,
        *accounts: ImapAccount,
        submit: Submit | None = None,
        ssl_context: ssl.SSLContext | None = None,
        tuning: Tuning = FAST,
    ) -> None:
        self.core = core
        self.tuning = tuning
        self.accounts = accounts
        self.submitted = 0
        self._submit = submit or self._intake
        self._ssl_context = ssl_context
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._thread = threading.Thread(target=self._run, name="poller", daemon=True)

    async def _intake(self, raw: bytes, notify: bool, trusted: bool = False) -> Accepted:
        self.submitted += 1
        return await asyncio.to_thread(
            self.core.intake.submit, raw, "imap", notify=notify, trusted=trusted
        )

    def _run(self) -> None:
        self._loop.run_until_complete(
            run_imap_accounts(
                self.accounts,
                self._submit,
                self.core.engine,
                utcnow,
                self._stop,
                tuning=self.tuning,
                ssl_context=self._ssl_context,
            )
        )
        self._loop.close()

    def __enter__(self) -> PollerThread:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(20)
        assert not self._thread.is_alive(), "the poller did not stop"


def wait_for(condition: Callable[[], object], what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def count(core: Core, table: Any) -> int:
    with Session(core.engine) as session:
        return int(session.exec(select(func.count()).select_from(table)).one())


def status(core: Core, name: str) -> PollerStatus | None:
    with Session(core.engine) as session:
        return session.get(PollerStatus, name)


def synced(core: Core, imap: ImapAccount) -> Callable[[], bool]:
    def check() -> bool:
        row = status(core, imap_ledger.account_name(imap))
        return row is not None and row.last_ok_at is not None

    return check


def ledger_rows(core: Core) -> list[ImapSeen]:
    with Session(core.engine) as session:
        return list(session.exec(select(ImapSeen).order_by(col(ImapSeen.uid))).all())


# -- pickup ------------------------------------------------------------------------------


def test_idle_picks_up_new_mail_then_moves_it(dovecot: Dovecot, core: Core) -> None:
    user = dovecot.new_user()
    imap = account(dovecot, user)
    with PollerThread(core, imap):
        wait_for(synced(core, imap), "the first sync")
        time.sleep(IDLE_SETTLE)
        dovecot.append(user, [build_mail(subject="Printer on fire")])
        wait_for(lambda: count(core, Ticket) == 1, "the ticket (IDLE)", timeout=10)
        wait_for(lambda: not dovecot.contents(user), "the move out of INBOX")
    assert list(dovecot.contents(user, "Processed").values()) == [(SEEN,)]
    assert [(row.uid, row.done) for row in ledger_rows(core)] == [(1, True)]
    with Session(core.engine) as session:
        assert session.exec(select(Inbound.source)).all() == ["imap"]


@pytest.mark.parametrize("trusted", [True, False])
def test_an_account_marked_trusted_has_its_spam_verdict_read(
    dovecot: Dovecot, core: Core, trusted: bool
) -> None:
    """The MTA in front of this mailbox flagged the mail; only an account marked
    ``trust_authentication_results`` (its MTA removes incoming copies) is believed."""
    user = dovecot.new_user()
    imap = account(dovecot, user, trust_authentication_results=trusted)
    spam = build_mail(subject="Cheap watches", headers={"X-Spam-Flag": "YES"})
    dovecot.append(user, [spam])
    with PollerThread(core, imap):
        wait_for(lambda: count(core, Ticket) == 1, "the ticket")
    with Session(core.engine) as session:
        [ticket] = session.exec(select(Ticket)).all()
        queued = session.exec(select(func.count()).select_from(Outbox)).one()
    assert (ticket.status, queued == 0) == (("spam", True) if trusted else ("new", False))


def test_two_pollers_on_one_mailbox_move_each_mail_once(
    dovecot: Dovecot, core: Core, tmp_path: Path
) -> None:
    """Two daemons woken by IDLE for the same new mail: it is stored once and moved once
    (by the daemon whose ledger row won), never copied twice into the processed folder."""
    (tmp_path / "other").mkdir()
    other = build_core(make_settings(tmp_path / "other", core.settings.database.url))
    user = dovecot.new_user()
    imap = account(dovecot, user, poll_interval=2)
    with other, PollerThread(core, imap), PollerThread(other, imap):
        wait_for(synced(core, imap), "the first sync")
        wait_for(synced(other, imap), "the other's first sync")
        time.sleep(IDLE_SETTLE)
        dovecot.append(user, [build_mail(subject=f"m{n}") for n in range(60)])
        wait_for(lambda: not dovecot.contents(user), "INBOX emptied", timeout=60)
    assert count(core, Ticket) == 60
    assert len(dovecot.contents(user, "Processed")) == 60
    row = status(core, imap_ledger.account_name(imap))
    assert row is not None and row.last_error is None


def test_idle_is_reissued_before_the_server_would_drop_it(dovecot: Dovecot, core: Core) -> None:
    """RFC 2177: a server may end an IDLE after 29 minutes; ``idle_renew`` comes first."""
    user = dovecot.new_user()
    with Proxy((dovecot.host, dovecot.port)) as proxy:
        imap = account(dovecot, user, port=proxy.port)
        with PollerThread(core, imap, tuning=replace(FAST, idle_renew=0.2)):
            wait_for(lambda: proxy.client_bytes.count(b"DONE\r\n") >= 3, "three renewals")
            dovecot.append(user, [build_mail()])
            wait_for(lambda: count(core, Ticket) == 1, "pickup between renewals")
    assert proxy.client_bytes.count(b" IDLE\r\n") >= 3


def test_polling_without_idle_only_flags_when_no_processed_folder(
    dovecot: Dovecot, core: Core
) -> None:
    user = dovecot.new_user()
    imap = account(dovecot, user, idle=False, poll_interval=0.2, processed_folder=None)
    with PollerThread(core, imap):
        wait_for(synced(core, imap), "the first sync")
        dovecot.append(user, [build_mail(), build_mail()])
        wait_for(lambda: count(core, Ticket) == 2, "two tickets by polling")
        wait_for(lambda: list(dovecot.contents(user).values()) == [(SEEN,)] * 2, "\\Seen")
    assert dovecot.contents(user, "Processed") == {}


# -- exactly once ------------------------------------------------------------------------


def test_kill_between_commit_and_flag_loses_and_duplicates_nothing(
    dovecot: Dovecot, core: Core, tmp_path: Path
) -> None:
    user = dovecot.new_user()
    dovecot.append(user, [build_mail(subject=f"mail {n}") for n in range(5)])
    child = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tests" / "imap_crash_child.py"),
            str(tmp_path / "mailticket.toml"),
            dovecot.host,
            str(dovecot.port),
            user,
            PASSWORD,
            "3",
        ],
        capture_output=True,
        timeout=60,
    )
    assert child.returncode == -9, child.stderr.decode()[-2000:]
    assert count(core, Inbound) == 3  # committed before the kill
    assert ledger_rows(core) == []  # ... but nothing after it
    assert list(dovecot.contents(user).values()) == [()] * 5  # untouched on the server

    poller = PollerThread(core, account(dovecot, user))
    with poller:
        wait_for(lambda: not dovecot.contents(user), "INBOX emptied")
    assert count(core, Inbound) == 5
    assert count(core, Ticket) == 5
    assert len(dovecot.contents(user, "Processed")) == 5
    assert poller.submitted == 5  # three of them answered "duplicate" by the intake
    assert all(row.done for row in ledger_rows(core))


def test_committed_but_unsettled_mail_is_settled_not_resubmitted(
    dovecot: Dovecot, core: Core
) -> None:
    """The state a crash after the ledger write leaves: only the server step is redone."""
    user = dovecot.new_user()
    first, second = build_mail(subject="one"), build_mail(subject="two")
    dovecot.append(user, [first, second])
    with dovecot.client(user) as client:
        uidvalidity = int(client.folder_status("INBOX", [b"UIDVALIDITY"])[b"UIDVALIDITY"])
    imap = account(dovecot, user)
    result = core.intake.submit(first, "imap")
    key = Folder.of(imap, uidvalidity)
    imap_ledger.record(core.engine, key, [(1, result.message_id)], utcnow())

    poller = PollerThread(core, imap)
    with poller:
        wait_for(lambda: not dovecot.contents(user), "INBOX emptied")
    assert poller.submitted == 1  # only "two"
    assert count(core, Ticket) == 2
    assert [(row.uid, row.done) for row in ledger_rows(core)] == [(1, True), (2, True)]


def test_uidvalidity_change_reimports_nothing_and_loses_nothing(
    dovecot: Dovecot, core: Core, caplog: pytest.LogCaptureFixture
) -> None:
    user = dovecot.new_user()
    old = [build_mail(subject="old one"), build_mail(subject="old two")]
    with dovecot.client(user, folder=None) as client:
        client.create_folder("Support")
    dovecot.append(user, old, folder="Support")
    imap = account(dovecot, user, folder="Support", processed_folder=None)
    with PollerThread(core, imap):
        wait_for(
            lambda: list(dovecot.contents(user, "Support").values()) == [(SEEN,)] * 2,
            "the first two mails flagged",
        )
        before = ledger_rows(core)[0].uidvalidity
        with dovecot.client(user, folder=None) as client:  # the folder is recreated
            client.delete_folder("Support")
            client.create_folder("Support")
        dovecot.append(user, [*old, build_mail(subject="new")], folder="Support")
        wait_for(lambda: count(core, Ticket) == 3, "the new mail's ticket")
        wait_for(
            lambda: list(dovecot.contents(user, "Support").values()) == [(SEEN,)] * 3,
            "all three flagged",
        )
    assert any("UIDVALIDITY is now" in r.getMessage() for r in caplog.records)
    rows = ledger_rows(core)
    assert {row.uidvalidity for row in rows} != {before}
    assert [row.uid for row in rows] == [1, 2, 3]
    assert count(core, Inbound) == 3


def test_server_without_move_gets_copy_delete_expunge(core: Core) -> None:
    with running_dovecot(capability=NO_MOVE) as server:
        user = server.new_user()
        with server.client(user) as client:
            assert b"MOVE" not in client.capabilities()
        server.append(user, [build_mail(), build_mail(), build_mail()])
        with PollerThread(core, account(server, user)):
            wait_for(lambda: not server.contents(user), "INBOX emptied")
        assert list(server.contents(user, "Processed").values()) == [(SEEN,)] * 3
    assert count(core, Ticket) == 3


def test_backlog_in_bounded_batches_and_new_mail_is_not_starved(
    dovecot: Dovecot, tmp_path: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    core = build_core(make_settings(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}"), clock=clock)
    caplog.set_level(logging.DEBUG, logger="mailticket.inbound.imap")
    user = dovecot.new_user()
    backlog = 250
    dovecot.append(user, [build_mail(subject=f"old {n}") for n in range(backlog)])
    tuning = replace(FAST, batch_bytes=12_000)  # about 30 of these mails
    with PollerThread(core, account(dovecot, user), tuning=tuning):
        wait_for(lambda: count(core, Ticket) >= 60, "the drain to start", timeout=60)
        dovecot.append(user, [build_mail(subject="urgent and new")])
        wait_for(lambda: count(core, Ticket) == backlog + 1, "the whole backlog", timeout=120)
    with Session(core.engine) as session:
        fresh = session.exec(select(Ticket).where(Ticket.subject == "urgent and new")).one()
    assert fresh.number is not None and fresh.number < backlog  # it jumped the queue
    fetched = [FETCHED.search(r.getMessage()) for r in caplog.records]
    batches = [(int(m[1]), int(m[2])) for m in fetched if m]
    assert sum(mails for mails, _ in batches) == backlog + 1
    assert max(mails for mails, _ in batches) <= tuning.batch_count
    assert max(size for _, size in batches) <= tuning.batch_bytes
    assert len(batches) >= backlog // 40  # bounded by bytes: many small batches
    core.close()


def test_mail_without_message_id_is_stored_once(dovecot: Dovecot, core: Core) -> None:
    user = dovecot.new_user()
    anonymous = build_mail(message_id="", subject="no id")
    dovecot.append(user, [anonymous, build_mail(message_id="", subject="no id either")])
    with PollerThread(core, account(dovecot, user)):
        wait_for(lambda: count(core, Ticket) == 2, "two tickets")
        dovecot.append(user, [anonymous])  # the same bytes again
        wait_for(lambda: len(ledger_rows(core)) == 3, "the third ledger row")
        wait_for(lambda: not dovecot.contents(user), "INBOX emptied")
    assert count(core, Ticket) == 2
    with Session(core.engine) as session:
        keys = session.exec(select(Inbound.dedupe_key)).all()
    assert all(key.startswith("sha256c:") for key in keys)  # what it says, not its bytes
    assert ledger_rows(core)[0].dedupe_key == ledger_rows(core)[2].dedupe_key


def test_same_mail_by_smtp_and_imap_is_one_ticket(dovecot: Dovecot, core: Core) -> None:
    user = dovecot.new_user()
    raw = build_mail(subject="sent twice")
    with DaemonThread(core) as daemon:
        with smtplib.SMTP("127.0.0.1", daemon.ports["smtp"], timeout=10) as smtp:
            smtp.sendmail("alice@customer.example", ["support@example.org"], raw)
        dovecot.append(user, [raw])
        with PollerThread(core, account(dovecot, user)):
            wait_for(lambda: not dovecot.contents(user), "INBOX emptied")
    assert count(core, Ticket) == 1
    with Session(core.engine) as session:
        assert session.exec(select(Inbound.source)).all() == ["smtp"]


def test_mail_dated_before_since_is_imported_without_answers(dovecot: Dovecot, core: Core) -> None:
    user = dovecot.new_user()
    old = build_mail(subject="from last year", date=datetime(2025, 3, 1, tzinfo=UTC))
    dovecot.append(user, [old, build_mail(subject="today")])
    with PollerThread(core, account(dovecot, user, since=date(2026, 1, 1))):
        wait_for(lambda: count(core, Ticket) == 2, "two tickets")
    with Session(core.engine) as session:
        answered = session.exec(select(Ticket.subject).join(Outbox)).all()
    assert set(answered) == {"today"}


# -- faults ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("broken", "expected"),
    [({"port": "closed"}, "unreachable"), ({"password": "wrong"}, "login refused")],
)
def test_one_account_down_does_not_stop_the_other(
    dovecot: Dovecot, core: Core, broken: dict[str, str], expected: str
) -> None:
    good_user = dovecot.new_user()
    down = account(dovecot, dovecot.new_user(), name="down")
    down = down.model_copy(
        update={"port": free_port()} if "port" in broken else {"password": "wrong"}
    )
    good = account(dovecot, good_user)
    with PollerThread(core, down, good):
        dovecot.append(good_user, [build_mail()])
        wait_for(lambda: count(core, Ticket) == 1, "the good account's mail")
        wait_for(lambda: status(core, "down") is not None, "the down account's status")
    row = status(core, "down")
    assert row is not None and row.last_ok_at is None
    assert row.last_error is not None and row.last_error.startswith(expected)
    core.settings = core.settings.model_copy(update={"imap": (down, good)})
    health = collect(core)
    assert [p.account for p in health.imap if p.failing] == ["down"]
    assert any(problem.startswith("IMAP down: ") for problem in health.problems)


def test_starttls_not_offered_is_an_error_and_no_login(dovecot: Dovecot, core: Core) -> None:
    user = dovecot.new_user()
    dovecot.append(user, [build_mail()])
    imap = account(dovecot, user, starttls=True)
    with (
        Proxy((dovecot.host, dovecot.port)) as proxy,
        PollerThread(core, imap.model_copy(update={"port": proxy.port})),
    ):
        wait_for(lambda: status(core, imap_ledger.account_name(imap)), "the error status")
    row = status(core, imap_ledger.account_name(imap))
    assert row is not None and "STARTTLS" in (row.last_error or "")
    assert b"LOGIN" not in bytes(proxy.client_bytes).upper()
    assert PASSWORD.encode() not in proxy.client_bytes
    assert list(dovecot.contents(user).values()) == [()]


def test_untrusted_certificate_is_an_error_and_no_login(dovecot_tls: Dovecot, core: Core) -> None:
    user = dovecot_tls.new_user()
    imap = account(dovecot_tls, user, starttls=True)
    with PollerThread(core, imap):  # the system's trust store: the self-signed cert fails
        wait_for(lambda: status(core, imap_ledger.account_name(imap)), "the error status")
    row = status(core, imap_ledger.account_name(imap))
    assert row is not None and (row.last_error or "").startswith("TLS failed")
    assert "certificate verify failed" in (row.last_error or "")
    assert f"user=<{user}>" not in dovecot_tls.log()


@pytest.mark.parametrize("mode", ["starttls", "ssl"])
def test_tls_with_a_trusted_certificate(dovecot_tls: Dovecot, core: Core, mode: str) -> None:
    user = dovecot_tls.new_user()
    dovecot_tls.append(user, [build_mail()])
    assert dovecot_tls.cert is not None
    context = ssl.create_default_context(cafile=dovecot_tls.cert)
    imap = account(
        dovecot_tls,
        user,
        **(
            {"starttls": True}
            if mode == "starttls"
            else {"ssl": True, "port": dovecot_tls.tls_port}
        ),
    )
    with Proxy((dovecot_tls.host, imap.port)) as proxy:
        via_proxy = imap.model_copy(update={"port": proxy.port})
        with PollerThread(core, via_proxy, ssl_context=context):
            wait_for(lambda: count(core, Ticket) == 1, "the ticket over TLS")
    assert proxy.client_bytes and PASSWORD.encode() not in proxy.client_bytes


def test_idle_survives_lines_split_across_tcp_writes(dovecot: Dovecot, core: Core) -> None:
    """What breaks imapclient's idle_check (mjs/imapclient#519) must not break pickup."""
    user = dovecot.new_user()
    with Proxy((dovecot.host, dovecot.port), split=True) as proxy:
        imap = account(dovecot, user, port=proxy.port)
        with PollerThread(core, imap):
            wait_for(synced(core, imap), "the first sync")
            for n in range(1, 4):
                time.sleep(IDLE_SETTLE)
                dovecot.append(user, [build_mail(subject=f"split {n}")])
                wait_for(lambda n=n: count(core, Ticket) == n, f"ticket {n} (IDLE)", 10)
                wait_for(lambda: not dovecot.contents(user), f"mail {n} moved")
    row = status(core, imap_ledger.account_name(imap))
    assert row is not None and row.last_error is None
    assert count(core, Inbound) == 3


def test_connection_dropped_mid_fetch_is_retried(dovecot: Dovecot, core: Core) -> None:
    user = dovecot.new_user()
    big = build_mail(subject="big", body="x" * 300_000 + "\n")
    dovecot.append(user, [big])
    with Proxy((dovecot.host, dovecot.port), cut_on=b"BODY[]") as proxy:
        imap = account(dovecot, user, port=proxy.port)
        with PollerThread(core, imap):
            wait_for(lambda: not dovecot.contents(user), "INBOX emptied")
    assert proxy.cuts == 1
    assert count(core, Inbound) == 1 and count(core, Ticket) == 1
    row = status(core, imap_ledger.account_name(imap))
    assert row is not None and row.last_error is not None
    assert row.last_ok_at is not None and row.last_error_at is not None
    assert row.last_ok_at > row.last_error_at


def test_database_down_leaves_the_mail_then_picks_it_up(
    dovecot: Dovecot, tmp_path: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "db.sqlite"
    settings = make_settings(tmp_path, f"sqlite:///{path}", database={"busy_timeout": 0.2})
    core = build_core(settings, clock=clock)
    user = dovecot.new_user()
    imap = account(dovecot, user)
    with PollerThread(core, imap):
        wait_for(synced(core, imap), "the first sync")
        lock = sqlite3.connect(path, isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")  # the database is unavailable to everyone else
        dovecot.append(user, [build_mail(subject="while down")])
        wait_for(
            lambda: any("database unavailable" in r.getMessage() for r in caplog.records),
            "the poller to notice",
        )
        time.sleep(0.5)  # a few retries meanwhile
        assert list(dovecot.contents(user).values()) == [()]  # not fetched, not flagged
        lock.execute("ROLLBACK")
        lock.close()
        wait_for(lambda: not dovecot.contents(user), "INBOX emptied after recovery")
    assert count(core, Ticket) == 1
    row = status(core, imap_ledger.account_name(imap))
    assert row is not None and (row.last_error or "").startswith("database unavailable")
    assert row.last_ok_at is not None and row.last_error_at is not None
    assert row.last_ok_at > row.last_error_at  # recorded once the database was back
    warnings = [r for r in caplog.records if "database unavailable" in r.getMessage()]
    assert len([r for r in warnings if r.levelno == logging.WARNING]) == 1
    core.close()


def test_serve_polls_the_configured_account(dovecot: Dovecot, tmp_path: Path, db_url: str) -> None:
    """The daemon itself, configured with [[imap]]: mail in the box becomes a ticket."""
    user = dovecot.new_user()
    imap = account(dovecot, user)
    settings = make_settings(tmp_path, db_url)
    settings = settings.model_copy(update={"imap": (imap,)})
    with build_core(settings) as core, DaemonThread(core):
        wait_for(synced(core, imap), "the first sync")
        dovecot.append(user, [build_mail(subject="Via the daemon", message_id="<d@c.example>")])
        wait_for(lambda: count(core, Ticket) == 1, "the ticket", timeout=20)
        wait_for(lambda: not dovecot.contents(user), "the move out of INBOX")
        wait_for(lambda: count(core, Outbox) >= 1, "the acknowledgement")
    with Session(core.engine) as session:
        assert session.exec(select(Inbound.source)).all() == ["imap"]
