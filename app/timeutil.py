"""Time helpers: everything is stored in UTC and shown in Asia/Shanghai.

Naive datetimes never travel through the code base: values typed by users (forms,
API without an offset) are wall-clock times in the display zone and are made aware
here, at the edge.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

UTC = UTC
LOCAL_TZ = ZoneInfo("Asia/Shanghai")
# Before 1901 the tz database gives Shanghai its local mean time (+08:05:43); the portal means
# China Standard Time at every date.
CST = timezone(timedelta(hours=8), "CST")

_CN_DIGITS = "〇一二三四五六七八九"


def utcnow() -> datetime:
    """The current instant, aware, in UTC."""
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """Make ``value`` an aware UTC datetime; a naive value is local (Asia/Shanghai) time."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=LOCAL_TZ if value.year > 1901 else CST)
    return value.astimezone(UTC)


def to_local(value: datetime | None) -> datetime | None:
    """The same instant in Asia/Shanghai."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    local = value.astimezone(LOCAL_TZ)
    return local if local.year > 1901 else value.astimezone(CST)


def format_local(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """Format an instant for display in Asia/Shanghai; empty string for None."""
    local = to_local(value)
    return local.strftime(fmt) if local else ""


def local_date(value: datetime) -> date:
    """The Asia/Shanghai calendar date of an instant."""
    return to_local(value).date()


def parse_iso(text: str) -> datetime:
    """Parse ISO 8601; without an offset the value is Asia/Shanghai wall time."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return as_utc(value)


def chinese_date(day: date) -> str:
    """A date in Chinese numerals as official documents write it: 二〇二六年十一月二十三日."""
    year = "".join(_CN_DIGITS[int(d)] for d in str(day.year))
    return f"{year}年{_cn_number(day.month)}月{_cn_number(day.day)}日"


def _cn_number(n: int) -> str:
    if n < 10:
        return _CN_DIGITS[n]
    tens, units = divmod(n, 10)
    head = "十" if tens == 1 else _CN_DIGITS[tens] + "十"
    return head + (_CN_DIGITS[units] if units else "")
