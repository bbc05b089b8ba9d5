"""The notify protocol against a real AF_UNIX datagram socket, as systemd listens."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailticket.ops.sd_notify import Notifier, keep_alive


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """The service manager's end: a bound datagram socket and its NOTIFY_SOCKET value."""
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(5)
        yield sock, str(path)


def received(sock: socket.socket) -> str:
    return sock.recv(4096).decode()


def test_each_state_is_one_datagram(manager: tuple[socket.socket, str]) -> None:
    sock, address = manager
    notifier = Notifier.from_environ({"NOTIFY_SOCKET": address})
    assert notifier.enabled
    assert notifier.ready("listening on\n127.0.0.1:25")
    assert notifier.watchdog()
    assert notifier.status("3 mails in flight")
    assert notifier.reloading()
    assert notifier.stopping()
    assert [received(sock) for _ in range(5)] == [
        "READY=1\nSTATUS=listening on 127.0.0.1:25",
        "WATCHDOG=1",
        "STATUS=3 mails in flight",
        "RELOADING=1",
        "STOPPING=1",
    ]


def test_abstract_namespace_socket() -> None:
    name = f"mailticket-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        assert Notifier(f"@{name}").ready()
        assert received(sock) == "READY=1"


def test_without_notify_socket_nothing_is_sent() -> None:
    notifier = Notifier.from_environ({"WATCHDOG_USEC": "30000000"})
    assert not notifier.enabled
    assert not notifier.ready()
    assert not notifier.watchdog()
    asyncio.run(asyncio.wait_for(keep_alive(notifier, asyncio.Event()), 5))  # returns at once


def test_an_unreachable_manager_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = Notifier(str(tmp_path / "gone"))
    assert not notifier.ready()
    assert not notifier.watchdog()
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "cannot notify systemd" in warnings[0].getMessage()


@pytest.mark.parametrize(
    ("environ", "interval"),
    [
        ({"WATCHDOG_USEC": "30000000"}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),  # meant for another process
        ({"WATCHDOG_USEC": "x"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval_is_half_of_watchdog_sec(
    environ: dict[str, str], interval: float | None
) -> None:
    assert (
        Notifier.from_environ({"NOTIFY_SOCKET": "/run/x", **environ}).watchdog_interval == interval
    )


def test_keep_alive_pings_until_stopped(manager: tuple[socket.socket, str]) -> None:
    sock, address = manager
    notifier = Notifier(address, watchdog_usec=20_000)  # a ping every 10 ms

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(keep_alive(notifier, stop))
        loop = asyncio.get_running_loop()
        sock.setblocking(False)
        for _ in range(3):
            assert (await asyncio.wait_for(loop.sock_recv(sock, 100), 5)) == b"WATCHDOG=1"
        stop.set()
        await asyncio.wait_for(task, 5)

    asyncio.run(scenario())
