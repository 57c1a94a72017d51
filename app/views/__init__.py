"""Screens and REST resources, declared.

Each model gets a FAB ``ModelView`` (list/show/add/edit) and a ``ModelRestApi``
under ``/api/v1/<resource>/`` that share one permission name (the resource), so
``config.FAB_ROLES`` grants both at once; row scope comes from ``SCOPED``.
Behaviour lives in ``app/services.py`` and the domain modules, not here.
"""

from __future__ import annotations

from typing import Any, Optional

from flask import abort, current_app, flash, g, redirect, request, send_file, url_for
from flask_appbuilder import BaseView, IndexView, ModelRestApi, ModelView, expose, has_access
from flask_appbuilder.actions import action
from flask_appbuilder.api import BaseApi, safe
from flask_appbuilder.api import expose as api_expose
from flask_appbuilder.const import FLAMSG_ERR_SEC_ACCESS_DENIED
from flask_appbuilder.fieldwidgets import BS3TextAreaFieldWidget, BS3TextFieldWidget
from flask_appbuilder.models.filters import BaseFilter
from flask_appbuilder.models.sqla.filters import FilterEqual, FilterEqualFunction
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import permission_name, protect
from markupsafe import Markup
from marshmallow import ValidationError as SchemaError
from sqlalchemy import func, or_, select
from sqlalchemy.orm.exc import StaleDataError
from wtforms import DateTimeField, IntegerField, StringField, TextAreaField
from wtforms.validators import DataRequired, NumberRange
from wtforms.validators import Optional as OptionalValidator

from app import labels, lifecycle, settings, validation
from app.access import privacy, scope
from app.complaints import attachments, grievances, intake, phrases, regulator, workflow
from app.complaints import steps as services
from app.discipline import ledger, notices
from app.documents import record_form
from app.extensions import db
from app.i18n import _, _l
from app.models import (
    AccessLog,
    Attachment,
    CalendarOverride,
    Category,
    Channel,
    Complaint,
    ComplaintEvent,
    CorrectiveAction,
    Customer,
    CustomerCount,
    Department,
    Extension,
    FollowUp,
    Grievance,
    Level,
    Notification,
    PhraseKind,
    ReplyScript,
    ServicePhrase,
    Setting,
    SlaRule,
    Staff,
    Unit,
    UnitKind,
    UTCDateTime,
)
from app.time_limits import sla
from app.time_limits.deadlines import ROLE_TOKENS, STAGES, UNIT_LABELS
from app.timeutil import format_local, utcnow
from app.views.errors import outage_or_500
from app.views.forms import DATETIME_FORMATS, AjaxModelField, DateTimeLocalWidget, RuleValidator
from app.views.schemas import ComplaintIntakeSchema
from app.views.security import SCOPED, current_principal, current_user

# FAB method name -> permission (can_<perm> on the resource's class_permission_name).
MODEL_PERMS = {
    "list": "read",
    "show": "read",
    "get": "read",
    "get_list": "read",
    "info": "read",
    "lookup": "read",
    "lookup_caller": "read",
    "attachments": "read",
    "attachment": "read",
    "attach": "read",
    "act": "read",
    "reveal": "read",
    "transitions": "read",
    "transition": "read",
    "recomplain": "read",
    "convert": "add",
    "monthly": "read",
    "timeline": "read",
    "corrective": "read",
    "corrective_step": "read",
    "mark_read": "read",
    "read_all": "read",
    "add": "add",
    "post": "add",
    "edit": "edit",
    "put": "edit",
    "delete": "delete",
    "action": "read",
    "action_post": "read",
}

PAGE_SIZE = 25


def _blank(value: Any) -> Any:
    """Show nothing, not "None", for an empty field."""
    return "" if value is None else value


def _local_time(value: Any) -> str:
    return format_local(value) if value else ""


def current_viewer() -> privacy.Viewer:
    """How the caller sees customers (masked, or hidden where it was complained about), once a request."""
    principal = current_principal()
    cached = g.get("_viewer")
    if cached is None or cached.principal is not principal:
        cached = privacy.Viewer.of(db.session, principal)
        g._viewer = cached
    return cached


def customer_name_cell(customer: Any) -> str:
    return (current_viewer().fields(customer)["name"] or "") if customer is not None else ""


class NotComplainedAboutFilter(BaseFilter):
    """Leaves out the customers who complained about the caller (保密, app/privacy.py)."""

    name = "Not complained about"
    arg_name = "not_complained_about"

    def apply(self, query: Any, value: Any) -> Any:
        hidden = privacy.protected_customer_criterion(current_principal().staff_id)
        return query if hidden is None else query.filter(~hidden)


CUSTOMER_SCOPE = [*SCOPED, ["id", NotComplainedAboutFilter, lambda: None]]


def datetime_formatters(model: type) -> dict[str, Any]:
    """Show every UTC timestamp column of ``model`` in Asia/Shanghai."""
    return {col.key: _local_time for col in model.__table__.columns if isinstance(col.type, UTCDateTime)}


class PortalModelView(ModelView):
    """Base screen: resource permissions, local times, 25 rows a page."""

    method_permission_name = MODEL_PERMS
    page_size = PAGE_SIZE
    formatters_columns: dict[str, Any] = {}

    def __init__(self, **kwargs: Any):
        # FAB marks every NOT NULL column required, and an unticked checkbox then fails
        # "required": booleans get a plain checkbox that may stay unticked.
        cls = type(self)
        self.add_form_extra_fields = {**boolean_fields(cls, cls.add_columns), **(cls.add_form_extra_fields or {})}
        self.edit_form_extra_fields = {**boolean_fields(cls, cls.edit_columns), **(cls.edit_form_extra_fields or {})}
        super().__init__(**kwargs)
        blank = {name: _blank for name in set(self.list_columns or []) | set(self.show_columns or [])}
        self.formatters_columns = {
            **blank,
            **datetime_formatters(self.datamodel.obj),
            **(type(self).formatters_columns or {}),
        }

    # FAB's file download serves UPLOAD_FOLDER; nothing of ours lives there.
    def download(self, filename: str) -> Any:  # type: ignore[override]
        abort(404)

    @expose("/action/<string:name>/<pk>", methods=["POST"])
    def action(self, name: str, pk: Any) -> Any:
        """A show-page action, on the row only if it is in the caller's scope."""
        item = self.datamodel.get(self._deserialize_pk_if_composite(pk), self._base_filters)
        return self._run_action(name, item, single=True)

    @expose("/action_post", methods=["POST"])
    def action_post(self) -> Any:
        """A list action on the selected rows that are in the caller's scope (others are ignored)."""
        items = [
            self.datamodel.get(self._deserialize_pk_if_composite(pk), self._base_filters)
            for pk in request.form.getlist("rowid")
        ]
        return self._run_action(request.form.get("action", ""), [i for i in items if i is not None])

    def _run_action(self, name: str, items: Any, single: bool = False) -> Any:
        action_ = self.actions.get(name)
        if action_ is None or (single and items is None):
            abort(404)
        if not self.appbuilder.sm.has_access(self.get_action_permission_name(name), self.class_permission_name):
            flash(str(FLAMSG_ERR_SEC_ACCESS_DENIED), "danger")
            return redirect(url_for(f"{type(self).__name__}.list"))
        return action_.func(items)


def boolean_fields(view: type, columns: Optional[list[str]]) -> dict[str, Any]:
    """Optional checkboxes for the boolean columns of a form (FAB would make them required)."""
    from sqlalchemy import Boolean
    from wtforms import BooleanField

    model = view.datamodel.obj
    fields = {}
    for name in columns or []:
        column = model.__table__.columns.get(name)
        if column is None or not isinstance(column.type, Boolean):
            continue
        default = column.default.arg if column.default is not None and not callable(column.default.arg) else False
        label = (view.label_columns or {}).get(name, name)
        description = (view.description_columns or {}).get(name, "")
        fields[name] = BooleanField(label, default=default, description=description)
    return fields


class ApiConventions:
    """What every REST resource of the portal shares: documented path variables, 503 on outages."""

    def operation_helper(
        self, path: Any = None, operations: Any = None, methods: Any = None, func: Any = None, **kwargs: Any
    ) -> None:
        super().operation_helper(path=path, operations=operations, methods=methods, func=func, **kwargs)
        # Declare the path's variables that an endpoint's docstring leaves out.
        import re

        names = re.findall(r"\{([^{}]+)\}", path or "")
        kinds = {
            name: kind
            for url, _methods in getattr(func, "_urls", [])
            for kind, name in re.findall(r"<([^:<>]+):([^<>]+)>", url)
        }
        for operation in (operations or {}).values():
            declared = {p.get("name") for p in operation.get("parameters", []) if p.get("in") == "path"}
            for name in names:
                if name not in declared:
                    schema = {"type": "integer"} if kinds.get(name) == "int" else {"type": "string"}
                    operation.setdefault("parameters", []).append(
                        {"in": "path", "name": name, "required": True, "schema": schema}
                    )

    def response_500(self, message: Optional[str] = None) -> Any:
        return outage_or_500(super().response_500, message)  # type: ignore[misc]


class PortalApi(ApiConventions, ModelRestApi):
    """Base REST resource: same permissions as the screens, session or JWT auth."""

    method_permission_name = MODEL_PERMS
    allow_browser_login = True
    page_size = PAGE_SIZE
    max_page_size = 100
    # Fields searched by the ``lookup`` endpoint of relation pickers.
    lookup_columns: tuple[str, ...] = ("name",)
    lookup_order: str = "name"

    def post_headless(self) -> Any:
        refused = self._refuse_malformed_relations(self.add_columns)
        return refused if refused is not None else super().post_headless()

    def put_headless(self, pk: Any) -> Any:
        refused = self._refuse_malformed_relations(self.edit_columns)
        return refused if refused is not None else super().put_headless(pk)

    def _refuse_malformed_relations(self, columns: list[str]) -> Any:
        """A related row is given by its id (or a list of ids): anything else is a 422."""
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return None
        errors = {}
        for name in columns or []:
            if name not in body or body[name] is None or not self.datamodel.is_relation(name):
                continue
            value = body[name]
            values = value if isinstance(value, list) else [value]
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
                errors[name] = [str(_l("Give the id of the related record."))]
        return self.response_422(message=errors) if errors else None

    def _init_model_schemas(self) -> None:
        super()._init_model_schemas()
        # An unknown field in a body is the caller's mistake (422), not a crash of the model.
        from marshmallow import RAISE

        for schema in (self.add_model_schema, self.edit_model_schema):
            if schema is not None:
                schema.unknown = RAISE

    def set_response_key_mappings(self, response: dict[str, Any], func: Any, rison_args: Any, **kwargs: Any) -> None:
        super().set_response_key_mappings(response, func, rison_args, **kwargs)
        # /_info lists the add and edit forms' choices (staff, accounts …): only for those
        # who may add or edit.
        if getattr(func, "__name__", "") == "info":
            sm = self.appbuilder.sm
            if not sm.has_access("can_add", self.class_permission_name):
                response.pop("add_columns", None)
            if not sm.has_access("can_edit", self.class_permission_name):
                response.pop("edit_columns", None)

    def _get_field_info(self, field: Any, filter_rel_field: Any, page: Any = None, page_size: Any = None) -> Any:
        info = super()._get_field_info(field, filter_rel_field, page=page, page_size=page_size)
        # FAB translates an empty description, which gettext answers with the catalogue header.
        if not (self.description_columns or {}).get(field.name):
            info["description"] = ""
        return info

    @api_expose("/lookup", methods=["GET"])
    @protect()
    @safe
    @permission_name("lookup")
    def lookup(self) -> Any:
        """Search-as-you-type for relation pickers: ``?q=text&page=1``, scoped, 20 a page.
        ---
        get:
          parameters:
          - in: query
            name: q
            schema: {type: string}
          - in: query
            name: page
            schema: {type: integer}
          responses:
            200:
              description: Matching rows as select2 results
        """
        model = self.datamodel.obj
        text = (request.args.get("q") or "").strip()[:64]
        try:
            page = min(max(1, int(request.args.get("page", "1"))), 1000)
        except ValueError:
            page = 1
        stmt = select(model).where(scope.criterion(model, current_principal()))
        if text:
            like = f"%{text}%"
            stmt = stmt.where(or_(*[getattr(model, c).ilike(like) for c in self.lookup_columns]))
        stmt = self.lookup_filter(stmt)
        stmt = stmt.order_by(getattr(model, self.lookup_order)).offset((page - 1) * 20).limit(21)
        rows = list(db.session.scalars(stmt))
        return self.response(
            200,
            results=[{"id": r.id, "text": self.lookup_text(r)} for r in rows[:20]],
            pagination={"more": len(rows) > 20},
        )

    def lookup_filter(self, stmt: Any) -> Any:
        return stmt

    def lookup_text(self, row: Any) -> str:
        return str(row)


# --- Home -------------------------------------------------------------------------------


class ValidatingApi:
    """REST add/edit whose ``pre_add``/``pre_update`` checks raise ``ValidationFailed``: 422, nothing saved."""

    def post_headless(self) -> Any:
        try:
            return super().post_headless()  # type: ignore[misc]
        except lifecycle.ValidationFailed as exc:
            db.session.rollback()
            return self.response_422(message=exc.errors)  # type: ignore[attr-defined]

    def put_headless(self, pk: Any) -> Any:
        try:
            return super().put_headless(pk)  # type: ignore[misc]
        except lifecycle.ValidationFailed as exc:
            db.session.rollback()
            return self.response_422(message=exc.errors)  # type: ignore[attr-defined]


class HomeView(IndexView):
    """Landing page: what needs the user's attention, inside the user's scope."""

    index_template = "home.html"

    @expose("/")
    def index(self) -> Any:
        user = current_user()
        if user is None:
            return redirect(url_for(self.appbuilder.sm.auth_view.__class__.__name__ + ".login"))
        principal = current_principal()
        in_scope = scope.criterion(Complaint, principal)
        counts = dict(
            db.session.execute(select(Complaint.status, func.count()).where(in_scope).group_by(Complaint.status)).all()
        )
        status_counts = [
            (labels.status_label(status), counts.get(status, 0), status.value) for status in labels_order()
        ]
        latest = list(
            db.session.scalars(select(Complaint).where(in_scope).order_by(Complaint.received_at.desc()).limit(8))
        )
        return self.render_template(
            self.index_template,
            appbuilder=self.appbuilder,
            principal=principal,
            status_counts=status_counts,
            total=sum(counts.values()),
            latest=latest,
            status_label=labels.status_label,
            format_local=format_local,
        )


def labels_order() -> list[Any]:
    from app.models import ComplaintStatus

    return list(ComplaintStatus)


# --- Reference data ----------------------------------------------------------------------


class DepartmentView(PortalModelView):
    datamodel = SQLAInterface(Department)
    class_permission_name = "Department"
    base_filters = SCOPED
    list_title = _l("Departments")
    show_title = add_title = edit_title = _l("Department")
    list_columns = ["name", "code", "unit", "head", "supervisor", "active"]
    add_columns = edit_columns = ["name", "code", "unit", "head", "supervisor", "description", "active", "sort"]
    show_columns = ["name", "code", "unit", "head", "supervisor", "description", "active"]
    search_columns = ["name", "code", "unit", "active"]
    base_order = ("sort", "asc")
    label_columns = {
        "name": _l("Name"),
        "code": _l("Code"),
        "unit": _l("Unit"),
        "head": _l("Head"),
        "supervisor": _l("Supervising leader (分管领导)"),
        "description": _l("Description"),
        "active": _l("Active"),
        "sort": _l("Sort order"),
    }
    description_columns = {
        "unit": _l("Empty: the department belongs to the company itself (head office)."),
        "supervisor": _l("总经理 or a deputy: rules the department's responsibility disputes."),
    }


class StaffView(PortalModelView):
    datamodel = SQLAInterface(Staff)
    class_permission_name = "Staff"
    base_filters = SCOPED
    list_title = _l("Staff")
    show_title = add_title = edit_title = _l("Staff member")
    list_columns = ["employee_no", "name", "department", "position", "superior", "user", "active"]
    add_columns = edit_columns = [
        "employee_no",
        "name",
        "department",
        "position",
        "superior",
        "phone",
        "email",
        "user",
        "active",
    ]
    show_columns = ["employee_no", "name", "department", "position", "superior", "phone", "email", "user", "active"]
    search_columns = ["employee_no", "name", "department", "position", "superior", "active"]
    base_order = ("employee_no", "asc")
    label_columns = {
        "employee_no": _l("Employee no."),
        "name": _l("Name"),
        "department": _l("Department"),
        "position": _l("Position"),
        "superior": _l("Direct superior"),
        "phone": _l("Phone"),
        "email": _l("E-mail"),
        "user": _l("Login user"),
        "active": _l("Active"),
    }
    description_columns = {
        "superior": _l("Chained liability (连带扣分) follows this line: direct superior, then the superior's superior.")
    }
    add_form_query_rel_fields = edit_form_query_rel_fields = search_form_query_rel_fields = {
        "department": SCOPED,
        "superior": SCOPED,
    }

    def pre_add(self, item: Staff) -> None:
        try:
            _check_superior(item)
        except lifecycle.ValidationFailed as exc:
            raise ValueError(" ".join(m for ms in exc.errors.values() for m in ms)) from exc

    pre_update = pre_add


def _check_superior(item: Staff) -> None:
    """A staff member's direct superior is somebody else, and the line upwards has no loop."""
    from app.discipline import liability

    superior = item.superior
    if superior is None and item.superior_id is not None:
        superior = db.session.get(Staff, item.superior_id)
    if superior is None:
        return
    if superior is item or (item.id is not None and superior.id == item.id):
        raise lifecycle.ValidationFailed({"superior": [str(_l("Nobody is their own direct superior."))]})
    if liability.would_cycle(db.session, item, superior):
        raise lifecycle.ValidationFailed(
            {"superior": [str(_l("%(name)s reports, directly or not, to this staff member.", name=superior.name))]}
        )


class DepartmentStaffView(StaffView):
    """Staff tab on a department page."""

    list_columns = ["employee_no", "name", "position", "user", "active"]


DepartmentView.related_views = [DepartmentStaffView]


def _simple_reference_view(model: type, perm: str, title: Any, columns: list[str], labels_: dict[str, Any]) -> type:
    return type(
        f"{model.__name__}View",
        (PortalModelView,),
        {
            "datamodel": SQLAInterface(model),
            "class_permission_name": perm,
            "base_filters": SCOPED,
            "list_title": title,
            "show_title": title,
            "add_title": title,
            "edit_title": title,
            "list_columns": columns[:4],
            "add_columns": columns,
            "edit_columns": columns,
            "show_columns": columns,
            "search_columns": [c for c in columns if c not in ("sort",)][:4],
            "label_columns": labels_,
        },
    )


_REF_LABELS = {
    "name": _l("Name"),
    "code": _l("Code"),
    "is_regulator": _l("Regulator transfer"),
    "active": _l("Active"),
    "sort": _l("Sort order"),
    "description": _l("Description"),
    "rank": _l("Severity rank"),
    "is_major": _l("Major (urgent chain)"),
}
ChannelView = _simple_reference_view(
    Channel, "Channel", _l("Channels"), ["name", "code", "is_regulator", "active", "sort"], _REF_LABELS
)
CategoryView = _simple_reference_view(
    Category, "Category", _l("Categories"), ["name", "code", "description", "active", "sort"], _REF_LABELS
)
LevelView = _simple_reference_view(
    Level, "Level", _l("Levels"), ["name", "code", "rank", "is_major", "description", "active"], _REF_LABELS
)


def _confirm_phrases_field() -> Any:
    from wtforms import BooleanField

    return BooleanField(
        _l("Save even with forbidden phrases"),
        default=False,
        description=_l("Tick only when the text must be sent as it is; the confirmation is recorded."),
    )


class ReplyScriptView(PortalModelView):
    datamodel = SQLAInterface(ReplyScript)
    class_permission_name = "ReplyScript"
    base_filters = SCOPED
    list_title = _l("Reply scripts")
    show_title = add_title = edit_title = _l("Reply script")
    list_columns = ["scenario", "standard_reply"]
    show_columns = ["scenario", "description", "action", "standard_reply", "tone", "sort"]
    add_columns = edit_columns = [*show_columns, services.CONFIRM_PHRASES]
    search_columns = ["scenario", "description", "standard_reply"]
    base_order = ("sort", "asc")
    label_columns = {
        "scenario": _l("Scenario"),
        "description": _l("Description"),
        "action": _l("What to do"),
        "standard_reply": _l("Standard reply"),
        "tone": _l("Tone"),
        "sort": _l("Sort order"),
        services.CONFIRM_PHRASES: _l("Save even with forbidden phrases"),
    }
    add_form_extra_fields = edit_form_extra_fields = {
        # The standard reply is said to customers: checked as it is typed (static/js/phrases.js).
        "standard_reply": TextAreaField(
            _l("Standard reply"),
            widget=BS3TextAreaFieldWidget(),
            validators=[DataRequired()],
            render_kw={"data-phrase-check": "1", "rows": 4},
        ),
        services.CONFIRM_PHRASES: _confirm_phrases_field(),
    }

    def pre_add(self, item: ReplyScript) -> None:
        try:
            services.check_reply_script(
                db.session, item.standard_reply, current_principal(), request.form.get(services.CONFIRM_PHRASES)
            )
        except services.PhrasesRefused as exc:
            raise ValueError(exc.message) from exc

    pre_update = pre_add


# --- Customers and complaints -----------------------------------------------------------

_COMPLAINT_LABELS = {
    "number": _l("Complaint no."),
    "received_at": _l("Received at"),
    "registered_at": _l("Registered at"),
    "channel": _l("Channel"),
    "customer": _l("Customer"),
    "customer_name": _l("Customer name"),
    "customer_phone": _l("Customer phone"),
    "customer_email": _l("Customer e-mail"),
    "customer_address": _l("Customer address"),
    "subject": _l("Subject"),
    "content": _l("Complaint content"),
    "customer_demand": _l("Customer demand"),
    "category": _l("Category"),
    "level": _l("Level"),
    "department": _l("Complained department"),
    "staff": _l("Complained staff"),
    "first_responder": _l("First responder"),
    "status": _l("Status"),
    "validity": _l("Validity"),
    "validity_reason": _l("Reason of judgement"),
    "reasonable": _l("Demand reasonable"),
    "polite_reply": _l("Polite reply"),
    "findings": _l("Investigation findings"),
    "responsible_staff": _l("Responsible person"),
    "resolution_plan": _l("Resolution plan"),
    "reply_text": _l("Reply to customer"),
    "feedback_note": _l("Feedback"),
    "satisfaction": _l("Satisfaction"),
    "follow_up_note": _l("Follow-up record"),
    "close_note": _l("Final result and evaluation"),
    "judged_at": _l("Judged at"),
    "dispatched_at": _l("Dispatched at"),
    "regulator_body": _l("Transferring body"),
    "regulator_ref": _l("Transfer reference number"),
    "complainant_count": _l("Number of complainants"),
    "signed_at": _l("Signed for at"),
    "escalated_to_head_office_at": _l("Escalated to the head office at"),
    "escalated_to_head_office_by": _l("Escalated to the head office by"),
    "investigation_started_at": _l("Investigation started at"),
    "planned_at": _l("Plan drafted at"),
    "replied_at": _l("Replied at"),
    "fed_back_at": _l("Fed back at"),
    "followed_up_at": _l("Followed up at"),
    "closed_at": _l("Closed at"),
    "archived_at": _l("Archived at"),
    "version": _l("Version"),
    "investigate_due": _l("Investigation due"),
    "reply_due": _l("Reply due"),
    "follow_up_due": _l("Follow-up due"),
    "next_due_at": _l("Next deadline"),
    "deadline_status": _l("Deadline"),
    "overdue": _l("Overdue"),
    "warned": _l("Warned"),
    "supervised": _l("Under supervision"),
    "reopen_count": _l("Times reopened"),
    "case_type": _l("Case type"),
    "original": _l("Original complaint"),
    "customer_informed_at": _l("Customer told the result at"),
    "customer_informed_by": _l("Customer told the result by"),
    "customer_informed_method": _l("How the customer was told the result"),
    "customer_informed_note": _l("What the customer was told"),
}


class CustomerComplaintView(PortalModelView):
    """Complaints tab on a customer page (scoped like every complaint list)."""

    datamodel = SQLAInterface(Complaint)
    class_permission_name = "Complaint"
    base_filters = SCOPED
    list_columns = ["number", "received_at", "subject", "department", "status"]
    label_columns = _COMPLAINT_LABELS
    formatters_columns = {"status": labels.status_label}
    base_permissions = ["can_read"]


