"""Service phrases (服务忌语 and 文明用语), reply scripts, and the reply check."""

from __future__ import annotations

from typing import Any

from flask import request
from flask_appbuilder.api import BaseApi, safe
from flask_appbuilder.api import expose as api_expose
from flask_appbuilder.fieldwidgets import BS3TextAreaFieldWidget
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import protect
from wtforms import BooleanField, TextAreaField
from wtforms.validators import DataRequired

from app import labels, lifecycle
from app.complaints import phrases
from app.complaints import steps as services
from app.extensions import db
from app.i18n import _, _l
from app.models import (
    PhraseKind,
    ReplyScript,
    ServicePhrase,
)
from app.views.base import (
    ApiConventions,
    PortalApi,
    PortalModelView,
    ValidatingApi,
    choice_field,
    error_messages,
    phrases_refused_response,
    yes_no,
)
from app.views.reference import reference_api
from app.views.security import SCOPED, current_principal

# Column lists that the screen and the REST resource of a model share.
SERVICE_PHRASE_FORM_COLUMNS = [
    "kind",
    "number",
    "phrase",
    "category",
    "suggestion",
    "exceptions",
    "note",
    "is_guideline",
    "active",
    "sort",
]
SERVICE_PHRASE_ORDER_COLUMNS = ["kind", "number", "sort"]


def _confirm_phrases_field() -> Any:
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


class ReplyScriptApi(
    reference_api(
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


_PHRASE_LABELS = {
    "kind": _l("List"),
    "number": _l("Item no."),
    "phrase": _l("Phrase"),
    "category": _l("Category"),
    "suggestion": _l("Suggested alternative"),
    "exceptions": _l("Exceptions (harmless compound words)"),
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
    list_columns = ["kind", "number", "phrase", "exceptions", "category", "suggestion", "is_guideline", "active"]
    add_columns = edit_columns = show_columns = SERVICE_PHRASE_FORM_COLUMNS
    search_columns = ["kind", "phrase", "category", "suggestion", "active"]
    order_columns = SERVICE_PHRASE_ORDER_COLUMNS
    base_order = ("sort", "asc")
    label_columns = _PHRASE_LABELS
    formatters_columns = {
        "kind": lambda v: labels.label(PHRASE_KINDS, v),
        "is_guideline": yes_no,
        "active": yes_no,
    }
    description_columns = {
        "phrase": _l(
            "Words separated by 、 are matched each on their own; a bracket at the end is an alternative "
            "(你管不着(你少管闲事)), a bracket inside is optional. A phrase of several clauses (少啰嗦,快点讲) "
            "is also found clause by clause (clauses of 3 characters or more). Punctuation, spaces and "
            "traditional characters are folded before matching."
        ),
        "exceptions": _l(
            "Compound words in which the phrase is harmless, one per line or separated by 、 "
            "(e.g. 老头乐 for 老头, 神经病学 for 神经病): a phrase inside one of them is not flagged."
        ),
        "is_guideline": _l("A rule of conduct listed with the phrases; it is shown but never matched."),
    }
    add_form_extra_fields = edit_form_extra_fields = {
        "kind": choice_field(_l("List"), list(PHRASE_KINDS.items())),
    }

    def prefill_form(self, form: Any, pk: Any) -> None:
        item = self.datamodel.get(pk)
        form.kind.data = getattr(item.kind, "value", item.kind)

    def pre_add(self, item: ServicePhrase) -> None:
        try:
            _check_phrase_row(item)
        except lifecycle.ValidationFailed as exc:
            raise ValueError(" ".join(error_messages(exc))) from exc

    pre_update = pre_add


class ServicePhraseApi(ValidatingApi, PortalApi):
    """``/api/v1/servicephrase/``: the phrase lists (administrators edit them)."""

    resource_name = "servicephrase"
    datamodel = SQLAInterface(ServicePhrase)
    class_permission_name = "ServicePhrase"
    base_filters = SCOPED
    list_columns = show_columns = ["id", *ServicePhraseView.show_columns]
    add_columns = edit_columns = SERVICE_PHRASE_FORM_COLUMNS
    search_columns = ["kind", "phrase", "category", "active"]
    order_columns = SERVICE_PHRASE_ORDER_COLUMNS
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
