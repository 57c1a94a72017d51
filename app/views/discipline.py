"""Discipline screens: penalty rules, penalty cases and the penalty ledger."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, g, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_appbuilder.actions import action
from flask_appbuilder.fieldwidgets import BS3TextFieldWidget, DatePickerWidget
from flask_appbuilder.models.sqla.filters import FilterEqual
from flask_appbuilder.models.sqla.interface import SQLAInterface
from sqlalchemy import select
from wtforms import BooleanField, DateField, StringField
from wtforms.validators import DataRequired
from wtforms.validators import Optional as OptionalValidator

from app import lifecycle
from app.access import roles, scope
from app.complaints import steps as services
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
    Sanction,
    Staff,
)
from app.timeutil import format_local, utcnow
from app.views import case_page
from app.views.base import (
    DISCIPLINE_PERMS,
    PortalModelView,
    choice_field,
    error_messages,
    form_errors,
    pdf_response,
    wants_inline,
    yes_no,
)
from app.views.datamodel import PortalInterface
from app.views.documents import send_document
from app.views.forms import AjaxModelField
from app.views.lists import CaseListWidget
from app.views.security import SCOPED, current_principal

# Column lists that the screen and the REST resource of a model share.
PENALTY_RULE_FORM_COLUMNS = [
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


def _sanction_choices() -> list[tuple[str, Any]]:
    return [(code, penalties.SANCTION_LABELS[code]) for code in penalties.SANCTIONS]


def check_rule_row(item: PenaltyRule) -> None:
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
    for name, messages in liability.rule_errors(item).items():
        for message in messages:
            errors.add(name, message)
    errors.raise_if_any()
    item.sanction = Sanction(getattr(item.sanction, "value", item.sanction))


def rule_in_use(item: PenaltyRule) -> None:
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
    add_columns = edit_columns = show_columns = PENALTY_RULE_FORM_COLUMNS
    search_columns = ["tier", "clause", "description", "active"]
    base_order = ("sort", "asc")
    label_columns = _RULE_LABELS_D
    formatters_columns = {
        "sanction": penalties.sanction_label,
        "withhold_performance_pay": yes_no,
        "circular_required": yes_no,
        "legal_referral": yes_no,
        "active": yes_no,
    }
    add_form_extra_fields = edit_form_extra_fields = {
        "sanction": choice_field(_l("Sanction"), _sanction_choices()),
    }

    def prefill_form(self, form: Any, pk: Any) -> None:
        item = self.datamodel.get(pk)
        form.sanction.data = getattr(item.sanction, "value", item.sanction)

    def pre_add(self, item: PenaltyRule) -> None:
        try:
            check_rule_row(item)
        except lifecycle.ValidationFailed as exc:
            raise ValueError(" ".join(error_messages(exc))) from exc

    pre_update = pre_add

    def pre_delete(self, item: PenaltyRule) -> None:
        rule_in_use(item)


def _penalty_form_fields() -> dict[str, Any]:
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
        "sanction": choice_field(
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

    datamodel = PortalInterface(Penalty)
    class_permission_name = "Penalty"
    method_permission_name = DISCIPLINE_PERMS
    base_filters = SCOPED
    base_permissions = ["can_read", "can_add", "can_edit"]
    list_title = _l("Penalties")
    show_title = _l("Penalty case")
    add_title = _l("Open a penalty case")
    edit_title = _l("Edit penalty case")
    show_template = "penalty/show.html"
    list_widget = CaseListWidget
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
    # Grouped by stage; the case page shows a stage only once it holds data (app/views/case_page.py).
    # FAB takes show_columns from these fieldsets.
    show_fieldsets = [
        (
            _l("Case opened"),
            {
                "fields": [
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
                    "created_by",
                    "created_at",
                    "proposed_by",
                    "proposed_at",
                ]
            },
        ),
        (_l("Penalty review"), {"fields": ["reviewed_by", "reviewed_at", "return_reason"]}),
        (_l("Penalty approval"), {"fields": ["decided_by", "decided_at"]}),
        (_l("Notice service"), {"fields": ["issued_at", "served_on", "appeal_deadline"]}),
        (_l("Penalty appeal"), {"fields": ["revoked_at"]}),
    ]
    label_columns = _PENALTY_LABELS
    formatters_columns = {
        "status": penalties.status_label,
        "sanction": penalties.sanction_label,
        "withhold_performance_pay": yes_no,
        "circular_required": yes_no,
        "subject_is_head": yes_no,
        "head_failed_to_act": yes_no,
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
                form_errors(form, exc)
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
        item = self.get_in_scope(pk)
        form.sanction.data = getattr(item.sanction, "value", item.sanction)
        form.fine_amount.data = str(item.fine_amount)
        form.score_deduction.data = str(item.score_deduction)

    def _edit(self, pk: Any) -> Any:
        """Change a draft through the service (never populate the row from the form first)."""
        penalty = self.get_in_scope(pk)
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
                form_errors(form, exc)
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
        penalty = self.get_in_scope(pk)
        principal = current_principal()
        widgets = self._case_widgets(pk)
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
            sections=case_page.filled_sections(self, penalty),
            next_steps=case_page.penalty_next_steps(penalty),
            due_text=case_page.due_text,
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
            can_circulate=principal.has_role(roles.HR_MANAGER)
            and self.appbuilder.sm.has_access("can_add", "Document")
            and penalty.status.value in notices.CIRCULAR_STATUSES,
            previews=notices.issue_previews(db.session, penalty),
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
        return self.take_step_from_form(self.get_in_scope(pk), discipline.take_step, penalties.action_label)

    @expose("/circular/<int:pk>", methods=["POST"])
    @has_access
    def circular(self, pk: int) -> Any:
        """Issue the company-wide 通报 of this penalty."""
        penalty = self.get_in_scope(pk)
        if not self.appbuilder.sm.has_access("can_add", "Document"):
            abort(403)
        try:
            doc = notices.issue_penalty_circular(
                db.session, penalty, current_principal(), reason=request.form.get("reason")
            )
            db.session.commit()
            flash(_("Circular %(number)s issued.", number=doc.number), "success")
        except lifecycle.TransitionError as exc:
            db.session.rollback()
            flash(exc.message, "danger")
        return redirect(url_for("PenaltyView.show", pk=pk))

    @expose("/circular_draft/<int:pk>", methods=["GET"])
    @has_access
    def circular_draft(self, pk: int) -> Any:
        """The 通报 as it would be issued now, unnumbered and not stored (for review before issue)."""
        penalty = self.get_in_scope(pk)
        if not current_principal().has_role(roles.HR_MANAGER):
            abort(403)
        if penalty.status.value not in notices.CIRCULAR_STATUSES:
            abort(409)
        return pdf_response(
            notices.circular_draft_pdf(db.session, penalty), f"通报草稿-{penalty.number}.pdf", inline=True
        )

    @expose("/notice/<int:pk>", methods=["GET"])
    @has_access
    def notice(self, pk: int) -> Any:
        """The stored notice (``?inline=1`` to open it in the browser for printing)."""
        penalty = self.get_in_scope(pk)
        doc = notices.current_notice(db.session, penalty)
        if doc is None:
            abort(409)
        return send_document(doc, inline=wants_inline())

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
