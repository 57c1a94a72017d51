"""Customers and their complaints tab."""

from __future__ import annotations

from typing import Any

from flask import request
from flask_appbuilder.models.sqla.interface import SQLAInterface
from sqlalchemy import select

from app import labels, lifecycle, validation
from app.access import privacy
from app.extensions import db
from app.i18n import _l
from app.models import (
    Complaint,
    Customer,
)
from app.views import masked_search
from app.views.base import CUSTOMER_SCOPE, PortalApi, PortalModelView, blank_if_none
from app.views.complaint_common import COMPLAINT_LABELS
from app.views.forms import RuleValidator
from app.views.lists import ComplaintListWidget
from app.views.security import SCOPED, current_principal, current_user

# Column lists that the screen and the REST resource of a model share.
CUSTOMER_FORM_COLUMNS = ["name", "phone", "email", "address", "note"]
CUSTOMER_SEARCH_COLUMNS = ["name", "phone", "email"]


class CustomerComplaintView(PortalModelView):
    """Complaints tab on a customer page (scoped like every complaint list)."""

    datamodel = SQLAInterface(Complaint)
    class_permission_name = "Complaint"
    base_filters = SCOPED
    list_columns = ["number", "received_at", "subject", "department", "status"]
    list_widget = ComplaintListWidget
    list_title = _l("Complaints")
    label_columns = COMPLAINT_LABELS
    formatters_columns = {"status": labels.status_label}
    base_permissions = ["can_read"]


class CustomerView(PortalModelView):
    datamodel = SQLAInterface(Customer)
    class_permission_name = "Customer"
    base_filters = CUSTOMER_SCOPE
    # Contact details are masked on every screen (个人信息保护法); a case page reveals them.
    formatters_columns = {
        "phone": lambda v: blank_if_none(privacy.mask_phone(v)),
        "email": lambda v: blank_if_none(privacy.mask_email(v)),
        "address": lambda v: blank_if_none(privacy.mask_address(v)),
    }
    list_title = _l("Customers")
    show_title = add_title = edit_title = _l("Customer")
    list_columns = ["name", "phone", "email", "created_at"]
    add_columns = edit_columns = CUSTOMER_FORM_COLUMNS
    show_columns = ["name", "phone", "email", "address", "note", "created_at"]
    search_columns = CUSTOMER_SEARCH_COLUMNS
    # Sorting by a masked column would tell its order: only by name and date.
    order_columns = ["name", "created_at"]
    base_order = ("id", "desc")
    related_views = [CustomerComplaintView]
    label_columns = {
        "name": _l("Name"),
        "phone": _l("Phone"),
        "email": _l("E-mail"),
        "address": _l("Address"),
        "note": _l("Note"),
        "created_at": _l("Created at"),
    }
    validators_columns = {
        "phone": [RuleValidator(lambda v: validation.check_phone(v, required=False))],
        "email": [RuleValidator(validation.check_email)],
    }

    def pre_add(self, item: Customer) -> None:
        item.phone = validation.normalize_phone(item.phone) or None

    pre_update = pre_add

    def prefill_form(self, form: Any, pk: Any) -> None:
        # The edit form holds the full details: opening it counts as a reveal.
        user = current_user()
        privacy.log_access(
            db.session,
            "reveal",
            user_id=user.id if user else None,
            username=user.username if user else None,
            target=("customer", int(pk)),
            ip=request.remote_addr,
            detail="edit form",
        )
        db.session.commit()


class CustomerApi(PortalApi):
    resource_name = "customer"
    datamodel = SQLAInterface(Customer)
    class_permission_name = "Customer"
    base_filters = CUSTOMER_SCOPE
    list_columns = ["id", "name", "phone", "email", "created_at"]
    show_columns = ["id", "name", "phone", "email", "address", "note", "created_at"]
    add_columns = edit_columns = CUSTOMER_FORM_COLUMNS
    search_columns = CUSTOMER_SEARCH_COLUMNS
    order_columns = ["name", "created_at"]
    lookup_order = "id"

    def lookup_criteria(self, text: str) -> list[Any]:
        """The name contains the text, or the phone or e-mail is exactly it (a masked field is
        never matched by a part of it); an exact phone or e-mail search is logged."""
        criteria = super().lookup_criteria(text)
        column, value = _exact_contact(text)
        if column is None:
            return criteria
        exact = getattr(Customer, column) == value
        matches = list(db.session.scalars(select(Customer.id).where(exact).order_by(Customer.id).limit(20)))
        masked_search.log_searches([(column, value)], matches, "lookup")
        return [*criteria, exact]

    def lookup_text(self, row: Customer) -> str:
        return f"{row.name} {privacy.mask_phone(row.phone) or ''}".strip()

    def lookup_filter(self, stmt: Any) -> Any:
        hidden = privacy.protected_customer_criterion(current_principal().staff_id)
        return stmt if hidden is None else stmt.where(~hidden)

    def pre_add(self, item: Customer) -> None:
        _check_customer(item)

    pre_update = pre_add

    # Contact details are masked in every answer (个人信息保护法).
    def pre_get(self, data: dict[str, Any]) -> None:
        privacy.mask_customer_json(data.get("result"))

    def post_headless(self) -> Any:
        return self._masked(super().post_headless())

    def put_headless(self, pk: Any) -> Any:
        return self._masked(super().put_headless(pk))

    def _masked(self, response: Any) -> Any:
        """FAB echoes the saved row: mask it like every other answer."""
        if response.status_code not in (200, 201) or not response.is_json:
            return response
        body = response.get_json()
        privacy.mask_customer_json(body.get("result"))
        return self.response(response.status_code, **body)

    def pre_get_list(self, data: dict[str, Any]) -> None:
        super().pre_get_list(data)
        for row in data.get("result") or []:
            privacy.mask_customer_json(row)


def _exact_contact(text: str) -> tuple[Any, Any]:
    """(column, value) when the search text is a whole phone number or e-mail address."""
    if "@" in text:
        return (None, None) if validation.check_email(text) else ("email", text.strip())
    if any(c.isdigit() for c in text) and validation.check_phone(text) is None:
        return "phone", validation.normalize_phone(text)
    return None, None


def _check_customer(item: Customer) -> None:
    errors = lifecycle.Errors()
    errors.add("name", validation.check_required_text(item.name, str(_l("Please enter the customer's name.")), 64))
    errors.add("phone", validation.check_phone(item.phone, required=False))
    errors.add("email", validation.check_email(item.email))
    errors.raise_if_any()
    item.phone = validation.normalize_phone(item.phone) or None
