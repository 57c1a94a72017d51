"""The files a printed document may use: ``portal-static:<root>/<path>`` URLs, resolved and read.

Kept apart from :mod:`app.documents.printing` (WeasyPrint), so that importing the portal does not
load WeasyPrint: only a process that prints pays for it.
"""

from __future__ import annotations

import os

APP_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEMPLATES_DIR = os.path.join(APP_DIR, "templates")
DOCUMENTS_DIR = os.path.join(TEMPLATES_DIR, "documents")
STATIC_DIR = os.path.join(APP_DIR, "static")

SCHEME = "portal-static"
# portal-static:<root>/<path> -> directory the root names.
ROOTS = {"documents": DOCUMENTS_DIR, "static": STATIC_DIR}


class URLRefused(ValueError):
    """A document asked for a resource outside the app's templates and static files."""


def resolve(url: str) -> str:
    """The file behind a ``portal-static:<root>/<path>`` URL, or raise :class:`URLRefused`."""
    prefix = SCHEME + ":"
    if not isinstance(url, str) or not url.startswith(prefix):
        raise URLRefused(f"URL not allowed in documents: {url[:200]!r}")
    rest = url[len(prefix) :].split("?", 1)[0].split("#", 1)[0].lstrip("/")
    root_name, _, relative = rest.partition("/")
    root = ROOTS.get(root_name)
    if root is None or not relative:
        raise URLRefused(f"unknown document resource: {url[:200]!r}")
    path = os.path.realpath(os.path.join(root, relative))
    if os.path.commonpath([path, os.path.realpath(root)]) != os.path.realpath(root) or not os.path.isfile(path):
        raise URLRefused(f"no such document resource: {url[:200]!r}")
    return path


_file_cache: dict[str, tuple[float, bytes]] = {}


def read_cached(path: str) -> bytes:
    mtime = os.path.getmtime(path)
    cached = _file_cache.get(path)
    if cached is None or cached[0] != mtime:
        with open(path, "rb") as fh:
            cached = (mtime, fh.read())
        _file_cache[path] = cached
    return cached[1]
