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

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs two workers on two cores: one thread each, and the same for the console
    # scripts they start (PyTorch reads OMP_NUM_THREADS when it loads).
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
else:
    torch.set_num_threads(min(2, torch.get_num_threads()))

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = Path(sys.executable).parent

LONG_FILES = (
    "test_resume.py",
    "test_export.py",
    "test_integrate.py",
    "test_ddp.py",
    "test_experiments.py",
    "test_unified.py",
)
"""The files that take longest (about 25–70 s each on one worker), heaviest first. `make test`
hands whole files to its workers in collection order: these go first, so that the last file
each worker is given is a short one and neither waits long for the other at the end."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The long files first, each file's tests in their own order, the others as collected."""

    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONG_FILES.index(name) if name in LONG_FILES else len(LONG_FILES)

    items.sort(key=rank)  # stable: a file's tests keep their order


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


def run_in_process(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """`run_cli` without a new interpreter: the console script's `main` called here, with its
    argv, cwd, environment and exit code as a user's shell would give them. For mistakes that
    end before a run starts (a process's start costs seconds of imports; this, milliseconds);
    whatever a run leaves in the process (logging, Hydra's state) is undone afterwards."""
    import contextlib
    import io
    import logging
    from importlib.metadata import entry_points

    from hydra.core.global_hydra import GlobalHydra

    (entry,) = entry_points(group="console_scripts", name=args[0])
    main = entry.load()
    full_env = {"XLV_CACHE_DIR": str(cwd / "cache"), **(env or {})}
    saved_env = {k: os.environ.get(k) for k in full_env}
    saved_argv, saved_cwd = sys.argv, Path.cwd()
    saved_handlers = logging.getLogger().handlers[:]
    out, err = io.StringIO(), io.StringIO()
    code = 0
    try:
        os.environ.update(full_env)
        os.chdir(cwd)
        sys.argv = [args[0], *args[1:]]
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    finally:
        sys.argv = saved_argv
        os.chdir(saved_cwd)
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        logging.getLogger().handlers[:] = saved_handlers
        GlobalHydra.instance().clear()
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())
