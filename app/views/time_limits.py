"""Time limits: SLA rules, the working calendar, settings, the inbox and extension requests."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

from flask import flash, redirect, request, url_for
from flask_appbuilder import expose, has_access
from flask_appbuilder.actions import action
from flask_appbuilder.api import expose as api_expose
from flask_appbuilder.api import safe
from flask_appbuilder.fieldwidgets import BS3TextAreaFieldWidget
from flask_appbuilder.models.sqla.filters import FilterEqual
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import permission_name, protect
from sqlalchemy import update as sa_update
from wtforms import TextAreaField

from app import labels, lifecycle
from app.extensions import db
from app.i18n import _, _l
from app.messages import notify
from app.models import (
    CalendarOverride,
    Extension,
    Notification,
    Setting,
    SlaRule,
)
from app.quality.grading import check_formula
from app.time_limits import sla
from app.time_limits.calendar import parse_blocks, uncovered_years
from app.time_limits.deadlines import ROLE_TOKENS, STAGES, UNIT_LABELS
from app.timeutil import LOCAL_TZ, utcnow
from app.views.base import PortalApi, PortalModelView, ValidatingApi, choice_field
from app.views.errors import json_error
from app.views.lists import complaint_link
from app.views.security import SCOPED, current_user

# Column lists that the screen and the REST resource of a model share.
SLA_RULE_FORM_COLUMNS = [
    "stage",
    "level",
    "channel",
    "amount",
    "unit",
    "average_amount",
    "warn_ratio",
    "remind_roles",
    "escalate_role",
    "escalate_after",
    "overtime_fine",
    "description",
    "active",
]
CALENDAR_OVERRIDE_FORM_COLUMNS = ["day", "is_workday", "note"]


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
    if item.average_amount is not None and not (0 < item.average_amount <= (item.amount or 0)):
        errors.add("average_amount", str(_l("The average is a whole number greater than 0, at most the time limit.")))
    if item.overtime_fine is not None and not (0 <= item.overtime_fine <= 100000):
        errors.add("overtime_fine", str(_l("The overtime fine is a whole number of yuan between 0 and 100000.")))
    errors.raise_if_any()


_RULE_LABELS = {
    "stage": _l("Stage"),
    "level": _l("Level (empty: all)"),
    "channel": _l("Channel (empty: all)"),
    "amount": _l("Time limit"),
    "unit": _l("Unit"),
    "average_amount": _l("Promised average (same unit; the limit is then the maximum)"),
    "warn_ratio": _l("Warning at (fraction of the time)"),
    "remind_roles": _l("Who is reminded"),
    "escalate_role": _l("Escalates to"),
    "escalate_after": _l("Escalate after (same unit, once overdue)"),
    "overtime_fine": _l("Overtime fine (yuan, drafted for review)"),
    "description": _l("Description"),
    "active": _l("Active"),
}


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
    add_columns = edit_columns = show_columns = SLA_RULE_FORM_COLUMNS
    search_columns = ["stage", "level", "active"]
    label_columns = _RULE_LABELS
    formatters_columns = {
        "stage": lambda v: str(STAGES[v].label) if v in STAGES else v,
        "unit": lambda v: str(UNIT_LABELS.get(v, v)),
        "warn_ratio": lambda v: f"{v:.0%}" if v is not None else "",
    }
    add_form_extra_fields = edit_form_extra_fields = {
        "stage": choice_field(_l("Stage"), [(k, v.label) for k, v in STAGES.items()]),
        "unit": choice_field(_l("Unit"), list(UNIT_LABELS.items())),
        "escalate_role": choice_field(_l("Escalates to"), [("", "—"), *ROLE_TOKENS.items()]),
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
    add_columns = edit_columns = show_columns = CALENDAR_OVERRIDE_FORM_COLUMNS
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
            cal = sla.load_calendar(db.session)
            today = utcnow().astimezone(sla_local_tz()).date()
            kwargs["uncovered"] = uncovered_years(cal, today)
            kwargs["years"] = [year_summary(cal, y) for y in (today.year, today.year + 1)]
        return super().render_template(template, **kwargs)


def sla_local_tz() -> Any:
    return LOCAL_TZ


def year_summary(cal: Any, year: int) -> dict[str, Any]:
    """Holidays and make-up workdays of a year as the portal counts them."""
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
        item = self.datamodel.get(pk)
        form.value.data = json.dumps(item.value, ensure_ascii=False)

    def pre_add(self, item: Setting) -> None:
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
        _check_cluster_setting(item.key, item.value)

    pre_update = pre_add

    def post_update(self, item: Setting) -> None:
        if item.key == "office_hours":
            RecomputeOnChange._recompute(self, item)

    post_add = post_update


def _check_cluster_setting(key: str, value: Any) -> None:
    """The similarity threshold is a number in (0, 1]; the scan's counts and budget are positive."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if key == "cluster.similarity_threshold" and not (number and 0 < value <= 1):
        raise ValueError(str(_l("The similarity threshold is a number above 0 and at most 1 (e.g. 0.3).")))
    positive = ("cluster.min_complaints", "cluster.serious_per_month", "cluster.scan_seconds", "cluster.scan_months")
    if key in positive and not (number and value >= 1):
        raise ValueError(str(_l("This setting is a number of at least 1.")))


