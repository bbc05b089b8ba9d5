"""A small disk of its own that a test may fill or break, with the database on it: a
SQLite file, or a private PostgreSQL cluster (never the shared server).

``small_disk``: a tmpfs, to fill. ``ext4_disk``: an ext4 file system on a loop device,
mounted ``errors=remount-ro``, which ``Ext4Disk.fail`` turns read-only as a disk error
would (the kernel's own error path), and whose files ``immutable`` freezes for a while.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Ext4Disk:
    path: Path  # the mount point
    device: str  # e.g. loop3

    def fail(self) -> None:
        """An ext4 error: with ``errors=remount-ro`` the file system takes no write any
        more (until it is unmounted), as after a failing disk."""
        Path(f"/sys/fs/ext4/{self.device}/trigger_fs_error").write_text("1\n")

    @contextmanager
    def immutable(self, *paths: Path) -> Iterator[None]:
        """``chattr +i`` on ``paths`` (even root cannot write them), undone on leaving."""
        names = [str(p) for p in paths]
        subprocess.run(["chattr", "+i", *names], check=True, capture_output=True)
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", *names], check=True, capture_output=True)


@contextmanager
def ext4_disk(size: str) -> Iterator[Ext4Disk]:
    """A fresh ext4 file system of ``size`` on a loop device, under /tmp."""
    tools = ("mkfs.ext4", "losetup", "chattr", "mount")
    if os.geteuid() != 0 or not all(shutil.which(tool) for tool in tools):
        pytest.skip("needs root, mkfs.ext4, losetup and chattr for a file system to break")
    work = Path(tempfile.mkdtemp(prefix="mailticket-ext4-"))
    image, mountpoint = work / "disk.img", work / "mnt"
    mountpoint.mkdir()
    try:
        subprocess.run(["truncate", "-s", size, str(image)], check=True)
        subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True, capture_output=True)
        attached = subprocess.run(
            ["losetup", "-f", "--show", str(image)], capture_output=True, text=True, check=False
        )
        if attached.returncode != 0:
            pytest.skip(f"no loop device: {attached.stderr.strip()}")
        device = attached.stdout.strip()
        try:
            _mount_ext4(device, mountpoint)
            try:
                yield Ext4Disk(mountpoint, Path(device).name)
            finally:
                subprocess.run(["umount", "--lazy", str(mountpoint)], check=True)
        finally:
            subprocess.run(["losetup", "-d", device], check=False)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _mount_ext4(device: str, mountpoint: Path) -> None:
    mounted = subprocess.run(
        ["mount", "-t", "ext4", "-o", "errors=remount-ro", device, str(mountpoint)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount ext4 on {device}: {mounted.stderr.strip()}")
    if not Path(f"/sys/fs/ext4/{Path(device).name}/trigger_fs_error").exists():
        subprocess.run(["umount", str(mountpoint)], check=True)
        pytest.skip("this kernel has no ext4 trigger_fs_error")
