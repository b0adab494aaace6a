"""Running one stage in its output dir, recording success or failure, printing a summary."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from pathlib import Path

from omegaconf import DictConfig, open_dict
from rich.console import Console
from rich.table import Table

from xlvision.config.compose import validate_config
from xlvision.errors import one_line
from xlvision.evaluation.metrics import METRICS
from xlvision.records import RUNNING
from xlvision.rundir import CONTINUE, KEEP, RESTART, RunDir

Stage = Callable[[DictConfig], tuple[dict, dict]]


def print_summary(metrics: dict, output_dir: Path, console: Console) -> None:
    """Per-language tables (a column per test metric) and where the outputs are. The columns
    are split over as many tables as it takes to fit the console (80 columns when piped), so
    no number is ever cut; means come after the languages."""
    # The comparison of answer rules stays in metrics.json; the console shows the result.
    keys = [
        k.split("/")
        for k in metrics
        if k.startswith("test/") and k.count("/") == 2 and "/answer_" not in k
    ]
    rows = sorted({language for _, language, _ in keys}, key=lambda c: (c.startswith("mean"), c))
    columns = list(dict.fromkeys([*METRICS, *(name for _, _, name in keys)]))
    if rows:
        first = max(len("language"), *map(len, rows)) + 3
        for part, chunk in enumerate(column_chunks(columns, console.width - first - 1)):
            title = "test metrics" + (" (continued)" if part else "")
            table = Table(title=title, title_justify="left")
            table.add_column("language", no_wrap=True)
            for column in chunk:
                table.add_column(column, justify="right", no_wrap=True, overflow="fold")
            for code in rows:
                cells = [metrics.get(f"test/{code}/{m}") for m in chunk]
                table.add_row(code, *("—" if v is None else f"{v:.4f}" for v in cells))
            console.print(table)
    console.print(f"outputs:\n  {output_dir}", soft_wrap=True)  # a path must stay copyable


def column_chunks(columns: list[str], width: int) -> list[list[str]]:
    """`columns` in order, cut into runs whose cells (the name or a 4-decimal number, plus
    rich's padding and rule) fit `width` characters; at least one column per run."""
    chunks, current, used = [], [], 0
    for column in columns:
        need = max(len(column), len("0.0000")) + 3
        if current and used + need > width:
            chunks.append(current)
            current, used = [], 0
        current.append(column)
        used += need
    return [*chunks, current] if current else chunks


def is_main_process() -> bool:
    """False in the extra ranks of a DDP run, which must not write or print the records."""
    return int(os.environ.get("LOCAL_RANK", os.environ.get("RANK", "0"))) == 0


def end_distributed() -> None:
    """Close the DDP process group where the distributed part of a stage ends: what follows
    runs on rank 0 alone (metrics computed outside a Trainer must not wait for the others)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def stage_header(cfg: DictConfig) -> str:
    """`train · kn+ar · net`: what the stage is about to do, in one line."""
    parts = [str(cfg.get("stage") or "run")]
    languages = list(cfg.get("language") or {})
    pipeline = cfg.get("pipeline") if cfg.get("stage") == "pipeline" else None
    if pipeline is not None:  # its sources and targets, not the default `language`
        sources, targets = list(pipeline.get("sources") or []), list(pipeline.get("targets") or [])
        parts.append(language_list(sources) + (f" → {language_list(targets)}" if targets else ""))
    elif cfg.get("stage") == "integrate":  # the models merged (a run= dir's: not known yet)
        models = cfg.get("models")
        if isinstance(models, Mapping) and models:
            parts.append(language_list([str(code) for code in models]))
    elif languages:
        parts.append("+".join(languages))
    model = cfg.get("model")
    if model is not None and model.get("name") and cfg.get("stage") in ("train", "finetune"):
        parts.append(str(model.name))
    if cfg.get("finetune") is not None and cfg.get("stage") == "finetune":
        parts.append(str(cfg.finetune.name))
    if cfg.get("resume"):
        parts.append("resumed")
    return " · ".join(parts)


def language_list(codes: list[str], most: int = 4) -> str:
    """`kn+ar+hi`, or `21 languages` when there are more than `most`."""
    return "+".join(codes) if len(codes) <= most else f"{len(codes)} languages"


def run_stage(stage: Stage, cfg: DictConfig, header: bool = True) -> tuple[dict, dict]:
    """Run one stage in its output dir; metrics.json records success or the error. `header`
    prints one line naming the stage first (a pipeline prints its own per stage).

    The process holds the dir's lock while it runs (the extra ranks of a DDP run write
    nothing and join rank 0's). With `resume=`, the dir's resume plan decides: a completed
    run is kept, one with a last.ckpt continues, one without is run again."""
    run_dir = RunDir(cfg.paths.output_dir)
    main = is_main_process()
    if main and not cfg.get("resume"):
        run_dir.check_unused()  # before the lock, so that a refused run writes nothing
    with run_dir.lock() if main else nullcontext():
        if cfg.get("resume"):
            if main:
                run_dir.check_same_job()  # a resumed sweep's job, in its own dir only
            plan = run_dir.resume_plan(cfg.get("stage"))
            console = Console(stderr=True, soft_wrap=True)  # a path must stay copyable
            if plan.action == KEEP:
                console.print(f"{run_dir.path}: completed before, kept")
                return run_dir.result()
            if plan.action == CONTINUE and not header:  # a pipeline's stage: say so
                console.print(f"{run_dir.path}: resumed from its last.ckpt")
            if plan.action == RESTART and main:
                run_dir.clear()
            with open_dict(cfg):
                cfg.resume = str(run_dir.path) if plan.action == CONTINUE else None
        if main:
            run_dir.write_config(cfg)
            run_dir.write_record(cfg.stage, {}, status=RUNNING)
            if header:
                Console(stderr=True).rule(stage_header(cfg))
        try:
            validate_config(cfg)
            metrics, artifacts = stage(cfg)
        except BaseException as err:
            if main:
                run_dir.write_record(cfg.stage, {}, error=f"{type(err).__name__}: {one_line(err)}")
            raise
        if main:
            run_dir.write_record(cfg.stage, metrics, artifacts)
            print_summary(metrics, run_dir.path, Console(stderr=True))
    return metrics, artifacts
