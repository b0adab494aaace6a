"""Structured configs: the shape of every group, registered so a typo fails at composition.

Each YAML in `conf/` is merged onto these dataclasses; an unknown key or a wrongly typed value
is refused by OmegaConf before anything runs. Value ranges are checked in `compose.RULES`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from xlvision.config.finetune import FinetuneConf
from xlvision.config.integrate import IntegrateConf


@dataclass
class LanguageConf:
    code: str = MISSING
    name: str = MISSING
    script: str = MISSING
    # Languages that write some digits identically share a group (default: their own code).
    group: str | None = None
    codepoints: list[str] = MISSING
    class_names: list[str] = MISSING
    train_fonts: list[str] = MISSING
    test_fonts: list[str] = MISSING
    extra_glyphs: dict[int, list[str]] = field(default_factory=dict)


@dataclass
class AugmentConf:
    rotation: float = 12.0
    shear: float = 0.25
    scale: list[float] = field(default_factory=lambda: [0.75, 1.1])
    aspect: float = 0.15
    translation: float = 1.5
    stroke: list[float] = field(default_factory=lambda: [-1.0, 2.0])
    elastic_alpha: float = 1.5
    elastic_grid: int = 4
    blur: list[float] = field(default_factory=lambda: [0.0, 0.8])
    noise: float = 0.05
    monoline: float = 0.5
    pen: list[float] = field(default_factory=lambda: [1.5, 4.0])
    binarize: float = 0.3


@dataclass
class DataConf:
    kind: str = "glyphs"
    batch_size: int = 128
    num_workers: int = 0
    shots_per_class: int | None = None
    # A k-shot training set is drawn repeatedly so an epoch has at least this many per language.
    min_train_samples: int = 1000
    train_per_class: int = 2000
    val_per_class: int = 200
    test_per_class: int = 500
    # At most this many images of each digit in every split of a real set (null: all of them).
    real_per_class: int | None = None
    cache_dir: str | None = None
    augment: AugmentConf = field(default_factory=AugmentConf)
    # Reader-specific settings of real datasets (validated by the reader).
    source: Any = None
    # data=mix: language → its sources ({preset, weight} or {name, source, weight}); every
    # language also draws its glyphs at glyph_weight unless its list names `glyphs`.
    sources: Any = None
    glyph_weight: float = 1.0
    # data=mix: languages whose real sources are only tested, never trained on (weight 0):
    # a leave-real-out fold, scored as `test/mean_left_out/*` beside `mean_trained_real`.
    leave_real_out: list[str] = field(default_factory=list)
    # Training draws per epoch of a weighted mix (null: the total size of its sources).
    epoch_size: int | None = None
    # Real training examples drawn afresh with the glyph augmentation each time (k shots).
    augment_real: bool = False
    pin_memory: bool = False  # page-locked batches: faster copies to a GPU


@dataclass
class ModelConf:
    name: str = "net"
    in_channels: int = 1
    image_size: int = 28
    channels: list[int] = field(default_factory=lambda: [64, 64, 128])
    hidden: int = 512
    dropout: float = 0.25
    batch_norm: bool = True
    small_stem: bool = True
    weights: str | None = None
    pen: str = "as_drawn"  # as_drawn, or one: every image redrawn with one pen (models/pen.py)


@dataclass
class OptimizerConf:
    """The union of the shipped optimizers' arguments; unset ones are not passed on."""

    _target_: str = "torch.optim.Adam"
    _partial_: bool = True
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float | None = None
    nesterov: bool | None = None
    betas: list[float] | None = None
    eps: float | None = None
    # One kernel for every parameter's update (Adam, AdamW, SGD on CPU and CUDA).
    fused: bool | None = None


@dataclass
class SchedulerConf:
    _target_: str | None = None
    _partial_: bool = True
    T_max: int | None = None
    eta_min: float | None = None
    max_lr: float | None = None
    pct_start: float | None = None
    step_size: int | None = None
    gamma: float | None = None


