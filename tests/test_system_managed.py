"""Audit: no screen or REST resource lets a user write a system-managed column.

Walks every registered view (``appbuilder.baseviews``) and API and looks at what a user can
actually reach: the add/edit forms of screens whose route exists and whose permission the
view declares, and the add/edit schemas of resources whose POST/PUT exists. It fails when

- one of them offers a column that ``app.models.SYSTEM_MANAGED`` (or an immutable record)
  declares system-managed, or a binary column;
- one of them offers a column whose name looks system-managed (numbers, hashes, versions,
  issuers, owners, recipients, timestamps, status, dedup keys …) and that nobody has
  deliberately declared a user's input in ``USER_INPUT`` below — so a new column is either
  declared system-managed in the models or listed here on purpose;
- an immutable record (issued documents, timelines, notifications, the access log) has a
  generic add, edit or delete endpoint at all.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask_appbuilder import ModelRestApi, ModelView
from sqlalchemy import LargeBinary

from app.models import IMMUTABLE_RECORDS, SYSTEM_MANAGED, system_managed

# Names that are system-managed unless declared otherwise.
LOOKS_SYSTEM = re.compile(
    r"(^|_)(number|no|seq|sha256|hash|version|dedup_key|key|status|state|stage_status|superseded|supersedes)$"
    r"|_at$|_by$|^(user|recipient|owner|author|issuer|issued_by|created_by|recorded_by|generated_by)$"
)

# Columns whose names look system-managed but that people enter, each for a reason.
USER_INPUT = {
    ("Complaint", "batch_no"): "the product batch / lot number the customer reports (seed 004)",
    ("Complaint", "received_at"): "when the customer called, as the intake records it",
    ("Grievance", "received_at"): "when the customer called, as the ticket records it",
    ("ServicePhrase", "number"): "the phrase's number in the policy text (服务忌语第N条)",
    ("Staff", "employee_no"): "the employee number of the HR roster",
    ("Staff", "user"): "Admin links a login account to its staff record",
    ("Setting", "key"): "the name of a setting an administrator adds",
}


def _model(view: Any) -> type:
    return view.datamodel.obj


def _ours(view: Any) -> bool:
    return hasattr(view, "datamodel") and _model(view).__module__.startswith("app.")


def _routed(app: Any, view: Any, method: str) -> bool:
    return f"{type(view).__name__}.{method}" in {rule.endpoint for rule in app.url_map.iter_rules()}


def _permitted(view: Any, method: str) -> bool:
    name = (view.method_permission_name or {}).get(method, method)
    return f"can_{name}" in view.base_permissions


def reachable_forms(app: Any) -> list[tuple[str, str, type, list[str]]]:
    """(view, add|edit|post|put, model, columns) of every form or schema a user can reach."""
    found = []
    for view in app.appbuilder.baseviews:
        if not _ours(view):
            continue
        name = type(view).__name__
        if isinstance(view, ModelView):
            for method, columns in (("add", view.add_columns), ("edit", view.edit_columns)):
                if _routed(app, view, method) and _permitted(view, method):
                    found.append((name, method, _model(view), list(columns or [])))
        elif isinstance(view, ModelRestApi):
            for method, schema in (("post", view.add_model_schema), ("put", view.edit_model_schema)):
                if _routed(app, view, method) and _permitted(view, method):
                    found.append((name, method, _model(view), sorted(schema.fields)))
    return found


@pytest.fixture
def forms(sqlite_app):
    return reachable_forms(sqlite_app)


def test_the_audit_sees_the_screens_and_resources(forms):
    names = {(view, method) for view, method, _model, _columns in forms}
    assert ("ComplaintView", "edit") in names and ("ComplaintApi", "put") in names
    assert ("PenaltyApi", "post") in names and ("CustomerView", "add") in names
    assert len(forms) > 40


def test_no_form_or_schema_offers_a_declared_system_column(forms):
    exposed = [
        (view, method, column)
        for view, method, model, columns in forms
        for column in columns
        if column in system_managed(model)
    ]
    assert exposed == []


def test_no_form_or_schema_offers_a_binary_column(forms):
    exposed = []
    for view, method, model, columns in forms:
        table = model.__table__
        for column in columns:
            if column in table.columns and isinstance(table.columns[column].type, LargeBinary):
                exposed.append((view, method, column))
    assert exposed == []


def test_every_system_looking_column_in_a_form_is_declared_user_input(forms):
    undeclared = sorted(
        {
            (model.__name__, column, view, method)
            for view, method, model, columns in forms
            for column in columns
            if LOOKS_SYSTEM.search(column) and (model.__name__, column) not in USER_INPUT
        }
    )
    assert undeclared == [], (
        "declare these columns system-managed in app.models.SYSTEM_MANAGED, or as a user's input "
        "in USER_INPUT here with the reason"
    )


def test_immutable_records_have_no_generic_add_edit_or_delete(sqlite_app):
    offending = []
    endpoints = {rule.endpoint for rule in sqlite_app.url_map.iter_rules()}
    for view in sqlite_app.appbuilder.baseviews:
        if not _ours(view) or _model(view) not in IMMUTABLE_RECORDS:
            continue
        methods = ("add", "edit", "delete") if isinstance(view, ModelView) else ("post", "put", "delete")
        offending += [f"{type(view).__name__}.{m}" for m in methods if f"{type(view).__name__}.{m}" in endpoints]
    assert offending == []


def test_declared_system_columns_exist():
    """A renamed column must not silently drop out of the declaration."""
    for model, names in SYSTEM_MANAGED.items():
        missing = [n for n in names if n not in model.__table__.columns]
        assert missing == [], model.__name__