class CustomerView(PortalModelView):
    datamodel = SQLAInterface(Customer)
    class_permission_name = "Customer"
    base_filters = CUSTOMER_SCOPE
    # Contact details are masked on every screen (个人信息保护法); a case page reveals them.
    formatters_columns = {
        "phone": lambda v: _blank(privacy.mask_phone(v)),
        "email": lambda v: _blank(privacy.mask_email(v)),
        "address": lambda v: _blank(privacy.mask_address(v)),
    }
    list_title = _l("Customers")
    show_title = add_title = edit_title = _l("Customer")
    list_columns = ["name", "phone", "email", "created_at"]
    add_columns = edit_columns = ["name", "phone", "email", "address", "note"]
    show_columns = ["name", "phone", "email", "address", "note", "created_at"]
    search_columns = ["name", "phone", "email"]
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


ACCESS_ACTIONS = {
    "login_failed": _l("Failed sign-in"),
    "account_locked": _l("Account locked"),
    "account_unlocked": _l("Account unlocked"),
    "reveal": _l("Full contact details shown"),
}


class AccessLogView(PortalModelView):
    """访问日志: sign-in failures, lock-outs, unlocks and reveals of personal data (read only)."""

    datamodel = SQLAInterface(AccessLog)
    class_permission_name = "AccessLog"
    base_filters = SCOPED
    base_permissions = ["can_read"]
    list_title = show_title = _l("Access log")
    list_columns = ["at", "username", "action", "target_type", "target_id", "ip", "detail"]
    show_columns = list_columns
    search_columns = ["at", "username", "action", "target_type", "target_id", "ip"]
    base_order = ("at", "desc")
    formatters_columns = {"action": lambda v: str(ACCESS_ACTIONS.get(v, v))}
    label_columns = {
        "at": _l("Time"),
        "username": _l("User"),
        "action": _l("Action"),
        "target_type": _l("Target type"),
        "target_id": _l("Target id"),
        "ip": _l("IP address"),
        "detail": _l("Detail"),
    }


def _staff_in_department(form: Any, field: Any) -> None:
    department = form.department.data if hasattr(form, "department") else None
    for person in field.data or []:
        if department is not None and person.department_id != department.id:
            from wtforms.validators import ValidationError

            raise ValidationError(str(_l("%(name)s does not work in the complained department.", name=person.name)))


def _intake_fields() -> dict[str, Any]:
    return {
        "received_at": DateTimeField(
            _l("Received at"),
            format=DATETIME_FORMATS,
            widget=DateTimeLocalWidget(),
            validators=[OptionalValidator(), RuleValidator(validation.check_received_at)],
            description=_l("Beijing time; leave empty for now. Set it for letters and calls entered later."),
        ),
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

    datamodel = SQLAInterface(Complaint)
    class_permission_name = "Complaint"
    base_filters = SCOPED
    list_title = _l("Complaints")
    show_title = _l("Complaint case")
    add_title = _l("Register a complaint")
    edit_title = _l("Edit complaint")
    show_template = "complaint/show.html"
    add_template = "complaint/add.html"
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
        "regulator_body",
        "regulator_ref",
    ]
    edit_columns = [
        "received_at",
        "channel",
        "subject",
        "content",
        "customer_demand",
        "category",
        "level",
        "department",
        "staff",
    ]
    show_fieldsets = [
        (
            _l("Intake"),
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
            _l("Handling"),
            {
                "fields": [
                    "validity",
                    "validity_reason",
                    "polite_reply",
                    "findings",
                    "responsible_staff",
                    "resolution_plan",
                    "reply_text",
                    "feedback_note",
                    "satisfaction",
                    "follow_up_note",
                    "customer_informed_at",
                    "customer_informed_by",
                    "customer_informed_method",
                    "customer_informed_note",
                    "close_note",
                ]
            },
        ),
        (
            _l("Stages"),
            {
                "fields": [
                    "judged_at",
                    "dispatched_at",
                    "signed_at",
                    "escalated_to_head_office_at",
                    "escalated_to_head_office_by",
                    "investigation_started_at",
                    "planned_at",
                    "replied_at",
                    "fed_back_at",
                    "followed_up_at",
                    "closed_at",
                    "archived_at",
                ],
                "expanded": False,
            },
        ),
    ]
    label_columns = _COMPLAINT_LABELS
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

    add_form_extra_fields = _intake_fields()
    edit_form_extra_fields = {k: v for k, v in _intake_fields().items() if k in ("received_at", "content", "staff")}

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk: Any) -> Any:
        return self._render_case(pk)

    @expose("/reveal/<int:pk>", methods=["POST"])
    @has_access
    def reveal(self, pk: int) -> Any:
        """显示完整联系方式: the case page with the customer's full details (logged)."""
        complaint = self.datamodel.get(pk, self._base_filters)
        if complaint is None:
            abort(404)
        try:
            revealed = reveal_contact(complaint)
        except privacy.RevealRefused:
            abort(403)
        db.session.commit()
        return self._render_case(pk, revealed=revealed)

    def _render_case(self, pk: Any, revealed: Optional[dict[str, Any]] = None) -> Any:
        widgets = self._show(pk)
        complaint = self.datamodel.get(pk, self._base_filters)
        principal = current_principal()
        viewer = current_viewer()
        return self.render_template(
            self.show_template,
            pk=pk,
            title=self.show_title,
            widgets=widgets,
            related_views=self._related_views,
            complaint=complaint,
            contact=revealed or viewer.fields(complaint.customer),
            revealed=revealed is not None,
            can_reveal=privacy.may_reveal(viewer, complaint, reveal_roles()),
            reveals=privacy.reveals_of(db.session, complaint.id),
            transitions=services.available_transitions(db.session, complaint, principal),
            transition_options=lambda t: transition_options(complaint, t),
            deadlines=sorted(complaint.deadlines, key=lambda d: (d.started_at, d.id)),
            extensions=db.session.scalars(
                select(Extension).where(Extension.complaint_id == complaint.id).order_by(Extension.id)
            ).all(),
            stages=STAGES,
            stage_state=lambda v: labels.label(labels.STAGE_STATE, v),
            extension_status=lambda v: labels.label(labels.EXTENSION_STATUS, v),
            pause_state=lambda v: labels.label(labels.PAUSE_STATE, v),
            follow_up_method=lambda v: labels.label(labels.FOLLOW_UP_METHOD, v),
            unit_label=lambda v: str(UNIT_LABELS.get(v, v)),
            action_label=labels.action_label,
            action_kind=labels.action_kind,
            deadline_badge=deadline_badge,
            events=complaint.events,
            attachments=complaint.attachments,
            can_attach=self.appbuilder.sm.has_access("can_add", "Attachment") and not complaint.is_archived,
            **self._corrective_context(complaint, principal),
            can_edit=self.appbuilder.sm.has_access("can_edit", "Complaint") and not complaint.is_archived,
            status_label=labels.status_label,
            format_local=format_local,
            max_mb=current_app.config["ATTACHMENT_MAX_BYTES"] / 1048576,
            allowed_types=", ".join(sorted(current_app.config["ATTACHMENT_ALLOWED_TYPES"])),
        )

    def _corrective_context(self, complaint: Complaint, principal: Any) -> dict[str, Any]:
        from app.complaints import corrective

        actions = db.session.scalars(
            select(CorrectiveAction).where(CorrectiveAction.complaint_id == complaint.id).order_by(CorrectiveAction.id)
        ).all()
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
        services.after_case_edit(db.session, item, user.id if user else None)

    def pre_delete(self, item: Complaint) -> None:
        raise ValueError(str(_l("Complaints are never deleted; close and archive them instead.")))

    @expose("/attach/<int:pk>", methods=["POST"])
    @has_access
    def attach(self, pk: int) -> Any:
        complaint = self.datamodel.get(pk, self._base_filters)
        if complaint is None:
            abort(404)
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
        complaint = self.datamodel.get(pk, self._base_filters)
        if complaint is None:
            abort(404)
        values = {k: v for k, v in request.form.items() if k not in ("csrf_token", "action", "version")}
        try:
            event = services.take_transition(
                db.session,
                complaint,
                request.form.get("action", ""),
                current_principal(),
                values,
                expected_version=request.form.get("version"),
            )
            db.session.commit()
            flash(_("%(action)s: done.", action=labels.action_label(event.action)), "success")
        except lifecycle.TransitionError as exc:
            db.session.rollback()
            flash(exc.message, "danger")
            for messages in exc.errors.values():
                for message in messages:
                    flash(message, "danger")
        except lifecycle.ValidationFailed as exc:
            db.session.rollback()
            for messages in exc.errors.values():
                for message in messages:
                    flash(message, "danger")
        return redirect(url_for(f"{type(self).__name__}.show", pk=pk))

    @expose("/corrective/<int:pk>", methods=["POST"])
    @has_access
    def corrective(self, pk: int) -> Any:
        """Add, complete or verify a corrective action from the case page."""
        from app.complaints import corrective

        complaint = self.datamodel.get(pk, self._base_filters)
        if complaint is None:
            abort(404)
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


def corrective_json(a: CorrectiveAction) -> dict[str, Any]:
    from app.complaints import corrective

    return {
        "id": a.id,
        "complaint_id": a.complaint_id,
        "kind": a.kind,
        "kind_label": str(corrective.KIND_LABELS.get(a.kind, a.kind)),
        "description": a.description,
        "owner": {"id": a.owner_id, "name": a.owner.name if a.owner else None},
        "due_at": a.due_at.isoformat() if a.due_at else None,
        "state": a.state,
        "state_label": str(corrective.STATE_LABELS.get(a.state, a.state)),
        "done_at": a.done_at.isoformat() if a.done_at else None,
        "done_note": a.done_note,
        "verified_at": a.verified_at.isoformat() if a.verified_at else None,
        "verify_note": a.verify_note,
        "overdue": a.overdue_at is not None,
        "escalated": a.escalated_at is not None,
    }


def reveal_roles() -> list[str]:
    return list(settings.get(db.session, "privacy.reveal_roles") or [])


def reveal_contact(complaint: Complaint) -> dict[str, Any]:
    """The case's customer in full, for the caller, written to the access log (raises RevealRefused)."""
    user = current_user()
    return privacy.reveal(
        db.session,
        current_viewer(),
        complaint,
        reveal_roles(),
        username=user.username if user else None,
        ip=request.remote_addr,
    )


def mask_complaint_json(row: Any, complaint_id: Any, viewer: privacy.Viewer, customer_ids: dict[int, int]) -> None:
    """Mask the customer of one serialised complaint (hidden from a complained staff member)."""
    if isinstance(row, dict) and isinstance(row.get("customer"), dict):
        privacy.mask_customer_json(row["customer"], viewer.mode(customer_ids.get(complaint_id)))


def _customer_ids(complaint_ids: list[Any]) -> dict[int, int]:
    ids = [i for i in complaint_ids if isinstance(i, int)]
    if not ids:
        return {}
    return dict(db.session.execute(select(Complaint.id, Complaint.customer_id).where(Complaint.id.in_(ids))).all())


def as_message_lists(errors: Any) -> Any:
    """Field errors as ``{field: [str, …]}`` whatever marshmallow made of lazy messages."""
    if isinstance(errors, dict):
        return {key: as_message_lists(value) for key, value in errors.items()}
    if isinstance(errors, (list, tuple)):
        flat: list[Any] = []
        for value in errors:
            converted = as_message_lists(value)
            flat.extend(converted if isinstance(converted, list) else [converted])
        return flat
    if isinstance(errors, str) or hasattr(errors, "__html__") or errors.__class__.__name__ == "LazyString":
        return [str(errors)]
    return errors


def deadline_badge(due: Any, state: str) -> Markup:
    """A due time coloured by urgency: late (red), warned (amber), due today (blue)."""
    if due is None:
        return Markup('<span class="deadline-late">%s</span>') % _("Overdue") if state == "late" else Markup("")
    titles = {"late": _("Overdue"), "warned": _("Warned: due soon"), "today": _("Due today")}
    return Markup('<span class="deadline-%s" title="%s">%s</span>') % (
        state or "ok",
        titles.get(state, ""),
        format_local(due),
    )


def transition_options(complaint: Complaint, t: workflow.Transition) -> dict[str, list[tuple[Any, str]]]:
    """Choices for the select fields of an action form."""
    options: dict[str, list[tuple[Any, str]]] = {}
    for f in t.fields:
        if f.kind == "choice":
            mapping = {
                **labels.SATISFACTION,
                **labels.FOLLOW_UP_METHOD,
                **UNIT_LABELS,
                "approve": _l("Approve"),
                "refuse": _l("Refuse"),
                "uphold": _l("Uphold: the department keeps the case"),
                "reassign": _l("Reassign to another department"),
            }
            options[f.name] = [(c, str(mapping.get(c, c))) for c in f.choices]
        elif f.kind == "stage":
            running = sla.extendable_stages(complaint, utcnow())
            options[f.name] = [(code, str(STAGES[code].label)) for code in running]
        elif f.kind == "staff":
            options[f.name] = [
                (p.id, p.name) for p in services.staff_of_department(db.session, complaint.department_id)
            ]
        elif f.kind == "level":
            options[f.name] = [
                (lv.id, lv.name)
                for lv in db.session.scalars(select(Level).where(Level.active.is_(True)).order_by(Level.rank, Level.id))
            ]
        elif f.kind == "department":
            options[f.name] = [
                (d.id, d.name)
                for d in db.session.scalars(
                    select(Department).where(Department.active.is_(True)).order_by(Department.sort)
                )
            ]
    return options


def event_json(e: ComplaintEvent, regulator: bool = False) -> dict[str, Any]:
    label = labels.action_label(e.action)
    if regulator and e.action in regulator.REGULATOR_STEP_ZH:
        # A regulator case's steps carry the ETC policy's names (派单, 预警, 催办, 回复, 审核 …).
        label = f"{regulator.REGULATOR_STEP_ZH[e.action]}（{label}）"
    return {
        "id": e.id,
        "at": e.at.isoformat(),
        "action": e.action,
        "kind": labels.action_kind(e.action),
        "label": label,
        "actor": {"id": e.actor.id, "username": e.actor.username, "name": e.actor.first_name} if e.actor else None,
        "from_status": e.from_status,
        "to_status": e.to_status,
        "note": e.note,
        "data": e.data,
    }


def pause_json(p: Any) -> dict[str, Any]:
    return {
        "id": p.id,
        "state": p.state,
        "state_label": labels.label(labels.PAUSE_STATE, p.state),
        "started_at": p.started_at.isoformat(),
        "ended_at": p.ended_at.isoformat() if p.ended_at else None,
        "reason": p.reason,
        "expected_resume": p.expected_resume.isoformat() if p.expected_resume else None,
        "customer_informed": p.customer_informed,
        "requested_by": p.requested_by.username if p.requested_by else None,
        "approved_by": p.approved_by.username if p.approved_by else None,
        "working_minutes": p.working_minutes,
        "natural_minutes": p.natural_minutes,
    }


def transition_json(t: workflow.Transition, complaint: Complaint) -> dict[str, Any]:
    options = transition_options(complaint, t)
    return {
        "action": t.action,
        "label": str(t.label),
        "kind": t.kind,
        "target": t.target,
        "fields": [
            {
                "name": f.name,
                "label": str(f.label),
                "required": f.required,
                "kind": f.kind,
                "choices": [c for c, _label in options.get(f.name, [])] or list(f.choices),
            }
            for f in t.fields
        ],
    }


def send_attachment(attachment_id: int) -> Any:
    """Send an attachment's stored bytes if the caller's scope covers it, else 404."""
    principal = current_principal()
    row = db.session.scalars(
        select(Attachment).where(Attachment.id == attachment_id, scope.criterion(Attachment, principal))
    ).first()
    if row is None:
        abort(404)
    import io

    return send_file(
        io.BytesIO(row.data),
        mimetype=row.content_type,
        as_attachment=True,
        download_name=row.filename,
        max_age=0,
    )


# --- REST resources ------------------------------------------------------------------------


class UnsignedFilter(BaseFilter):
    """Dispatched cases the receiving department has not signed for yet (签收)."""

    name = "Awaiting sign-in"
    arg_name = "unsigned"

    def apply(self, query: Any, value: Any) -> Any:
        from app.models import ComplaintStatus

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


class DepartmentApi(PortalApi):
    resource_name = "department"
    datamodel = SQLAInterface(Department)
    class_permission_name = "Department"
    base_filters = SCOPED
    list_columns = [
        "id",
        "name",
        "code",
        "unit.id",
        "unit.name",
        "head.id",
        "head.name",
        "supervisor.id",
        "supervisor.username",
        "active",
        "sort",
    ]
    show_columns = [
        "id",
        "name",
        "code",
        "unit.id",
        "unit.name",
        "head.id",
        "head.name",
        "supervisor.id",
        "supervisor.username",
        "description",
        "active",
        "sort",
    ]
    add_columns = edit_columns = ["name", "code", "unit", "head", "supervisor", "description", "active", "sort"]
    add_query_rel_fields = edit_query_rel_fields = {"head": SCOPED, "unit": SCOPED}
    search_columns = ["name", "code", "unit", "active"]
    order_columns = ["name", "code", "sort"]


class UnitApi(ValidatingApi, PortalApi):
    """``/api/v1/unit/``: the units of the organisation (company → branch / 管理处 / 网点)."""

    resource_name = "unit"
    datamodel = SQLAInterface(Unit)
    class_permission_name = "Unit"
    base_filters = SCOPED
    list_columns = show_columns = [
        "id",
        "name",
        "code",
        "kind",
        "parent.id",
        "parent.name",
        "head.id",
        "head.name",
        "active",
        "sort",
    ]
    add_columns = edit_columns = ["name", "code", "kind", "parent", "head", "active", "sort"]
    add_query_rel_fields = edit_query_rel_fields = {"head": SCOPED, "parent": SCOPED}
    search_columns = ["name", "code", "kind", "parent", "active"]
    order_columns = ["name", "code", "sort"]
    lookup_order = "sort"

    def pre_add(self, item: Unit) -> None:
        from app.access import units

        units.check_unit(db.session, item)

    pre_update = pre_add

    def delete_headless(self, pk: Any) -> Any:
        from app.access import units

        item = self.datamodel.get(pk, self._base_filters)
        refusal = units.unit_in_use(db.session, item) if item is not None else None
        if refusal:
            return self.response(409, message=refusal)
        return super().delete_headless(pk)


class StaffApi(PortalApi):
    resource_name = "staff"
    datamodel = SQLAInterface(Staff)
    class_permission_name = "Staff"
    base_filters = SCOPED
    list_columns = ["id", "employee_no", "name", "department.id", "department.name", "position", "active"]
    show_columns = [
        "id",
        "employee_no",
        "name",
        "department.id",
        "department.name",
        "position",
        "phone",
        "email",
        "user.id",
        "user.username",
        "superior.id",
        "superior.name",
        "active",
    ]
    add_columns = edit_columns = [
        "employee_no",
        "name",
        "department",
        "position",
        "superior",
        "phone",
        "email",
        "user",
        "active",
    ]
    search_columns = ["employee_no", "name", "department", "position", "superior", "active"]
    order_columns = ["employee_no", "name"]
    add_query_rel_fields = edit_query_rel_fields = {"department": SCOPED, "superior": SCOPED}
    lookup_columns = ("name", "employee_no")
    method_permission_name = {**MODEL_PERMS, "points": "read"}

    def pre_add(self, item: Staff) -> None:
        _check_superior(item)

    pre_update = pre_add

    @api_expose("/<int:pk>/points", methods=["GET"])
    @protect()
    @safe
    @permission_name("points")
    def points(self, pk: int) -> Any:
        """The person's deductions of ``?period=2026`` or ``2026-11`` with their sources
        (penalty, rule, link role, points, fine, date); heads: own departments' staff only.
        ---
        get:
          parameters:
          - in: query
            name: period
            schema: {type: string}
          responses:
            200:
              description: Deductions and the total
            400:
              description: Bad period
            403:
              description: The caller's role or scope does not allow it
        """
        from app.discipline import liability

        principal = current_principal()
        if not (principal.is_company_wide or principal.is_department_head):
            return self.response(403, message=_("Your role may not see staff members' points."))
        staff = db.session.scalar(select(Staff).where(Staff.id == pk, scope.criterion(Staff, principal)))
        if staff is None:
            if db.session.get(Staff, pk) is not None:
                return self.response(403, message=_("This staff member is outside your scope."))
            return self.response_404()
        try:
            period = liability.parse_period(request.args.get("period") or format_local(utcnow(), "%Y"))
        except ValueError as exc:
            return self.response_400(message=str(exc))
        rows = liability.deductions(db.session, staff.id, period)
        limit, kind = liability.threshold(db.session)
        return self.response(
            200,
            staff_id=staff.id,
            name=staff.name,
            employee_no=staff.employee_no,
            department=staff.department.name,
            period=period.label,
            total_points=sum(r["points"] for r in rows),
            total_fines=sum(r["fine"] for r in rows),
            threshold={"points": limit, "period": kind},
            count=len(rows),
            result=rows,
        )

    def lookup_filter(self, stmt: Any) -> Any:
        stmt = stmt.where(Staff.active.is_(True))
        department = request.args.get("department", "")
        if department.isdigit():
            stmt = stmt.where(Staff.department_id == int(department))
        return stmt

    def lookup_text(self, row: Staff) -> str:
        return f"{row.name}（{row.employee_no}）"


def _reference_api(model: type, resource: str, perm: str, columns: list[str]) -> type:
    return type(
        f"{model.__name__}Api",
        (PortalApi,),
        {
            "resource_name": resource,
            "datamodel": SQLAInterface(model),
            "class_permission_name": perm,
            "base_filters": SCOPED,
            "list_columns": ["id", *columns],
            "show_columns": ["id", *columns],
            "add_columns": columns,
            "edit_columns": columns,
            "search_columns": [c for c in columns if c != "sort"],
            "order_columns": [c for c in columns if c in ("name", "code", "sort", "rank", "scenario")],
        },
    )


ChannelApi = _reference_api(Channel, "channel", "Channel", ["name", "code", "is_regulator", "active", "sort"])
CategoryApi = _reference_api(Category, "category", "Category", ["name", "code", "description", "active", "sort"])
LevelApi = _reference_api(Level, "level", "Level", ["name", "code", "rank", "is_major", "description", "active"])


class ReplyScriptApi(
    _reference_api(
        ReplyScript,
        "replyscript",
        "ReplyScript",
        ["scenario", "description", "action", "standard_reply", "tone", "sort"],
    )
):
    """``/api/v1/replyscript/``: a standard reply with forbidden phrases is refused (409) unless
    ``?confirm_phrases=true`` (JSON bodies carry model fields only)."""

    lookup_columns = ("scenario", "standard_reply")
    lookup_order = "sort"

    def pre_add(self, item: ReplyScript) -> None:
        services.check_reply_script(
            db.session, item.standard_reply, current_principal(), request.args.get(services.CONFIRM_PHRASES)
        )

    pre_update = pre_add

    def post_headless(self) -> Any:
        try:
            return super().post_headless()
        except services.PhrasesRefused as exc:
            db.session.rollback()
            return phrases_refused_response(self, exc)

    def put_headless(self, pk: Any) -> Any:
        try:
            return super().put_headless(pk)
        except services.PhrasesRefused as exc:
            db.session.rollback()
            return phrases_refused_response(self, exc)


def transition_error_response(api: Any, exc: Exception) -> Any:
    """A refused lifecycle step as JSON: 409 state/version/phrases, 403 role/scope, 422 fields."""
    if isinstance(exc, services.PhrasesRefused):
        return phrases_refused_response(api, exc)
    if isinstance(exc, lifecycle.ValidationFailed):
        return api.response(422, message=exc.errors)
    assert isinstance(exc, lifecycle.TransitionError)
    status = {"state": 409, "version": 409, "role": 403, "scope": 403}.get(exc.kind, 422)
    if exc.kind == "fields" and exc.errors:
        return api.response(422, message=exc.errors)
    return api.response(status, message=exc.message)


def phrases_refused_response(api: Any, exc: Any) -> Any:
    """409: the text holds forbidden phrases; the message lists them, ``hits`` gives them per field."""
    return api.response(
        409,
        message=exc.message,
        hits={name: [h.as_json() for h in found] for name, found in exc.hits.items()},
        confirm_field=services.CONFIRM_PHRASES,
    )


class CustomerApi(PortalApi):
    resource_name = "customer"
    datamodel = SQLAInterface(Customer)
    class_permission_name = "Customer"
    base_filters = CUSTOMER_SCOPE
    list_columns = ["id", "name", "phone", "email", "created_at"]
    show_columns = ["id", "name", "phone", "email", "address", "note", "created_at"]
    add_columns = edit_columns = ["name", "phone", "email", "address", "note"]
    search_columns = ["name", "phone", "email"]
    order_columns = ["name", "created_at"]
    lookup_columns = ("name", "phone")
    lookup_order = "id"

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
        for row in data.get("result") or []:
            privacy.mask_customer_json(row)


