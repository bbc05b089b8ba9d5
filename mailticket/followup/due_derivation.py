"""The readable derivation of a due time: where the clock started, what it skipped.

"received Fri 2026-10-02 17:40, 2 business hours, Sat-Sun closed, Mon 2026-10-05 is a
holiday → Tue 2026-10-06 10:40 (Asia/Shanghai)" is shown by ``tickets show`` and
``explain`` and written to the ticket's events, so it stays one line however long the
walk: weekly closed days once, at most three holiday periods and make-up days by date.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from mailticket.followup.business_hours import DAY_NAMES, Day, format_weekdays

_MAX_NOTES = 3


@dataclass(frozen=True, slots=True)
class Walk:
    """What add_business_time saw on its way."""

    event: str  # "received", "pending since", ...
    start: datetime
    duration: timedelta
    end: datetime
    zone: ZoneInfo
    always: bool  # calendar: always (wall time in UTC)
    start_working: bool = True  # False: the clock started at the next opening
    days: Sequence[Day] = ()  # the local dates walked, in order


def derivation(walk: Walk) -> str:
    start = label(walk.start.astimezone(walk.zone), True)
    end = label(walk.end.astimezone(walk.zone), True)
    if walk.always:
        duration = describe_duration(walk.duration, "")
        return f"{walk.event} {start}, {duration} → {end} (UTC, calendar: always)"
    outside = "" if walk.start_working else " (outside hours)"
    notes = [f"{walk.event} {start}{outside}", describe_duration(walk.duration), *_notes(walk.days)]
    return f"{', '.join(notes)} → {end} ({walk.zone.key})"


def label(moment: date | datetime, minutes: bool = False) -> str:
    """``Tue 2026-10-06`` or, with ``minutes``, ``Tue 2026-10-06 10:40``."""
    name = DAY_NAMES[moment.weekday()].title()
    return f"{name} {moment:%Y-%m-%d %H:%M}" if minutes else f"{name} {moment:%Y-%m-%d}"


def describe_duration(duration: timedelta, unit: str = "business ") -> str:
    """``2 business hours``, ``1 business hour 30 minutes``, ``45 business minutes``."""
    minutes, seconds = divmod(round(duration.total_seconds()), 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{hours} {unit}hour{'s' * (hours != 1)}"] if hours else []
    if minutes or not (hours or seconds):
        parts.append(f"{minutes} {'' if parts else unit}minute{'s' * (minutes != 1)}")
    if seconds:
        parts.append(f"{seconds} {'' if parts else unit}second{'s' * (seconds != 1)}")
    return " ".join(parts)


def _notes(walked: Sequence[Day]) -> list[str]:
    """Why the clock stood still: weekly closed days, holidays, make-up days worked."""
    weekly: set[int] = set()
    periods: list[list[Day]] = []
    for run in _closed_runs(walked):
        marked = [i for i, day in enumerate(run) if day.hours.holiday is not None]
        first, last = (marked[0], marked[-1] + 1) if marked else (len(run), len(run))
        weekly.update(day.day.weekday() for day in run[:first] + run[last:])
        if marked:
            periods.append(run[first:last])
    notes = [f"{format_weekdays(weekly)} closed"] if weekly else []
    notes += [_period(period) for period in periods[:_MAX_NOTES]]
    if len(periods) > _MAX_NOTES:
        notes.append(f"{len(periods) - _MAX_NOTES} more holiday periods")
    makeup = [day for day in walked if day.hours.makeup]
    return notes + [f"{label(day.day)} is a working day" for day in makeup[:_MAX_NOTES]]


def _closed_runs(walked: Sequence[Day]) -> Iterator[list[Day]]:
    run: list[Day] = []
    for day in walked:
        if not day.spans:
            run.append(day)
        elif run:
            yield run
            run = []
    if run:
        yield run


def _period(period: list[Day]) -> str:
    name = next((day.hours.holiday for day in period if day.hours.holiday), "")
    if len(period) == 1:
        return f"{label(period[0].day)} is a holiday" + (f" ({name})" if name else "")
    first, last = label(period[0].day), label(period[-1].day)
    return f"{first} to {last} closed for {name or 'holidays'}"
