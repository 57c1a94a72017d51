"""Formal documents: Jinja templates printed to PDF by WeasyPrint, numbered and stored.

One template per kind under ``app/templates/documents/`` (处罚通知书, 通报, 客户投诉记录表,
the weekly and monthly analyses; the grading 通报 is a circular with its own template). :func:`render_pdf` turns a template
and its data into PDF bytes; :func:`issue_document` gives the document its 文号 from the
gap-free counter (same transaction), stores the bytes with their SHA-256 and links a
correction to the version it supersedes. Stored documents are never regenerated.

Safety: templates are autoescaped, and WeasyPrint gets :class:`PortalURLFetcher`, which
serves only files under the document templates and the app's static folder through the
``portal-static:`` scheme and refuses every other URL (``file:``, ``http:``, ``data:`` …).
Fonts come from fontconfig by family name, never by URL: the portal's cut fonts of the
common characters first (:mod:`app.documents.fonts`), Debian's ``fonts-noto-cjk`` per glyph after.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import jinja2
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import settings
from app.documents import numbering
from app.documents.resources import TEMPLATES_DIR, URLRefused, resolve  # noqa: F401  (URLRefused, resolve: re-exported)
from app.i18n import _l
from app.models import Counter, Document, DocumentKind
from app.timeutil import chinese_date, format_local, local_date, utcnow

if TYPE_CHECKING:
    from app.documents.printing import PortalURLFetcher

SERIF = "Noto Serif CJK SC"  # 宋体-like body face
SANS = "Noto Sans CJK SC"  # 黑体-like title face

# The template and the 文号 prefix of each kind (prefixes are a setting).
TEMPLATES = {
    "penalty_notice": "documents/penalty_notice.html",
    "circular": "documents/circular.html",
    "record_form": "documents/record_form.html",
    "weekly_analysis": "documents/analysis.html",
    "monthly_analysis": "documents/analysis.html",
    "regulator_reply": "documents/regulator_reply.html",
}
KIND_NAMES_ZH = {
    "penalty_notice": "处罚通知书",
    "circular": "通报",
    "record_form": "客户投诉记录表",
    "monthly_analysis": "月度投诉分析",
    "weekly_analysis": "周投诉分析",
    "regulator_reply": "监管转办回复报告",
}
NUMBERED_KINDS = frozenset({"penalty_notice", "circular", "monthly_analysis", "weekly_analysis", "regulator_reply"})


# --- Rendering --------------------------------------------------------------------------------


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,  # every value is escaped: user text cannot inject markup or URLs
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["cn_date"] = lambda d: chinese_date(d) if d else ""
    env.filters["local"] = lambda dt, fmt="%Y-%m-%d %H:%M": format_local(dt, fmt) if dt else ""
    env.filters["ymd"] = lambda d: written_date(d) if d else ""
    env.filters["md"] = lambda d: f"{d.month}月{d.day}日" if d else ""
    env.filters["pct"] = lambda v: "—" if v is None else f"{v * 100:.1f}%"
    env.filters["signed_pct"] = lambda v: "—" if v is None else f"{v * 100:+.1f}%"
    env.filters["points"] = lambda v: "—" if v is None else f"{v:+.1f}个百分点"
    env.globals.update(SERIF=SERIF, SANS=SANS)
    return env


_env = _environment()
# Bounds of one print (a render holds the process's render lock and a core): every text is
# clipped at PRINT_FIELD_MAX characters (text stored before the input limits), and a
# document whose text still exceeds its kind's MAX_CHARS is refused. Measured: ~0.15 ms of
# rendering per character of running text, so 40,000 characters stay within a few seconds.
PRINT_FIELD_MAX = 5000
CLIPPED = "……（以下内容过长，从略）"
MAX_CHARS = {TEMPLATES["record_form"]: 40000}


class DocumentTooLarge(ValueError):
    """A document with more text than one print may render; the message is for the user."""


def bounded(context: dict[str, Any], max_chars: int | None = None) -> dict[str, Any]:
    """The context with every text clipped at PRINT_FIELD_MAX; DocumentTooLarge past ``max_chars``."""
    total = 0

    def clip(value: Any) -> Any:
        nonlocal total
        if isinstance(value, str):
            if len(value) > PRINT_FIELD_MAX:
                value = value[:PRINT_FIELD_MAX] + CLIPPED
            total += len(value)
            return value
        if isinstance(value, dict):
            return {key: clip(item) for key, item in value.items()}
        if type(value) in (list, tuple):
            return type(value)(clip(item) for item in value)
        return value

    clipped = clip(context)
    if max_chars is not None and total > max_chars:
        raise DocumentTooLarge(
            str(
                _l(
                    "The document is too long to print (%(n)d characters, at most %(max)d).",
                    n=total,
                    max=max_chars,
                )
            )
        )
    return clipped


def render_html(template_name: str, context: dict[str, Any]) -> str:
    return _env.get_template(template_name).render(**bounded(context, MAX_CHARS.get(template_name)))


def html_to_pdf(html: str, fetcher: PortalURLFetcher | None = None) -> bytes:
    """Print HTML to PDF with the restricted fetcher (no network, no local files)."""
    from app.documents import printing

    return printing.html_to_pdf(html, fetcher)


def render_pdf(template_name: str, context: dict[str, Any], fetcher: PortalURLFetcher | None = None) -> bytes:
    """Render a document template with ``context`` to PDF bytes."""
    return html_to_pdf(render_html(template_name, context), fetcher)


def harfbuzz_subsetting_available() -> bool:
    """Whether WeasyPrint subsets fonts with HarfBuzz (fast) rather than fontTools (~80x slower)."""
    from app.documents import printing

    return printing.harfbuzz_subsetting_available()


def merge_pdfs(parts: Iterable[bytes]) -> bytes:
    """Concatenate PDFs (the stored bytes of issued documents) into one file for printing."""
    from app.documents import printing

    return printing.merge_pdfs(parts)


def __getattr__(name: str) -> Any:
    """``PortalURLFetcher`` lives with WeasyPrint in :mod:`app.documents.printing`, loaded on first use."""
    if name == "PortalURLFetcher":
        from app.documents import printing

        return printing.PortalURLFetcher
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --- Issuing ---------------------------------------------------------------------------------


def number_prefix(session: Session, kind: str) -> str:
    prefixes = settings.get(session, "documents.number_prefixes") or {}
    return str(prefixes.get(kind) or settings.DEFAULTS["documents.number_prefixes"][0].get(kind) or "人行字")


def common_context(session: Session) -> dict[str, Any]:
    """What every document prints besides its own data: company and issuing office."""
    return {
        "company": settings.get(session, "company.name") or "",
        "issuer": settings.get(session, "documents.issuer") or "人事行政部",
    }


def issue_document(
    session: Session,
    kind: str,
    title: str,
    context: dict[str, Any],
    *,
    template: str | None = None,
    penalty_id: int | None = None,
    complaint_id: int | None = None,
    period: str | None = None,
    supersedes: Document | None = None,
    issued_by_id: int | None = None,
    note: str | None = None,
    now: datetime | None = None,
) -> Document:
    """Number, render and store a document in the caller's transaction; the caller commits.

    The 文号 comes from :func:`app.numbering.next_value` in this transaction: concurrent
    issuers queue on the counter row (PostgreSQL), and a rolled-back issue gives its
    number back, so numbers stay unique and gap-free per kind and year.
    """
    now = now or utcnow()
    issued_on = local_date(now)
    number, year, seq = _take_number(session, kind, issued_on)
    version = (supersedes.version + 1) if supersedes is not None else 1
    document_info = _document_info(kind, number, title, issued_on, version, supersedes)
    pdf = render_pdf(template or TEMPLATES[kind], {**common_context(session), **context, "document": document_info})
    doc = Document(
        kind=DocumentKind(kind),
        number=number,
        year=year,
        seq=seq,
        title=title[:200],
        penalty_id=penalty_id,
        complaint_id=complaint_id,
        period=period,
        **_file_fields(kind, number, title, issued_on, pdf),
        version=version,
        supersedes_id=supersedes.id if supersedes is not None else None,
        note=note,
        issued_by_id=issued_by_id,
        issued_at=now,
    )
    if supersedes is not None:
        supersedes.superseded_at = now
    session.add(doc)
    session.flush()
    return doc


def _take_number(session: Session, kind: str, issued_on: date) -> tuple[str | None, int | None, int | None]:
    """The 文号 of a numbered kind as (number, year, sequence) from this year's counter; Nones otherwise."""
    if kind not in NUMBERED_KINDS:
        return None, None, None
    year = issued_on.year
    seq = numbering.next_value(session, f"document:{kind}", str(year))
    return numbering.document_number(number_prefix(session, kind), year, seq), year, seq


