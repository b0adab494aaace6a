"""The languages of a pipeline: checked when the config is composed, before any training."""

from __future__ import annotations

from omegaconf import DictConfig

from xlvision.config.errors import ConfigError
from xlvision.languages.registry import available_languages

ALL = "all"
"""`pipeline.sources=[all]`: pretrain on every language of conf/language/."""


def pipeline_languages(cfg: DictConfig) -> tuple[list[str], list[str]]:
    """The pretraining and the target languages, checked before anything trains."""
    known = available_languages()
    sources, targets = list(cfg.pipeline.sources), list(cfg.pipeline.targets)
    if ALL in sources:
        sources = known
    for key, codes in (("pipeline.sources", sources), ("pipeline.targets", targets)):
        unknown = [c for c in codes if c not in known]
        if unknown:
            also = " or all" if key == "pipeline.sources" else ""
            raise ConfigError(
                key, unknown[0], f"language codes of conf/language/ ({', '.join(known)}){also}"
            )
    if not sources and cfg.pipeline.pretrain:
        raise ConfigError("pipeline.sources", [], "at least one language to pretrain on")
    return sources, targets


def check_pipeline_languages(cfg: DictConfig) -> None:
    pipeline_languages(cfg)
