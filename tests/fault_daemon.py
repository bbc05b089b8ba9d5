"""Fault-test helpers: ``mailticket serve`` as a real process that a test can kill -9,
and the MTAs on the other side, which resend whatever did not get a 250."""

from __future__ import annotations

import contextlib
import os
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from types import TracebackType

LOST = 0  # the "code" of an attempt whose connection died before the answer


def clean_environment(**settings: str) -> dict[str, str]:
    """This process's environment without stray ``MAILTICKET_*``, plus ``settings``."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith("MAILTICKET_")}
    return {**kept, **settings}


class ServeProcess:
    """``python -m mailticket serve`` in a process group of its own, listening on ``port``.

    ``kill`` is what kill -9 and then systemd do: SIGKILL the daemon, then whatever is left
    of its group (the parser processes), so no orphan outlives the test.
    """

    def __init__(self, directory: Path, port: int) -> None:
        self.directory = directory
        self.port = port
        self.log = directory / "daemon.log"
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ServeProcess:
        config = str(self.directory / "mailticket.toml")
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "mailticket", "-c", config, "serve"],
                cwd=self.directory,
                env=clean_environment(MAILTICKET_SMTP_PORT=str(self.port)),
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
            )
        self._wait_until_listening()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._process is not None and self._process.poll() is None:
            self.kill()

    @property
    def process(self) -> subprocess.Popen[bytes]:
        assert self._process is not None, "not started"
        return self._process

    def kill(self) -> int:
        """SIGKILL; returns the exit status (-9 when the signal, not an exit, ended it)."""
        self.process.send_signal(signal.SIGKILL)
        status = self.process.wait(10)
        with contextlib.suppress(ProcessLookupError):  # the group died with its leader
            os.killpg(self.process.pid, signal.SIGKILL)
        return status

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(30)

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.__exit__(None, None, None)
        raise RuntimeError(f"serve did not start:\n{self.log.read_text()[-3000:]}")


class Mta:
    """Sending MTAs: every mail is attempted once per round; what did not get a 250
    (refused for now, or the connection died before the answer) waits for the next round."""

    def __init__(self, mails: dict[str, bytes]) -> None:
        self.raw = mails  # Message-ID -> bytes
        self.answers: list[tuple[str, int]] = []  # every attempt, in order (LOST: no answer)
        self._waiting: deque[str] = deque(mails)
        self._later: list[str] = []
        self._lock = threading.Lock()

    def accepted(self) -> list[str]:
        return [mid for mid, code in self.answers if code == 250]

    def unanswered(self) -> list[str]:
        """Mails not yet accepted: the MTAs still hold them."""
        accepted = set(self.accepted())
        return [mid for mid in self.raw if mid not in accepted]

    def start_round(self, port: int, clients: int) -> list[threading.Thread]:
        """Requeue what waits from earlier rounds; ``clients`` connections send in parallel."""
        with self._lock:
            self._waiting.extend(self._later)
            self._later.clear()
        threads = [threading.Thread(target=self._client, args=(port,)) for _ in range(clients)]
        for thread in threads:
            thread.start()
        return threads

    def send_round(self, port: int, clients: int = 1) -> None:
        for thread in self.start_round(port, clients):
            thread.join(120)

    def _take(self) -> str | None:
        with self._lock:
            return self._waiting.popleft() if self._waiting else None

    def _answer(self, mid: str, code: int) -> None:
        with self._lock:
            self.answers.append((mid, code))
            if code != 250:
                self._later.append(mid)

    def _client(self, port: int) -> None:
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=20) as client:
                while (mid := self._take()) is not None:
                    code = self._send(client, mid)
                    self._answer(mid, code)
                    if code != 250:
                        client.rset()
        except (OSError, smtplib.SMTPException):
            return  # the daemon is gone: the rest waits for the next round

    def _send(self, client: smtplib.SMTP, mid: str) -> int:
        try:
            client.sendmail("mta@customer.example", ["support@example.org"], self.raw[mid])
        except smtplib.SMTPResponseException as exc:
            return exc.smtp_code
        except smtplib.SMTPRecipientsRefused as exc:
            code: int = next(iter(exc.recipients.values()))[0]
            return code
        except (OSError, smtplib.SMTPException):
            self._answer(mid, LOST)
            raise
        return 250
