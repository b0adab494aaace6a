"""`pipeline`: pretrain on the sources → fine-tune on every target → integrate them into one
bundle → evaluate it → report, in one dir."""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict
from rich.console import Console

from xlvision import __version__
from xlvision.config.errors import ConfigError
from xlvision.config.pipeline import pipeline_languages
from xlvision.data.glyphs import GENERATOR_VERSION
from xlvision.languages import available_languages, load_language
from xlvision.paths import config_dir
from xlvision.records import resolved_config
from xlvision.report.stage import report
from xlvision.rundir import EVAL, INTEGRATE, PRETRAIN, RunDir
from xlvision.stages.evaluate import evaluate
from xlvision.stages.finetune import finetune
from xlvision.stages.integrate import integrate
from xlvision.stages.runner import end_distributed, is_main_process, run_stage
from xlvision.stages.train import train

PRETRAIN_CACHE = "pretrain"  # <cache dir>/pretrain/<key>: finished pretrainings by config
COPY_SEED_STEP = 1000  # pipeline.copies: copy k trains with init_seed = seed + 1000·(k − 1)


def stage_config(cfg: DictConfig, stage: str, codes: list[str], output_dir: Path, **updates):
    """The pipeline's config narrowed to one stage: its languages, its output dir."""
    sub = copy.deepcopy(cfg)
    with open_dict(sub):
        sub.stage = stage
        sub.language = {c: OmegaConf.load(config_dir() / "language" / f"{c}.yaml") for c in codes}
        if sub.data.get("sources"):  # data=mix: the stage's languages' sources only
            sub.data.sources = {c: s for c, s in sub.data.sources.items() if c in codes}
        if sub.data.get("leave_real_out"):
            sub.data.leave_real_out = [c for c in sub.data.leave_real_out if c in codes]
        sub.paths.output_dir = str(output_dir)
        sub.pipeline = None
        sub.resume = None  # a stage resumes only from its own dir (run_or_resume)
        for key, value in updates.items():
            sub[key] = value
    return sub


def run_or_resume(stage, cfg: DictConfig, resume: bool) -> tuple[dict, dict]:
    """Run one stage of the pipeline; when the pipeline is resumed, the stage's dir decides
    (`RunDir.resume_plan`): completed, it is read back; with a last.ckpt, it continues from
    it; with neither, it runs again."""
    if resume:
        with open_dict(cfg):
            cfg.resume = str(cfg.paths.output_dir)
    return run_stage(stage, cfg, header=False)


def pretrain_key(cfg: DictConfig) -> str:
    """A digest of everything that decides the pretrained model (not where it is written)."""
    spec = resolved_config(cfg)
    for key in ("paths", "logger", "pipeline", "integrate", "models", "run", "resume"):
        spec.pop(key, None)
    # A new xlvision or glyph generator may train a different model from the same config.
    spec["_versions"] = {"xlvision": __version__, "generator": GENERATOR_VERSION}
    spec["trainer"].pop("enable_progress_bar", None)
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]


def pretrain_once(cfg: DictConfig, run_dir: RunDir, reuse: bool, console: Console, resume=False):
    """Pretrain into `run_dir`, or copy a finished pretraining with the identical config.

    The cache holds the checkpoint, config.yaml and metrics.json of the first such run, so the
    jobs of a sweep that differ only downstream (k, strategy) share one source model.
    """
    cached = RunDir(Path(cfg.paths.cache_dir) / PRETRAIN_CACHE / pretrain_key(cfg))
    if resume and run_dir.path.is_dir():
        metrics, artifacts = run_or_resume(train, cfg, True)
        return metrics, {"checkpoint": artifacts["checkpoint"]}
    if reuse and cached.holds_run():
        shutil.copytree(cached.path, run_dir.path, dirs_exist_ok=True)
        record = run_dir.record()
        checkpoint = run_dir.best_checkpoint
        record["artifacts"].update(
            checkpoint=str(checkpoint.relative_to(run_dir.path)), reused_from=str(cached.path)
        )
        run_dir.rewrite_record(record)
        console.print(f"pretrain: identical config already trained, reused {cached.path}")
        return record["metrics"], {"checkpoint": str(checkpoint)}
    metrics, artifacts = run_stage(train, cfg, header=False)
    checkpoint = Path(artifacts["checkpoint"])
    if reuse:
        staging = RunDir(cached.path.with_name(cached.path.name + ".tmp"))
        shutil.rmtree(staging.path, ignore_errors=True)
        staging.checkpoints.mkdir(parents=True)
        shutil.copy2(checkpoint, staging.best_checkpoint)
        shutil.copy2(run_dir.config_file, staging.config_file)
        shutil.copy2(run_dir.metrics_file, staging.metrics_file)
        shutil.rmtree(cached.path, ignore_errors=True)
        staging.path.rename(cached.path)
    return metrics, {"checkpoint": str(checkpoint)}


