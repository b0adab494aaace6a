"""`finetune`: base model → target head → strategy → fit → test target and source languages."""

from __future__ import annotations

from pathlib import Path

import lightning as L
from omegaconf import DictConfig, OmegaConf

from xlvision.config.errors import ConfigError
from xlvision.data.datamodule import DigitDataModule, Unlabeled
from xlvision.finetune.heads import init_head
from xlvision.finetune.l2sp import l2sp_penalty, snapshot_backbone
from xlvision.finetune.lora import merge_lora
from xlvision.finetune.self_train import PseudoLabels
from xlvision.finetune.strategies import apply_strategy
from xlvision.languages import load_language
from xlvision.languages.registry import language_from_mapping
from xlvision.models.checkpoint import load_classifier, save_classifier
from xlvision.models.classifier import DIGIT_HEAD, language_codes
from xlvision.models.registry import build_classifier
from xlvision.rundir import RunDir
from xlvision.training.builders import (
    build_optimizer,
    build_scheduler,
    build_trainer,
    finish_loggers,
)
from xlvision.training.callbacks import FrozenBatchNorm
from xlvision.training.fit import fit_and_test, resume_point
from xlvision.training.module import DigitClassifierModule
from xlvision.training.tracking import log_model_artifact


def load_base(cfg: DictConfig):
    """The original model: a checkpoint (`base=`), or `cfg.model` itself (e.g. ImageNet weights)."""
    if cfg.base:
        return load_classifier(cfg.base)
    spec = OmegaConf.to_container(cfg.model, resolve=True)
    return build_classifier(spec, {}), spec, {}


def replay_sources(cfg: DictConfig, others: list[str], weight: float) -> DictConfig:
    """`cfg.data` (a mix) with the glyphs of `others` sharing `weight` of the draws."""
    if cfg.data.kind != "mix":
        raise ConfigError("finetune.replay", weight, "0 unless data=mix (replay draws glyphs)")
    data = OmegaConf.create(OmegaConf.to_container(cfg.data, resolve=True))
    sources = dict(data.sources or {})
    for code in others:
        sources.setdefault(code, [{"preset": "glyphs", "weight": weight / len(others)}])
    data.sources = sources
    return data


def finetune(cfg: DictConfig) -> tuple[dict, dict]:
    """Fine-tune the base model on one target language and measure what the source forgot."""
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    output_dir = Path(cfg.paths.output_dir)
    targets = [language_from_mapping(node) for node in cfg.language.values()]
    if len(targets) != 1:
        raise ConfigError(
            "language", [t.code for t in targets], "one target language per fine-tuning run"
        )
    (target,) = targets
    conf = cfg.finetune

    model, spec, base_classes = load_base(cfg)
    base_languages = language_codes(base_classes)
    # The target's own head if the base has one; else a shared digit head, which reads every
    # script the base knew (the best start for a new one); else the base's first language.
    if target.code in base_languages:
        default_source = target.code
    elif DIGIT_HEAD in base_classes:
        default_source = DIGIT_HEAD
    else:
        default_source = next(iter(base_languages), None)
    source = conf.source_language or default_source
    init_head(model, target.code, target.num_classes, conf.head_init, source)
    groups = apply_strategy(model, conf, target.code)  # lora: adds the adapters here
    reference = snapshot_backbone(model) if conf.name == "l2sp" else None
    regularizer = (
        (lambda m: l2sp_penalty(m, reference, conf.l2sp_alpha)) if reference is not None else None
    )

    # The base's other languages: replayed (their glyphs trained on), or only tested after
    # tuning to measure forgetting (glyph data only).
    others = [c for c in base_languages if c != target.code]
    data_conf, eval_only = cfg.data, ()
    if conf.replay > 0:
        data_conf = replay_sources(cfg, others, conf.replay)
    else:
        others = others if cfg.data.kind == "glyphs" else []
        eval_only = tuple(others)
    languages = [target, *(load_language(c) for c in others)]
    unlabeled = None
    if conf.unlabeled:
        if data_conf.num_workers:
            raise ConfigError(
                "data.num_workers",
                data_conf.num_workers,
                "0 with finetune.unlabeled (the pool is relabelled in place every epoch)",
            )
        unlabeled = Unlabeled(target.code, conf.unlabeled, conf.unlabeled_weight)
    data = DigitDataModule(data_conf, languages, cfg.seed, cfg.paths.data_dir, eval_only, unlabeled)
    optimizer = (
        cfg.optimizer if conf.lr is None else OmegaConf.merge(cfg.optimizer, {"lr": conf.lr})
    )
    scheduler, interval = build_scheduler(cfg.scheduler)
    module = DigitClassifierModule(
        model,
        [lang.code for lang in languages],
        build_optimizer(optimizer),
        scheduler,
        interval,
        spec,
        param_groups=groups,
        regularizer=regularizer,
    )
    tags = [target.code, spec["name"], cfg.stage, conf.name]
    # The best epoch is the target's: the source languages are only measured, not optimized.
    resume = resume_point(cfg, output_dir)  # before the Trainer's CSV logger clears the log
    callbacks = [FrozenBatchNorm()]
    pseudo = None
    if unlabeled is not None:
        pseudo = PseudoLabels(data, target.code, conf.unlabeled_threshold)
        callbacks.append(pseudo)
    trainer = build_trainer(
        cfg,
        output_dir,
        tags=tags,
        callbacks=callbacks,
        monitor=f"val/{target.code}/acc",
        select_last=conf.select == "last",
    )

    zero_shot = {}
    if conf.head_init == "source" and base_classes:
        # Before any update the target head is the source head: zero-shot transfer.
        module.test_metrics.stage = "zeroshot"
        trainer.test(module, datamodule=data, verbose=False)
        module.test_metrics.stage = "test"
        zero_shot, module.final = dict(module.final), {}

    train_time, best = fit_and_test(trainer, module, data, resume)
    trainable = sum(p.numel() for g in groups for p in g["params"])
    if conf.name == "lora":
        merge_lora(model.backbone)
    final = RunDir(output_dir).final_checkpoint
    if trainer.is_global_zero:  # one writer per file under DDP
        save_classifier(final, model, spec)
    log_model_artifact(trainer.loggers, str(final), f"model-{target.code}")
    finish_loggers(trainer, {"trainable_params": trainable, "train_time_s": train_time})
    # What tuning changed on each language measured before it: the target's gain over its
    # zero-shot accuracy, and on the others what was kept (negative: forgotten).
    gains = {
        key.replace("zeroshot/", "gain/", 1): module.final[key.replace("zeroshot/", "test/", 1)]
        - value
        for key, value in zero_shot.items()
        if key.endswith("/acc") and key.replace("zeroshot/", "test/", 1) in module.final
    }
    metrics = {
        **zero_shot,
        **module.final,
        **gains,
        "train_time_s": round(train_time, 3),
        "trainable_params": trainable,
        "total_params": sum(p.numel() for p in model.parameters()),
        "epochs": trainer.current_epoch,
    }
    if pseudo is not None:  # the share of the pool drawn, first and last epoch
        metrics[f"unlabeled/{target.code}/pool"] = data.counts[target.code]["unlabeled"]
        metrics[f"unlabeled/{target.code}/kept_first"] = pseudo.kept[0]
        metrics[f"unlabeled/{target.code}/kept_last"] = pseudo.kept[-1]
    artifacts = {
        "checkpoint": str(final),
        "confusion": module.confusion,
        "data_counts": data.counts,
    }
    return metrics, artifacts
