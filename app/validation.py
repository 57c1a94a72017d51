"""Field rules shared by the registration form and the REST API.

Each check returns ``None`` when the value is acceptable, otherwise a translatable
message that names the problem in the user's language.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Optional

from app.i18n import _l
from app.timeutil import UTC, as_utc, local_date, utcnow

# Mobile: 1[3-9] + 9 digits. Landline: area code 0xx/0xxx + 7–8 digits (+ extension).
# Service numbers 400/800 + 7 digits.
_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_LANDLINE = re.compile(r"^0\d{2,3}-?[1-9]\d{6,7}(?:-\d{1,6})?$")
_SERVICE = re.compile(r"^[48]00-?\d{3}-?\d{4}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

# A received time may run a little ahead of the server clock (a caller's watch).
CLOCK_SKEW = timedelta(minutes=5)
# The earliest time a complaint (or an incident) may be dated: older dates are typing mistakes.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
# Values echoed in a message are cut to this many characters.
SHOWN = 40


def shown(value: object) -> str:
    """A value as a message may quote it: never a huge input back whole."""
    text = str(value)
    return text if len(text) <= SHOWN else text[:SHOWN] + "…"


def normalize_phone(value: Optional[str]) -> str:
    """Strip spaces, brackets and the +86 country code; keep hyphens of landlines."""
    if not value:
        return ""
    phone = re.sub(r"[\s()（）]", "", value.strip())
    phone = re.sub(r"^(?:\+86|0086)-?", "", phone)
    if phone.startswith("86") and len(phone) == 13 and _MOBILE.match(phone[2:]):
        phone = phone[2:]
    return phone


def check_phone(value: Optional[str], required: bool = True) -> Optional[str]:
    phone = normalize_phone(value)
    if not phone:
        return str(_l("Please enter the customer's phone number.")) if required else None
    if _MOBILE.match(phone) or _LANDLINE.match(phone) or _SERVICE.match(phone):
        return None
    return str(
        _l(
            "“%(phone)s” is not a Chinese mobile or landline number (e.g. 13800138000 or 010-88886666).",
            phone=shown(phone),
        )
    )


def check_email(value: Optional[str]) -> Optional[str]:
    if not value:
        return None
    if _EMAIL.match(value.strip()) and len(value) <= 120:
        return None
    return str(_l("“%(email)s” is not a valid e-mail address.", email=shown(value)))


def check_required_text(value: Optional[str], message: str, max_length: Optional[int] = None) -> Optional[str]:
    if value is None or not str(value).strip():
        return message
    if max_length is not None and len(str(value)) > max_length:
        return str(_l("At most %(n)d characters.", n=max_length))
    return None


def check_received_at(value: Optional[datetime], now: Optional[datetime] = None) -> Optional[str]:
    if value is None:
        return None
    now = now or utcnow()
    if as_utc(value) > now + CLOCK_SKEW:
        return str(_l("The time received cannot be in the future."))
    if as_utc(value) < EARLIEST:
        return str(_l("The time received cannot be before %(day)s.", day="2000-01-01"))
    return None


def check_incident_date(value: Optional[date], now: Optional[datetime] = None) -> Optional[str]:
    """事发日期: when the complained-of incident happened; never after today (Beijing)."""
    if value is None:
        return None
    if not isinstance(value, date) or isinstance(value, datetime):
        return str(_l("Not a valid date (e.g. 2026-10-08)."))
    if value > local_date(now or utcnow()):
        return str(_l("The incident date cannot be in the future."))
    return None


def check_batch_no(value: Optional[str]) -> Optional[str]:
    """批次/批号 of the product complained about: free text, at most 64 characters."""
    if value is not None and len(str(value).strip()) > 64:
        return str(_l("At most %(n)d characters.", n=64))
    return None


# --- Maximum lengths of text fields ------------------------------------------------------------
# Documented in README (输入长度上限 / Input length limits). Free text of any kind (complaint
# content, notes, replies, findings …) is at most TEXT_MAX characters; a field stored in a
# sized column is at most that size; a few fields have their own limit. Requests carrying a
# longer value are refused before anything is parsed or stored (app/views/lengths.py).
TEXT_MAX = 5000
FIELD_MAX = {
    "content": 5000,  # 投诉内容
    "customer_demand": 2000,
    "subject": 200,
    "customer_name": 64,
    "customer_phone": 32,
    "customer_email": 120,
    "customer_address": 255,
    "username": 100,
    "password": 256,
    "value": 20000,  # a setting's JSON value
}
_column_max: dict[str, int] = {}


def max_length(field: str) -> int:
    """The maximum number of characters of a text field given by its name in a form or body."""
    if field in FIELD_MAX:
        return FIELD_MAX[field]
    if not _column_max:
        _column_max.update(_sized_columns())
    return _column_max.get(field, TEXT_MAX)


def _sized_columns() -> dict[str, int]:
    """Field name -> the largest size of a text column of that name in the schema (TEXT_MAX
    for an unsized one)."""
    from sqlalchemy import String

    from app.models import Model

    sizes: dict[str, int] = {}
    for table in Model.metadata.tables.values():
        for column in table.columns:
            if isinstance(column.type, String):
                size = column.type.length or TEXT_MAX
                sizes[column.name] = max(sizes.get(column.name, 0), size)
    return sizes


def check_length(field: str, value: Optional[str], label: Optional[str] = None) -> Optional[str]:
    """``None`` when ``value`` fits the field's maximum, else the message (never the value)."""
    limit = max_length(field)
    if value is None or len(value) <= limit:
        return None
    return str(_l("%(field)s cannot be longer than %(n)d characters.", field=label or field, n=limit))
