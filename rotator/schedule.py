"""ROTATOR_SCHEDULE: POSIX cron expressions turned into APScheduler 3 triggers.

Responsible for the meaning of a schedule, exactly as README states it: five fields
(minute, hour, day of month, month, day of week); names (``mon``, ``jan``) allowed; 0 and 7 are
Sunday; when both day of month and day of week are restricted a day matching *either* fires; a
fire time that falls in a daylight-saving gap runs once at the first valid instant after the gap,
and one that falls in an overlap (a wall time that happens twice) runs once, the first time.

APScheduler 3's own cron dialect differs on three of those points (weekdays numbered from
Monday = 0, day of month AND day of week, and a repeated wall time firing twice), so this module
parses the expression itself and builds triggers that behave like cron. It knows nothing about
settings, the environment, or what runs on the schedule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger

from rotator.errors import ConfigError
from rotator.models import utc

__all__ = ["PosixCronTrigger", "load_zone", "next_fire_times", "parse_schedule"]

_SCHEDULE_VAR = "ROTATOR_SCHEDULE"
_TIMEZONE_VAR = "ROTATOR_TIMEZONE"

_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
#: POSIX order: Sunday is 0 (and 7).
_WEEKDAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
#: Longest month length, leap February included, to refuse a day of month that never comes.
_MONTH_LENGTHS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

_ELEMENT_RE = re.compile(r"^(?P<range>\*|[0-9a-z]+(?:-[0-9a-z]+)?)(?:/(?P<step>[0-9]+))?$")


@dataclass(frozen=True)
class _FieldSpec:
    """How one cron field is written: its name for messages, its bounds, its value names."""

    label: str
    low: int
    high: int
    #: Highest value a bare ``*`` covers (day of week: 6, since 7 repeats Sunday).
    star_high: int
    names: tuple[str, ...] = ()
    #: Value of ``names[0]`` (1 for months, 0 for weekdays).
    names_start: int = 0


_MINUTE = _FieldSpec("minute", 0, 59, 59)
_HOUR = _FieldSpec("hour", 0, 23, 23)
_DAY_OF_MONTH = _FieldSpec("day of month", 1, 31, 31)
_MONTH = _FieldSpec("month", 1, 12, 12, _MONTH_NAMES, 1)
_DAY_OF_WEEK = _FieldSpec("day of week", 0, 7, 6, _WEEKDAY_NAMES, 0)


class _ScheduleSyntaxError(ValueError):
    """One thing wrong with an expression, worded for ops (no variable name yet)."""


def _value(token: str, spec: _FieldSpec) -> int:
    if token.isdigit():
        number = int(token)
    elif token in spec.names:
        number = spec.names.index(token) + spec.names_start
    else:
        allowed = f"{spec.low}-{spec.high}"
        if spec.names:
            allowed += f" or {spec.names[0]}-{spec.names[-1]}"
        raise _ScheduleSyntaxError(f"{spec.label} {token!r} is not a value ({allowed})")
    if not spec.low <= number <= spec.high:
        raise _ScheduleSyntaxError(
            f"{spec.label} {number} is out of range ({spec.low}-{spec.high})"
        )
    return number


def _expand(field: str, spec: _FieldSpec) -> frozenset[int]:
    """Every value one field selects: lists, ranges, steps, ``*`` and names, as cron reads them."""
    values: set[int] = set()
    for element in field.lower().split(","):
        match = _ELEMENT_RE.match(element)
        if match is None:
            raise _ScheduleSyntaxError(f"{spec.label} {element!r} is not valid cron syntax")
        span, step_text = match.group("range"), match.group("step")
        if span == "*":
            first, last = spec.low, spec.star_high
        elif "-" in span:
            first_text, last_text = span.split("-")
            first, last = _value(first_text, spec), _value(last_text, spec)
            if spec is _DAY_OF_WEEK and last == 0 and first > 0:
                last = 7  # "fri-sun" reads as Friday to Sunday, as 5-7 does
            if first > last:
                raise _ScheduleSyntaxError(f"{spec.label} range {span!r} runs backwards")
        else:
            first = last = _value(span, spec)
            if step_text is not None:
                raise _ScheduleSyntaxError(
                    f"{spec.label} {element!r}: a step needs a range or '*' before it"
                )
        step = 1 if step_text is None else int(step_text)
        if step == 0:
            raise _ScheduleSyntaxError(f"{spec.label} {element!r}: the step must be at least 1")
        values.update(range(first, last + 1, step))
    return frozenset(values)


def _listing(values: frozenset[int]) -> str:
    return ",".join(str(value) for value in sorted(values))


def _weekday_listing(posix_weekdays: frozenset[int]) -> str:
    """APScheduler 3 numbers weekdays from Monday = 0, so hand it names, never numbers."""
    return ",".join(sorted({_WEEKDAY_NAMES[day % 7] for day in posix_weekdays}))


def load_zone(timezone: str) -> ZoneInfo:
    """The IANA zone named ``timezone``; ConfigError naming ROTATOR_TIMEZONE when unknown."""
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(
            [f"{_TIMEZONE_VAR}: must be an IANA time zone such as Europe/Berlin, got {timezone!r}"]
        ) from exc


class _CronOnceTrigger(BaseTrigger):  # type: ignore[misc]  # APScheduler ships no type hints
    """One APScheduler CronTrigger, corrected for daylight-saving changes.

    A wall time in a gap (02:30 on the night clocks jump from 02:00 to 03:00) becomes the first
    instant after the gap (03:00); a wall time in an overlap (02:30 on the night clocks fall back)
    fires the first time only. Every time returned is normalised, so it shows its real offset.
    """

    __slots__ = ("_cron", "_zone")

    def __init__(self, cron: CronTrigger, zone: ZoneInfo) -> None:
        self._cron = cron
        self._zone = zone

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        previous = previous_fire_time
        while True:
            candidate: datetime | None = self._cron.get_next_fire_time(previous, now)
            if candidate is None:
                return None
            wall = candidate.replace(tzinfo=None, fold=0)
            first = wall.replace(tzinfo=self._zone, fold=0)
            second = wall.replace(tzinfo=self._zone, fold=1)
            if first.utcoffset() == second.utcoffset():
                return candidate.astimezone(UTC).astimezone(self._zone)
            if first.astimezone(UTC).astimezone(self._zone).replace(tzinfo=None) != wall:
                return self._end_of_gap(first, second)
            if candidate.astimezone(UTC) == second.astimezone(UTC):
                # The repeat of a wall time that already fired an hour ago: look past it.
                previous = None
                now = candidate.astimezone(UTC) + timedelta(microseconds=1)
                continue
            return first.astimezone(UTC).astimezone(self._zone)

    def _end_of_gap(self, first: datetime, second: datetime) -> datetime:
        """The first instant after the gap that ``first``/``second`` (one wall time) fall in.

        In a gap, fold 1 reads the wall time with the offset after the change (the earlier
        instant, still before the change) and fold 0 with the one before (the later instant,
        already after it); the change itself lies between them: find it to the second.
        """
        before = int(second.astimezone(UTC).timestamp())
        after = int(first.astimezone(UTC).timestamp())
        offset_before = datetime.fromtimestamp(before, UTC).astimezone(self._zone).utcoffset()
        while after - before > 1:
            middle = (before + after) // 2
            instant = datetime.fromtimestamp(middle, UTC).astimezone(self._zone)
            if instant.utcoffset() == offset_before:
                before = middle
            else:
                after = middle
        return datetime.fromtimestamp(after, UTC).astimezone(self._zone)

    def __str__(self) -> str:
        return str(self._cron)

    def __repr__(self) -> str:
        return f"<_CronOnceTrigger({self._cron!r})>"


class PosixCronTrigger(BaseTrigger):  # type: ignore[misc]  # APScheduler ships no type hints
    """An APScheduler 3 trigger that fires as POSIX cron would for ``expression`` in ``zone``."""

    __slots__ = ("_inner", "expression", "zone")

    def __init__(self, expression: str, zone: ZoneInfo, inner: BaseTrigger) -> None:
        self.expression = expression
        self.zone = zone
        self._inner = inner

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        fire_time: datetime | None = self._inner.get_next_fire_time(previous_fire_time, now)
        return fire_time

    def __str__(self) -> str:
        return f"cron[{self.expression!r}, {self.zone.key}]"

    def __repr__(self) -> str:
        return f"PosixCronTrigger({self.expression!r}, {self.zone.key!r})"


def _problem(message: str) -> ConfigError:
    return ConfigError([f"{_SCHEDULE_VAR}: {message}"])


def parse_schedule(expression: str, timezone: str) -> BaseTrigger:
    """A trigger firing as POSIX cron does for ``expression`` in the IANA zone ``timezone``.

    Raises ConfigError naming ROTATOR_SCHEDULE for a bad expression (or ROTATOR_TIMEZONE for an
    unknown zone). Rules: five fields; 0 and 7 are Sunday; names allowed; when day of month and
    day of week are both restricted (neither is exactly ``*``), a day matching either fires.
    """
    zone = load_zone(timezone)
    fields = expression.split()
    if len(fields) != 5:
        raise _problem(
            "must have five fields (minute hour day-of-month month day-of-week), "
            f"got {expression!r}"
        )
    minute, hour, day_of_month, month, day_of_week = fields
    try:
        minutes = _expand(minute, _MINUTE)
        hours = _expand(hour, _HOUR)
        days = _expand(day_of_month, _DAY_OF_MONTH)
        months = _expand(month, _MONTH)
        weekdays = _expand(day_of_week, _DAY_OF_WEEK)
    except _ScheduleSyntaxError as exc:
        raise _problem(f"{exc}, got {expression!r}") from None

    days_restricted = day_of_month != "*"
    weekdays_restricted = day_of_week != "*"
    never_a_valid_day = not any(day <= _MONTH_LENGTHS[m - 1] for m in months for day in days)
    if days_restricted and not weekdays_restricted and never_a_valid_day:
        raise _problem(f"never fires: no selected month has such a day, got {expression!r}")

    def cron(day: str, weekday: str) -> _CronOnceTrigger:
        trigger = CronTrigger(
            minute=_listing(minutes),
            hour=_listing(hours),
            day=day,
            month=_listing(months),
            day_of_week=weekday,
            timezone=zone,
        )
        return _CronOnceTrigger(trigger, zone)

    day_listing = _listing(days) if days_restricted else "*"
    weekday_listing = _weekday_listing(weekdays) if weekdays_restricted else "*"
    inner: BaseTrigger
    if days_restricted and weekdays_restricted:
        # POSIX: either condition suffices; APScheduler alone would demand both.
        inner = OrTrigger([cron(day_listing, "*"), cron("*", weekday_listing)])
    else:
        inner = cron(day_listing, weekday_listing)
    return PosixCronTrigger(expression, zone, inner)


def next_fire_times(trigger: BaseTrigger, now: datetime, count: int = 3) -> list[datetime]:
    """The next ``count`` fire times of ``trigger``, from ``now`` on (``now`` itself included).

    Times are timezone-aware, in the trigger's zone (with that zone's offset at each time). A
    naive ``now`` is taken as UTC. Fewer are returned when the trigger stops firing.
    """
    times: list[datetime] = []
    previous: datetime | None = None
    reference = utc(now)
    for _ in range(count):
        fire_time: datetime | None = trigger.get_next_fire_time(previous, reference)
        if fire_time is None:
            break
        times.append(fire_time)
        previous = reference = fire_time
    return times
