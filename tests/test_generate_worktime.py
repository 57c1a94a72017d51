"""The bulk generator's table-driven working time gives the calendar's own instants."""

import random
from datetime import date, datetime, timedelta
from types import SimpleNamespace

from app.seed.worktime import TabledCalendar
from app.time_limits.calendar import WorkCalendar
from app.time_limits.deadlines import schedule
from app.timeutil import UTC


def test_tabled_calendar_adds_working_minutes_exactly_as_the_calendar():
    cal = WorkCalendar(overrides={date(2026, 10, 10): True, date(2026, 11, 18): False})
    tabled = TabledCalendar(cal, date(2025, 12, 1), date(2027, 2, 1))
    rng = random.Random(3)
    starts = [datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(330 * 86400)) for _ in range(400)]
    # office-hour edges in Shanghai: 09:00, 12:00, 13:30 and 18:00
    starts += [datetime(2026, 9, 30, h, m, tzinfo=UTC) for h, m in ((1, 0), (4, 0), (5, 30), (10, 0), (3, 59))]
    amounts = [0, 0.5, 1, 59.9, 180, 270, 405, 450, 451, 900 * 0.9, 2250, 4500 * 0.8, 13500]
    for start in starts:
        for minutes in amounts:
            assert tabled.add_working_minutes(start, minutes) == cal.add_working_minutes(start, minutes), (
                start,
                minutes,
            )
        assert tabled.add(start, 3, "working_days") == cal.add(start, 3, "working_days")
        assert tabled.add(start, 5, "working_hours") == cal.add(start, 5, "working_hours")
        assert tabled.add(start, 24, "natural_hours") == cal.add(start, 24, "natural_hours")


def test_tabled_calendar_falls_back_to_the_calendar_outside_its_days():
    cal = WorkCalendar()
    tabled = TabledCalendar(cal, date(2026, 3, 1), date(2026, 3, 31))
    before = datetime(2026, 2, 20, 2, 0, tzinfo=UTC)
    late = datetime(2026, 3, 30, 2, 0, tzinfo=UTC)
    assert tabled.add_working_minutes(before, 450) == cal.add_working_minutes(before, 450)
    assert tabled.add_working_minutes(late, 450 * 10) == cal.add_working_minutes(late, 450 * 10)


def test_tabled_calendar_plans_clocks_exactly_as_schedule():
    cal = WorkCalendar()
    tabled = TabledCalendar(cal, date(2025, 12, 1), date(2027, 2, 1))
    rules = [
        SimpleNamespace(id=1, amount=1, unit="working_days", warn_ratio=0.8, escalate_after=1),
        SimpleNamespace(id=2, amount=5, unit="working_days", warn_ratio=None, escalate_after=0),
        SimpleNamespace(id=3, amount=4, unit="working_hours", warn_ratio=0.75, escalate_after=2),
        SimpleNamespace(id=4, amount=48, unit="natural_hours", warn_ratio=0.9, escalate_after=24),
        SimpleNamespace(id=5, amount=3, unit="working_days", warn_ratio=1.0, escalate_after=None),
    ]
    rng = random.Random(5)
    for _ in range(300):
        start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(330 * 86400))
        for rule in rules:
            assert tabled.plan(rule, start) == schedule(cal, rule, start), (start, rule)
