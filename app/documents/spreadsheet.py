"""Excel workbooks the portal writes (analysis reports, the penalty ledger): every cell goes
through ``text_cell`` so that user text is never taken for a formula.

OWASP's CSV/formula injection guidance: a cell whose text starts with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return is evaluated by Excel (``=HYPERLINK(…)``, ``=cmd|…``);
such text is written with a leading single quote so that Excel shows it as text.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def text_cell(value: Any) -> Any:
    """The value as written into a cell: numbers, dates and None unchanged; text made inert
    (a quote before a formula trigger, control characters that Excel refuses removed)."""
    if not isinstance(value, str):
        return value
    value = ILLEGAL_CHARACTERS_RE.sub("", value)
    if value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def append_row(sheet: Any, values: Iterable[Any]) -> None:
    """Append one row of cells to an openpyxl worksheet, each through ``text_cell``."""
    sheet.append([text_cell(v) for v in values])
