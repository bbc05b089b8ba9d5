"""A SQLite database whose files turn read-only while the daemon holds them open.

In WAL mode every connection maps the ``-shm`` file into memory and writes to it (read
marks when a read begins, the index when a write commits). When the file system turns
read-only (ext4 ``errors=remount-ro`` after a disk error) or the files are made
immutable (``chattr +i``), a write to a page of that mapping that the kernel had already
written back cannot be backed any more: the process gets SIGBUS and dies. No pragma
turns the mapping off for a database shared between processes (``mmap_size`` is the
database file's own mapping), so the files are looked at before each transaction and
before each new connection:

- not writable, and this process opened a connection while they were: no transaction
  at all (TemporaryFailure: SMTP 451, exit 75); the open connections stay untouched,
  since closing one checkpoints, which writes to the mapping too;
- not writable, for a new connection: it is opened read-only with a read-only
  ``-shm`` (``readonly_shm``), which can never fault: reads go on (``mailticket
  status``), writes fail as read-only;
- writable again after either: the pool is emptied, so every connection is opened
  again, writable. Nothing needs a restart.

The look: ``access`` on the database, its ``-wal`` and its folder (read-only or
immutable files, a read-only mount), and an mtime update of the ``-shm`` file, which
fails exactly when a write to its mapping would (ext4 marks a file system read-only
after an error without telling the mount). A file that turns read-only between the
look and the transaction can still cost the process its life.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy.engine import Engine


def file_problem(database: Path) -> str | None:
    """Why SQLite could not write ``database`` now, or None."""
    shm = Path(f"{database}-shm")
    try:
        os.utime(shm)  # a write to the file SQLite maps: refused as its pages would be
    except FileNotFoundError:
        pass  # not mapped by anyone yet
    except OSError as exc:
        return f"{shm}: {exc.strerror}"
    for path in (database, Path(f"{database}-wal"), database.parent):
        if os.access(path, os.W_OK) or not os.path.lexists(path):
            continue
        try:
            read_only_fs = bool(os.statvfs(path).f_flag & os.ST_RDONLY)
        except OSError:
            read_only_fs = False
        why = "a read-only file system" if read_only_fs else "read-only or immutable"
        return f"{path} is not writable ({why})"
    return None


class ReadOnlyGuard:
    """The looks for one engine (see the module docstring)."""

    def __init__(self, database: Path) -> None:
        self._database = database
        self._lock = threading.Lock()
        self._mapped_writable = False  # a connection was opened while the files were writable
        self._stale = False  # seen read-only: reopen every connection once writable

    def opening(self, cargs: list[Any], cparams: dict[str, Any]) -> None:
        """The engine's ``do_connect`` event: a connection opened while the files take no
        writes is opened read-only, its ``-shm`` mapping too."""
        with self._lock:
            if file_problem(self._database) is None:
                self._mapped_writable = True
                return
            self._stale = True
        cargs[:] = [f"file:{quote(str(self._database))}?mode=ro&readonly_shm=1"]
        cparams["uri"] = True

    def problem(self, engine: Engine) -> str | None:
        """Why no transaction may start now, or None (after reopening stale connections)."""
        found = file_problem(self._database)
        with self._lock:
            if found is not None:
                self._stale = True
                return found if self._mapped_writable else None
            if not self._stale:
                return None
            self._stale = False
        engine.dispose()  # writable again: no connection keeps a read-only view
        return None
