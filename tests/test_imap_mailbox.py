"""The blocking IMAP connection's small parts: fault descriptions and the alarm that
wakes a waiting thread (the connection itself is tested against Dovecot in
test_imap_inbox.py)."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from imapclient.exceptions import IMAPClientAbortError, LoginError

from mailticket.imap_mailbox import Alarm, ImapFault, describe


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
