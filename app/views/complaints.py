"""The complaint screens: the register, the case page with its actions, and its filtered lists."""

from __future__ import annotations

from typing import Any, Optional

from flask import abort, current_app, flash, g, redirect, request, url_for
from flask_appbuilder import expose, has_access
from flask_appbuilder.fieldwidgets import BS3TextAreaFieldWidget, BS3TextFieldWidget, DatePickerWidget
from flask_appbuilder.models.filters import BaseFilter
from flask_appbuilder.models.sqla.filters import FilterEqual
from sqlalchemy import or_, select
from sqlalchemy.orm.util import identity_key
from wtforms import DateField, DateTimeField, IntegerField, StringField, TextAreaField
from wtforms.validators import DataRequired, NumberRange, ValidationError
from wtforms.validators import Optional as OptionalValidator

from app import labels, lifecycle, validation
from app.access import privacy, scope
from app.complaints import attachments, corrective, intake, policy_rules
from app.complaints import steps as services
from app.discipline import penalties as discipline_penalties
from app.extensions import db
from app.i18n import _, _l
from app.models import (
    Complaint,
    ComplaintStatus,
    CorrectiveAction,
    Document,
    Extension,
    Penalty,
    Staff,
    User,
)
from app.time_limits.deadlines import STAGES, UNIT_LABELS
from app.timeutil import format_local
from app.views import case_page
from app.views.base import PortalModelView, current_viewer, customer_name_cell, error_messages
from app.views.complaint_common import (
    COMPLAINT_EDIT_COLUMNS,
    COMPLAINT_LABELS,
    deadline_badge,
    reveal_contact,
    reveal_roles,
    send_attachment,
    transition_options,
)
from app.views.datamodel import PortalInterface
from app.views.documents import DOCUMENT_KINDS as DOCUMENT_KIND_LABELS
from app.views.forms import DATETIME_FORMATS, AjaxModelField, DateTimeLocalWidget, RuleValidator
from app.views.lists import CaseListWidget
from app.views.security import SCOPED, current_principal, current_user


def _staff_in_department(form: Any, field: Any) -> None:
    department = form.department.data if hasattr(form, "department") else None
    for person in field.data or []:
        if department is not None and person.department_id != department.id:
            raise ValidationError(str(_l("%(name)s does not work in the complained department.", name=person.name)))


def intake_fields() -> dict[str, Any]:
    """The intake form's extra fields, in form order: received time, customer, regulator, case."""
    return {
        "received_at": DateTimeField(
            _l("Received at"),
            format=DATETIME_FORMATS,
            widget=DateTimeLocalWidget(),
            validators=[OptionalValidator(), RuleValidator(validation.check_received_at)],
            description=_l("Beijing time; leave empty for now. Set it for letters and calls entered later."),
        ),
        **_customer_fields(),
        **_regulator_fields(),
        **_case_fields(),
    }


def _customer_fields() -> dict[str, Any]:
    """The customer's name, phone, e-mail and address."""
    return {
        "customer_name": StringField(
            _l("Customer name"),
            widget=BS3TextFieldWidget(),
            validators=[DataRequired(message=_l("Please enter the customer's name."))],
        ),
        "customer_phone": StringField(
            _l("Customer phone"),
            widget=BS3TextFieldWidget(),
            validators=[RuleValidator(validation.check_phone, required=True)],
            description=_l("Mobile or landline; earlier complaints of this number are shown."),
        ),
        "customer_email": StringField(
            _l("Customer e-mail"), widget=BS3TextFieldWidget(), validators=[RuleValidator(validation.check_email)]
        ),
        "customer_address": StringField(_l("Customer address"), widget=BS3TextFieldWidget()),
    }


def _regulator_fields() -> dict[str, Any]:
    """The transferring body and reference of a case a regulator transferred."""
    return {
        "regulator_body": StringField(
            _l("Transferring body"),
            widget=BS3TextFieldWidget(),
            description=_l("Regulator transfers only (e.g. 12345 市民热线); empty: the channel's name."),
        ),
        "regulator_ref": StringField(
            _l("Transfer reference number"),
            widget=BS3TextFieldWidget(),
            description=_l("Required for a case transferred by a regulator (转办单号)."),
        ),
    }


