"""systemd's notify protocol (sd_notify(3)): ``Type=notify`` readiness and the watchdog.

One datagram per state change to the AF_UNIX socket named by ``NOTIFY_SOCKET`` (``@``
for the abstract namespace). Without that variable every call is a no-op, so the daemon
calls it unconditionally. Twenty lines of socket code do not justify a dependency.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)


class Notifier:
    """Tells the service manager how the daemon is doing; errors are logged, never raised."""

    def __init__(self, address: str | None = None, watchdog_usec: int | None = None) -> None:
        self.address = address or None
        # systemd restarts the service when no ping came for WatchdogSec: ping twice as often
        self.watchdog_interval = watchdog_usec / 2e6 if watchdog_usec else None
        self._warned = False

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], pid: int | None = None) -> Notifier:
        """From the variables systemd sets (``environ`` is handed in, e.g. ``os.environ``)."""
        watchdog = environ.get("WATCHDOG_USEC", "")
        for_us = environ.get("WATCHDOG_PID", "") in ("", str(pid or os.getpid()))
        usec = int(watchdog) if watchdog.isdigit() and for_us else None
        return cls(environ.get("NOTIFY_SOCKET"), usec)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def ready(self, status: str | None = None) -> bool:
        """Listeners and database are up: ``systemctl start`` returns now."""
        return self.notify("READY=1", *_status(status))

    def reloading(self, status: str | None = None) -> bool:
        return self.notify("RELOADING=1", *_status(status))

    def stopping(self, status: str | None = None) -> bool:
        return self.notify("STOPPING=1", *_status(status))

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def status(self, text: str) -> bool:
        """A line for ``systemctl status``."""
        return self.notify(*_status(text))

    def notify(self, *fields: str) -> bool:
        """Send ``fields`` as one datagram; False when disabled or the manager is unreachable."""
        if self.address is None or not fields:
            return False
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(target)
                sock.sendall("\n".join(fields).encode())
        except OSError as exc:
            if not self._warned:
                log.warning("cannot notify systemd at %s: %s", self.address, exc)
                self._warned = True
            return False
        return True


def _status(text: str | None) -> tuple[str, ...]:
    return () if text is None else ("STATUS=" + " ".join(text.split()),)


async def keep_alive(notifier: Notifier, stop: asyncio.Event) -> None:
    """Ping the watchdog from the event loop until ``stop``: a stuck loop stops the pings
    and systemd restarts the daemon. Returns at once when no watchdog is configured."""
    interval = notifier.watchdog_interval
    if interval is None or not notifier.enabled:
        return
    while not stop.is_set():
        notifier.watchdog()
        try:
            await asyncio.wait_for(stop.wait(), interval)
        except TimeoutError:
            continue
