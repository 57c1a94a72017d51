"""The OpenAPI document of the REST resources, built once per process instead of on every request.

FAB's ``OpenApi.get`` builds the document anew on every call: it parses the YAML docstring of every
method of every resource (33 of them) and converts their marshmallow schemas, 2–3 s a request. What it
builds depends only on the registered resources (code), the API version, the address the caller used
(the ``servers`` entry) and the language of the labels, so it is kept under those; the permission
check still runs on every request. The class keeps FAB's names (``OpenApi``, ``SwaggerView``), so
the routes, endpoints and permission names (``can_get on OpenApi``) are the same as FAB's own.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from flask_appbuilder.api import BaseApi, expose, protect, safe
from flask_appbuilder.api.manager import OpenApi as FabOpenApi
from flask_appbuilder.api.manager import SwaggerView
from flask_babel import get_locale

from app.views.datamodel import kept

__all__ = ["OpenApi", "SwaggerView", "register"]

# Distinct (version, address, language) keys kept; past it the store starts over (the Host header
# is the caller's to choose).
_LIMIT = 32


class OpenApi(FabOpenApi):
    @expose("/<version>/_openapi")
    @protect()
    @safe
    def get(self, version: str) -> Any:
        """Endpoint that renders an OpenApi spec for all views that belong
            to a certain version
        ---
        get:
          description: >-
            Get the OpenAPI spec for a specific API version
          parameters:
          - in: path
            schema:
              type: string
            name: version
          responses:
            200:
              description: The OpenAPI spec
              content:
                application/json:
                  schema:
                    type: object
            404:
              $ref: '#/components/responses/404'
            500:
              $ref: '#/components/responses/500'
        """
        key = (version, request.host_url, str(get_locale()))
        document = kept(self, "_documents", key, lambda: self._build(version), limit=_LIMIT)
        if document is None:
            return self.response_404()
        return self.response(200, **document)

    def _build(self, version: str) -> dict[str, Any] | None:
        """FAB's document of ``version`` (None when no resource has that version)."""
        spec = self._create_api_spec(version)
        found = False
        for view in current_app.appbuilder.baseviews:
            if isinstance(view, BaseApi) and view.version == version:
                view.add_api_spec(spec)
                found = True
        return spec.to_dict() if found else None


def register(appbuilder: Any) -> None:
    """The document and its Swagger page, in place of FAB's (``FAB_ADD_OPENAPI_VIEWS`` is off)."""
    if current_app.config.get("FAB_API_SWAGGER_UI", False):
        appbuilder.add_api(OpenApi)
        appbuilder.add_view_no_menu(SwaggerView)
