"""What every screen and REST resource of the portal shares: permissions, formatting, the
shared transition endpoint, and PDF/xlsx answers."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from typing import Any, Optional

from flask import abort, flash, g, redirect, request, send_file, url_for
from flask_appbuilder import ModelRestApi, ModelView, expose
from flask_appbuilder.api import expose as api_expose
from flask_appbuilder.api import safe
from flask_appbuilder.const import FLAMSG_ERR_SEC_ACCESS_DENIED
from flask_appbuilder.fields import QuerySelectField
from flask_appbuilder.fieldwidgets import Select2Widget
from flask_appbuilder.models.filters import BaseFilter
from flask_appbuilder.security.decorators import permission_name, protect
from flask_appbuilder.urltools import get_order_args, get_page_args, get_page_size_args
from flask_babel import get_locale
from marshmallow import RAISE, Schema
from sqlalchemy import Boolean, or_, select
from wtforms import BooleanField, SelectField
from wtforms.fields.core import UnboundField

from app import lifecycle
from app.access import privacy, scope
from app.complaints import steps as services
from app.extensions import db
from app.i18n import _, _l
from app.models import (
    IMMUTABLE_RECORDS,
    UTCDateTime,
    system_managed,
)
from app.timeutil import format_local
from app.views import masked_search
from app.views.choices import KeptSearchWidget, cache_search_choices
from app.views.datamodel import CappedCount, PortalInterface, kept
from app.views.errors import ERROR_MESSAGES, outage_or_500, readable_400, readable_field_errors
from app.views.filter_values import clean_filters
from app.views.forms import label_enum_filters
from app.views.security import SCOPED, ScopeFilter, current_principal, current_user

# FAB method name -> permission (can_<perm> on the resource's class_permission_name).
MODEL_PERMS = {
    "list": "read",
    "show": "read",
    "get": "read",
    "get_list": "read",
    "info": "read",
    "lookup": "read",
    "lookup_caller": "read",
    "similar": "read",
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
    "mark_many_read": "read",
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


def blank_if_none(value: Any) -> Any:
    """Show nothing, not "None", for an empty field."""
    return "" if value is None else value


def local_time(value: Any) -> str:
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
    return {col.key: local_time for col in model.__table__.columns if isinstance(col.type, UTCDateTime)}


def without_system_columns(model: type, columns: Optional[list[str]]) -> list[str]:
    """``columns`` less those only the application writes (``app.models.SYSTEM_MANAGED``)."""
    hidden = system_managed(model)
    return [name for name in columns or [] if name not in hidden]


def scoped_relations(
    datamodel: Any, columns: Optional[list[str]], declared: Optional[dict[str, Any]]
) -> dict[str, Any]:
    """The choices of every relation among ``columns``: the declared filters plus the caller's row
    scope of the related model (``ScopeFilter`` reads the principal when the choices are queried,
    so one declaration serves every request)."""
    filters = dict(declared or {})
    for name in columns or []:
        if not datamodel.is_relation(name) or datamodel.get_related_model(name) not in scope.RULES:
            continue
        current = list(filters.get(name) or [])
        if not any(len(f) > 1 and f[1] is ScopeFilter for f in current):
            filters[name] = [*SCOPED, *current]
    return filters


def immutable(model: type) -> bool:
    """Records without generic add, edit or delete (``app.models.IMMUTABLE_RECORDS``)."""
    return model in IMMUTABLE_RECORDS


def _name_the_empty_choice(*forms: Any) -> None:
    """Relation drop-downs offer "（无）" for no value: WTForms would print FAB's "__None" code."""
    for form in forms:
        for field in vars(form).values() if form is not None else ():
            if isinstance(field, UnboundField) and issubclass(field.field_class, QuerySelectField):
                field.kwargs.setdefault("blank_text", _l("(none)"))


def boolean_formatters(model: type) -> dict[str, Any]:
    """Show every boolean column of ``model`` as 是 / 否."""
    return {col.key: yes_no for col in model.__table__.columns if isinstance(col.type, Boolean)}


