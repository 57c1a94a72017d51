"""Dashboards, and the records the KPIs count (follow-up visits, customers served)."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any, Optional

from flask import request
from flask_appbuilder import BaseView, expose, has_access
from flask_appbuilder.api import BaseApi, safe
from flask_appbuilder.api import expose as api_expose
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import protect

from app import labels, settings
from app.access import scope
from app.complaints import disputes, grievances
from app.extensions import db
from app.i18n import _, _l
from app.models import (
    Complaint,
    CustomerCount,
    DepartmentGrade,
    FollowUp,
    Grievance,
    Penalty,
)
from app.quality import analytics, attitude, stats
from app.quality.analytics import Chart
from app.timeutil import utcnow
from app.views.base import ApiConventions, PortalModelView
from app.views.lists import complaint_link
from app.views.security import SCOPED, current_principal

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


# Years a report or dashboard may ask for: the portal holds no case before 2000.
REPORT_YEARS = range(2000, 2101)


def period_refusal(at: Optional[str]) -> Optional[str]:
    """Why ``at`` (2026, 2026-11 or 2026-11-23) names no period a dashboard can show; None if it does."""
    text = (at or "").strip()
    if not text:
        return None
    match = re.fullmatch(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?", text[:10])
    try:
        valid = bool(match) and date(int(match[1]), int(match[2] or 1), int(match[3] or 1)) is not None
    except ValueError:
        valid = False
    if not valid or int(match[1]) not in REPORT_YEARS:
        return _(
            "Give the period as a year, month or day between %(first)d and %(last)d, e.g. 2026, 2026-11 or 2026-11-23.",
            first=REPORT_YEARS[0],
            last=REPORT_YEARS[-1],
        )
    return None


def dashboard_payload(args: Any) -> dict[str, Any]:
    principal = current_principal()
    period = analytics.parse_period(args.get("period"), args.get("at"))
    departments, charts = dashboard_scope(principal)
    if principal.is_customer_service and not charts:
        return analytics.intake_dashboard(db.session, period, scope.criterion(Complaint, principal))
    if departments == [] and not charts:
        return {"period": {"kind": period.kind, "label": period.label}, "charts": {}, "kpis": {}, "denied": True}
    include_basic = bool(settings.get(db.session, "kpi.satisfaction_includes_basic"))
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
    payload["disputes"] = disputes.dispute_counts(db.session, start, end, departments)
    payload["attitude_limits"] = attitude_flags(departments, min(utcnow(), end - timedelta(seconds=1)))
    return payload


def attitude_flags(departments: Optional[list[int]], now: Any) -> list[dict[str, Any]]:
    """Staff over the service-attitude limits (seed 003: ≤1 a month, <4 a year) in the caller's scope."""
    return [s.as_json() for s in attitude.flagged(db.session, now, department_ids=departments)]


class DashboardView(BaseView):
    """The role's dashboard: KPI cards and ECharts charts, data from /api/v1/dashboard/data."""

    route_base = "/dashboard"
    class_permission_name = "Dashboard"
    method_permission_name = {"index": "read"}
    default_view = "index"

    @expose("/")
    @has_access
    def index(self) -> Any:
        departments, charts = dashboard_scope(current_principal())
        limits: list[dict[str, Any]] = []
        if charts:
            stats.refresh(db.session)  # the limits are read from the daily aggregates
            db.session.commit()
            limits = attitude_flags(departments, utcnow())
        return self.render_template(
            "dashboard.html",
            attitude_limits=limits,
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
        refused = period_refusal(request.args.get("at"))
        if refused:
            return self.response_400(message=refused)
        return self.response(200, **dashboard_payload(request.args))


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
        "complaint": complaint_link,
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
