"""``mailticket serve`` as a real process, for tests that need several daemons at once.

Each daemon gets a directory of its own (config, log, outbox maildir), is started with
``python -m mailticket -c DIR/mailticket.toml serve`` and counts as ready once its SMTP
port accepts connections. Leaving the ``with`` block sends SIGTERM and expects exit 0.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import IO

START_TIMEOUT = 30.0
STOP_TIMEOUT = 40.0  # the daemon's own drain timeout is 30 s


def write_config(
    path: Path, tables: dict[str, dict[str, object]], imap: list[dict[str, object]]
) -> None:
    """A mailticket.toml from plain values (JSON scalars and lists are valid TOML)."""
    lines: list[str] = []
    for name, values in tables.items():
        lines.append(f"[{name}]")
        lines += [
            f"{key} = {json.dumps(value, ensure_ascii=False)}" for key, value in values.items()
        ]
    for account in imap:
        lines.append("[[imap]]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in account.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


class DaemonProcess:
    """One ``mailticket serve`` child; ``log()`` for assertion messages."""

    def __init__(self, directory: Path, smtp_port: int) -> None:
        self.directory = directory
        self.port = smtp_port
        self.exit_code: int | None = None
        self._log: IO[bytes] | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self._process is not None, "start() first"
        return self._process.pid

    @property
    def config(self) -> Path:
        return self.directory / "mailticket.toml"

    def log(self) -> str:
        path = self.directory / "daemon.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self) -> None:
        """Spawn the daemon; ``wait_ready`` tells when it listens (start several, then wait)."""
        self._log = (self.directory / "daemon.log").open("ab")
        environment = {k: v for k, v in os.environ.items() if not k.startswith("MAILTICKET_")}
        self._process = subprocess.Popen(
            [sys.executable, "-m", "mailticket", "-c", str(self.config), "serve"],
            cwd=self.directory,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )

    def wait_ready(self) -> None:
        assert self._process is not None, "start() first"
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"daemon exited with {self._process.returncode}: {self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self._process.kill()
        raise RuntimeError(f"daemon did not listen on {self.port}: {self.log()}")

    def stop(self) -> int:
        """SIGTERM, then the exit code (killed, and reported as -9, if it hangs)."""
        if self._process is None:
            return 0
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
        try:
            self.exit_code = self._process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(10)
            self.exit_code = -signal.SIGKILL
        if self._log is not None:
            self._log.close()
        self._process = None
        return self.exit_code

    def __enter__(self) -> DaemonProcess:
        self.start()
        self.wait_ready()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