class InboxView(PortalModelView):
    """My notifications (every user sees only their own). Messages are written by the application
    only (no add or edit page: recipients, titles and links are never forged); opening one, or
    "mark all read", marks it read."""

    datamodel = SQLAInterface(Notification)
    class_permission_name = "Inbox"
    base_filters = SCOPED
    base_permissions = ["can_read"]
    list_title = _l("My inbox")
    show_title = _l("Message")
    list_template = "inbox/list.html"
    list_columns = ["created_at", "category", "title", "complaint", "read_at"]
    show_columns = ["created_at", "category", "title", "body", "complaint", "read_at"]
    search_columns = ["category", "title", "kind", "read_at"]
    search_form_extra_fields = {
        "category": choice_field(_l("Message type"), list(labels.NOTIFICATION_CATEGORY.items())),
    }
    formatters_columns = {
        "category": lambda value: labels.label(labels.NOTIFICATION_CATEGORY, value),
        "complaint": complaint_link,
    }
    base_order = ("id", "desc")
    label_columns = {
        "category": _l("Message type"),
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
        item = self.get_in_scope(pk)
        if item.read_at is None:
            item.read_at = utcnow()
            db.session.commit()
        if item.complaint_id:
            return redirect(url_for("ComplaintView.show", pk=item.complaint_id))
        if item.link and item.link.startswith("/") and not item.link.startswith("//"):
            return redirect(item.link)
        return super().show(pk)

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        # The list's 待办 / 知会 tabs filter with FAB's "equal to" on the category.
        equal = next(
            i for i, f in enumerate(self._filters.get_search_filters()["category"]) if isinstance(f, FilterEqual)
        )
        self.extra_args = {**(self.extra_args or {}), "category_arg": f"_flt_{equal}_category"}

    @expose("/read_all", methods=["POST"])
    @has_access
    def read_all(self) -> Any:
        """全部标为已读: every unread message of the caller (of one category when the list is filtered)."""
        category = request.form.get("category") or None
        if category not in (None, *notify.CATEGORIES):
            category = None
        count = notify.mark_read(db.session, current_user().id, utcnow(), category=category)
        db.session.commit()
        flash(_("%(n)d messages marked as read.", n=count), "success")
        return redirect(url_for("InboxView.list", **({self.extra_args["category_arg"]: category} if category else {})))

    @action("mark_read", _l("Mark as read"), None, "fa-check", single=False)
    def mark_read(self, items: Any) -> Any:
        """The selected messages (only the caller's own: the list action loads rows in scope)."""
        items = items if isinstance(items, list) else [items]
        ids = [i.id for i in items if i is not None]
        count = notify.mark_read(db.session, current_user().id, utcnow(), ids=ids) if ids else 0
        db.session.commit()
        flash(_("%(n)d messages marked as read.", n=count), "success")
        return redirect(url_for("InboxView.list"))


def mark_all_read(user_id: int) -> int:
    """Mark every unread message of the user read; commits. Returns how many."""
    result = db.session.execute(
        sa_update(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        .values(read_at=utcnow())
    )
    db.session.commit()
    return result.rowcount or 0


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
        "complaint": complaint_link,
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
        "average_amount",
        "warn_ratio",
        "remind_roles",
        "escalate_role",
        "escalate_after",
        "overtime_fine",
        "description",
        "active",
    ]
    add_columns = edit_columns = SLA_RULE_FORM_COLUMNS
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
    add_columns = edit_columns = CALENDAR_OVERRIDE_FORM_COLUMNS
    search_columns = ["day", "is_workday"]
    order_columns = ["day"]
    lookup_columns = ("note",)
    lookup_order = "day"


class NotificationApi(PortalApi):
    """``/api/v1/notification/``: the caller's own inbox; read-only but for marking messages read."""

    resource_name = "notification"
    datamodel = SQLAInterface(Notification)
    class_permission_name = "Inbox"
    base_filters = SCOPED
    base_permissions = ["can_read"]
    include_route_methods = {"get", "get_list", "info", "lookup", "mark_read", "mark_many_read", "read_all"}
    list_columns = show_columns = [
        "id",
        "kind",
        "category",
        "title",
        "body",
        "complaint_id",
        "link",
        "created_at",
        "read_at",
    ]
    search_columns = ["kind", "category", "read_at", "complaint_id"]
    order_columns = ["created_at"]
    base_order = ("id", "desc")
    lookup_columns = ("title",)
    lookup_order = "id"

    @api_expose("/<int:pk>/read", methods=["POST"])
    @protect()
    @safe
    @permission_name("mark_read")
    def mark_read(self, pk: int) -> Any:
        """Mark one of the caller's messages read (the time is the server's).
        ---
        post:
          responses:
            200:
              description: The message, read
            404:
              description: Not one of the caller's messages
        """
        item = self.datamodel.get(pk, self._base_filters)
        if item is None:
            return self.response_404()
        if item.read_at is None:
            item.read_at = utcnow()
            db.session.commit()
        return self.response(200, id=item.id, result=self.show_model_schema.dump(item))

    @api_expose("/read_all", methods=["POST"])
    @protect()
    @safe
    @permission_name("read_all")
    def read_all(self) -> Any:
        """Mark every unread message of the caller read.
        ---
        post:
          responses:
            200:
              description: How many messages were marked read
        """
        return self.response(200, count=mark_all_read(current_user().id))

    @api_expose("/read", methods=["POST"])
    @protect()
    @safe
    @permission_name("mark_read")
    def mark_many_read(self) -> Any:
        """Mark the caller's messages read: those of ``ids``, or ``all`` (of one ``category`` if given).
        ---
        post:
          requestBody:
            required: true
            content:
              application/json:
                schema:
                  type: object
                  properties:
                    ids:
                      type: array
                      items: {type: integer}
                    all: {type: boolean}
                    category: {type: string, enum: [todo, info]}
          responses:
            200:
              description: How many unread messages were marked read
              content:
                application/json:
                  schema:
                    type: object
                    properties:
                      marked: {type: integer}
            422:
              description: Neither ids nor all, or a value of the wrong kind
        """
        body = request.get_json(silent=True)
        ids, category, every = _mark_read_request(body)
        if ids is None and not every:
            return json_error(422, _("Give the ids of the messages, or all: true."))
        if category not in (None, *notify.CATEGORIES):
            return json_error(422, _("The message type is todo or info."))
        marked = notify.mark_read(db.session, current_user().id, utcnow(), ids=ids, category=category)
        db.session.commit()
        return self.response(200, marked=marked)


def _mark_read_request(body: Any) -> tuple[Any, Any, bool]:
    """(ids or None, category or None, all) of a mark-read request; malformed ids count as none."""
    if not isinstance(body, dict):
        return None, None, False
    ids = body.get("ids")
    if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        ids = None
    elif any(abs(i) > 2**62 for i in ids):
        ids = [i for i in ids if abs(i) <= 2**62]
    return ids, body.get("category"), body.get("all") is True
