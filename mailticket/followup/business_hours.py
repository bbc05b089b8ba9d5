"""The weekly-hours syntax of rules.yaml's ``calendar.hours``, parsed into minutes.

``{mon-fri: "09:00-12:00, 13:00-18:00", sat: "10:00-14:00"}`` becomes one tuple of
ranges per weekday (Monday first), each range ``(start, end)`` in minutes after local
midnight with ``end <= 1440``. Errors are plain messages; the rules loader adds the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from itertools import pairwise
from typing import NamedTuple

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_RANGE = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")

Range = tuple[int, int]  # minutes after local midnight: [start, end)
Week = tuple[tuple[Range, ...], ...]  # seven days, Monday first; () is closed


class Hours(NamedTuple):
    """One local date's hours, and why they differ from the week's."""

    ranges: tuple[Range, ...]
    holiday: str | None = None  # the holiday's name ("" when rules.yaml gives none)
    makeup: bool = False  # a make-up working day on a normally closed weekday


@dataclass(frozen=True, slots=True)
class Day:
    day: date
    spans: tuple[tuple[datetime, datetime], ...]  # working intervals as UTC instants
    hours: Hours


def parse_days(value: object) -> tuple[int, ...]:
    """``mon-fri``, ``sat``, ``mon, wed-thu``, ``sun-thu`` -> weekday numbers (0 = Monday)."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"not a day or day range: {value!r} (write e.g. mon-fri or sat)")
    days: set[int] = set()
    for part in value.split(","):
        first, _, last = (piece.strip() for piece in part.partition("-"))
        start = _weekday(first)
        end = _weekday(last) if last else start
        days.update((start + offset) % 7 for offset in range((end - start) % 7 + 1))
    return tuple(sorted(days))


def _weekday(name: str) -> int:
    word = name.lower()
    for index, (short, full) in enumerate(zip(DAY_NAMES, _FULL_NAMES, strict=True)):
        if word in (short, full):
            return index
    raise ValueError(f"unknown day {name!r} (use {', '.join(DAY_NAMES)})")


def parse_ranges(value: object) -> tuple[Range, ...]:
    """``"09:00-12:00, 13:00-18:00"`` (or a list of such strings) -> sorted, disjoint ranges."""
    parts = value if isinstance(value, list) else str(value).split(",")
    ranges = sorted(_range(str(part).strip()) for part in parts if str(part).strip())
    if not ranges:
        raise ValueError(f"no hours in {value!r} (write e.g. 09:00-18:00, or leave the day out)")
    for before, after in pairwise(ranges):
        if after[0] < before[1]:
            raise ValueError(f"ranges overlap: {format_range(before)} and {format_range(after)}")
    return tuple(ranges)


def _range(text: str) -> Range:
    match = _RANGE.match(text)
    if not match:
        raise ValueError(f"bad range {text!r} (write e.g. 09:00-18:00)")
    hour1, minute1, hour2, minute2 = (int(group) for group in match.groups())
    if hour1 > 23 or minute1 > 59 or minute2 > 59 or hour2 > 24 or (hour2 == 24 and minute2):
        raise ValueError(f"bad time in {text!r} (from 00:00 to 24:00)")
    start, end = hour1 * 60 + minute1, hour2 * 60 + minute2
    if end <= start:
        raise ValueError(f"end before start in {text!r} (a range cannot cross midnight)")
    return start, end


def format_range(span: Range) -> str:
    return "-".join(f"{minute // 60:02d}:{minute % 60:02d}" for minute in span)


def build_week(hours: dict[tuple[int, ...], tuple[Range, ...]]) -> Week:
    """One entry per weekday; a day named twice, or a week without hours, is an error."""
    week: list[tuple[Range, ...] | None] = [None] * 7
    for days, ranges in hours.items():
        for day in days:
            if week[day] is not None:
                raise ValueError(f"{DAY_NAMES[day]} is given hours twice")
            week[day] = ranges
    if not any(week):
        raise ValueError("no working time in the week")
    return tuple(ranges or () for ranges in week)


def weekly_minutes(week: Week) -> int:
    return sum(end - start for ranges in week for start, end in ranges)


def format_weekdays(days: set[int]) -> str:
    """{5, 6} -> 'Sat-Sun'; {0, 2} -> 'Mon, Wed'."""
    groups: list[list[int]] = []
    for day in sorted(days):
        if groups and groups[-1][-1] == day - 1:
            groups[-1].append(day)
        else:
            groups.append([day])
    names = [DAY_NAMES[group[0]].title() for group in groups]
    return ", ".join(
        name + (f"-{DAY_NAMES[group[-1]].title()}" if len(group) > 1 else "")
        for name, group in zip(names, groups, strict=True)
    )
