"""Clustered complaints (集中性投诉 / 群体性投诉)."""

from __future__ import annotations

from typing import Any, Optional

from flask import request, url_for
from flask_appbuilder import expose
from flask_appbuilder.api import expose as api_expose
from flask_appbuilder.api import safe
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import has_access, permission_name, protect
from markupsafe import Markup
from marshmallow import Schema, fields, validate

from app import labels
from app.access import scope
from app.complaints import clusters
from app.complaints import steps as services
from app.extensions import db
from app.i18n import _, _l
from app.models import (
    Cluster,
    Complaint,
)
from app.timeutil import utcnow
from app.views.base import MODEL_PERMS, PortalApi, PortalModelView, current_user_id
from app.views.security import SCOPED, current_principal

_CLUSTER_KIND = {
    "concentrated": _l("Concentrated complaints (集中性投诉)"),
    "group": _l("Group complaint (群体性投诉)"),
}


_CLUSTER_STATUS = {"open": _l("Open"), "closed": _l("Closed")}


def _cluster_cases(cases: Any) -> Markup:
    links = [
        Markup('<a href="{}">{}</a> {}').format(
            url_for("ComplaintView.show", pk=c.id), c.number, labels.label(labels.STATUS, c.status)
        )
        for c in cases or []
    ]
    return Markup("<br>").join(links)


class ClusterCreateSchema(Schema):
    """POST /api/v1/cluster/: a cluster made by hand (every field of the request, for the OpenAPI spec)."""

    department = fields.Integer(required=True, metadata={"description": "Id of the complained department"})
    category = fields.Integer(allow_none=True, metadata={"description": "Id of the complaint category (optional)"})
    kind = fields.String(
        validate=validate.OneOf(clusters.KINDS),
        metadata={"description": "concentrated (集中性投诉, default) or group (群体性投诉)"},
    )
    note = fields.String(allow_none=True, metadata={"description": "Why these cases belong together"})
    complaints = fields.List(
        fields.Integer(),
        required=True,
        validate=validate.Length(min=1),
        metadata={"description": "Ids of the complaints of the cluster (of the same department, in your scope)"},
    )


class ClusterView(PortalModelView):
    """Clusters of complaints: their cases, first and last seen, status."""

    datamodel = SQLAInterface(Cluster)
    class_permission_name = "Cluster"
    base_filters = SCOPED
    base_permissions = ["can_read"]
    list_title = _l("Clustered complaints")
    show_title = _l("Cluster of complaints")
    show_template = "cluster/show.html"
    list_columns = ["id", "kind", "department", "category", "first_seen", "last_seen", "status", "created_by"]
    show_columns = [
        "id",
        "kind",
        "department",
        "category",
        "first_seen",
        "last_seen",
        "status",
        "created_by",
        "created_at",
        "replied_at",
        "note",
        "complaints",
    ]
    search_columns = ["department", "category", "status", "first_seen"]
    base_order = ("first_seen", "desc")
    label_columns = {
        "id": _l("Cluster"),
        "kind": _l("Kind"),
        "department": _l("Department"),
        "category": _l("Category"),
        "first_seen": _l("First seen"),
        "last_seen": _l("Last seen"),
        "status": _l("Status"),
        "created_by": _l("Created by"),
        "created_at": _l("Created at"),
        "replied_at": _l("Unified reply at"),
        "note": _l("Note"),
        "complaints": _l("Cases"),
    }
    formatters_columns = {
        "kind": lambda v: str(_CLUSTER_KIND.get(v, v)),
        "status": lambda v: str(_CLUSTER_STATUS.get(v, v)),
        "created_by": lambda v: v if v is not None else _("Detected by the scan"),
        "complaints": _cluster_cases,
    }

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk: Any) -> Any:
        cluster = self.get_in_scope(pk)
        return self.render_show(
            pk,
            why_grouped=clusters.why_grouped(cluster),
        )


def _cluster_json(cluster: Cluster) -> dict[str, Any]:
    return {
        "id": cluster.id,
        "kind": cluster.kind,
        "department": {"id": cluster.department_id, "name": cluster.department.name if cluster.department else None},
        "category": {"id": cluster.category_id, "name": cluster.category.name if cluster.category else None},
        "key": cluster.key,
        "first_seen": cluster.first_seen.isoformat() if cluster.first_seen else None,
        "last_seen": cluster.last_seen.isoformat() if cluster.last_seen else None,
        "status": cluster.status,
        "created_by": cluster.created_by_id,
        "replied_at": cluster.replied_at.isoformat() if cluster.replied_at else None,
        "note": cluster.note,
        "complaints": [
            {"id": c.id, "number": c.number, "status": getattr(c.status, "value", c.status)} for c in cluster.complaints
        ],
        "why_grouped": clusters.why_grouped(cluster),
    }


