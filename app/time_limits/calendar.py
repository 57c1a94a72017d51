"""Working time on the Chinese calendar: office hours, weekends, holidays and 调休.

A working-day limit counts only working time. With the default office hours
(09:00–12:00 and 13:30–18:00, Asia/Shanghai) one working day is 7.5 working hours,
so a case received in office hours is due at the same clock time N working days
later; one received outside office hours starts its clock at the next working
block; a deadline may fall exactly at a block's end (12:00 or 18:00).

Which days are workdays: an administrator's override wins; then China's statutory
holidays and make-up workdays from the ``holidays`` package; then Monday–Friday.
A year the package does not know never crashes: it falls back to weekends plus the
overrides, and :meth:`WorkCalendar.covered` tells the portal to ask for the
State Council schedule.

Plain Python: no Flask, no database.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Optional

import holidays
from dateutil.relativedelta import relativedelta

from app.timeutil import LOCAL_TZ, UTC

log = logging.getLogger(__name__)

UNITS = ("working_days", "working_hours", "natural_months", "natural_days", "natural_hours", "minutes")
DEFAULT_BLOCKS = ((time(9, 0), time(12, 0)), (time(13, 30), time(18, 0)))
_warned_years: set[int] = set()
# Never look further than this for the next working minute (ten years of holidays).
_MAX_DAYS = 3660


@dataclass(frozen=True)
class YearInfo:
    """What the holiday package says about one year."""

    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()  # weekend days declared working (调休)
    known: bool = False  # the package had data for the year at all
    schedule: bool = False  # ...including its 调休 make-up days (the full schedule)


@lru_cache(maxsize=64)
def china_year(year: int) -> YearInfo:
    """Statutory holidays and 调休 workdays of ``year`` from the ``holidays`` package."""
    try:
        cn = holidays.China(years=year)
        days = frozenset(d for d in cn if d.year == year)
        workdays = frozenset(d for d in getattr(cn, "weekend_workdays", ()) if d.year == year)
        return YearInfo(days, workdays, known=bool(days), schedule=bool(workdays))
    except Exception as exc:  # an unknown year must never break the clock
        log.warning("holiday data unavailable for %s (%s); using weekends and overrides", year, exc)
        return YearInfo()


def parse_blocks(value: Optional[Iterable[Iterable[str]]]) -> tuple[tuple[time, time], ...]:
    """Office hours from settings, e.g. ``[["09:00", "12:00"], ["13:30", "18:00"]]``."""
    if not value:
        return DEFAULT_BLOCKS
    blocks = []
    for start, end in value:
        s, e = time.fromisoformat(str(start)), time.fromisoformat(str(end))
        if e <= s:
            raise ValueError(f"office hours block ends before it starts: {start}–{end}")
        blocks.append((s, e))
    blocks.sort()
    for (_, prev_end), (next_start, _) in zip(blocks, blocks[1:], strict=False):
        if next_start < prev_end:
            raise ValueError("office hours blocks overlap")
    return tuple(blocks)


@dataclass(frozen=True)
class WorkCalendar:
    """Working-time arithmetic over office hours, overrides and the holiday package."""

    blocks: tuple[tuple[time, time], ...] = DEFAULT_BLOCKS
    overrides: Mapping[date, bool] = field(default_factory=dict)
    use_holiday_package: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "_override_years", frozenset(d.year for d in self.overrides))
        object.__setattr__(self, "_checked_years", set())

    # --- days -------------------------------------------------------------------------

    def year_info(self, year: int) -> YearInfo:
        return china_year(year) if self.use_holiday_package else YearInfo()

    def is_workday(self, day: date) -> bool:
        if day in self.overrides:
            return bool(self.overrides[day])
        info = self.year_info(day.year)
        if day in info.workdays:
            return True
        if day in info.holidays:
            return False
        return day.weekday() < 5

    def covered(self, year: int) -> bool:
        """Whether the year's full schedule is known (package 调休 days or admin overrides)."""
        return self.year_info(year).schedule or year in self._override_years  # type: ignore[attr-defined]

    @property
    def minutes_per_day(self) -> int:
        return sum(_minutes(s, e) for s, e in self.blocks)

    # --- instants ------------------------------------------------------------------------

    def _blocks_of(self, day: date) -> list[tuple[datetime, datetime]]:
        checked = self._checked_years  # type: ignore[attr-defined]
        if day.year not in checked:
            checked.add(day.year)
            if not self.covered(day.year) and day.year not in _warned_years:
                _warned_years.add(day.year)
                log.warning(
                    "working calendar for %s is incomplete (no State Council schedule): counting weekends, "
                    "statutory holidays known to the holidays package and administrator overrides",
                    day.year,
                )
        if not self.is_workday(day):
            return []
        return [(datetime.combine(day, s, LOCAL_TZ), datetime.combine(day, e, LOCAL_TZ)) for s, e in self.blocks]

    def add_working_minutes(self, start: datetime, minutes: float) -> datetime:
        """The first instant at which ``minutes`` of working time after ``start`` are used."""
        cursor = start.astimezone(LOCAL_TZ)
        remaining = timedelta(minutes=minutes)
        if remaining <= timedelta(0):
            return start.astimezone(UTC)
        day = cursor.date()
        # The start day: the part of its blocks after the cursor.
        for block_start, block_end in self._blocks_of(day):
            begin = max(block_start, cursor)
            if begin >= block_end:
                continue
            available = block_end - begin
            if remaining <= available:
                return (begin + remaining).astimezone(UTC)
            remaining -= available
        # Whole working days are skipped by counting workdays only, not building blocks.
        per_day = timedelta(minutes=self.minutes_per_day)
        if per_day <= timedelta(0):
            raise ValueError("office hours are empty")
        for _ in range(_MAX_DAYS):
            day += timedelta(days=1)
            if not self.is_workday(day):
                continue
            if remaining > per_day:
                remaining -= per_day
                continue
            for block_start, block_end in self._blocks_of(day):
                available = block_end - block_start
                if remaining <= available:
                    return (block_start + remaining).astimezone(UTC)
                remaining -= available
        raise ValueError("no working time found within ten years; check the calendar overrides")

    def working_minutes_between(self, start: datetime, end: datetime) -> float:
        """Working minutes in [start, end) (negative when end precedes start)."""
        if end < start:
            return -self.working_minutes_between(end, start)
        a, b = start.astimezone(LOCAL_TZ), end.astimezone(LOCAL_TZ)
        total = timedelta(0)
        day = a.date()
        while day <= b.date():
            for block_start, block_end in self._blocks_of(day):
                lo, hi = max(block_start, a), min(block_end, b)
                if hi > lo:
                    total += hi - lo
            day += timedelta(days=1)
        return total.total_seconds() / 60

    def add(self, start: datetime, amount: float, unit: str) -> datetime:
        """``start`` plus a time limit in one of :data:`UNITS`."""
        if unit == "working_days":
            return self.add_working_minutes(start, amount * self.minutes_per_day)
        if unit == "working_hours":
            return self.add_working_minutes(start, amount * 60)
        if unit == "natural_months":  # calendar months (一个月): the same day of a later month
            return (start.astimezone(LOCAL_TZ) + relativedelta(months=int(amount))).astimezone(UTC)
        if unit == "natural_days":  # calendar days (日), weekends and holidays included
            return (start + timedelta(days=amount)).astimezone(UTC)
        if unit == "natural_hours":
            return (start + timedelta(hours=amount)).astimezone(UTC)
        if unit == "minutes":
            return (start + timedelta(minutes=amount)).astimezone(UTC)
        raise ValueError(f"unknown time unit: {unit}")

    def fraction(self, start: datetime, due: datetime, unit: str, ratio: float) -> datetime:
        """The instant at ``ratio`` of the way from ``start`` to ``due``, in the unit's time."""
        if unit in ("working_days", "working_hours"):
            return self.add_working_minutes(start, self.working_minutes_between(start, due) * ratio)
        return (start + (due - start) * ratio).astimezone(UTC)

    def next_workday(self, day: date) -> date:
        for _ in range(_MAX_DAYS):
            day += timedelta(days=1)
            if self.is_workday(day):
                return day
        raise ValueError("no workday found within ten years")


def _minutes(start: time, end: time) -> int:
    return (end.hour * 60 + end.minute) - (start.hour * 60 + start.minute)


def uncovered_years(cal: WorkCalendar, today: date, lookahead_days: int = 60) -> list[int]:
    """Years the portal should ask administrators to enter: this one, and next once it is near."""
    years = [today.year]
    if (date(today.year + 1, 1, 1) - today).days <= lookahead_days:
        years.append(today.year + 1)
    return [y for y in years if not cal.covered(y)]
