"""Build the fonts that draw each language's digit names (ಏಳು, 七, सात …) on the exported web page.

The page of `xlv-export format=web` shows a drawn digit's name in every language of the bundle;
a browser without fonts for a script would draw boxes. These subsets keep only the characters
of the language's `class_names` (from conf/language/<code>.yaml), with the layout tables that
shape them (conjuncts, vowel signs, Arabic joining), from Debian's Noto packages
(fonts-noto-core, fonts-noto-cjk). English names need no font of their own. On a Debian
machine with those packages installed:

    PYTHONPATH=src python tools/build_name_fonts.py           # (re)write the assets
    PYTHONPATH=src python tools/build_name_fonts.py --check   # fail if the committed ones differ
"""

from __future__ import annotations

import argparse
import io
import logging
import sys
from pathlib import Path

from build_fonts import subset_options, sync_tree
from fontTools import subset
from fontTools.ttLib import TTFont

from xlvision.languages import available_languages, load_language
from xlvision.paths import FONTS_DIR

SYSTEM_FONTS = Path("/usr/share/fonts")
OUT_DIR = FONTS_DIR.parent / "name_fonts"

# language | family (its licence: fonts/LICENSES/<Family>.txt) | Debian package | source
SOURCES = """
ar | Noto Naskh Arabic     | fonts-noto-core | truetype/noto/NotoNaskhArabic-Regular.ttf
bn | Noto Sans Bengali     | fonts-noto-core | truetype/noto/NotoSansBengali-Regular.ttf
bo | Noto Serif Tibetan    | fonts-noto-core | truetype/noto/NotoSerifTibetan-Regular.ttf
fa | Noto Naskh Arabic     | fonts-noto-core | truetype/noto/NotoNaskhArabic-Regular.ttf
gu | Noto Sans Gujarati    | fonts-noto-core | truetype/noto/NotoSansGujarati-Regular.ttf
hi | Noto Sans Devanagari  | fonts-noto-core | truetype/noto/NotoSansDevanagari-Regular.ttf
km | Noto Sans Khmer       | fonts-noto-core | truetype/noto/NotoSansKhmer-Regular.ttf
kn | Noto Sans Kannada     | fonts-noto-core | truetype/noto/NotoSansKannada-Regular.ttf
lo | Noto Sans Lao         | fonts-noto-core | truetype/noto/NotoSansLao-Regular.ttf
ml | Noto Sans Malayalam   | fonts-noto-core | truetype/noto/NotoSansMalayalam-Regular.ttf
mn | Noto Sans Mongolian   | fonts-noto-core | truetype/noto/NotoSansMongolian-Regular.ttf
mr | Noto Sans Devanagari  | fonts-noto-core | truetype/noto/NotoSansDevanagari-Regular.ttf
my | Noto Sans Myanmar     | fonts-noto-core | truetype/noto/NotoSansMyanmar-Regular.ttf
or | Noto Sans Oriya       | fonts-noto-core | truetype/noto/NotoSansOriya-Regular.ttf
pa | Noto Sans Gurmukhi    | fonts-noto-core | truetype/noto/NotoSansGurmukhi-Regular.ttf
si | Noto Sans Sinhala     | fonts-noto-core | truetype/noto/NotoSansSinhala-Regular.ttf
ta | Noto Sans Tamil       | fonts-noto-core | truetype/noto/NotoSansTamil-Regular.ttf
te | Noto Sans Telugu      | fonts-noto-core | truetype/noto/NotoSansTelugu-Regular.ttf
th | Noto Sans Thai        | fonts-noto-core | truetype/noto/NotoSansThai-Regular.ttf
zh | Noto Sans CJK SC      | fonts-noto-cjk  | opentype/noto/NotoSansCJK-Regular.ttc#2
"""


def sources() -> list[tuple[str, str, str, Path, int]]:
    """(language, family, package, path, face index) per row of SOURCES."""
    rows = []
    for line in SOURCES.strip().splitlines():
        code, family, package, where = (cell.strip() for cell in line.split("|"))
        path, _, index = where.partition("#")
        rows.append((code, family, package, SYSTEM_FONTS / path, int(index or 0)))
    return rows


def options() -> subset.Options:
    """The digit fonts' options (names, licence, no hinting), keeping every layout feature
    and the layout tables that shape the names."""
    opts = subset_options()
    opts.layout_features = ["*"]
    opts.drop_tables = subset.Options().drop_tables
    return opts


def build_one(code: str, path: Path, index: int) -> tuple[str, bytes]:
    """(file name, bytes) of the subset that draws `code`'s digit names."""
    language = load_language(code)
    text = "".join(language.class_names) + " "
    font = TTFont(path, fontNumber=index, recalcTimestamp=False, lazy=True)
    cmap = font.getBestCmap()
    missing = sorted({c for c in text if ord(c) not in cmap and c not in "\u200c\u200d"})
    if missing:
        raise ValueError(f"{path}: no glyph for {', '.join(missing)} ({code})")
    subsetter = subset.Subsetter(options())
    subsetter.populate(text=text)
    subsetter.subset(font)
    buffer = io.BytesIO()
    font.save(buffer, reorderTables=True)
    suffix = ".otf" if "CFF " in font else ".ttf"
    return f"{code}{suffix}", buffer.getvalue()


def readme(rows) -> str:
    lines = [
        "# Fonts for the digits' names",
        "",
        "Subsets that draw each language's `class_names` on the page `xlv-export format=web`",
        "writes, with the layout tables that shape them. Made by `tools/build_name_fonts.py`",
        "from Debian's Noto packages; `--check` verifies the committed files. Licences: the",
        "family's file in `../fonts/LICENSES/` (SIL Open Font License 1.1).",
        "",
        "| Language | File | Family | Debian package |",
        "|---|---|---|---|",
    ]
    for code, family, package, name in rows:
        licence = f"../fonts/LICENSES/{family.replace(' ', '')}.txt"
        lines.append(f"| {code} | `{name}` | [{family}]({licence}) | {package} |")
    return "\n".join(lines) + "\n"


def build() -> dict[str, bytes]:
    files, rows = {}, []
    for code, family, package, path, index in sources():
        if not (FONTS_DIR / "LICENSES" / f"{family.replace(' ', '')}.txt").is_file():
            raise ValueError(f"no licence text for {family} in {FONTS_DIR / 'LICENSES'}")
        name, data = build_one(code, path, index)
        files[name] = data
        rows.append((code, family, package, name))
    covered = {code for code, *_ in sources()}
    missing = sorted(set(available_languages()) - covered - {"en"})
    if missing:
        raise ValueError(f"no name font for {', '.join(missing)}: add them to SOURCES")
    files["README.md"] = readme(rows).encode()
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    built = build()
    if args.check:
        return 1 if sync_tree(built, OUT_DIR, check=True) else 0
    sync_tree(built, OUT_DIR, check=False)
    total = sum(len(data) for data in built.values())
    print(f"{len(built) - 1} name fonts, {total / 1e3:.0f} kB in {OUT_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
