"""Fixtures: the real shipped configs, composed with small overrides for speed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from xlvision.config.compose import compose_config

torch.set_num_threads(min(2, torch.get_num_threads()))

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = Path(sys.executable).parent


@pytest.fixture
def make_config(tmp_path):
    """`make_config("language=kn", ...)`: the shipped config, fast settings, outputs in tmp."""

    def make(*overrides: str, debug: str = "fast"):
        return compose_config(
            [
                f"paths.output_dir={tmp_path / 'run'}",
                f"paths.cache_dir={tmp_path / 'cache'}",
                f"debug={debug}",
                "data.real_per_class=null",  # the tests' small real files are read whole
                *overrides,
            ]
        )

    return make


def run_cli(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run a console script the way a user would; outputs land under `cwd`."""
    script = shutil.which(args[0], path=str(SCRIPTS)) or args[0]
    full_env = {**os.environ, "XLV_CACHE_DIR": str(cwd / "cache"), **(env or {})}
    return subprocess.run(
        [script, *args[1:]], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=900
    )
