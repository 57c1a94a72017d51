"""A list page's rows as the server writes them: each case number links to its own case, each row's
show button opens that row, and text typed by users is shown as text, never as markup."""

from __future__ import annotations

import re

from app.extensions import db


def _rows(html: str) -> list[str]:
    """The rows of the list's table (not its header)."""
    table = html.split('class="table-responsive case-list"', 1)[1].split("</table>", 1)[0]
    return [row for row in re.findall(r"<tr>(.*?)</tr>", table, re.S) if "<th" not in row]


def test_each_row_links_its_own_case_and_shows_typed_markup_as_text(web, make_complaint):
    plain = make_complaint(department="GC")
    hostile = make_complaint(department="GC", content="电梯停运")
    hostile.subject = '<script>alert("x")</script>&<b>'
    db.session.commit()

    html = web("renshi").get("/complaintview/list/?psize_ComplaintView=100").get_data(as_text=True)
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&amp;&lt;b&gt;" in html
    rows = {}
    for row in _rows(html):
        number = re.search(r'<td class="nowrap"><a class="case-number" href="([^"]+)">([^<]+)</a></td>', row)
        assert number, row
        buttons = re.findall(r'href="(/complaintview/show/\d+)"', row)
        rows[number.group(2)] = (number.group(1), buttons)
    for case in (plain, hostile):
        href, buttons = rows[case.number]
        assert href == f"/complaintview/show/{case.id}"
        assert set(buttons) == {href}, buttons  # the show button opens the same row
