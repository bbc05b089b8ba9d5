"""Business hours: when the SLA clocks run, and due times with a readable derivation.

``CalendarSpec`` is rules.yaml's ``calendar`` key: the string ``always`` (clocks run
around the clock, in UTC), or a time zone, weekly hours (syntax in business_hours),
holidays and make-up working days, optionally plus a country's public holidays and
official make-up days from the ``holidays`` package. Working time is a set of local
wall-clock intervals, each turned into UTC instants before it is measured, so a day
with a DST change simply holds one hour more or less.

Both functions walk the calendar one day at a time and jump over whole intervals: their
cost grows with the calendar days spanned, never with minutes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holiday_data
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PrivateAttr,
    field_validator,
    model_validator,
)

from mailticket.followup.business_hours import (
    Day,
    Hours,
    Range,
    Week,
    build_week,
    parse_days,
    parse_ranges,
    weekly_minutes,
)
from mailticket.followup.due_derivation import Walk, derivation, label

DaySet = Annotated[tuple[int, ...], BeforeValidator(parse_days)]
DayHours = Annotated[tuple[Range, ...], BeforeValidator(parse_ranges)]


class CalendarError(ValueError):
    """No working time can be found where the calendar promised some."""


@dataclass(frozen=True, slots=True)
class Due:
    at: datetime  # aware, UTC
    derivation: str  # "received Fri 2026-10-02 17:40, 2 business hours, ... → Tue ... (zone)"


class CalendarSpec(BaseModel):
    """rules.yaml ``calendar``; the string ``always`` (``ALWAYS``) is 24/7 UTC."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timezone: str = "UTC"
    hours: dict[DaySet, DayHours] | None = None  # None: always
    holidays: tuple[date, ...] = ()
    workdays: tuple[date, ...] = ()  # make-up working days (调休) despite their weekday
    country: str | None = None  # adds public holidays and make-up days from `holidays`
    subdivision: str | None = None  # a state or province of `country`, e.g. BY for DE

    _rules: _Rules = PrivateAttr()

    @model_validator(mode="before")
    @classmethod
    def _always(cls, data: Any) -> Any:
        if data == "always":
            return {"hours": None}  # this validator does not see its own output again
        if isinstance(data, str):
            raise ValueError(f"{data!r}: write `always`, or timezone/hours/holidays")
        if isinstance(data, dict) and data.get("hours") is None:
            raise ValueError("hours missing (e.g. hours: {mon-fri: 09:00-18:00}), or `always`")
        return data

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {name!r} (e.g. Asia/Shanghai)") from None
        return name

    @field_validator("hours")
    @classmethod
    def _some_hours(cls, hours: dict[tuple[int, ...], tuple[Range, ...]] | None) -> Any:
        if hours is not None:
            build_week(hours)
        return hours

    @field_validator("country")
    @classmethod
    def _known_country(cls, country: str | None) -> str | None:
        if country is None:
            return None
        if country.upper() not in holiday_data.list_supported_countries():
            raise ValueError(f"unknown country {country!r} (ISO 3166-1 alpha-2, e.g. CN, DE, US)")
        return country.upper()

    @model_validator(mode="after")
    def _consistent(self) -> CalendarSpec:
        _check_subdivision(self.country, self.subdivision)
        both = set(self.holidays) & set(self.workdays)
        if both:
            raise ValueError(f"{min(both)} is both a holiday and a workday")
        week = build_week(self.hours) if self.hours is not None else (((0, 1440),),) * 7
        self._rules = _Rules(
            zone=ZoneInfo(self.timezone),
            week=week,
            makeup=Counter(day for day in week if day).most_common(1)[0][0],
            holidays=frozenset(self.holidays),
            workdays=frozenset(self.workdays),
            country=self.country,
            subdivision=self.subdivision,
        )
        return self

    @property
    def always(self) -> bool:
        return self.hours is None

    @property
    def zone(self) -> ZoneInfo:
        return self._rules.zone


@dataclass(frozen=True, slots=True)
class _Rules:
    """The validated calendar in the shape the day walk reads fastest."""

    zone: ZoneInfo
    week: Week
    makeup: tuple[Range, ...]  # a make-up day on a closed weekday: the commonest hours
    holidays: frozenset[date]
    workdays: frozenset[date]
    country: str | None
    subdivision: str | None
    days: dict[date, Day] = field(default_factory=dict, compare=False)  # memo of day()

    def day(self, day: date) -> Day:
        """A local date with its working intervals in UTC, computed once per calendar."""
        known = self.days.get(day)
        if known is None:
            hours = self.hours_on(day)
            known = self.days[day] = Day(day, _spans(day, hours.ranges, self.zone), hours)
        return known

    def hours_on(self, day: date) -> Hours:
        """A local date's hours: rules.yaml's lists first, then the country's, then the week."""
        weekly = self.week[day.weekday()]
        if day in self.workdays:
            return Hours(weekly or self.makeup, makeup=not weekly)
        if day in self.holidays:
            return Hours((), holiday="")
        if self.country:
            public, makeup = _country_year(self.country, self.subdivision, day.year)
            if day in makeup:
                return Hours(weekly or self.makeup, makeup=not weekly)
            if day in public:
                return Hours((), holiday=public[day])
        return Hours(weekly)