def _case_fields() -> dict[str, Any]:
    """The complaint text, the number of complainants and the complained staff."""
    return {
        "content": TextAreaField(
            _l("Complaint content"),
            widget=BS3TextAreaFieldWidget(),
            validators=[
                RuleValidator(
                    lambda v: validation.check_required_text(
                        v, str(_l("Please describe what the customer complains about."))
                    ),
                    required=True,
                )
            ],
        ),
        "incident_date": DateField(
            _l("Incident date"),
            widget=DatePickerWidget(),
            validators=[OptionalValidator(), RuleValidator(validation.check_incident_date)],
            description=_l("When the complained-of incident happened (事发日期); not in the future."),
        ),
        "batch_no": StringField(
            _l("Product batch / lot number"),
            widget=BS3TextFieldWidget(),
            validators=[RuleValidator(validation.check_batch_no)],
            description=_l("Quality complaints: the batch (批次/批号) of the product complained about."),
        ),
        "complainant_count": IntegerField(
            _l("Number of complainants"),
            default=1,
            widget=BS3TextFieldWidget(),
            validators=[OptionalValidator(), NumberRange(min=1, message=_l("At least 1."))],
            description=_l("Many people complaining together (群体性投诉) make the case at least a major complaint."),
        ),
        "staff": AjaxModelField(
            _l("Complained staff"),
            model=Staff,
            url="/api/v1/staff/lookup",
            multiple=True,
            depends="department",
            principal=current_principal,
            validators=[_staff_in_department],
        ),
    }


