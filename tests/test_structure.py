"""The package's structure: every subpackage imports on its own, as the first import."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import pytest

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


def test_no_import_cycle_between_modules() -> None:
    """Module-level imports (those that run on import) form no cycle: any module can come
    first. Imports inside functions and under `TYPE_CHECKING` run later and do not count."""
    import ast
    from pathlib import Path

    root = Path(xlvision.__file__).parent
    modules: dict[str, Path] = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        edges = set()
        for node in ast.parse(path.read_text()).body:
            targets = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            for target in targets:
                if target.startswith("xlvision.") and (found := resolve(target)) != module:
                    if found:
                        edges.add(found)
        graph[module] = edges

    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(module: str, stack: list[str]) -> bool:
        state[module] = 1
        for other in sorted(graph[module]):
            if state.get(other) == 1:
                cycle.extend(stack[stack.index(other) :] + [module, other])
                return True
            if other not in state and visit(other, stack + [other]):
                return True
        state[module] = 2
        return False

    for module in sorted(graph):
        if module not in state and visit(module, [module]):
            break
    assert not cycle, " -> ".join(dict.fromkeys(cycle))


def test_model_names_match_the_registry() -> None:
    from xlvision.config.models import MODEL_NAMES
    from xlvision.models.registry import MODELS

    assert set(MODEL_NAMES) == set(MODELS)


def test_help_and_config_errors_never_import_torch() -> None:
    # What makes them print at once: torch, Lightning and the data code load only for a job.
    # One interpreter reads every case in turn, checking after each that none was loaded.
    cases = [
        ("train", ["+foo=1"]),
        ("train", ["optimizer.lr=-1"]),
        ("finetune", ["language=xx"]),
        ("pipeline", ["pipeline.targets=kn", "trainer.max_epochs=0"]),
        ("eval", ["--help"]),
        ("predict", ["+foo=1"]),
        ("predict", ["--help"]),
        ("predict", ["bundle=nope.safetensors", "input=x.png"]),
        ("export", ["--help"]),
        ("export", ["format=pdf", "bundle=b.safetensors"]),
        ("adapt", ["--help"]),
        ("adapt", ["bundle=b.safetensors", "input=x", "output=o.safetensors", "adapt=foo"]),
        ("report", ["rows=model", "cols=model", "runs=x"]),
    ]
    script = f"""
import importlib, sys
from hydra.core.global_hydra import GlobalHydra
for cli, args in {cases!r}:
    main = importlib.import_module(f"xlvision.cli.{{cli}}").main
    sys.argv = [f"xlv-{{cli}}", *args]
    try:
        main()
    except SystemExit as stop:
        assert stop.code in (0, 1, 2), (cli, args, stop.code)
    GlobalHydra.instance().clear()
    heavy = sorted(m for m in ("torch", "lightning", "torchvision") if m in sys.modules)
    assert not heavy, (cli, args, heavy)
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-1500:]


# Lower layers never import higher ones; a module may import its own layer. The finetune and
# integrate config dataclasses live in the config layer (the schema is made of them), batch-norm
# recalibration with the models, so nothing below runs back up.
LAYERS = {
    "xlvision.errors": 0,
    "xlvision.records": 0,
    "xlvision.rundir": 0,
    "xlvision.progress": 0,
    "xlvision.paths": 0,
    "xlvision.moved": 0,
    "xlvision.config": 0,
    "xlvision.languages": 0,
    "xlvision.data": 1,
    "xlvision.models": 1,
    "xlvision.finetune": 2,
    "xlvision.bundle": 2,
    "xlvision.report": 2,
    "xlvision.evaluation": 3,
    "xlvision.training": 3,
    "xlvision.integrate": 4,
    "xlvision.stages": 5,
    "xlvision.cli": 6,
}


def test_every_module_has_a_layer() -> None:
    import pkgutil

    names = {f"xlvision.{info.name}" for info in pkgutil.iter_modules(xlvision.__path__)}
    assert names == set(LAYERS), sorted(names ^ set(LAYERS))


def layer_of(module: str) -> int | None:
    matches = [name for name in LAYERS if module == name or module.startswith(name + ".")]
    return LAYERS[max(matches, key=len)] if matches else None


def test_no_layer_imports_a_higher_one() -> None:
    import ast
    from pathlib import Path

    root = Path(xlvision.__file__).parent
    wrong = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        own = layer_of(module)
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                other = layer_of(name) if name.startswith("xlvision.") else None
                if own is not None and other is not None and other > own:
                    wrong.append(f"{module} imports {name}")
    assert not wrong, wrong