class PortalModelView(ModelView):
    """Base screen: resource permissions, local times, 25 rows a page.

    System-managed columns never reach an add or edit form, every relation's choices are the
    caller's scope, and immutable records get no add, edit or delete page.
    """

    method_permission_name = MODEL_PERMS
    page_size = PAGE_SIZE
    formatters_columns: dict[str, Any] = {}

    def __init__(self, **kwargs: Any):
        # FAB marks every NOT NULL column required, and an unticked checkbox then fails
        # "required": booleans get a plain checkbox that may stay unticked.
        cls = type(self)
        self.add_form_extra_fields = {**boolean_fields(cls, cls.add_columns), **(cls.add_form_extra_fields or {})}
        self.edit_form_extra_fields = {**boolean_fields(cls, cls.edit_columns), **(cls.edit_form_extra_fields or {})}
        if immutable(cls.datamodel.obj):
            self.exclude_route_methods = {*(cls.exclude_route_methods or ()), "add", "edit", "delete"}
        super().__init__(**kwargs)
        self._masked_columns = masked_search.restrict_filters(self._filters, self.datamodel)
        if isinstance(self.datamodel, PortalInterface):
            self.datamodel.eager = tuple(
                name for name in self.list_columns or [] if self.datamodel.is_relation_many_to_one(name)
            )
        blank = {name: blank_if_none for name in set(self.list_columns or []) | set(self.show_columns or [])}
        _name_the_empty_choice(self.add_form, self.edit_form)
        self.formatters_columns = {
            **blank,
            **datetime_formatters(self.datamodel.obj),
            **boolean_formatters(self.datamodel.obj),
            **(type(self).formatters_columns or {}),
        }

    def _get_list_widget(self, *args: Any, **kwargs: Any) -> Any:
        """The list as FAB builds it; then, before its cells are formatted, whether the caller may
        see each shown customer is asked in one query for the page (not one per row)."""
        widgets = super()._get_list_widget(*args, **kwargs)
        # FAB hands the template a generator of the rows: read it once, keep the list.
        rows = widgets["list"].template_args["value_columns"] = list(widgets["list"].template_args["value_columns"])
        customers = [getattr(row.get("customer"), "id", None) for row in rows if isinstance(row, dict)]
        if any(customers):
            current_viewer().prefetch(customers)
        return widgets

    def _get_search_widget(self, form: Any = None, exclude_cols: Any = None, widgets: Any = None) -> Any:
        widgets = super()._get_search_widget(form=form, exclude_cols=exclude_cols, widgets=widgets)
        widgets["search"] = KeptSearchWidget(widgets["search"], self)
        return widgets

    def _list(self, **kwargs: Any) -> Any:
        """The list; masked columns are searched by exact match only, each search logged."""
        if not self._masked_columns:
            return super()._list(**kwargs)
        refused, searches = masked_search.screen_filters(self._masked_columns)
        if refused:
            abort(400, description=refused)
        widgets = super()._list(**kwargs)
        pks = widgets["list"].template_args.get("pks") or []
        masked_search.log_searches(searches, [int(pk) for pk in pks], "list screen")
        return widgets

    def get_in_scope(self, pk: Any) -> Any:
        """The row ``pk`` when the caller's scope includes it; otherwise 404 (out of scope looks missing).
        Read once a request: the case page's widgets and its own sections share the row."""
        read = g.setdefault("_portal_in_scope", {})
        key = (type(self).__name__, str(pk))
        if key not in read:
            read[key] = self.datamodel.get(pk, self._base_filters)
        if read[key] is None:
            abort(404)
        return read[key]

    def _show(self, pk: Any) -> Any:
        """FAB's show widgets, of the row read by get_in_scope."""
        item = self.get_in_scope(pk)
        return self._with_related_views(item, self._get_show_widget(pk, item))

    def _case_widgets(self, pk: Any) -> Any:
        """The widgets of a case page whose template draws its own sections (``block show_form``,
        without ``super()``): its related views' only. FAB's show widget, which formats every show
        column (and loads their relations) for a block the template replaces, is left out."""
        return self._with_related_views(self.get_in_scope(pk), {})

    def _with_related_views(self, item: Any, widgets: dict[str, Any]) -> Any:
        self.update_redirect()
        return self._get_related_views_widgets(
            item, orders=get_order_args(), pages=get_page_args(), page_sizes=get_page_size_args(), widgets=widgets
        )

    def render_show(self, pk: Any, **extra: Any) -> Any:
        """FAB's show page of ``pk`` with what an overriding ``show`` adds to its template."""
        return self.render_template(
            self.show_template,
            pk=pk,
            title=self.show_title,
            widgets=self._show(pk),
            related_views=self._related_views,
            **extra,
        )

    def _init_forms(self) -> None:
        super()._init_forms()
        cache_search_choices(self)
        label_enum_filters(self)

    def _init_properties(self) -> None:
        super()._init_properties()
        model = self.datamodel.obj
        self.add_columns = without_system_columns(model, self.add_columns)
        self.edit_columns = without_system_columns(model, self.edit_columns)
        self.add_form_query_rel_fields = scoped_relations(
            self.datamodel, self.add_columns, self.add_form_query_rel_fields
        )
        self.edit_form_query_rel_fields = scoped_relations(
            self.datamodel, self.edit_columns, self.edit_form_query_rel_fields
        )
        self.search_form_query_rel_fields = scoped_relations(
            self.datamodel, self.search_columns, self.search_form_query_rel_fields
        )

    def take_step_from_form(self, case: Any, step: Callable[..., Any], label_of: Callable[[str], str]) -> Any:
        """A case page's action form (complaints and penalties alike): take the step with the form's
        values, say in a flash how it went, and return to the case page."""
        values = {k: v for k, v in request.form.items() if k not in ("csrf_token", "action", "version")}
        try:
            event = step(
                db.session,
                case,
                request.form.get("action", ""),
                current_principal(),
                values,
                expected_version=request.form.get("version"),
            )
            db.session.commit()
            flash(_("%(action)s: done.", action=label_of(event.action)), "success")
        except (lifecycle.TransitionError, lifecycle.ValidationFailed) as exc:
            db.session.rollback()
            for message in error_messages(exc):
                flash(message, "danger")
        return redirect(url_for(f"{type(self).__name__}.show", pk=case.id))

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

    def response_400(self, message: Optional[str] = None) -> Any:
        return super().response_400(message=readable_400(message))  # type: ignore[misc]

    def response_401(self) -> Any:
        return self.response(401, message=_("Please log in first (a session or a JWT from /api/v1/security/login)."))  # type: ignore[attr-defined]

    def response_403(self) -> Any:
        return self.response(403, message=str(ERROR_MESSAGES[403]))  # type: ignore[attr-defined]

    def response_404(self) -> Any:
        return self.response(404, message=str(ERROR_MESSAGES[404]))  # type: ignore[attr-defined]

    def response_422(self, message: Any = None) -> Any:
        return super().response_422(message=readable_field_errors(message))  # type: ignore[misc]


