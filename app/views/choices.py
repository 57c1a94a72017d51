"""The choices of the search forms' relation filters, cached.

FAB fills every relation filter of a list's search form (部门, 类别, 等级, 渠道 …) by running the
related model's full query — a count and a select — on every page view: eight statements of the
complaint list's fourteen. The choices are short reference lists that change seldom, so they are
kept for a minute (Flask-Caching: in process by default, Redis when ``CACHE_TYPE`` says so) per
related model, caller and declared filters, as plain (id, label) pairs; a change of the model in
this process clears them at once (its generation moves on). A choice is a filter value only: what
a search may return is still decided by the row scope in SQL.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Optional

from flask import current_app, request
from flask_babel import get_locale
from flask_caching import Cache
from markupsafe import Markup
from sqlalchemy import event
from sqlalchemy.orm import Session

from app.views.security import current_principal

cache = Cache()
TIMEOUT = 60
# model name -> generation, moved on whenever a row of that model is flushed in this process
_generation: dict[str, int] = {}
_epoch = [0]  # moved on by forget(): every kept choice and search form is read anew


def forget() -> None:
    """Read every choice and search form anew (rows changed without ORM events: a restore)."""
    _epoch[0] += 1


@dataclass(frozen=True)
class Choice:
    """A related row as a search filter shows it: its key and its label."""

    pk: Any
    label: str
    pk_name: str = "id"

    def __getattr__(self, name: str) -> Any:
        if name == self.pk_name:
            return self.pk
        raise AttributeError(name)

    def __str__(self) -> str:
        return self.label


def _caller() -> str:
    """Who asks, as far as what a choice or a search form may show depends on it."""
    principal = current_principal()
    return f"{principal.user_id}:{sorted(principal.roles)}:{sorted(principal.department_ids)}"


def _key(model: type, declared: Any) -> str:
    digest = hashlib.sha1(f"{declared!r}|{_caller()}".encode()).hexdigest()[:16]
    return f"choices:{_epoch[0]}:{model.__name__}:{_generation.get(model.__name__, 0)}:{digest}"


def cached_choices(related: Any, declared: Optional[list[Any]]) -> Callable[[], list[Choice]]:
    """A ``query_func`` for FAB's QuerySelectField: the related rows the caller may pick, from the
    cache or by one select (no count)."""
    model = related.obj
    pk_name = related.get_pk_name()

    def query() -> list[Choice]:
        key = _key(model, declared)
        rows = cache.get(key)
        if rows is None:
            filters = related.get_filters()
            if declared:
                filters = filters.add_filter_list(declared)
            items = related.apply_all(related.session.query(model), filters).all()
            rows = [(related.get_pk_value(item), str(item)) for item in items]
            cache.set(key, rows, timeout=TIMEOUT)
        return [Choice(pk, label, pk_name) for pk, label in rows]

    return query


def cache_search_choices(view: Any) -> None:
    """Serve the relation filters of ``view``'s search form from :func:`cached_choices`."""
    form = view.search_form
    for name in view.search_columns or []:
        unbound = getattr(form, name, None)
        if unbound is None or "query_func" not in getattr(unbound, "kwargs", {}):
            continue
        related = view.datamodel.get_related_interface(name)
        declared = (view.search_form_query_rel_fields or {}).get(name)
        unbound.kwargs["query_func"] = cached_choices(related, declared)


class KeptSearchWidget:
    """A list's search form as FAB renders it, kept like its choices (TIMEOUT, per caller, the
    generations of the related models and the active search, which the form shows): FAB rebuilt
    the form's fields and the names of every filter of every column on each visit (≈3 ms of a
    list page)."""

    def __init__(self, widget: Any, view: Any) -> None:
        self.widget, self.view = widget, view

    def __call__(self, **kwargs: Any) -> Any:
        state = (
            _epoch[0],
            type(self.view).__name__,
            str(get_locale()),
            request.script_root,
            _caller(),
            [(name, _generation.get(name, 0)) for name in _related_models(self.view)],
            sorted(kwargs.items()),
            self.view._filters.get_filters_values_tojson(),
        )
        key = "search-form:" + hashlib.sha1(repr(state).encode()).hexdigest()
        # The form's inline script carries the response's CSP nonce: kept without it, given this
        # response's.
        nonce = f'nonce="{current_app.jinja_env.globals["csp_nonce"]()}"'
        html = cache.get(key)
        if html is None:
            html = str(self.widget(**kwargs)).replace(nonce, _NONCE)
            cache.set(key, html, timeout=TIMEOUT)
        return Markup(html.replace(_NONCE, nonce))


_NONCE = 'nonce="(kept)"'  # stands for the nonce in a kept rendering


def _related_models(view: Any) -> list[str]:
    """The models of ``view``'s relation filters (whose rows its search form offers), found once."""
    if "_search_related_models" not in view.__dict__:
        view._search_related_models = sorted(
            view.datamodel.get_related_model(name).__name__
            for name in view.search_columns or []
            if view.datamodel.is_relation(name)
        )
    return view._search_related_models


@event.listens_for(Session, "after_flush")
def _models_flushed(session: Session, flush_context: Any) -> None:
    for obj in (*session.new, *session.dirty, *session.deleted):
        name = type(obj).__name__
        _generation[name] = _generation.get(name, 0) + 1