class ClusterApi(PortalApi):
    """``/api/v1/cluster/``: clusters of complaints, scoped by department; linked and answered by HR."""

    resource_name = "cluster"
    datamodel = SQLAInterface(Cluster)
    class_permission_name = "Cluster"
    base_filters = SCOPED
    base_permissions = ["can_read", "can_add", "can_edit"]
    method_permission_name = {**MODEL_PERMS, "cases": "edit", "reply": "edit", "close": "edit"}
    list_columns = [
        "id",
        "kind",
        "department.id",
        "department.name",
        "category.id",
        "category.name",
        "key",
        "first_seen",
        "last_seen",
        "status",
        "created_by.id",
        "replied_at",
        "note",
    ]
    show_columns = [*list_columns, "complaints.id", "complaints.number"]
    lookup_columns = ("key", "note")
    lookup_order = "id"
    add_columns = ["kind", "department", "category", "note"]
    add_model_schema = ClusterCreateSchema()
    search_columns = ["department", "category", "status", "kind", "first_seen"]
    order_columns = ["first_seen", "last_seen", "id"]
    base_order = ("first_seen", "desc")

    def post_headless(self) -> Any:
        """Create a cluster by hand: ``{department, category?, kind?, note?, complaints: [ids]}``."""
        if current_principal().staff_id is None:
            return self.response(403, message=_("Your account is not linked to a staff record."))
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return self.response_400(message=_("The request body must be JSON."))
        criterion = scope.criterion(Complaint, current_principal())
        try:
            cluster = clusters.create_by_hand(db.session, body, current_user_id(), criterion, utcnow())
            result = _cluster_json(cluster)
            db.session.commit()
        except clusters.ClusterRefused as exc:
            db.session.rollback()
            return self.response(400, message=exc.message, reasons=exc.reasons)
        return self.response(201, id=result["id"], result=result)

    def put_headless(self, pk: Any) -> Any:
        return self.response(405, message=_("Use the cluster's cases, reply and close actions."))

    def _cluster(self, pk: int) -> Optional[Cluster]:
        return self.datamodel.get(pk, self._base_filters)

    @api_expose("/<int:pk>/cases", methods=["POST"])
    @protect()
    @safe
    @permission_name("cases")
    def cases(self, pk: int) -> Any:
        """Link cases into the cluster by hand: ``{"complaints": [ids]}``.
        ---
        post:
          requestBody:
            required: true
            content:
              application/json:
                schema:
                  type: object
                  required: [complaints]
                  properties:
                    complaints:
                      type: array
                      items: {type: integer}
                      description: Ids of the complaints to link (of the cluster's department, in your scope)
          responses:
            200:
              description: The cluster with its cases
            400:
              description: A case does not exist or is about another department
            404:
              description: No such cluster in the caller's scope
        """
        cluster = self._cluster(pk)
        if cluster is None:
            return self.response_404()
        body = request.get_json(silent=True)
        ids = body.get("complaints", body.get("ids")) if isinstance(body, dict) else body
        criterion = scope.criterion(Complaint, current_principal())
        try:
            added = clusters.link_by_hand(db.session, cluster, ids, current_user_id(), criterion, utcnow())
            result = _cluster_json(cluster)
            db.session.commit()
        except clusters.ClusterRefused as exc:
            db.session.rollback()
            return self.response(400, message=exc.message, reasons=exc.reasons)
        return self.response(200, added=added, result=result)

    @api_expose("/<int:pk>/reply", methods=["POST"])
    @protect()
    @safe
    @permission_name("reply")
    def reply(self, pk: int) -> Any:
        """One reply to all the cluster's cases still waiting for it, in one transaction: ``{"reply_text": ...}``.
        ---
        post:
          requestBody:
            required: true
            content:
              application/json:
                schema:
                  type: object
                  required: [reply_text]
                  properties:
                    reply_text: {type: string, description: The reply to every customer of the cluster}
                    confirm_phrases:
                      type: boolean
                      description: Send although the phrase checker flagged wording (after reading the hits)
          responses:
            200:
              description: The cases replied to
            400:
              description: No reply text
            404:
              description: No such cluster in the caller's scope
            409:
              description: Some cases refuse the reply (listed); nothing was applied
        """
        cluster = self._cluster(pk)
        if cluster is None:
            return self.response_404()
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return self.response_400(message=_("The request body must be JSON."))
        text = body.get("reply_text", body.get("reply"))
        if not isinstance(text, str) or not text.strip():
            return self.response_400(message=_("Please write the reply to the customers."))
        try:
            replied = clusters.unified_reply(
                db.session,
                cluster,
                current_principal(),
                text,
                utcnow(),
                confirm_phrases=body.get(services.CONFIRM_PHRASES),
            )
            numbers = [{"id": c.id, "number": c.number} for c in replied]
            db.session.commit()
        except clusters.ClusterRefused as exc:
            db.session.rollback()
            return self.response(409, message=exc.message, reasons=exc.reasons)
        return self.response(200, replied=numbers, cluster=pk)

    @api_expose("/<int:pk>/close", methods=["POST"])
    @protect()
    @safe
    @permission_name("close")
    def close(self, pk: int) -> Any:
        """Close the cluster (no more cases join it).
        ---
        post:
          responses:
            200:
              description: Closed
        """
        cluster = self._cluster(pk)
        if cluster is None:
            return self.response_404()
        clusters.close(db.session, cluster)
        db.session.commit()
        return self.response(200, id=pk, status="closed")
