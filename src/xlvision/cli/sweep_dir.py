"""A sweep names its dir when it starts and ends (the path `xlv-report runs=[…]` needs), and
at its end the jobs that did not complete."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from xlvision.cli.sweep_jobs import end_sweep


class SweepDir(Callback):
    """Prints the sweep's dir on its own line, on stderr (stdout may be a job's table)."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        print(f"sweep dir:\n  {sweep_dir(config)}", file=sys.stderr, flush=True)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        line = f"  xlv-report 'runs=[{sweep_dir(config)}]'"
        print(f"sweep finished; report it with\n{line}", file=sys.stderr, flush=True)
        end_sweep(config, sweep_dir(config))


def sweep_dir(config: DictConfig) -> Path:
    return Path(str(config.hydra.sweep.dir)).absolute()