def _check_customer(item: Customer) -> None:
    errors = lifecycle.Errors()
    errors.add("name", validation.check_required_text(item.name, str(_l("Please enter the customer's name.")), 64))
    errors.add("phone", validation.check_phone(item.phone, required=False))
    errors.add("email", validation.check_email(item.email))
    errors.raise_if_any()
    item.phone = validation.normalize_phone(item.phone) or None


COMPLAINT_LIST_COLUMNS = [
    "id",
    "number",
    "received_at",
    "registered_at",
    "status",
    "subject",
    "channel.id",
    "channel.name",
    "customer.id",
    "customer.name",
    "category.id",
    "category.name",
    "level.id",
    "level.name",
    "department.id",
    "department.name",
    "first_responder.id",
    "first_responder.username",
    "case_type",
    "original.id",
    "original.number",
    "customer_informed_at",
    "validity",
    "satisfaction",
    "closed_at",
    "investigate_due",
    "reply_due",
    "follow_up_due",
    "next_due_at",
    "overdue",
    "warned",
    "supervised",
    "escalated_to_head_office_at",
    "version",
]

COMPLAINT_SHOW_COLUMNS = COMPLAINT_LIST_COLUMNS + [
    "complainant_count",
    "regulator_body",
    "regulator_ref",
    "customer.phone",
    "customer_demand",
    "content",
    "staff.id",
    "staff.name",
    "validity_reason",
    "reasonable",
    "polite_reply",
    "findings",
    "responsible_staff.id",
    "responsible_staff.name",
    "resolution_plan",
    "reply_text",
    "feedback_note",
    "follow_up_note",
    "customer_informed_method",
    "customer_informed_note",
    "close_note",
    "judged_at",
    "dispatched_at",
    "signed_at",
    "escalated_to_head_office_by.id",
    "escalated_to_head_office_by.username",
    "investigation_started_at",
    "planned_at",
    "replied_at",
    "fed_back_at",
    "followed_up_at",
    "archived_at",
    "updated_at",
    "paused_since",
]


class ComplaintApi(PortalApi):
    """``/api/v1/complaint/``: the register, the intake and a case's files."""

    resource_name = "complaint"
    datamodel = SQLAInterface(Complaint)
    class_permission_name = "Complaint"
    base_filters = SCOPED
    list_columns = COMPLAINT_LIST_COLUMNS
    show_columns = COMPLAINT_SHOW_COLUMNS
    add_columns = [
        "received_at",
        "channel",
        "customer",
        "subject",
        "content",
        "customer_demand",
        "category",
        "level",
        "department",
        "staff",
    ]
    edit_columns = [
        "received_at",
        "channel",
        "subject",
        "content",
        "customer_demand",
        "category",
        "level",
        "department",
        "staff",
    ]
    search_columns = [
        "number",
        "status",
        "received_at",
        "department",
        "category",
        "level",
        "channel",
        "customer",
        "subject",
        "first_responder",
        "case_type",
        "original",
        "validity",
        "closed_at",
        "overdue",
        "warned",
        "supervised",
        "escalated_to_head_office_at",
        "investigate_due",
        "reply_due",
        "follow_up_due",
        "next_due_at",
    ]
    order_columns = [
        "number",
        "received_at",
        "registered_at",
        "status",
        "closed_at",
        "investigate_due",
        "reply_due",
        "follow_up_due",
        "next_due_at",
    ]
    base_order = ("received_at", "desc")
    add_query_rel_fields = edit_query_rel_fields = {
        "department": [["active", FilterEqual, True]],
        "staff": SCOPED,
        "customer": CUSTOMER_SCOPE,
    }
    lookup_columns = ("number", "subject")
    lookup_order = "id"
    openapi_spec_methods = {"post": {"post": {"description": "Register a complaint"}}}

    def lookup_text(self, row: Complaint) -> str:
        return f"{row.number} {row.subject or ''}".strip()

    def post_headless(self) -> Any:
        if current_principal().staff_id is None:
            return self.response(403, message=_("Your account is not linked to a staff record."))
        if not request.is_json:
            return self.response_400(message=_("The request body must be JSON."))
        try:
            data = ComplaintIntakeSchema().load(request.json or {})
        except SchemaError as err:
            return self.response_422(message=as_message_lists(err.messages))
        user = current_user()
        try:
            complaint = intake.register_complaint(db.session, user.id if user else None, data)
            db.session.flush()
            # Serialised before the commit, while every row is still in the session.
            result = self.show_model_schema.dump(complaint)
            mask_complaint_json(result, complaint.id, current_viewer(), {complaint.id: complaint.customer_id})
            db.session.commit()
        except lifecycle.ValidationFailed as exc:
            db.session.rollback()
            return self.response_422(message=as_message_lists(exc.errors))
        return self.response(201, id=complaint.id, result=result)

    def put_headless(self, pk: Any) -> Any:
        item = self.datamodel.get(pk, self._base_filters)
        if item is None:
            return self.response_404()
        if item.is_archived:
            return self.response(409, message=_("The case is archived and can no longer be changed."))
        try:
            return super().put_headless(pk)
        except StaleDataError:
            db.session.rollback()
            return self.response(409, message=_("Someone else changed this case meanwhile; reload and try again."))

    def pre_update(self, item: Complaint) -> None:
        user = current_user()
        services.after_case_edit(db.session, item, user.id if user else None)

    def pre_delete(self, item: Complaint) -> None:
        abort(405)

    # The customer's contact details are masked in every answer, hidden from complained staff.
    def pre_get(self, data: dict[str, Any]) -> None:
        pk = int(data.get("id"))  # FAB found the row by this key
        mask_complaint_json(data.get("result"), pk, current_viewer(), _customer_ids([pk]))

    def pre_get_list(self, data: dict[str, Any]) -> None:
        ids = list(data.get("ids") or [])
        customer_ids, viewer = _customer_ids(ids), current_viewer()
        viewer.prefetch(customer_ids.values())  # one query for the page, not one per row
        for pk, row in zip(ids, data.get("result") or [], strict=False):
            mask_complaint_json(row, pk, viewer, customer_ids)

    @api_expose("/<int:pk>/reveal", methods=["POST"])
    @protect()
    @safe
    @permission_name("reveal")
    def reveal(self, pk: int) -> Any:
        """The customer's full name and contact details (显示完整联系方式); every call is logged.
        ---
        post:
          responses:
            200:
              description: Name, phone, e-mail and address of the case's customer
            403:
              description: The caller's role may not reveal, or the complaint is about the caller
            404:
              description: No such complaint in the caller's scope
        """
        complaint = self.datamodel.get(pk, self._base_filters)
        if complaint is None:
            return self.response_404()
        try:
            revealed = reveal_contact(complaint)
        except privacy.RevealRefused:
            return self.response(403, message=_("You may not see this customer's full contact details."))
        db.session.commit()
        return self.response(200, id=complaint.id, result=revealed)

    @api_expose("/lookup_caller", methods=["GET"])
    @protect()
    @safe
    @permission_name("lookup_caller")
    def lookup_caller(self) -> Any:
        """Earlier complaints of a caller by phone (intake look-up; summary fields only).
        ---
        get:
          parameters:
          - in: query
            name: phone
            schema: {type: string}
          responses:
            200:
              description: The caller's earlier complaints, newest first
        """
        principal = current_principal()
        if not (principal.is_customer_service or principal.is_company_wide):
            return self.response_403()
        phone = request.args.get("phone", "")
        message = validation.check_phone(phone)
        if message:
            return self.response_400(message={"phone": [message]})
        rows = intake.earlier_complaints(db.session, phone)
        return self.response(
            200,
            phone=validation.normalize_phone(phone),
            count=len(rows),
            result=[
                {
                    "id": c.id,
                    "number": c.number,
                    "received_at": c.received_at.isoformat(),
                    "status": c.status.value,
                    "status_label": labels.status_label(c.status),
                    "subject": c.subject,
                    "department": c.department.name,
                    "category": c.category.name,
                }
                for c in rows
            ],
        )

    @api_expose("/<int:pk>/attachments", methods=["GET", "POST"])
    @protect()
    @safe
    @permission_name("attachments")
    def attachments(self, pk: int) -> Any:
        """List a case's evidence files, or upload one (multipart field ``file``).
        ---
        get:
          responses:
            200:
              description: The case's attachments
        post:
          requestBody:
            content:
              multipart/form-data:
                schema:
                  type: object
                  properties:
                    file: {type: string, format: binary}
                    description: {type: string}
          responses:
            201:
              description: Attached
        """
        complaint = self.datamodel.get(pk, self._base_filters)
        if complaint is None:
            return self.response_404()
        if request.method == "POST":
            if not self.appbuilder.sm.has_access("can_add", "Attachment"):
                return self.response_403()
            upload = request.files.get("file")
            if upload is None:
                return self.response_400(message={"file": [_("Please choose a file to upload.")]})
            user = current_user()
            try:
                row = attachments.add_attachment(
                    complaint,
                    upload.filename or "",
                    upload.read(),
                    upload.mimetype,
                    user.id if user else None,
                    current_app.config["ATTACHMENT_ALLOWED_TYPES"],
                    current_app.config["ATTACHMENT_MAX_BYTES"],
                    request.form.get("description"),
                )
                db.session.commit()
            except lifecycle.ValidationFailed as exc:
                db.session.rollback()
                status = 409 if complaint.is_archived else 422
                return self.response(status, message=exc.errors)
            return self.response(201, id=row.id, result=_attachment_json(row))
        return self.response(200, result=[_attachment_json(a) for a in complaint.attachments])

    def _case(self, pk: int) -> tuple[Optional[Complaint], Any]:
        """The case if in scope; else (None, 403 when it exists elsewhere, 404 when not at all)."""
        complaint = self.datamodel.get(pk, self._base_filters)
        if complaint is not None:
            return complaint, None
        if db.session.get(Complaint, pk) is not None:
            return None, self.response(403, message=_("This complaint is outside your scope."))
        return None, self.response_404()

    @api_expose("/<int:pk>/corrective", methods=["GET", "POST"])
    @protect()
    @safe
    @permission_name("corrective")
    def corrective(self, pk: int) -> Any:
        """Corrective actions of the case (GET), or add one (POST ``{kind, description, owner, due_at}``).
        ---
        get:
          responses:
            200:
              description: The case's corrective actions
        post:
          requestBody:
            required: true
            content:
              application/json:
                schema:
                  type: object
                  properties:
                    kind: {type: string, enum: [temporary, permanent, general]}
                    description: {type: string}
                    owner: {type: integer}
                    due_at: {type: string}
          responses:
            201:
              description: Added
            403:
              description: The caller's role or scope does not allow it
            409:
              description: The case is not valid or not being handled
            422:
              description: Missing or wrong fields
        """
        from app.complaints import corrective

        complaint, error = self._case(pk)
        if error is not None:
            return error
        if request.method == "GET":
            rows = db.session.scalars(
                select(CorrectiveAction)
                .where(CorrectiveAction.complaint_id == complaint.id)
                .order_by(CorrectiveAction.id)
            ).all()
            return self.response(200, result=[corrective_json(a) for a in rows])
        if not request.is_json or not isinstance(request.json, dict):
            return self.response_400(message=_("The request body must be JSON."))
        try:
            action = corrective.add(db.session, complaint, current_principal(), dict(request.json))
            db.session.commit()
        except corrective.CorrectiveError as exc:
            db.session.rollback()
            return transition_error_response(self, exc)
        return self.response(201, result=corrective_json(action))

    @api_expose("/<int:pk>/corrective/<int:action_id>/<string:step>", methods=["POST"])
    @protect()
    @safe
    @permission_name("corrective_step")
    def corrective_step(self, pk: int, action_id: int, step: str) -> Any:
        """Mark a corrective action done (``complete``, ``{note}``) or verify it at follow-up
        (``verify``, ``{passed: true|false, note}``).
        ---
        post:
          responses:
            200:
              description: Done
            403:
              description: The caller's role or scope does not allow it
            404:
              description: No such action on this case
            409:
              description: Wrong state
            422:
              description: Missing fields
        """
        from app.complaints import corrective

        complaint, error = self._case(pk)
        if error is not None:
            return error
        action = db.session.get(CorrectiveAction, action_id)
        if action is None or action.complaint_id != complaint.id or step not in ("complete", "verify"):
            return self.response_404()
        body = request.json if request.is_json and isinstance(request.json, dict) else {}
        note = body.get("note") if isinstance(body.get("note"), str) else ""
        try:
            if step == "complete":
                corrective.complete(db.session, action, current_principal(), note)
            else:
                passed = body.get("passed", True)
                if not isinstance(passed, bool):
                    return self.response(422, message={"passed": [_("Give true or false.")]})
                corrective.verify(db.session, action, current_principal(), passed, note)
            db.session.commit()
        except corrective.CorrectiveError as exc:
            db.session.rollback()
            return transition_error_response(self, exc)
        return self.response(200, result=corrective_json(action))

    @api_expose("/<int:pk>/transitions", methods=["GET"])
    @protect()
    @safe
    @permission_name("transitions")
    def transitions(self, pk: int) -> Any:
        """The actions the caller may take on the case now, with their fields.
        ---
        get:
          responses:
            200:
              description: Available actions
            403:
              description: Outside the caller's scope
            404:
              description: No such complaint
        """
        complaint, error = self._case(pk)
        if error is not None:
            return error
        available = services.available_transitions(db.session, complaint, current_principal())
        return self.response(
            200,
            id=complaint.id,
            status=complaint.status.value,
            version=complaint.version,
            result=[transition_json(t, complaint) for t in available],
        )

    @api_expose("/<int:pk>/transition", methods=["POST"])
    @protect()
    @safe
    @permission_name("transition")
    def transition(self, pk: int) -> Any:
        """Take one action: ``{"action": ..., "note": ..., "version": n, <fields>}``.
        ---
        post:
          requestBody:
            required: true
            content:
              application/json:
                schema:
                  type: object
                  properties:
                    action: {type: string}
                    note: {type: string}
                    version: {type: integer}
          responses:
            200:
              description: The step was taken
            403:
              description: The caller's role or scope does not allow it
            409:
              description: Wrong state, stale version, or forbidden phrases not confirmed (``confirm_phrases``)
            422:
              description: Missing or wrong fields
        """
        complaint, error = self._case(pk)
        if error is not None:
            return error
        if not request.is_json or not isinstance(request.json, dict):
            return self.response_400(message=_("The request body must be JSON."))
        body = dict(request.json)
        action = str(body.pop("action", "") or "")
        version = body.pop("version", None)
        try:
            event = services.take_transition(
                db.session, complaint, action, current_principal(), body, expected_version=version
            )
            db.session.commit()
        except (lifecycle.TransitionError, lifecycle.ValidationFailed) as exc:
            db.session.rollback()
            return transition_error_response(self, exc)
        db.session.refresh(complaint)
        return self.response(
            200,
            id=complaint.id,
            event=event_json(event),
            result=self.show_model_schema.dump(complaint),
        )

    @api_expose("/<int:pk>/recomplain", methods=["POST"])
    @protect()
    @safe
    @permission_name("recomplain")
    def recomplain(self, pk: int) -> Any:
        """The customer does not accept the reply and complains again: open an escalated complaint.
        ---
        post:
          requestBody:
            required: true
            content:
              application/json:
                schema:
                  type: object
                  properties:
                    content: {type: string}
                    note: {type: string}
                    department: {type: integer}
          responses:
            201:
              description: The escalated complaint (升级投诉), one level higher, linked to the original
            403:
              description: The caller's role or scope does not allow it
            409:
              description: The original case was not replied yet, or is archived
            422:
              description: Missing or wrong fields
        """
        complaint, error = self._case(pk)
        if error is not None:
            return error
        if not request.is_json or not isinstance(request.json, dict):
            return self.response_400(message=_("The request body must be JSON."))
        try:
            services.take_transition(db.session, complaint, "recomplain", current_principal(), dict(request.json))
            db.session.flush()
            # The case history is append-only: the new case points at the original, not back.
            escalated = db.session.scalars(
                select(Complaint).where(Complaint.original_id == complaint.id).order_by(Complaint.id.desc()).limit(1)
            ).one()
            result = self.show_model_schema.dump(escalated)
            db.session.commit()
        except (lifecycle.TransitionError, lifecycle.ValidationFailed) as exc:
            db.session.rollback()
            return transition_error_response(self, exc)
        return self.response(201, id=escalated.id, original_id=complaint.id, result=result)

    @api_expose("/<int:pk>/timeline", methods=["GET"])
    @protect()
    @safe
    @permission_name("timeline")
    def timeline(self, pk: int) -> Any:
        """The case history, oldest first: transitions and SLA events.
        ---
        get:
          responses:
            200:
              description: Timeline entries
        """
        complaint, error = self._case(pk)
        if error is not None:
            return error
        events = db.session.scalars(
            select(ComplaintEvent)
            .where(ComplaintEvent.complaint_id == complaint.id)
            .order_by(ComplaintEvent.at, ComplaintEvent.id)
        ).all()
        return self.response(
            200,
            id=complaint.id,
            number=complaint.number,
            count=len(events),
            result=[event_json(e, bool(complaint.channel and complaint.channel.is_regulator)) for e in events],
            deadlines=[
                {
                    "stage": d.stage,
                    "label": str(STAGES[d.stage].label),
                    "cycle": d.cycle,
                    "state": d.state,
                    "started_at": d.started_at.isoformat(),
                    "due_at": d.due_at.isoformat(),
                    "warn_at": d.warn_at.isoformat() if d.warn_at else None,
                    "met_at": d.met_at.isoformat() if d.met_at else None,
                    "late": d.late,
                }
                for d in complaint.deadlines
            ],
            paused=complaint.paused_since is not None,
            paused_working_minutes=sla.paused_working_minutes(db.session, [complaint.id]).get(complaint.id, 0),
            pauses=[pause_json(p) for p in complaint.pauses],
        )

    @api_expose("/<int:pk>/attachments/<int:attachment_id>", methods=["GET"])
    @protect()
    @safe
    @permission_name("attachment")
    def attachment(self, pk: int, attachment_id: int) -> Any:
        """Download one evidence file of a case.
        ---
        get:
          responses:
            200:
              description: The file's bytes
        """
        complaint = self.datamodel.get(pk, self._base_filters)
        if complaint is None or all(a.id != attachment_id for a in complaint.attachments):
            return self.response_404()
        return send_attachment(attachment_id)


def _attachment_json(row: Attachment) -> dict[str, Any]:
    return {
        "id": row.id,
        "filename": row.filename,
        "content_type": row.content_type,
        "size": row.size,
        "sha256": row.sha256,
        "description": row.description,
        "uploaded_at": row.uploaded_at.isoformat() if row.uploaded_at else None,
    }


# --- Registration -----------------------------------------------------------------------------


def register(appbuilder: Any) -> None:
    """Register every screen and resource, and build the menu (labels are translated)."""
    handling = "Complaint handling"
    handling_label = _l("Complaint handling")
    appbuilder.add_view(
        ComplaintView,
        "Complaints",
        icon="fa-list",
        label=_l("Complaints"),
        category=handling,
        category_label=handling_label,
        category_icon="fa-comments",
    )
    appbuilder.add_view(
        UnsignedComplaintView,
        "Awaiting sign-in",
        icon="fa-hourglass-half",
        label=_l("Awaiting sign-in"),
        category=handling,
        category_label=handling_label,
    )
    appbuilder.add_view(
        HeadOfficeComplaintView,
        "Escalated to head office",
        icon="fa-level-up",
        label=_l("Escalated to the head office"),
        category=handling,
        category_label=handling_label,
    )
    appbuilder.add_link(
        "Register complaint",
        href="/complaintview/add",
        icon="fa-plus",
        label=_l("Register complaint"),
        category=handling,
        category_label=handling_label,
    )
    appbuilder.add_view(
        CustomerView,
        "Customers",
        icon="fa-user",
        label=_l("Customers"),
        category=handling,
        category_label=handling_label,
    )
    appbuilder.add_view(
        ReplyScriptView,
        "Reply scripts",
        icon="fa-comment",
        label=_l("Reply scripts"),
        category=handling,
        category_label=handling_label,
    )
    organisation = "Organisation"
    appbuilder.add_view(
        DepartmentView,
        "Departments",
        icon="fa-sitemap",
        label=_l("Departments"),
        category=organisation,
        category_label=_l("Organisation"),
        category_icon="fa-building",
    )
    appbuilder.add_view(
        UnitView,
        "Units",
        icon="fa-code-fork",
        label=_l("Units"),
        category=organisation,
        category_label=_l("Organisation"),
    )
    appbuilder.add_view(
        StaffView, "Staff", icon="fa-users", label=_l("Staff"), category=organisation, category_label=_l("Organisation")
    )
    rules = "Rules"
    for view, name, label_, icon in (
        (ChannelView, "Channels", _l("Channels"), "fa-phone"),
        (CategoryView, "Categories", _l("Categories"), "fa-tags"),
        (LevelView, "Levels", _l("Levels"), "fa-signal"),
    ):
        appbuilder.add_view(
            view, name, icon=icon, label=label_, category=rules, category_label=_l("Rules"), category_icon="fa-cogs"
        )
    appbuilder.add_view(
        AccessLogView,
        "Access log",
        icon="fa-user-secret",
        label=_l("Access log"),
        category=organisation,
        category_label=_l("Organisation"),
    )
    appbuilder.add_view_no_menu(DepartmentStaffView)
    appbuilder.add_view_no_menu(UnitDepartmentView)
    appbuilder.add_view_no_menu(CustomerComplaintView)
    for api in (
        DepartmentApi,
        UnitApi,
        StaffApi,
        ChannelApi,
        CategoryApi,
        LevelApi,
        ReplyScriptApi,
        CustomerApi,
        ComplaintApi,
    ):
        appbuilder.add_api(api)
    register_time_limits(appbuilder)
    register_discipline(appbuilder)
    register_dashboards(appbuilder)
    register_analytics_views(appbuilder)
    register_quality(appbuilder)
    register_phrases(appbuilder)
    register_ownership(appbuilder)
    register_clusters(appbuilder)


# --- Time limits, calendar, settings, inbox -----------------------------------------------------


class RecomputeOnChange:
    """After a rule, calendar or office-hours change, recompute the running deadlines."""

    recompute_reason: Any = _l("Time limits changed")

    def _recompute(self, item: Any) -> None:
        user = current_user()
        stage = getattr(item, "stage", None) if isinstance(item, SlaRule) else None
        if not isinstance(item, SlaRule):
            sla.calendar_changed(db.session)
        moved = sla.recompute_open(
            db.session, str(self.recompute_reason), stage=stage, actor_id=user.id if user else None
        )
        db.session.commit()
        if moved and hasattr(self, "datamodel") and not isinstance(self, PortalApi):
            flash(_("Deadlines of %(n)d open cases were recomputed.", n=moved), "info")

    def post_add(self, item: Any) -> None:
        self._recompute(item)

    def post_update(self, item: Any) -> None:
        self._recompute(item)

    def post_delete(self, item: Any) -> None:
        self._recompute(item)


def _check_rule(item: SlaRule) -> None:
    errors = lifecycle.Errors()
    if item.stage not in STAGES:
        errors.add("stage", str(_l("Unknown stage “%(v)s”.", v=item.stage)))
    if item.unit not in UNIT_LABELS:
        errors.add("unit", str(_l("Unknown unit “%(v)s”.", v=item.unit)))
    if item.amount is None or item.amount <= 0:
        errors.add("amount", str(_l("Please enter a whole number greater than 0.")))
    if item.warn_ratio is not None and not (0 <= item.warn_ratio < 1):
        errors.add("warn_ratio", str(_l("The warning point is a fraction between 0 and 1 (e.g. 0.9).")))
    for token in (item.remind_roles or "").split(","):
        if token.strip() and token.strip() not in ROLE_TOKENS:
            errors.add("remind_roles", str(_l("Unknown role “%(v)s”.", v=token.strip())))
    if item.escalate_role and item.escalate_role not in ROLE_TOKENS:
        errors.add("escalate_role", str(_l("Unknown role “%(v)s”.", v=item.escalate_role)))
    if item.overtime_fine is not None and not (0 <= item.overtime_fine <= 100000):
        errors.add("overtime_fine", str(_l("The overtime fine is a whole number of yuan between 0 and 100000.")))
    errors.raise_if_any()


_RULE_LABELS = {
    "stage": _l("Stage"),
    "level": _l("Level (empty: all)"),
    "channel": _l("Channel (empty: all)"),
    "amount": _l("Time limit"),
    "unit": _l("Unit"),
    "warn_ratio": _l("Warning at (fraction of the time)"),
    "remind_roles": _l("Who is reminded"),
    "escalate_role": _l("Escalates to"),
    "escalate_after": _l("Escalate after (same unit, once overdue)"),
    "overtime_fine": _l("Overtime fine (yuan, drafted for review)"),
    "description": _l("Description"),
    "active": _l("Active"),
}


def _choice_field(label: Any, choices: list[tuple[str, Any]], description: Any = None) -> Any:
    from flask_appbuilder.fieldwidgets import Select2Widget
    from wtforms import SelectField

    return SelectField(label, choices=list(choices), widget=Select2Widget(), description=description)


