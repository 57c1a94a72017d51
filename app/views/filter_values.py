"""The REST filters' values, checked and converted to the column's type before FAB applies them.

FAB's filters pass a value as it came (``?q=(filters:!((col:…,opr:…,value:…)))``) to the
database: text operators on a number, an unknown enum value or a non-integer relation id
failed there (500). Here every filter of a request is checked once, by the kind of its
column, and refused with a 400 in the caller's language when it cannot mean anything.
"""

from __future__ import annotations

import enum
import math
from datetime import date, datetime
from typing import Any, Optional

import flask_appbuilder.api as fab_api
import jsonschema
from flask_appbuilder.exceptions import FABException
from flask_appbuilder.models.sqla.filters import SQLAFilterConverter

from app.i18n import _
from app.timeutil import parse_iso

MAX_INT = 2**63 - 1
MAX_TEXT = 200
TEXT_OPERATORS = {"sw", "ew", "ct", "nsw", "new", "nct"}
LIST_OPERATORS = {"in", "not_in"}
RELATION_OPERATORS = {"rel_o_m", "nrel_o_m", "rel_m_m"}
# Every operator FAB's converter knows; any other is a resource's own filter (``search_filters``).
STANDARD_OPERATORS = {f.arg_name for _kind, filters in SQLAFilterConverter.conversion_table for f in filters}


