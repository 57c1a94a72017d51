"""Printing to PDF with WeasyPrint, and joining PDFs (pypdf).

Imported on the first print, not with the portal: WeasyPrint's import costs ~0.6 s of every
process start (the CLI, each gunicorn worker), and most never print. :mod:`app.documents.render`
reaches it through thin functions.

WeasyPrint gets :class:`PortalURLFetcher`, which serves only ``portal-static:`` files
(:mod:`app.documents.resources`) and refuses every other URL.
"""

from __future__ import annotations

import io
import logging
import mimetypes
import os
import threading
from collections.abc import Iterable
from typing import Any

from pypdf import PdfWriter
from weasyprint import CSS, HTML
from weasyprint.text.ffi import harfbuzz, harfbuzz_subset
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import URLFetcher, URLFetcherResponse

from app.documents import fonts
from app.documents.resources import SCHEME, URLRefused, read_cached, resolve

log = logging.getLogger("app.documents.render")  # the name the refused-URL warnings always had
# WeasyPrint reports every rendering step at INFO; keep its warnings (refused URLs, fonts).
logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)


class PortalURLFetcher(URLFetcher):
    """Serves ``portal-static:`` files from the allowed roots; refuses every other URL.

    Refused URLs are kept in ``refused`` (tests and logs read them); WeasyPrint skips
    the resource and goes on, so a hostile reference can neither leak nor break a print.
    """

    def __init__(self) -> None:
        super().__init__(allowed_protocols=(SCHEME,), allow_redirects=False, fail_on_errors=False)
        self.refused: list[str] = []
        self.served: list[str] = []

    def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
        try:
            path = resolve(url)
        except URLRefused:
            self.refused.append(url)
            log.warning("document: refused URL %s", url[:200])
            raise
        self.served.append(url)
        mimetype = mimetypes.guess_type(path)[0] or "application/octet-stream"
        return URLFetcherResponse(url, body=read_cached(path), headers={"Content-Type": mimetype})


# WeasyPrint's fontconfig/Pango state is shared by the process: one render at a time.
_render_lock = threading.Lock()
# One font configuration for every print (loading fontconfig's fonts costs ~10 ms a document);
# made again if the fontconfig file changes (the cut fonts appear).
_font_config: dict[str, FontConfiguration] = {}


def _shared_font_config() -> FontConfiguration:
    fonts.ensure()
    key = os.environ.get("FONTCONFIG_FILE", "")
    if key not in _font_config:
        _font_config.clear()
        _font_config[key] = FontConfiguration()
    return _font_config[key]


# The documents' stylesheet: parsed once per process and font configuration and handed to every
# print, not linked from documents/_base.html and fetched and tokenised again for each document
# (≈10 ms of a notice's 80 ms).
PRINT_CSS = f"{SCHEME}:documents/print.css"
_print_css: dict[int, CSS] = {}


def _print_stylesheet(font_config: FontConfiguration) -> CSS:
    key = id(font_config)
    if key not in _print_css:
        _print_css.clear()
        _print_css[key] = CSS(url=PRINT_CSS, url_fetcher=PortalURLFetcher(), font_config=font_config)
    return _print_css[key]


def html_to_pdf(html: str, fetcher: PortalURLFetcher | None = None) -> bytes:
    """Print HTML to PDF with the restricted fetcher (no network, no local files)."""
    fetcher = fetcher or PortalURLFetcher()
    with _render_lock:
        font_config = _shared_font_config()
        document = HTML(string=html, base_url=None, url_fetcher=fetcher)
        return document.write_pdf(font_config=font_config, stylesheets=[_print_stylesheet(font_config)])


def harfbuzz_subsetting_available() -> bool:
    """Whether WeasyPrint subsets fonts with HarfBuzz (fast) rather than fontTools (~80x slower).

    Mirrors WeasyPrint 70's own test in ``weasyprint.pdf.fonts.Font.subset``.
    """
    return harfbuzz_subset is not None and bool(harfbuzz.hb_version_atleast(4, 1, 0))


def merge_pdfs(parts: Iterable[bytes]) -> bytes:
    """Concatenate PDFs (the stored bytes of issued documents) into one file for printing."""
    writer = PdfWriter()
    for part in parts:
        writer.append(io.BytesIO(part))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