def report_config(root: str | Path, runs: list[Path]) -> DictConfig:
    """The report of a pipeline in `root` over its stage dirs `runs`."""
    cfg = OmegaConf.load(config_dir() / "report.yaml")
    cfg.pop("hydra", None)
    cfg.runs = [str(r) for r in runs]
    cfg.rows = ["lang"]  # one row per language each stage tested, the bundle's included
    cfg.cols = ["stage"]
    cfg.metric = ["test/{lang}/acc", "test/{lang}/f1"]
    cfg.report.out_dir = str(RunDir(root).report_dir)
    cfg.report.title = "xlvision pipeline"
    return cfg


def read_target_files(cfg: DictConfig, codes: list[str]) -> None:
    """Read every real file of the target languages now, so a missing or broken one fails in
    one line before pretraining, not after it (the sources' files are read by pretraining
    before it trains)."""
    from xlvision.data.datamodule import load_splits
    from xlvision.data.mix import parse_mix
    from xlvision.data.real import load_real_splits

    data_dir = Path(cfg.paths.data_dir)
    if cfg.data.kind == "mix" and codes:
        for sources in parse_mix(cfg.data, codes, whole_run=False).values():
            for source in (s for s in sources if s.is_real):
                load_real_splits(source.source, seed=cfg.seed, data_dir=data_dir)
    elif cfg.data.kind == "real":
        for code in codes:
            load_splits(cfg.data, load_language(code), cfg.seed, data_dir)


