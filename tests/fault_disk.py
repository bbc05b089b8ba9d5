"""A small disk of its own (a tmpfs) that a test may fill, with the database on it:
a SQLite file, or a private PostgreSQL cluster (never the shared server)."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.dovecot import free_port
from tests.pg_cluster import BIN, Cluster

CHUNK = 64 * 1024


@contextmanager
def small_disk(size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` under /tmp (where the ``postgres`` user can enter)."""
    mountpoint = Path(tempfile.mkdtemp(prefix="mailticket-disk-"))
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(mountpoint)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        mountpoint.rmdir()
        pytest.skip(f"cannot mount a tmpfs to fill (needs root): {mounted.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "--lazy", str(mountpoint)], check=True)
        mountpoint.rmdir()


def fill(disk: Path) -> Path:
    """Write until the file system refuses even one byte; delete the returned file to free it."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as out:
        for size in (CHUNK, 1):
            try:
                written = out.write(bytes(size))
                while written:
                    written = out.write(bytes(size))
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
    return filler


@contextmanager
def postgres_on(disk: Path) -> Iterator[Cluster]:
    """A private PostgreSQL cluster whose data directory (and WAL) live on ``disk``."""
    if not (BIN / "initdb").exists() or shutil.which("runuser") is None:
        reason = f"PostgreSQL binaries not found in {BIN} (or no runuser)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}: required in CI")
        pytest.skip(reason)
    shutil.chown(disk, "postgres")
    _as_postgres(str(BIN / "initdb"), "-D", str(disk / "data"), "-A", "trust",
                 "-U", "postgres", "--no-sync")  # fmt: skip
    cluster = Cluster(disk, free_port())
    cluster.start()
    try:
        yield cluster
    finally:
        if (disk / "data" / "postmaster.pid").exists():
            cluster.stop()


def _as_postgres(*command: str) -> None:
    done = subprocess.run(
        ["runuser", "-u", "postgres", "--", *command], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {done.stdout}{done.stderr}")


def free_bytes(disk: Path) -> int:
    stat = os.statvfs(disk)
    return stat.f_bavail * stat.f_frsize
