"""The bundled digit fonts: every glyph really drawn, classes distinct, test style held out.

A font can list a script's digits in its cmap and still draw them as .notdef boxes, empty
glyphs or copies of each other; a model trained on those learns nothing, and nothing crashes.
Pillow also quietly loads a *system* font of the same file name when a bundled file is missing,
so existence is checked before anything is rendered.
"""

from __future__ import annotations

import re
from functools import cache
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
from fontTools.ttLib import TTFont

from xlvision.data.render import master_image
from xlvision.languages import Language, available_languages, load_language
from xlvision.paths import FONTS_DIR, NAME_FONTS_DIR

NOTDEF_PROBE = "\ue000"  # private use: no bundled font maps it, so it draws .notdef
SAME_DRAWING = 0.01  # mean |a - b| of two master images; Thai ๔/๕ differ by ~0.018, copies by 0
COPIED_FONT = 0.03  # mean over digits; different designs of one script differ by 0.04 or more
FONT_SUFFIXES = {".ttf", ".otf"}

LANGUAGES = [load_language(code) for code in available_languages()]
FONTS = [(lang, font) for lang in LANGUAGES for font in (*lang.train_fonts, *lang.test_fonts)]


def _font_id(param) -> str:
    return param if isinstance(param, str) else param.code


@cache
def _cmap(path: Path) -> dict[int, str]:
    return TTFont(path, lazy=True).getBestCmap()


@cache
def family(path: Path) -> str:
    """The typographic family, so Regular and Bold of one design count as one family."""
    names = TTFont(path, lazy=True)["name"]
    return names.getDebugName(16) or names.getDebugName(1)


@cache
def master(path: Path, char: str) -> np.ndarray | None:
    """The glyph's master image, or None where it renders no ink at all."""
    try:
        return master_image(path, char)
    except ValueError:
        return None


def glyphs(lang: Language) -> list[tuple[int, str]]:
    return [(label, char) for label in range(lang.num_classes) for char in lang.glyphs(label)]


def readme_rows() -> dict[str, tuple[str, str]]:
    """README table: font path -> (role, licence file)."""
    pattern = r"^\| \w+ \| `([^`]+)` \| (\w+) \|.*\| \[(LICENSES/[^\]]+)\]\("
    text = (FONTS_DIR / "README.md").read_text(encoding="utf-8")
    return {m[1]: (m[2], m[3]) for m in re.finditer(pattern, text, re.MULTILINE)}


def describe(lang: Language, font: str, label: int, char: str) -> str:
    return f"{lang.code} {font}: digit {label} {char!r} (U+{ord(char):04X})"


def test_all_planned_languages_are_registered():
    planned = "en ar fa hi bn pa gu or ta te kn ml si th lo bo my km zh mn".split()
    assert set(planned) <= set(available_languages())


@pytest.mark.parametrize("lang", LANGUAGES, ids=_font_id)
def test_language_has_ten_distinct_digits_and_names(lang):
    assert len(lang.codepoints) == 10 and len(set(lang.codepoints)) == 10
    assert all(re.fullmatch(r"U\+[0-9A-F]{4,6}", cp) for cp in lang.codepoints)
    assert len(lang.class_names) == 10 and len(set(lang.class_names)) == 10
    assert all(name.strip() for name in lang.class_names)
    assert set(lang.extra_glyphs) <= set(range(10))


@pytest.mark.parametrize("lang", LANGUAGES, ids=_font_id)
def test_train_and_test_fonts_are_separate_families(lang):
    paths = [FONTS_DIR / f for f in (*lang.train_fonts, *lang.test_fonts)]
    missing = [str(p) for p in paths if not p.is_file()]
    assert not missing, f"{lang.code}: missing font files {missing}"
    train = {family(FONTS_DIR / f) for f in lang.train_fonts}
    test = {family(FONTS_DIR / f) for f in lang.test_fonts}
    assert train and test, f"{lang.code}: needs train and test fonts"
    assert not train & test, f"{lang.code}: {train & test} both trains and tests"
    assert len(train | test) >= 2


