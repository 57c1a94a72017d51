"""Posts (岗位) and their holders over time: screens and REST resources (scoped like the roster)."""

from __future__ import annotations

from typing import Any

from flask_appbuilder.models.sqla.interface import SQLAInterface

from app import lifecycle
from app.discipline import posts
from app.extensions import db
from app.i18n import _l
from app.models import Post, PostHolding
from app.views.base import PortalApi, PortalModelView, ValidatingApi
from app.views.security import SCOPED

POST_FORM_COLUMNS = ["name", "department", "superior", "active", "sort", "note"]
HOLDING_FORM_COLUMNS = ["post", "staff", "valid_from", "valid_to", "note"]
POST_LABELS = {
    "name": _l("Post"),
    "department": _l("Department"),
    "superior": _l("Superior post"),
    "active": _l("Active"),
    "sort": _l("Sort order"),
    "note": _l("Note"),
    "holdings": _l("Holders"),
}
HOLDING_LABELS = {
    "post": _l("Post"),
    "staff": _l("Holder"),
    "valid_from": _l("Held from"),
    "valid_to": _l("Held until"),
    "note": _l("Note"),
}
HOLDING_DESCRIPTIONS = {
    "valid_from": _l("Empty: held since before the records."),
    "valid_to": _l("Last day held (included). Empty: still held. To move someone, end this holding and add a new one."),
}


def _checked_holding(item: PostHolding) -> None:
    posts.check_holding(db.session, item)


def _checked_post(item: Post) -> None:
    posts.check_post(db.session, item)


def _as_value_error(check: Any, item: Any) -> None:
    """Screens show a ValueError as a flash message: the Chinese reasons, nothing saved."""
    try:
        check(item)
    except lifecycle.ValidationFailed as exc:
        raise ValueError(" ".join(m for ms in exc.errors.values() for m in ms)) from exc


class PostHoldingView(PortalModelView):
    """Who held a post when (a tab on the post page, and its own list)."""

    datamodel = SQLAInterface(PostHolding)
    class_permission_name = "Post"
    base_filters = SCOPED
    list_title = _l("Post holders")
    show_title = add_title = edit_title = _l("Post holding")
    list_columns = ["post", "staff", "valid_from", "valid_to", "note"]
    add_columns = edit_columns = show_columns = HOLDING_FORM_COLUMNS
    search_columns = ["post", "staff", "valid_from", "valid_to"]
    base_order = ("valid_from", "desc")
    label_columns = HOLDING_LABELS
    description_columns = HOLDING_DESCRIPTIONS
    add_form_query_rel_fields = edit_form_query_rel_fields = search_form_query_rel_fields = {
        "post": SCOPED,
        "staff": SCOPED,
    }

    def pre_add(self, item: PostHolding) -> None:
        _as_value_error(_checked_holding, item)

    pre_update = pre_add


class PostView(PortalModelView):
    """The posts of the org chart: which post reports to which, and their holders over time."""

    datamodel = SQLAInterface(Post)
    class_permission_name = "Post"
    base_filters = SCOPED
    list_title = _l("Posts")
    show_title = add_title = edit_title = _l("Post")
    list_columns = ["name", "department", "superior", "active"]
    add_columns = edit_columns = POST_FORM_COLUMNS
    show_columns = ["name", "department", "superior", "active", "note"]
    search_columns = ["name", "department", "superior", "active"]
    related_views = [PostHoldingView]
    base_order = ("sort", "asc")
    label_columns = POST_LABELS
    description_columns = {
        "superior": _l(
            "Chained liability (连带扣分) follows the posts as held on the incident date; a vacant post passes it upward."
        )
    }
    add_form_query_rel_fields = edit_form_query_rel_fields = search_form_query_rel_fields = {
        "department": SCOPED,
        "superior": SCOPED,
    }

    def pre_add(self, item: Post) -> None:
        _as_value_error(_checked_post, item)

    pre_update = pre_add


class PostApi(ValidatingApi, PortalApi):
    """``/api/v1/post/``: posts of the org chart (scoped like the roster)."""

    resource_name = "post"
    datamodel = SQLAInterface(Post)
    class_permission_name = "Post"
    base_filters = SCOPED
    list_columns = ["id", "name", "department.id", "department.name", "superior.id", "superior.name", "active", "sort"]
    show_columns = [*list_columns, "note"]
    add_columns = edit_columns = POST_FORM_COLUMNS
    search_columns = ["name", "department", "superior", "active"]
    order_columns = ["name", "sort"]
    add_query_rel_fields = edit_query_rel_fields = {"department": SCOPED, "superior": SCOPED}

    def pre_add(self, item: Post) -> None:
        _checked_post(item)

    pre_update = pre_add


class PostHoldingApi(ValidatingApi, PortalApi):
    """``/api/v1/post_holding/``: who held which post from when to when."""

    resource_name = "post_holding"
    datamodel = SQLAInterface(PostHolding)
    class_permission_name = "Post"
    base_filters = SCOPED
    list_columns = ["id", "post.id", "post.name", "staff.id", "staff.name", "valid_from", "valid_to", "note"]
    show_columns = list_columns
    add_columns = edit_columns = HOLDING_FORM_COLUMNS
    search_columns = ["post", "staff", "valid_from", "valid_to"]
    order_columns = ["valid_from", "valid_to"]
    add_query_rel_fields = edit_query_rel_fields = {"post": SCOPED, "staff": SCOPED}
    lookup_columns = ("note",)
    lookup_order = "valid_from"

    def pre_add(self, item: PostHolding) -> None:
        _checked_holding(item)

    pre_update = pre_add