def test_every_user_error_derives_from_the_one_base_class() -> None:
    """The console scripts catch `XlvisionError` alone: an error class outside it would end
    in a traceback. The base class's module imports nothing, so catching it costs nothing."""
    import ast
    import importlib
    from pathlib import Path

    from xlvision.errors import XlvisionError

    root = Path(xlvision.__file__).parent
    found, outside = [], []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef) and node.name.endswith("Error"):
                cls = getattr(importlib.import_module(module), node.name)
                found.append(node.name)
                if not issubclass(cls, XlvisionError):
                    outside.append(f"{module}.{node.name}")
    assert not outside, outside
    assert {"ConfigError", "DataError", "BundleError", "CheckpointError", "ResumeError"} <= set(
        found
    )
    tree = ast.parse((root / "errors.py").read_text())
    imports = [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]
    assert [getattr(n, "module", None) for n in imports] == ["__future__"]


def test_each_console_script_helps_with_its_own_name_and_options() -> None:
    """`--help` opens with the script's own summary and usage, not Hydra's banner; the report's
    lists its own options, not the training groups."""
    script = """
import contextlib, importlib, io, json, sys
from hydra.core.global_hydra import GlobalHydra
out = {}
for cli in ("train", "finetune", "integrate", "pipeline", "eval", "report"):
    sys.argv = [f"xlv-{cli}", "--help"]
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        try:
            importlib.import_module(f"xlvision.cli.{cli}").main()
        except SystemExit:
            pass
    GlobalHydra.instance().clear()
    out[cli] = buffer.getvalue()
print(json.dumps(out))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-1500:]
    helps = json.loads(result.stdout.strip().splitlines()[-1])
    for cli, text in helps.items():
        assert text.startswith(f"xlv-{cli}: "), (cli, text[:200])
        assert f"usage: xlv-{cli} " in text, cli
        assert "powered by Hydra" not in text, cli
    assert "== Config groups" in helps["train"] and "finetune: " in helps["train"]
    assert "Config groups" not in helps["report"] and "optimizer:" not in helps["report"]
    assert "rows:" in helps["report"]


def test_a_name_a_package_handed_on_says_where_it_lives_now() -> None:
    """`from xlvision.bundle import load_bundle` (the form before each name was imported from
    its module) ends in one line naming the module to import it from, and that module has it."""
    import importlib

    checked = 0
    for package in subpackages():
        homes = getattr(getattr(importlib.import_module(package), "__getattr__", None), "homes", {})
        for name, home in homes.items():
            try:
                exec(f"from {package} import {name}", {})
            except ImportError as error:
                assert (
                    str(error) == f"{package}.{name} has moved: write `from {home} import {name}`"
                )
            else:
                raise AssertionError(f"{package}.{name} still imports")
            assert hasattr(importlib.import_module(home), name), (home, name)
            checked += 1
    assert checked >= 30
    assert not hasattr(importlib.import_module("xlvision.bundle"), "no_such_name")


def test_every_console_script_is_one_declared_command() -> None:
    """One command style: each `xlv-*` entry point is a `Command` that runs a stage (a Hydra
    job) or a tool, named as the script is; none parses its own arguments around it."""
    from importlib.metadata import entry_points

    from xlvision.cli.app import Command

    scripts = [e for e in entry_points(group="console_scripts") if e.name.startswith("xlv-")]
    assert len(scripts) == 9
    for entry in scripts:
        command = entry.load()
        assert isinstance(command, Command), entry.name
        assert command.prog == entry.name
        assert (command.stage is None) != (command.tool is None), entry.name
    with pytest.raises(ValueError, match="a stage or a tool"):
        Command("xlv-x", "config")


def test_a_user_error_ends_with_its_own_exit_status(capsys) -> None:
    """`fail` prints the one line and exits with the error class's status: 2 for a mistake in
    the command line (a config value, a `resume=`, a report option), 1 for an input."""
    from xlvision.cli.app import fail
    from xlvision.config.errors import ConfigError
    from xlvision.records import InputFileError
    from xlvision.report.options import NoRunsError, ReportError
    from xlvision.rundir import ResumeError

    cases = [
        (ConfigError("seed", "x", "an integer"), 2, "xlv-t: config error: seed='x' is not"),
        (ResumeError("resume=a: not a run"), 2, "xlv-t: resume=a: not a run"),
        (ReportError("rows=x: no run's config has this key"), 2, "xlv-t: rows=x: no run's"),
        (NoRunsError("runs= matched no run dirs"), 1, "xlv-t: runs= matched"),
        (InputFileError("base=a.ckpt: no such file"), 1, "xlv-t: base=a.ckpt: no such file"),
        (PermissionError(13, "Permission denied", "out"), 1, "xlv-t: out: permission denied"),
    ]
    for err, status, line in cases:
        with pytest.raises(SystemExit) as stop:
            fail("xlv-t", err)
        assert stop.value.code == status, err
        printed = capsys.readouterr().err
        assert printed.startswith(line) and printed.count("\n") == 1, printed
