"""Search sweepers (`hparams_search=optuna`): what a job returns to them, which keys they
search, and how a trial that a user error ends is told apart from a sweep's failure."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from xlvision.config.paths import config_dir
from xlvision.records import sweep_objective


def searched_keys(argv: list[str]) -> set[str]:
    """The keys that a search preset given on the command line (`hparams_search=optuna`)
    searches: a script's own defaults (xlv-finetune's `finetune=full`) leave them to it."""
    chosen = [a.partition("=")[2] for a in argv if a.startswith("hparams_search=")]
    path = config_dir() / "hparams_search" / f"{chosen[-1] if chosen else ''}.yaml"
    if not chosen or not path.is_file():
        return set()
    return set(OmegaConf.select(OmegaConf.load(path), "hydra.sweeper.params") or {})


class TrialFailed(Exception):
    """A search trial ended by a user error (already printed): the study records the trial
    as failed and goes on, where a grid sweep stops at its first failed job."""


def in_search() -> bool:
    """Whether this job is a trial of a search sweeper (Optuna)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return False
    return "optuna" in str(HydraConfig.get().sweeper.get("_target_", ""))


def sweep_value(cfg: DictConfig, metrics: dict) -> float | None:
    """What a job returns to a sweeper: its `sweep_objective` metric."""
    key = sweep_objective(cfg)
    return metrics.get(key) if key else None
