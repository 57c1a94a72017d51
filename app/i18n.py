"""Translation helpers usable outside a request (domain modules, jobs, CLI)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask_babel import force_locale, gettext, lazy_gettext, ngettext

# Formal documents (notices, 通报, the record form, reports) are printed in Simplified
# Chinese whatever the language of the screen that asked for them.
PRINT_LOCALE = "zh"

_ = gettext
_l = lazy_gettext


@contextmanager
def print_language() -> Iterator[None]:
    """Translate into the language of printed documents for the duration of the block."""
    with force_locale(PRINT_LOCALE):
        yield


__all__ = ["PRINT_LOCALE", "_", "_l", "gettext", "lazy_gettext", "ngettext", "print_language"]
