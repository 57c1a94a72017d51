"""Declarative REST resources stay consistent with their models (a wrong name is a 500 at run time)."""

import importlib
import pkgutil

import app.views
from app.views.base import PortalApi


def _portal_apis():
    for module in pkgutil.iter_modules(app.views.__path__):
        views = importlib.import_module(f"app.views.{module.name}")
        for name in dir(views):
            cls = getattr(views, name)
            if isinstance(cls, type) and issubclass(cls, PortalApi) and getattr(cls, "datamodel", None) is not None:
                yield name, cls


def test_every_lookup_searches_and_orders_by_real_columns(app):
    wrong = {
        name: [c for c in (*cls.lookup_columns, cls.lookup_order) if not hasattr(cls.datamodel.obj, c)]
        for name, cls in _portal_apis()
    }
    assert {k: v for k, v in wrong.items() if v} == {}
    assert len(wrong) >= 20  # the resources were found at all
