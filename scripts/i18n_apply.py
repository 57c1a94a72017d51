"""Merge the extracted catalogue into zh/en and fill zh from translations/pending/*.json.

Usage: .venv/bin/pybabel extract -F babel.cfg -k _l -k lazy_gettext -o translations/messages.pot .
       .venv/bin/python scripts/i18n_apply.py && .venv/bin/pybabel compile -d translations
Prints the msgids still missing a Chinese translation.
"""

import glob
import json

from babel.messages.pofile import read_po, write_po

pot = read_po(open("translations/messages.pot", "rb"))
pending: dict[str, str] = {}
for path in sorted(glob.glob("translations/pending/*.json")):
    pending.update(json.load(open(path, encoding="utf-8")))
for lang in ("zh", "en"):
    path = f"translations/{lang}/LC_MESSAGES/messages.po"
    cat = read_po(open(path, "rb"), locale=lang)
    cat.update(pot, no_fuzzy_matching=True)
    cat.obsolete.clear()
    cat.fuzzy = False
    missing = []
    for msg in cat:
        if not msg.id:
            continue
        msg.flags.discard("fuzzy")
        if lang == "zh":
            key = msg.id if isinstance(msg.id, str) else msg.id[0]
            if not (msg.string if isinstance(msg.string, str) else msg.string[0]) and key in pending:
                msg.string = pending[key] if isinstance(msg.id, str) else (pending[key],) * len(msg.id)
            if not (msg.string if isinstance(msg.string, str) else msg.string[0]):
                missing.append(key)
    with open(path, "wb") as f:
        write_po(f, cat, width=100)
    if lang == "zh":
        print("missing", len(missing))
        for m in missing:
            print("  ", m)
