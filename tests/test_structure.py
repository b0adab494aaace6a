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
