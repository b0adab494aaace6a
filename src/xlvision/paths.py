"""Where the shipped configs and assets live, in a source checkout and in an installed wheel."""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
FONTS_DIR = PACKAGE_DIR / "assets" / "fonts"
NAME_FONTS_DIR = FONTS_DIR.parent / "name_fonts"
"""Fonts that draw each language's digit names (tools/build_name_fonts.py), for the web page."""


def config_dir() -> Path:
    """The `conf/` directory: inside the package when installed, at the repo root when editable."""
    for candidate in (PACKAGE_DIR / "conf", PACKAGE_DIR.parent.parent / "conf"):
        if (candidate / "config.yaml").is_file():
            return candidate
    raise FileNotFoundError(
        f"xlvision configs not found next to {PACKAGE_DIR}; reinstall the package"
    )
