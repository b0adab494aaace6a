"""The report's settings, read from the composed config and checked before any file is read."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, ListConfig, OmegaConf

from xlvision.errors import XlvisionError

LANG = "lang"
"""Pseudo key for the language named by `{lang}` in a metric, so `cols=lang` spreads one
multi-language run over one column per language it was tested on."""

LANG_PLACEHOLDER = "{lang}"


class ReportError(XlvisionError, ValueError):
    """A user's mistake in the report's options; its message is one line for people."""

    exit_status = 2


class NoRunsError(ReportError):
    """`runs=` names nothing that holds a run: an input that is not there, like a missing file."""

    exit_status = 1


@dataclass(frozen=True)
class ReportOptions:
    """What to report: which runs, the table's axes, the metrics and how to print them."""

    runs: tuple[str, ...]
    rows: tuple[str, ...]
    cols: tuple[str, ...]
    metrics: tuple[str, ...]
    lower_is_better: tuple[str, ...] = ()
    precision: int = 3
    title: str = "xlvision report"
    out_dir: Path | None = None
    shots_key: str = "data.shots_per_class"
    mean_row: bool = False
    figures: bool = True
    lang_means: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @classmethod
    def from_config(cls, cfg: DictConfig) -> ReportOptions:
        """Validate the report config, failing with the key and what is allowed."""
        if OmegaConf.is_missing(cfg, "runs"):
            raise ReportError(
                "runs= is required: run dirs, sweep dirs or globs, e.g. runs=[outputs/multirun/*/*]"
            )
        report = cfg.get("report") or {}
        out_dir = report.get("out_dir")
        options = cls(
            runs=_keys(cfg, "runs"),
            rows=_keys(cfg, "rows", allow_empty=True),
            cols=_keys(cfg, "cols", allow_empty=True),
            metrics=_keys(cfg, "metric"),
            lower_is_better=_keys(cfg, "lower_is_better", allow_empty=True),
            precision=_precision(cfg.get("precision", 3)),
            title=str(report.get("title") or cls.title),
            out_dir=Path(str(out_dir)) if out_dir else None,
            shots_key=str(report.get("shots_key") or cls.shots_key),
            mean_row=_flag(cfg, "mean_row"),
            figures=_flag(cfg, "figures", default=True),
            lang_means=_lang_means(cfg.get("lang_means")),
        )
        options.check_axes()
        return options

    def check_axes(self) -> None:
        """Rows and cols must be disjoint, and `lang` needs `{lang}` in every metric."""
        both = sorted(set(self.rows) & set(self.cols))
        if both:
            raise ReportError(f"rows= and cols= both contain {', '.join(both)}; use a key once")
        if LANG in self.rows + self.cols:
            plain = [m for m in self.metrics if LANG_PLACEHOLDER not in m]
            if plain:
                raise ReportError(
                    f"rows/cols use '{LANG}' but metric {plain[0]!r} has no {LANG_PLACEHOLDER}"
                )

    def is_lower_better(self, metric: str) -> bool:
        """Whether the best value of `metric` is its smallest (loss, time …)."""
        return any(fnmatch.fnmatchcase(metric, pattern) for pattern in self.lower_is_better)


def _keys(cfg: DictConfig, key: str, allow_empty: bool = False) -> tuple[str, ...]:
    value = cfg.get(key)
    if value is None:
        items: Sequence[object] = []
    elif isinstance(value, ListConfig | list | tuple):
        items = list(value)
    else:
        items = [value]
    bad = [item for item in items if not isinstance(item, str) or not item.strip()]
    if bad:
        raise ReportError(f"{key}= must be a string or a list of strings, got {bad[0]!r}")
    if not items and not allow_empty:
        raise ReportError(f"{key}= is empty; give at least one value")
    return tuple(str(item).strip() for item in items)


def _flag(cfg: DictConfig, key: str, default: bool = False) -> bool:
    value = cfg.get(key, default)
    if not isinstance(value, bool):
        raise ReportError(f"{key}= must be true or false, got {value!r}")
    return value


def _precision(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10:
        raise ReportError(f"precision= must be an integer from 0 to 10, got {value!r}")
    return value


def _lang_means(value: object) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """`{name: [codes]}` → ((`mean_<name>`, codes), …): per-run means over those languages."""
    if value is None:
        return ()
    if not isinstance(value, DictConfig | dict):
        raise ReportError(f"lang_means= must map a name to a list of language codes, got {value!r}")
    out = []
    for name, codes in value.items():
        if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9_]+", name):
            raise ReportError(f"lang_means: name {name!r} must be lowercase letters, digits or _")
        items = list(codes) if isinstance(codes, ListConfig | list | tuple) else None
        if not items or not all(isinstance(c, str) and c for c in items):
            raise ReportError(f"lang_means.{name} must be a non-empty list of language codes")
        out.append((f"mean_{name}", tuple(items)))
    return tuple(out)