def pipeline(cfg: DictConfig) -> tuple[dict, dict]:
    """Every stage is recorded in its own subdir, so a crash keeps what finished."""
    console = Console(stderr=True)
    root = RunDir(cfg.paths.output_dir)
    resume = bool(cfg.get("resume"))  # xlv-pipeline resume=<dir>: finished stages are kept
    sources, targets = pipeline_languages(cfg)
    method = cfg.integrate.name if cfg.get("integrate") is not None else None
    if method == "unified" and not cfg.pipeline.pretrain:
        raise ConfigError(
            "pipeline.pretrain", False, "true: integrate=unified bundles the pretrained model"
        )
    # integrate=unified bundles the model pretrained on every source language as is.
    bundled = sources if method == "unified" else targets
    # A preset lists sources for all its languages; a pipeline over fewer leaves the others
    # out, but a code that is no language at all is a mistake.
    known = available_languages()
    unknown = [c for c in cfg.data.get("sources") or {} if c not in known]
    if unknown:
        raise ConfigError(f"data.sources.{unknown[0]}", "…", f"a language: {', '.join(known)}")
    copies = cfg.pipeline.get("copies", 1)
    if not isinstance(copies, int) or isinstance(copies, bool) or copies < 1:
        raise ConfigError("pipeline.copies", copies, "a whole number ≥ 1")
    if copies > 1 and method != "unified":
        raise ConfigError("pipeline.copies", copies, "1 unless integrate=unified")
    read_target_files(cfg, [c for c in targets if c not in sources])
    steps = int(cfg.pipeline.pretrain) * copies + len(targets) + (2 if method else 0)
    metrics, runs, checkpoint, tuned, copy_checkpoints = {}, [], None, {}, []
    finetune_conf = cfg.finetune
    if cfg.pipeline.pretrain:
        console.rule(f"[1/{steps}] pretrain on {'+'.join(sources)}")
        pre_dir = root.stage(PRETRAIN)
        pre = stage_config(cfg, "train", sources, pre_dir.path, finetune=None, integrate=None)
        pre.data.shots_per_class = None  # k-shot budgets are for the targets
        pretrain_metrics, pretrain_artifacts = pretrain_once(
            pre, pre_dir, cfg.pipeline.reuse_pretrain, console, resume
        )
        checkpoint = pretrain_artifacts["checkpoint"]
        metrics = {f"pretrain/{k}": v for k, v in pretrain_metrics.items() if k.startswith("test/")}
        runs.append(pre_dir.path)
        for k in range(2, copies + 1):  # the same training with another init_seed, each
            console.rule(f"[{k}/{steps}] pretrain copy {k} of {copies} on {'+'.join(sources)}")
            copy_dir = root.stage(f"{PRETRAIN}_{k}")
            again = stage_config(
                cfg, "train", sources, copy_dir.path, finetune=None, integrate=None
            )
            again.data.shots_per_class = None
            again.init_seed = cfg.seed + COPY_SEED_STEP * (k - 1)
            _, copy_artifacts = pretrain_once(
                again, copy_dir, cfg.pipeline.reuse_pretrain, console, resume
            )
            copy_checkpoints.append(copy_artifacts["checkpoint"])
            runs.append(copy_dir.path)
    else:  # the from-scratch baseline: same budget, random initialization
        finetune_conf = OmegaConf.merge(
            finetune_conf, {"head_init": "random", "source_language": None}
        )
    step = int(cfg.pipeline.pretrain) * copies
    for code in targets:
        step += 1
        console.rule(f"[{step}/{steps}] fine-tune on {code} ({cfg.finetune.name})")
        run_dir = root.finetune(code).path
        head = finetune_conf
        if cfg.pipeline.pretrain and not finetune_conf.source_language:
            # The target's own pretrained head when it was a source, else the first source's.
            head = OmegaConf.merge(
                finetune_conf, {"source_language": code if code in sources else sources[0]}
            )
        sub = stage_config(
            cfg,
            "finetune",
            [code],
            run_dir,
            base=checkpoint,
            finetune=head,
            integrate=None,
        )
        tuned_metrics, tuned_artifacts = run_or_resume(finetune, sub, resume)
        tuned[code] = tuned_artifacts["checkpoint"]
        metrics.update(
            {f"finetune_{code}/{k}": v for k, v in tuned_metrics.items() if k.startswith("test/")}
        )
        runs.append(run_dir)

    artifacts = {}
    if method != "joint":  # the DDP ranks' part ends with the last training
        end_distributed()
        if not is_main_process():
            return metrics, artifacts
    if method:
        console.rule(f"[{step + 1}/{steps}] integrate {', '.join(bundled)} ({method})")
        sub = stage_config(
            cfg, "integrate", bundled, root.stage(INTEGRATE).path, base=checkpoint, models=tuned
        )
        if copy_checkpoints:
            with open_dict(sub):
                sub.integrate.copies = [str(c) for c in copy_checkpoints]
        integrated, integrate_artifacts = run_or_resume(integrate, sub, resume)
        artifacts["bundle"] = integrate_artifacts["bundle"]
        console.rule(f"[{steps}/{steps}] evaluate the bundle")
        sub = stage_config(
            cfg,
            "eval",
            bundled,
            root.stage(EVAL).path,
            bundle=artifacts["bundle"],
            page_size=cfg.pipeline.page_size,
        )
        end_distributed()
        if not is_main_process():
            return metrics, artifacts
        evaluated, _ = run_or_resume(evaluate, sub, resume)
        for stage, values in (("integrate", integrated), ("eval", evaluated)):
            metrics.update({f"{stage}/{k}": v for k, v in values.items() if k.startswith("test/")})
        runs += [root.stage(INTEGRATE).path, root.stage(EVAL).path]

    report(report_config(root.path, runs))  # ends with the pipeline's summary and the report's path
    page = root.report_dir / "report.html"
    artifacts.update({"report": str(page), "runs": [str(r) for r in runs]})
    return metrics, artifacts
