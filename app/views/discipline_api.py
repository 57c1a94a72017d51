"""``/api/v1/penalty/``, ``/api/v1/penaltyrule/`` and the ledger: discipline REST resources."""

from __future__ import annotations

from typing import Any

from flask import abort, request
from flask_appbuilder.api import BaseApi, safe
from flask_appbuilder.api import expose as api_expose
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import permission_name, protect
from sqlalchemy import select

from app import lifecycle
from app.access import scope
from app.discipline import cases as discipline
from app.discipline import ledger, liability, notices, penalties
from app.extensions import db
from app.i18n import _, _l
from app.models import (
    Complaint,
    Document,
    Penalty,
    PenaltyEvent,
    PenaltyRule,
    Staff,
)
from app.timeutil import format_local, utcnow
from app.views.base import (
    DISCIPLINE_PERMS,
    ApiConventions,
    CaseApi,
    PortalApi,
    ValidatingApi,
    pdf_response,
    transition_error_response,
    wants_inline,
    xlsx_response,
)
from app.views.datamodel import PortalInterface
from app.views.discipline import PENALTY_RULE_FORM_COLUMNS, check_rule_row, penalty_step_options, rule_in_use
from app.views.documents import document_json, send_document
from app.views.security import SCOPED, current_principal

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
        if str(raw).isdecimal():
            row = db.session.scalars(
                select(model).where(model.id == int(raw), scope.criterion(model, principal))
            ).first()
        if row is None:
            errors.add(name, str(_l("The selected item does not exist or is not available to you.")))
        data[name] = row
    errors.raise_if_any()
    return data


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


class PenaltyRuleApi(ValidatingApi, PortalApi):
    resource_name = "penaltyrule"
    datamodel = SQLAInterface(PenaltyRule)
    class_permission_name = "PenaltyRule"
    base_filters = SCOPED
    list_columns = show_columns = ["id", *PENALTY_RULE_FORM_COLUMNS]
    add_columns = edit_columns = PENALTY_RULE_FORM_COLUMNS
    search_columns = ["tier", "clause", "sanction", "active"]
    order_columns = ["tier", "clause", "sort"]
    base_order = ("sort", "asc")
    lookup_columns = ("clause", "description")
    lookup_order = "sort"

    def pre_add(self, item: PenaltyRule) -> None:
        check_rule_row(item)

    pre_update = pre_add

    def pre_delete(self, item: PenaltyRule) -> None:
        try:
            rule_in_use(item)
        except ValueError as exc:
            abort(409, description=str(exc))


class PenaltyApi(CaseApi):
    """``/api/v1/penalty/``: penalty cases, their chain, timeline and notice."""

    resource_name = "penalty"
    datamodel = PortalInterface(Penalty)
    class_permission_name = "Penalty"
    out_of_scope_message = _l("This penalty is outside your scope.")
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
            return transition_error_response(self, exc)
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
            return transition_error_response(self, exc)
        return self.response(200, id=penalty.id, result=self.show_model_schema.dump(penalty))

    def delete_headless(self, pk: Any) -> Any:
        return self.response(405, message=_("Penalty cases are never deleted; withdraw a draft instead."))

    def pre_get(self, data: dict[str, Any]) -> None:
        """The case's liability chain (连带扣分) with its show: frozen links once approved."""
        penalty = db.session.get(Penalty, int(data["id"]))
        if penalty is not None:
            data["chain"] = liability.chain_json(penalty)

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
        return self.take_transition(pk, discipline.take_step, penalty_event_json)

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
        return send_document(doc, inline=wants_inline())

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

        ``reason`` is required for a re-issue (a 通报 of the case exists) and for a case
        whose rule does not call for a 通报; without it the answer is 409.
        ---
        post:
          requestBody:
            required: false
            content:
              application/json:
                schema:
                  type: object
                  properties:
                    reason:
                      type: string
                      description: Why this 通报 is issued although the rule does not call for one, or why it is re-issued
          responses:
            201:
              description: The circular
            400:
              description: The body is not a JSON object
            409:
              description: Not issued yet, or a reason is required
        """
        penalty, error = self._case(pk)
        if error is not None:
            return error
        if not self.appbuilder.sm.has_access("can_add", "Document"):
            return self.response_403()
        try:
            body = request.get_json(silent=True)
            if body is not None and not isinstance(body, dict):
                return self.response_400(message=str(_l("The request body must be a JSON object.")))
            reason = (body or {}).get("reason")
            if reason is not None and not isinstance(reason, str):
                return self.response_400(message={"reason": [str(_l("The reason must be text."))]})
            doc = notices.issue_penalty_circular(db.session, penalty, current_principal(), reason=reason)
            db.session.commit()
        except lifecycle.TransitionError as exc:
            db.session.rollback()
            return transition_error_response(self, exc)
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
        try:
            month = self._month()
        except ValueError as exc:
            return self.response_400(message=str(exc))
        data = ledger.ledger(db.session, month, current_principal())
        return xlsx_response(ledger.ledger_xlsx(data), f"处罚台账-{month:%Y-%m}.xlsx")