def test_every_font_exists_and_has_a_licence():
    rows = readme_rows()
    problems = []
    for lang in LANGUAGES:
        roles = {f: "train" for f in lang.train_fonts} | {f: "test" for f in lang.test_fonts}
        for font, role in roles.items():
            if not (FONTS_DIR / font).is_file():
                problems.append(f"{lang.code}: {font} does not exist")
            elif font not in rows:
                problems.append(f"{lang.code}: {font} has no row in assets/fonts/README.md")
            else:
                listed_role, licence = rows[font]
                text = (FONTS_DIR / licence).read_text() if (FONTS_DIR / licence).is_file() else ""
                if "licen" not in text.lower():
                    problems.append(f"{lang.code}: {font}: no licence text in {licence}")
                if listed_role != role:
                    problems.append(f"{lang.code}: {font} is {role}, README says {listed_role}")
    assert not problems, "\n".join(problems)


def test_no_font_file_is_unused():
    used = {font for _, font in FONTS}
    present = {
        p.relative_to(FONTS_DIR).as_posix()
        for p in FONTS_DIR.rglob("*")
        if p.suffix.lower() in FONT_SUFFIXES
    }
    assert present, f"no fonts under {FONTS_DIR}"
    assert not present - used, f"fonts no language uses: {sorted(present - used)}"


@pytest.mark.parametrize(("lang", "font"), FONTS, ids=_font_id)
def test_font_draws_every_digit_distinctly(lang, font):
    path = FONTS_DIR / font
    assert path.is_file(), f"{lang.code}: {font} does not exist"
    cmap = _cmap(path)
    assert ord(NOTDEF_PROBE) not in cmap, f"{font} maps the .notdef probe U+E000"
    notdef = master(path, NOTDEF_PROBE)
    problems, images = [], {}
    for label, char in glyphs(lang):
        where = describe(lang, font, label, char)
        image = master(path, char)
        if ord(char) not in cmap:
            problems.append(f"{where} is not in the font's cmap")
        elif image is None:
            problems.append(f"{where} renders no ink")
        elif notdef is not None and np.abs(image - notdef).mean() < SAME_DRAWING:
            problems.append(f"{where} renders as the .notdef glyph")
        else:
            images[label, char] = image
    for ((a, char_a), image_a), ((b, char_b), image_b) in combinations(images.items(), 2):
        if a != b and np.abs(image_a - image_b).mean() < SAME_DRAWING:
            problems.append(f"{describe(lang, font, a, char_a)} looks like digit {b} {char_b!r}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("lang", LANGUAGES, ids=_font_id)
def test_test_font_is_not_a_copy_of_a_training_font(lang):
    def drawings(font: str) -> list[np.ndarray | None]:
        return [master(FONTS_DIR / font, char) for char in lang.digits]

    for test_font in lang.test_fonts:
        held_out = drawings(test_font)
        for train_font in lang.train_fonts:
            pairs = [
                (a, b)
                for a, b in zip(held_out, drawings(train_font), strict=True)
                if a is not None and b is not None
            ]
            assert pairs, f"{lang.code}: {test_font} and {train_font} share no drawn digit"
            distance = np.mean([np.abs(a - b).mean() for a, b in pairs])
            assert distance > COPIED_FONT, (
                f"{lang.code}: test font {test_font} draws like train font {train_font} "
                f"({distance:.3f})"
            )


@pytest.mark.parametrize("lang", [c for c in available_languages() if c != "en"])
def test_name_font_draws_every_digit_name(lang):
    """The web page's font for `lang`'s digit names maps every character of them, and its
    licence text is bundled."""
    [path] = sorted(NAME_FONTS_DIR.glob(f"{lang}.*"))
    font = TTFont(path)
    cmap = font.getBestCmap()
    text = "".join(load_language(lang).class_names)
    assert not sorted({c for c in text if ord(c) not in cmap and c not in "\u200c\u200d"})
    assert "GSUB" in font or lang == "zh"  # shaping kept for the scripts that need it
    family = font["name"].getDebugName(1)
    assert family and family.replace(" ", "") + ".txt" in {
        p.name for p in (FONTS_DIR / "LICENSES").iterdir()
    }
