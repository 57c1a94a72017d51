"""Working-time arithmetic on the Chinese calendar (app.calendar.WorkCalendar): no database.

Office hours 09:00–12:00 and 13:30–18:00 Asia/Shanghai; one working day is 7.5 h;
weekends and statutory holidays are skipped, 调休 weekend days count; an
administrator's override wins over the ``holidays`` package; a year the package
does not know never crashes.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest

from app.time_limits import calendar as calmod
from app.time_limits.calendar import WorkCalendar, parse_blocks, uncovered_years
from app.timeutil import LOCAL_TZ, UTC

CAL = WorkCalendar()


def at(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=LOCAL_TZ)


def local(value: datetime) -> datetime:
    return value.astimezone(LOCAL_TZ)


# --- days -------------------------------------------------------------------------------


def test_one_working_day_is_seven_and_a_half_hours():
    assert CAL.minutes_per_day == 450
    assert WorkCalendar(blocks=parse_blocks([["08:00", "12:00"], ["14:00", "17:30"]])).minutes_per_day == 450
    assert WorkCalendar(blocks=parse_blocks([["09:00", "17:00"]])).minutes_per_day == 480


def test_national_day_2026_and_make_up_saturday():
    for day in (1, 2, 3, 5, 6, 7):
        assert not CAL.is_workday(date(2026, 10, day)), f"2026-10-{day:02d} is a National Day holiday"
    assert not CAL.is_workday(date(2026, 10, 4))  # Sunday inside the holiday
    assert CAL.is_workday(date(2026, 10, 8))
    assert CAL.is_workday(date(2026, 10, 9))
    assert date(2026, 10, 10).weekday() == 5 and CAL.is_workday(date(2026, 10, 10)), "调休 Saturday works"
    assert date(2026, 9, 20).weekday() == 6 and CAL.is_workday(date(2026, 9, 20)), "调休 Sunday works"
    assert not CAL.is_workday(date(2026, 10, 11))  # an ordinary Sunday
    assert not CAL.is_workday(date(2026, 9, 26))  # an ordinary Saturday


def test_received_tuesday_plus_one_and_two_working_days_across_national_day():
    received = at(2026, 9, 29, 10, 0)  # Tuesday
    assert local(CAL.add(received, 1, "working_days")) == at(2026, 9, 30, 10, 0)
    assert local(CAL.add(received, 2, "working_days")) == at(2026, 10, 8, 10, 0)
    assert local(CAL.add(received, 3, "working_days")) == at(2026, 10, 9, 10, 0)
    # Friday 9 Oct +1 working day: the 调休 Saturday 10 Oct.
    assert local(CAL.add(at(2026, 10, 9, 15, 0), 1, "working_days")) == at(2026, 10, 10, 15, 0)
    # ...and the Saturday +1 skips the Sunday.
    assert local(CAL.add(at(2026, 10, 10, 15, 0), 1, "working_days")) == at(2026, 10, 12, 15, 0)


def test_results_are_aware_utc_instants():
    due = CAL.add(at(2026, 9, 29, 10, 0), 1, "working_days")
    assert due.tzinfo is not None and due.utcoffset() == timedelta(0)
    assert due == datetime(2026, 9, 30, 2, 0, tzinfo=UTC)
    # A UTC start gives the same result as the same instant in Shanghai.
    assert CAL.add(datetime(2026, 9, 29, 2, 0, tzinfo=UTC), 1, "working_days") == due


@pytest.mark.parametrize(
    "received, expected_due, why",
    [
        (at(2026, 9, 29, 7, 0), at(2026, 9, 29, 18, 0), "before office hours: clock starts 09:00, full day ends 18:00"),
        (at(2026, 9, 29, 12, 30), at(2026, 9, 30, 12, 0), "lunch break: clock starts 13:30"),
        (at(2026, 9, 29, 12, 0), at(2026, 9, 30, 12, 0), "exactly at a block's end: same as the lunch break"),
        (at(2026, 9, 29, 19, 0), at(2026, 9, 30, 18, 0), "evening: clock starts next morning"),
        (at(2026, 9, 29, 18, 0), at(2026, 9, 30, 18, 0), "exactly at closing time"),
        (at(2026, 9, 26, 10, 0), at(2026, 9, 28, 18, 0), "ordinary Saturday: clock starts Monday 09:00"),
        (at(2026, 9, 30, 19, 0), at(2026, 10, 8, 18, 0), "eve of National Day: clock starts 8 Oct"),
        (at(2026, 10, 3, 10, 0), at(2026, 10, 8, 18, 0), "received during the holiday"),
        (at(2026, 10, 9, 20, 0), at(2026, 10, 10, 18, 0), "Friday evening before a 调休 Saturday"),
    ],
)
def test_outside_office_hours_the_clock_starts_at_the_next_block(received, expected_due, why):
    assert local(CAL.add(received, 1, "working_days")) == expected_due, why


def test_deadline_can_fall_exactly_at_a_blocks_end():
    # 09:00 + 7.5 working hours: used up exactly at 18:00 the same day (the first such instant).
    assert local(CAL.add(at(2026, 9, 29, 9, 0), 1, "working_days")) == at(2026, 9, 29, 18, 0)
    # 13:30 + 1 working day: 4.5 h that afternoon + 3 h the next morning = 12:00.
    assert local(CAL.add(at(2026, 9, 29, 13, 30), 1, "working_days")) == at(2026, 9, 30, 12, 0)
    # 3 working hours from 09:00 end at noon, not at 13:30.
    assert local(CAL.add(at(2026, 9, 29, 9, 0), 3, "working_hours")) == at(2026, 9, 29, 12, 0)
    # One minute more crosses lunch.
    assert local(CAL.add_working_minutes(at(2026, 9, 29, 9, 0), 181)) == at(2026, 9, 29, 13, 31)


def test_in_office_hours_due_is_same_clock_time_n_days_later():
    for hh, mm in ((9, 1), (10, 0), (11, 59), (13, 31), (15, 45), (17, 59)):
        start = at(2026, 11, 2, hh, mm)  # Monday
        for n in (1, 2, 3, 5):
            due = local(CAL.add(start, n, "working_days"))
            assert due.time() == time(hh, mm), (start, n, due)
    assert local(CAL.add(at(2026, 11, 2, 10, 0), 5, "working_days")) == at(2026, 11, 9, 10, 0)


def test_year_boundary_into_2027():
    # 2027-01-01 is New Year's Day (holiday), 2–3 January a weekend.
    assert not CAL.is_workday(date(2027, 1, 1))
    assert local(CAL.add(at(2026, 12, 31, 10, 0), 1, "working_days")) == at(2027, 1, 4, 10, 0)
    assert CAL.working_minutes_between(at(2026, 12, 31, 10, 0), at(2027, 1, 4, 10, 0)) == 450


def test_natural_units_count_wall_time():
    start = at(2026, 10, 1, 23, 0)  # holiday, late evening
    assert local(CAL.add(start, 24, "natural_hours")) == at(2026, 10, 2, 23, 0)
    assert local(CAL.add(start, 3, "minutes")) == at(2026, 10, 1, 23, 3)
    assert local(CAL.add(at(2026, 9, 29, 17, 0), 2, "working_hours")) == at(2026, 9, 30, 10, 0)
    with pytest.raises(ValueError):
        CAL.add(start, 1, "fortnights")


def test_warning_fraction_uses_working_time():
    received = at(2026, 9, 29, 10, 0)
    due = CAL.add(received, 1, "working_days")
    # 90 % of 450 min = 405 min: 390 min on Tuesday, 15 min on Wednesday.
    assert local(CAL.fraction(received, due, "working_days", 0.9)) == at(2026, 9, 30, 9, 15)
    reply_due = CAL.add(received, 2, "working_days")
    # 90 % of 900 = 810 min: 390 Tuesday + 420 Wednesday (180 + 240) = 17:30 Wednesday.
    assert local(CAL.fraction(received, reply_due, "working_days", 0.9)) == at(2026, 9, 30, 17, 30)
    # Natural units: plain wall-clock fraction.
    start = at(2026, 10, 1, 0, 0)
    assert local(CAL.fraction(start, start + timedelta(hours=24), "natural_hours", 0.9)) == at(2026, 10, 1, 21, 36)


# --- overrides and unknown years -------------------------------------------------------------


def test_override_wins_over_the_holiday_package():
    cal = WorkCalendar(overrides={date(2026, 10, 8): False, date(2026, 10, 5): True, date(2026, 10, 10): False})
    assert not cal.is_workday(date(2026, 10, 8))  # package: workday; override: holiday
    assert cal.is_workday(date(2026, 10, 5))  # package: holiday; override: workday
    assert not cal.is_workday(date(2026, 10, 10))  # package: 调休; override: day off
    received = at(2026, 9, 29, 10, 0)
    assert local(cal.add(received, 2, "working_days")) == at(2026, 10, 5, 10, 0)
    without_the_5th = WorkCalendar(overrides={date(2026, 10, 8): False})
    assert local(without_the_5th.add(received, 2, "working_days")) == at(2026, 10, 9, 10, 0)
    # An ordinary weekend day declared a workday by an administrator.
    assert WorkCalendar(overrides={date(2026, 11, 7): True}).is_workday(date(2026, 11, 7))


def test_covered_years():
    assert CAL.covered(2026)
    assert not CAL.covered(2027), "holidays knows 2027's holidays but not its 调休 days"
    assert WorkCalendar(overrides={date(2027, 2, 20): True}).covered(2027)
    assert not WorkCalendar(overrides={date(2028, 2, 20): True}).covered(2027)
    assert uncovered_years(CAL, date(2026, 6, 1)) == []
    assert uncovered_years(CAL, date(2026, 11, 23)) == [2027]
    assert uncovered_years(WorkCalendar(overrides={date(2027, 1, 1): False}), date(2026, 11, 23)) == []


@pytest.mark.parametrize("year", [2150, 2999])
def test_unknown_year_uses_weekends_and_overrides(year):
    assert not CAL.covered(year)
    # 1 June of the year: find a Monday and check plain weekday arithmetic.
    monday = date(year, 6, 1) + timedelta(days=(7 - date(year, 6, 1).weekday()) % 7)
    friday = monday + timedelta(days=4)
    start = datetime.combine(friday, time(10, 0), LOCAL_TZ)
    assert local(CAL.add(start, 1, "working_days")) == datetime.combine(
        monday + timedelta(days=7), time(10, 0), LOCAL_TZ
    )
    # National Day of a year the package does not know is an ordinary weekday...
    october_first = date(year, 10, 1)
    assert CAL.is_workday(october_first) == (october_first.weekday() < 5)
    # ...until an administrator enters it.
    cal = WorkCalendar(overrides={october_first: False, monday + timedelta(days=5): True})
    assert not cal.is_workday(october_first)
    assert cal.is_workday(monday + timedelta(days=5))  # Saturday made a workday
    assert local(cal.add(start, 1, "working_days")) == datetime.combine(
        monday + timedelta(days=5), time(10, 0), LOCAL_TZ
    )
    assert cal.covered(year)


def test_holiday_package_failure_never_crashes(monkeypatch):
    import holidays

    def broken(*args, **kwargs):
        raise NotImplementedError("no data for this year")

    calmod.china_year.cache_clear()
    monkeypatch.setattr(holidays, "China", broken)
    try:
        info = calmod.china_year(2026)
        assert not info.known and not info.holidays
        cal = WorkCalendar(overrides={date(2026, 10, 1): False})
        assert cal.is_workday(date(2026, 10, 2))  # a Friday: the package is not there to say otherwise
        assert not cal.is_workday(date(2026, 10, 1))
        assert local(cal.add(at(2026, 9, 30, 10, 0), 1, "working_days")) == at(2026, 10, 2, 10, 0)
        assert cal.covered(2026)  # thanks to the override
        assert not WorkCalendar().covered(2026)
    finally:
        monkeypatch.undo()
        calmod.china_year.cache_clear()
    assert CAL.covered(2026)


def test_calendar_without_the_package():
    cal = WorkCalendar(use_holiday_package=False)
    assert cal.is_workday(date(2026, 10, 1))  # Thursday, no holiday data
    assert not cal.is_workday(date(2026, 10, 10))  # Saturday, no 调休 data
    assert not cal.covered(2026)


# --- working_minutes_between ------------------------------------------------------------------


def test_working_minutes_between():
    tue = at(2026, 9, 29, 10, 0)
    assert CAL.working_minutes_between(tue, at(2026, 9, 30, 10, 0)) == 450
    assert CAL.working_minutes_between(tue, at(2026, 10, 8, 10, 0)) == 900
    assert CAL.working_minutes_between(tue, at(2026, 9, 29, 12, 0)) == 120
    assert CAL.working_minutes_between(tue, at(2026, 9, 29, 13, 30)) == 120  # lunch does not count
    assert CAL.working_minutes_between(at(2026, 9, 29, 7, 0), at(2026, 9, 29, 20, 0)) == 450
    assert CAL.working_minutes_between(at(2026, 10, 1, 9, 0), at(2026, 10, 7, 18, 0)) == 0  # holiday week
    assert CAL.working_minutes_between(at(2026, 10, 9, 17, 0), at(2026, 10, 12, 10, 0)) == 60 + 450 + 60
    assert CAL.working_minutes_between(at(2026, 9, 30, 10, 0), tue) == -450
    assert CAL.working_minutes_between(tue, tue) == 0
    # Seconds are counted too.
    assert CAL.working_minutes_between(tue, tue + timedelta(seconds=30)) == 0.5


@pytest.mark.parametrize("minutes", [1, 59, 180, 181, 449, 450, 451, 900, 2000, 4500])
def test_add_and_between_are_inverse(minutes):
    for start in (at(2026, 9, 29, 10, 0), at(2026, 9, 30, 19, 0), at(2026, 12, 30, 16, 20), at(2026, 10, 9, 11, 0)):
        end = CAL.add_working_minutes(start, minutes)
        assert CAL.working_minutes_between(start, end) == minutes, (start, minutes, local(end))
        # The result is the *first* instant: a minute earlier is not enough.
        assert CAL.working_minutes_between(start, end - timedelta(minutes=1)) < minutes


def test_zero_or_negative_minutes_return_the_start():
    start = at(2026, 10, 3, 10, 0)
    assert CAL.add_working_minutes(start, 0) == start
    assert CAL.add_working_minutes(start, -5) == start


def test_office_hours_from_settings():
    assert parse_blocks(None) == calmod.DEFAULT_BLOCKS
    assert parse_blocks([["13:30", "18:00"], ["09:00", "12:00"]]) == calmod.DEFAULT_BLOCKS  # sorted
    with pytest.raises(ValueError):
        parse_blocks([["12:00", "09:00"]])
    with pytest.raises(ValueError):
        parse_blocks([["09:00", "12:00"], ["11:00", "18:00"]])
    cal = WorkCalendar(blocks=parse_blocks([["08:00", "12:00"], ["14:00", "17:30"]]))
    assert local(cal.add(at(2026, 9, 29, 7, 0), 1, "working_days")) == at(2026, 9, 29, 17, 30)
    assert local(cal.add(at(2026, 9, 29, 12, 30), 1, "working_days")) == at(2026, 9, 30, 12, 0)