@dataclass
class DeviceConf:
    accelerator: str = "cpu"
    devices: Any = 1
    strategy: str = "auto"
    # auto: bf16-mixed where the hardware computes bf16 (AVX-512 BF16/AMX CPU, CUDA), else 32-true
    precision: str = "32-true"
    # Batch-norm statistics over the global batch in DDP (CUDA only in PyTorch).
    sync_batchnorm: bool = False
    # Conv weights in NHWC while training: oneDNN's fast path on CPU.
    channels_last: bool = False
    # torch.compile the backbone (falls back to eager, in one line, where it cannot run).
    compile: bool = False
    # Intra-op threads (null: PyTorch's default, one per physical core).
    threads: int | None = None


@dataclass
class PathsConf:
    root_dir: str = "."
    data_dir: str = "../shared/data"
    cache_dir: str = "outputs/.cache"
    log_dir: str = "outputs"
    output_dir: str = "outputs"


@dataclass
class TrainerConf:
    max_epochs: int = 4
    # As in Lightning: a float is a fraction of the batches (1.0: all), an int a batch count
    # (1: one batch). Typed Any so an int stays an int.
    limit_train_batches: Any = 1.0
    limit_val_batches: Any = 1.0
    limit_test_batches: Any = 1.0
    log_every_n_steps: int = 20
    gradient_clip_val: float = 0.0
    deterministic: bool = False
    enable_progress_bar: bool = True


@dataclass
class ObjectiveConf:
    """Loss weights of the heads trained beside every language's own (0: no such head)."""

    shared_digits: float = 0.0
    script_id: float = 0.0
    # The script-ID loss of a real (handwritten) sample relative to a rendered one: 0 learns
    # the script from glyphs only, so a handwriting style cannot stand in for a script.
    script_id_real: float = 1.0
    # The prior the script-ID logits are adjusted for: `pooled` (every draw's) or `per_domain`
    # (a rendered sample's among the rendered draws, a real one's among the real draws).
    script_id_prior: str = "pooled"
    # λ of a rendered-vs-real discriminator trained through a reversed gradient on the
    # backbone's features (0: none): features that cannot tell handwriting from glyphs.
    domain_adversarial: float = 0.0
    # λ of a loss that pulls every sample's features to the running mean of its own (language,
    # digit)'s glyph features (0: none): handwriting mapped onto glyphs, for every script.
    glyph_anchor: float = 0.0
    # The share of training batches whose samples swap feature style (channel statistics of
    # the backbone's first blocks) with the other domain (0: none): style is not script.
    mixstyle: float = 0.0


@dataclass
class PipelineConf:
    sources: list[str] = field(default_factory=lambda: ["en"])
    targets: list[str] = field(default_factory=lambda: ["kn", "ar", "hi"])
    # false: skip pretraining and fine-tune from random weights (the from-scratch baseline)
    pretrain: bool = True
    # Reuse a finished pretraining with the identical config (cached under paths.cache_dir).
    reuse_pretrain: bool = True
    # The bundle's evaluation also decides the script once per page of this many test digits
    # of one script (`test/<lang>/page_*`); 0: per digit only.
    page_size: int = 5
    # integrate=unified: the base model trained this many times, each with its own init_seed
    # (seed + 1000·k; the data and its splits stay those of `seed`), bundled as one model that
    # averages their probabilities (integrate.copies). Each copy costs a training and a read.
    copies: int = 1


@dataclass
class Config:
    stage: str = "train"
    seed: int = 0
    # The seed of the model's initialization and of the training draws' order and
    # augmentation; null: `seed`. The data and its splits always follow `seed`, so two runs
    # that differ only here are two trainings on the same data (pipeline.copies).
    init_seed: int | None = None
    base: str | None = None
    # A run dir to continue from its last.ckpt (`xlv-train resume=<dir>`, nothing else given).
    resume: str | None = None
    monitor: str = "val/mean/acc"
    trainer: TrainerConf = field(default_factory=TrainerConf)
    objective: ObjectiveConf = field(default_factory=ObjectiveConf)
    language: dict[str, LanguageConf] = field(default_factory=dict)
    data: DataConf = field(default_factory=DataConf)
    model: ModelConf = field(default_factory=ModelConf)
    optimizer: OptimizerConf = field(default_factory=OptimizerConf)
    scheduler: SchedulerConf = field(default_factory=SchedulerConf)
    device: DeviceConf = field(default_factory=DeviceConf)
    logger: dict[str, Any] = field(default_factory=dict)
    paths: PathsConf = field(default_factory=PathsConf)
    finetune: FinetuneConf | None = None
    integrate: IntegrateConf | None = None
    # xlv-integrate's inputs: fine-tuned checkpoints by language, or a pipeline's output dir.
    models: Any = None
    run: str | None = None
    pipeline: PipelineConf | None = None


