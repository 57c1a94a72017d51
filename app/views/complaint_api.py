"""``/api/v1/complaint/``: complaints, their lifecycle, timeline, attachments and corrective actions."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, request
from flask_appbuilder.api import expose as api_expose
from flask_appbuilder.api import safe
from flask_appbuilder.models.sqla.filters import FilterEqual
from flask_appbuilder.security.decorators import permission_name, protect
from marshmallow import ValidationError as SchemaError
from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from app import labels, lifecycle, validation
from app.access import privacy, scope
from app.complaints import attachments, corrective, intake, policy_rules, similar_cases
from app.complaints import steps as services
from app.extensions import commit_keeping_rows, db
from app.i18n import _, _l
from app.models import (
    Complaint,
    ComplaintEvent,
    CorrectiveAction,
)
from app.time_limits import sla
from app.time_limits.deadlines import STAGES
from app.views import masked_search
from app.views.base import (
    CUSTOMER_SCOPE,
    CaseApi,
    as_message_lists,
    current_viewer,
    transition_error_response,
)
from app.views.complaint_common import (
    COMPLAINT_EDIT_COLUMNS,
    attachment_json,
    corrective_json,
    customer_ids_of,
    event_json,
    mask_complaint_json,
    pause_json,
    reveal_contact,
    send_attachment,
    transition_json,
)
from app.views.datamodel import PortalInterface
from app.views.schemas import ComplaintIntakeSchema
from app.views.security import SCOPED, current_principal, current_user

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
    "incident_date",
    "batch_no",
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

# One instance for the process: a schema copies its two dozen fields when it is made, and loading
# keeps no state on the instance (the references it reads are kept by the request).
_INTAKE_SCHEMA = ComplaintIntakeSchema()


class ComplaintApi(CaseApi):
    """``/api/v1/complaint/``: the register, the intake and a case's files."""

    resource_name = "complaint"
    datamodel = PortalInterface(Complaint)
    class_permission_name = "Complaint"
    out_of_scope_message = _l("This complaint is outside your scope.")
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
    edit_columns = COMPLAINT_EDIT_COLUMNS
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
            data = _INTAKE_SCHEMA.load(request.json or {})
        except SchemaError as err:
            return self.response_422(message=as_message_lists(err.messages))
        user = current_user()
        try:
            complaint = intake.register_complaint(db.session, user.id if user else None, data)
        except lifecycle.ValidationFailed as exc:
            db.session.rollback()
            return self.response_422(message=as_message_lists(exc.errors))
        # Serialised after the commit, which releases the day's complaint counter for the next
        # registration; the rows stay loaded meanwhile, so nothing is read again.
        with commit_keeping_rows(db.session):
            result = self.show_model_schema.dump(complaint)
            complaint_id = complaint.id
            mask_complaint_json(result, complaint_id, current_viewer(), {complaint_id: complaint.customer_id})
        return self.response(201, id=complaint_id, result=result)

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
        except lifecycle.ValidationFailed as exc:
            db.session.rollback()
            return self.response_422(message=as_message_lists(exc.errors))

    def pre_update(self, item: Complaint) -> None:
        user = current_user()
        services.after_case_edit(db.session, item, user.id if user else None)

    def pre_delete(self, item: Complaint) -> None:
        abort(405)

    # The customer's contact details are masked in every answer, hidden from complained staff.
    def pre_get(self, data: dict[str, Any]) -> None:
        pk = int(data.get("id"))  # FAB found the row by this key
        mask_complaint_json(data.get("result"), pk, current_viewer(), customer_ids_of([pk]))

    def pre_get_list(self, data: dict[str, Any]) -> None:
        super().pre_get_list(data)
        ids = list(data.get("ids") or [])
        customer_ids, viewer = customer_ids_of(ids), current_viewer()
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
        result = [
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
        ]
        # An exact search of a masked field: logged like a reveal.
        customers = sorted({c.customer_id for c in rows})
        masked_search.log_searches([("phone", validation.normalize_phone(phone))], customers, "caller history")
        return self.response(200, phone=validation.normalize_phone(phone), count=len(result), result=result)

    @api_expose("/similar", methods=["GET", "POST"])
    @protect()
    @safe
    @permission_name("similar")
    def similar(self) -> Any:
        """Open cases similar to a text (intake), and the category and department suggested for it.
        ---
        get:
          parameters:
          - in: query
            name: text
            required: true
            schema: {type: string, maxLength: 5000}
            description: What the customer says (subject and content)
          - in: query
            name: exclude
            schema: {type: integer}
            description: A case not to list (the one being edited)
          responses:
            200:
              description: Similar open cases in the caller's scope, best first, and the suggestions
            400:
              description: No text
        post:
          requestBody:
            content:
              application/json:
                schema:
                  type: object
                  additionalProperties: false
                  properties:
                    text: {type: string, maxLength: 5000, description: "What the customer says"}
                    subject: {type: string, maxLength: 200}
                    content: {type: string, maxLength: 5000}
                    exclude: {type: integer, nullable: true, description: "A case not to list"}
          responses:
            200:
              description: Similar open cases in the caller's scope, best first, and the suggestions
            400:
              description: No text
        """
        text, exclude = _similar_query()
        if not text.strip():
            return self.response_400(message={"text": [_("Please write what the customer complains about.")]})
        found = similar_cases.find(
            db.session, text, scope.criterion(Complaint, current_principal()), exclude_id=exclude
        )
        return self.response(200, count=len(found["result"]), **found)

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
            return self.response(201, id=row.id, result=attachment_json(row))
        return self.response(200, result=[attachment_json(a) for a in complaint.attachments])

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
        return self.take_transition(pk, services.take_transition, event_json)

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
            # Contacts with the customer so far (对应次数) and the level's cap, if it has one.
            contacts={
                "count": policy_rules.contact_count(db.session, complaint),
                "max": complaint.level.max_contacts if complaint.level is not None else None,
            },
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


def _similar_query() -> tuple[str, Any]:
    """The text (or subject and content) and the case to leave out, from the query or the JSON body."""
    if request.method == "GET":
        source: Any = request.args
    else:
        body = request.get_json(silent=True)
        source = body if isinstance(body, dict) else {}
    parts = [source.get(name) for name in ("text", "subject", "content")]
    text = "\n".join(p for p in parts if isinstance(p, str) and p.strip())
    exclude = intake.int_or_none(source.get("exclude"))
    return text, exclude
