"""Reload rules.yaml when it changes: a poll of the file's content every few seconds.

Polling the content (a hash of a few kilobytes) rather than asking the kernel for
events needs no dependency, works on every filesystem (NFS, bind mounts, editors that
replace the file), and cannot miss two edits inside one mtime tick. The holder decides
what a change means: a bad edit is logged and refused, and the last good rules stay.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from contextlib import suppress
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)

POLL_INTERVAL = 2.0  # seconds between two looks at the file


class Reloadable(Protocol):
    path: Path
    loaded: str | None  # the fingerprint of the content its rules came from, if known

    def reload(self) -> bool: ...


def fingerprint(path: Path) -> str | None:
    """A hash of the file's bytes; None while it is missing or unreadable."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


async def watch_rules(
    holder: Reloadable, stop: asyncio.Event, interval: float = POLL_INTERVAL
) -> None:
    """Until ``stop`` is set, call ``holder.reload()`` (in a thread) after each change.

    The first look compares with what the holder loaded: an edit between its load and
    this task's start is picked up, and an unchanged file is not parsed again (a reload
    holds the GIL for milliseconds, which mail arriving just then would wait for).
    """
    seen = holder.loaded
    while not stop.is_set():
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
        if stop.is_set():
            return
        current = fingerprint(holder.path)
        if current == seen:
            continue
        seen = current
        if current is None:
            log.warning("%s is missing or unreadable: keeping the current rules", holder.path)
            continue
        await asyncio.to_thread(holder.reload)