@dataclass
class PredictConfig:
    """xlv-predict: no `language` lets the bundle's router decide each image's language."""

    bundle: str = MISSING
    input: str = MISSING
    language: dict[str, LanguageConf] = field(default_factory=dict)
    display: list[str] = field(default_factory=lambda: ["en"])
    one_script: str | None = None
    # auto: the bundle's thresholds (none if it has none); none; or one probability for both.
    reject: Any = "auto"
    output: str | None = None
    batch_size: int = 256
    device: DeviceConf = field(default_factory=DeviceConf)


@dataclass
class AdaptConf:
    """Test-time adaptation on unlabeled scans of one script (`bundle.adapt`)."""

    # none | bn (batch-norm statistics) | prior (statistics, then every digit given its share
    # of the readings) | self_train (statistics, then training on confident readings)
    method: str = "prior"
    # xlv-eval: the script of each language's scans is the one evaluated (given), or the one
    # the router names for all of them at once (pooled). xlv-adapt: `language=` or pooled.
    script: str = "given"
    epochs: int = 2
    threshold: float = 0.9  # a reading is kept for self-training at this probability or above
    lr: float = 1e-4
    batch_size: int = 128
    # Share of the scans held out of self-training to judge it (the guard).
    holdout: float = 0.2
    # Self-training draws augmented copies (the glyph ranges of conf/data/glyphs.yaml).
    augment: bool = True
    # xlv-eval: at most this many of a language's training images are its unlabeled scans.
    max_images: int = 5000
    # First grow a thin pen's strokes (3×3 maximum filter) while the script's head reads the
    # scans more surely (no label); the adapted bundle keeps them grown.
    stroke: bool = True
    # With a router: undo any step after which it names the scans' script (or a group mate)
    # for fewer of them than the bundle as it was, so the reading without the script is not
    # traded for the one with it.
    routing: bool = True


@dataclass
class AdaptConfig:
    """xlv-adapt: no `language` lets the router name the scans' one script."""

    bundle: str = MISSING
    input: str = MISSING
    output: str = MISSING
    overwrite: bool = False
    seed: int = 0
    language: dict[str, LanguageConf] = field(default_factory=dict)
    adapt: AdaptConf = field(default_factory=AdaptConf)
    device: DeviceConf = field(default_factory=DeviceConf)


@dataclass
class EvalConfig:
    """xlv-eval: no `language` evaluates every language of the bundle."""

    stage: str = "eval"
    seed: int = 0
    bundle: str | None = None
    checkpoint: str | None = None
    page_size: int = 5
    # Adapt a copy of the bundle to each language's unlabeled training images before its test.
    adapt: AdaptConf | None = None
    reject: Any = "auto"
    # Languages of conf/language the bundle does not hold: does its router tell them apart?
    outside: list[str] = field(default_factory=list)
    language: dict[str, LanguageConf] = field(default_factory=dict)
    data: DataConf = field(default_factory=DataConf)
    device: DeviceConf = field(default_factory=DeviceConf)
    paths: PathsConf = field(default_factory=PathsConf)


@dataclass
class ExportConfig:
    """xlv-export: a bundle as one ONNX or TorchScript file, or a web page that runs it."""

    bundle: str = MISSING
    format: str = "onnx"
    output: str | None = None
    overwrite: bool = False
    runtime: str | None = None
    check: int = 200


def register_schemas() -> None:
    """Make the schemas available to the defaults lists of the primary configs."""
    store = ConfigStore.instance()
    store.store(name="xlv_schema", node=Config)
    store.store(name="xlv_predict_schema", node=PredictConfig)
    store.store(name="xlv_eval_schema", node=EvalConfig)
    store.store(name="xlv_export_schema", node=ExportConfig)
    store.store(name="xlv_adapt_schema", node=AdaptConfig)
