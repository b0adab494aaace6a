"""`IntegrateConf`: the shape of the `integrate` config group, and the ranges of its values."""

from __future__ import annotations

import copy
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from omegaconf import open_dict

from xlvision.config.checks import Rule, check_rules, is_count, is_number
from xlvision.config.models import VIEW_SETS

METHODS = ("multihead", "average", "task_arithmetic", "ties", "joint", "routed", "unified")
ANSWER_CHOICES = ("auto", "routed", "shared", "marginal")
TEMPERATURE = ("constant", "by_familiarity")
"""A bundle's temperatures: `constant`, one per kind fitted on the validation data; or
`by_familiarity`, rising as an image's familiarity falls, fitted on the validation data as it
is and redrawn with the glyph augmentation at several strengths (xlvision.integrate.calibrate:
`fit_temperature_rise`). Needs a router."""
FAMILIARITY = ("class_means", "with_nearest")
"""What an image's familiarity compares its router features with: `class_means` the mean of
each (language, digit) of the validation images; `with_nearest` the same, averaged with the
cosine to the nearest single validation image in a principal subspace
(xlvision.integrate.calibrate: `class_prototypes`, `nearest_prototypes`)."""


@dataclass
class IntegrateConf:
    name: str = "routed"
    # task_arithmetic / ties: the scale of the merged task vector; null picks it on val data.
    lam: float | None = None
    lam_grid: list[float] = field(default_factory=lambda: [0.2, 0.4, 0.6, 0.8, 1.0])
    # ties: the percentage of each task vector's entries kept (largest magnitudes).
    k: float = 20.0
    # Training batches that re-estimate BatchNorm statistics after a weight-space merge.
    bn_batches: int = 10
    # Linear heads on frozen features: the language-ID head, multihead's probes.
    probe_epochs: int = 200  # cheap: the features are computed once
    probe_lr: float = 0.01
    # unified: how a digit is read without its script (auto: the best on validation data).
    answer: str = "auto"
    # reject=auto's thresholds: each rejects this share of the validation images on its own.
    reject_rate: float = 0.02
    # With a router: λ of the digit evidence added to its script logits (UnifiedModel.evidence);
    # auto picks it on validation data (script NLL), 0 leaves the router alone.
    evidence: Any = 0.0
    # With a router: what an image's familiarity compares its features with (reject=auto's
    # `familiar`): class_means, one mean per (language, digit) of the validation images, or
    # with_nearest, those averaged with the nearest single validation image, in a
    # familiarity_dims-wide principal subspace.
    familiarity: str = "class_means"
    familiarity_dims: int = 64
    # With a router: constant temperatures, or by_familiarity, each image's rising as its
    # familiarity falls below the validation images' median (fitted on them, also perturbed).
    temperature: str = "constant"
    # Every image read as the mean of its backbone features over fixed moved copies of it:
    # none, shifts (four one-pixel moves) or shifts_thick (those and a thickened copy).
    views: str = "none"
    # unified: other trainings of the base model (checkpoints, or the pipeline or pretrain dirs
    # that hold them), each the same recipe, seed and data with another `init_seed`; the bundle
    # reads each image with the base and every one of them and averages their probabilities.
    copies: list[str] = field(default_factory=list)


RULES: list[Rule] = [
    ("name", lambda v: v in METHODS, f"one of {', '.join(METHODS)}"),
    (
        "lam",
        lambda v: v is None or (is_number(v) and v >= 0),
        "null (picked on val) or a number >= 0",
    ),
    (
        "lam_grid",
        lambda v: len(v) > 0 and all(is_number(x) and x >= 0 for x in v),
        "a non-empty list of numbers >= 0",
    ),
    ("k", lambda v: is_number(v) and 0 < v <= 100, "a percentage in (0, 100]"),
    ("bn_batches", is_count, "an integer >= 1"),
    ("probe_epochs", is_count, "an integer >= 1"),
    ("probe_lr", lambda v: is_number(v) and v > 0, "a number > 0"),
    ("answer", lambda v: v in ANSWER_CHOICES, f"one of {', '.join(ANSWER_CHOICES)}"),
    ("reject_rate", lambda v: is_number(v) and 0 <= v < 1, "a share in [0, 1)"),
    (
        "evidence",
        lambda v: v == "auto" or (is_number(v) and v >= 0),
        "auto (picked on val) or a number >= 0 (0: the router alone)",
    ),
    ("familiarity", lambda v: v in FAMILIARITY, f"one of {', '.join(FAMILIARITY)}"),
    ("familiarity_dims", is_count, "an integer >= 1"),
    ("temperature", lambda v: v in TEMPERATURE, f"one of {', '.join(TEMPERATURE)}"),
    ("views", lambda v: v in VIEW_SETS, f"one of {', '.join(VIEW_SETS)}"),
    (
        "copies",
        lambda v: all(isinstance(p, str) and p for p in v),
        "a list of checkpoints or run dirs (other trainings of the base)",
    ),
]


def validate_integrate(conf: Any) -> Any:
    """Refuse a bad `integrate.*` value before any model is loaded. A key the config lacks (a
    run resumed from a config.yaml written before the key existed) takes its default."""
    missing = [f for f in fields(IntegrateConf) if f.name not in conf]
    if missing:
        conf = copy.deepcopy(conf)
        with open_dict(conf):
            for f in missing:
                default = f.default_factory() if f.default is MISSING else f.default
                conf[f.name] = default
    return check_rules(conf, RULES, "integrate")