def render_draft(session: Session, kind: str, title: str, context: dict[str, Any]) -> bytes:
    """A document as it would be issued today, marked as a draft: no number is taken, nothing stored."""
    info = _document_info(kind, "（签发时编号）", title, local_date(utcnow()), 1, None)
    return render_pdf(TEMPLATES[kind], {**common_context(session), **context, "document": info})


def preview_number(session: Session, kind: str, day: date | None = None) -> str | None:
    """The 文号 the next document of ``kind`` would get (shown before issuing; takes no number).

    A preview only: the number is taken when the document is issued, so a concurrent issue
    may take this one first.
    """
    if kind not in NUMBERED_KINDS:
        return None
    day = day or local_date(utcnow())
    current = session.scalar(
        select(Counter.value).where(Counter.kind == f"document:{kind}", Counter.period == str(day.year))
    )
    return numbering.document_number(number_prefix(session, kind), day.year, int(current or 0) + 1)


def _document_info(
    kind: str, number: str | None, title: str, issued_on: date, version: int, supersedes: Document | None
) -> dict[str, Any]:
    """What the template prints about the document itself: kind, 文号, date, version, predecessor."""
    return {
        "kind": kind,
        "kind_name": KIND_NAMES_ZH.get(kind, kind),
        "number": number,
        "title": title,
        "issued_on": issued_on,
        "issued_date_cn": written_date(issued_on),
        "version": version,
        "supersedes_number": supersedes.number if supersedes is not None else None,
        "supersedes_issued_on": local_date(supersedes.issued_at) if supersedes is not None else None,
    }


