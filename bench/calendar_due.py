"""Calendar micro-benchmark: what ``add_business_time`` costs for short and long durations.

The functions walk one calendar day at a time and jump over whole working intervals, so
the cost should follow the calendar days spanned (about 1.4 per 9 business hours on a
Mon-Fri 09:00-18:00 week), not the minutes. Each row: the median of ``--repeat`` runs of
``--number`` calls, from a start that varies over a year so country-holiday lookups hit
their per-year cache as they do in a long-running daemon.

    .venv/bin/python bench/calendar_due.py [--number 500] [--repeat 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import timeit
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from mailticket.followup.business_calendar import (
    ALWAYS,
    CalendarSpec,
    add_business_time,
    business_time_between,
)

CALENDARS = {
    "always": ALWAYS,
    "Shanghai Mon-Fri + CN holidays": CalendarSpec.model_validate(
        {"timezone": "Asia/Shanghai", "hours": {"mon-fri": "09:00-18:00"}, "country": "CN"}
    ),
    "Berlin, lunch break, Sat": CalendarSpec.model_validate(
        {
            "timezone": "Europe/Berlin",
            "hours": {"mon-fri": "09:00-12:00, 13:00-18:00", "sat": "10:00-14:00"},
            "holidays": ["2026-12-24", "2026-12-25", "2026-12-31"],
        }
    ),
}
DURATIONS = {"1 h": timedelta(hours=1), "72 h": timedelta(hours=72), "30 d": timedelta(days=30)}


def per_call(function: Callable[[], object], number: int, repeat: int) -> float:
    """Median seconds per call of a zero-argument callable."""
    runs = timeit.repeat(function, number=number, repeat=repeat)
    return statistics.median(runs) / number


def measure(cal: CalendarSpec, duration: timedelta, number: int, repeat: int) -> dict[str, float]:
    """Microseconds per call: warm (days memoised, as in a daemon) and cold, and the span."""
    base = datetime(2026, 1, 1, 7, 13, tzinfo=UTC)
    starts = [base + timedelta(hours=37 * i) for i in range(number)]  # a year of starts
    due = {start: add_business_time(start, duration, cal).at for start in starts}
    cursor = iter(starts * (repeat + 1))
    warm = per_call(lambda: add_business_time(next(cursor), duration, cal), number, repeat)
    cursor = iter(starts * (repeat + 1))

    def cold() -> None:
        cal._rules.days.clear()  # the per-calendar memo of days; a rules reload starts empty
        add_business_time(next(cursor), duration, cal)

    cold_time = per_call(cold, number, repeat)
    cursor = iter(starts * (repeat + 1))

    def between() -> None:
        start = next(cursor)
        business_time_between(start, due[start], cal)

    return {
        "days": statistics.mean((due[s] - s).total_seconds() / 86400 for s in starts),
        "add_us": warm * 1e6,
        "add_cold_us": cold_time * 1e6,
        "between_us": per_call(between, number, repeat) * 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    results: dict[str, dict[str, dict[str, float]]] = {}
    for name, cal in CALENDARS.items():
        results[name] = {
            label: measure(cal, d, args.number, args.repeat) for label, d in DURATIONS.items()
        }
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(
        f"{'calendar':32} {'duration':>8} {'days':>6} {'add µs':>7} {'ratio':>6}"
        f" {'cold µs':>8} {'ratio':>6} {'between µs':>11}"
    )
    for name, rows in results.items():
        warm_1h, cold_1h = rows["1 h"]["add_us"], rows["1 h"]["add_cold_us"]
        for label, row in rows.items():
            print(
                f"{name:32} {label:>8} {row['days']:6.1f} {row['add_us']:7.1f}"
                f" {row['add_us'] / warm_1h:6.1f} {row['add_cold_us']:8.1f}"
                f" {row['add_cold_us'] / cold_1h:6.1f} {row['between_us']:11.1f}"
            )


if __name__ == "__main__":
    main()