def mark_capped_count(data: dict[str, Any]) -> None:
    """A REST list counted only up to COUNT_CAP + 1 says so (``count_capped``)."""
    if isinstance(data.get("count"), CappedCount):
        data["count_capped"] = True


class PortalApi(ApiConventions, ModelRestApi):
    """Base REST resource: same permissions as the screens, session or JWT auth.

    As on the screens: no system-managed column in an add or edit schema, relation choices
    (``_info``) from the caller's scope, no generic POST, PUT or DELETE of immutable records.
    """

    method_permission_name = MODEL_PERMS
    allow_browser_login = True
    page_size = PAGE_SIZE
    max_page_size = 100
    # Fields searched by the ``lookup`` endpoint of relation pickers.
    lookup_columns: tuple[str, ...] = ("name",)
    lookup_order: str = "name"

    def __init__(self, **kwargs: Any):
        if immutable(type(self).datamodel.obj):
            self.exclude_route_methods = {*(type(self).exclude_route_methods or ()), "post", "put", "delete"}
        super().__init__(**kwargs)
        self._masked_columns = masked_search.restrict_filters(self._filters, self.datamodel)

    def _init_properties(self) -> None:
        super()._init_properties()
        model = self.datamodel.obj
        self.add_columns = without_system_columns(model, self.add_columns)
        self.edit_columns = without_system_columns(model, self.edit_columns)
        self.add_query_rel_fields = scoped_relations(self.datamodel, self.add_columns, self.add_query_rel_fields)
        self.edit_query_rel_fields = scoped_relations(self.datamodel, self.edit_columns, self.edit_query_rel_fields)

    def pre_get_list(self, data: dict[str, Any]) -> None:
        mark_capped_count(data)

    def get_list_headless(self, **kwargs: Any) -> Any:
        """The list; masked columns are searched by exact match only, each search logged."""
        refused, searches = masked_search.api_filters(kwargs.get("rison"), self._masked_columns)
        if refused:
            return self.response_400(message=refused)
        response = super().get_list_headless(**kwargs)
        if searches and response.status_code == 200:
            masked_search.log_searches(searches, list(response.get_json().get("ids") or []), "REST filter")
        return response

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

    def _handle_filters_args(self, rison_args: dict[str, Any]) -> Any:
        # Values of the column's type, or a 400 (FilterRefused) before FAB applies them.
        filters = clean_filters(self, rison_args.get("filters", []))
        return super()._handle_filters_args({**rison_args, "filters": filters})

    def _init_model_schemas(self) -> None:
        super()._init_model_schemas()
        # FAB makes a schema of every column from an empty list: nothing to write is nothing.
        if not self.add_columns:
            self.add_model_schema = Schema()
        if not self.edit_columns:
            self.edit_model_schema = Schema()
        # An unknown field in a body is the caller's mistake (422), not a crash of the model.
        for schema in (self.add_model_schema, self.edit_model_schema):
            if schema is not None:
                schema.unknown = RAISE

    def _label_columns_json(self, cols: Optional[list[str]] = None) -> dict[str, Any]:
        """FAB's translated labels of ``cols``, kept per language: FAB translated every label of a
        REST list or show on each request (sixty labels, 1 ms)."""
        key = (str(get_locale()), tuple(cols or ()))
        return dict(kept(self, "_labels_json", key, lambda: super(PortalApi, self)._label_columns_json(cols), 256))

    def set_response_key_mappings(self, response: dict[str, Any], func: Any, rison_args: Any, **kwargs: Any) -> None:
        super().set_response_key_mappings(response, func, rison_args, **kwargs)
        # /_info lists the add and edit forms' choices (staff, accounts …): only for those
        # who may add or edit.
        if getattr(func, "__name__", "") == "info":
            sm = self.appbuilder.sm
            if not (self.routed("post") and sm.has_access("can_add", self.class_permission_name)):
                response.pop("add_columns", None)
            if not (self.routed("put") and sm.has_access("can_edit", self.class_permission_name)):
                response.pop("edit_columns", None)

    def routed(self, method: str) -> bool:
        """Whether FAB registered the endpoint ``method`` (``post``, ``put`` …) of this resource."""
        included = self.include_route_methods is None or method in self.include_route_methods
        return included and method not in (self.exclude_route_methods or ())

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
            stmt = stmt.where(or_(*self.lookup_criteria(text)))
        stmt = self.lookup_filter(stmt)
        stmt = stmt.order_by(getattr(model, self.lookup_order)).offset((page - 1) * 20).limit(21)
        rows = list(db.session.scalars(stmt))
        return self.response(
            200,
            results=[{"id": r.id, "text": self.lookup_text(r)} for r in rows[:20]],
            pagination={"more": len(rows) > 20},
        )

    def lookup_criteria(self, text: str) -> list[Any]:
        """What ``lookup`` matches: the text within any of ``lookup_columns``."""
        like = f"%{text}%"
        return [getattr(self.datamodel.obj, c).ilike(like) for c in self.lookup_columns]

    def lookup_filter(self, stmt: Any) -> Any:
        return stmt

    def lookup_text(self, row: Any) -> str:
        return str(row)