class FilterRefused(FABException):
    """A filter that cannot be applied; FAB answers 400 with ``str(exc)``."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class _WrongValue(Exception):
    def __init__(self, expected: str):
        self.expected = expected


def clean_filters(api: Any, filters: Any) -> list[dict[str, Any]]:
    """The request's filters with values of their column's type; raises ``FilterRefused``."""
    if not isinstance(filters, list):
        raise FilterRefused(_("The filters must be a list of (col, opr, value)."))
    return [_clean_one(api, item) for item in filters]


def _clean_one(api: Any, item: Any) -> dict[str, Any]:
    if not isinstance(item, dict) or not {"col", "opr", "value"} <= set(item):
        raise FilterRefused(_("Each filter needs col, opr and value."))
    col, opr, value = item["col"], item["opr"], item["value"]
    if not isinstance(col, str) or col not in (api.search_columns or []):
        raise FilterRefused(_("No filter on “%(column)s”.", column=_short(col)))
    allowed = {f.arg_name for f in api._filters.get_search_filters().get(col, [])}
    if opr not in allowed:
        raise FilterRefused(
            _(
                "The filter “%(operator)s” is not available on “%(column)s”.",
                operator=_short(opr),
                column=_label(api, col),
            )
        )
    if opr not in STANDARD_OPERATORS:
        return dict(item)  # a resource's own filter checks its value itself
    try:
        converted = _convert(api.datamodel, col, opr, value)
    except _WrongValue as exc:
        raise FilterRefused(
            _(
                "The filter value for “%(column)s” is not valid: %(expected)s",
                column=_label(api, col),
                expected=exc.expected,
            )
        ) from None
    return {**item, "value": converted}


def _convert(datamodel: Any, col: str, opr: str, value: Any) -> Any:
    if opr in RELATION_OPERATORS:
        if opr == "rel_m_m" and isinstance(value, list):
            return [_related_id(v) for v in value]
        return _related_id(value)
    if opr in LIST_OPERATORS:
        if not isinstance(value, list) or not value or len(value) > 100:
            raise _WrongValue(_("give a list of 1 to 100 values."))
        return [_scalar(datamodel, col, v) for v in value]
    if opr in TEXT_OPERATORS:
        return _text(value)
    if value is None and opr in ("eq", "neq"):
        return None  # "is empty" / "is not empty"
    return _scalar(datamodel, col, value)


def _scalar(datamodel: Any, col: str, value: Any) -> Any:
    if datamodel.is_enum(col):
        return _enum_value(datamodel.list_columns[col].type, value)
    if datamodel.is_boolean(col):
        return _boolean(value)
    if datamodel.is_integer(col):
        return _integer(value)
    if datamodel.is_float(col) or datamodel.is_numeric(col):
        return _number(value)
    if datamodel.is_datetime(col):
        return _datetime(value)
    if datamodel.is_date(col):
        return _date(value)
    return _text(value)


def _related_id(value: Any) -> int:
    if isinstance(value, str) and value.strip().isdecimal():  # what int() reads (not '²')
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_INT:
        raise _WrongValue(_("give the id of the related record."))
    return value


def _text(value: Any) -> str:
    if isinstance(value, bool) or value is None or isinstance(value, (list, dict)):
        raise _WrongValue(_("give a text."))
    if isinstance(value, float) and not math.isfinite(value):
        raise _WrongValue(_("give a text."))
    text = str(value)
    if len(text) > MAX_TEXT:
        raise _WrongValue(_("give at most %(n)d characters.", n=MAX_TEXT))
    return text


def whole_number(value: Any) -> int:
    """``value`` read as a whole number by the rule of the integer filters (an int, or its digits with
    an optional minus sign, within ±MAX_INT); ValueError otherwise. For filters that read their own
    value (the relation filter by key)."""
    try:
        return _integer(value)
    except _WrongValue as exc:
        raise ValueError(value) from exc


def _integer(value: Any) -> int:
    if isinstance(value, str) and value.strip().lstrip("-").isdecimal():
        value = int(value.strip())
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not -MAX_INT <= value <= MAX_INT:
        raise _WrongValue(_("give a whole number."))
    return value


def _number(value: Any) -> float:
    try:
        number = float(value) if not isinstance(value, (bool, list, dict)) and value is not None else math.nan
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or abs(number) > 1e15:
        raise _WrongValue(_("give a number."))
    return number


def _boolean(value: Any) -> bool:
    known = {"true": True, "false": False, "y": True, "n": False, "1": True, "0": False}
    if isinstance(value, bool):
        return value
    if isinstance(value, (str, int)) and str(value).strip().lower() in known:
        return known[str(value).strip().lower()]
    raise _WrongValue(_("give true or false."))


def _date(value: Any) -> date:
    try:
        if isinstance(value, str) and len(value) <= 40:
            return datetime.fromisoformat(value.strip()).date() if "T" in value else date.fromisoformat(value.strip())
    except (ValueError, OverflowError):
        pass
    raise _WrongValue(_("give a date such as 2026-12-31."))


def _datetime(value: Any) -> datetime:
    try:
        if isinstance(value, str) and len(value) <= 40:
            return parse_iso(value)
    except (ValueError, OverflowError):
        pass
    raise _WrongValue(_("give a date and time such as 2026-12-31T09:30:00+08:00."))


def _enum_value(column_type: Any, value: Any) -> Any:
    enum_class: Optional[type[enum.Enum]] = getattr(column_type, "enum_class", None)
    choices = [m.value for m in enum_class] if enum_class else list(getattr(column_type, "enums", []))
    if isinstance(value, str) and value in choices:
        return enum_class(value) if enum_class else value
    raise _WrongValue(_("give one of %(choices)s.", choices=", ".join(str(c) for c in choices)))


def _label(api: Any, col: str) -> str:
    return str((api.label_columns or {}).get(col, col))


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:40] + "…"


class _CheckedOnceSchemas:
    """FAB's ``@rison`` calls ``jsonschema.validate``, which checks the schema itself against the
    metaschema on every request (two thirds of a list request's time); check each schema once."""

    ValidationError = jsonschema.ValidationError

    def __init__(self) -> None:
        self._validators: dict[int, Any] = {}

    def validate(self, instance: Any, schema: dict[str, Any]) -> None:
        validator = self._validators.get(id(schema))
        if validator is None:
            cls = jsonschema.validators.validator_for(schema)
            cls.check_schema(schema)
            validator = self._validators[id(schema)] = (schema, cls(schema))
        error = jsonschema.exceptions.best_match(validator[1].iter_errors(instance))
        if error is not None:
            raise error


fab_api.jsonschema = _CheckedOnceSchemas()  # type: ignore[attr-defined]
