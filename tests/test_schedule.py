"""POSIX cron semantics of ROTATOR_SCHEDULE on APScheduler 3: weekdays, either-day rule, DST."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.base import BaseTrigger

from rotator.errors import ConfigError
from rotator.schedule import PosixCronTrigger, load_zone, next_fire_times, parse_schedule

# A Friday, so that every weekday comes within the following week.
FRIDAY = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")


def fires(expression: str, now: datetime = FRIDAY, count: int = 5, zone: str = "UTC") -> list[str]:
    trigger = parse_schedule(expression, zone)
    return [moment.isoformat() for moment in next_fire_times(trigger, now, count)]


def weekdays(expression: str, count: int = 10) -> set[str]:
    trigger = parse_schedule(expression, "UTC")
    return {moment.strftime("%a") for moment in next_fire_times(trigger, FRIDAY, count)}


def test_default_schedule_fires_daily_at_three() -> None:
    assert fires("0 3 * * *", count=3) == [
        "2026-11-21T03:00:00+00:00",
        "2026-11-22T03:00:00+00:00",
        "2026-11-23T03:00:00+00:00",
    ]


def test_one_is_monday_not_tuesday() -> None:
    assert weekdays("0 3 * * 1") == {"Mon"}
    assert fires("0 3 * * 1", count=1) == ["2026-11-23T03:00:00+00:00"]


@pytest.mark.parametrize("expression", ["0 3 * * 0", "0 3 * * 7", "0 3 * * sun", "0 3 * * SUN"])
def test_zero_seven_and_sun_are_sunday(expression: str) -> None:
    assert weekdays(expression) == {"Sun"}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("0 3 * * 1-5", {"Mon", "Tue", "Wed", "Thu", "Fri"}),
        ("0 3 * * mon-fri", {"Mon", "Tue", "Wed", "Thu", "Fri"}),
        ("0 3 * * 5-7", {"Fri", "Sat", "Sun"}),
        ("0 3 * * fri-sun", {"Fri", "Sat", "Sun"}),
        ("0 3 * * 0,3", {"Sun", "Wed"}),
        ("0 3 * * */2", {"Sun", "Tue", "Thu", "Sat"}),
        ("0 3 * * 1-5/2", {"Mon", "Wed", "Fri"}),
        ("0 3 * * 6,7", {"Sat", "Sun"}),
    ],
)
def test_weekday_ranges_lists_and_steps(expression: str, expected: set[str]) -> None:
    assert weekdays(expression, count=14) == expected


def test_day_of_month_or_weekday_fires_on_either() -> None:
    moments = next_fire_times(parse_schedule("0 3 1 * mon", "UTC"), FRIDAY, 6)
    assert [m.date().isoformat() for m in moments] == [
        "2026-11-23",  # Monday
        "2026-11-30",  # Monday
        "2026-12-01",  # the 1st, a Tuesday
        "2026-12-07",
        "2026-12-14",
        "2026-12-21",
    ]


def test_restricted_day_of_month_alone_ignores_weekday() -> None:
    assert fires("0 3 1 * *", count=3) == [
        "2026-12-01T03:00:00+00:00",
        "2027-01-01T03:00:00+00:00",
        "2027-02-01T03:00:00+00:00",
    ]


def test_month_names_and_steps() -> None:
    assert fires("0 0 1 jan,jul *", count=2) == [
        "2027-01-01T00:00:00+00:00",
        "2027-07-01T00:00:00+00:00",
    ]
    assert fires("0 0 1 */6 *", count=2) == [
        "2027-01-01T00:00:00+00:00",
        "2027-07-01T00:00:00+00:00",
    ]


def test_every_fifteen_minutes() -> None:
    assert fires("*/15 * * * *", count=4) == [
        "2026-11-20T12:00:00+00:00",
        "2026-11-20T12:15:00+00:00",
        "2026-11-20T12:30:00+00:00",
        "2026-11-20T12:45:00+00:00",
    ]


def test_hour_range() -> None:
    assert [m[11:16] for m in fires("30 1-5 * * *", count=6)] == [
        "01:30",
        "02:30",
        "03:30",
        "04:30",
        "05:30",
        "01:30",
    ]


def test_times_are_shown_in_the_zone_with_its_offset() -> None:
    assert fires("0 3 * * *", count=1, zone="Europe/Berlin") == ["2026-11-21T03:00:00+01:00"]
    assert fires("0 3 * * *", count=1, zone="America/New_York") == ["2026-11-21T03:00:00-05:00"]
    summer = datetime(2026, 7, 1, tzinfo=UTC)
    assert fires("0 3 * * *", now=summer, count=1, zone="Europe/Berlin") == [
        "2026-07-01T03:00:00+02:00"
    ]


def test_now_itself_counts_and_naive_now_is_utc() -> None:
    on_the_hour = datetime(2026, 11, 20, 3, 0)  # noqa: DTZ001  # naive on purpose
    assert fires("0 3 * * *", now=on_the_hour, count=1) == ["2026-11-20T03:00:00+00:00"]


def test_spring_gap_runs_once_at_the_next_valid_time() -> None:
    # Europe/Berlin, 2026-03-29: clocks jump from 02:00 CET to 03:00 CEST; 02:30 never happens.
    before = datetime(2026, 3, 27, 12, tzinfo=UTC)
    assert fires("30 2 * * *", now=before, count=4, zone="Europe/Berlin") == [
        "2026-03-28T02:30:00+01:00",
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T02:30:00+02:00",
        "2026-03-31T02:30:00+02:00",
    ]


def test_spring_gap_collapses_several_fire_times_into_one() -> None:
    before = datetime(2026, 3, 28, 23, tzinfo=UTC)
    assert fires("*/15 2 * * *", now=before, count=2, zone="Europe/Berlin") == [
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T02:00:00+02:00",
    ]


def test_autumn_overlap_runs_once() -> None:
    # Europe/Berlin, 2026-10-25: clocks fall back from 03:00 CEST to 02:00 CET; 02:30 happens twice.
    before = datetime(2026, 10, 23, 12, tzinfo=UTC)
    assert fires("30 2 * * *", now=before, count=4, zone="Europe/Berlin") == [
        "2026-10-24T02:30:00+02:00",
        "2026-10-25T02:30:00+02:00",
        "2026-10-26T02:30:00+01:00",
        "2026-10-27T02:30:00+01:00",
    ]


def test_autumn_overlap_never_repeats_a_wall_time() -> None:
    before = datetime(2026, 10, 24, 23, 50, tzinfo=UTC)
    assert fires("*/30 * * * *", now=before, count=4, zone="Europe/Berlin") == [
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:30:00+02:00",
        "2026-10-25T03:00:00+01:00",
        "2026-10-25T03:30:00+01:00",
    ]


def test_scheduler_style_calls_follow_the_same_rules() -> None:
    # APScheduler calls get_next_fire_time(previous_run, now) with `now` later than the run.
    trigger = parse_schedule("30 2 * * *", "Europe/Berlin")
    gap_run = datetime(2026, 3, 29, 3, 0, tzinfo=BERLIN)
    later = gap_run + timedelta(seconds=5)
    assert trigger.get_next_fire_time(gap_run, later).isoformat() == "2026-03-30T02:30:00+02:00"
    overlap_run = datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN)
    nxt = trigger.get_next_fire_time(overlap_run, overlap_run + timedelta(seconds=5))
    assert nxt.isoformat() == "2026-10-26T02:30:00+01:00"


def test_trigger_is_an_apscheduler_trigger_with_a_readable_repr() -> None:
    trigger = parse_schedule("0 3 1 * mon", "Europe/Berlin")
    assert isinstance(trigger, BaseTrigger)
    assert isinstance(trigger, PosixCronTrigger)
    assert trigger.expression == "0 3 1 * mon"
    assert repr(trigger) == "PosixCronTrigger('0 3 1 * mon', 'Europe/Berlin')"
    assert str(trigger) == "cron['0 3 1 * mon', Europe/Berlin]"


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("0 3 * *", "five fields"),
        ("0 3 * * * *", "five fields"),
        ("", "five fields"),
        ("60 3 * * *", "minute 60 is out of range"),
        ("0 24 * * *", "hour 24 is out of range"),
        ("0 3 0 * *", "day of month 0 is out of range"),
        ("0 3 * 13 *", "month 13 is out of range"),
        ("0 3 * * 8", "day of week 8 is out of range"),
        ("0 3 * * funday", "day of week 'funday' is not a value"),
        ("0 3 * * 5-1", "runs backwards"),
        ("*/0 3 * * *", "step must be at least 1"),
        ("5/10 3 * * *", "a step needs a range"),
        ("0 3 L * *", "day of month 'l' is not a value"),
        ("0 3 * * 1#2", "is not valid cron syntax"),
        ("0 3 ,1 * *", "is not valid cron syntax"),
        ("0 3 31 2 *", "never fires"),
        ("0 3 30,31 feb *", "never fires"),
    ],
)
def test_invalid_expressions_name_the_variable(expression: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_schedule(expression, "UTC")
    (problem,) = caught.value.problems
    assert problem.startswith("ROTATOR_SCHEDULE: ")
    assert fragment in problem


def test_leap_day_is_a_valid_day() -> None:
    assert fires("0 3 29 2 *", count=1) == ["2028-02-29T03:00:00+00:00"]


@pytest.mark.parametrize("zone", ["Mars/Olympus", "", "../etc/passwd", "Europe/"])
def test_unknown_zone_names_the_timezone_variable(zone: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_schedule("0 3 * * *", zone)
    assert caught.value.problems[0].startswith("ROTATOR_TIMEZONE: ")
    with pytest.raises(ConfigError):
        load_zone(zone)


def test_fewer_times_when_the_trigger_ends() -> None:
    class Once(BaseTrigger):  # type: ignore[misc]
        def get_next_fire_time(self, previous: datetime | None, now: datetime) -> datetime | None:
            return None if previous else now

    assert next_fire_times(Once(), FRIDAY, 3) == [FRIDAY]
