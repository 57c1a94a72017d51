"""Reference data: departments, staff, units, channels, categories, levels and the access log."""

from __future__ import annotations

from typing import Any

from flask import request
from flask_appbuilder import expose, has_access
from flask_appbuilder.api import expose as api_expose
from flask_appbuilder.api import safe
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import permission_name, protect
from sqlalchemy import select

from app import labels, lifecycle
from app.access import scope, units
from app.discipline import liability
from app.extensions import db
from app.i18n import _, _l
from app.models import (
    AccessLog,
    Category,
    Channel,
    Department,
    Level,
    Staff,
    Unit,
    UnitKind,
)
from app.quality import attitude
from app.timeutil import format_local, utcnow
from app.views.base import MODEL_PERMS, PortalApi, PortalModelView, ValidatingApi, choice_field, error_messages
from app.views.commendations import StaffCommendationView
from app.views.security import SCOPED, current_principal

# Column lists that the screen and the REST resource of a model share.
DEPARTMENT_FORM_COLUMNS = ["name", "code", "unit", "head", "supervisor", "description", "active", "sort"]
DEPARTMENT_SEARCH_COLUMNS = ["name", "code", "unit", "active"]
STAFF_FORM_COLUMNS = ["employee_no", "name", "department", "position", "superior", "phone", "email", "user", "active"]
STAFF_SEARCH_COLUMNS = ["employee_no", "name", "department", "position", "superior", "active"]
# The form of a simple reference list; its screen and resource derive their other lists from it.
CHANNEL_COLUMNS = ["name", "code", "is_regulator", "active", "sort"]
CATEGORY_COLUMNS = ["name", "code", "description", "active", "sort"]
LEVEL_COLUMNS = ["name", "code", "rank", "is_major", "description", "active"]
UNIT_FORM_COLUMNS = ["name", "code", "kind", "parent", "head", "active", "sort"]


class StaffView(PortalModelView):
    datamodel = SQLAInterface(Staff)
    class_permission_name = "Staff"
    base_filters = SCOPED
    list_title = _l("Staff")
    show_title = add_title = edit_title = _l("Staff member")
    list_columns = ["employee_no", "name", "department", "position", "superior", "user", "active"]
    add_columns = edit_columns = STAFF_FORM_COLUMNS
    show_columns = ["employee_no", "name", "department", "position", "superior", "phone", "email", "user", "active"]
    show_template = "staff/show.html"
    search_columns = STAFF_SEARCH_COLUMNS
    related_views = [StaffCommendationView]
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
        "superior": _l(
            "Chained liability (连带扣分) follows the posts (岗位) held on the incident date; "
            "this line (direct superior, then the superior's superior) is used for staff who hold no post."
        )
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

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk: Any) -> Any:
        """The staff record, flagged when over the service-attitude limits (seed 003)."""
        staff = self.get_in_scope(pk)
        principal = current_principal()
        status = None
        if principal.is_company_wide or principal.is_department_head:
            status = attitude.staff_status(db.session, staff, utcnow())
        return self.render_show(
            pk,
            attitude_status=status,
        )


def _check_superior(item: Staff) -> None:
    """A staff member's direct superior is somebody else, and the line upwards has no loop."""
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


class DepartmentView(PortalModelView):
    datamodel = SQLAInterface(Department)
    class_permission_name = "Department"
    base_filters = SCOPED
    list_title = _l("Departments")
    show_title = add_title = edit_title = _l("Department")
    list_columns = ["name", "code", "unit", "head", "supervisor", "active"]
    add_columns = edit_columns = DEPARTMENT_FORM_COLUMNS
    show_columns = ["name", "code", "unit", "head", "supervisor", "description", "active"]
    search_columns = DEPARTMENT_SEARCH_COLUMNS
    related_views = [DepartmentStaffView]
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


ChannelView = _simple_reference_view(Channel, "Channel", _l("Channels"), CHANNEL_COLUMNS, _REF_LABELS)


CategoryView = _simple_reference_view(Category, "Category", _l("Categories"), CATEGORY_COLUMNS, _REF_LABELS)


LevelView = _simple_reference_view(Level, "Level", _l("Levels"), LEVEL_COLUMNS, _REF_LABELS)