class ComplaintView(PortalModelView):
    """The complaint register: list, case page, intake form."""

    datamodel = PortalInterface(Complaint)
    class_permission_name = "Complaint"
    base_filters = SCOPED
    list_title = _l("Complaints")
    show_title = _l("Complaint case")
    add_title = _l("Register a complaint")
    edit_title = _l("Edit complaint")
    show_template = "complaint/show.html"
    add_template = "complaint/add.html"
    list_widget = CaseListWidget
    list_columns = [
        "number",
        "received_at",
        "customer",
        "subject",
        "category",
        "level",
        "department",
        "status",
        "deadline_status",
    ]
    order_columns = ["number", "received_at", "status", "next_due_at", "reply_due", "investigate_due"]
    search_columns = [
        "number",
        "status",
        "overdue",
        "supervised",
        "escalated_to_head_office_at",
        "next_due_at",
        "investigate_due",
        "reply_due",
        "follow_up_due",
        "received_at",
        "department",
        "category",
        "level",
        "channel",
        "subject",
        "content",
    ]
    base_order = ("received_at", "desc")
    add_columns = [
        "received_at",
        "channel",
        "customer_name",
        "customer_phone",
        "customer_email",
        "customer_address",
        "subject",
        "content",
        "customer_demand",
        "category",
        "level",
        "department",
        "staff",
        "complainant_count",
        "incident_date",
        "batch_no",
        "regulator_body",
        "regulator_ref",
    ]
    edit_columns = COMPLAINT_EDIT_COLUMNS
    # Grouped by stage; the case page shows a stage only once it holds data (app/views/case_page.py).
    show_fieldsets = [
        (
            _l("Registration"),
            {
                "fields": [
                    "number",
                    "status",
                    "case_type",
                    "original",
                    "received_at",
                    "registered_at",
                    "channel",
                    "regulator_body",
                    "regulator_ref",
                    "customer",
                    "complainant_count",
                    "incident_date",
                    "batch_no",
                    "first_responder",
                    "subject",
                    "content",
                    "customer_demand",
                    "category",
                    "level",
                    "department",
                    "staff",
                ]
            },
        ),
        (
            _l("Judgement and dispatch"),
            {
                "fields": [
                    "validity",
                    "validity_reason",
                    "polite_reply",
                    "judged_at",
                    "dispatched_at",
                    "signed_at",
                    "escalated_to_head_office_at",
                    "escalated_to_head_office_by",
                ]
            },
        ),
        (
            _l("Investigation and handling"),
            {"fields": ["investigation_started_at", "findings", "responsible_staff", "resolution_plan", "planned_at"]},
        ),
        (
            _l("Reply and follow-up"),
            {
                "fields": [
                    "reply_text",
                    "replied_at",
                    "feedback_note",
                    "fed_back_at",
                    "satisfaction",
                    "follow_up_note",
                    "followed_up_at",
                    "customer_informed_at",
                    "customer_informed_by",
                    "customer_informed_method",
                    "customer_informed_note",
                ]
            },
        ),
        (_l("Closing and archive"), {"fields": ["close_note", "closed_at", "archived_at"]}),
    ]
    label_columns = COMPLAINT_LABELS
    formatters_columns = {
        "status": labels.status_label,
        "case_type": lambda v: labels.label(labels.CASE_TYPE, v),
        "customer_informed_method": lambda v: labels.label(labels.FOLLOW_UP_METHOD, v),
        "validity": lambda v: labels.label(labels.VALIDITY, v),
        "satisfaction": lambda v: labels.label(labels.SATISFACTION, v),
        "staff": lambda v: "、".join(str(s) for s in v or []),
        "customer": customer_name_cell,
        "deadline_status": lambda v: deadline_badge(*v),
        "overdue": lambda v: _("Yes") if v else _("No"),
        "supervised": lambda v: _("Yes") if v else _("No"),
    }
    add_form_query_rel_fields = edit_form_query_rel_fields = {
        "department": [["active", FilterEqual, True]],
        "channel": [["active", FilterEqual, True]],
        "category": [["active", FilterEqual, True]],
        "level": [["active", FilterEqual, True]],
    }
    search_form_query_rel_fields = {"department": SCOPED}

    add_form_extra_fields = intake_fields()
    edit_form_extra_fields = {k: v for k, v in intake_fields().items() if k in ("received_at", "content", "staff")}

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk: Any) -> Any:
        return self._render_case(pk)

    @expose("/reveal/<int:pk>", methods=["POST"])
    @has_access
    def reveal(self, pk: int) -> Any:
        """显示完整联系方式: the case page with the customer's full details (logged)."""
        complaint = self.get_in_scope(pk)
        try:
            revealed = reveal_contact(complaint)
        except privacy.RevealRefused:
            abort(403)
        db.session.commit()
        return self._render_case(pk, revealed=revealed)

    def _render_case(self, pk: Any, revealed: Optional[dict[str, Any]] = None) -> Any:
        widgets = self._case_widgets(pk)
        complaint = self.get_in_scope(pk)
        principal = current_principal()
        viewer = current_viewer()
        parts = case_page.present_parts(db.session, complaint)
        events = complaint.events
        people = _people_named(complaint, events)  # noqa: F841  (held: the session keeps rows weakly)
        extensions = (
            db.session.scalars(
                select(Extension).where(Extension.complaint_id == complaint.id).order_by(Extension.id)
            ).all()
            if "extensions" in parts
            else []
        )
        return self.render_template(
            self.show_template,
            pk=pk,
            title=self.show_title,
            widgets=widgets,
            related_views=self._related_views,
            complaint=complaint,
            sections=case_page.filled_sections(self, complaint),
            next_steps=case_page.complaint_next_steps(complaint),
            due_text=case_page.due_text,
            contact=revealed or viewer.fields(complaint.customer),
            revealed=revealed is not None,
            can_reveal=privacy.may_reveal(viewer, complaint, reveal_roles()),
            reveals=privacy.reveals_of(db.session, complaint.id) if "reveals" in parts else [],
            transitions=services.available_transitions(db.session, complaint, principal, extensions=extensions),
            transition_options=lambda t: transition_options(complaint, t),
            suggested_values=lambda t: policy_rules.suggested_values(complaint, t.action),
            deadlines=sorted(complaint.deadlines, key=lambda d: (d.started_at, d.id)),
            extensions=extensions,
            stages=STAGES,
            stage_state=lambda v: labels.label(labels.STAGE_STATE, v),
            extension_status=lambda v: labels.label(labels.EXTENSION_STATUS, v),
            pause_state=lambda v: labels.label(labels.PAUSE_STATE, v),
            follow_up_method=lambda v: labels.label(labels.FOLLOW_UP_METHOD, v),
            unit_label=lambda v: str(UNIT_LABELS.get(v, v)),
            action_label=labels.action_label,
            action_kind=labels.action_kind,
            deadline_badge=deadline_badge,
            events=events,
            attachments=complaint.attachments,
            can_attach=self.appbuilder.sm.has_access("can_add", "Attachment") and not complaint.is_archived,
            **self._corrective_context(complaint, principal, parts),
            **self._discipline_context(complaint, principal, parts),
            can_edit=self.appbuilder.sm.has_access("can_edit", "Complaint") and not complaint.is_archived,
            status_label=labels.status_label,
            format_local=format_local,
            max_mb=current_app.config["ATTACHMENT_MAX_BYTES"] / 1048576,
            allowed_types=", ".join(sorted(current_app.config["ATTACHMENT_ALLOWED_TYPES"])),
        )

    def _discipline_context(self, complaint: Complaint, principal: Any, parts: frozenset[str]) -> dict[str, Any]:
        """The penalty cases and documents that came from this complaint, as far as the viewer may see them."""
        sm = self.appbuilder.sm
        has_penalties = "penalties" in parts
        penalties_ = (
            db.session.scalars(
                select(Penalty)
                .where(Penalty.complaint_id == complaint.id, scope.criterion(Penalty, principal))
                .order_by(Penalty.id)
            ).all()
            if has_penalties and sm.has_access("can_read", "Penalty")
            else []
        )
        documents_ = (
            db.session.scalars(
                select(Document)
                .outerjoin(Penalty, Penalty.id == Document.penalty_id)
                .where(
                    or_(Document.complaint_id == complaint.id, Penalty.complaint_id == complaint.id),
                    scope.criterion(Document, principal),
                )
                .order_by(Document.issued_at, Document.id)
            ).all()
            if (has_penalties or "documents" in parts) and sm.has_access("can_read", "Document")
            else []
        )
        return {
            "complaint_penalties": penalties_,
            "complaint_documents": documents_,
            "penalty_status_label": discipline_penalties.status_label,
            "document_kind_label": lambda v: labels.label(DOCUMENT_KIND_LABELS, v),
        }

    def _corrective_context(self, complaint: Complaint, principal: Any, parts: frozenset[str]) -> dict[str, Any]:
        actions = (
            db.session.scalars(
                select(CorrectiveAction)
                .where(CorrectiveAction.complaint_id == complaint.id)
                .order_by(CorrectiveAction.id)
            ).all()
            if "corrective_actions" in parts
            else []
        )
        can_add = (
            corrective.may_add(principal, complaint)
            and not complaint.is_archived
            and getattr(complaint.status, "value", complaint.status) in corrective.ADD_STATUSES
            and getattr(complaint.validity, "value", complaint.validity) == "valid"
        )
        owners = (
            db.session.scalars(
                select(Staff)
                .where(Staff.department_id == complaint.department_id, Staff.active.is_(True))
                .order_by(Staff.id)
            ).all()
            if can_add
            else []
        )
        return {
            "corrective_actions": actions,
            "can_add_corrective": can_add,
            "corrective_owners": owners,
            "corrective_kinds": corrective.KINDS,
            "corrective_kind": lambda v: str(corrective.KIND_LABELS.get(v, v)),
            "corrective_state": lambda v: str(corrective.STATE_LABELS.get(v, v)),
            "may_complete": lambda a: not complaint.is_archived and corrective.may_complete(principal, a),
            "may_verify": not complaint.is_archived and corrective.may_verify(principal),
        }

    def _add(self) -> Any:
        """Register through the service; a refused intake re-renders with per-field messages."""
        if current_principal().staff_id is None:
            abort(403)
        form = self.add_form.refresh()
        if request.method == "POST" and form.validate():
            data = {name: form[name].data for name in self.add_columns if name in form}
            user = current_user()
            try:
                registered = intake.register_complaint(db.session, user.id if user else None, data)
                db.session.commit()
            except lifecycle.ValidationFailed as exc:
                db.session.rollback()
                for name, messages in exc.errors.items():
                    target = form[name] if name in form else None
                    if target is not None:
                        target.errors = list(target.errors) + messages
                    else:
                        for message in messages:
                            flash(message, "danger")
            else:
                g._registered = registered
                flash(_("Complaint %(number)s registered.", number=registered.number), "success")
                return None
        return self._get_add_widget(form=form)

    def post_add_redirect(self) -> Any:
        registered = g.get("_registered")
        if registered is not None:
            return redirect(url_for(f"{type(self).__name__}.show", pk=registered.id))
        return super().post_add_redirect()

    def pre_update(self, item: Complaint) -> None:
        if item.is_archived:
            raise ValueError(str(_l("The case is archived and can no longer be changed.")))
        user = current_user()
        try:
            services.after_case_edit(db.session, item, user.id if user else None)
        except lifecycle.ValidationFailed as exc:
            db.session.rollback()  # FAB only flashes the message; nothing of the edit may stay
            raise ValueError(" ".join(error_messages(exc))) from exc

    def pre_delete(self, item: Complaint) -> None:
        raise ValueError(str(_l("Complaints are never deleted; close and archive them instead.")))

    @expose("/attach/<int:pk>", methods=["POST"])
    @has_access
    def attach(self, pk: int) -> Any:
        complaint = self.get_in_scope(pk)
        if not self.appbuilder.sm.has_access("can_add", "Attachment"):
            abort(403)
        upload = request.files.get("file")
        user = current_user()
        try:
            attachments.add_attachment(
                complaint,
                upload.filename if upload else "",
                upload.read() if upload else b"",
                upload.mimetype if upload else None,
                user.id if user else None,
                current_app.config["ATTACHMENT_ALLOWED_TYPES"],
                current_app.config["ATTACHMENT_MAX_BYTES"],
                request.form.get("description"),
            )
            db.session.commit()
            flash(_("The file was attached."), "success")
        except lifecycle.ValidationFailed as exc:
            db.session.rollback()
            for messages in exc.errors.values():
                for message in messages:
                    flash(message, "danger")
        return redirect(url_for(f"{type(self).__name__}.show", pk=pk))

    @expose("/attachment/<int:attachment_id>", methods=["GET"])
    @has_access
    def attachment(self, attachment_id: int) -> Any:
        return send_attachment(attachment_id)

    @expose("/act/<int:pk>", methods=["POST"])
    @has_access
    def act(self, pk: int) -> Any:
        """Take one lifecycle action from the case page's action forms."""
        return self.take_step_from_form(self.get_in_scope(pk), services.take_transition, labels.action_label)

    @expose("/corrective/<int:pk>", methods=["POST"])
    @has_access
    def corrective(self, pk: int) -> Any:
        """Add, complete or verify a corrective action from the case page."""
        complaint = self.get_in_scope(pk)
        step = request.form.get("step", "add")
        try:
            if step == "add":
                corrective.add(db.session, complaint, current_principal(), dict(request.form))
            else:
                action = db.session.get(CorrectiveAction, int(request.form.get("action_id") or 0))
                if action is None or action.complaint_id != complaint.id:
                    abort(404)
                note = request.form.get("note", "")
                if step == "complete":
                    corrective.complete(db.session, action, current_principal(), note)
                elif step in ("verify", "reject"):
                    corrective.verify(db.session, action, current_principal(), step == "verify", note)
                else:
                    abort(400)
            db.session.commit()
            flash(_("Corrective action saved."), "success")
        except corrective.CorrectiveError as exc:
            db.session.rollback()
            flash(exc.message, "danger")
        return redirect(url_for(f"{type(self).__name__}.show", pk=pk))


