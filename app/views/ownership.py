"""First-contact ownership (首问负责制) and dissatisfaction tickets (不满工单)."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, g, redirect, request, url_for
from flask_appbuilder import expose, has_access
from flask_appbuilder.api import expose as api_expose
from flask_appbuilder.api import safe
from flask_appbuilder.fieldwidgets import BS3TextAreaFieldWidget
from flask_appbuilder.models.sqla.filters import FilterEqual, FilterEqualFunction
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import permission_name, protect
from sqlalchemy import select
from wtforms import TextAreaField

from app import lifecycle
from app.access import scope
from app.complaints import grievances
from app.extensions import db
from app.i18n import _, _l
from app.models import (
    Category,
    Channel,
    Department,
    Grievance,
    Level,
)
from app.quality import analytics
from app.timeutil import parse_iso, utcnow
from app.views.base import PortalApi, PortalModelView, current_user_id, error_messages, form_errors
from app.views.complaints import ComplaintView, intake_fields
from app.views.dashboards import REPORT_YEARS
from app.views.lists import CaseListWidget, complaint_link
from app.views.security import SCOPED, current_principal
from app.views.time_limits import sla_local_tz


class MyRegisteredComplaintView(ComplaintView):
    """The cases the caller registered (首问责任人), whichever department handles them."""

    list_title = _l("Complaints I registered")
    base_filters = [*SCOPED, ["first_responder_id", FilterEqualFunction, current_user_id]]
    list_columns = ["number", "received_at", "customer", "subject", "department", "status", "customer_informed_at"]


_GRIEVANCE_LABELS = {
    "number": _l("Number"),
    "received_at": _l("Received at"),
    "registered_at": _l("Registered at"),
    "channel": _l("Channel"),
    "customer": _l("Customer"),
    "department": _l("Department concerned"),
    "content": _l("Grievance"),
    "explanation": _l("Explanation given"),
    "accepted": _l("Customer accepted"),
    "recorded_by": _l("Recorded by"),
    "complaint": _l("Converted into complaint"),
    "converted_at": _l("Converted at"),
}


def _grievance_fields() -> dict[str, Any]:
    # Received time, customer name and phone are asked as at complaint intake (same rules).
    fields = {k: v for k, v in intake_fields().items() if k in ("received_at", "customer_name", "customer_phone")}
    return {
        **fields,
        "content": TextAreaField(_l("Grievance"), widget=BS3TextAreaFieldWidget()),
        "explanation": TextAreaField(_l("Explanation given"), widget=BS3TextAreaFieldWidget()),
    }


class GrievanceView(PortalModelView):
    """不满工单: grievances settled on the spot; convertible into a complaint if the customer comes back."""

    datamodel = SQLAInterface(Grievance)
    class_permission_name = "Grievance"
    base_filters = SCOPED
    base_permissions = ["can_read", "can_add"]
    list_title = _l("Dissatisfaction tickets")
    show_title = _l("Dissatisfaction ticket")
    add_title = _l("Record a dissatisfaction ticket")
    show_template = "grievance/show.html"
    list_widget = CaseListWidget
    list_columns = ["number", "received_at", "customer", "department", "content", "recorded_by", "complaint"]
    show_columns = [
        "number",
        "received_at",
        "registered_at",
        "channel",
        "customer",
        "department",
        "content",
        "explanation",
        "accepted",
        "recorded_by",
        "complaint",
        "converted_at",
    ]
    add_columns = [
        "received_at",
        "channel",
        "customer_name",
        "customer_phone",
        "department",
        "content",
        "explanation",
        "accepted",
    ]
    search_columns = ["number", "received_at", "department", "channel", "content"]
    base_order = ("received_at", "desc")
    label_columns = _GRIEVANCE_LABELS
    formatters_columns = {"accepted": lambda v: _("Yes") if v else _("No"), "complaint": complaint_link}
    add_form_query_rel_fields = {
        "department": [["active", FilterEqual, True]],
        "channel": [["active", FilterEqual, True]],
    }
    add_form_extra_fields = _grievance_fields()

    def _add(self) -> Any:
        """Record through the service; refused input re-renders with per-field messages."""
        if current_principal().staff_id is None:
            abort(403)
        form = self.add_form.refresh()
        if request.method == "POST" and form.validate():
            data = {name: form[name].data for name in self.add_columns if name in form}
            try:
                ticket = grievances.record(db.session, current_user_id(), data)
                db.session.commit()
            except lifecycle.ValidationFailed as exc:
                db.session.rollback()
                form_errors(form, exc)
            else:
                g._grievance = ticket
                flash(_("Dissatisfaction ticket %(number)s recorded.", number=ticket.number), "success")
                return None
        return self._get_add_widget(form=form)

    def post_add_redirect(self) -> Any:
        ticket = g.get("_grievance")
        if ticket is not None:
            return redirect(url_for("GrievanceView.show", pk=ticket.id))
        return super().post_add_redirect()

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk: Any) -> Any:
        ticket = self.get_in_scope(pk)
        widgets = self._show(pk)

        def active(model: type) -> list[Any]:
            return list(db.session.scalars(select(model).where(model.active.is_(True)).order_by(model.id)))

        return self.render_template(
            self.show_template,
            pk=pk,
            title=self.show_title,
            widgets=widgets,
            related_views=self._related_views,
            ticket=ticket,
            can_convert=self.appbuilder.sm.has_access("can_add", "Complaint"),
            selects=[
                ("category", _("Category"), active(Category)),
                ("level", _("Level"), active(Level)),
                ("department", _("Complained department"), active(Department)),
            ],
        )

    @expose("/convert/<int:pk>", methods=["POST"])
    @has_access
    def convert(self, pk: int) -> Any:
        ticket = self.get_in_scope(pk)
        if not self.appbuilder.sm.has_access("can_add", "Complaint"):
            abort(403)
        try:
            complaint = grievances.convert(db.session, ticket, current_user_id(), _conversion_data(request.form))
            db.session.commit()
        except (lifecycle.ValidationFailed, grievances.AlreadyConverted) as exc:
            db.session.rollback()
            for message in error_messages(exc):
                flash(message, "danger")
            return redirect(url_for("GrievanceView.show", pk=pk))
        flash(_("Complaint %(number)s registered.", number=complaint.number), "success")
        return redirect(url_for("ComplaintView.show", pk=complaint.id))


def _conversion_data(raw: Any) -> dict[str, Any]:
    """Conversion fields from a form or JSON: ids of category, level, department; new content."""

    def row(model: type, name: str) -> Any:
        value = raw.get(name)
        try:
            found = db.session.get(model, int(value)) if value not in (None, "") else None
        except (TypeError, ValueError):
            found = None
        return found if found is not None and getattr(found, "active", True) else None

    return {
        "category": row(Category, "category"),
        "level": row(Level, "level"),
        "department": row(Department, "department"),
        "channel": row(Channel, "channel"),
        "content": raw.get("content") or "",
        "customer_demand": raw.get("customer_demand") or None,
    }


class GrievanceApi(PortalApi):
    """``/api/v1/grievance/``: dissatisfaction tickets (不满工单), scoped like their screen."""

    resource_name = "grievance"
    datamodel = SQLAInterface(Grievance)
    class_permission_name = "Grievance"
    base_filters = SCOPED
    base_permissions = ["can_read", "can_add"]
    list_columns = [
        "id",
        "number",
        "received_at",
        "registered_at",
        "channel.id",
        "channel.name",
        "customer.id",
        "customer.name",
        "department.id",
        "department.name",
        "content",
        "explanation",
        "accepted",
        "recorded_by.id",
        "recorded_by.username",
        "complaint.id",
        "complaint.number",
        "converted_at",
    ]
    show_columns = list_columns
    lookup_columns = ("number", "content")
    lookup_order = "number"
    add_columns = ["received_at", "channel", "department", "content", "explanation", "accepted"]
    search_columns = ["number", "received_at", "department", "channel", "recorded_by", "converted_at"]
    order_columns = ["number", "received_at", "converted_at"]
    base_order = ("received_at", "desc")

    def post_headless(self) -> Any:
        """Record a ticket: ``{customer_name, customer_phone, channel, department?, content, explanation,
        accepted, received_at?}`` (channel and department by id)."""
        if current_principal().staff_id is None:
            return self.response(403, message=_("Your account is not linked to a staff record."))
        if not request.is_json or not isinstance(request.json, dict):
            return self.response_400(message=_("The request body must be JSON."))
        body = request.json
        data = {**body, **{k: v for k, v in _conversion_data(body).items() if k in ("department", "channel")}}
        raw_received = data.pop("received_at", None)
        if raw_received is not None:
            try:
                if not isinstance(raw_received, str):
                    raise ValueError("not a string")
                if raw_received.strip():
                    data["received_at"] = parse_iso(raw_received)
            except ValueError:
                return self.response_422(message={"received_at": [_("Please enter a valid date and time.")]})
        try:
            ticket = grievances.record(db.session, current_user_id(), data)
            db.session.flush()
            result = self.show_model_schema.dump(ticket)
            db.session.commit()
        except lifecycle.ValidationFailed as exc:
            db.session.rollback()
            return self.response_422(message=exc.errors)
        return self.response(201, id=ticket.id, result=result)

    @api_expose("/<int:pk>/convert", methods=["POST"])
    @protect()
    @safe
    @permission_name("convert")
    def convert(self, pk: int) -> Any:
        """The customer came back: convert the ticket into a complaint keeping its number and time received.
        ---
        post:
          requestBody:
            content:
              application/json:
                schema:
                  type: object
                  properties:
                    category: {type: integer}
                    level: {type: integer}
                    department: {type: integer}
                    content: {type: string}
          responses:
            201:
              description: The complaint, numbered as the ticket, received when the ticket was
            403:
              description: The caller may not register complaints
            409:
              description: Already converted
            422:
              description: Missing or wrong fields
        """
        ticket = self.datamodel.get(pk, self._base_filters)
        if ticket is None:
            return self.response_404()
        if not self.appbuilder.sm.has_access("can_add", "Complaint"):
            return self.response(403, message=_("Your role may not register complaints."))
        body = request.json if request.is_json and isinstance(request.json, dict) else {}
        try:
            complaint = grievances.convert(db.session, ticket, current_user_id(), _conversion_data(body))
            db.session.flush()
            number, received_at = complaint.number, complaint.received_at
            complaint_id = complaint.id
            db.session.commit()
        except grievances.AlreadyConverted as exc:
            db.session.rollback()
            return self.response(409, message=str(exc))
        except lifecycle.ValidationFailed as exc:
            db.session.rollback()
            return self.response_422(message=exc.errors)
        return self.response(201, id=complaint_id, grievance_id=pk, number=number, received_at=received_at.isoformat())

    @api_expose("/monthly", methods=["GET"])
    @protect()
    @safe
    @permission_name("monthly")
    def monthly(self) -> Any:
        """不满工单 per month and department of a year (``?year=2026``), in the caller's scope.
        ---
        get:
          responses:
            200:
              description: Counts per month, with the number converted into complaints
        """
        try:
            year = int(request.args.get("year") or utcnow().astimezone(sla_local_tz()).year)
        except ValueError:
            return self.response_400(message=_("Please give the year as a number, e.g. 2026."))
        if year not in REPORT_YEARS:
            return self.response_400(
                message=_("Give a year between %(first)d and %(last)d.", first=REPORT_YEARS[0], last=REPORT_YEARS[-1])
            )
        criterion = scope.criterion(Grievance, current_principal())
        return self.response(200, year=year, result=analytics.monthly_grievances(db.session, year, criterion))