class SlaRuleView(RecomputeOnChange, PortalModelView):
    datamodel = SQLAInterface(SlaRule)
    class_permission_name = "SlaRule"
    base_filters = SCOPED
    recompute_reason = _l("Time limit rule changed")
    list_title = _l("SLA rules")
    show_title = add_title = edit_title = _l("SLA rule")
    list_columns = [
        "stage",
        "level",
        "channel",
        "amount",
        "unit",
        "warn_ratio",
        "remind_roles",
        "escalate_role",
        "active",
    ]
    add_columns = edit_columns = show_columns = [
        "stage",
        "level",
        "channel",
        "amount",
        "unit",
        "warn_ratio",
        "remind_roles",
        "escalate_role",
        "escalate_after",
        "overtime_fine",
        "description",
        "active",
    ]
    search_columns = ["stage", "level", "active"]
    label_columns = _RULE_LABELS
    formatters_columns = {
        "stage": lambda v: str(STAGES[v].label) if v in STAGES else v,
        "unit": lambda v: str(UNIT_LABELS.get(v, v)),
        "warn_ratio": lambda v: f"{v:.0%}" if v is not None else "",
    }
    add_form_extra_fields = edit_form_extra_fields = {
        "stage": _choice_field(_l("Stage"), [(k, v.label) for k, v in STAGES.items()]),
        "unit": _choice_field(_l("Unit"), list(UNIT_LABELS.items())),
        "escalate_role": _choice_field(_l("Escalates to"), [("", "—"), *ROLE_TOKENS.items()]),
    }
    description_columns = {
        "remind_roles": _l("Comma-separated: department_head, first_responder, 人事行政经理, 总经理, 客服"),
    }

    def pre_add(self, item: SlaRule) -> None:
        item.escalate_role = item.escalate_role or None
        _check_rule(item)

    pre_update = pre_add


class CalendarOverrideView(RecomputeOnChange, PortalModelView):
    datamodel = SQLAInterface(CalendarOverride)
    class_permission_name = "CalendarOverride"
    base_filters = SCOPED
    recompute_reason = _l("Working calendar changed")
    list_title = _l("Working calendar")
    show_title = add_title = edit_title = _l("Calendar day")
    list_columns = ["day", "is_workday", "note"]
    add_columns = edit_columns = show_columns = ["day", "is_workday", "note"]
    search_columns = ["day", "is_workday", "note"]
    base_order = ("day", "desc")
    label_columns = {"day": _l("Date"), "is_workday": _l("Working day"), "note": _l("Note")}
    formatters_columns = {"is_workday": lambda v: _("Working day") if v else _("Day off")}
    description_columns = {
        "is_workday": _l("Tick for a make-up working day (调休); leave empty for a holiday."),
    }
    list_template = "calendar/list.html"

    def render_template(self, template: str, **kwargs: Any) -> Any:
        if template == self.list_template:
            from app.time_limits.calendar import uncovered_years

            cal = sla.load_calendar(db.session)
            today = utcnow().astimezone(sla_local_tz()).date()
            kwargs["uncovered"] = uncovered_years(cal, today)
            kwargs["years"] = [year_summary(cal, y) for y in (today.year, today.year + 1)]
        return super().render_template(template, **kwargs)


def sla_local_tz() -> Any:
    from app.timeutil import LOCAL_TZ

    return LOCAL_TZ


def year_summary(cal: Any, year: int) -> dict[str, Any]:
    """Holidays and make-up workdays of a year as the portal counts them."""
    from datetime import date, timedelta

    day, end = date(year, 1, 1), date(year, 12, 31)
    off, extra = [], []
    while day <= end:
        workday = cal.is_workday(day)
        if day.weekday() < 5 and not workday:
            off.append(day)
        elif day.weekday() >= 5 and workday:
            extra.append(day)
        day += timedelta(days=1)
    return {"year": year, "covered": cal.covered(year), "holidays": off, "workdays": extra}


class SettingView(PortalModelView):
    datamodel = SQLAInterface(Setting)
    class_permission_name = "Setting"
    list_title = _l("Settings")
    show_title = edit_title = add_title = _l("Setting")
    list_columns = ["key", "value", "description"]
    edit_columns = ["value", "description"]
    add_columns = ["key", "value", "description"]
    show_columns = ["key", "value", "description", "updated_at"]
    label_columns = {
        "key": _l("Key"),
        "value": _l("Value (JSON)"),
        "description": _l("Description"),
        "updated_at": _l("Updated at"),
    }
    formatters_columns = {"value": lambda v: __import__("json").dumps(v, ensure_ascii=False)}
    add_form_extra_fields = edit_form_extra_fields = {
        "value": TextAreaField(_l("Value (JSON)"), widget=BS3TextAreaFieldWidget()),
    }

    def prefill_form(self, form: Any, pk: Any) -> None:
        import json

        item = self.datamodel.get(pk)
        form.value.data = json.dumps(item.value, ensure_ascii=False)

    def pre_add(self, item: Setting) -> None:
        import json

        from app.time_limits.calendar import parse_blocks

        try:
            item.value = json.loads(item.value) if isinstance(item.value, str) else item.value
        except ValueError as exc:
            raise ValueError(str(_l("The value is not valid JSON: %(e)s", e=exc))) from exc
        if item.key == "office_hours":
            try:
                parse_blocks(item.value)
            except (ValueError, TypeError) as exc:
                raise ValueError(
                    str(_l('Office hours must look like [["09:00","12:00"],["13:30","18:00"]]: %(e)s', e=exc))
                ) from exc
        if item.key == "grading.formula":
            from app.quality.grading import check_formula

            problems = check_formula(item.value)
            if problems:
                raise ValueError(" ".join(problems))
        if item.key == "grading.publicity_working_days" and not (
            isinstance(item.value, int) and not isinstance(item.value, bool) and item.value >= 1
        ):
            raise ValueError(str(_l("The publicity period is a whole number of working days (the policy says 5).")))
        if item.key == "points.threshold" and not (
            isinstance(item.value, int) and not isinstance(item.value, bool) and item.value >= 0
        ):
            raise ValueError(str(_l("The points threshold is a whole number of 0 or more (0 turns the warning off).")))
        if item.key == "points.threshold_period" and item.value not in ("year", "month"):
            raise ValueError(str(_l("The period of the points threshold is “year” or “month”.")))
        if item.key == "penalty.chain_documents" and item.value not in ("circular", "notice"):
            raise ValueError(str(_l("Chained persons are told by “circular” or “notice”.")))

    pre_update = pre_add

    def post_update(self, item: Setting) -> None:
        if item.key == "office_hours":
            RecomputeOnChange._recompute(self, item)

    post_add = post_update


class InboxView(PortalModelView):
    """My notifications (every user sees only their own)."""

    datamodel = SQLAInterface(Notification)
    class_permission_name = "Inbox"
    base_filters = SCOPED
    base_permissions = ["can_read", "can_edit"]
    list_title = _l("My inbox")
    show_title = _l("Message")
    list_columns = ["created_at", "title", "complaint", "read_at"]
    show_columns = ["created_at", "title", "body", "complaint", "read_at"]
    search_columns = ["title", "kind", "read_at"]
    base_order = ("id", "desc")
    label_columns = {
        "created_at": _l("Time"),
        "title": _l("Subject"),
        "body": _l("Message"),
        "complaint": _l("Complaint"),
        "read_at": _l("Read at"),
        "kind": _l("Kind"),
    }

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk: Any) -> Any:
        item = self.datamodel.get(pk, self._base_filters)
        if item is None:
            abort(404)
        if item.read_at is None:
            item.read_at = utcnow()
            db.session.commit()
        if item.complaint_id:
            return redirect(url_for("ComplaintView.show", pk=item.complaint_id))
        if item.link and item.link.startswith("/") and not item.link.startswith("//"):
            return redirect(item.link)
        return super().show(pk)

    @expose("/read_all", methods=["POST"])
    @has_access
    def read_all(self) -> Any:
        from sqlalchemy import update as sa_update

        user = current_user()
        db.session.execute(
            sa_update(Notification)
            .where(Notification.user_id == user.id, Notification.read_at.is_(None))
            .values(read_at=utcnow())
        )
        db.session.commit()
        return redirect(url_for("InboxView.list"))


class ExtensionView(PortalModelView):
    """Requests for more time, for the people who decide them (scoped like cases)."""

    datamodel = SQLAInterface(Extension)
    class_permission_name = "Complaint"
    base_filters = SCOPED
    base_permissions = ["can_read"]
    list_title = _l("Extension requests")
    list_columns = ["complaint", "deadline", "amount", "unit", "reason", "requested_by", "requested_at", "status"]
    show_columns = list_columns + [
        "late_request",
        "consent_by",
        "consent_at",
        "consent_method",
        "decided_by",
        "decided_at",
        "decision_note",
        "old_due_at",
        "new_due_at",
    ]
    search_columns = ["status", "requested_at"]
    base_order = ("id", "desc")
    label_columns = {
        "complaint": _l("Complaint"),
        "deadline": _l("Stage"),
        "amount": _l("Extra time"),
        "unit": _l("Unit"),
        "reason": _l("Reason"),
        "requested_by": _l("Requested by"),
        "requested_at": _l("Requested at"),
        "status": _l("Status"),
        "decided_by": _l("Decided by"),
        "decided_at": _l("Decided at"),
        "decision_note": _l("Note"),
        "old_due_at": _l("Due before"),
        "new_due_at": _l("Due after"),
        "late_request": _l("Asked later than the notice (general manager decides)"),
        "consent_by": _l("Customer who agreed to the longer time"),
        "consent_at": _l("When the customer agreed"),
        "consent_method": _l("How the customer agreed"),
    }
    formatters_columns = {
        "status": lambda v: labels.label(labels.EXTENSION_STATUS, v),
        "consent_method": lambda v: labels.label(labels.FOLLOW_UP_METHOD, v),
        "unit": lambda v: str(UNIT_LABELS.get(v, v)),
        "deadline": lambda d: str(STAGES[d.stage].label) if d is not None else "",
    }


class SlaRuleApi(RecomputeOnChange, ValidatingApi, PortalApi):
    resource_name = "slarule"
    datamodel = SQLAInterface(SlaRule)
    class_permission_name = "SlaRule"
    base_filters = SCOPED
    recompute_reason = _l("Time limit rule changed")
    list_columns = show_columns = [
        "id",
        "stage",
        "level.id",
        "level.name",
        "channel.id",
        "channel.name",
        "amount",
        "unit",
        "warn_ratio",
        "remind_roles",
        "escalate_role",
        "escalate_after",
        "overtime_fine",
        "description",
        "active",
    ]
    add_columns = edit_columns = [
        "stage",
        "level",
        "channel",
        "amount",
        "unit",
        "warn_ratio",
        "remind_roles",
        "escalate_role",
        "escalate_after",
        "overtime_fine",
        "description",
        "active",
    ]
    search_columns = ["stage", "level", "channel", "active"]
    lookup_columns = ("stage",)
    lookup_order = "id"

    def pre_add(self, item: SlaRule) -> None:
        _check_rule(item)

    pre_update = pre_add


class CalendarOverrideApi(RecomputeOnChange, PortalApi):
    resource_name = "calendar"
    datamodel = SQLAInterface(CalendarOverride)
    class_permission_name = "CalendarOverride"
    base_filters = SCOPED
    recompute_reason = _l("Working calendar changed")
    list_columns = show_columns = ["id", "day", "is_workday", "note"]
    add_columns = edit_columns = ["day", "is_workday", "note"]
    search_columns = ["day", "is_workday"]
    order_columns = ["day"]
    lookup_columns = ("note",)
    lookup_order = "day"


class NotificationApi(PortalApi):
    """``/api/v1/notification/``: the caller's own inbox."""

    resource_name = "notification"
    datamodel = SQLAInterface(Notification)
    class_permission_name = "Inbox"
    base_filters = SCOPED
    base_permissions = ["can_read", "can_edit"]
    list_columns = show_columns = ["id", "kind", "title", "body", "complaint_id", "link", "created_at", "read_at"]
    edit_columns = ["read_at"]
    search_columns = ["kind", "read_at", "complaint_id"]
    order_columns = ["created_at"]
    base_order = ("id", "desc")
    lookup_columns = ("title",)
    lookup_order = "id"


def register_time_limits(appbuilder: Any) -> None:
    rules, rules_label = "Rules", _l("Rules")
    appbuilder.add_view(
        SlaRuleView, "SLA rules", icon="fa-clock-o", label=_l("SLA rules"), category=rules, category_label=rules_label
    )
    appbuilder.add_view(
        CalendarOverrideView,
        "Working calendar",
        icon="fa-calendar",
        label=_l("Working calendar"),
        category=rules,
        category_label=rules_label,
    )
    appbuilder.add_view(
        SettingView, "Settings", icon="fa-sliders", label=_l("Settings"), category=rules, category_label=rules_label
    )
    appbuilder.add_view(
        ExtensionView,
        "Extension requests",
        icon="fa-hourglass-half",
        label=_l("Extension requests"),
        category="Complaint handling",
        category_label=_l("Complaint handling"),
    )
    appbuilder.add_view(InboxView, "My inbox", icon="fa-bell", label=_l("My inbox"))
    for api in (SlaRuleApi, CalendarOverrideApi, NotificationApi):
        appbuilder.add_api(api)


# --- Discipline: penalty rules and cases, documents, commendations, ledger -------------------------

from app.discipline import cases as discipline
from app.discipline import (
    liability,
    penalties,  # noqa: E402
)
from app.models import Commendation, Document, Penalty, PenaltyEvent, PenaltyRule  # noqa: E402

DISCIPLINE_PERMS = {
    **MODEL_PERMS,
    "regulator_reply": "read",
    "regulator_reply_pdf": "read",
    "notice": "read",
    "notices": "read",
    "batch_print": "read",
    "record_form": "read",
    "documents": "read",
    "earlier": "read",
    "evidence": "read",
    "download": "read",
    "circular": "read",  # issuing also needs can_add on Document and the HR role (checked inside)
    "monthly_circular": "read",
    "index": "read",
    "ledger": "read",
    "ledger_xlsx": "read",
}

_PENALTY_LABELS = {
    "number": _l("Case no."),
    "staff": _l("Staff member"),
    "department": _l("Department"),
    "rule": _l("Rule applied"),
    "complaint": _l("Complaint"),
    "source": _l("Source"),
    "incident_date": _l("Date of the incident"),
    "facts": _l("Facts"),
    "sanction": _l("Sanction"),
    "fine_amount": _l("Fine (yuan)"),
    "score_deduction": _l("Points deducted"),
    "withhold_performance_pay": _l("Withhold the month's performance pay"),
    "circular_required": _l("Company-wide circular"),
    "subject_is_head": _l("Against a department head"),
    "head_failed_to_act": _l("Head failed to act"),
    "status": _l("Status"),
    "created_by": _l("Opened by"),
    "created_at": _l("Opened at"),
    "proposed_by": _l("Proposed by"),
    "proposed_at": _l("Proposed at"),
    "reviewed_by": _l("Reviewed by"),
    "reviewed_at": _l("Reviewed at"),
    "decided_by": _l("Decided by"),
    "decided_at": _l("Decided at"),
    "return_reason": _l("Reason of return"),
    "issued_at": _l("Notice issued at"),
    "served_on": _l("Served on"),
    "appeal_deadline": _l("Appeal accepted until"),
    "revoked_at": _l("Revoked at"),
}
_RULE_LABELS_D = {
    "tier": _l("Tier"),
    "clause": _l("Clause"),
    "description": _l("Description"),
    "sanction": _l("Sanction"),
    "fine_min": _l("Fine from (yuan)"),
    "fine_max": _l("Fine up to (yuan)"),
    "score_deduction": _l("Points deducted"),
    "withhold_performance_pay": _l("Withholds the month's performance pay"),
    "circular_required": _l("Company-wide circular"),
    "legal_referral": _l("Possible legal referral"),
    "chain_head_points": _l("Chained: department head's points"),
    "chain_head_fine": _l("Chained: department head's fine (yuan)"),
    "chain_superior_points": _l("Chained: direct superior's points"),
    "chain_superior_fine": _l("Chained: direct superior's fine (yuan)"),
    "chain_superior2_points": _l("Chained: superior's superior's points"),
    "chain_superior2_fine": _l("Chained: superior's superior's fine (yuan)"),
    "active": _l("Active"),
    "sort": _l("Sort order"),
}
_YES_NO = {True: _l("Yes"), False: _l("No")}


def _yes_no(value: Any) -> str:
    return str(_YES_NO[bool(value)])


def _sanction_choices() -> list[tuple[str, Any]]:
    return [(code, penalties.SANCTION_LABELS[code]) for code in penalties.SANCTIONS]


def _messages(exc: Exception) -> list[str]:
    if isinstance(exc, lifecycle.TransitionError):
        return [exc.message, *[m for ms in exc.errors.values() for m in ms]]
    if isinstance(exc, lifecycle.ValidationFailed):
        return [m for ms in exc.errors.values() for m in ms]
    return [str(exc)]


def _form_errors(form: Any, exc: Exception) -> None:
    """Put a refused case's messages next to their fields; the rest become flashes."""
    errors = exc.errors if isinstance(exc, (lifecycle.ValidationFailed, lifecycle.TransitionError)) else {}
    if isinstance(exc, lifecycle.TransitionError):
        flash(exc.message, "danger")
    for name, messages in errors.items():
        if name in form:
            form[name].errors = list(form[name].errors) + messages
        else:
            for message in messages:
                flash(message, "danger")


def pdf_response(data: bytes, filename: str, inline: bool = False, sha256: Optional[str] = None) -> Any:
    """Send PDF bytes as they are (stored documents are never regenerated)."""
    import io

    response = send_file(
        io.BytesIO(data), mimetype="application/pdf", as_attachment=not inline, download_name=filename, max_age=0
    )
    response.headers["Cache-Control"] = "private, no-store"
    if sha256:
        response.headers["ETag"] = f'"{sha256}"'
        response.headers["X-Content-SHA256"] = sha256
    return response


def send_document(doc: Document, inline: bool = False) -> Any:
    if getattr(doc.kind, "value", doc.kind) == "record_form" and doc.complaint_id is not None:
        # The stored form names the customer: a complained staff member gets a copy without.
        complaint = db.session.get(Complaint, doc.complaint_id)
        if complaint is not None and current_viewer().mode(complaint.customer_id) == privacy.HIDE:
            pdf, _stored = record_form.record_form_pdf(db.session, complaint, None, hide_customer=True)
            return pdf_response(pdf, doc.filename, inline=inline)
    return pdf_response(doc.content, doc.filename, inline=inline, sha256=doc.sha256)


def _inline() -> bool:
    return request.args.get("inline", "").lower() in {"1", "true", "yes"}


def _check_rule_row(item: PenaltyRule) -> None:
    errors = lifecycle.Errors()
    if item.tier is None or item.tier < 1:
        errors.add("tier", str(_l("Please enter a whole number greater than 0.")))
    if item.sanction not in penalties.SANCTIONS and getattr(item.sanction, "value", None) not in penalties.SANCTIONS:
        errors.add("sanction", str(_l("Please choose a sanction.")))
    for name in ("fine_min", "fine_max", "score_deduction"):
        value = getattr(item, name)
        if value is None or value < 0:
            errors.add(name, str(_l("Please enter a whole number of 0 or more.")))
    if item.fine_min is not None and item.fine_max is not None and item.fine_min > item.fine_max:
        errors.add("fine_max", str(_l("The upper limit is below the lower limit.")))
    if not (item.clause or "").strip():
        errors.add("clause", str(_l("Please enter the clause, e.g. 第六条第2款B.")))
    from app.discipline import liability

    for name, messages in liability.rule_errors(item).items():
        for message in messages:
            errors.add(name, message)
    errors.raise_if_any()
    from app.models import Sanction

    item.sanction = Sanction(getattr(item.sanction, "value", item.sanction))


def _rule_in_use(item: PenaltyRule) -> None:
    if db.session.scalar(select(Penalty.id).where(Penalty.rule_id == item.id).limit(1)) is not None:
        raise ValueError(
            str(_l("Rule %(clause)s is applied by penalty cases; deactivate it instead.", clause=item.clause))
        )


class PenaltyRuleView(PortalModelView):
    datamodel = SQLAInterface(PenaltyRule)
    class_permission_name = "PenaltyRule"
    base_filters = SCOPED
    list_title = _l("Penalty rules")
    show_title = add_title = edit_title = _l("Penalty rule")
    list_columns = [
        "tier",
        "clause",
        "description",
        "sanction",
        "fine_min",
        "fine_max",
        "score_deduction",
        "withhold_performance_pay",
        "circular_required",
        "active",
    ]
    add_columns = edit_columns = show_columns = [
        "tier",
        "clause",
        "description",
        "sanction",
        "fine_min",
        "fine_max",
        "score_deduction",
        "withhold_performance_pay",
        "circular_required",
        "legal_referral",
        "chain_head_points",
        "chain_head_fine",
        "chain_superior_points",
        "chain_superior_fine",
        "chain_superior2_points",
        "chain_superior2_fine",
        "active",
        "sort",
    ]
    search_columns = ["tier", "clause", "description", "active"]
    base_order = ("sort", "asc")
    label_columns = _RULE_LABELS_D
    formatters_columns = {
        "sanction": penalties.sanction_label,
        "withhold_performance_pay": _yes_no,
        "circular_required": _yes_no,
        "legal_referral": _yes_no,
        "active": _yes_no,
    }
    add_form_extra_fields = edit_form_extra_fields = {
        "sanction": _choice_field(_l("Sanction"), _sanction_choices()),
    }

    def prefill_form(self, form: Any, pk: Any) -> None:
        item = self.datamodel.get(pk)
        form.sanction.data = getattr(item.sanction, "value", item.sanction)

    def pre_add(self, item: PenaltyRule) -> None:
        try:
            _check_rule_row(item)
        except lifecycle.ValidationFailed as exc:
            raise ValueError(" ".join(_messages(exc))) from exc

    pre_update = pre_add

    def pre_delete(self, item: PenaltyRule) -> None:
        _rule_in_use(item)


def _penalty_form_fields() -> dict[str, Any]:
    from flask_appbuilder.fieldwidgets import DatePickerWidget
    from wtforms import BooleanField, DateField

    return {
        "staff": AjaxModelField(
            _l("Staff member"),
            model=Staff,
            url="/api/v1/staff/lookup",
            principal=current_principal,
            validators=[DataRequired(message=_l("Please choose the staff member."))],
        ),
        "complaint": AjaxModelField(
            _l("Complaint"),
            model=Complaint,
            url="/api/v1/complaint/lookup",
            principal=current_principal,
            description=_l("Leave empty for a penalty from an inspection."),
        ),
        "incident_date": DateField(
            _l("Date of the incident"), format="%Y-%m-%d", widget=DatePickerWidget(), validators=[OptionalValidator()]
        ),
        "sanction": _choice_field(
            _l("Sanction"), [("", "—"), *_sanction_choices()], description=_l("Empty: the rule's sanction.")
        ),
        "fine_amount": StringField(
            _l("Fine (yuan)"), widget=BS3TextFieldWidget(), description=_l("Empty: the rule's lowest fine.")
        ),
        "score_deduction": StringField(
            _l("Points deducted"), widget=BS3TextFieldWidget(), description=_l("Empty: the rule's deduction.")
        ),
        "head_failed_to_act": BooleanField(
            _l("Head failed to act"),
            description=_l("For the HR & administration manager: the department head did not sanction this."),
        ),
    }


