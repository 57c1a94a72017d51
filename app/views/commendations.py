"""Commendations (表扬), on their own and as a tab of a staff member."""

from __future__ import annotations

import io
import os
from typing import Any

from flask import abort, current_app, request, send_file
from flask_appbuilder import expose, has_access
from flask_appbuilder.api import expose as api_expose
from flask_appbuilder.api import safe
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import permission_name, protect
from wtforms import FileField
from wtforms.validators import DataRequired

from app import lifecycle
from app.discipline import cases as discipline
from app.discipline import penalties
from app.i18n import _l
from app.models import (
    Commendation,
    Staff,
)
from app.views.base import (
    DISCIPLINE_PERMS,
    PortalApi,
    PortalModelView,
    ValidatingApi,
    choice_field,
    error_messages,
    yes_no,
)
from app.views.forms import AjaxModelField
from app.views.security import SCOPED, current_principal, current_user

# Column lists that the screen and the REST resource of a model share.
COMMENDATION_SEARCH_COLUMNS = ["commended_on", "staff", "department", "source", "offsets_complaint"]


class CommendationView(PortalModelView):
    datamodel = SQLAInterface(Commendation)
    class_permission_name = "Commendation"
    method_permission_name = DISCIPLINE_PERMS
    base_filters = SCOPED
    list_title = _l("Commendations")
    show_title = add_title = edit_title = _l("Commendation")
    list_columns = ["commended_on", "staff", "department", "source", "content", "offsets_complaint"]
    add_columns = edit_columns = ["staff", "commended_on", "source", "content", "offsets_complaint", "evidence_file"]
    show_columns = [
        "commended_on",
        "staff",
        "department",
        "source",
        "content",
        "offsets_complaint",
        "evidence_filename",
        "recorded_by",
        "recorded_at",
    ]
    search_columns = COMMENDATION_SEARCH_COLUMNS
    base_order = ("commended_on", "desc")
    show_template = "commendation/show.html"
    label_columns = {
        "commended_on": _l("Date"),
        "staff": _l("Staff member"),
        "department": _l("Department"),
        "source": _l("Source"),
        "content": _l("What the employee was praised for"),
        "offsets_complaint": _l("Offsets a complaint in grading"),
        "evidence_file": _l("Evidence (letter, recording)"),
        "evidence_filename": _l("Evidence"),
        "recorded_by": _l("Recorded by"),
        "recorded_at": _l("Recorded at"),
    }
    formatters_columns = {
        "source": lambda v: str(penalties.COMMENDATION_SOURCE_LABELS.get(v, v)),
        "offsets_complaint": yes_no,
    }
    search_form_query_rel_fields = {"department": SCOPED, "staff": SCOPED}

    def __init__(self, **kwargs: Any):
        type(self).add_form_extra_fields = type(self).edit_form_extra_fields = {
            "staff": AjaxModelField(
                _l("Staff member"),
                model=Staff,
                url="/api/v1/staff/lookup",
                principal=current_principal,
                validators=[DataRequired(message=_l("Please choose the staff member."))],
            ),
            "source": choice_field(
                _l("Source"), [(c, penalties.COMMENDATION_SOURCE_LABELS[c]) for c in penalties.COMMENDATION_SOURCES]
            ),
            "evidence_file": FileField(_l("Evidence (letter, recording)")),
        }
        super().__init__(**kwargs)

    def _take_evidence(self, item: Commendation) -> None:
        upload = request.files.get("evidence_file")
        if upload is None or not upload.filename:
            return
        data = upload.read()
        ext = os.path.splitext(upload.filename)[1].lower()
        allowed = current_app.config["ATTACHMENT_ALLOWED_TYPES"]
        if ext not in allowed or not data or len(data) > current_app.config["ATTACHMENT_MAX_BYTES"]:
            raise ValueError(
                str(
                    _l(
                        "Files of type “%(ext)s” are not accepted. Allowed: %(allowed)s.",
                        ext=ext or upload.filename,
                        allowed=", ".join(sorted(allowed)),
                    )
                )
            )
        item.evidence, item.evidence_content_type = data, allowed[ext]
        item.evidence_filename = os.path.basename(upload.filename)[:255]

    def pre_add(self, item: Commendation) -> None:
        try:
            discipline.check_commendation(item)
        except lifecycle.ValidationFailed as exc:
            raise ValueError(" ".join(error_messages(exc))) from exc
        self._take_evidence(item)
        user = current_user()
        if item.recorded_by_id is None:
            item.recorded_by_id = user.id if user else None

    pre_update = pre_add

    @expose("/evidence/<int:pk>", methods=["GET"])
    @has_access
    def evidence(self, pk: int) -> Any:
        item = self.datamodel.get(pk, self._base_filters)
        if item is None or item.evidence is None:
            abort(404)
        return send_file(
            io.BytesIO(item.evidence),
            mimetype=item.evidence_content_type or "application/octet-stream",
            as_attachment=True,
            download_name=item.evidence_filename or "evidence",
            max_age=0,
        )


class CommendationApi(ValidatingApi, PortalApi):
    resource_name = "commendation"
    datamodel = SQLAInterface(Commendation)
    class_permission_name = "Commendation"
    method_permission_name = DISCIPLINE_PERMS
    base_filters = SCOPED
    list_columns = show_columns = [
        "id",
        "commended_on",
        "staff.id",
        "staff.name",
        "department.id",
        "department.name",
        "source",
        "content",
        "offsets_complaint",
        "evidence_filename",
        "recorded_by.id",
        "recorded_at",
    ]
    add_columns = edit_columns = ["staff", "commended_on", "source", "content", "offsets_complaint"]
    add_query_rel_fields = edit_query_rel_fields = {"staff": SCOPED}
    search_columns = COMMENDATION_SEARCH_COLUMNS
    order_columns = ["commended_on"]
    base_order = ("commended_on", "desc")
    lookup_columns = ("content",)
    lookup_order = "id"

    def pre_add(self, item: Commendation) -> None:
        discipline.check_commendation(item)
        user = current_user()
        if item.recorded_by_id is None:
            item.recorded_by_id = user.id if user else None

    pre_update = pre_add

    @api_expose("/<int:pk>/evidence", methods=["GET"])
    @protect()
    @safe
    @permission_name("evidence")
    def evidence(self, pk: int) -> Any:
        """The evidence file of a commendation.
        ---
        get:
          responses:
            200:
              description: The file
        """
        item = self.datamodel.get(pk, self._base_filters)
        if item is None or item.evidence is None:
            return self.response_404()
        return send_file(
            io.BytesIO(item.evidence),
            mimetype=item.evidence_content_type or "application/octet-stream",
            as_attachment=True,
            download_name=item.evidence_filename or "evidence",
            max_age=0,
        )


class StaffCommendationView(CommendationView):
    """Commendations tab on a staff member's page."""

    list_title = _l("Commendations")
    list_columns = ["commended_on", "source", "content", "offsets_complaint", "recorded_by"]
