"""Durations ("45s", "30m", "8h", "3d") and sizes ("25MiB") as admins write them."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import NamedTuple

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib)?\s*$", re.IGNORECASE)
_BYTES = {
    "b": 1,
    "kb": 1000,
    "kib": 1024,
    "mb": 1000**2,
    "mib": 1024**2,
    "gb": 1000**3,
    "gib": 1024**3,
}


def parse_duration(value: object) -> timedelta:
    """A number of seconds, or a number with one unit: s, m, h, d, w."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"not a duration: {value!r} (write e.g. 45s, 30m, 8h, 3d)")
    return timedelta(seconds=float(match[1]) * _SECONDS[match[2].lower()])


def parse_size(value: object) -> int:
    """A number of bytes, or a number with a unit: KB, KiB, MB, MiB, GB, GiB."""
    if isinstance(value, bool):
        raise ValueError(f"not a size: {value!r}")
    if isinstance(value, int):
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"not a size: {value!r} (write e.g. 25MiB)")
    return int(float(match[1]) * _BYTES[(match[2] or "b").lower()])


class Rate(NamedTuple):
    """At most ``limit`` in any ``period`` ("5/10m")."""

    limit: int
    period: timedelta

    def __str__(self) -> str:
        return f"{self.limit}/{format_duration(self.period)}"


def parse_rate(value: object) -> Rate:
    """``COUNT/DURATION``, e.g. ``5/10m``: at most 5 in any 10 minutes."""
    if isinstance(value, Rate):
        return value
    count, slash, period = str(value).partition("/")
    if not slash or not count.strip().isdigit() or int(count) < 1:
        raise ValueError(f"not a rate: {value!r} (write e.g. 5/10m: at most 5 in 10 minutes)")
    return Rate(int(count), parse_duration(period))


def format_duration(delta: timedelta) -> str:
    """The shortest exact form: 90m -> '90m', 2 days -> '2d'."""
    seconds = int(delta.total_seconds())
    for unit in ("d", "h", "m"):
        if seconds and seconds % _SECONDS[unit] == 0:
            return f"{seconds // _SECONDS[unit]}{unit}"
    return f"{seconds}s"