def written_date(day: date) -> str:
    """成文日期 as GB/T 9704-2012 writes it: Arabic numerals, no leading zeros (2026年12月6日)."""
    return f"{day.year}年{day.month}月{day.day}日"


def _file_fields(kind: str, number: str | None, title: str, issued_on: date, pdf: bytes) -> dict[str, Any]:
    """The stored file's columns: name, type, size, checksum and bytes."""
    return {
        "filename": _filename(kind, number, title, issued_on),
        "content_type": "application/pdf",
        "size": len(pdf),
        "sha256": hashlib.sha256(pdf).hexdigest(),
        "content": pdf,
    }


def _filename(kind: str, number: str | None, title: str, issued_on: Any) -> str:
    """``<kind>-<number>.pdf``; an unnumbered document is named by its title without the kind again."""
    kind_name = KIND_NAMES_ZH.get(kind, kind)
    label = number or title.removeprefix(kind_name).strip(" -－—：:") or f"{issued_on:%Y%m%d}"
    safe = "".join(c for c in label if c not in '\\/:*?"<>|').strip() or "document"
    return f"{kind_name}-{safe}.pdf"[:255]


def current_document(
    session: Session,
    kind: str,
    *,
    penalty_id: int | None = None,
    complaint_id: int | None = None,
    period: str | None = None,
) -> Document | None:
    """The latest, not superseded document of a kind for a penalty, complaint or period."""
    stmt = select(Document).where(Document.kind == DocumentKind(kind), Document.superseded_at.is_(None))
    stmt = stmt.where(Document.penalty_id == penalty_id if penalty_id is not None else Document.penalty_id.is_(None))
    if complaint_id is not None:
        stmt = stmt.where(Document.complaint_id == complaint_id)
    if period is not None:
        stmt = stmt.where(Document.period == period)
    elif penalty_id is not None:
        # A case's own documents; notices to persons liable by chain carry a period "chain-<n>".
        stmt = stmt.where(Document.period.is_(None))
    return session.scalars(stmt.order_by(Document.version.desc(), Document.id.desc()).limit(1)).first()


_CAPITAL_DIGITS = "零壹贰叁肆伍陆柒捌玖"
_CAPITAL_UNITS = ("", "拾", "佰", "仟")


def _capital_group(n: int) -> str:
    text, zero = "", False
    for power in range(3, -1, -1):
        digit = n // 10**power % 10
        if digit == 0:
            zero = bool(text)
        else:
            if zero:
                text += "零"
                zero = False
            text += _CAPITAL_DIGITS[digit] + _CAPITAL_UNITS[power]
    return text


def cn_capital(amount: int) -> str:
    """Whole yuan in capital numerals as on financial documents: 200 -> 贰佰元整."""
    amount = int(amount)
    if amount <= 0:
        return "零元整"
    high, low = divmod(amount, 10000)
    text = _capital_group(high) + "万" if high else ""
    if low:
        if high and low < 1000:
            text += "零"
        text += _capital_group(low)
    return text + "元整"
