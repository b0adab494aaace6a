"""`data=mix`: every language of a run draws from several sources at once, by weight.

A source is a language's rendered glyphs or a real dataset (a `conf/data/` preset, or an inline
reader mapping). Training draws from every source of every language in proportion to its
weight, whatever its size; validation and test of a language are its real splits where it has
real sources (glyphs otherwise), so a unified model is selected and scored on handwriting.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from xlvision.data.arrays import DigitArrays
from xlvision.data.errors import DataError
from xlvision.paths import config_dir

GLYPHS = "glyphs"


@dataclass(frozen=True)
class MixSource:
    """One source of one language: `glyphs`, or a real dataset and its `source` mapping."""

    name: str
    language: str
    weight: float
    source: dict | None = None  # a real reader mapping; None for glyphs

    @property
    def is_real(self) -> bool:
        return self.source is not None


def _weight(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
        raise DataError(f"{key}={value!r} is not allowed: a finite sampling weight >= 0")
    return float(value)


def preset_source(name: str, key: str) -> dict | None:
    """The `source` mapping of the real-data preset `conf/data/<name>.yaml` (None: glyphs)."""
    if name == GLYPHS:
        return None
    path = config_dir() / "data" / f"{name}.yaml"
    presets = sorted(p.stem for p in path.parent.glob("*.yaml") if p.stem != "mix")
    if not path.is_file():
        raise DataError(f"{key}={name!r} is not allowed: one of {', '.join(presets)}")
    node = OmegaConf.load(path)
    if node.get("kind") != "real":
        raise DataError(f"{key}={name!r} is not a real-data preset (its kind is {node.kind})")
    return OmegaConf.to_container(node.source, resolve=False)


def _entry(key: str, item: Any, code: str) -> MixSource:
    """`preset`, `{preset: name, weight: w}` or `{name: …, source: {reader mapping}, weight: w}`."""
    if isinstance(item, str):
        item = {"preset": item}
    if not isinstance(item, Mapping):
        raise DataError(f"{key}={item!r} is not allowed: a preset name or {{preset: …, weight: …}}")
    unknown = [k for k in item if k not in ("preset", "name", "source", "weight")]
    if unknown:
        raise DataError(f"{key}.{unknown[0]} is not allowed: keys are preset, name, source, weight")
    if ("preset" in item) == ("source" in item):
        raise DataError(f"{key} needs exactly one of preset or source")
    weight = _weight(f"{key}.weight", item.get("weight", 1.0))
    if "preset" in item:
        name = str(item["preset"])
        source = preset_source(name, f"{key}.preset")
    else:
        source = dict(item["source"])
        name = str(item.get("name") or Path(str(source.get("path", "source"))).stem)
    if source is not None:
        declared = source.get("language")
        if declared not in (None, "???", code):
            raise DataError(
                f"{key}: source {name!r} is language {declared!r}, not {code!r}; list it under "
                f"data.sources.{declared}"
            )
        source = {**source, "language": code}
    return MixSource(name, code, weight, source)


def parse_mix(
    data: DictConfig, codes: list[str], whole_run: bool = True
) -> dict[str, list[MixSource]]:
    """Every language's sources: its `data.sources` entries, and its glyphs at
    `data.glyph_weight` unless the entries name `glyphs` themselves. With `whole_run`, `codes`
    are all the run's languages, and a source for any other language is refused."""
    given = OmegaConf.to_container(data.get("sources") or {}, resolve=True)
    if not isinstance(given, Mapping):
        raise DataError(f"data.sources={given!r} is not allowed: a mapping language → sources")
    strangers = [code for code in given if code not in codes]
    if strangers and whole_run:
        raise DataError(
            f"data.sources.{strangers[0]}: language {strangers[0]!r} is not in this run "
            f"(language={','.join(codes)})"
        )
    glyph_weight = _weight("data.glyph_weight", data.get("glyph_weight", 1.0))
    left_out = list(data.get("leave_real_out") or [])
    unknown = [code for code in left_out if code not in codes]
    if unknown and whole_run:
        raise DataError(
            f"data.leave_real_out: language {unknown[0]!r} is not in this run "
            f"(language={','.join(codes)})"
        )
    out = {}
    for code in codes:
        items = given.get(code) or []
        if not isinstance(items, list):
            items = [items]
        sources = [_entry(f"data.sources.{code}[{i}]", it, code) for i, it in enumerate(items)]
        if code in left_out:
            if not any(s.is_real for s in sources):
                raise DataError(
                    f"data.leave_real_out: {code!r} has no real source in data.sources.{code}"
                )
            sources = [replace(s, weight=0.0) if s.is_real else s for s in sources]
        names = [s.name for s in sources]
        duplicate = next((n for n in names if names.count(n) > 1), None)
        if duplicate:
            raise DataError(f"data.sources.{code}: source {duplicate!r} is listed twice")
        if GLYPHS not in names and glyph_weight > 0:
            sources.insert(0, MixSource(GLYPHS, code, glyph_weight))
        if not any(s.weight > 0 for s in sources):
            raise DataError(f"data.sources.{code}: no source with a weight > 0")
        out[code] = sources
    return out


def sampling_weights(parts: list[tuple[DigitArrays, float]]) -> list[float]:
    """Per-example weights so each source is drawn in proportion to its weight, not its size."""
    weights = []
    for arrays, weight in parts:
        n = len(arrays)
        weights += [weight / n] * n if n else []
    return weights


def trains_on_real(sources: list[MixSource]) -> bool:
    """Whether a language's training draws include real handwriting."""
    return any(s.is_real and s.weight > 0 for s in sources)