class CaseApi(PortalApi):
    """A resource of cases with a lifecycle (complaint, penalty): the case in scope, and the one
    body of their ``POST /<pk>/transition`` endpoints (parse, take the domain step, commit, answer).

    Each resource keeps its own decorated ``transition`` method, so its URL, permission and
    OpenAPI text stay its own; the method calls ``take_transition`` with its domain step.
    """

    #: The 403 message for a case that exists outside the caller's scope (each resource sets it).
    out_of_scope_message: Any

    def _case(self, pk: Any) -> tuple[Any, Any]:
        """The case if in scope; else (None, 403 when it exists elsewhere, 404 when not at all)."""
        case = self.datamodel.get(pk, self._base_filters)
        if case is not None:
            return case, None
        if str(pk).isdecimal() and db.session.get(self.datamodel.obj, int(pk)) is not None:
            return None, self.response(403, message=str(self.out_of_scope_message))
        return None, self.response_404()

    def take_transition(self, pk: Any, step: Callable[..., Any], event_json: Callable[[Any], dict[str, Any]]) -> Any:
        """Take one step on the case: ``{"action": ..., "version": n, <fields>}`` in the body.

        ``step(session, case, action, principal, fields, expected_version=...)`` is the domain's
        step and returns the recorded event; the answer is the event and the case after it.
        """
        case, error = self._case(pk)
        if error is not None:
            return error
        if not request.is_json or not isinstance(request.json, dict):
            return self.response_400(message=_("The request body must be JSON."))
        body = dict(request.json)
        action = str(body.pop("action", "") or "")
        version = body.pop("version", None)
        try:
            event = step(db.session, case, action, current_principal(), body, expected_version=version)
            db.session.commit()
        except (lifecycle.TransitionError, lifecycle.ValidationFailed) as exc:
            db.session.rollback()
            return transition_error_response(self, exc)
        db.session.refresh(case)
        return self.response(200, id=case.id, event=event_json(event), result=self.show_model_schema.dump(case))


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


