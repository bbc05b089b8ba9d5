"""Business-hours arithmetic: table tests with hand-computed answers, plus properties."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from mailticket.followup.business_calendar import (
    ALWAYS,
    CalendarError,
    CalendarSpec,
    add_business_time,
    business_time_between,
    is_working,
)
from mailticket.followup.business_hours import parse_days
from mailticket.followup.due_derivation import describe_duration


def calendar(timezone: str = "Asia/Shanghai", **spec: object) -> CalendarSpec:
    spec.setdefault("hours", {"mon-fri": "09:00-18:00"})
    return CalendarSpec.model_validate({"timezone": timezone, **spec})


SHANGHAI = calendar(holidays=[date(2026, 10, 1), date(2026, 10, 5)])
CHINA = calendar(country="CN")
NEW_YORK = calendar("America/New_York")
BERLIN_24_7 = calendar("Europe/Berlin", hours={"mon-sun": "00:00-24:00"})
BERLIN_NIGHT = calendar("Europe/Berlin", hours={"sun": "01:00-05:00"})
BERLIN_GAP = calendar("Europe/Berlin", hours={"sun": "01:00-02:30, 03:00-05:00"})
LUNCH_AND_SATURDAY = calendar(hours={"mon-fri": "09:00-12:00, 13:00-18:00", "sat": "10:00-14:00"})
MAKEUP_SATURDAY = calendar(workdays=[date(2026, 11, 7)])
CN_SATURDAY_OFF = calendar(country="CN", holidays=[date(2026, 10, 10)])


def local(text: str, cal: CalendarSpec) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=cal.zone)


CASES = [
    # name, calendar, start (local), duration, due (local)
    ("inside hours", SHANGHAI, "2026-11-02 10:00", timedelta(hours=2), "2026-11-02 12:00"),
    ("overnight", SHANGHAI, "2026-11-02 17:00", timedelta(hours=2), "2026-11-03 10:00"),
    ("ends at closing", SHANGHAI, "2026-11-02 17:00", timedelta(hours=1), "2026-11-02 18:00"),
    ("weekend", SHANGHAI, "2026-11-06 17:40", timedelta(hours=2), "2026-11-09 10:40"),
    ("holiday after weekend", SHANGHAI, "2026-10-02 17:40", timedelta(hours=2), "2026-10-06 10:40"),
    ("holiday before Fri", SHANGHAI, "2026-09-30 17:00", timedelta(hours=2), "2026-10-02 10:00"),
    ("Saturday", SHANGHAI, "2026-11-07 11:00", timedelta(hours=2), "2026-11-09 11:00"),
    ("before opening", SHANGHAI, "2026-11-02 07:00", timedelta(hours=1), "2026-11-02 10:00"),
    ("after closing", SHANGHAI, "2026-11-02 20:00", timedelta(hours=1), "2026-11-03 10:00"),
    ("zero at closing", SHANGHAI, "2026-11-02 18:00", timedelta(0), "2026-11-02 18:00"),
    ("zero inside", SHANGHAI, "2026-11-02 10:00", timedelta(0), "2026-11-02 10:00"),
    ("zero on Sunday", SHANGHAI, "2026-11-08 10:00", timedelta(0), "2026-11-09 09:00"),
    ("72 h: 8 days", SHANGHAI, "2026-11-02 09:00", timedelta(hours=72), "2026-11-11 18:00"),
    ("30 d: 16 weeks", SHANGHAI, "2026-11-02 09:00", timedelta(days=30), "2027-02-19 18:00"),
    ("lunch break", LUNCH_AND_SATURDAY, "2026-11-02 11:30", timedelta(hours=1), "2026-11-02 13:30"),
    (
        "Saturday hours",
        LUNCH_AND_SATURDAY,
        "2026-11-06 17:00",
        timedelta(hours=3),
        "2026-11-07 12:00",
    ),
    (
        "make-up Saturday",
        MAKEUP_SATURDAY,
        "2026-11-06 17:00",
        timedelta(hours=2),
        "2026-11-07 10:00",
    ),
    ("CN National Day", CHINA, "2026-09-30 17:00", timedelta(hours=2), "2026-10-08 10:00"),
    ("CN make-up Saturday", CHINA, "2026-10-09 17:00", timedelta(hours=2), "2026-10-10 10:00"),
    (
        "own holiday wins",
        CN_SATURDAY_OFF,
        "2026-10-09 17:00",
        timedelta(hours=2),
        "2026-10-12 10:00",
    ),
    ("CN Spring Festival", CHINA, "2026-02-13 17:00", timedelta(hours=2), "2026-02-14 10:00"),
    ("CN after festival", CHINA, "2026-02-14 17:00", timedelta(hours=2), "2026-02-24 10:00"),
    # New York: the weekday hours stay 09:00-18:00 local while UTC shifts by an hour
    ("NY spring forward", NEW_YORK, "2026-03-06 17:00", timedelta(hours=2), "2026-03-09 10:00"),
    ("NY fall back", NEW_YORK, "2026-10-30 17:00", timedelta(hours=2), "2026-11-02 10:00"),
    # Berlin around the clock: 24 business hours are 24 real hours, whatever the wall says
    ("Berlin 23 h day", BERLIN_24_7, "2026-03-28 12:00", timedelta(hours=24), "2026-03-29 13:00"),
    ("Berlin 25 h day", BERLIN_24_7, "2026-10-24 12:00", timedelta(hours=24), "2026-10-25 11:00"),
    (
        "Berlin short night",
        BERLIN_NIGHT,
        "2026-03-29 00:00",
        timedelta(hours=3),
        "2026-03-29 05:00",
    ),
    ("Berlin long night", BERLIN_NIGHT, "2026-10-25 00:00", timedelta(hours=3), "2026-10-25 03:00"),
]


@pytest.mark.parametrize(
    ("cal", "start", "duration", "due"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_add_business_time(cal: CalendarSpec, start: str, duration: timedelta, due: str) -> None:
    result = add_business_time(local(start, cal), duration, cal)
    assert result.at.tzinfo is UTC
    assert result.at == local(due, cal)


def test_berlin_fall_back_night_holds_five_real_hours() -> None:
    """01:00-05:00 on 2026-10-25 runs 01:00 CEST to 05:00 CET: the 02:00-03:00 twice."""
    night = (local("2026-10-25 00:00", BERLIN_NIGHT), local("2026-10-25 12:00", BERLIN_NIGHT))
    assert business_time_between(*night, BERLIN_NIGHT) == timedelta(hours=5)
    spring = (local("2026-03-29 00:00", BERLIN_NIGHT), local("2026-03-29 12:00", BERLIN_NIGHT))
    assert business_time_between(*spring, BERLIN_NIGHT) == timedelta(hours=3)
    assert add_business_time(night[0], timedelta(hours=5), BERLIN_NIGHT).at == datetime(
        2026, 10, 25, 4, tzinfo=UTC
    )


def test_always_is_wall_time_in_utc() -> None:
    start = datetime(2026, 11, 7, 11, 0, tzinfo=UTC)  # a Saturday
    due = add_business_time(start, timedelta(hours=2), ALWAYS, event="received")
    assert due.at == datetime(2026, 11, 7, 13, 0, tzinfo=UTC)
    assert due.derivation == (
        "received Sat 2026-11-07 11:00, 2 hours → Sat 2026-11-07 13:00 (UTC, calendar: always)"
    )
    assert business_time_between(start, due.at, ALWAYS) == timedelta(hours=2)
    assert CalendarSpec.model_validate("always").always


DERIVATIONS = [
    (
        SHANGHAI,
        "2026-10-02 17:40",
        "received Fri 2026-10-02 17:40, 2 business hours, Sat-Sun closed, "
        "Mon 2026-10-05 is a holiday → Tue 2026-10-06 10:40 (Asia/Shanghai)",
    ),
    (
        CHINA,
        "2026-09-30 17:00",
        "received Wed 2026-09-30 17:00, 2 business hours, "
        "Thu 2026-10-01 to Wed 2026-10-07 closed for National Day → Thu 2026-10-08 10:00 (Asia/Shanghai)",
    ),
    (
        CHINA,
        "2026-10-09 17:00",
        "received Fri 2026-10-09 17:00, 2 business hours, "
        "Sat 2026-10-10 is a working day → Sat 2026-10-10 10:00 (Asia/Shanghai)",
    ),
    (
        SHANGHAI,
        "2026-11-08 04:00",
        "received Sun 2026-11-08 04:00 (outside hours), 2 business hours, "
        "Sun closed → Mon 2026-11-09 11:00 (Asia/Shanghai)",
    ),
]


@pytest.mark.parametrize(("cal", "start", "derivation"), DERIVATIONS)
def test_derivation_says_why(cal: CalendarSpec, start: str, derivation: str) -> None:
    due = add_business_time(local(start, cal), timedelta(hours=2), cal, event="received")
    assert due.derivation == derivation


def test_long_derivation_stays_short() -> None:
    start = local("2025-01-02 09:00", CHINA)
    due = add_business_time(start, timedelta(days=120), CHINA)
    assert "Sat-Sun closed" in due.derivation
    assert "more holiday periods" in due.derivation
    assert len(due.derivation) < 500


@pytest.mark.parametrize(
    ("duration", "text"),
    [
        (timedelta(hours=2), "2 business hours"),
        (timedelta(hours=1, minutes=30), "1 business hour 30 minutes"),
        (timedelta(minutes=45), "45 business minutes"),
        (timedelta(seconds=45), "45 business seconds"),
        (timedelta(0), "0 business minutes"),
        (timedelta(days=3), "72 business hours"),
    ],
)
def test_describe_duration(duration: timedelta, text: str) -> None:
    assert describe_duration(duration) == text


BETWEEN = [
    (SHANGHAI, "2026-11-06 17:00", "2026-11-09 10:00", timedelta(hours=2)),
    (SHANGHAI, "2026-11-09 10:00", "2026-11-06 17:00", timedelta(0)),
    (SHANGHAI, "2026-11-07 08:00", "2026-11-08 20:00", timedelta(0)),
    (SHANGHAI, "2026-09-30 00:00", "2026-10-07 00:00", timedelta(hours=27)),
    (SHANGHAI, "2026-11-02 09:00", "2026-11-09 09:00", timedelta(hours=45)),
    (CHINA, "2026-09-28 00:00", "2026-10-12 00:00", timedelta(hours=54)),
    (NEW_YORK, "2026-03-06 17:00", "2026-03-09 10:00", timedelta(hours=2)),
    (BERLIN_24_7, "2026-03-29 00:00", "2026-03-30 00:00", timedelta(hours=23)),
    (BERLIN_24_7, "2026-10-25 00:00", "2026-10-26 00:00", timedelta(hours=25)),
    # 02:30 does not exist that night: 01:00 CET to 05:00 CEST, the pause swallowed
    (BERLIN_GAP, "2026-03-29 00:00", "2026-03-29 12:00", timedelta(hours=3)),
]


@pytest.mark.parametrize(("cal", "a", "b", "expected"), BETWEEN)
def test_business_time_between(cal: CalendarSpec, a: str, b: str, expected: timedelta) -> None:
    assert business_time_between(local(a, cal), local(b, cal), cal) == expected


def test_is_working() -> None:
    assert is_working(local("2026-11-02 09:00", SHANGHAI), SHANGHAI)
    assert not is_working(local("2026-11-02 18:00", SHANGHAI), SHANGHAI)
    assert not is_working(local("2026-10-05 10:00", SHANGHAI), SHANGHAI)
    assert is_working(local("2026-10-10 10:00", CHINA), CHINA)
    assert is_working(datetime(2026, 11, 8, 3, tzinfo=UTC), ALWAYS)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        add_business_time(datetime(2026, 11, 2, 9), timedelta(hours=1), SHANGHAI)


def test_search_is_bounded() -> None:
    """Mondays only, and every Monday of two years a holiday: an error, not a hang."""
    mondays = [date(2026, 1, 5) + timedelta(weeks=week) for week in range(105)]
    cal = calendar(hours={"mon": "09:00-10:00"}, holidays=mondays)
    with pytest.raises(CalendarError, match="no working time within"):
        add_business_time(local("2026-01-01 00:00", cal), timedelta(hours=1), cal)


def test_yaml_as_admins_write_it() -> None:
    text = """
    timezone: Asia/Shanghai
    hours: {mon-fri: "09:00-12:00, 13:00-18:00", sat: "10:00-14:00"}
    holidays: [2026-10-01, 2026-10-02]
    workdays: [2026-10-10]
    country: cn
    """
    cal = CalendarSpec.model_validate(yaml.safe_load(text))
    assert cal.holidays == (date(2026, 10, 1), date(2026, 10, 2))
    assert cal.zone == ZoneInfo("Asia/Shanghai")
    assert cal.country == "CN"
    assert not cal.always


BAD = [
    ("never", "write `always`"),
    ({"timezone": "UTC"}, "hours missing"),
    (
        {"timezone": "Asia/Shangai", "hours": {"mon": "09:00-18:00"}},
        "unknown time zone 'Asia/Shangai'",
    ),
    ({"hours": {"mun-fri": "09:00-18:00"}}, "unknown day 'mun'"),
    ({"hours": {"mon": "18:00-09:00"}}, "end before start in '18:00-09:00'"),
    ({"hours": {"mon": "09:00-09:00"}}, "end before start"),
    ({"hours": {"mon": "9-18"}}, "bad range '9-18'"),
    ({"hours": {"mon": "09:00-25:00"}}, "bad time"),
    ({"hours": {"mon": "09:00-12:00, 11:00-13:00"}}, "ranges overlap: 09:00-12:00 and 11:00-13:00"),
    ({"hours": {"mon": ""}}, "no hours"),
    ({"hours": {}}, "no working time in the week"),
    ({"hours": {"mon-fri": "09:00-18:00", "fri": "10:00-12:00"}}, "fri is given hours twice"),
    ({"hours": {"mon": "09:00-18:00"}, "country": "XX"}, "unknown country 'XX'"),
    (
        {"hours": {"mon": "09:00-18:00"}, "country": "DE", "subdivision": "XY"},
        "unknown subdivision",
    ),
    ({"hours": {"mon": "09:00-18:00"}, "subdivision": "BY"}, "subdivision needs a country"),
    ({"hours": {"mon": "09:00-18:00"}, "holidays": ["2026-13-01"]}, "date"),
    ({"hours": {"mon": "09:00-18:00"}, "weekends": "sat"}, "Extra inputs"),
    (
        {"hours": {"mon": "09:00-18:00"}, "holidays": ["2026-10-01"], "workdays": ["2026-10-01"]},
        "2026-10-01 is both a holiday and a workday",
    ),
]


@pytest.mark.parametrize(("data", "message"), BAD)
def test_bad_calendars_are_refused_in_one_line(data: object, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        CalendarSpec.model_validate(data)
    error = caught.value.errors()[0]
    assert message in error["msg"]
    assert "\n" not in error["msg"]


@pytest.mark.parametrize(
    ("text", "days"),
    [
        ("mon-fri", (0, 1, 2, 3, 4)),
        ("sat", (5,)),
        ("Monday, wed-thu", (0, 2, 3)),
        ("sun-thu", (0, 1, 2, 3, 6)),
        ("fri-mon", (0, 4, 5, 6)),
    ],
)
def test_parse_days(text: str, days: tuple[int, ...]) -> None:
    assert parse_days(text) == days


# -- properties ------------------------------------------------------------------------

CALENDARS = st.sampled_from(
    [SHANGHAI, CHINA, NEW_YORK, BERLIN_24_7, BERLIN_NIGHT, BERLIN_GAP, LUNCH_AND_SATURDAY, ALWAYS]
)
_ANY_START = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2027, 6, 30), timezones=st.just(UTC)
)
# half-hour starts and durations hit the edges (opening, closing, midnight) often
STARTS = _ANY_START | _ANY_START.map(
    lambda d: d.replace(minute=d.minute // 30 * 30, second=0, microsecond=0)
)
DURATIONS = st.integers(0, 120 * 60).map(lambda m: timedelta(minutes=m)) | st.integers(0, 240).map(
    lambda n: timedelta(minutes=30 * n)
)


@settings(max_examples=150)
@given(cal=CALENDARS, start=STARTS, a=DURATIONS, b=DURATIONS)
def test_adding_in_two_steps_equals_adding_once(
    cal: CalendarSpec, start: datetime, a: timedelta, b: timedelta
) -> None:
    first = add_business_time(start, a, cal).at
    assert add_business_time(first, b, cal).at == add_business_time(start, a + b, cal).at
    assert (
        add_business_time(start, min(a, b), cal).at <= add_business_time(start, max(a, b), cal).at
    )


@settings(max_examples=150)
@given(cal=CALENDARS, start=STARTS, duration=DURATIONS)
def test_between_measures_what_add_added(
    cal: CalendarSpec, start: datetime, duration: timedelta
) -> None:
    due = add_business_time(start, duration, cal).at
    assert due >= start
    assert business_time_between(start, due, cal) == duration


@settings(max_examples=150)
@given(cal=st.sampled_from([SHANGHAI, CHINA]), start=STARTS, minutes=st.integers(1, 120 * 60))
def test_the_last_minute_counted_is_working_time(
    cal: CalendarSpec, start: datetime, minutes: int
) -> None:
    last = add_business_time(start, timedelta(minutes=minutes), cal).at - timedelta(microseconds=1)
    day = last.astimezone(cal.zone).date()
    assert is_working(last, cal)
    assert day not in cal.holidays
    if cal.country:
        assert day not in holidays.country_holidays(cal.country, years=day.year)
