"""What xlv-integrate starts from: the base and the fine-tuned checkpoints, from the command
line or found in a pipeline's output dir, and each fine-tuned model's own test accuracy."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from xlvision.config.errors import ConfigError
from xlvision.models.checkpoint import CheckpointError, load_classifier
from xlvision.models.classifier import Classifier, language_codes
from xlvision.rundir import PRETRAIN, RunDir


@dataclass
class Sources:
    """The base model (None for a from-scratch pipeline) and one fine-tuned model per language."""

    base: Classifier | None
    base_spec: dict | None
    tuned: dict[str, Classifier]
    specs: dict[str, dict]
    checkpoints: dict[str, str] = field(default_factory=dict)
    copies: list[Classifier] = field(default_factory=list)  # other trainings of the base

    @property
    def codes(self) -> list[str]:
        return list(self.tuned)

    def require_base(self, method: str) -> Classifier:
        if self.base is None:
            raise ConfigError("base", None, f"a base checkpoint: integrate={method} starts from it")
        return self.base


def find_run_checkpoints(run_dir: str | Path) -> tuple[Path | None, dict[str, Path]]:
    """(base, {code: fine-tuned}) in an `xlv-pipeline` output dir: each stage's recorded
    checkpoint, else its `best.ckpt` (pretraining) or `final.ckpt` (fine-tuning)."""
    root = RunDir(run_dir)
    if not root.path.is_dir():
        raise FileNotFoundError(f"{root.path}: no such pipeline output dir")
    pretrain = root.stage(PRETRAIN)
    base = pretrain.recorded_checkpoint(pretrain.best_checkpoint)
    tuned = {}
    for code, stage_dir in root.finetunes().items():
        checkpoint = stage_dir.recorded_checkpoint(stage_dir.final_checkpoint)
        if checkpoint is not None:
            tuned[code] = checkpoint
    if not tuned:
        raise FileNotFoundError(f"{root.path}: no finetune_<language>/checkpoints/final.ckpt in it")
    return base, tuned


def checkpoint_paths(cfg: DictConfig) -> tuple[Path | None, dict[str, Path]]:
    """`base=` and `models=` as given; a `run=` dir fills in whichever of them is not."""
    base = Path(cfg.base) if cfg.get("base") else None
    given = cfg.get("models") or {}
    if not isinstance(given, Mapping) or not all(isinstance(p, str) for p in given.values()):
        raise ConfigError("models", given, "fine-tuned checkpoints as models=[kn=<ckpt>,…]")
    models = {str(code): Path(path) for code, path in given.items()}
    unified = (cfg.get("integrate") or {}).get("name") == "unified"
    if cfg.get("run") and unified and not base:
        pretrain = RunDir(cfg.run).stage(PRETRAIN)
        base = pretrain.recorded_checkpoint(pretrain.best_checkpoint)
    if cfg.get("run") and not unified:
        run_base, run_models = find_run_checkpoints(cfg.run)
        base = base or run_base
        models = models or run_models
    if not models and unified and base is not None:
        return base, {}
    if not models:
        raise ConfigError(
            "models", {}, "fine-tuned checkpoints as models=[kn=<ckpt>,…], or run=<pipeline dir>"
        )
    return base, models


def load_sources(cfg: DictConfig) -> Sources:
    """Load every checkpoint; each fine-tuned one must have a head for its language."""
    base_path, paths = checkpoint_paths(cfg)
    base, base_spec = None, None
    if base_path is not None:
        base, base_spec, _ = load_classifier(base_path)
    tuned, specs = {}, {}
    if not paths and base is not None:  # integrate=unified: the base reads every language
        paths = dict.fromkeys(language_codes(base.heads), base_path)
    for code, path in paths.items():
        model, spec, classes = load_classifier(path)
        if code not in classes:
            raise CheckpointError(f"{path}: no head for {code!r} (heads: {', '.join(classes)})")
        tuned[code], specs[code] = model, spec
    checkpoints = {code: str(path) for code, path in paths.items()}
    if base_path is not None:
        checkpoints["base"] = str(base_path)
    copies = []
    for k, given in enumerate((cfg.get("integrate") or {}).get("copies") or [], start=2):
        if base is None:
            raise ConfigError("base", None, "a base checkpoint: integrate.copies are copies of it")
        path = copy_checkpoint(given)
        model, spec, _ = load_classifier(path)
        same_training(base_path, path, f"integrate.copies[{k - 2}]")
        if spec != base_spec or list(model.heads) != list(base.heads):
            raise ConfigError(
                f"integrate.copies[{k - 2}]", given, "a training of the base's model and heads"
            )
        copies.append(model)
        checkpoints[f"copy_{k}"] = str(path)
    return Sources(base, base_spec, tuned, specs, checkpoints, copies)


def copy_checkpoint(given: str) -> Path:
    """A checkpoint as given, or the best checkpoint of a pretrain stage or pipeline dir."""
    path = Path(given).expanduser()
    if path.is_dir():
        stage = (
            RunDir(path) if RunDir(path).best_checkpoint.is_file() else RunDir(path).stage(PRETRAIN)
        )
        found = stage.recorded_checkpoint(stage.best_checkpoint)
        if found is None or not Path(found).is_file():
            raise ConfigError(
                "integrate.copies", given, "a checkpoint, or a run dir that holds one"
            )
        return Path(found)
    if not path.is_file():
        raise ConfigError("integrate.copies", given, "a checkpoint, or a run dir that holds one")
    return path


def same_training(base: Path, other: Path, key: str) -> None:
    """Refuse a copy whose run had another seed or other data than the base's: its splits
    would differ, so it could have trained on the base's validation or test images."""
    configs = [RunDir.of_checkpoint(p).config_file for p in (base, other)]
    if not all(c.is_file() for c in configs):
        return  # checkpoints outside a run dir: nothing recorded to compare
    first, second = (OmegaConf.load(c) for c in configs)
    for name in ("seed", "data", "language", "objective"):
        if OmegaConf.select(first, name) != OmegaConf.select(second, name):
            raise ConfigError(
                key,
                str(other),
                f"a training with the base's {name} (only init_seed may differ): "
                f"{RunDir.of_checkpoint(other).config_file} differs",
            )


def recorded_accuracy(checkpoint: str | Path, code: str) -> dict | None:
    """`{"acc", "source"}` from the fine-tuning run that wrote `checkpoint`, if it recorded it."""
    run_dir = RunDir.of_checkpoint(checkpoint)
    record = run_dir.record()
    acc = (record.get("metrics") or {}).get(f"test/{code}/acc")
    if record.get("status") != "completed" or acc is None:
        return None
    return {"acc": float(acc), "source": str(run_dir.metrics_file)}
