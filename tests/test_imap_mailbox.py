"""The blocking IMAP connection's small parts: fault descriptions, the alarm that wakes
a waiting thread, the processed folder created by two pollers at once (against Dovecot;
the rest of the connection is tested against Dovecot in test_imap_inbox.py)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial

import pytest
from imapclient.exceptions import IMAPClientAbortError, LoginError

from mailticket.inbound.imap_mailbox import Alarm, ImapFault, create_folder, describe
from tests.dovecot import Dovecot, running_dovecot


@pytest.mark.parametrize(
    ("exc", "line"),
    [
        (
            LoginError(str(b"[AUTHENTICATIONFAILED] Authentication failed.")),
            "login refused: [AUTHENTICATIONFAILED] Authentication failed.",
        ),
        (
            ConnectionRefusedError(111, "Connection refused"),
            "unreachable: [Errno 111] Connection refused",
        ),
        (
            socket.gaierror(-2, "Name or service not known"),
            "unreachable: [Errno -2] Name or service not known",
        ),
        (TimeoutError("timed out"), "timed out waiting for the server"),
        (ImapFault("server offers no STARTTLS"), "server offers no STARTTLS"),
        (IMAPClientAbortError("socket error: EOF\n"), "abort: socket error: EOF"),
    ],
)
def test_describe_is_one_line(exc: BaseException, line: str) -> None:
    assert describe(exc) == line


def test_alarm_wakes_a_waiting_thread_and_stays_set() -> None:
    alarm = Alarm()
    woke: list[float] = []
    start = time.monotonic()
    waiter = threading.Thread(target=lambda: woke.append(alarm.wait(None, 30) or time.monotonic()))
    waiter.start()
    alarm.set()
    waiter.join(5)
    assert woke and woke[0] - start < 5  # woken, not timed out
    assert alarm.wait(None, 30) is False  # still set: a later wait returns at once
    alarm.close()


def test_alarm_reports_data_on_the_watched_socket() -> None:
    alarm = Alarm()
    left, right = socket.socketpair()
    assert alarm.wait(left, 0.01) is False
    right.send(b"* 1 EXISTS\r\n")
    assert alarm.wait(left, 5) is True
    for sock in (left, right):
        sock.close()
    alarm.close()


# -- the processed folder, created by two pollers at once ---------------------------------


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    with running_dovecot() as server:
        yield server


def at_once(*calls: Callable[[], object]) -> list[Exception]:
    """Run ``calls`` in threads released together; the exceptions they raised."""
    start = threading.Barrier(len(calls))
    failures: list[Exception] = []

    def run(call: Callable[[], object]) -> None:
        start.wait()
        try:
            call()
        except Exception as exc:
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return failures


def test_two_connections_creating_one_folder_both_carry_on(dovecot: Dovecot) -> None:
    """Both find no folder and both CREATE it: the second gets NO [ALREADYEXISTS], which
    is success (before, about 9 rounds in 10 failed one of the two)."""
    user = dovecot.new_user()
    names = [f"Processed{n}" for n in range(60)]
    deadline = time.monotonic() + 10
    with dovecot.client(user, folder=None) as one, dovecot.client(user, folder=None) as two:
        for name in names:
            failures = at_once(partial(create_folder, one, name), partial(create_folder, two, name))
            assert failures == [], name
            if time.monotonic() > deadline:
                break
        created = {folder for _, _, folder in one.list_folders()}
    assert names[0] in created and name in created
