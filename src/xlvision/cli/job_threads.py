"""Each job of a parallel sweep (`hydra/launcher=joblib`) gets its share of the CPU cores."""

from __future__ import annotations

import os
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig


def available_cores() -> int:
    """Cores this process may run on (a container's or taskset's limit, not the machine's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def threads_per_job(n_jobs: int | None, cores: int) -> int | None:
    """`cores // n_jobs` threads (at least one); None when jobs do not run side by side. A
    negative `n_jobs` counts back from the cores, as joblib does (-1: one job per core)."""
    if n_jobs is None:
        return None
    jobs = n_jobs if n_jobs > 0 else max(cores + 1 + n_jobs, 1)
    return max(cores // jobs, 1) if jobs > 1 else None


class ThreadShare(Callback):
    """Sets torch's (and OpenMP's) threads as each job starts, so that `n_jobs` jobs at once
    do not fight over the cores: with 2 cores, 2 jobs get a thread each."""

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        launcher = HydraConfig.get().launcher
        threads = threads_per_job(launcher.get("n_jobs"), available_cores())
        if threads is None:
            return
        import torch

        os.environ["OMP_NUM_THREADS"] = str(threads)
        torch.set_num_threads(threads)
