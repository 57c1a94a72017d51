"""Translation helpers usable outside a request (domain modules, jobs, CLI)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

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


def translated(memo: dict[int, str], text: Any) -> str:
    """``str(text)`` translated once per ``memo``: a lazy string looks its translation up again on
    every ``str()`` (three context look-ups), which a deadline scan did 20,000 times a batch.

    ``memo`` lives as long as one language does (a scan batch); ``text`` must outlive it (a
    module-level lazy string), since it is remembered by its ``id``."""
    key = id(text)
    hit = memo.get(key)
    if hit is None:
        hit = memo[key] = str(text)
    return hit


__all__ = ["PRINT_LOCALE", "_", "_l", "gettext", "lazy_gettext", "ngettext", "print_language", "translated"]
