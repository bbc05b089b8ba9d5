"""A private PostgreSQL cluster that a test may stop and start (never the shared one).

initdb into a temporary directory as the ``postgres`` user, a free port on 127.0.0.1,
``pg_ctl start -w`` (about a second). Skipped with a reason when the binaries are
missing, unless ``CI=true``: then the test must run.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

BIN = Path(os.environ.get("MAILTICKET_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


class Cluster:
    def __init__(self, directory: Path, port: int) -> None:
        self.directory = directory
        self.port = port
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._ctl("start", "-w", "-t", "30", "-o", options, "-l", str(self.directory / "log"))

    def stop(self) -> None:
        """``pg_ctl stop -m fast``: sessions are cut, as when an admin stops the server."""
        self._ctl("stop", "-w", "-m", "fast")

    def _ctl(self, *args: str) -> None:
        _as_postgres(str(BIN / "pg_ctl"), "-D", str(self.directory / "data"), *args)


def _as_postgres(*command: str) -> None:
    done = subprocess.run(
        ["runuser", "-u", "postgres", "--", *command], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {done.stdout}{done.stderr}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def private_cluster() -> Iterator[Cluster]:
    if not (BIN / "initdb").exists() or shutil.which("runuser") is None:
        reason = f"PostgreSQL binaries not found in {BIN} (or no runuser)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}: required in CI")
        pytest.skip(reason)
    directory = Path(tempfile.mkdtemp(prefix="mailticket-pg-"))  # /tmp: postgres can enter
    shutil.chown(directory, "postgres")
    cluster = Cluster(directory, _free_port())
    try:
        _as_postgres(str(BIN / "initdb"), "-D", str(directory / "data"), "-A", "trust",
                     "-U", "postgres", "--no-sync")  # fmt: skip
        cluster.start()
        yield cluster
    finally:
        if (directory / "data" / "postmaster.pid").exists():
            cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)
