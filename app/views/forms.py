"""Form fields of the portal: search-as-you-type relation pickers and rule validators.

Relation pickers never render every row of the related table: the browser asks the
resource's ``lookup`` endpoint (scoped, paginated) as the user types, and the
submitted ids are loaded back through the same scope, so a forged id is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional

from flask_appbuilder.fields import EnumField
from markupsafe import Markup, escape
from sqlalchemy import select
from wtforms import Field
from wtforms.fields.core import UnboundField
from wtforms.validators import ValidationError

from app.access import scope
from app.extensions import db
from app.i18n import _l

# select2's own texts (its zh-CN file is not among FAB's static files), read by static/js/portal.js.
PICKER_TEXTS = {
    "loading": _l("Searching…"),
    "loading-more": _l("Loading more results…"),
    "no-results": _l("No matching records"),
    "error": _l("The results could not be loaded."),
    "input-too-short": _l("Please enter more characters"),
    "remove-all": _l("Remove all items"),
}


class AjaxSelectWidget:
    """A ``<select>`` enhanced by select2 with remote search (see static/js/portal.js)."""

    def __init__(self, url: str, multiple: bool = False, depends: Optional[str] = None):
        self.url = url
        self.multiple = multiple
        self.depends = depends

    def __call__(self, field: AjaxModelField, **kwargs: Any) -> Markup:
        attrs = {
            "id": field.id,
            "name": field.name,
            "class": "form-control ajax-select " + kwargs.pop("class", ""),
            "data-url": self.url,
            "data-placeholder": str(_l("Type to search…")),
            **{f"data-text-{key}": str(text) for key, text in PICKER_TEXTS.items()},
        }
        if self.depends:
            attrs["data-depends"] = self.depends
        parts = [f'{k}="{escape(v)}"' for k, v in attrs.items()]
        if self.multiple:
            parts.append("multiple")
        options = [f'<option value="{escape(obj.id)}" selected>{escape(str(obj))}</option>' for obj in field.objects()]
        if not self.multiple:
            options.insert(0, '<option value=""></option>')
        return Markup(f"<select {' '.join(parts)}>{''.join(options)}</select>")


class AjaxModelField(Field):
    """Select one (or several) rows of ``model`` by id, within the caller's scope."""

    def __init__(
        self,
        label: Any = None,
        validators: Any = None,
        model: Optional[type] = None,
        url: str = "",
        multiple: bool = False,
        depends: Optional[str] = None,
        principal: Optional[Callable[[], scope.Principal]] = None,
        **kwargs: Any,
    ):
        super().__init__(label, validators, **kwargs)
        self.model = model
        self.multiple = multiple
        self.widget = AjaxSelectWidget(url, multiple=multiple, depends=depends)
        self._principal = principal
        self._invalid = False

    def objects(self) -> list[Any]:
        if self.data is None:
            return []
        return list(self.data) if self.multiple else [self.data]

    def process_formdata(self, valuelist: list[str]) -> None:
        ids = []
        for raw in valuelist:
            for part in str(raw).split(","):
                if part.strip():
                    if not part.strip().isdecimal():
                        self._invalid = True
                        continue
                    ids.append(int(part.strip()))
        if not ids:
            self.data = [] if self.multiple else None
            return
        principal = self._principal() if self._principal else None
        stmt = select(self.model).where(self.model.id.in_(ids))
        if principal is not None:
            stmt = stmt.where(scope.criterion(self.model, principal))
        found = {obj.id: obj for obj in db.session.scalars(stmt)}
        if len(found) != len(set(ids)):
            self._invalid = True
        objs = [found[i] for i in ids if i in found]
        self.data = objs if self.multiple else (objs[0] if objs else None)

    def pre_validate(self, form: Any) -> None:
        if self._invalid:
            raise ValidationError(str(_l("The selected item does not exist or is not available to you.")))


class RuleValidator:
    """Adapts a check from ``app.validation`` (value -> message or None) to WTForms.

    ``required=True`` marks the field as required in the form (the red star).
    """

    def __init__(self, check: Callable[[Any], Optional[str]], required: bool = False):
        self.check = check
        self.field_flags = {"required": True} if required else {}

    def __call__(self, form: Any, field: Field) -> None:
        message = self.check(field.data)
        if message:
            raise ValidationError(message)


class DateTimeLocalWidget:
    """A native ``<input type="datetime-local">`` (FAB's picker drops the time of day)."""

    def __call__(self, field: Field, **kwargs: Any) -> Markup:
        value = field._value() if hasattr(field, "_value") else ""
        return Markup(
            f'<input type="datetime-local" class="form-control" id="{escape(field.id)}" '
            f'name="{escape(field.name)}" value="{escape(value)}" step="60">'
        )


DATETIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"]


class LabelledEnumField(EnumField):
    """FAB's enum field with each choice shown by its label (已登记), not its stored code
    (registered); labelled when the form is made, so in the request's language."""

    def __init__(self, *args: Any, labeller: Callable[[Any], str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.choices = [(value, labeller(value)) for value, _code in self.choices]


def label_enum_filters(view: Any) -> None:
    """Show the enum filters of ``view``'s search form (状态, 判定结果 …) by the labels its list
    shows them with (its ``formatters_columns``)."""
    form, formatters = view.search_form, type(view).formatters_columns or {}
    for name in view.search_columns or []:
        unbound = getattr(form, name, None)
        labeller = formatters.get(name)
        if labeller is None or unbound is None or not issubclass(getattr(unbound, "field_class", object), EnumField):
            continue
        setattr(form, name, UnboundField(LabelledEnumField, *unbound.args, labeller=labeller, **unbound.kwargs))
