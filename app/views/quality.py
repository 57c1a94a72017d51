"""Service quality: periodic reports, improvement measures, department grading."""

from __future__ import annotations

from typing import Any, Optional

from flask import abort, flash, redirect, request, url_for
from flask_appbuilder import expose, has_access
from flask_appbuilder.api import expose as api_expose
from flask_appbuilder.api import safe
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import permission_name, protect
from sqlalchemy import select

from app import labels, lifecycle
from app.access import roles, scope
from app.documents import render as documents
from app.extensions import db
from app.i18n import _, _l
from app.models import (
    DepartmentGrade,
    DepartmentMeasure,
    GradingRun,
    Level,
    Report,
)
from app.quality import analytics, assessment, grading, reports
from app.timeutil import format_local, utcnow
from app.views.base import (
    MODEL_PERMS,
    PortalApi,
    PortalModelView,
    choice_field,
    error_messages,
    transition_error_response,
    wants_inline,
    xlsx_response,
)
from app.views.documents import send_document
from app.views.security import SCOPED, current_principal, current_user

# Column lists that the screen and the REST resource of a model share.
REPORT_SEARCH_COLUMNS = ["kind", "period_start", "generated_at"]
REPORT_ORDER_COLUMNS = ["period_start", "generated_at"]
DEPARTMENT_MEASURE_FORM_COLUMNS = ["department", "period_kind", "period_start", "text"]
DEPARTMENT_MEASURE_SEARCH_COLUMNS = ["department", "period_kind", "period_start"]
DEPARTMENT_MEASURE_ORDER_COLUMNS = ["period_start", "updated_at"]
DEPARTMENT_GRADE_SEARCH_COLUMNS = ["run", "department", "grade", "final_grade"]
DEPARTMENT_GRADE_ORDER_COLUMNS = ["score"]
GRADING_RUN_SEARCH_COLUMNS = ["status", "period_start"]


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
    search_columns = REPORT_SEARCH_COLUMNS
    order_columns = REPORT_ORDER_COLUMNS
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
        report = self.get_in_scope(pk)
        return self.render_show(
            pk,
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
        return send_document(report.document, inline=wants_inline())

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
    search_columns = REPORT_SEARCH_COLUMNS
    order_columns = REPORT_ORDER_COLUMNS
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
        return send_document(report.document, inline=wants_inline())

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
    add_columns = edit_columns = DEPARTMENT_MEASURE_FORM_COLUMNS
    show_columns = ["department", "period_kind", "period_start", "text", "author", "updated_at"]
    search_columns = DEPARTMENT_MEASURE_SEARCH_COLUMNS
    order_columns = DEPARTMENT_MEASURE_ORDER_COLUMNS
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
        "period_kind": choice_field(_l("Period"), list(PERIOD_KIND_LABELS.items())),
    }
    description_columns = {
        "period_start": _l("The measures are printed in the weekly or monthly report of this period."),
    }

    def pre_add(self, item: DepartmentMeasure) -> None:
        try:
            reports.check_measure(db.session, item, current_principal())
        except (lifecycle.ValidationFailed, lifecycle.TransitionError) as exc:
            raise ValueError(" ".join(error_messages(exc))) from exc

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
    add_columns = edit_columns = DEPARTMENT_MEASURE_FORM_COLUMNS
    add_query_rel_fields = edit_query_rel_fields = {"department": SCOPED}
    search_columns = DEPARTMENT_MEASURE_SEARCH_COLUMNS
    order_columns = DEPARTMENT_MEASURE_ORDER_COLUMNS
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
            return transition_error_response(self, exc)

    def put_headless(self, pk: Any) -> Any:
        try:
            return super().put_headless(pk)
        except lifecycle.ValidationFailed as exc:
            db.session.rollback()
            return self.response_422(message=exc.errors)
        except lifecycle.TransitionError as exc:
            db.session.rollback()
            return transition_error_response(self, exc)


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
        return transition_error_response(api, exc)
    return api.response(200, result=result)


def _grading_step(fn: Any, done: Any, back: str, pk: int) -> Any:
    """Run a grading step from a page's form: flash the outcome, back to the page."""
    try:
        fn()
        db.session.commit()
        flash(str(done), "success")
    except (lifecycle.ValidationFailed, lifecycle.TransitionError) as exc:
        db.session.rollback()
        for message in error_messages(exc):
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
    search_columns = DEPARTMENT_GRADE_SEARCH_COLUMNS
    order_columns = DEPARTMENT_GRADE_ORDER_COLUMNS
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
        grade = self.get_in_scope(pk)
        principal = current_principal()
        now = utcnow()
        sm = self.appbuilder.sm
        return self.render_show(
            pk,
            grade=grade,
            components=(grade.components or {}).get("components", []),
            figures=(grade.components or {}).get("figures", {}),
            component_label=grading.component_label,
            grade_label=grading.grade_label,
            caps=_caps_text(grade.capped_by),
            can_object=sm.has_access("can_object", "Grading") and assessment.can_object(grade, principal, now),
            can_decide=sm.has_access("can_confirm", "Grading")
            and principal.has_role(roles.GENERAL_MANAGER)
            and grade.run.status == assessment.PUBLICITY,
            grades=[(code, grading.grade_label(code)) for code in grading.GRADES],
            format_local=format_local,
        )

    @expose("/object/<int:pk>", methods=["POST"])
    @has_access
    def object(self, pk: int) -> Any:
        grade = self.get_in_scope(pk)
        return _grading_step(
            lambda: assessment.object_to(db.session, grade, current_principal(), request.form.get("reason")),
            _l("Your objection was recorded."),
            "DepartmentGradeView.show",
            pk,
        )

    @expose("/decide/<int:pk>", methods=["POST"])
    @has_access
    def decide(self, pk: int) -> Any:
        grade = self.get_in_scope(pk)
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
    search_columns = GRADING_RUN_SEARCH_COLUMNS
    order_columns = ["opened_at"]
    base_order = ("period_start", "desc")
    label_columns = {
        "label": _l("Period"),
        "period_start": _l("Period start"),
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
        run = self.get_in_scope(pk)
        principal = current_principal()
        now = utcnow()
        grades = db.session.scalars(
            select(DepartmentGrade)
            .where(DepartmentGrade.run_id == run.id, scope.criterion(DepartmentGrade, principal))
            .order_by(DepartmentGrade.score.desc(), DepartmentGrade.id)
        ).all()
        return self.render_show(
            pk,
            run=run,
            grades=grades,
            grade_label=grading.grade_label,
            caps_text=_caps_text,
            status_label=labels.label(assessment.STATUS_LABELS, run.status),
            in_publicity=assessment.in_publicity(run, now),
            can_confirm=self.appbuilder.sm.has_access("can_confirm", "Grading")
            and principal.has_role(roles.GENERAL_MANAGER)
            and run.status == assessment.PUBLICITY
            and now >= run.publicity_until,
            circular_preview={
                "kind": _("Circular"),
                "number": documents.preview_number(db.session, "circular"),
                "recipient": "各部门、全体员工",
            },
            format_local=format_local,
        )

    @expose("/confirm/<int:pk>", methods=["POST"])
    @has_access
    def confirm(self, pk: int) -> Any:
        run = self.get_in_scope(pk)
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
        return send_document(run.circular, inline=wants_inline())


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
    search_columns = GRADING_RUN_SEARCH_COLUMNS
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
    search_columns = DEPARTMENT_GRADE_SEARCH_COLUMNS
    order_columns = DEPARTMENT_GRADE_ORDER_COLUMNS
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