class PenaltyView(PortalModelView):
    """Penalty cases: list, case page with the approval chain, the opening form."""

    datamodel = SQLAInterface(Penalty)
    class_permission_name = "Penalty"
    method_permission_name = DISCIPLINE_PERMS
    base_filters = SCOPED
    base_permissions = ["can_read", "can_add", "can_edit"]
    list_title = _l("Penalties")
    show_title = _l("Penalty case")
    add_title = _l("Open a penalty case")
    edit_title = _l("Edit penalty case")
    show_template = "penalty/show.html"
    list_columns = [
        "number",
        "staff",
        "department",
        "rule",
        "sanction",
        "fine_amount",
        "score_deduction",
        "status",
        "created_at",
    ]
    order_columns = ["number", "created_at", "status", "fine_amount"]
    search_columns = ["number", "status", "department", "staff", "rule", "sanction", "created_at", "decided_at"]
    base_order = ("created_at", "desc")
    # Pay withholding and the circular follow the rule (an appeal may lighten them later).
    add_columns = edit_columns = [
        "staff",
        "complaint",
        "rule",
        "incident_date",
        "facts",
        "sanction",
        "fine_amount",
        "score_deduction",
        "head_failed_to_act",
    ]
    show_columns = [
        "number",
        "status",
        "staff",
        "department",
        "rule",
        "complaint",
        "source",
        "incident_date",
        "facts",
        "sanction",
        "fine_amount",
        "score_deduction",
        "withhold_performance_pay",
        "circular_required",
        "subject_is_head",
        "head_failed_to_act",
        "return_reason",
        "created_by",
        "created_at",
        "proposed_by",
        "proposed_at",
        "reviewed_by",
        "reviewed_at",
        "decided_by",
        "decided_at",
        "issued_at",
        "served_on",
        "appeal_deadline",
        "revoked_at",
    ]
    label_columns = _PENALTY_LABELS
    formatters_columns = {
        "status": penalties.status_label,
        "sanction": penalties.sanction_label,
        "withhold_performance_pay": _yes_no,
        "circular_required": _yes_no,
        "subject_is_head": _yes_no,
        "head_failed_to_act": _yes_no,
        "source": lambda v: _("Complaint") if v == "complaint" else _("Inspection"),
    }
    add_form_query_rel_fields = edit_form_query_rel_fields = {"rule": [["active", FilterEqual, True]]}
    search_form_query_rel_fields = {"department": SCOPED, "staff": SCOPED}
    add_form_extra_fields = edit_form_extra_fields = _penalty_form_fields()

    def _form_data(self, form: Any) -> dict[str, Any]:
        return {name: form[name].data for name in self.add_columns if name in form}

    def _add(self) -> Any:
        form = self.add_form.refresh()
        if request.method == "POST" and form.validate():
            try:
                opened = discipline.open_case(db.session, current_principal(), self._form_data(form))
                db.session.commit()
            except (lifecycle.TransitionError, lifecycle.ValidationFailed) as exc:
                db.session.rollback()
                _form_errors(form, exc)
            else:
                g._opened = opened
                flash(_("Penalty case %(number)s opened as a draft.", number=opened.number), "success")
                return None
        return self._get_add_widget(form=form)

    def post_add_redirect(self) -> Any:
        opened = g.get("_opened")
        if opened is not None:
            return redirect(url_for("PenaltyView.show", pk=opened.id))
        return super().post_add_redirect()

    def prefill_form(self, form: Any, pk: Any) -> None:
        item = self.datamodel.get(pk, self._base_filters)
        form.sanction.data = getattr(item.sanction, "value", item.sanction)
        form.fine_amount.data = str(item.fine_amount)
        form.score_deduction.data = str(item.score_deduction)

    def _edit(self, pk: Any) -> Any:
        """Change a draft through the service (never populate the row from the form first)."""
        penalty = self.datamodel.get(pk, self._base_filters)
        if penalty is None:
            abort(404)
        if request.method != "POST":
            form = self.edit_form.refresh(obj=penalty)
            self.prefill_form(form, pk)
            return self._get_edit_widget(form=form)
        form = self.edit_form.refresh(request.form)
        if form.validate():
            try:
                discipline.edit_case(db.session, penalty, current_principal(), self._form_data(form))
                db.session.commit()
            except (lifecycle.TransitionError, lifecycle.ValidationFailed) as exc:
                db.session.rollback()
                _form_errors(form, exc)
            else:
                flash(_("Penalty case %(number)s saved.", number=penalty.number), "success")
                g._edited = penalty.id
                return None
        return self._get_edit_widget(form=form)

    def post_edit_redirect(self) -> Any:
        edited = g.get("_edited")
        if edited is not None:
            return redirect(url_for("PenaltyView.show", pk=edited))
        return super().post_edit_redirect()

    def pre_delete(self, item: Penalty) -> None:
        raise ValueError(str(_l("Penalty cases are never deleted; withdraw a draft instead.")))

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk: Any) -> Any:
        penalty = self.datamodel.get(pk, self._base_filters)
        if penalty is None:
            abort(404)
        principal = current_principal()
        widgets = self._show(pk)
        summary = discipline.earlier_offences(db.session, penalty)
        docs = db.session.scalars(
            select(Document)
            .where(Document.penalty_id == penalty.id, scope.criterion(Document, principal))
            .order_by(Document.issued_at, Document.id)
        ).all()
        return self.render_template(
            self.show_template,
            pk=pk,
            title=self.show_title,
            widgets=widgets,
            related_views=self._related_views,
            penalty=penalty,
            steps=discipline.available_steps(db.session, penalty, principal),
            step_options=penalty_step_options,
            summary=summary,
            chain=liability.chain_json(penalty),
            documents=docs,
            notice=notices.current_notice(db.session, penalty),
            events=db.session.scalars(
                select(PenaltyEvent)
                .where(PenaltyEvent.penalty_id == penalty.id)
                .order_by(PenaltyEvent.at, PenaltyEvent.id)
            ).all(),
            can_circulate=principal.has_role(penalties.HR)
            and self.appbuilder.sm.has_access("can_add", "Document")
            and penalty.status.value in notices.CIRCULAR_STATUSES,
            can_edit=self.appbuilder.sm.has_access("can_edit", "Penalty")
            and penalty.status.value in penalties.EDITABLE
            and penalties.proposer_refusal(services.actor_for(principal), discipline.case_facts(penalty)) is None,
            status_label=penalties.status_label,
            sanction_label=penalties.sanction_label,
            action_label=penalties.action_label,
            format_local=format_local,
        )

    @expose("/act/<int:pk>", methods=["POST"])
    @has_access
    def act(self, pk: int) -> Any:
        """Take one step of the chain from the case page's forms."""
        penalty = self.datamodel.get(pk, self._base_filters)
        if penalty is None:
            abort(404)
        values = {k: v for k, v in request.form.items() if k not in ("csrf_token", "action", "version")}
        try:
            event = discipline.take_step(
                db.session,
                penalty,
                request.form.get("action", ""),
                current_principal(),
                values,
                expected_version=request.form.get("version"),
            )
            db.session.commit()
            flash(_("%(action)s: done.", action=penalties.action_label(event.action)), "success")
        except (lifecycle.TransitionError, lifecycle.ValidationFailed) as exc:
            db.session.rollback()
            for message in _messages(exc):
                flash(message, "danger")
        return redirect(url_for("PenaltyView.show", pk=pk))

    @expose("/circular/<int:pk>", methods=["POST"])
    @has_access
    def circular(self, pk: int) -> Any:
        """Issue the company-wide 通报 of this penalty."""
        penalty = self.datamodel.get(pk, self._base_filters)
        if penalty is None:
            abort(404)
        if not self.appbuilder.sm.has_access("can_add", "Document"):
            abort(403)
        try:
            doc = notices.issue_penalty_circular(db.session, penalty, current_principal())
            db.session.commit()
            flash(_("Circular %(number)s issued.", number=doc.number), "success")
        except lifecycle.TransitionError as exc:
            db.session.rollback()
            flash(exc.message, "danger")
        return redirect(url_for("PenaltyView.show", pk=pk))

    @expose("/notice/<int:pk>", methods=["GET"])
    @has_access
    def notice(self, pk: int) -> Any:
        """The stored notice (``?inline=1`` to open it in the browser for printing)."""
        penalty = self.datamodel.get(pk, self._base_filters)
        if penalty is None:
            abort(404)
        doc = notices.current_notice(db.session, penalty)
        if doc is None:
            abort(409)
        return send_document(doc, inline=_inline())

    @action("batch_print", _l("Print notices"), icon="fa-print", single=False)
    def batch_print(self, items: Any) -> Any:
        """The selected penalties' notices in one PDF (scope is checked again: actions load rows unfiltered)."""
        items = items if isinstance(items, list) else [items]
        batch = notices.batch_notices(db.session, [i.id for i in items if i is not None], current_principal())
        if not batch.included:
            flash(_("None of the selected penalties has an issued notice."), "warning")
            return redirect(url_for("PenaltyView.list"))
        return pdf_response(batch.pdf, f"处罚通知书-{len(batch.included)}份.pdf", inline=True)


def penalty_step_options(step: penalties.Step) -> dict[str, list[tuple[str, str]]]:
    """Choices for the select fields of a step's form."""
    options: dict[str, list[tuple[str, str]]] = {}
    for f in step.fields:
        if f.kind == "choice":
            options[f.name] = [(c, str(penalties.APPEAL_DECISION_LABELS.get(c, c))) for c in f.choices]
        elif f.kind == "sanction":
            options[f.name] = [(c, str(label)) for c, label in _sanction_choices()]
    return options


class DocumentView(PortalModelView):
    """Issued documents (stored PDFs), scoped like their penalty or complaint."""

    datamodel = SQLAInterface(Document)
    class_permission_name = "Document"
    method_permission_name = DISCIPLINE_PERMS
    base_filters = SCOPED
    base_permissions = ["can_read", "can_add"]
    list_template = "document/list.html"
    list_title = _l("Issued documents")
    show_title = _l("Issued document")
    list_columns = ["kind", "number", "title", "version", "issued_at", "issued_by", "superseded_at"]
    show_columns = [
        "kind",
        "number",
        "title",
        "version",
        "supersedes",
        "superseded_at",
        "penalty",
        "complaint",
        "period",
        "filename",
        "size",
        "sha256",
        "note",
        "issued_by",
        "issued_at",
    ]
    search_columns = ["kind", "number", "title", "period", "issued_at", "superseded_at"]
    order_columns = ["number", "issued_at", "kind"]
    base_order = ("issued_at", "desc")
    label_columns = {
        "kind": _l("Kind"),
        "number": _l("Document number"),
        "title": _l("Title"),
        "version": _l("Version"),
        "supersedes": _l("Supersedes"),
        "superseded_at": _l("Superseded at"),
        "penalty": _l("Penalty case"),
        "complaint": _l("Complaint"),
        "period": _l("Period"),
        "filename": _l("File name"),
        "size": _l("Size (bytes)"),
        "sha256": _l("SHA-256"),
        "note": _l("Note"),
        "issued_by": _l("Issued by"),
        "issued_at": _l("Issued at"),
    }
    formatters_columns = {"kind": lambda v: labels.label(DOCUMENT_KINDS, v)}

    def render_template(self, template: str, **kwargs: Any) -> Any:
        if template == self.list_template:
            principal = current_principal()
            kwargs["can_issue_circular"] = principal.has_role(penalties.HR) and self.appbuilder.sm.has_access(
                "can_add", "Document"
            )
            kwargs["default_month"] = format_local(utcnow(), "%Y-%m")
        return super().render_template(template, **kwargs)

    @expose("/download/<int:pk>", methods=["GET"])
    @has_access
    def download(self, pk: int) -> Any:
        doc = self.datamodel.get(pk, self._base_filters)
        if doc is None:
            abort(404)
        return send_document(doc, inline=_inline())

    @expose("/monthly_circular", methods=["POST"])
    @has_access
    def monthly_circular(self) -> Any:
        if not self.appbuilder.sm.has_access("can_add", "Document"):
            abort(403)
        try:
            month = ledger.parse_month(request.form.get("month"))
            doc = notices.issue_monthly_circular(db.session, month, current_principal())
            db.session.commit()
            flash(_("Circular %(number)s issued.", number=doc.number), "success")
            return redirect(url_for("DocumentView.show", pk=doc.id))
        except ValueError as exc:
            flash(str(exc), "danger")
        except lifecycle.TransitionError as exc:
            db.session.rollback()
            flash(exc.message, "danger")
        return redirect(url_for("DocumentView.list"))


DOCUMENT_KINDS = {
    "penalty_notice": _l("Penalty notice"),
    "circular": _l("Circular"),
    "record_form": _l("Complaint record form"),
    "monthly_analysis": _l("Monthly complaint analysis"),
    "weekly_analysis": _l("Weekly complaint analysis"),
}


class CommendationView(PortalModelView):
    datamodel = SQLAInterface(Commendation)
    class_permission_name = "Commendation"
    method_permission_name = DISCIPLINE_PERMS
    base_filters = SCOPED
    list_title = _l("Commendations")
    show_title = add_title = edit_title = _l("Commendation")
    list_columns = ["commended_on", "staff", "department", "source", "content", "offsets_complaint"]
    add_columns = edit_columns = ["staff", "commended_on", "source", "content", "offsets_complaint", "evidence_file"]
    show_columns = [
        "commended_on",
        "staff",
        "department",
        "source",
        "content",
        "offsets_complaint",
        "evidence_filename",
        "recorded_by",
        "recorded_at",
    ]
    search_columns = ["commended_on", "staff", "department", "source", "offsets_complaint"]
    base_order = ("commended_on", "desc")
    show_template = "commendation/show.html"
    label_columns = {
        "commended_on": _l("Date"),
        "staff": _l("Staff member"),
        "department": _l("Department"),
        "source": _l("Source"),
        "content": _l("What the employee was praised for"),
        "offsets_complaint": _l("Offsets a complaint in grading"),
        "evidence_file": _l("Evidence (letter, recording)"),
        "evidence_filename": _l("Evidence"),
        "recorded_by": _l("Recorded by"),
        "recorded_at": _l("Recorded at"),
    }
    formatters_columns = {
        "source": lambda v: str(penalties.COMMENDATION_SOURCE_LABELS.get(v, v)),
        "offsets_complaint": _yes_no,
    }
    search_form_query_rel_fields = {"department": SCOPED, "staff": SCOPED}

    def __init__(self, **kwargs: Any):
        from flask_appbuilder.upload import FileUploadField  # noqa: F401  (FAB's field needs app config)
        from wtforms import FileField

        type(self).add_form_extra_fields = type(self).edit_form_extra_fields = {
            "staff": AjaxModelField(
                _l("Staff member"),
                model=Staff,
                url="/api/v1/staff/lookup",
                principal=current_principal,
                validators=[DataRequired(message=_l("Please choose the staff member."))],
            ),
            "source": _choice_field(
                _l("Source"), [(c, penalties.COMMENDATION_SOURCE_LABELS[c]) for c in penalties.COMMENDATION_SOURCES]
            ),
            "evidence_file": FileField(_l("Evidence (letter, recording)")),
        }
        super().__init__(**kwargs)

    def _take_evidence(self, item: Commendation) -> None:
        upload = request.files.get("evidence_file")
        if upload is None or not upload.filename:
            return
        data = upload.read()
        import os

        ext = os.path.splitext(upload.filename)[1].lower()
        allowed = current_app.config["ATTACHMENT_ALLOWED_TYPES"]
        if ext not in allowed or not data or len(data) > current_app.config["ATTACHMENT_MAX_BYTES"]:
            raise ValueError(
                str(
                    _l(
                        "Files of type “%(ext)s” are not accepted. Allowed: %(allowed)s.",
                        ext=ext or upload.filename,
                        allowed=", ".join(sorted(allowed)),
                    )
                )
            )
        item.evidence, item.evidence_content_type = data, allowed[ext]
        item.evidence_filename = os.path.basename(upload.filename)[:255]

    def pre_add(self, item: Commendation) -> None:
        try:
            discipline.check_commendation(item)
        except lifecycle.ValidationFailed as exc:
            raise ValueError(" ".join(_messages(exc))) from exc
        self._take_evidence(item)
        user = current_user()
        if item.recorded_by_id is None:
            item.recorded_by_id = user.id if user else None

    pre_update = pre_add

    @expose("/evidence/<int:pk>", methods=["GET"])
    @has_access
    def evidence(self, pk: int) -> Any:
        item = self.datamodel.get(pk, self._base_filters)
        if item is None or item.evidence is None:
            abort(404)
        import io

        return send_file(
            io.BytesIO(item.evidence),
            mimetype=item.evidence_content_type or "application/octet-stream",
            as_attachment=True,
            download_name=item.evidence_filename or "evidence",
            max_age=0,
        )


class LedgerView(BaseView):
    """Monthly ledger of fines, points and sanctions per staff and department, for payroll."""

    route_base = "/ledger"
    default_view = "index"
    class_permission_name = "Ledger"
    method_permission_name = DISCIPLINE_PERMS

    @expose("/", methods=["GET"])
    @has_access
    def index(self) -> Any:
        try:
            month = ledger.parse_month(request.args.get("month") or format_local(utcnow(), "%Y-%m"))
        except ValueError as exc:
            flash(str(exc), "danger")
            month = ledger.parse_month(format_local(utcnow(), "%Y-%m"))
        data = ledger.ledger(db.session, month, current_principal())
        return self.render_template("penalty/ledger.html", data=data, month=f"{month:%Y-%m}", title=_("Penalty ledger"))


PRESET_PERMS = {"index": "read", "load": "load", "presets": "read", "load_preset": "load"}


class PolicyPresetView(BaseView):
    """Load one of the seed policies' level schemes and time limits (administrators, HR)."""

    route_base = "/policypresets"
    default_view = "index"
    class_permission_name = "PolicyPreset"
    method_permission_name = PRESET_PERMS

    @expose("/", methods=["GET"])
    @has_access
    def index(self) -> Any:
        from app import settings
        from app.time_limits import presets as policy_presets

        return self.render_template(
            "policy/presets.html",
            presets=policy_presets.PRESETS,
            current=settings.get(db.session, "policy.preset"),
            can_load=self.appbuilder.sm.has_access("can_load", "PolicyPreset"),
            stage_label=lambda v: str(STAGES[v].label) if v in STAGES else v,
            unit_label=lambda v: str(UNIT_LABELS.get(v, v)),
            title=_("Policy presets"),
        )

    @expose("/load/<string:code>", methods=["POST"])
    @has_access
    def load(self, code: str) -> Any:
        from app.time_limits import presets as policy_presets

        user = current_user()
        try:
            result = policy_presets.load(db.session, code, actor_id=user.id if user else None)
            db.session.commit()
            flash(
                _(
                    "Preset loaded: %(levels)s levels active, %(rules)s rules, %(cases)s open cases recomputed.",
                    levels=len(policy_presets.PRESETS[code].levels),
                    rules=result["rules"],
                    cases=result["recomputed"],
                ),
                "success",
            )
        except policy_presets.PresetError as exc:
            db.session.rollback()
            flash(str(exc), "danger")
        return redirect(url_for("PolicyPresetView.index"))


class PolicyPresetApi(ApiConventions, BaseApi):
    """``GET /api/v1/policy_preset/``: the presets; ``POST /api/v1/policy_preset/<code>/load`` loads one."""

    resource_name = "policy_preset"
    class_permission_name = "PolicyPreset"
    method_permission_name = PRESET_PERMS
    allow_browser_login = True

    @api_expose("/", methods=["GET"])
    @protect()
    @safe
    @permission_name("presets")
    def presets(self) -> Any:
        """The policy presets with their levels and rules.
        ---
        get:
          responses:
            200:
              description: The presets
        """
        from app import settings
        from app.time_limits import presets as policy_presets

        return self.response(
            200,
            current=settings.get(db.session, "policy.preset") or None,
            result=[
                {
                    "code": p.code,
                    "name": p.name,
                    "source": p.source,
                    "description": str(p.description),
                    "levels": [{"code": lv.code, "name": lv.name, "rank": lv.rank} for lv in p.levels],
                    "rules": [
                        {
                            "level": r.level,
                            "stage": r.stage,
                            "amount": r.amount,
                            "unit": r.unit,
                            "overtime_fine": r.overtime_fine,
                        }
                        for r in p.rules
                    ],
                }
                for p in policy_presets.PRESETS.values()
            ],
        )

    @api_expose("/<string:code>/load", methods=["POST"])
    @protect()
    @safe
    @permission_name("load_preset")
    def load_preset(self, code: str) -> Any:
        """Load a preset: its levels become active, its rules replace those of its levels.
        ---
        post:
          responses:
            200:
              description: Loaded
            404:
              description: No such preset
        """
        from app.time_limits import presets as policy_presets

        user = current_user()
        try:
            result = policy_presets.load(db.session, code, actor_id=user.id if user else None)
            db.session.commit()
        except policy_presets.PresetError as exc:
            db.session.rollback()
            return self.response(404, message=str(exc))
        return self.response(200, result=result)


# --- Discipline REST resources --------------------------------------------------------------


PENALTY_COLUMNS = [
    "id",
    "number",
    "status",
    "staff.id",
    "staff.name",
    "staff.employee_no",
    "department.id",
    "department.name",
    "rule.id",
    "rule.clause",
    "rule.tier",
    "complaint.id",
    "complaint.number",
    "source",
    "incident_date",
    "facts",
    "sanction",
    "fine_amount",
    "score_deduction",
    "withhold_performance_pay",
    "circular_required",
    "subject_is_head",
    "head_failed_to_act",
    "return_reason",
    "created_at",
    "proposed_at",
    "reviewed_at",
    "decided_at",
    "issued_at",
    "served_on",
    "appeal_deadline",
    "revoked_at",
    "version",
]


def _resolve_case_data(body: dict[str, Any]) -> dict[str, Any]:
    """Turn ids in a JSON body into rows, through the caller's scope (a foreign id is 'missing')."""
    principal = current_principal()
    data = {k: v for k, v in body.items() if k in discipline.CASE_FIELDS}
    errors = lifecycle.Errors()
    for name, model in (("staff", Staff), ("complaint", Complaint), ("rule", PenaltyRule)):
        if name not in body:
            continue
        raw = body.get(name)
        if raw in (None, ""):
            data[name] = None
            continue
        row = None
        if str(raw).isdigit():
            row = db.session.scalars(
                select(model).where(model.id == int(raw), scope.criterion(model, principal))
            ).first()
        if row is None:
            errors.add(name, str(_l("The selected item does not exist or is not available to you.")))
        data[name] = row
    errors.raise_if_any()
    return data


def _error_response(api: Any, exc: Exception) -> Any:
    """Map domain errors to the API's codes: 409 state/version, 403 role/scope, 422 fields."""
    if isinstance(exc, lifecycle.ValidationFailed):
        return api.response(422, message=exc.errors)
    if isinstance(exc, lifecycle.TransitionError):
        if exc.kind == "fields" and exc.errors:
            return api.response(422, message=exc.errors)
        status = {"state": 409, "version": 409, "role": 403, "scope": 403}.get(exc.kind, 422)
        return api.response(status, message=exc.message)
    raise exc


def penalty_event_json(e: PenaltyEvent) -> dict[str, Any]:
    return {
        "id": e.id,
        "at": e.at.isoformat(),
        "action": e.action,
        "label": penalties.action_label(e.action),
        "actor": {"id": e.actor.id, "username": e.actor.username, "name": e.actor.first_name} if e.actor else None,
        "from_status": e.from_status,
        "to_status": e.to_status,
        "note": e.note,
        "data": e.data,
    }


def step_json(step: penalties.Step) -> dict[str, Any]:
    options = penalty_step_options(step)
    return {
        "action": step.action,
        "label": str(step.label),
        "target": step.target,
        "fields": [
            {
                "name": f.name,
                "label": str(f.label),
                "required": f.required,
                "kind": f.kind,
                "choices": [c for c, _label in options.get(f.name, [])] or list(f.choices),
            }
            for f in step.fields
        ],
    }


def document_json(doc: Document) -> dict[str, Any]:
    return {
        "id": doc.id,
        "kind": doc.kind.value,
        "number": doc.number,
        "title": doc.title,
        "version": doc.version,
        "supersedes_id": doc.supersedes_id,
        "superseded_at": doc.superseded_at.isoformat() if doc.superseded_at else None,
        "current": doc.superseded_at is None,
        "penalty_id": doc.penalty_id,
        "complaint_id": doc.complaint_id,
        "period": doc.period,
        "filename": doc.filename,
        "size": doc.size,
        "sha256": doc.sha256,
        "issued_at": doc.issued_at.isoformat(),
    }


class PenaltyRuleApi(ValidatingApi, PortalApi):
    resource_name = "penaltyrule"
    datamodel = SQLAInterface(PenaltyRule)
    class_permission_name = "PenaltyRule"
    base_filters = SCOPED
    list_columns = show_columns = [
        "id",
        "tier",
        "clause",
        "description",
        "sanction",
        "fine_min",
        "fine_max",
        "score_deduction",
        "withhold_performance_pay",
        "circular_required",
        "legal_referral",
        "chain_head_points",
        "chain_head_fine",
        "chain_superior_points",
        "chain_superior_fine",
        "chain_superior2_points",
        "chain_superior2_fine",
        "active",
        "sort",
    ]
    add_columns = edit_columns = [c for c in list_columns if c != "id"]
    search_columns = ["tier", "clause", "sanction", "active"]
    order_columns = ["tier", "clause", "sort"]
    base_order = ("sort", "asc")
    lookup_columns = ("clause", "description")
    lookup_order = "sort"

    def pre_add(self, item: PenaltyRule) -> None:
        _check_rule_row(item)

    pre_update = pre_add

    def pre_delete(self, item: PenaltyRule) -> None:
        try:
            _rule_in_use(item)
        except ValueError as exc:
            abort(409, description=str(exc))