ACCESS_TARGETS = {"customer": _l("Customer"), "complaint": _l("Complaint")}

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
    formatters_columns = {
        "action": lambda v: str(ACCESS_ACTIONS.get(v, v)),
        "target_type": lambda v: str(ACCESS_TARGETS.get(v, v or "")),
    }
    label_columns = {
        "at": _l("Time"),
        "username": _l("User"),
        "action": _l("Action"),
        "target_type": _l("Target type"),
        "target_id": _l("Target id"),
        "ip": _l("IP address"),
        "detail": _l("Detail"),
    }


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
    add_columns = edit_columns = DEPARTMENT_FORM_COLUMNS
    add_query_rel_fields = edit_query_rel_fields = {"head": SCOPED, "unit": SCOPED}
    search_columns = DEPARTMENT_SEARCH_COLUMNS
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
    add_columns = edit_columns = UNIT_FORM_COLUMNS
    add_query_rel_fields = edit_query_rel_fields = {"head": SCOPED, "parent": SCOPED}
    search_columns = ["name", "code", "kind", "parent", "active"]
    order_columns = ["name", "code", "sort"]
    lookup_order = "sort"

    def pre_add(self, item: Unit) -> None:
        units.check_unit(db.session, item)

    pre_update = pre_add

    def delete_headless(self, pk: Any) -> Any:
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
    add_columns = edit_columns = STAFF_FORM_COLUMNS
    search_columns = STAFF_SEARCH_COLUMNS
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
            attitude=attitude.staff_status(db.session, staff, utcnow()).as_json(),
            count=len(rows),
            result=rows,
        )

    def lookup_filter(self, stmt: Any) -> Any:
        stmt = stmt.where(Staff.active.is_(True))
        department = request.args.get("department", "")
        if department.isdecimal():
            stmt = stmt.where(Staff.department_id == int(department))
        return stmt

    def lookup_text(self, row: Staff) -> str:
        return f"{row.name}（{row.employee_no}）"


def reference_api(model: type, resource: str, perm: str, columns: list[str]) -> type:
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


ChannelApi = reference_api(Channel, "channel", "Channel", CHANNEL_COLUMNS)


CategoryApi = reference_api(Category, "category", "Category", CATEGORY_COLUMNS)


LevelApi = reference_api(Level, "level", "Level", LEVEL_COLUMNS)


def _unit_kind_label(value: Any) -> str:
    return labels.label(labels.UNIT_KIND, value)


def _unit_kind_choices() -> list[tuple[str, Any]]:
    return [(kind.value, labels.UNIT_KIND[kind.value]) for kind in UnitKind]


class UnitDepartmentView(PortalModelView):
    """Departments tab on a unit page."""

    list_title = _l("Departments")
    datamodel = SQLAInterface(Department)
    class_permission_name = "Department"
    base_filters = SCOPED
    list_columns = ["name", "code", "head", "active"]
    label_columns = DepartmentView.label_columns


class UnitView(PortalModelView):
    """Units of the organisation: the company, its branches (分公司), 管理处 and 网点."""

    datamodel = SQLAInterface(Unit)
    class_permission_name = "Unit"
    base_filters = SCOPED
    list_title = _l("Units")
    show_title = add_title = edit_title = _l("Unit")
    list_columns = ["name", "code", "kind", "parent", "head", "active"]
    add_columns = edit_columns = show_columns = UNIT_FORM_COLUMNS
    search_columns = ["name", "code", "parent", "active"]
    related_views = [UnitDepartmentView]
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
        "kind": choice_field(_l("Kind of unit"), _unit_kind_choices()),
    }

    def prefill_form(self, form: Any, pk: Any) -> None:
        item = self.datamodel.get(pk)
        form.kind.data = getattr(item.kind, "value", item.kind)

    def pre_add(self, item: Unit) -> None:
        try:
            units.check_unit(db.session, item)
        except lifecycle.ValidationFailed as exc:
            raise ValueError(" ".join(error_messages(exc))) from exc

    pre_update = pre_add

    def pre_delete(self, item: Unit) -> None:
        refusal = units.unit_in_use(db.session, item)
        if refusal:
            raise ValueError(refusal)
