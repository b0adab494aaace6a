"""The package's structure: every subpackage imports on its own, as the first import."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import xlvision


def subpackages() -> list[str]:
    return sorted(
        f"xlvision.{info.name}" for info in pkgutil.iter_modules(xlvision.__path__) if info.ispkg
    )


def test_every_subpackage_imports_first_in_a_fresh_interpreter() -> None:
    names = subpackages()
    assert {"xlvision.finetune", "xlvision.config", "xlvision.integrate"} <= set(names)
    # One interpreter per package: an import cycle shows only when its package comes first.
    script = "; ".join(
        f"subprocess.run([sys.executable, '-c', 'import {name}'], check=True)" for name in names
    )
    result = subprocess.run(
        [sys.executable, "-c", f"import subprocess, sys; {script}"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_model_names_match_the_registry() -> None:
    from xlvision.models.names import MODEL_NAMES
    from xlvision.models.registry import MODELS

    assert set(MODEL_NAMES) == set(MODELS)


def test_help_and_config_errors_never_import_torch() -> None:
    # What makes them print at once: torch, Lightning and the data code load only for a job.
    script = """
import sys
from xlvision.cli.{cli} import main
sys.argv = ["xlv-{cli}", *{args!r}]
try:
    main()
except SystemExit as stop:
    assert stop.code in (0, 2), stop.code
heavy = sorted(m for m in ("torch", "lightning", "torchvision") if m in sys.modules)
assert not heavy, heavy
"""
    cases = [
        ("train", ["+foo=1"]),
        ("train", ["optimizer.lr=-1"]),
        ("finetune", ["language=xx"]),
        ("pipeline", ["pipeline.targets=kn", "trainer.max_epochs=0"]),
        ("eval", ["--help"]),
    ]
    for cli, args in cases:
        result = subprocess.run(
            [sys.executable, "-c", script.format(cli=cli, args=args)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, (cli, args, result.stderr[-1500:])