class PenaltyApi(PortalApi):
    """``/api/v1/penalty/``: penalty cases, their chain, timeline and notice."""

    resource_name = "penalty"
    datamodel = SQLAInterface(Penalty)
    class_permission_name = "Penalty"
    method_permission_name = DISCIPLINE_PERMS
    base_filters = SCOPED
    base_permissions = ["can_read", "can_add", "can_edit"]
    list_columns = show_columns = PENALTY_COLUMNS
    add_columns = edit_columns = list(discipline.CASE_FIELDS)
    search_columns = [
        "number",
        "status",
        "staff",
        "department",
        "rule",
        "complaint",
        "sanction",
        "created_at",
        "decided_at",
    ]
    order_columns = ["number", "created_at", "decided_at", "status", "fine_amount"]
    base_order = ("created_at", "desc")
    lookup_columns = ("number",)
    lookup_order = "id"

    def post_headless(self) -> Any:
        if not request.is_json or not isinstance(request.json, dict):
            return self.response_400(message=_("The request body must be JSON."))
        try:
            penalty = discipline.open_case(db.session, current_principal(), _resolve_case_data(request.json))
            db.session.commit()
        except (lifecycle.TransitionError, lifecycle.ValidationFailed) as exc:
            db.session.rollback()
            return _error_response(self, exc)
        return self.response(201, id=penalty.id, result=self.show_model_schema.dump(penalty))

    def put_headless(self, pk: Any) -> Any:
        penalty, error = self._case(pk)
        if error is not None:
            return error
        if not request.is_json or not isinstance(request.json, dict):
            return self.response_400(message=_("The request body must be JSON."))
        body = dict(request.json)
        version = body.pop("version", None)
        try:
            if version not in (None, "") and str(version) != str(penalty.version):
                raise lifecycle.TransitionError("version", str(discipline.VERSION_CONFLICT))
            discipline.edit_case(db.session, penalty, current_principal(), _resolve_case_data(body))
            db.session.commit()
        except (lifecycle.TransitionError, lifecycle.ValidationFailed) as exc:
            db.session.rollback()
            return _error_response(self, exc)
        return self.response(200, id=penalty.id, result=self.show_model_schema.dump(penalty))

    def delete_headless(self, pk: Any) -> Any:
        return self.response(405, message=_("Penalty cases are never deleted; withdraw a draft instead."))

    def pre_get(self, data: dict[str, Any]) -> None:
        """The case's liability chain (连带扣分) with its show: frozen links once approved."""
        from app.discipline import liability

        penalty = db.session.get(Penalty, int(data["id"]))
        if penalty is not None:
            data["chain"] = liability.chain_json(penalty)

    def _case(self, pk: Any) -> tuple[Optional[Penalty], Any]:
        """The case if in scope; else (None, 403 when it exists elsewhere, 404 when not at all)."""
        penalty = self.datamodel.get(pk, self._base_filters)
        if penalty is not None:
            return penalty, None
        if str(pk).isdigit() and db.session.get(Penalty, int(pk)) is not None:
            return None, self.response(403, message=_("This penalty is outside your scope."))
        return None, self.response_404()

    @api_expose("/<int:pk>/transitions", methods=["GET"])
    @protect()
    @safe
    @permission_name("transitions")
    def transitions(self, pk: int) -> Any:
        """The steps the caller may take on the case now, with their fields.
        ---
        get:
          responses:
            200:
              description: Available steps
            403:
              description: Outside the caller's scope
        """
        penalty, error = self._case(pk)
        if error is not None:
            return error
        steps = discipline.available_steps(db.session, penalty, current_principal())
        return self.response(
            200,
            id=penalty.id,
            status=penalty.status.value,
            version=penalty.version,
            result=[step_json(s) for s in steps],
        )

    @api_expose("/<int:pk>/transition", methods=["POST"])
    @protect()
    @safe
    @permission_name("transition")
    def transition(self, pk: int) -> Any:
        """Take one step: ``{"action": ..., "version": n, <fields>}``.
        ---
        post:
          requestBody:
            required: true
            content:
              application/json:
                schema:
                  type: object
                  properties:
                    action: {type: string}
                    version: {type: integer}
          responses:
            200:
              description: The step was taken
            403:
              description: The caller's role or scope does not allow it
            409:
              description: Wrong state or stale version
            422:
              description: Missing or wrong fields
        """
        penalty, error = self._case(pk)
        if error is not None:
            return error
        if not request.is_json or not isinstance(request.json, dict):
            return self.response_400(message=_("The request body must be JSON."))
        body = dict(request.json)
        action = str(body.pop("action", "") or "")
        version = body.pop("version", None)
        try:
            event = discipline.take_step(
                db.session, penalty, action, current_principal(), body, expected_version=version
            )
            db.session.commit()
        except (lifecycle.TransitionError, lifecycle.ValidationFailed) as exc:
            db.session.rollback()
            return _error_response(self, exc)
        db.session.refresh(penalty)
        return self.response(
            200, id=penalty.id, event=penalty_event_json(event), result=self.show_model_schema.dump(penalty)
        )

    @api_expose("/<int:pk>/timeline", methods=["GET"])
    @protect()
    @safe
    @permission_name("timeline")
    def timeline(self, pk: int) -> Any:
        """The case's timeline, oldest first, with its appeals.
        ---
        get:
          responses:
            200:
              description: Timeline entries
        """
        penalty, error = self._case(pk)
        if error is not None:
            return error
        events = db.session.scalars(
            select(PenaltyEvent).where(PenaltyEvent.penalty_id == penalty.id).order_by(PenaltyEvent.at, PenaltyEvent.id)
        ).all()
        return self.response(
            200,
            id=penalty.id,
            number=penalty.number,
            count=len(events),
            result=[penalty_event_json(e) for e in events],
            appeals=[
                {
                    "id": a.id,
                    "filed_on": a.filed_on.isoformat(),
                    "grounds": a.grounds,
                    "decision": a.decision,
                    "decision_reason": a.decision_reason,
                    "previous_terms": a.previous_terms,
                    "decided_at": a.decided_at.isoformat() if a.decided_at else None,
                }
                for a in penalty.appeals
            ],
        )

    @api_expose("/<int:pk>/earlier", methods=["GET"])
    @protect()
    @safe
    @permission_name("earlier")
    def earlier(self, pk: int) -> Any:
        """The staff member's penalties of the last 12 months and the rule's next tier (review screen).
        ---
        get:
          responses:
            200:
              description: Earlier offences and next tier
        """
        penalty, error = self._case(pk)
        if error is not None:
            return error
        summary = discipline.earlier_offences(db.session, penalty)
        return self.response(
            200,
            id=penalty.id,
            earlier=[
                {
                    "id": p.id,
                    "number": p.number,
                    "status": p.status.value,
                    "clause": p.rule.clause,
                    "tier": p.rule.tier,
                    "sanction": p.sanction.value,
                    "fine_amount": p.fine_amount,
                    "decided_at": p.decided_at.isoformat() if p.decided_at else None,
                }
                for p in summary.earlier
            ],
            next_tier=[
                {
                    "id": r.id,
                    "tier": r.tier,
                    "clause": r.clause,
                    "description": r.description,
                    "sanction": r.sanction.value,
                    "fine_min": r.fine_min,
                    "fine_max": r.fine_max,
                    "score_deduction": r.score_deduction,
                }
                for r in summary.next_rules
            ],
            suggested_tier=summary.suggested_tier,
        )

    @api_expose("/<int:pk>/notice.pdf", methods=["GET"])
    @protect()
    @safe
    @permission_name("notice")
    def notice(self, pk: int) -> Any:
        """The issued 处罚通知书 (stored bytes); 409 before it is issued. ``?inline=1`` to print.
        ---
        get:
          responses:
            200:
              description: The PDF
            409:
              description: No notice issued yet
        """
        penalty, error = self._case(pk)
        if error is not None:
            return error
        doc = notices.current_notice(db.session, penalty)
        if doc is None:
            return self.response(409, message=_("No notice has been issued for this penalty yet."))
        return send_document(doc, inline=_inline())

    @api_expose("/<int:pk>/documents", methods=["GET"])
    @protect()
    @safe
    @permission_name("documents")
    def documents(self, pk: int) -> Any:
        """Every document issued for the case, superseded versions included.
        ---
        get:
          responses:
            200:
              description: Documents, oldest first
        """
        penalty, error = self._case(pk)
        if error is not None:
            return error
        rows = db.session.scalars(
            select(Document).where(Document.penalty_id == penalty.id).order_by(Document.issued_at, Document.id)
        ).all()
        return self.response(200, id=penalty.id, result=[document_json(d) for d in rows])

    @api_expose("/<int:pk>/circular", methods=["POST"])
    @protect()
    @safe
    @permission_name("circular")
    def circular(self, pk: int) -> Any:
        """Issue the company-wide 通报 of this penalty (人事行政经理).
        ---
        post:
          responses:
            201:
              description: The circular
        """
        penalty, error = self._case(pk)
        if error is not None:
            return error
        if not self.appbuilder.sm.has_access("can_add", "Document"):
            return self.response_403()
        try:
            doc = notices.issue_penalty_circular(db.session, penalty, current_principal())
            db.session.commit()
        except lifecycle.TransitionError as exc:
            db.session.rollback()
            return _error_response(self, exc)
        return self.response(201, id=doc.id, result=document_json(doc))

    @api_expose("/notices.pdf", methods=["POST"])
    @protect()
    @safe
    @permission_name("notices")
    def notices(self) -> Any:
        """Batch print: ``{"ids": [..]}`` -> the current notices of those penalties in one PDF.
        ---
        post:
          responses:
            200:
              description: One PDF
            409:
              description: None of them has an issued notice
        """
        body = request.json if request.is_json and isinstance(request.json, dict) else {}
        ids = body.get("ids") or request.form.getlist("ids")
        if not isinstance(ids, list):
            return self.response_400(message=_("Give the penalties as a list of ids."))
        batch = notices.batch_notices(db.session, ids, current_principal())
        if not batch.included:
            return self.response(
                409, message=_("None of the selected penalties has an issued notice."), skipped=batch.skipped
            )
        response = pdf_response(batch.pdf, f"处罚通知书-{len(batch.included)}份.pdf", inline=True)
        response.headers["X-Included"] = ",".join(batch.included)
        response.headers["X-Skipped"] = ",".join(batch.skipped)
        return response


class LedgerApi(ApiConventions, BaseApi):
    """``/api/v1/penalty/ledger`` and ``ledger.xlsx``: the monthly ledger (人事行政经理, 总经理)."""

    resource_name = "ledger"
    route_base = "/api/v1/penalty"
    class_permission_name = "Ledger"
    method_permission_name = DISCIPLINE_PERMS
    allow_browser_login = True
    openapi_spec_tag = "Penalty ledger"

    def _month(self) -> Any:
        return ledger.parse_month(request.args.get("month") or format_local(utcnow(), "%Y-%m"))

    @api_expose("/ledger", methods=["GET"])
    @protect()
    @safe
    @permission_name("ledger")
    def ledger(self) -> Any:
        """Fines, points and sanctions of ``?month=YYYY-MM`` per staff and department.
        ---
        get:
          responses:
            200:
              description: The ledger
        """
        try:
            month = self._month()
        except ValueError as exc:
            return self.response_400(message=str(exc))
        return self.response(200, **ledger.ledger(db.session, month, current_principal()))

    @api_expose("/ledger.xlsx", methods=["GET"])
    @protect()
    @safe
    @permission_name("ledger_xlsx")
    def ledger_xlsx(self) -> Any:
        """The ledger of ``?month=YYYY-MM`` as an Excel workbook for payroll.
        ---
        get:
          responses:
            200:
              description: The workbook
        """
        import io

        try:
            month = self._month()
        except ValueError as exc:
            return self.response_400(message=str(exc))
        data = ledger.ledger(db.session, month, current_principal())
        return send_file(
            io.BytesIO(ledger.ledger_xlsx(data)),
            mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            as_attachment=True,
            download_name=f"处罚台账-{month:%Y-%m}.xlsx",
            max_age=0,
        )


class DocumentApi(PortalApi):
    """``/api/v1/document/``: issued documents (scoped), their stored bytes, and issuing circulars."""

    resource_name = "document"
    datamodel = SQLAInterface(Document)
    class_permission_name = "Document"
    method_permission_name = DISCIPLINE_PERMS
    base_filters = SCOPED
    base_permissions = ["can_read", "can_add"]
    include_route_methods = {"get", "get_list", "info", "download", "monthly_circular", "lookup"}
    list_columns = show_columns = [
        "id",
        "kind",
        "number",
        "title",
        "version",
        "supersedes_id",
        "superseded_at",
        "penalty_id",
        "complaint_id",
        "period",
        "filename",
        "size",
        "sha256",
        "issued_at",
        "issued_by.id",
        "issued_by.username",
    ]
    search_columns = ["kind", "number", "title", "period", "penalty", "complaint", "issued_at", "superseded_at"]
    order_columns = ["number", "issued_at", "kind"]
    base_order = ("issued_at", "desc")
    lookup_columns = ("number", "title")
    lookup_order = "id"

    @api_expose("/<int:pk>/download", methods=["GET"])
    @protect()
    @safe
    @permission_name("download")
    def download(self, pk: int) -> Any:
        """The stored PDF of an issued document (``?inline=1`` to open in the browser).
        ---
        get:
          responses:
            200:
              description: The PDF
        """
        doc = self.datamodel.get(pk, self._base_filters)
        if doc is None:
            return self.response_404()
        return send_document(doc, inline=_inline())

    @api_expose("/circular", methods=["POST"])
    @protect()
    @safe
    @permission_name("monthly_circular")
    def monthly_circular(self) -> Any:
        """Issue the month's 通报 of penalties and commendations: ``{"month": "2026-11"}``.
        ---
        post:
          responses:
            201:
              description: The circular
        """
        if not self.appbuilder.sm.has_access("can_add", "Document"):
            return self.response_403()
        body = request.json if request.is_json and isinstance(request.json, dict) else {}
        try:
            month = ledger.parse_month(body.get("month"))
        except ValueError as exc:
            return self.response(422, message={"month": [str(exc)]})
        try:
            doc = notices.issue_monthly_circular(db.session, month, current_principal())
            db.session.commit()
        except lifecycle.TransitionError as exc:
            db.session.rollback()
            return _error_response(self, exc)
        return self.response(201, id=doc.id, result=document_json(doc))


class ComplaintRecordFormApi(ApiConventions, BaseApi):
    """``/api/v1/complaint/<id>/record_form.pdf``: the 客户投诉记录表 of a case (complaint scope)."""

    resource_name = "complaint_record_form"
    route_base = "/api/v1/complaint"
    class_permission_name = "Complaint"
    method_permission_name = DISCIPLINE_PERMS
    allow_browser_login = True
    openapi_spec_tag = "Complaint"

    @api_expose("/<int:pk>/record_form.pdf", methods=["GET"])
    @protect()
    @safe
    @permission_name("record_form")
    def record_form(self, pk: int) -> Any:
        """The case file printed as the policy's form; stored once the case is archived.
        ---
        get:
          responses:
            200:
              description: The PDF
            403:
              description: Outside the caller's scope
        """
        complaint, error = self._scoped(pk)
        if error is not None:
            return error
        user = current_user()
        hide = current_viewer().mode(complaint.customer_id) == privacy.HIDE
        pdf, stored = record_form.record_form_pdf(db.session, complaint, user.id if user else None, hide_customer=hide)
        name = stored.filename if stored is not None else f"客户投诉记录表-{complaint.number}.pdf"
        return pdf_response(pdf, name, inline=_inline(), sha256=stored.sha256 if stored is not None else None)

    def _scoped(self, pk: int) -> tuple[Optional[Complaint], Any]:
        complaint = db.session.scalars(
            select(Complaint).where(Complaint.id == pk, scope.criterion(Complaint, current_principal()))
        ).first()
        if complaint is None:
            if db.session.get(Complaint, pk) is not None:
                return None, self.response(403, message=_("This complaint is outside your scope."))
            return None, self.response_404()
        return complaint, None

    @api_expose("/<int:pk>/regulator_reply", methods=["POST"])
    @protect()
    @safe
    @permission_name("regulator_reply")
    def regulator_reply(self, pk: int) -> Any:
        """Review the reply and issue the formal reply report to the transferring regulator (人事行政经理).
        ---
        post:
          responses:
            201:
              description: The report was issued (a new one supersedes the previous)
            403:
              description: Outside the caller's scope or role
            409:
              description: Not a regulator case, or not replied yet
        """
        complaint, error = self._scoped(pk)
        if error is not None:
            return error
        try:
            doc = regulator.issue_regulator_reply(db.session, complaint, current_principal())
            db.session.commit()
        except lifecycle.TransitionError as exc:
            db.session.rollback()
            return transition_error_response(self, exc)
        return self.response(201, id=doc.id, result=document_json(doc))

    @api_expose("/<int:pk>/regulator_reply.pdf", methods=["GET"])
    @protect()
    @safe
    @permission_name("regulator_reply_pdf")
    def regulator_reply_pdf(self, pk: int) -> Any:
        """The current reply report to the regulator, as issued.
        ---
        get:
          responses:
            200:
              description: The PDF
            403:
              description: Outside the caller's scope
            404:
              description: No report issued yet
        """
        from app.documents import render as documents

        complaint, error = self._scoped(pk)
        if error is not None:
            return error
        doc = documents.current_document(db.session, "regulator_reply", complaint_id=complaint.id)
        if doc is None:
            return self.response(404, message=_("No reply report has been issued for this case yet."))
        return pdf_response(doc.content, doc.filename, inline=_inline(), sha256=doc.sha256)


class CommendationApi(ValidatingApi, PortalApi):
    resource_name = "commendation"
    datamodel = SQLAInterface(Commendation)
    class_permission_name = "Commendation"
    method_permission_name = DISCIPLINE_PERMS
    base_filters = SCOPED
    list_columns = show_columns = [
        "id",
        "commended_on",
        "staff.id",
        "staff.name",
        "department.id",
        "department.name",
        "source",
        "content",
        "offsets_complaint",
        "evidence_filename",
        "recorded_by.id",
        "recorded_at",
    ]
    add_columns = edit_columns = ["staff", "commended_on", "source", "content", "offsets_complaint"]
    add_query_rel_fields = edit_query_rel_fields = {"staff": SCOPED}
    search_columns = ["commended_on", "staff", "department", "source", "offsets_complaint"]
    order_columns = ["commended_on"]
    base_order = ("commended_on", "desc")
    lookup_columns = ("content",)
    lookup_order = "id"

    def pre_add(self, item: Commendation) -> None:
        discipline.check_commendation(item)
        user = current_user()
        if item.recorded_by_id is None:
            item.recorded_by_id = user.id if user else None

    pre_update = pre_add

    @api_expose("/<int:pk>/evidence", methods=["GET"])
    @protect()
    @safe
    @permission_name("evidence")
    def evidence(self, pk: int) -> Any:
        """The evidence file of a commendation.
        ---
        get:
          responses:
            200:
              description: The file
        """
        item = self.datamodel.get(pk, self._base_filters)
        if item is None or item.evidence is None:
            return self.response_404()
        import io

        return send_file(
            io.BytesIO(item.evidence),
            mimetype=item.evidence_content_type or "application/octet-stream",
            as_attachment=True,
            download_name=item.evidence_filename or "evidence",
            max_age=0,
        )


def register_discipline(appbuilder: Any) -> None:
    """Screens and resources of discipline, under their own menu."""
    menu, menu_label = "Discipline", _l("Discipline")
    appbuilder.add_view(
        PenaltyView,
        "Penalties",
        icon="fa-gavel",
        label=_l("Penalties"),
        category=menu,
        category_label=menu_label,
        category_icon="fa-balance-scale",
    )
    appbuilder.add_view(
        DocumentView,
        "Issued documents",
        icon="fa-file-pdf-o",
        label=_l("Issued documents"),
        category=menu,
        category_label=menu_label,
    )
    appbuilder.add_view(
        CommendationView,
        "Commendations",
        icon="fa-thumbs-up",
        label=_l("Commendations"),
        category=menu,
        category_label=menu_label,
    )
    appbuilder.add_view(
        PolicyPresetView,
        "Policy presets",
        icon="fa-sliders",
        label=_l("Policy presets"),
        category="Rules",
        category_label=_l("Rules"),
    )
    appbuilder.add_api(PolicyPresetApi)
    appbuilder.add_view(
        LedgerView,
        "Penalty ledger",
        icon="fa-table",
        label=_l("Penalty ledger"),
        category=menu,
        category_label=menu_label,
    )
    appbuilder.add_view(
        PenaltyRuleView,
        "Penalty rules",
        icon="fa-list-ol",
        label=_l("Penalty rules"),
        category=menu,
        category_label=menu_label,
    )
    for api in (PenaltyRuleApi, PenaltyApi, LedgerApi, DocumentApi, ComplaintRecordFormApi, CommendationApi):
        appbuilder.add_api(api)


# --- Dashboards ---------------------------------------------------------------------------------

from app.quality import analytics  # noqa: E402  (kept beside the views that use it)
from app.quality.analytics import Chart  # noqa: E402

COMPANY_CHARTS = [
    Chart("trend", _l("Complaints by period"), "period", "count", "bar", drill="received", compare_previous=True),
    Chart("by_department", _l("By department"), "department", "count", "bar", drill="department"),
    Chart("by_unit", _l("By unit (sub-units rolled up)"), "unit", "count", "bar"),
    Chart("by_category", _l("By category"), "category", "count", "pie", drill="category"),
    Chart("by_channel", _l("By channel"), "channel", "count", "pie", drill="channel"),
    Chart("by_level", _l("By level"), "level", "count", "bar", drill="level"),
    Chart("timeliness", _l("On-time rate per stage"), "stage", "timeliness", "bar"),
    Chart("satisfaction", _l("Satisfaction rate (%)"), "period", "rate:satisfaction_rate", "line"),
    Chart("valid_rate", _l("Valid-complaint rate (%)"), "period", "rate:valid_rate", "line"),
    Chart("repeat_rate", _l("Repeat-complaint rate (%)"), "period", "rate:repeat_rate", "line"),
    Chart("open_age", _l("Open cases by age"), "age", "open", "bar", drill="age"),
    Chart("ranking", _l("Department ranking (service index)"), "ranking", "index", "bar", drill="department"),
    Chart("penalties_by_month", _l("Penalties and fines by month"), "penalty_month", "penalties"),
    Chart("penalties_by_department", _l("Penalties and fines by department"), "penalty_department", "penalties"),
    Chart("grade_trend", _l("Department grade trend (score)"), "grade_run", "score", "line"),
]
COMPANY_ONLY_CHARTS = ("by_department", "by_unit", "ranking", "penalties_by_department")
DEPARTMENT_CHARTS = [c for c in COMPANY_CHARTS if c.name not in COMPANY_ONLY_CHARTS]
# A unit head's dashboard adds its units' figures, sub-units rolled up.
UNIT_HEAD_CHARTS = [*DEPARTMENT_CHARTS, *(c for c in COMPANY_CHARTS if c.name == "by_unit")]


def dashboard_scope(principal: scope.Principal) -> tuple[Optional[list[int]], list[Chart]]:
    """Which departments a dashboard covers for the caller (None: the company) and its charts."""
    if principal.is_company_wide:
        return None, COMPANY_CHARTS
    if principal.is_department_head:
        return sorted(principal.department_ids), UNIT_HEAD_CHARTS if principal.unit_ids else DEPARTMENT_CHARTS
    return [], []


def dashboard_payload(args: Any) -> dict[str, Any]:
    from app import settings as portal_settings

    principal = current_principal()
    period = analytics.parse_period(args.get("period"), args.get("at"))
    departments, charts = dashboard_scope(principal)
    if principal.is_customer_service and not charts:
        return analytics_intake_dashboard(period, principal)
    if departments == [] and not charts:
        return {"period": {"kind": period.kind, "label": period.label}, "charts": {}, "kpis": {}, "denied": True}
    include_basic = bool(portal_settings.get(db.session, "kpi.satisfaction_includes_basic"))
    from app.models import DepartmentGrade

    # Penalty and grade charts read those tables live, scoped as their own screens are.
    scopes = {
        "penalty": scope.criterion(Penalty, principal),
        "grade": scope.criterion(DepartmentGrade, principal),
    }
    payload = analytics.dashboard(
        db.session,
        charts,
        period,
        departments,
        scope.criterion(Complaint, principal),
        include_basic,
        scopes=scopes,
        units=None if departments is None else principal.unit_ids,
    )
    db.session.commit()  # the aggregate rows refreshed on the way
    payload["scope"] = "company" if departments is None else ("unit" if principal.unit_ids else "department")
    # Counted apart from complaints: 不满工单 settled on the spot, and 二次投诉 per department.
    start, end = period.bounds()
    payload["grievances"] = grievances.grievance_counts(db.session, start, end, scope.criterion(Grievance, principal))
    payload["re_complaints"] = grievances.recomplaint_counts(
        db.session, start, end, scope.criterion(Complaint, principal)
    )
    # Responsibility disputes (责任异议) raised by each department, with their rulings.
    from app.complaints import disputes

    payload["disputes"] = disputes.dispute_counts(db.session, start, end, departments)
    return payload


