"""Chinese is the default language: every message of ours has a Simplified Chinese translation."""

import os

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "_l": None, "lazy_gettext": None}
METHODS = [("app/**.py", "python"), ("config.py", "python"), ("app/templates/**.html", "jinja2")]


def _msgids() -> set[str]:
    found = set()
    for _filename, _lineno, message, _comments, _context in extract_from_dir(
        ROOT, METHODS, keywords=KEYWORDS, options_map={"app/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    ):
        found.add(message if isinstance(message, str) else message[0])
    # Directories other than app/ (tests, bench, .venv) are not scanned by METHODS.
    return {m for m in found if m}


def test_every_message_has_a_chinese_translation():
    with open(os.path.join(ROOT, "translations/zh/LC_MESSAGES/messages.po"), "rb") as f:
        catalog = read_po(f, locale="zh")
    translated = {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id and m.string}
    ours = _msgids()
    assert len(ours) > 100, "message extraction found almost nothing: the check would be void"
    missing = sorted(ours - translated)
    assert not missing, f"{len(missing)} messages without a zh translation, e.g. {missing[:10]}"


def test_default_locale_is_chinese(client):
    page = client.get("/login/").get_data(as_text=True)
    assert "登录" in page


def test_english_is_selectable(client):
    r = client.get("/api/v1/complaint/_info?_l_=en")
    assert r.status_code == 401  # anonymous; the language switch itself must not break requests
    page = client.get("/lang/en", follow_redirects=True).get_data(as_text=True)
    assert "Login" in page or "Sign In" in page


def _menu(client) -> str:
    page = client.get("/").get_data(as_text=True)
    return page.split('<ul class="nav navbar-nav">', 1)[1].split("</ul>\n", 1)[0]


def test_the_menu_is_each_roles_own_and_in_the_pages_language(web):
    """The menu is rendered once per (roles, language) and kept: each role still sees its own
    entries, and switching the language switches the menu with the page."""
    kefu, zongjingli = web("kefu"), web("zongjingli")
    first = _menu(kefu)
    assert first == _menu(kefu)  # the kept rendering
    assert "投诉" in first and "/penaltyview/list/" not in first
    assert "/penaltyview/list/" in _menu(zongjingli)
    kefu.get("/lang/en", follow_redirects=True)
    english = _menu(kefu)
    assert "Complaints" in english and "投诉" not in english
    assert "投诉" in _menu(zongjingli)  # the other user's language is his own


def test_the_english_catalogue_translates_nothing_into_chinese():
    """English is the second language: its catalogue may leave a message as written (the English
    msgid, with its Chinese terms in brackets) but never turns it into Chinese — 520 entries once
    did, and half the English menu read in Chinese."""
    import re

    with open(os.path.join(ROOT, "translations/en/LC_MESSAGES/messages.po"), "rb") as f:
        catalog = read_po(f, locale="en")
    han = re.compile(r"[\u4e00-\u9fff]")
    chinese = []
    for message in catalog:
        ids = [message.id] if isinstance(message.id, str) else list(message.id)
        strings = [message.string] if isinstance(message.string, str) else list(message.string)
        if message.id and any(s and han.search(s) and s not in ids for s in strings):
            chinese.append(ids[0])
    assert not chinese, f"{len(chinese)} English messages translated into Chinese, e.g. {chinese[:5]}"
