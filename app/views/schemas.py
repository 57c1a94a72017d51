"""Marshmallow schemas of the REST inputs that FAB's generated schemas cannot express.

Messages are translatable and name the field's problem in the user's language.
Related rows are given by id (FAB's convention) and resolved to ORM objects here.
"""

from __future__ import annotations

import functools
from typing import Any

from flask import g
from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, pre_load, validate, validates_schema
from sqlalchemy import bindparam, select, true
from sqlalchemy.orm.util import identity_key

from app import validation
from app.extensions import db
from app.i18n import _l
from app.models import Category, Channel, Customer, Department, Level, Staff


def _messages(required: Any) -> dict[str, Any]:
    return {
        "required": required,
        "null": required,
        "invalid": _l("Not a valid value."),
    }


class _Ref(fields.Integer):
    """An id of a row of ``model``; loads the row or fails with a per-field message."""

    def __init__(self, model: type, missing_message: Any, **kwargs: Any):
        super().__init__(strict=False, error_messages=_messages(missing_message), **kwargs)
        self.model = model

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise self.make_error("invalid")  # level 1.5 is no level (int() would make it 1)
        pk = super()._deserialize(value, attr, data, **kwargs)
        obj = db.session.get(self.model, pk)
        if obj is None:
            raise ValidationError(str(_l("There is no such %(what)s (id %(id)s).", what=self._what(), id=pk)))
        return obj

    def _what(self) -> str:
        return str(
            {
                Channel: _l("channel"),
                Category: _l("category"),
                Level: _l("level"),
                Department: _l("department"),
                Staff: _l("staff member"),
                Customer: _l("customer"),
            }.get(self.model, _l("item"))
        )


def prefetch_refs(wanted: dict[type, Any]) -> list[Any]:
    """Load rows of several models by id in one statement; ids that are no integers are skipped
    (their fields report them), and a missing row just leaves every row to its own look-up.

    The caller keeps the returned rows while it needs them: the session holds them weakly."""
    ids = {model: pk for model, pk in wanted.items() if isinstance(pk, int) and not isinstance(pk, bool)}
    if len(ids) < 2 or any(db.session.identity_map.get(identity_key(m, pk)) is not None for m, pk in ids.items()):
        return []
    stmt = _refs_statement(tuple(ids))
    return list(db.session.execute(stmt, {f"id_{i}": pk for i, pk in enumerate(ids.values())}).first() or [])


@functools.cache
def _refs_statement(models: tuple[type, ...]) -> Any:
    """One row of each table, a cross join of primary-key look-ups; built once per set of models."""
    first, *others = models
    stmt = select(first, *others).select_from(first)
    for model in others:
        stmt = stmt.join(model, true())
    return stmt.where(*(m.id == bindparam(f"id_{i}") for i, m in enumerate(models)))


class _StaffList(fields.List):
    def __init__(self, **kwargs: Any):
        super().__init__(_Ref(Staff, _l("Please choose a staff member.")), **kwargs)


_PREFETCHED = ("channel", "category", "level", "department")


class ComplaintIntakeSchema(Schema):
    """POST /api/v1/complaint/: register a complaint (customer by id or by details)."""

    class Meta:
        unknown = EXCLUDE

    received_at = fields.AwareDateTime(
        load_default=None,
        allow_none=True,
        default_timezone=None,
        error_messages={"invalid": _l("Not a valid date and time (ISO 8601, e.g. 2026-09-30T15:00:00+08:00).")},
    )
    channel = _Ref(Channel, _l("Please choose the channel the complaint came through."), required=True)
    customer = _Ref(Customer, _l("Please choose a customer."), load_default=None, allow_none=True)
    customer_name = fields.String(load_default=None, allow_none=True)
    customer_phone = fields.String(load_default=None, allow_none=True)
    customer_email = fields.String(load_default=None, allow_none=True)
    customer_address = fields.String(load_default=None, allow_none=True)
    subject = fields.String(load_default=None, allow_none=True)
    content = fields.String(
        required=True,
        error_messages=_messages(_l("Please describe what the customer complains about.")),
    )
    customer_demand = fields.String(load_default=None, allow_none=True)
    category = _Ref(Category, _l("Please choose a complaint category."), required=True)
    level = _Ref(Level, _l("Please choose a complaint level."), required=True)
    department = _Ref(Department, _l("Please choose the complained department."), required=True)
    staff = _StaffList(load_default=list)
    regulator_body = fields.String(load_default=None, allow_none=True)
    regulator_ref = fields.String(load_default=None, allow_none=True)
    # 事发日期 (not in the future) and a quality complaint's product batch (批次/批号).
    incident_date = fields.Date(
        load_default=None,
        allow_none=True,
        error_messages={"invalid": _l("Not a valid date (e.g. 2026-10-08).")},
    )
    batch_no = fields.String(load_default=None, allow_none=True)
    # 群体性投诉: how many people complain together (at least 1).
    complainant_count = fields.Integer(
        load_default=1,
        allow_none=True,
        strict=False,
        validate=validate.Range(min=1, error=_l("The number of complainants must be a whole number of at least 1.")),
        error_messages={"invalid": _l("The number of complainants must be a whole number of at least 1.")},
    )

    @pre_load
    def _naive_is_local(self, data: Any, **kwargs: Any) -> Any:
        # AwareDateTime refuses naive input; a time without offset is Beijing time.
        if isinstance(data, dict) and isinstance(data.get("received_at"), str):
            value = data["received_at"].strip()
            if value and "T" in value and not _has_offset(value):
                data = dict(data, received_at=value + "+08:00")
        return data

    @pre_load
    def _references_in_one_query(self, data: Any, **kwargs: Any) -> Any:
        # The channel, category, level and department rows in one statement (into the session's
        # identity map, where each field's ``session.get`` then finds them) instead of four. The
        # request keeps them (the schema instance is shared by the process's requests and threads).
        if isinstance(data, dict):
            g.intake_refs = prefetch_refs({self.fields[name].model: data.get(name) for name in _PREFETCHED})
        return data

    @validates_schema(skip_on_field_errors=False)
    def _fields_follow_the_rules(self, data: dict[str, Any], **kwargs: Any) -> None:
        # Report every problem at once, with the same rules as the intake form.
        errors: dict[str, list[str]] = {}

        def add(name: str, message: Any) -> None:
            if message:
                errors.setdefault(name, []).append(str(message))

        add(
            "content",
            validation.check_required_text(
                data.get("content", "-"), str(_l("Please describe what the customer complains about."))
            ),
        )
        if data.get("customer") is None:
            add(
                "customer_name",
                validation.check_required_text(
                    data.get("customer_name"), str(_l("Please enter the customer's name.")), 64
                ),
            )
            add("customer_phone", validation.check_phone(data.get("customer_phone")))
        add("customer_email", validation.check_email(data.get("customer_email")))
        add("received_at", validation.check_received_at(data.get("received_at")))
        add("incident_date", validation.check_incident_date(data.get("incident_date")))
        add("batch_no", validation.check_batch_no(data.get("batch_no")))
        if data.get("subject") and len(data["subject"]) > 200:
            add("subject", _l("At most %(n)d characters.", n=200))
        if errors:
            raise ValidationError(errors)

    @post_load
    def _staff_unique(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        seen: dict[int, Staff] = {}
        for person in data.get("staff") or []:
            seen.setdefault(person.id, person)
        data["staff"] = list(seen.values())
        return data


def _has_offset(value: str) -> bool:
    tail = value.split("T", 1)[1]
    return tail.endswith("Z") or "+" in tail or "-" in tail