def analytics_intake_dashboard(period: Any, principal: scope.Principal) -> dict[str, Any]:
    """客服: what it registered (live, small), by period, channel and status."""
    criterion = scope.criterion(Complaint, principal)
    periods = analytics.trend_periods(period)
    start, _ = periods[0].bounds()
    _, end = period.bounds()
    rows = db.session.execute(
        select(Complaint.received_at, Complaint.channel_id, Complaint.status).where(
            criterion, Complaint.received_at >= start, Complaint.received_at < end
        )
    ).all()
    channel_names = analytics.names(db.session, Channel)
    by_period = [0] * len(periods)
    by_channel: dict[str, int] = {}
    by_status: dict[str, int] = {}
    p_start, p_end = period.bounds()
    for received_at, channel_id, status in rows:
        local = received_at.astimezone(analytics.LOCAL_TZ).date()
        for i, p in enumerate(periods):
            if p.start <= local < p.end:
                by_period[i] += 1
        if p_start <= received_at < p_end:
            by_channel[str(channel_id)] = by_channel.get(str(channel_id), 0) + 1
            key = getattr(status, "value", status)
            by_status[key] = by_status.get(key, 0) + 1
    return {
        "period": {
            "kind": period.kind,
            "start": period.start.isoformat(),
            "end": period.end.isoformat(),
            "label": period.label,
        },
        "scope": "mine",
        "kpis": {"received": sum(by_channel.values())},
        "open": analytics.open_counts(db.session, criterion),
        "charts": {
            "trend": {
                "title": str(_l("Complaints I registered")),
                "kind": "bar",
                "drill": "received",
                "labels": [p.short for p in periods],
                "series": [{"name": str(_l("This period")), "data": by_period}],
                "ranges": [{"start": p.start.isoformat(), "end": p.end.isoformat()} for p in periods],
            },
            "by_channel": {
                "title": str(_l("By channel")),
                "kind": "pie",
                "drill": "channel",
                "items": [
                    {"id": int(k), "label": channel_names.get(k, k), "value": v}
                    for k, v in sorted(by_channel.items(), key=lambda kv: -kv[1])
                ],
            },
            "by_status": {
                "title": str(_l("By status")),
                "kind": "bar",
                "drill": "status",
                "items": [{"id": k, "label": labels.status_label(k), "value": v} for k, v in by_status.items()],
            },
        },
        "chart_order": ["trend", "by_channel", "by_status"],
    }


class DashboardView(BaseView):
    """The role's dashboard: KPI cards and ECharts charts, data from /api/v1/dashboard/data."""

    route_base = "/dashboard"
    class_permission_name = "Dashboard"
    method_permission_name = {"index": "read"}
    default_view = "index"

    @expose("/")
    @has_access
    def index(self) -> Any:
        return self.render_template(
            "dashboard.html",
            period_kinds=[
                ("day", _("Day")),
                ("week", _("Week")),
                ("month", _("Month")),
                ("quarter", _("Quarter")),
                ("year", _("Year")),
            ],
            kind=request.args.get("period", "month"),
            at=request.args.get("at", ""),
        )


class DashboardApi(ApiConventions, BaseApi):
    resource_name = "dashboard"
    class_permission_name = "Dashboard"
    method_permission_name = {"data": "read"}
    allow_browser_login = True

    @api_expose("/data", methods=["GET"])
    @protect()
    @safe
    def data(self) -> Any:
        """Dashboard figures for the caller's scope: ``?period=day|week|month|quarter|year&at=2026-11``.
        ---
        get:
          parameters:
          - in: query
            name: period
            schema: {type: string, enum: [day, week, month, quarter, year]}
          - in: query
            name: at
            schema: {type: string}
          responses:
            200:
              description: KPIs with numerators and denominators, and chart series
        """
        return self.response(200, **dashboard_payload(request.args))


def register_dashboards(appbuilder: Any) -> None:
    appbuilder.add_view(DashboardView, "Dashboard", icon="fa-bar-chart", label=_l("Dashboard"), href="/dashboard/")
    appbuilder.add_api(DashboardApi)


# --- Follow-up records and customer counts ------------------------------------------------------


class FollowUpView(PortalModelView):
    """回访 records: who called, when, how, the satisfaction and the customer's words (scoped like cases)."""

    datamodel = SQLAInterface(FollowUp)
    class_permission_name = "Complaint"
    base_filters = SCOPED
    base_permissions = ["can_read"]
    list_title = _l("Follow-up visits")
    show_title = _l("Follow-up visit")
    list_columns = ["called_at", "complaint", "called_by", "method", "satisfaction", "customer_words"]
    show_columns = ["called_at", "complaint", "called_by", "method", "satisfaction", "customer_words", "note"]
    search_columns = ["called_at", "satisfaction", "method"]
    base_order = ("called_at", "desc")
    label_columns = {
        "called_at": _l("Called at"),
        "complaint": _l("Complaint"),
        "called_by": _l("Called by"),
        "method": _l("How the customer was contacted"),
        "satisfaction": _l("Satisfaction"),
        "customer_words": _l("What the customer said"),
        "note": _l("Follow-up record"),
    }
    formatters_columns = {
        "method": lambda v: labels.label(labels.FOLLOW_UP_METHOD, v),
        "satisfaction": lambda v: labels.label(labels.SATISFACTION, v),
        "called_by": lambda u: u.first_name if u is not None else "",
    }


class CustomerCountView(PortalModelView):
    """Customers served per department and month: the denominator of the complaint rate."""

    datamodel = SQLAInterface(CustomerCount)
    class_permission_name = "Department"
    base_filters = SCOPED
    list_title = _l("Customers served")
    show_title = add_title = edit_title = _l("Customers served")
    list_columns = ["month", "department", "customers", "note"]
    add_columns = edit_columns = show_columns = ["department", "month", "customers", "note"]
    search_columns = ["department", "month"]
    base_order = ("month", "desc")
    label_columns = {
        "month": _l("Month (first day)"),
        "department": _l("Department"),
        "customers": _l("Customers served"),
        "note": _l("Note"),
    }

    def pre_add(self, item: CustomerCount) -> None:
        if item.month is not None:
            item.month = item.month.replace(day=1)
        if item.customers is None or item.customers < 0:
            raise ValueError(str(_l("Please enter a whole number greater than 0.")))

    pre_update = pre_add


def register_analytics_views(appbuilder: Any) -> None:
    appbuilder.add_view(
        FollowUpView,
        "Follow-up visits",
        icon="fa-phone-square",
        label=_l("Follow-up visits"),
        category="Complaint handling",
        category_label=_l("Complaint handling"),
    )
    appbuilder.add_view(
        CustomerCountView,
        "Customers served",
        icon="fa-users",
        label=_l("Customers served"),
        category="Organisation",
        category_label=_l("Organisation"),
    )


# --- Periodic reports, improvement measures, department grading ----------------------------------

from app.models import DepartmentGrade, DepartmentMeasure, GradingRun, Report  # noqa: E402
from app.quality import (
    assessment,
    grading,
    reports,  # noqa: E402
)

QUALITY_PERMS = {
    **MODEL_PERMS,
    "pdf": "read",
    "xlsx": "read",
    "generate": "generate",
    "object": "object",
    "decide": "confirm",
    "confirm": "confirm",
    "circular": "read",
}
PERIOD_KIND_LABELS = {"week": _l("Week"), "month": _l("Month")}


def _rate_text(r: Any) -> str:
    if not r or r.get("value") is None:
        return "—"
    return f"{r['value'] * 100:.1f}% ({r['numerator']}/{r['denominator']})"


def _report_summary(summary: Any) -> str:
    if not summary:
        return ""
    change = summary.get("received_change")
    text = str(summary.get("received", 0))
    return text if change is None else f"{text} ({change * 100:+.1f}%)"


def xlsx_response(data: bytes, filename: str, sha256: Optional[str] = None) -> Any:
    import io

    response = send_file(
        io.BytesIO(data),
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        as_attachment=True,
        download_name=filename,
        max_age=0,
    )
    response.headers["Cache-Control"] = "private, no-store"
    if sha256:
        response.headers["X-Content-SHA256"] = sha256
    return response


def _report_xlsx(report: Report) -> Any:
    kind = "周报" if report.kind == "week" else "月度分析"
    return xlsx_response(report.xlsx, f"客户投诉{kind}-{report.label}.xlsx", report.xlsx_sha256)


def _parse_report_period(kind: Any, at: Any) -> analytics.Period:
    """The finished week or month containing ``at`` (a date, or YYYY-MM for a month)."""
    if kind not in reports.KINDS:
        raise ValueError(str(_l("Please choose a week or a month.")))
    period = analytics.parse_period(kind, at)
    if not at or period.end > utcnow().astimezone(analytics.LOCAL_TZ).date():
        raise ValueError(str(_l("Reports are made for a period that has ended.")))
    return period


class ReportView(PortalModelView):
    """Weekly and monthly analysis reports: list, headline figures, PDF and Excel (人事行政经理, 总经理)."""

    datamodel = SQLAInterface(Report)
    class_permission_name = "Report"
    method_permission_name = QUALITY_PERMS
    base_filters = SCOPED
    base_permissions = ["can_read", "can_generate"]
    list_template = "report/list.html"
    show_template = "report/show.html"
    list_title = _l("Analysis reports")
    show_title = _l("Analysis report")
    list_columns = ["kind", "label", "summary", "document", "generated_at", "sent_at"]
    show_columns = ["kind", "label", "period_start", "period_end", "document", "generated_at", "sent_at"]
    search_columns = ["kind", "period_start", "generated_at"]
    order_columns = ["period_start", "generated_at"]
    base_order = ("period_start", "desc")
    label_columns = {
        "kind": _l("Kind"),
        "label": _l("Period"),
        "summary": _l("Complaints (change)"),
        "document": _l("Document number"),
        "period_start": _l("First day"),
        "period_end": _l("Day after the last"),
        "generated_at": _l("Generated at"),
        "sent_at": _l("Sent at"),
    }
    formatters_columns = {
        "kind": lambda v: labels.label(reports.KIND_LABELS, v),
        "summary": _report_summary,
    }

    def render_template(self, template: str, **kwargs: Any) -> Any:
        if template == self.list_template:
            kwargs["can_generate"] = self.appbuilder.sm.has_access("can_generate", "Report")
        return super().render_template(template, **kwargs)

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk: Any) -> Any:
        report = self.datamodel.get(pk, self._base_filters)
        if report is None:
            abort(404)
        return self.render_template(
            self.show_template,
            pk=pk,
            title=self.show_title,
            widgets=self._show(pk),
            related_views=self._related_views,
            report=report,
            summary=report.summary or {},
            rate_text=_rate_text,
            kind_label=labels.label(reports.KIND_LABELS, report.kind),
            format_local=format_local,
        )

    @expose("/pdf/<int:pk>", methods=["GET"])
    @has_access
    def pdf(self, pk: int) -> Any:
        report = self.datamodel.get(pk, self._base_filters)
        if report is None or report.document is None:
            abort(404)
        return send_document(report.document, inline=_inline())

    @expose("/xlsx/<int:pk>", methods=["GET"])
    @has_access
    def xlsx(self, pk: int) -> Any:
        report = self.datamodel.get(pk, self._base_filters)
        if report is None or report.xlsx is None:
            abort(404)
        return _report_xlsx(report)

    @expose("/generate", methods=["POST"])
    @has_access
    def generate(self) -> Any:
        """Generate (or regenerate) the report of a finished week or month now."""
        try:
            period = _parse_report_period(request.form.get("kind"), request.form.get("at"))
        except ValueError as exc:
            flash(str(exc), "danger")
            return redirect(url_for("ReportView.list"))
        user = current_user()
        report = reports.generate(db.session, period, by_user_id=user.id if user else None)
        reports.send(db.session, report)
        db.session.commit()
        flash(_("Report %(number)s generated.", number=report.document.number), "success")
        return redirect(url_for("ReportView.show", pk=report.id))


class ReportApi(PortalApi):
    """``/api/v1/report/``: the analysis reports, their PDF and workbook, and generating one."""

    resource_name = "report"
    datamodel = SQLAInterface(Report)
    class_permission_name = "Report"
    method_permission_name = QUALITY_PERMS
    base_filters = SCOPED
    base_permissions = ["can_read", "can_generate"]
    include_route_methods = {"get", "get_list", "info", "pdf", "xlsx", "generate", "lookup"}
    list_columns = show_columns = [
        "id",
        "kind",
        "label",
        "period_start",
        "period_end",
        "summary",
        "document_id",
        "document.number",
        "xlsx_size",
        "xlsx_sha256",
        "generated_at",
        "sent_at",
    ]
    search_columns = ["kind", "period_start", "generated_at"]
    order_columns = ["period_start", "generated_at"]
    base_order = ("period_start", "desc")
    lookup_columns = ("label",)
    lookup_order = "period_start"

    @api_expose("/<int:pk>/pdf", methods=["GET"])
    @protect()
    @safe
    @permission_name("pdf")
    def pdf(self, pk: int) -> Any:
        """The report's stored PDF (``?inline=1`` to open it in the browser).
        ---
        get:
          responses:
            200:
              description: The PDF
        """
        report = self.datamodel.get(pk, self._base_filters)
        if report is None or report.document is None:
            return self.response_404()
        return send_document(report.document, inline=_inline())

    @api_expose("/<int:pk>/xlsx", methods=["GET"])
    @protect()
    @safe
    @permission_name("xlsx")
    def xlsx(self, pk: int) -> Any:
        """The report's stored Excel workbook.
        ---
        get:
          responses:
            200:
              description: The workbook
        """
        report = self.datamodel.get(pk, self._base_filters)
        if report is None or report.xlsx is None:
            return self.response_404()
        return _report_xlsx(report)

    @api_expose("/generate", methods=["POST"])
    @protect()
    @safe
    @permission_name("generate")
    def generate(self) -> Any:
        """Generate (or regenerate) a finished period's report: ``{"kind": "week", "at": "2026-11-16"}``.
        ---
        post:
          responses:
            201:
              description: The report
        """
        body = request.json if request.is_json and isinstance(request.json, dict) else {}
        try:
            period = _parse_report_period(body.get("kind"), body.get("at"))
        except ValueError as exc:
            return self.response(422, message={"at": [str(exc)]})
        user = current_user()
        report = reports.generate(db.session, period, by_user_id=user.id if user else None)
        reports.send(db.session, report)
        db.session.commit()
        return self.response(201, id=report.id, document=report.document.number, label=report.label)


class DepartmentMeasureView(PortalModelView):
    """Improvement measures (整改措施): heads write their department's, 人事行政经理 and 总经理 read all."""

    datamodel = SQLAInterface(DepartmentMeasure)
    class_permission_name = "DepartmentMeasure"
    base_filters = SCOPED
    base_permissions = ["can_read", "can_add", "can_edit"]
    list_title = _l("Improvement measures")
    show_title = add_title = edit_title = _l("Improvement measures")
    list_columns = ["period_kind", "period_start", "department", "text", "author", "updated_at"]
    add_columns = edit_columns = ["department", "period_kind", "period_start", "text"]
    show_columns = ["department", "period_kind", "period_start", "text", "author", "updated_at"]
    search_columns = ["department", "period_kind", "period_start"]
    order_columns = ["period_start", "updated_at"]
    base_order = ("period_start", "desc")
    label_columns = {
        "department": _l("Department"),
        "period_kind": _l("Period"),
        "period_start": _l("Week or month (any day in it)"),
        "text": _l("Improvement measures"),
        "author": _l("Written by"),
        "updated_at": _l("Updated at"),
    }
    formatters_columns = {
        "period_kind": lambda v: labels.label(PERIOD_KIND_LABELS, v),
        "author": lambda u: u.first_name if u is not None else "",
    }
    add_form_query_rel_fields = edit_form_query_rel_fields = search_form_query_rel_fields = {"department": SCOPED}
    add_form_extra_fields = edit_form_extra_fields = {
        "period_kind": _choice_field(_l("Period"), list(PERIOD_KIND_LABELS.items())),
    }
    description_columns = {
        "period_start": _l("The measures are printed in the weekly or monthly report of this period."),
    }

    def pre_add(self, item: DepartmentMeasure) -> None:
        try:
            reports.check_measure(db.session, item, current_principal())
        except (lifecycle.ValidationFailed, lifecycle.TransitionError) as exc:
            raise ValueError(" ".join(_messages(exc))) from exc

    pre_update = pre_add


class DepartmentMeasureApi(PortalApi):
    resource_name = "measure"
    datamodel = SQLAInterface(DepartmentMeasure)
    class_permission_name = "DepartmentMeasure"
    base_filters = SCOPED
    base_permissions = ["can_read", "can_add", "can_edit"]
    include_route_methods = {"get", "get_list", "info", "post", "put", "lookup"}
    list_columns = show_columns = [
        "id",
        "department.id",
        "department.name",
        "period_kind",
        "period_start",
        "text",
        "author.id",
        "updated_at",
    ]
    add_columns = edit_columns = ["department", "period_kind", "period_start", "text"]
    add_query_rel_fields = edit_query_rel_fields = {"department": SCOPED}
    search_columns = ["department", "period_kind", "period_start"]
    order_columns = ["period_start", "updated_at"]
    base_order = ("period_start", "desc")
    lookup_columns = ("text",)
    lookup_order = "id"

    def pre_add(self, item: DepartmentMeasure) -> None:
        reports.check_measure(db.session, item, current_principal())

    pre_update = pre_add

    def post_headless(self) -> Any:
        try:
            return super().post_headless()
        except lifecycle.ValidationFailed as exc:
            db.session.rollback()
            return self.response_422(message=exc.errors)
        except lifecycle.TransitionError as exc:
            db.session.rollback()
            return _error_response(self, exc)

    def put_headless(self, pk: Any) -> Any:
        try:
            return super().put_headless(pk)
        except lifecycle.ValidationFailed as exc:
            db.session.rollback()
            return self.response_422(message=exc.errors)
        except lifecycle.TransitionError as exc:
            db.session.rollback()
            return _error_response(self, exc)


_GRADE_LABELS = {
    "run": _l("Period"),
    "department": _l("Department"),
    "score": _l("Score"),
    "grade": _l("Computed grade"),
    "final_grade": _l("Final grade"),
    "capped_by": _l("Capped by"),
    "objection": _l("Objection"),
    "objected_by": _l("Objected by"),
    "objected_at": _l("Objected at"),
    "note": _l("Reason of the final grade"),
    "decided_at": _l("Decided at"),
}


def _grade_text(code: Any) -> str:
    return grading.grade_label(code) if code else "—"


def _caps_text(caps: Any) -> str:
    if not caps:
        return ""
    level_names = dict(db.session.execute(select(Level.code, Level.name)).all())
    return "; ".join(grading.cap_label(c, level_names) for c in caps)


def grade_json(g: DepartmentGrade) -> dict[str, Any]:
    return {
        "id": g.id,
        "run_id": g.run_id,
        "period": g.run.label,
        "department_id": g.department_id,
        "department": g.department.name,
        "score": g.score,
        "grade": g.grade,
        "final_grade": g.final_grade,
        "capped_by": g.capped_by or [],
        "components": g.components or {},
        "objection": g.objection,
        "objected_at": g.objected_at.isoformat() if g.objected_at else None,
        "note": g.note,
    }


def _grading_action(api: Any, fn: Any) -> Any:
    """Run a grading step for the API: 200 with the result, 403/409/422 with the reason."""
    try:
        result = fn()
        db.session.commit()
    except lifecycle.ValidationFailed as exc:
        db.session.rollback()
        return api.response_422(message=exc.errors)
    except lifecycle.TransitionError as exc:
        db.session.rollback()
        return _error_response(api, exc)
    return api.response(200, result=result)


def _grading_step(fn: Any, done: Any, back: str, pk: int) -> Any:
    """Run a grading step from a page's form: flash the outcome, back to the page."""
    try:
        fn()
        db.session.commit()
        flash(str(done), "success")
    except (lifecycle.ValidationFailed, lifecycle.TransitionError) as exc:
        db.session.rollback()
        for message in _messages(exc):
            flash(message, "danger")
    return redirect(url_for(back, pk=pk))


class DepartmentGradeView(PortalModelView):
    """Department grades: a head sees its department's, 人事行政经理 and 总经理 every department's."""

    datamodel = SQLAInterface(DepartmentGrade)
    class_permission_name = "Grading"
    method_permission_name = QUALITY_PERMS
    base_filters = SCOPED
    base_permissions = ["can_read", "can_object", "can_confirm"]
    show_template = "grading/grade.html"
    list_title = _l("Department grades")
    show_title = _l("Department grade")
    list_columns = ["run", "department", "score", "grade", "final_grade", "objection"]
    show_columns = list(_GRADE_LABELS)
    search_columns = ["run", "department", "grade", "final_grade"]
    order_columns = ["score"]
    base_order = ("id", "desc")
    label_columns = _GRADE_LABELS
    formatters_columns = {
        "grade": _grade_text,
        "final_grade": _grade_text,
        "capped_by": _caps_text,
        "score": lambda v: f"{v:.1f}",
        "objected_by": lambda u: u.first_name if u is not None else "",
    }
    search_form_query_rel_fields = {"department": SCOPED, "run": SCOPED}

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk: Any) -> Any:
        grade = self.datamodel.get(pk, self._base_filters)
        if grade is None:
            abort(404)
        principal = current_principal()
        now = utcnow()
        sm = self.appbuilder.sm
        return self.render_template(
            self.show_template,
            pk=pk,
            title=self.show_title,
            widgets=self._show(pk),
            related_views=self._related_views,
            grade=grade,
            components=(grade.components or {}).get("components", []),
            figures=(grade.components or {}).get("figures", {}),
            component_label=grading.component_label,
            grade_label=grading.grade_label,
            caps=_caps_text(grade.capped_by),
            can_object=sm.has_access("can_object", "Grading") and assessment.can_object(grade, principal, now),
            can_decide=sm.has_access("can_confirm", "Grading")
            and principal.has_role(penalties.GM)
            and grade.run.status == assessment.PUBLICITY,
            grades=[(code, grading.grade_label(code)) for code in grading.GRADES],
            format_local=format_local,
        )

    @expose("/object/<int:pk>", methods=["POST"])
    @has_access
    def object(self, pk: int) -> Any:
        grade = self.datamodel.get(pk, self._base_filters)
        if grade is None:
            abort(404)
        return _grading_step(
            lambda: assessment.object_to(db.session, grade, current_principal(), request.form.get("reason")),
            _l("Your objection was recorded."),
            "DepartmentGradeView.show",
            pk,
        )

    @expose("/decide/<int:pk>", methods=["POST"])
    @has_access
    def decide(self, pk: int) -> Any:
        grade = self.datamodel.get(pk, self._base_filters)
        if grade is None:
            abort(404)
        return _grading_step(
            lambda: assessment.decide(
                db.session, grade, current_principal(), request.form.get("grade"), request.form.get("note")
            ),
            _l("Final grade set."),
            "DepartmentGradeView.show",
            pk,
        )


class GradingRunView(PortalModelView):
    """Grading runs: the period's grades in 公示, then confirmed by 总经理 and published in a 通报."""

    datamodel = SQLAInterface(GradingRun)
    class_permission_name = "Grading"
    method_permission_name = QUALITY_PERMS
    base_filters = SCOPED
    base_permissions = ["can_read", "can_confirm"]
    show_template = "grading/run.html"
    list_title = _l("Grading runs")
    show_title = _l("Grading run")
    list_columns = ["label", "status", "opened_at", "publicity_until", "confirmed_by", "confirmed_at", "circular"]
    show_columns = list_columns
    search_columns = ["status", "period_start"]
    order_columns = ["opened_at"]
    base_order = ("period_start", "desc")
    label_columns = {
        "label": _l("Period"),
        "status": _l("Status"),
        "opened_at": _l("Opened at"),
        "publicity_until": _l("Publicity until"),
        "confirmed_by": _l("Confirmed by"),
        "confirmed_at": _l("Confirmed at"),
        "circular": _l("Circular"),
    }
    formatters_columns = {
        "status": lambda v: labels.label(assessment.STATUS_LABELS, v),
        "confirmed_by": lambda u: u.first_name if u is not None else "",
    }

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk: Any) -> Any:
        run = self.datamodel.get(pk, self._base_filters)
        if run is None:
            abort(404)
        principal = current_principal()
        now = utcnow()
        grades = db.session.scalars(
            select(DepartmentGrade)
            .where(DepartmentGrade.run_id == run.id, scope.criterion(DepartmentGrade, principal))
            .order_by(DepartmentGrade.score.desc(), DepartmentGrade.id)
        ).all()
        return self.render_template(
            self.show_template,
            pk=pk,
            title=self.show_title,
            widgets=self._show(pk),
            related_views=self._related_views,
            run=run,
            grades=grades,
            grade_label=grading.grade_label,
            caps_text=_caps_text,
            status_label=labels.label(assessment.STATUS_LABELS, run.status),
            in_publicity=assessment.in_publicity(run, now),
            can_confirm=self.appbuilder.sm.has_access("can_confirm", "Grading")
            and principal.has_role(penalties.GM)
            and run.status == assessment.PUBLICITY
            and now >= run.publicity_until,
            format_local=format_local,
        )

    @expose("/confirm/<int:pk>", methods=["POST"])
    @has_access
    def confirm(self, pk: int) -> Any:
        run = self.datamodel.get(pk, self._base_filters)
        if run is None:
            abort(404)
        return _grading_step(
            lambda: assessment.confirm(db.session, run, current_principal()),
            _l("Grades confirmed and the circular issued."),
            "GradingRunView.show",
            pk,
        )

    @expose("/circular/<int:pk>", methods=["GET"])
    @has_access
    def circular(self, pk: int) -> Any:
        run = self.datamodel.get(pk, self._base_filters)
        if run is None or run.circular is None:
            abort(404)
        return send_document(run.circular, inline=_inline())


