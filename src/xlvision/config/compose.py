"""Composing the shipped configs and checking them, with errors that fit on one line."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import HydraException
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from xlvision.config.checks import REJECT_ALLOWED, is_reject_value
from xlvision.config.errors import ConfigError
from xlvision.config.resolvers import register_resolvers
from xlvision.config.schema import (
    AdaptConfig,
    Config,
    EvalConfig,
    ExportConfig,
    PredictConfig,
    register_schemas,
)
from xlvision.paths import config_dir

# The schema each primary config is merged onto; an appended `+key` must be one of its keys.
SCHEMAS = {
    "config": Config,
    "pipeline": Config,
    "predict": PredictConfig,
    "eval": EvalConfig,
    "export": ExportConfig,
    "adapt": AdaptConfig,
}


def group_options(group: str, conf: Path | None = None) -> list[str]:
    """Option names of a config group, e.g. `language` → ['ar', 'bn', …]."""
    folder = (conf or config_dir()) / group
    return sorted(p.stem for p in folder.glob("*.yaml"))


def check_group_choice(group: str, values: Sequence[str], conf: Path | None = None) -> None:
    """Refuse `group=value` when no `conf/<group>/<value>.yaml` exists."""
    options = group_options(group, conf)
    for value in values:
        if value not in options and value != "null":
            raise ConfigError(group, value, f"one of {', '.join(options)}")


def _positive(v: Any) -> bool:
    return isinstance(v, int | float) and v > 0 and math.isfinite(v)


def _non_negative(v: Any) -> bool:
    return isinstance(v, int | float) and v >= 0 and math.isfinite(v)


def _positive_or_null(v: Any) -> bool:
    return v is None or (isinstance(v, int) and v > 0)


def _probability(v: Any) -> bool:
    return isinstance(v, int | float) and 0 <= v <= 1


def _range(low: float) -> Callable[[Any], bool]:
    """A [low, high] pair of finite numbers, each >= `low`, with low <= high."""

    def check(v: Any) -> bool:
        if not isinstance(v, list | tuple | ListConfig) or len(v) != 2:
            return False
        numbers = all(isinstance(x, int | float) and math.isfinite(x) for x in v)
        return numbers and low <= v[0] <= v[1]

    return check


def _fraction_or_count(v: Any) -> bool:
    """A float in (0, 1] (a fraction of the batches) or an int >= 1 (a batch count)."""
    if isinstance(v, bool):
        return False
    if isinstance(v, int):
        return v >= 1
    return isinstance(v, float) and 0 < v <= 1.0


ADAPT_METHODS = ("none", "bn", "prior", "self_train")

# (key, check, what is allowed). Keys absent from a config are skipped.
RULES: list[tuple[str, Callable[[Any], bool], str]] = [
    ("seed", lambda v: isinstance(v, int) and v >= 0, "an integer >= 0"),
    ("optimizer.lr", _positive, "a number > 0"),
    ("optimizer.weight_decay", _non_negative, "a number >= 0"),
    ("optimizer.momentum", lambda v: v is None or 0 <= v < 1, "a number in [0, 1)"),
    ("data.batch_size", lambda v: isinstance(v, int) and v > 0, "an integer > 0"),
    ("batch_size", lambda v: isinstance(v, int) and v > 0, "an integer > 0"),
    ("reject", is_reject_value, REJECT_ALLOWED),
    (
        "outside",
        lambda v: isinstance(v, list | tuple | ListConfig) and all(isinstance(c, str) for c in v),
        "a list of language codes of conf/language, e.g. [gu,th]",
    ),
    ("data.num_workers", lambda v: isinstance(v, int) and v >= 0, "an integer >= 0"),
    ("data.shots_per_class", _positive_or_null, "null (all data) or an integer > 0"),
    ("data.min_train_samples", lambda v: isinstance(v, int) and v >= 0, "an integer >= 0"),
    ("data.train_per_class", lambda v: isinstance(v, int) and v > 0, "an integer > 0"),
    ("data.val_per_class", lambda v: isinstance(v, int) and v > 0, "an integer > 0"),
    ("data.test_per_class", lambda v: isinstance(v, int) and v > 0, "an integer > 0"),
    ("data.real_per_class", _positive_or_null, "null (every real image) or an integer > 0"),
    ("data.kind", lambda v: v in {"glyphs", "real", "mix"}, "glyphs, real or mix"),
    ("data.glyph_weight", _non_negative, "a sampling weight >= 0"),
    ("data.epoch_size", _positive_or_null, "null (the sources' total size) or an integer > 0"),
    ("data.augment.noise", _non_negative, "a number >= 0"),
    ("data.augment.elastic_grid", lambda v: isinstance(v, int) and v >= 2, "an integer >= 2"),
    ("data.augment.scale", _range(1e-3), "[low, high] with 0 < low <= high"),
    ("data.augment.stroke", _range(-math.inf), "[low, high] with low <= high"),
    ("data.augment.blur", _range(0.0), "[low, high] with 0 <= low <= high"),
    ("data.augment.pen", _range(0.0), "[low, high] with 0 <= low <= high"),
    ("data.augment.monoline", _probability, "a probability in [0, 1]"),
    ("data.augment.binarize", _probability, "a probability in [0, 1]"),
    ("model.in_channels", lambda v: isinstance(v, int) and v > 0, "an integer > 0"),
    ("model.image_size", lambda v: isinstance(v, int) and v >= 8, "an integer >= 8"),
    ("model.dropout", lambda v: 0 <= v < 1, "a number in [0, 1)"),
    ("objective.shared_digits", _non_negative, "a loss weight >= 0"),
    ("objective.script_id", _non_negative, "a loss weight >= 0"),
    ("objective.script_id_real", _probability, "a weight in [0, 1] of a real sample's script loss"),
    ("objective.script_id_prior", lambda v: v in {"pooled", "per_domain"}, "pooled or per_domain"),
    ("objective.domain_adversarial", _non_negative, "a loss weight >= 0"),
    ("objective.glyph_anchor", _non_negative, "a loss weight >= 0"),
    ("objective.mixstyle", _probability, "a probability in [0, 1]"),
    ("trainer.max_epochs", lambda v: isinstance(v, int) and v > 0, "an integer > 0"),
    (
        "trainer.limit_train_batches",
        _fraction_or_count,
        "a fraction in (0.0, 1.0] or a batch count >= 1 (an int)",
    ),
    (
        "trainer.limit_val_batches",
        _fraction_or_count,
        "a fraction in (0.0, 1.0] or a batch count >= 1 (an int)",
    ),
    (
        "trainer.limit_test_batches",
        _fraction_or_count,
        "a fraction in (0.0, 1.0] or a batch count >= 1 (an int)",
    ),
    ("trainer.gradient_clip_val", _non_negative, "a number >= 0"),
    (
        "device.accelerator",
        lambda v: v in {"cpu", "gpu", "cuda", "mps", "auto"},
        "cpu, gpu, cuda, mps or auto",
    ),
    (
        "device.precision",
        lambda v: v in {"auto", "32-true", "32", "16-mixed", "bf16-mixed", "bf16-true", "64-true"},
        "auto, 32-true, 16-mixed, bf16-mixed, bf16-true or 64-true",
    ),
    ("adapt.method", lambda v: v in ADAPT_METHODS, ", ".join(ADAPT_METHODS)),
    ("adapt.script", lambda v: v in ("given", "pooled"), "given or pooled"),
    ("adapt.epochs", lambda v: isinstance(v, int) and v >= 0, "an integer >= 0"),
    ("adapt.threshold", _probability, "a probability in [0, 1]"),
    ("adapt.lr", _positive, "a number > 0"),
    ("adapt.batch_size", lambda v: isinstance(v, int) and v > 0, "an integer > 0"),
    ("adapt.holdout", lambda v: 0 < v < 1, "a share in (0, 1)"),
    ("adapt.max_images", lambda v: isinstance(v, int) and v > 0, "an integer > 0"),
    ("device.threads", _positive_or_null, "null (PyTorch's default) or an integer > 0"),
]


def validate_config(cfg: DictConfig) -> DictConfig:
    """Check value ranges and cross-key consistency; raise `ConfigError` on the first problem."""
    from xlvision.config.models import MODEL_NAMES, PENS

    for key, check, allowed in RULES:
        value = OmegaConf.select(cfg, key, default="__absent__", throw_on_missing=False)
        if value == "__absent__":
            continue
        if not check(value):
            raise ConfigError(key, value, allowed)
    for key in cfg.keys():
        if key != "hydra" and OmegaConf.is_missing(cfg, key):
            raise ConfigError(key, "???", f"a value is required: give {key}=…")
    if cfg.get("pipeline"):  # its languages, before anything is trained or written
        from xlvision.config.pipeline import check_pipeline_languages

        check_pipeline_languages(cfg)
    if cfg.get("stage") == "finetune" and "language" in cfg and len(cfg.language) > 1:
        raise ConfigError("language", list(cfg.language), "one target language per fine-tuning run")
    # With a bundle (xlv-predict, xlv-eval), no language means: let the bundle decide.
    if "language" in cfg and not cfg.language and "bundle" not in cfg:
        raise ConfigError("language", [], "at least one language")
    if cfg.get("finetune") is not None:
        from xlvision.config.finetune import validate_finetune

        validate_finetune(cfg.finetune)
    if cfg.get("integrate") is not None:
        from xlvision.config.integrate import validate_integrate

        validate_integrate(cfg.integrate)
    if "model" in cfg and cfg.model.name not in MODEL_NAMES:
        raise ConfigError("model.name", cfg.model.name, f"one of {', '.join(sorted(MODEL_NAMES))}")
    if "model" in cfg and cfg.model.get("pen", "as_drawn") not in PENS:
        raise ConfigError("model.pen", cfg.model.pen, " or ".join(PENS))
    if "model" in cfg and cfg.model.get("pen") == "one" and cfg.model.get("in_channels", 1) != 1:
        raise ConfigError("model.in_channels", cfg.model.in_channels, "1 with model.pen=one")
    return cfg


def _one_line(err: Exception) -> str:
    """OmegaConf and Hydra messages span lines (key, type, hints); keep what names the key."""
    if isinstance(err, OmegaConfBaseException) and getattr(err, "full_key", None):
        first = str(err).splitlines()[0]
        return f"{err.full_key}: {first}"
    cause = err.__cause__ or err.__context__
    if isinstance(cause, OmegaConfBaseException):
        return _one_line(cause)
    return " ".join(str(err).split())


def schema_has_key(schema: Any, dotted: str) -> bool:
    """Whether `dotted` names a key the structured schema declares, or one inside a field
    whose contents are free (a mapping such as `language` or `logger`, or an `Any`)."""
    node = OmegaConf.structured(schema)
    for part in dotted.split("."):
        if not isinstance(node, DictConfig) or OmegaConf.get_type(node) is dict:
            return True
        if part not in node:
            return False
        node = node._get_node(part)
        node = node if isinstance(node, DictConfig | ListConfig) else None
    return True


def check_appended_keys(overrides: Sequence[str], config_name: str, conf: Path) -> None:
    """`+key=value` adds a key Hydra would otherwise refuse; refuse one the schema lacks
    (`+ckpt_path=…` would run and be ignored). Groups (`+experiment=…`) and `++` pass."""
    schema = SCHEMAS.get(config_name)
    if schema is None:
        return
    for item in overrides:
        if not item.startswith("+") or item.startswith("++") or "=" not in item:
            continue
        key = item[1:].partition("=")[0].strip()
        if key.startswith("hydra.") or (conf / key.replace(".", "/")).is_dir():
            continue
        if not schema_has_key(schema, key):
            raise ConfigError(
                key.split("@")[0], item.partition("=")[2], "no such key in the config (a typo?)"
            )


def compose_config(
    overrides: Sequence[str] = (), config_name: str = "config", validate: bool = True
) -> DictConfig:
    """Compose a shipped primary config with overrides, the way the console scripts do.

    `hydra:` interpolations (the output dir) are resolvable because the Hydra node is kept.
    """
    register_resolvers()
    register_schemas()
    conf = config_dir()
    check_appended_keys(overrides, config_name, conf)
    for item in overrides:
        key, _, value = item.partition("=")
        key = key.lstrip("+~")
        # Hydra's own groups (hydra/launcher, hydra/sweeper) also hold its plugins' options.
        hydra_group = key.startswith("hydra/")
        if (conf / key).is_dir() and value and not value.startswith("${") and not hydra_group:
            check_group_choice(key, value.strip("[]").split(","), conf)
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
            cfg = compose(config_name, overrides=list(overrides), return_hydra_config=True)
    except (HydraException, OmegaConfBaseException) as err:
        GlobalHydra.instance().clear()
        moved = whole_mapping_error(overrides, config_name, err)
        raise moved or ConfigError("config", list(overrides), _one_line(err)) from err
    finally:
        GlobalHydra.instance().clear()
    return validate_config(cfg) if validate else cfg


def whole_mapping_error(
    overrides: Sequence[str], config_name: str, err: Exception
) -> ConfigError | None:
    """`data.source.arrays.images=x` where the preset leaves `data.source.arrays` to be given
    whole (`???`: npz's `arrays`, idx's and npy's `files`, which took one key at a time
    before): a `ConfigError` naming the form to write instead; None for any other error."""
    cause: BaseException | None = err
    while cause is not None and not getattr(cause, "full_key", None):
        cause = cause.__cause__ or cause.__context__
    if cause is None or "not in struct" not in str(cause):
        return None
    failed = str(cause.full_key)
    given = {o.partition("=")[0].lstrip("+"): o.partition("=")[2] for o in overrides if "=" in o}
    # The config the command line makes without its dotted keys: where the mapping is missing.
    kept = [o for o in overrides if "." not in o.partition("=")[0]]
    try:
        base = compose_config(kept, config_name, validate=False)
    except ConfigError:
        return None
    parts = failed.split(".")
    for end in range(len(parts) - 1, 0, -1):
        whole = ".".join(parts[:end])
        parent_key, _, last = whole.rpartition(".")
        parent = OmegaConf.select(base, parent_key, default=None) if parent_key else base
        if (
            isinstance(parent, DictConfig)
            and last in parent.keys()
            and OmegaConf.is_missing(parent, last)
        ):
            break
    else:
        return None
    inside = {k[len(whole) + 1 :]: v for k, v in given.items() if k.startswith(whole + ".")}
    key = next(k for k in given if k.startswith(whole + "."))
    return ConfigError(
        key,
        given[key],
        f"{whole} is one mapping now: write '{whole}={flow_mapping(inside)}' instead",
    )


def flow_mapping(dotted: dict[str, str]) -> str:
    """`{"images": "x", "train.labels": "y"}` → `{images: x, train: {labels: y}}`."""
    nested: dict[str, Any] = {}
    for key, value in dotted.items():
        *parents, last = key.split(".")
        node = nested
        for parent in parents:
            node = node.setdefault(parent, {})
        node[last] = value

    def show(node: Any) -> str:
        if isinstance(node, dict):
            return "{" + ", ".join(f"{k}: {show(v)}" for k, v in node.items()) + "}"
        return str(node)

    return show(nested)
