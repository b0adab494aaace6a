"""DDP ranks of a job: Lightning's launcher starts ranks above 0 by running the console
script again; they join the run of the job that started them."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from xlvision.rundir import RunDir

# The run dir of the job going on in this process, for the DDP processes it starts.
RUN_DIR_ENV = "XLV_RUN_DIR"
# What Lightning's DDP launcher sets in the launching process's own environment.
DDP_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")


def ddp_rank_config() -> DictConfig | None:
    """In a process Lightning's DDP launcher started for a rank above 0, the config of the
    job that started it (its run dir's config.yaml), so that the rank joins that run instead
    of composing the command line again and making a run dir of its own; else None."""
    run_dir = os.environ.get(RUN_DIR_ENV)
    if not run_dir or int(os.environ.get("LOCAL_RANK", "0")) == 0:
        return None
    return OmegaConf.load(RunDir(run_dir).config_file)


@contextmanager
def job_environment(cfg: DictConfig) -> Iterator[None]:
    """Tell the DDP ranks a job starts where its run is, and leave no DDP state behind for
    the next job of a sweep in this process (it starts ranks of its own)."""
    before = {key: os.environ.get(key) for key in (RUN_DIR_ENV, *DDP_ENV)}
    os.environ[RUN_DIR_ENV] = str(Path(cfg.paths.output_dir).absolute())
    try:
        yield
    finally:
        distributed = sys.modules.get("torch.distributed")
        if distributed is not None and distributed.is_available() and distributed.is_initialized():
            distributed.destroy_process_group()
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
