"""Issued documents (处罚通知书, 通报, 客户投诉记录表, analyses): screens and REST resources."""

from __future__ import annotations

from typing import Any, Optional

from flask import abort, flash, redirect, request, url_for
from flask_appbuilder import expose, has_access
from flask_appbuilder.api import BaseApi, safe
from flask_appbuilder.api import expose as api_expose
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import permission_name, protect
from sqlalchemy import select

from app import labels, lifecycle
from app.access import privacy, roles, scope
from app.complaints import regulator
from app.discipline import ledger, notices
from app.documents import record_form
from app.documents import render as documents
from app.extensions import db
from app.i18n import _, _l
from app.models import (
    Complaint,
    Document,
)
from app.timeutil import format_local, utcnow
from app.views.base import (
    DISCIPLINE_PERMS,
    ApiConventions,
    PortalApi,
    PortalModelView,
    current_viewer,
    pdf_response,
    transition_error_response,
    wants_inline,
)
from app.views.lists import CaseListWidget
from app.views.security import SCOPED, current_principal, current_user

# Column lists that the screen and the REST resource of a model share.
DOCUMENT_ORDER_COLUMNS = ["number", "issued_at", "kind"]


def send_document(doc: Document, inline: bool = False) -> Any:
    if getattr(doc.kind, "value", doc.kind) == "record_form" and doc.complaint_id is not None:
        # The stored form names the customer: a complained staff member gets a copy without.
        complaint = db.session.get(Complaint, doc.complaint_id)
        if complaint is not None and current_viewer().mode(complaint.customer_id) == privacy.HIDE:
            pdf, _stored = record_form.record_form_pdf(db.session, complaint, None, hide_customer=True)
            return pdf_response(pdf, doc.filename, inline=inline)
    return pdf_response(doc.content, doc.filename, inline=inline, sha256=doc.sha256)


class DocumentView(PortalModelView):
    """Issued documents (stored PDFs), scoped like their penalty or complaint."""

    datamodel = SQLAInterface(Document)
    class_permission_name = "Document"
    method_permission_name = DISCIPLINE_PERMS
    base_filters = SCOPED
    base_permissions = ["can_read", "can_add"]
    list_template = "document/list.html"
    show_template = "document/show.html"
    list_widget = CaseListWidget
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
    order_columns = DOCUMENT_ORDER_COLUMNS
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
            kwargs["can_issue_circular"] = principal.has_role(roles.HR_MANAGER) and self.appbuilder.sm.has_access(
                "can_add", "Document"
            )
            kwargs["default_month"] = format_local(utcnow(), "%Y-%m")
            kwargs["circular_number"] = documents.preview_number(db.session, "circular")
        if template == self.show_template and kwargs.get("pk") is not None:
            kwargs["document"] = self.get_in_scope(kwargs["pk"])
        return super().render_template(template, **kwargs)

    @expose("/download/<int:pk>", methods=["GET"])
    @has_access
    def download(self, pk: int) -> Any:
        doc = self.get_in_scope(pk)
        return send_document(doc, inline=wants_inline())

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
    order_columns = DOCUMENT_ORDER_COLUMNS
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
        return send_document(doc, inline=wants_inline())

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
            return transition_error_response(self, exc)
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
        try:
            pdf, stored = record_form.record_form_pdf(
                db.session, complaint, user.id if user else None, hide_customer=hide
            )
        except documents.DocumentTooLarge as exc:
            db.session.rollback()
            return self.response(413, message=str(exc))
        name = stored.filename if stored is not None else f"客户投诉记录表-{complaint.number}.pdf"
        return pdf_response(pdf, name, inline=wants_inline(), sha256=stored.sha256 if stored is not None else None)

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
        complaint, error = self._scoped(pk)
        if error is not None:
            return error
        doc = documents.current_document(db.session, "regulator_reply", complaint_id=complaint.id)
        if doc is None:
            return self.response(404, message=_("No reply report has been issued for this case yet."))
        return pdf_response(doc.content, doc.filename, inline=wants_inline(), sha256=doc.sha256)
