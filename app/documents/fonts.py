"""Pre-subset document fonts: the common characters first, the full Noto CJK font per glyph after.

Printing a document spends most of its time subsetting the fonts it used, and that cost grows
with the size of the font WeasyPrint starts from: Debian's Noto CJK collections are 20–25 MB.
So the portal prints with a font cut down once to the characters formal documents use — GB 2312
levels 1 and 2 (6,763 汉字), its symbols and punctuation, and ASCII — under its own family names
(``Portal Serif SC``, ``Portal Sans SC``), listed before the full Noto fonts in the print style
sheet. Pango falls back glyph by glyph, so a name with a rarer character (喆, 堃, 𠮷) still
prints from the full font.

The cut fonts are built on first use (HarfBuzz's subsetter through ``uharfbuzz``, about a second
a face; fontTools renames the family) into ``instance/fonts`` — or ``PORTAL_FONT_DIR`` — with a
fontconfig file that adds that folder to the system configuration; WeasyPrint reads it through
``FONTCONFIG_FILE``. If a face cannot be built (no Noto fonts, no ``uharfbuzz``) documents print
from the full fonts as before, only slower.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import logging
import os
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from typing import Optional

log = logging.getLogger(__name__)

ROOT_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_DIR = os.path.join(ROOT_DIR, "instance", "fonts")
# Bump when the character set or the faces change: older builds are rebuilt.
VERSION = "1"

# (family of the cut font, style, the system font it is cut from)
FACES = (
    ("Portal Serif SC", "Regular", "Noto Serif CJK SC:style=Regular"),
    ("Portal Serif SC", "Bold", "Noto Serif CJK SC:style=Bold"),
    ("Portal Sans SC", "Regular", "Noto Sans CJK SC:style=Regular"),
    ("Portal Sans SC", "Bold", "Noto Sans CJK SC:style=Bold"),
)
SERIF = "Portal Serif SC"
SANS = "Portal Sans SC"

# Marks a formal document prints besides GB 2312's own (〔〕 of a 文号 are in it; these are not).
EXTRA = "–—―‘’“”…‧·•●○■□◆◇※→←↑↓①②③④⑤⑥⑦⑧⑨⑩€￥　"

_FONTCONFIG = """<?xml version="1.0"?>
<!DOCTYPE fontconfig SYSTEM "urn:fontconfig:fonts.dtd">
<fontconfig>
  <include ignore_missing="yes">/etc/fonts/fonts.conf</include>
  <dir>{dir}</dir>
  <cachedir>{dir}/cache</cachedir>
</fontconfig>
"""

_lock = threading.Lock()
_ready: dict[str, bool] = {}


def charset() -> set[int]:
    """Code points of GB 2312 (rows 1–9 symbols, levels 1–2 汉字), ASCII and :data:`EXTRA`."""
    points = set(range(0x20, 0x7F)) | {ord(c) for c in EXTRA}
    for high in range(0xA1, 0xF8):
        for low in range(0xA1, 0xFF):
            with contextlib.suppress(UnicodeDecodeError):
                points.add(ord(bytes((high, low)).decode("gb2312")))
    return points


def font_dir() -> str:
    return os.environ.get("PORTAL_FONT_DIR") or DEFAULT_DIR


def _file_name(family: str, style: str) -> str:
    return f"{family.replace(' ', '')}-{style}.otf"


def _source(pattern: str) -> Optional[tuple[str, int]]:
    """The file and face index fontconfig gives for ``pattern``, if it is the family asked for."""
    try:
        out = subprocess.run(
            ["fc-match", "-f", "%{family}|%{file}|%{index}", pattern],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
            env={k: v for k, v in os.environ.items() if k != "FONTCONFIG_FILE"},
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    families, path, index = (out.split("|") + ["", "", ""])[:3]
    wanted = pattern.split(":")[0]
    if wanted not in families.split(",") or not path:
        return None
    return path, int(index or 0)


def _cut(source: tuple[str, int], family: str, style: str, points: set[int]) -> bytes:
    import uharfbuzz as hb
    from fontTools.ttLib import TTFont

    face = hb.Face(hb.Blob.from_file_path(source[0]), source[1])
    wanted = hb.SubsetInput()
    wanted.unicode_set.update(points)
    # Done once here rather than on every print: CFF subroutines flattened, no hinting (PDF).
    wanted.flags = hb.SubsetFlags.DESUBROUTINIZE | hb.SubsetFlags.NO_HINTING
    data = bytes(hb.subset(face, wanted).blob.data)
    font = TTFont(io.BytesIO(data), lazy=True)
    postscript = f"{family}-{style}".replace(" ", "")
    names = {1: family, 16: family, 2: style, 17: style, 4: f"{family} {style}", 6: postscript, 3: postscript}
    for record in font["name"].names:
        if record.nameID in names:
            record.string = names[record.nameID]
    out = io.BytesIO()
    font.save(out)
    return out.getvalue()


@contextlib.contextmanager
def _build_lock(directory: str) -> Iterator[None]:
    """One builder at a time across processes (gunicorn workers, test workers)."""
    with open(os.path.join(directory, ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _stamp(directory: str) -> str:
    return os.path.join(directory, f"built-{VERSION}")


def build(directory: Optional[str] = None) -> list[str]:
    """Cut every face that is missing into ``directory``; the files present afterwards."""
    directory = directory or font_dir()
    os.makedirs(directory, exist_ok=True)
    with _build_lock(directory):
        if not os.path.exists(_stamp(directory)):
            points = charset()
            for family, style, pattern in FACES:
                source = _source(pattern)
                if source is None:
                    log.warning("font %s not found: documents print it from the full font", pattern)
                    continue
                data = _cut(source, family, style, points)
                with tempfile.NamedTemporaryFile(dir=directory, delete=False) as tmp:
                    tmp.write(data)
                os.replace(tmp.name, os.path.join(directory, _file_name(family, style)))
            with open(os.path.join(directory, "fonts.conf"), "w", encoding="utf-8") as conf:
                conf.write(_FONTCONFIG.format(dir=directory))
            open(_stamp(directory), "w").close()
    return sorted(f for f in os.listdir(directory) if f.endswith(".otf"))


def ensure() -> bool:
    """Make the cut fonts visible to WeasyPrint (building them the first time); False when the
    documents have to print from the full fonts."""
    directory = font_dir()
    if directory in _ready:
        return _ready[directory]
    with _lock:
        if directory not in _ready:
            try:
                present = build(directory)
            except Exception:  # a missing tool or font must never stop a print
                log.exception("could not cut the document fonts; printing with the full fonts")
                present = []
            if present:
                os.environ["FONTCONFIG_FILE"] = os.path.join(directory, "fonts.conf")
            _ready[directory] = bool(present)
    return _ready[directory]
