"""Working-time arithmetic from per-day tables, for the bulk generator.

:meth:`WorkCalendar.add_working_minutes` walks the calendar day by day for every
clock; generating a million cases calls it millions of times. Here the calendar is
laid out once over the generated period: for each local day the working
microseconds before it and its office blocks in UTC. Adding working time is then
an offset, a bisection and one block walk, with exactly the results of the
calendar (tested against it); instants outside the table fall back to it.
"""

from __future__ import annotations

from bisect import bisect_left
from datetime import date, datetime, timedelta

from app.time_limits.calendar import WorkCalendar
from app.time_limits.deadlines import RuleLike, Schedule, schedule
from app.timeutil import LOCAL_TZ, UTC

_US = timedelta(microseconds=1)


class TabledCalendar:
    """The parts of :class:`WorkCalendar` that :func:`deadlines.schedule` uses, table-driven."""

    def __init__(self, cal: WorkCalendar, first_day: date, last_day: date):
        self.cal = cal
        self.minutes_per_day = cal.minutes_per_day
        self.first_day = first_day
        self.days = (last_day - first_day).days + 1
        self.before: list[int] = []  # working microseconds before each day
        self.through: list[int] = []  # ... up to the end of each day
        self.blocks: list[list[tuple[datetime, datetime, int]]] = []  # (local start, local end, length µs)
        total = 0
        for index in range(self.days):
            day = first_day + timedelta(days=index)
            blocks = []
            if cal.is_workday(day):
                for start, end in cal.blocks:
                    local_start = datetime.combine(day, start, LOCAL_TZ)
                    local_end = datetime.combine(day, end, LOCAL_TZ)
                    blocks.append((local_start, local_end, (local_end - local_start) // _US))
            self.blocks.append(blocks)
            self.before.append(total)
            total += sum(length for _s, _e, length in blocks)
            self.through.append(total)

    def _offset(self, local: datetime) -> int | None:
        """Working microseconds from the table's start up to ``local``; None outside the table."""
        index = (local.date() - self.first_day).days
        if not 0 <= index < self.days:
            return None
        offset = self.before[index]
        for start, end, length in self.blocks[index]:
            if local >= end:
                offset += length
            elif local > start:
                offset += (local - start) // _US
        return offset

    def _instant(self, target: int) -> datetime | None:
        """The instant at which the working microseconds reach ``target``; None outside the table."""
        index = bisect_left(self.through, target)
        if index >= self.days:
            return None
        rest = target - self.before[index]
        for block_start, _end, length in self.blocks[index]:
            if rest <= length:
                return (block_start + timedelta(microseconds=rest)).astimezone(UTC)
            rest -= length
        return None  # not reached: the day holds the target

    def add_working_minutes(self, start: datetime, minutes: float) -> datetime:
        remaining = timedelta(minutes=minutes)
        if remaining <= timedelta(0):
            return start.astimezone(UTC)
        offset = self._offset(start.astimezone(LOCAL_TZ))
        found = self._instant(offset + remaining // _US) if offset is not None else None
        return found if found is not None else self.cal.add_working_minutes(start, minutes)

    def plan(self, rule: RuleLike, start: datetime) -> Schedule:
        """:func:`deadlines.schedule` of a fresh clock (no extension, no pause): for working-time
        rules the start's offset is found once for the due, warning and escalation instants."""
        ratio = rule.warn_ratio if rule.warn_ratio is not None else 0.9
        per_unit = self.minutes_per_day if rule.unit == "working_days" else 60
        total = rule.amount * per_unit
        offset = self._offset(start.astimezone(LOCAL_TZ))
        if rule.unit not in ("working_days", "working_hours") or total <= 0 or offset is None:
            return schedule(self, rule, start)  # type: ignore[arg-type]
        due_at = offset + timedelta(minutes=total) // _US
        due = self._instant(due_at)
        warn = self._instant(offset + timedelta(minutes=total * ratio) // _US) if 0 < ratio < 1 else None
        escalate = None
        if rule.escalate_after and rule.escalate_after > 0:
            escalate = self._instant(due_at + timedelta(minutes=rule.escalate_after * per_unit) // _US)
            if escalate is None:
                return schedule(self, rule, start)  # type: ignore[arg-type]
        if due is None or (warn is None and 0 < ratio < 1):
            return schedule(self, rule, start)  # type: ignore[arg-type]
        return Schedule(due, warn, escalate)

    def add(self, start: datetime, amount: float, unit: str) -> datetime:
        if unit == "working_days":
            return self.add_working_minutes(start, amount * self.minutes_per_day)
        if unit == "working_hours":
            return self.add_working_minutes(start, amount * 60)
        return self.cal.add(start, amount, unit)

    def fraction(self, start: datetime, due: datetime, unit: str, ratio: float) -> datetime:
        return self.cal.fraction(start, due, unit, ratio)
