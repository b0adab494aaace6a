"""What a metric is called in a caption: `test/{lang}/acc` → "Test accuracy, script given".

A key it cannot read (a stage or metric it does not know) is its own name; the raw key is
printed beside every name anyway.
"""

from __future__ import annotations

import fnmatch

from xlvision.languages.registry import available_languages, load_language
from xlvision.report.options import LANG_PLACEHOLDER

METRIC_NAMES = {
    "acc": "accuracy, script given",
    "routed_acc": "accuracy, script not given",
    "acc_answered": "accuracy of the digits answered, script not given",
    "normalized_acc": "accuracy relative to the language's own model",
    "lid_acc": "script named, per digit",
    "lid_group_acc": "script group named, per digit",
    "page_routed_acc": "accuracy, script not given, named once per page",
    "page_lid_acc": "script named, per page",
    "page_lid_group_acc": "script group named, per page",
    "f1": "macro F1",
    "recall": "macro recall",
    "ece": "calibration error (ECE), script not given",
    "ece_given": "calibration error (ECE), script given",
    "unknown_rate": "share answered unknown (?)",
    "auroc": "AUROC of the familiarity, own test images against other languages'",
    "auroc_script_prob": "AUROC of the script probability, own test images against others'",
    "auroc_page": "AUROC of the familiarity per page, own test images against others'",
    "loss": "loss",
    "adapt_bn": "share of adaptations that kept the batch-norm step",
    "adapt_self_train": "share of adaptations that kept self-training",
    "adapt_kept": "share of the scans confident enough to self-train on",
    "adapt_lid_acc": "script pooled over the scans named right",
    "adapt_agreement": "agreement of the adapted copy on held-out scans",
    "adapt_images": "scans adapted to",
    "adapt_routing": "share of the scans routed to their script's group after adapting",
    "adapt_routing_refused": "steps undone because fewer scans were routed to their script",
}
"""The last part of `stage/language/metric`."""

RUN_METRICS = {
    "train_time_s": "training time (s)",
    "trainable_params": "trainable parameters",
}
"""Metrics of a whole run, without stage or language."""

STAGES = {
    "test": "test",
    "val": "validation",
    "zeroshot": "zero-shot test",
    "gain": "gain over zero-shot in",
}

LANGUAGE_MEANS = {
    "mean": "mean over languages",
    "mean_real": "mean over the real test sets",
    "outside": "languages outside the bundle",
}


def metric_title(metric: str) -> str:
    """A readable name for `metric`, or `metric` itself when it is not one this knows."""
    if metric in RUN_METRICS:
        return _capitalised(RUN_METRICS[metric])
    parts = metric.split("/")
    if len(parts) != 3 or parts[0] not in STAGES:
        return metric
    stage, language, name = parts
    what = _metric_name(name)
    if what is None:
        return metric
    text = f"{STAGES[stage]} {what}"
    if language == LANG_PLACEHOLDER:
        return _capitalised(text)
    if language in LANGUAGE_MEANS:
        return _capitalised(f"{text}, {LANGUAGE_MEANS[language]}")
    if language.startswith("mean_"):
        return _capitalised(f"{text}, mean over {language.removeprefix('mean_')}")
    return f"{language_name(language)} {text}"


def language_name(code: str) -> str:
    """`kn` → `Kannada`; a code xlvision does not know stays as it is."""
    return load_language(code).name if code in available_languages() else code


def _metric_name(name: str) -> str | None:
    if name in METRIC_NAMES:
        return METRIC_NAMES[name]
    if name.startswith("answer_") and name.endswith("_acc"):
        return f"accuracy, script not given, answer rule {name[7:-4]}"
    return None


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


COUNTS = ("*params*", "*_count")
"""fnmatch patterns of metrics that count things (parameters): printed as whole numbers."""


def is_count(metric: str) -> bool:
    """Whether `metric` counts things (`trainable_params`), so its cells are whole numbers."""
    return any(fnmatch.fnmatchcase(metric, pattern) for pattern in COUNTS)