class GradingRunApi(PortalApi):
    """``/api/v1/grading/``: grading runs, and 总经理's confirmation after 公示."""

    resource_name = "grading"
    datamodel = SQLAInterface(GradingRun)
    class_permission_name = "Grading"
    method_permission_name = QUALITY_PERMS
    base_filters = SCOPED
    base_permissions = ["can_read", "can_confirm"]
    include_route_methods = {"get", "get_list", "info", "confirm", "lookup"}
    list_columns = show_columns = [
        "id",
        "period_kind",
        "period_start",
        "period_end",
        "label",
        "status",
        "opened_at",
        "publicity_until",
        "confirmed_by.id",
        "confirmed_at",
        "circular_id",
    ]
    search_columns = ["status", "period_start"]
    order_columns = ["period_start"]
    base_order = ("period_start", "desc")
    lookup_columns = ("label",)
    lookup_order = "period_start"

    @api_expose("/<int:pk>/confirm", methods=["POST"])
    @protect()
    @safe
    @permission_name("confirm")
    def confirm(self, pk: int) -> Any:
        """Confirm the run's grades after 公示 and publish them in a 通报 (总经理).
        ---
        post:
          responses:
            200:
              description: The confirmed run
        """
        run = self.datamodel.get(pk, self._base_filters)
        if run is None:
            return self.response_404()

        def step() -> dict[str, Any]:
            done = assessment.confirm(db.session, run, current_principal())
            return {"id": done.id, "status": done.status, "circular": done.circular.number}

        return _grading_action(self, step)


class DepartmentGradeApi(PortalApi):
    """``/api/v1/departmentgrade/``: grades in scope; a head's objection, 总经理's final grade."""

    resource_name = "departmentgrade"
    datamodel = SQLAInterface(DepartmentGrade)
    class_permission_name = "Grading"
    method_permission_name = QUALITY_PERMS
    base_filters = SCOPED
    base_permissions = ["can_read", "can_object", "can_confirm"]
    include_route_methods = {"get", "get_list", "info", "object", "decide", "lookup"}
    list_columns = show_columns = [
        "id",
        "run_id",
        "run.label",
        "department.id",
        "department.name",
        "score",
        "grade",
        "final_grade",
        "capped_by",
        "components",
        "objection",
        "objected_at",
        "note",
    ]
    search_columns = ["run", "department", "grade", "final_grade"]
    order_columns = ["score"]
    base_order = ("id", "desc")
    lookup_columns = ("grade",)
    lookup_order = "id"

    def _grade(self, pk: int) -> Optional[DepartmentGrade]:
        return self.datamodel.get(pk, self._base_filters)

    @api_expose("/<int:pk>/object", methods=["POST"])
    @protect()
    @safe
    @permission_name("object")
    def object(self, pk: int) -> Any:
        """Object to the department's grade during 公示: ``{"reason": "…"}`` (the department's head).
        ---
        post:
          responses:
            200:
              description: The grade with the objection
        """
        grade = self._grade(pk)
        if grade is None:
            return self.response_404()
        body = request.json if request.is_json and isinstance(request.json, dict) else {}
        return _grading_action(
            self,
            lambda: grade_json(assessment.object_to(db.session, grade, current_principal(), body.get("reason"))),
        )

    @api_expose("/<int:pk>/decide", methods=["POST"])
    @protect()
    @safe
    @permission_name("decide")
    def decide(self, pk: int) -> Any:
        """Set the final grade before confirming: ``{"grade": "second", "note": "…"}`` (总经理).
        ---
        post:
          responses:
            200:
              description: The grade with its final grade
        """
        grade = self._grade(pk)
        if grade is None:
            return self.response_404()
        body = request.json if request.is_json and isinstance(request.json, dict) else {}
        return _grading_action(
            self,
            lambda: grade_json(
                assessment.decide(db.session, grade, current_principal(), body.get("grade"), body.get("note"))
            ),
        )


class StaffCommendationView(CommendationView):
    """Commendations tab on a staff member's page."""

    list_title = _l("Commendations")
    list_columns = ["commended_on", "source", "content", "offsets_complaint", "recorded_by"]


StaffView.related_views = [StaffCommendationView]


def register_quality(appbuilder: Any) -> None:
    """Reports, improvement measures and grading, under their own menu."""
    menu, menu_label = "Service quality", _l("Service quality")
    for view, name, label_, icon in (
        (ReportView, "Analysis reports", _l("Analysis reports"), "fa-file-text-o"),
        (DepartmentMeasureView, "Improvement measures", _l("Improvement measures"), "fa-wrench"),
        (GradingRunView, "Grading runs", _l("Grading runs"), "fa-trophy"),
        (DepartmentGradeView, "Department grades", _l("Department grades"), "fa-star-half-o"),
    ):
        appbuilder.add_view(
            view, name, icon=icon, label=label_, category=menu, category_label=menu_label, category_icon="fa-line-chart"
        )
    appbuilder.add_view_no_menu(StaffCommendationView)
    for api in (ReportApi, DepartmentMeasureApi, GradingRunApi, DepartmentGradeApi):
        appbuilder.add_api(api)


# --- Service phrases: 服务忌语 and 文明用语 ------------------------------------------------------

_PHRASE_LABELS = {
    "kind": _l("List"),
    "number": _l("Item no."),
    "phrase": _l("Phrase"),
    "category": _l("Category"),
    "suggestion": _l("Suggested alternative"),
    "note": _l("Policy wording"),
    "is_guideline": _l("Guideline (not matched)"),
    "active": _l("Active"),
    "sort": _l("Sort order"),
}
PHRASE_KINDS = {
    PhraseKind.forbidden.value: _l("Forbidden phrase (服务忌语)"),
    PhraseKind.civil.value: _l("Civil phrase (文明用语)"),
}


def _check_phrase_row(item: ServicePhrase) -> None:
    errors = lifecycle.Errors()
    kind = getattr(item.kind, "value", item.kind)
    if kind not in PHRASE_KINDS:
        errors.add("kind", str(_l("Please choose the list.")))
    elif not phrases.variants(item.phrase or ""):
        errors.add("phrase", str(_l("Please enter the phrase (words separated by 、, alternatives in brackets).")))
    errors.raise_if_any()
    item.kind = PhraseKind(kind)
    item.phrase = item.phrase.strip()


class ServicePhraseView(PortalModelView):
    """The forbidden and civil phrase lists; an edit takes effect on the next check."""

    datamodel = SQLAInterface(ServicePhrase)
    class_permission_name = "ServicePhrase"
    base_filters = SCOPED
    list_title = _l("Service phrases")
    show_title = add_title = edit_title = _l("Service phrase")
    list_columns = ["kind", "number", "phrase", "category", "suggestion", "is_guideline", "active"]
    add_columns = edit_columns = show_columns = [
        "kind",
        "number",
        "phrase",
        "category",
        "suggestion",
        "note",
        "is_guideline",
        "active",
        "sort",
    ]
    search_columns = ["kind", "phrase", "category", "suggestion", "active"]
    order_columns = ["kind", "number", "sort"]
    base_order = ("sort", "asc")
    label_columns = _PHRASE_LABELS
    formatters_columns = {
        "kind": lambda v: labels.label(PHRASE_KINDS, v),
        "is_guideline": _yes_no,
        "active": _yes_no,
    }
    description_columns = {
        "phrase": _l(
            "Words separated by 、 are matched each on their own; a bracket at the end is an alternative "
            "(你管不着(你少管闲事)), a bracket inside is optional. Punctuation and spaces are ignored."
        ),
        "is_guideline": _l("A rule of conduct listed with the phrases; it is shown but never matched."),
    }
    add_form_extra_fields = edit_form_extra_fields = {
        "kind": _choice_field(_l("List"), list(PHRASE_KINDS.items())),
    }

    def prefill_form(self, form: Any, pk: Any) -> None:
        item = self.datamodel.get(pk)
        form.kind.data = getattr(item.kind, "value", item.kind)

    def pre_add(self, item: ServicePhrase) -> None:
        try:
            _check_phrase_row(item)
        except lifecycle.ValidationFailed as exc:
            raise ValueError(" ".join(_messages(exc))) from exc

    pre_update = pre_add


class ServicePhraseApi(ValidatingApi, PortalApi):
    """``/api/v1/servicephrase/``: the phrase lists (administrators edit them)."""

    resource_name = "servicephrase"
    datamodel = SQLAInterface(ServicePhrase)
    class_permission_name = "ServicePhrase"
    base_filters = SCOPED
    list_columns = show_columns = ["id", *ServicePhraseView.show_columns]
    add_columns = edit_columns = list(ServicePhraseView.show_columns)
    search_columns = ["kind", "phrase", "category", "active"]
    order_columns = ["kind", "number", "sort"]
    base_order = ("sort", "asc")
    lookup_columns = ("phrase", "suggestion")
    lookup_order = "sort"

    def pre_add(self, item: ServicePhrase) -> None:
        _check_phrase_row(item)

    pre_update = pre_add


MAX_CHECK_CHARS = 20000


class ReplyCheckApi(ApiConventions, BaseApi):
    """``POST /api/v1/reply-check``: the forbidden phrases in a text, for any signed-in user."""

    resource_name = "reply-check"
    class_permission_name = "ReplyCheck"
    method_permission_name = {"check": "check"}
    base_permissions = ["can_check"]
    allow_browser_login = True
    openapi_spec_tag = "Reply check"

    @api_expose("", methods=["POST"])
    @protect()
    @safe
    def check(self) -> Any:
        """Check a customer-facing text: ``{"text": "…"}`` → ``{"hits": [{phrase, start, end, suggestion}]}``.

        ``start``/``end`` are character offsets into the text as sent.
        ---
        post:
          requestBody:
            required: true
            content:
              application/json:
                schema:
                  type: object
                  properties:
                    text: {type: string}
          responses:
            200:
              description: The forbidden phrases found, in order
            400:
              description: No text, or not a string
            401:
              description: Not signed in
        """
        body = request.get_json(silent=True)
        text = body.get("text") if isinstance(body, dict) else None
        if not isinstance(text, str):
            return self.response_400(message=_('Send the text to check as JSON: {"text": "…"}.'))
        if len(text) > MAX_CHECK_CHARS:
            return self.response_400(message=_("At most %(n)d characters.", n=MAX_CHECK_CHARS))
        return self.response(200, hits=[h.as_json() for h in phrases.check(db.session, text)])


def register_phrases(appbuilder: Any) -> None:
    """The phrase lists under Rules, their REST resource and the reply check."""
    appbuilder.add_view(
        ServicePhraseView,
        "Service phrases",
        icon="fa-commenting-o",
        label=_l("Service phrases"),
        category="Rules",
        category_label=_l("Rules"),
    )
    appbuilder.add_api(ServicePhraseApi)
    appbuilder.add_api(ReplyCheckApi)


# --- First-contact ownership (首问负责制) and dissatisfaction tickets (不满工单) ------------------


def _current_user_id() -> int:
    user = current_user()
    return user.id if user is not None else -1


class MyRegisteredComplaintView(ComplaintView):
    """The cases the caller registered (首问责任人), whichever department handles them."""

    list_title = _l("Complaints I registered")
    base_filters = [*SCOPED, ["first_responder_id", FilterEqualFunction, _current_user_id]]
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
    fields = {k: v for k, v in _intake_fields().items() if k in ("received_at", "customer_name", "customer_phone")}
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
    formatters_columns = {"accepted": lambda v: _("Yes") if v else _("No")}
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
                ticket = grievances.record(db.session, _current_user_id(), data)
                db.session.commit()
            except lifecycle.ValidationFailed as exc:
                db.session.rollback()
                _form_errors(form, exc)
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
        ticket = self.datamodel.get(pk, self._base_filters)
        if ticket is None:
            abort(404)
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
        ticket = self.datamodel.get(pk, self._base_filters)
        if ticket is None:
            abort(404)
        if not self.appbuilder.sm.has_access("can_add", "Complaint"):
            abort(403)
        try:
            complaint = grievances.convert(db.session, ticket, _current_user_id(), _conversion_data(request.form))
            db.session.commit()
        except (lifecycle.ValidationFailed, grievances.AlreadyConverted) as exc:
            db.session.rollback()
            for message in _messages(exc):
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
            from app.timeutil import parse_iso

            try:
                if not isinstance(raw_received, str):
                    raise ValueError("not a string")
                if raw_received.strip():
                    data["received_at"] = parse_iso(raw_received)
            except ValueError:
                return self.response_422(message={"received_at": [_("Please enter a valid date and time.")]})
        try:
            ticket = grievances.record(db.session, _current_user_id(), data)
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
            complaint = grievances.convert(db.session, ticket, _current_user_id(), _conversion_data(body))
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
        criterion = scope.criterion(Grievance, current_principal())
        return self.response(200, year=year, result=grievances.monthly_grievances(db.session, year, criterion))


def register_ownership(appbuilder: Any) -> None:
    handling = "Complaint handling"
    appbuilder.add_view(
        MyRegisteredComplaintView,
        "My registered complaints",
        icon="fa-user-circle",
        label=_l("Complaints I registered"),
        category=handling,
        category_label=_l("Complaint handling"),
    )
    appbuilder.add_view(
        GrievanceView,
        "Dissatisfaction tickets",
        icon="fa-commenting",
        label=_l("Dissatisfaction tickets"),
        category=handling,
        category_label=_l("Complaint handling"),
    )
    appbuilder.add_api(GrievanceApi)


# --- Units of the organisation (branch hierarchy) -------------------------------------------


def _unit_kind_label(value: Any) -> str:
    return labels.label(labels.UNIT_KIND, value)


def _unit_kind_choices() -> list[tuple[str, Any]]:
    return [(kind.value, labels.UNIT_KIND[kind.value]) for kind in UnitKind]


class UnitView(PortalModelView):
    """Units of the organisation: the company, its branches (分公司), 管理处 and 网点."""

    datamodel = SQLAInterface(Unit)
    class_permission_name = "Unit"
    base_filters = SCOPED
    list_title = _l("Units")
    show_title = add_title = edit_title = _l("Unit")
    list_columns = ["name", "code", "kind", "parent", "head", "active"]
    add_columns = edit_columns = show_columns = ["name", "code", "kind", "parent", "head", "active", "sort"]
    search_columns = ["name", "code", "parent", "active"]
    base_order = ("sort", "asc")
    label_columns = {
        "name": _l("Name"),
        "code": _l("Code"),
        "kind": _l("Kind of unit"),
        "parent": _l("Parent unit"),
        "head": _l("Head"),
        "active": _l("Active"),
        "sort": _l("Sort order"),
    }
    description_columns = {"head": _l("Reads the complaints of every department of the unit and its sub-units.")}
    formatters_columns = {"kind": _unit_kind_label}
    add_form_extra_fields = edit_form_extra_fields = {
        "kind": _choice_field(_l("Kind of unit"), _unit_kind_choices()),
    }

    def prefill_form(self, form: Any, pk: Any) -> None:
        item = self.datamodel.get(pk)
        form.kind.data = getattr(item.kind, "value", item.kind)

    def pre_add(self, item: Unit) -> None:
        from app.access import units

        try:
            units.check_unit(db.session, item)
        except lifecycle.ValidationFailed as exc:
            raise ValueError(" ".join(_messages(exc))) from exc

    pre_update = pre_add

    def pre_delete(self, item: Unit) -> None:
        from app.access import units

        refusal = units.unit_in_use(db.session, item)
        if refusal:
            raise ValueError(refusal)


class UnitDepartmentView(PortalModelView):
    """Departments tab on a unit page."""

    datamodel = SQLAInterface(Department)
    class_permission_name = "Department"
    base_filters = SCOPED
    list_columns = ["name", "code", "head", "active"]
    label_columns = DepartmentView.label_columns


UnitView.related_views = [UnitDepartmentView]


# --- Clustered complaints (集中性投诉 / 群体性投诉) --------------------------------------------

from app.complaints import clusters  # noqa: E402
from app.models import Cluster  # noqa: E402

_CLUSTER_KIND = {
    "concentrated": _l("Concentrated complaints (集中性投诉)"),
    "group": _l("Group complaint (群体性投诉)"),
}
_CLUSTER_STATUS = {"open": _l("Open"), "closed": _l("Closed")}


def _cluster_cases(cases: Any) -> Markup:
    links = [
        Markup('<a href="{}">{}</a> {}').format(
            url_for("ComplaintView.show", pk=c.id), c.number, labels.label(labels.STATUS, c.status)
        )
        for c in cases or []
    ]
    return Markup("<br>").join(links)


class ClusterView(PortalModelView):
    """Clusters of complaints: their cases, first and last seen, status."""

    datamodel = SQLAInterface(Cluster)
    class_permission_name = "Cluster"
    base_filters = SCOPED
    base_permissions = ["can_read"]
    list_title = _l("Clustered complaints")
    show_title = _l("Cluster of complaints")
    list_columns = ["id", "kind", "department", "category", "first_seen", "last_seen", "status", "created_by"]
    show_columns = [
        "id",
        "kind",
        "department",
        "category",
        "first_seen",
        "last_seen",
        "status",
        "created_by",
        "created_at",
        "replied_at",
        "note",
        "complaints",
    ]
    search_columns = ["department", "category", "status", "first_seen"]
    base_order = ("first_seen", "desc")
    label_columns = {
        "id": _l("Cluster"),
        "kind": _l("Kind"),
        "department": _l("Department"),
        "category": _l("Category"),
        "first_seen": _l("First seen"),
        "last_seen": _l("Last seen"),
        "status": _l("Status"),
        "created_by": _l("Created by"),
        "created_at": _l("Created at"),
        "replied_at": _l("Unified reply at"),
        "note": _l("Note"),
        "complaints": _l("Cases"),
    }
    formatters_columns = {
        "kind": lambda v: str(_CLUSTER_KIND.get(v, v)),
        "status": lambda v: str(_CLUSTER_STATUS.get(v, v)),
        "created_by": lambda v: v if v is not None else _("Detected by the scan"),
        "complaints": _cluster_cases,
    }


def _cluster_json(cluster: Cluster) -> dict[str, Any]:
    return {
        "id": cluster.id,
        "kind": cluster.kind,
        "department": {"id": cluster.department_id, "name": cluster.department.name if cluster.department else None},
        "category": {"id": cluster.category_id, "name": cluster.category.name if cluster.category else None},
        "key": cluster.key,
        "first_seen": cluster.first_seen.isoformat() if cluster.first_seen else None,
        "last_seen": cluster.last_seen.isoformat() if cluster.last_seen else None,
        "status": cluster.status,
        "created_by": cluster.created_by_id,
        "replied_at": cluster.replied_at.isoformat() if cluster.replied_at else None,
        "note": cluster.note,
        "complaints": [
            {"id": c.id, "number": c.number, "status": getattr(c.status, "value", c.status)} for c in cluster.complaints
        ],
    }


class ClusterApi(PortalApi):
    """``/api/v1/cluster/``: clusters of complaints, scoped by department; linked and answered by HR."""

    resource_name = "cluster"
    datamodel = SQLAInterface(Cluster)
    class_permission_name = "Cluster"
    base_filters = SCOPED
    base_permissions = ["can_read", "can_add", "can_edit"]
    method_permission_name = {**MODEL_PERMS, "cases": "edit", "reply": "edit", "close": "edit"}
    list_columns = [
        "id",
        "kind",
        "department.id",
        "department.name",
        "category.id",
        "category.name",
        "key",
        "first_seen",
        "last_seen",
        "status",
        "created_by.id",
        "replied_at",
        "note",
    ]
    show_columns = [*list_columns, "complaints.id", "complaints.number"]
    lookup_columns = ("key", "note")
    lookup_order = "id"
    add_columns = ["kind", "department", "category", "note"]
    search_columns = ["department", "category", "status", "kind", "first_seen"]
    order_columns = ["first_seen", "last_seen", "id"]
    base_order = ("first_seen", "desc")

    def post_headless(self) -> Any:
        """Create a cluster by hand: ``{department, category?, kind?, note?, complaints: [ids]}``."""
        if current_principal().staff_id is None:
            return self.response(403, message=_("Your account is not linked to a staff record."))
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return self.response_400(message=_("The request body must be JSON."))
        criterion = scope.criterion(Complaint, current_principal())
        try:
            cluster = clusters.create_by_hand(db.session, body, _current_user_id(), criterion, utcnow())
            result = _cluster_json(cluster)
            db.session.commit()
        except clusters.ClusterRefused as exc:
            db.session.rollback()
            return self.response(400, message=exc.message, reasons=exc.reasons)
        return self.response(201, id=result["id"], result=result)

    def put_headless(self, pk: Any) -> Any:
        return self.response(405, message=_("Use the cluster's cases, reply and close actions."))

    def _cluster(self, pk: int) -> Optional[Cluster]:
        return self.datamodel.get(pk, self._base_filters)

    @api_expose("/<int:pk>/cases", methods=["POST"])
    @protect()
    @safe
    @permission_name("cases")
    def cases(self, pk: int) -> Any:
        """Link cases into the cluster by hand: ``{"complaints": [ids]}``.
        ---
        post:
          responses:
            200:
              description: The cluster with its cases
            400:
              description: A case does not exist or is about another department
            404:
              description: No such cluster in the caller's scope
        """
        cluster = self._cluster(pk)
        if cluster is None:
            return self.response_404()
        body = request.get_json(silent=True)
        ids = body.get("complaints", body.get("ids")) if isinstance(body, dict) else body
        criterion = scope.criterion(Complaint, current_principal())
        try:
            added = clusters.link_by_hand(db.session, cluster, ids, _current_user_id(), criterion, utcnow())
            result = _cluster_json(cluster)
            db.session.commit()
        except clusters.ClusterRefused as exc:
            db.session.rollback()
            return self.response(400, message=exc.message, reasons=exc.reasons)
        return self.response(200, added=added, result=result)

    @api_expose("/<int:pk>/reply", methods=["POST"])
    @protect()
    @safe
    @permission_name("reply")
    def reply(self, pk: int) -> Any:
        """One reply to all the cluster's cases still waiting for it, in one transaction: ``{"reply_text": ...}``.
        ---
        post:
          responses:
            200:
              description: The cases replied to
            400:
              description: No reply text
            404:
              description: No such cluster in the caller's scope
            409:
              description: Some cases refuse the reply (listed); nothing was applied
        """
        cluster = self._cluster(pk)
        if cluster is None:
            return self.response_404()
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return self.response_400(message=_("The request body must be JSON."))
        text = body.get("reply_text", body.get("reply"))
        if not isinstance(text, str) or not text.strip():
            return self.response_400(message=_("Please write the reply to the customers."))
        try:
            replied = clusters.unified_reply(
                db.session,
                cluster,
                current_principal(),
                text,
                utcnow(),
                confirm_phrases=body.get(services.CONFIRM_PHRASES),
            )
            numbers = [{"id": c.id, "number": c.number} for c in replied]
            db.session.commit()
        except clusters.ClusterRefused as exc:
            db.session.rollback()
            return self.response(409, message=exc.message, reasons=exc.reasons)
        return self.response(200, replied=numbers, cluster=pk)

    @api_expose("/<int:pk>/close", methods=["POST"])
    @protect()
    @safe
    @permission_name("close")
    def close(self, pk: int) -> Any:
        """Close the cluster (no more cases join it).
        ---
        post:
          responses:
            200:
              description: Closed
        """
        cluster = self._cluster(pk)
        if cluster is None:
            return self.response_404()
        clusters.close(db.session, cluster)
        db.session.commit()
        return self.response(200, id=pk, status="closed")


def register_clusters(appbuilder: Any) -> None:
    appbuilder.add_view(
        ClusterView,
        "Clustered complaints",
        icon="fa-object-group",
        label=_l("Clustered complaints"),
        category="Complaint handling",
        category_label=_l("Complaint handling"),
    )
    appbuilder.add_api(ClusterApi)