class UnsignedFilter(BaseFilter):
    """Dispatched cases the receiving department has not signed for yet (签收)."""

    name = "Awaiting sign-in"
    arg_name = "unsigned"

    def apply(self, query: Any, value: Any) -> Any:
        return query.filter(Complaint.status == ComplaintStatus.dispatched, Complaint.signed_at.is_(None))


class UnsignedComplaintView(ComplaintView):
    """The sender's screen of dispatched cases still waiting for the department's signature."""

    list_title = _l("Dispatched, awaiting sign-in")
    base_filters = [*SCOPED, ["id", UnsignedFilter, lambda: None]]
    base_order = ("dispatched_at", "asc")
    list_columns = ["number", "received_at", "subject", "level", "department", "dispatched_at", "deadline_status"]


class HeadOfficeFilter(BaseFilter):
    """Cases escalated by a unit to the head office (上报总部)."""

    name = "Escalated to the head office"
    arg_name = "head_office"

    def apply(self, query: Any, value: Any) -> Any:
        return query.filter(Complaint.escalated_to_head_office_at.is_not(None))


class HeadOfficeComplaintView(ComplaintView):
    """The head office's list of cases escalated to it by branches, 管理处 and 网点."""

    list_title = _l("Escalated to the head office")
    base_filters = [*SCOPED, ["id", HeadOfficeFilter, lambda: None]]
    base_order = ("escalated_to_head_office_at", "desc")
    list_columns = ["number", "received_at", "subject", "level", "department", "escalated_to_head_office_at", "status"]


def _people_named(complaint: Complaint, events: list[Any]) -> list[Any]:
    """The users the case page names (the first responder, who escalated it, who told the customer,
    every actor of the timeline) in one query: each was a lazy load of its own, one more statement
    for every other person who took a step. The rows land in the session, where the relations find
    them; the caller holds the list while the page renders."""
    ids = {complaint.first_responder_id, complaint.escalated_to_head_office_by_id, complaint.customer_informed_by_id}
    ids.update(e.actor_id for e in events)
    ids.discard(None)
    missing = sorted(i for i in ids if identity_key(User, i) not in db.session.identity_map)
    return db.session.scalars(select(User).where(User.id.in_(missing))).all() if missing else []
