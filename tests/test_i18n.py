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
