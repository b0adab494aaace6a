"""Languages are read from `conf/language/<code>.yaml`, the single source of truth."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from omegaconf import OmegaConf

from xlvision.paths import FONTS_DIR, config_dir

ENGLISH_DIGIT_NAMES = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
)


@dataclass(frozen=True)
class Language:
    """One writing system's digits.

    `codepoints[i]` is the glyph of class i ("U+0CE6"); `extra_glyphs` maps a class to
    alternative forms that are rendered too (Chinese 零 and 〇 are both zero). Languages that
    write some digits identically (Arabic and Persian, Hindi and Marathi) share a `group`.
    """

    code: str
    name: str
    script: str
    codepoints: tuple[str, ...]
    class_names: tuple[str, ...]
    train_fonts: tuple[str, ...]
    test_fonts: tuple[str, ...]
    extra_glyphs: dict[int, tuple[str, ...]] = field(default_factory=dict, hash=False)
    english_names: tuple[str, ...] = ENGLISH_DIGIT_NAMES
    group: str = ""

    def __post_init__(self) -> None:
        if not self.group:
            object.__setattr__(self, "group", self.code)

    @property
    def num_classes(self) -> int:
        return len(self.codepoints)

    @property
    def digits(self) -> tuple[str, ...]:
        """The digit characters, class order."""
        return tuple(chr(int(cp[2:], 16)) for cp in self.codepoints)

    def glyphs(self, label: int) -> tuple[str, ...]:
        """Every character rendered for class `label`."""
        extra = tuple(chr(int(cp[2:], 16)) for cp in self.extra_glyphs.get(label, ()))
        return (self.digits[label], *extra)

    def font_paths(self, role: str) -> list[Path]:
        """Absolute paths of the bundled fonts for `role` ("train" or "test")."""
        names = {"train": self.train_fonts, "test": self.test_fonts}[role]
        return [FONTS_DIR / name for name in names]


def language_from_mapping(node) -> Language:
    """Build a `Language` from a composed config node or a plain mapping."""
    data = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else dict(node)
    return Language(
        code=data["code"],
        name=data["name"],
        script=data["script"],
        codepoints=tuple(data["codepoints"]),
        class_names=tuple(data["class_names"]),
        train_fonts=tuple(data["train_fonts"]),
        test_fonts=tuple(data["test_fonts"]),
        extra_glyphs={int(k): tuple(v) for k, v in (data.get("extra_glyphs") or {}).items()},
        group=data.get("group") or data["code"],
    )


def _language_dir() -> Path:
    return config_dir() / "language"


def available_languages() -> list[str]:
    """Codes of every language with a config file, sorted."""
    return sorted(p.stem for p in _language_dir().glob("*.yaml"))


@cache
def load_language(code: str) -> Language:
    """The registry entry for `code`, read from its config file."""
    path = _language_dir() / f"{code}.yaml"
    if not path.is_file():
        raise KeyError(f"unknown language {code!r}; available: {', '.join(available_languages())}")
    node = OmegaConf.load(path)
    return language_from_mapping(node)
