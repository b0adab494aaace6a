"""Shared wrapper of the console scripts: check overrides early, run a stage, record it."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from pathlib import Path

import hydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from xlvision.config import ConfigError, compose_config, validate_config
from xlvision.config.paths import config_dir
from xlvision.config.resolvers import register_resolvers
from xlvision.config.schema import register_schemas
from xlvision.stages.outputs import write_config, write_metrics

Stage = Callable[[DictConfig], tuple[dict, dict]]
PASSTHROUGH_FLAGS = {"--help", "-h", "--hydra-help", "--info", "-i", "--cfg", "-c", "--resolve"}


def override_combinations(overrides: list[str]) -> list[list[str]]:
    """One override list per value of every sweep (not the full product): enough to check all."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
    sweeps = [
        [f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()]
        for o in parsed
        if o.is_sweep_override()
    ]
    if not sweeps:
        return [fixed]
    firsts = [values[0] for values in sweeps]
    combos = [fixed + firsts]
    for i, values in enumerate(sweeps):
        for value in values[1:]:
            combos.append(fixed + firsts[:i] + [value] + firsts[i + 1 :])
    return combos


def check_command_line(argv: list[str], config_name: str) -> None:
    """Compose every configuration the command line asks for before Hydra starts a job."""
    if any(a.split("=")[0] in PASSTHROUGH_FLAGS for a in argv):
        return
    overrides = [a for a in argv if "=" in a and not a.startswith("-")]
    for combo in override_combinations(overrides):
        compose_config(combo, config_name=config_name)


def print_summary(metrics: dict, output_dir: Path, console: Console) -> None:
    """One short per-language table and where the outputs are."""
    rows = sorted({k.split("/")[1] for k in metrics if k.startswith("test/")})
    if rows:
        table = Table(title="test metrics", title_justify="left")
        for column in ("language", "acc", "recall", "f1"):
            table.add_column(column, justify="right" if column != "language" else "left")
        for code in rows:
            table.add_row(
                code,
                *(
                    f"{metrics[f'test/{code}/{m}']:.4f}" if f"test/{code}/{m}" in metrics else "—"
                    for m in ("acc", "recall", "f1")
                ),
            )
        console.print(table)
    console.print(f"outputs: {output_dir}")


def run_stage(stage: Stage, cfg: DictConfig) -> dict:
    """Run one stage in its output dir; metrics.json records success or the error."""
    output_dir = Path(cfg.paths.output_dir)
    write_config(cfg, output_dir)
    try:
        validate_config(cfg)
        metrics, artifacts = stage(cfg)
    except BaseException as err:
        write_metrics(output_dir, cfg.stage, {}, error=f"{type(err).__name__}: {err}")
        raise
    write_metrics(output_dir, cfg.stage, metrics, artifacts)
    print_summary(metrics, output_dir, Console(stderr=True))
    return metrics


def console_main(stage: Stage, config_name: str, prog: str) -> Callable[[], None]:
    """A console script for `stage` composed from `conf/<config_name>.yaml`."""
    register_resolvers()
    register_schemas()

    @hydra.main(config_path=str(config_dir()), config_name=config_name, version_base="1.3")
    def job(cfg: DictConfig) -> float | None:
        metrics = run_stage(stage, cfg)
        return metrics.get(cfg.get("monitor", ""))

    def main() -> None:
        try:
            check_command_line(sys.argv[1:], config_name)
        except ConfigError as err:
            print(f"{prog}: config error: {err}", file=sys.stderr)
            sys.exit(2)
        except Exception as err:  # a malformed override: Hydra's parser explains it
            detail = " ".join(str(err).split()) or traceback.format_exc(limit=1)
            print(f"{prog}: bad command line: {detail}", file=sys.stderr)
            sys.exit(2)
        job()

    return main
