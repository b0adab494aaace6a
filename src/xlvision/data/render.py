"""Rendering one character of one font into a high-resolution master image."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

MASTER_SIZE = 64
"""Side of a master image; the glyph's ink is scaled to fit MASTER_INK inside it."""
MASTER_INK = 48


@cache
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    # Pillow falls back to a system font of the same file name when `path` is missing, which
    # would quietly swap a bundled digit subset for a different font.
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: font file not found")
    try:
        return ImageFont.truetype(path, size)
    except OSError as err:
        raise OSError(f"{path}: cannot load font ({err})") from err


def render_glyph(font_path: str | Path, char: str, size: int = 128) -> np.ndarray:
    """The character drawn white on black at `size` px, cropped to its ink (float32 in [0, 1])."""
    font = _font(str(font_path), size)
    canvas = Image.new("L", (size * 3, size * 3), 0)
    ImageDraw.Draw(canvas).text((size, size), char, fill=255, font=font)
    ink = np.asarray(canvas, dtype=np.float32) / 255.0
    rows, cols = np.nonzero(ink > 0.05)
    if rows.size == 0:
        raise ValueError(f"{font_path}: {char!r} (U+{ord(char):04X}) renders no ink")
    return ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]


def master_image(font_path: str | Path, char: str) -> np.ndarray:
    """A MASTER_SIZE² image of the glyph, aspect kept, ink fitted into MASTER_INK and centred."""
    ink = render_glyph(font_path, char)
    h, w = ink.shape
    scale = MASTER_INK / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    resized = Image.fromarray((ink * 255).astype(np.uint8)).resize((nw, nh), Image.LANCZOS)
    out = np.zeros((MASTER_SIZE, MASTER_SIZE), dtype=np.float32)
    top, left = (MASTER_SIZE - nh) // 2, (MASTER_SIZE - nw) // 2
    out[top : top + nh, left : left + nw] = np.asarray(resized, dtype=np.float32) / 255.0
    return out