def _check_subdivision(country: str | None, subdivision: str | None) -> None:
    if subdivision is None:
        return
    if country is None:
        raise ValueError("subdivision needs a country")
    known = holiday_data.list_supported_countries()[country]
    if subdivision not in known:
        examples = ", ".join(known[:8])
        raise ValueError(f"unknown subdivision {subdivision!r} of {country} (e.g. {examples})")


@lru_cache(maxsize=512)
def _country_year(
    country: str, subdivision: str | None, year: int
) -> tuple[dict[date, str], frozenset[date]]:
    """One year of public holidays (name by date) and official make-up working days."""
    public = holiday_data.country_holidays(country, subdiv=subdivision, years=year)
    names = {day: str(name) for day, name in public.items() if day.year == year}
    return names, frozenset(day for day in public.weekend_workdays if day.year == year)


ALWAYS = CalendarSpec.model_validate("always")


def _days(start: datetime, cal: CalendarSpec) -> Iterator[Day]:
    """Local dates from ``start``'s on, each with its working intervals."""
    rules = cal._rules
    day = start.astimezone(rules.zone).date()
    while True:
        yield rules.day(day)
        day += timedelta(days=1)


def _spans(
    day: date, ranges: tuple[Range, ...], zone: ZoneInfo
) -> tuple[tuple[datetime, datetime], ...]:
    """Local wall-clock ranges as UTC intervals, in order and never overlapping.

    A time in a spring-forward gap maps past the gap (PEP 495, fold=0), so a range that
    starts or ends in the gap shrinks; one that lies wholly inside it vanishes.
    """
    midnight = datetime.combine(day, time(), tzinfo=zone)
    spans: list[tuple[datetime, datetime]] = []
    for start, end in ranges:
        opens = (midnight + timedelta(minutes=start)).astimezone(UTC)
        closes = (midnight + timedelta(minutes=end)).astimezone(UTC)
        opens = max(opens, spans[-1][1]) if spans else opens
        if opens < closes:
            spans.append((opens, closes))
    return tuple(spans)


def add_business_time(
    start: datetime, duration: timedelta, cal: CalendarSpec, *, event: str = "from"
) -> Due:
    """``start`` plus ``duration`` of working time, in UTC, and how it was reached.

    Landing exactly on a closing time stays there (18:00, not 09:00 the next day), so
    adding a and then b equals adding a + b.
    """
    start = _utc(start)
    if cal.always:
        end = start + duration
        return Due(end, derivation(Walk(event, start, duration, end, cal.zone, always=True)))
    weeks = duration / timedelta(minutes=weekly_minutes(cal._rules.week))
    limit = 14 * int(weeks + 1) + 366  # holidays would have to eat half of all weeks
    remaining, walked = duration, list[Day]()
    for count, day in enumerate(_days(start, cal)):
        if count > limit:
            raise CalendarError(f"no working time within {count} days after {start:%Y-%m-%d}")
        walked.append(day)
        for opens, closes in day.spans:
            if closes < start:
                continue
            begin = max(opens, start)
            if remaining <= closes - begin:
                end = begin + remaining
                working = is_working(start, cal)
                walk = Walk(event, start, duration, end, cal.zone, False, working, walked)
                return Due(end, derivation(walk))
            remaining -= closes - begin
    raise AssertionError("unreachable: _days never ends")


def business_time_between(a: datetime, b: datetime, cal: CalendarSpec) -> timedelta:
    """Working time from ``a`` to ``b`` (zero when ``b`` is not after ``a``)."""
    a, b = _utc(a), _utc(b)
    if b <= a:
        return timedelta(0)
    if cal.always:
        return b - a
    total, last = timedelta(0), b.astimezone(cal.zone).date()
    for day in _days(a, cal):
        if day.day > last:
            return total
        for opens, closes in day.spans:
            total += max(timedelta(0), min(closes, b) - max(opens, a))
    raise AssertionError("unreachable: _days never ends")


def is_working(at: datetime, cal: CalendarSpec) -> bool:
    """Whether the clock runs at ``at`` (a closing instant is outside)."""
    if cal.always:
        return True
    at = _utc(at)
    return any(opens <= at < closes for opens, closes in next(_days(at, cal)).spans)


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment}: business time needs aware datetimes")
    return moment.astimezone(UTC)


def local_label(moment: datetime, cal: CalendarSpec) -> str:
    """``Tue 2026-10-06 10:40`` in the calendar's zone (UTC for ``always``)."""
    return label(moment.astimezone(cal.zone), minutes=True)
