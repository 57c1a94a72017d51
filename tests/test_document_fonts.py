"""Documents print from the portal's cut fonts of the common characters, and from the full Noto
CJK fonts glyph by glyph for anything rarer: names with 喆, 堃 or 𠮷 still print."""

from __future__ import annotations

import io
import os
import unicodedata

from pypdf import PdfReader

from app.documents import fonts, render

RARE = "张喆、李堃、𠮷田"


def _base_fonts(pdf: bytes) -> set[str]:
    names = set()
    for page in PdfReader(io.BytesIO(pdf)).pages:
        for ref in page["/Resources"]["/Font"].values():
            names.add(str(ref.get_object()["/BaseFont"]).split("+", 1)[-1])
    return names


def _text(pdf: bytes) -> str:
    return "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def _page(body: str) -> str:
    return (
        f'<html><head><link rel="stylesheet" href="portal-static:documents/print.css"></head><body>{body}</body></html>'
    )


def test_the_cut_fonts_hold_gb2312_levels_one_and_two_and_the_documents_marks():
    points = fonts.charset()
    hanzi = [p for p in points if unicodedata.name(chr(p), "").startswith("CJK UNIFIED IDEOGRAPH")]
    assert len(hanzi) == 6763
    for mark in "〔〕、。，：；“”（）—…《》￥0123456789ABCabc":
        assert ord(mark) in points, mark
    for rare in "喆堃𠮷":
        assert ord(rare) not in points


def test_a_document_prints_common_text_from_the_cut_fonts():
    assert fonts.ensure(), "the cut fonts could not be built (Noto CJK and uharfbuzz are installed by make install)"
    pdf = render.html_to_pdf(_page('<h1 class="doc-title">处罚通知书</h1><p>经研究决定，给予警告处分。〔2026〕</p>'))
    used = _base_fonts(pdf)
    assert used <= {"Portal-Serif-SC", "Portal-Sans-SC-Bold", "Portal-Serif-SC-Bold", "Portal-Sans-SC"}, used
    assert "经研究决定，给予警告处分。" in _text(pdf)


def test_rare_characters_of_names_fall_back_to_the_full_font_and_are_in_the_pdf_text():
    fonts.ensure()
    pdf = render.html_to_pdf(_page(f"<p>被处罚人：{RARE}</p>"))
    assert RARE in _text(pdf)
    used = _base_fonts(pdf)
    assert "Portal-Serif-SC" in used
    assert any(name.startswith("Noto-Serif-CJK") for name in used), used


def test_an_issued_notice_prints_a_name_with_rare_characters(discipline_kit, org):
    from app import db
    from app.discipline import notices

    org.staff("刘强").name = "刘喆堃𠮷"
    db.session.commit()
    penalty = discipline_kit.issued(staff="刘喆堃𠮷")
    notice = notices.current_notice(db.session, penalty)
    assert "刘喆堃𠮷" in _text(notice.content)
    assert notice.number in _text(notice.content)


def test_the_fonts_are_built_once_into_the_given_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("PORTAL_FONT_DIR", str(tmp_path))
    built = fonts.build()
    assert built == [
        "PortalSansSC-Bold.otf",
        "PortalSansSC-Regular.otf",
        "PortalSerifSC-Bold.otf",
        "PortalSerifSC-Regular.otf",
    ]
    sizes = {name: os.path.getsize(tmp_path / name) for name in built}
    assert all(1_000_000 < size < 6_000_000 for size in sizes.values()), sizes
    stamp = os.path.getmtime(tmp_path / built[0])
    assert fonts.build() == built and os.path.getmtime(tmp_path / built[0]) == stamp  # not cut again
    assert str(tmp_path) in (tmp_path / "fonts.conf").read_text()