def transition_error_response(api: Any, exc: Exception) -> Any:
    """A refused lifecycle step as JSON: 409 state/version/phrases, 403 role/scope, 422 fields."""
    if isinstance(exc, services.PhrasesRefused):
        return phrases_refused_response(api, exc)
    if isinstance(exc, lifecycle.ValidationFailed):
        return api.response(422, message=exc.errors)
    if not isinstance(exc, lifecycle.TransitionError):
        raise exc
    if exc.kind == "fields" and exc.errors:
        return api.response(422, message=exc.errors)
    status = {"state": 409, "version": 409, "role": 403, "scope": 403}.get(exc.kind, 422)
    return api.response(status, message=exc.message)


def phrases_refused_response(api: Any, exc: Any) -> Any:
    """409: the text holds forbidden phrases; the message lists them, ``hits`` gives them per field."""
    return api.response(
        409,
        message=exc.message,
        hits={name: [h.as_json() for h in found] for name, found in exc.hits.items()},
        confirm_field=services.CONFIRM_PHRASES,
    )


def choice_field(label: Any, choices: list[tuple[str, Any]], description: Any = None) -> Any:
    # No description is "", not None (FAB would print "None" under the field).
    return SelectField(
        label, choices=list(choices), widget=Select2Widget(), description="" if description is None else description
    )


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
    "circular_draft": "read",  # the HR role is checked inside
    "monthly_circular": "read",
    "index": "read",
    "ledger": "read",
    "ledger_xlsx": "read",
}


YES_NO = {True: _l("Yes"), False: _l("No")}


def yes_no(value: Any) -> str:
    return str(YES_NO[bool(value)])


def error_messages(exc: Exception) -> list[str]:
    if isinstance(exc, lifecycle.TransitionError):
        return [exc.message, *[m for ms in exc.errors.values() for m in ms]]
    if isinstance(exc, lifecycle.ValidationFailed):
        return [m for ms in exc.errors.values() for m in ms]
    return [str(exc)]


def form_errors(form: Any, exc: Exception) -> None:
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
    response = send_file(
        io.BytesIO(data), mimetype="application/pdf", as_attachment=not inline, download_name=filename, max_age=0
    )
    response.headers["Cache-Control"] = "private, no-store"
    if sha256:
        response.headers["ETag"] = f'"{sha256}"'
        response.headers["X-Content-SHA256"] = sha256
    return response


def wants_inline() -> bool:
    return request.args.get("inline", "").lower() in {"1", "true", "yes"}


def xlsx_response(data: bytes, filename: str, sha256: Optional[str] = None) -> Any:
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


def current_user_id() -> int:
    user = current_user()
    return user.id if user is not None else -1
