"""The application: Flask, SQLAlchemy, Flask-AppBuilder, migrations and CLI.

``flask --app app …`` finds :func:`create_app`. Flask-AppBuilder 5 must be set up
inside an application context, and one ``AppBuilder`` is made per application so
that tests can build as many apps as they need.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any, Optional

from flask import Flask
from flask_appbuilder import AppBuilder

from app.extensions import db, migrate

ROOT_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))

__all__ = ["ROOT_DIR", "create_app", "db", "migrate"]

log = logging.getLogger(__name__)


def connect_receivers() -> None:
    """Import the modules whose blinker receivers react to the domain's signals (app/signals.py).

    Imported here, not at the top: importing them loads the whole domain, which the app
    factory does once per process; importing ``app`` alone (e.g. for ``db``) stays light.
    """
    from app.complaints import policy_rules  # noqa: F401
    from app.discipline import overtime  # noqa: F401
    from app.messages import alerts  # noqa: F401


def engine_options(config: Mapping[str, Any]) -> dict[str, Any]:
    """The engine options of the configured database. PostgreSQL sessions run without JIT
    compilation: the portal's statements are short, and PostgreSQL compiled any of them its
    estimate put above ``jit_above_cost`` — 130 ms of compiling for a 待我处理 count that runs in
    60 ms (bench/results.md)."""
    options = dict(config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    if str(config.get("SQLALCHEMY_DATABASE_URI", "")).startswith("postgresql"):
        connect = dict(options.get("connect_args") or {})
        connect["options"] = f"{connect.get('options', '')} -c jit=off".strip()
        options["connect_args"] = connect
    return options


def create_app(config: Optional[Mapping[str, Any]] = None) -> Flask:
    """Build the portal; ``config`` overrides settings from ``config.py``."""
    app = Flask(
        __name__,
        instance_path=os.path.join(ROOT_DIR, "instance"),
        static_folder="static",
        static_url_path="/static/portal",
    )
    app.config.from_object("config")
    if config:
        app.config.update(config)
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(app.config)
    os.makedirs(app.instance_path, exist_ok=True)
    logging.basicConfig(
        level=app.config.get("LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("flask_appbuilder").setLevel(logging.WARNING)

    db.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(ROOT_DIR, "migrations"))

    from app import models  # noqa: F401  (registers the tables on the metadata)
    from app.access import login_limits  # noqa: F401  (registers the portaldb:// rate-limit storage)

    connect_receivers()

    # The OpenAPI document is registered by the portal (app/views/openapi.py keeps it built).
    app.config["FAB_ADD_OPENAPI_VIEWS"] = False
    with app.app_context():
        appbuilder = AppBuilder(update_perms=False)
        appbuilder.init_app(app, db.session)
        # The screens (and through them the whole domain) load when an app is built, so that
        # importing ``app`` for ``db`` (config.py, migrations) stays light.
        from app import views

        views.register(appbuilder)

    from app import cli, web  # the entry points above the screens (see connect_receivers)

    web.init_app(app)
    cli.init_app(app)
    return app
