"""`hydra/launcher=slurm`: the submitit launcher preset composes (there is no cluster here)."""

from __future__ import annotations

from hydra.utils import instantiate
from omegaconf import OmegaConf

from xlvision.config.compose import compose_config


def test_the_slurm_preset_composes_into_a_submitit_launcher():
    cfg = compose_config(
        ["hydra/launcher=slurm", "hydra.launcher.partition=gpu", "experiment=kshot_curve"]
    )
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert (launcher.partition, launcher.gpus_per_node, launcher.tasks_per_node) == ("gpu", 1, 1)
    assert launcher.timeout_min > 0 and launcher.cpus_per_task > 0
    # Every value resolves (the submitit folder sits in the sweep dir) and the launcher takes
    # them all: building it submits nothing.
    folder = OmegaConf.select(cfg, "hydra.launcher.submitit_folder")
    assert folder.startswith(OmegaConf.select(cfg, "hydra.sweep.dir"))
    assert type(instantiate(launcher)).__name__ == "SlurmLauncher"
