"""The Flask extensions every layer shares: the SQLAlchemy handle and migrations.

They live apart from the app factory so that domain packages can reach ``db``
without importing ``app/__init__.py`` (which imports the screens).
"""

from __future__ import annotations

from flask_appbuilder.models.sqla import Model
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

db = SQLAlchemy(model_class=Model)
migrate = Migrate()
