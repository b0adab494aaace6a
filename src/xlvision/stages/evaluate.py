"""`evaluate`: a bundle's accuracy per language, against the individual models' accuracy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf, open_dict
from torchmetrics.classification import MulticlassConfusionMatrix

from xlvision.bundle.calibration import (
    Thresholds,
    auroc,
    expected_calibration_error,
    reject_thresholds,
    unknown_reasons,
)
from xlvision.bundle.file import load_bundle
from xlvision.bundle.manifest import digit_preprocessing, model_input
from xlvision.bundle.model import ANSWERS, UnifiedModel
from xlvision.bundle.predict import inference_device
from xlvision.bundle.scripts import pages, pooled_script
from xlvision.config.errors import ConfigError
from xlvision.data.arrays import DigitArrays
from xlvision.data.datamodule import evaluation_sets
from xlvision.data.mix import parse_mix, trains_on_real
from xlvision.languages import available_languages, load_language
from xlvision.languages.registry import language_from_mapping
from xlvision.models.checkpoint import load_classifier
from xlvision.models.classifier import DIGIT_HEAD, language_codes
from xlvision.progress import tracked
from xlvision.stages.adapt import adapted_for_test
from xlvision.training.metrics import METRICS, classification_metrics

PAGE_METRICS = ("page_routed_acc", "page_lid_acc", "page_lid_group_acc")
"""The script decided once per page of `page_size` digits of one script, not per digit: the
digit accuracy read with the page's script, and that script named exactly / within its group."""

ADAPT_METRICS = ("adapt_bn", "adapt_self_train", "adapt_kept", "adapt_lid_acc")
"""With `adapt`: steps kept (1/0), share of scans kept in self-training's last epoch, and
whether the pooled script was the language's own."""

MEANS = (
    *METRICS,
    "normalized_acc",
    "routed_acc",
    "lid_acc",
    "lid_group_acc",
    *PAGE_METRICS,
    *ADAPT_METRICS,
    *(f"answer_{answer}_acc" for answer in ANSWERS),
    "ece",
    "ece_given",
    "unknown_rate",
    "acc_answered",
)
OUTSIDE = "outside"
"""The row of the languages a bundle does not hold: `test/outside/auroc`, `auroc_script_prob`,
`auroc_page`, `unknown_rate`."""


def eval_languages(cfg: DictConfig, bundle_languages: list[str]) -> list[str]:
    """`language=[…]` if given; else a real-data preset's own language; else all of the bundle's."""
    codes = list(cfg.language)
    declared = OmegaConf.select(cfg, "data.source.language", default=None, throw_on_missing=False)
    if not codes:
        codes = [declared] if declared else list(bundle_languages)
    for code in codes:
        if code not in bundle_languages:
            raise ConfigError(
                "language", code, f"one of the bundle's {', '.join(bundle_languages)}"
            )
    return codes


def score_language(
    model: UnifiedModel,
    x: torch.Tensor,
    labels: torch.Tensor,
    code: str,
    batch_size: int,
    groups: dict[str, str] | None = None,
    reject: Thresholds | None = None,
) -> tuple[dict[str, float], dict[str, list[list[int]]]]:
    """Oracle metrics (language given) and `ece_given`, the calibration error of that reading;
    with a router, the digit accuracy without the language (`routed_acc`, the bundle's own
    answer, and `answer_<rule>_acc` for every rule it can use), its calibration error (`ece`)
    and script identification, exact (`lid_acc`) and by script group (`lid_group_acc`).
    With `reject` thresholds, an answer without the language below them is unknown: it counts
    as wrong in `routed_acc` and `answer_<rule>_acc`; `unknown_rate` is the share of the
    bundle's answers that are unknown and `acc_answered` the accuracy of the others.
    The confusion counts come by reading: `given` (the language given) and, with a router,
    `routed` (the bundle's own answer without it; an unknown counts as its digit)."""
    device = next(model.parameters()).device
    num_classes = model.members[model.routes[code]].heads[code].out_features
    oracle = classification_metrics(num_classes)
    confusion = {"given": MulticlassConfusionMatrix(num_classes)}
    if model.router is not None:
        confusion["routed"] = MulticlassConfusionMatrix(num_classes)
    index = model.languages.index(code)
    groups = groups or {}
    same_group = torch.tensor(
        [groups.get(c, c) == groups.get(code, code) for c in model.languages], dtype=torch.bool
    )
    answers = usable_answers(model)
    correct = dict.fromkeys(["own", "lid", "lid_group", *answers], 0)
    given, routed = {"prob": [], "hit": []}, {"prob": [], "hit": [], "unknown": []}
    with torch.no_grad():
        for start in range(0, len(labels), batch_size):
            xb = x[start : start + batch_size].to(device)
            yb = labels[start : start + batch_size]
            read = {k: v.cpu() for k, v in model.predict(xb, language=code).items()}
            oracle.update(read["digit"], yb)
            confusion["given"].update(read["digit"], yb)
            given["prob"].append(read["digit_prob"])
            given["hit"].append(read["digit"] == yb)
            if model.router is None:
                continue
            for answer in answers:
                read = {k: v.cpu() for k, v in model.predict(xb, answer=answer).items()}
                hit = read["digit"] == yb
                reasons = unknown_reasons(
                    read["language_prob"], read["digit_prob"], reject, read.get("familiarity")
                )
                unknown = torch.from_numpy(reasons != "")
                correct[answer] += int((hit & ~unknown).sum())
                if answer == model.answer:
                    confusion["routed"].update(read["digit"], yb)
                    correct["own"] += int((hit & ~unknown).sum())
                    correct["lid"] += int((read["language"] == index).sum())
                    correct["lid_group"] += int(same_group[read["language"]].sum())
                    routed["prob"].append(read["digit_prob"])
                    routed["hit"].append(hit)
                    routed["unknown"].append(unknown)
    metrics = {name: float(value) for name, value in oracle.compute().items()}
    metrics["ece_given"] = expected_calibration_error(
        torch.cat(given["prob"]).numpy(), torch.cat(given["hit"]).numpy()
    )
    if model.router is not None:
        metrics["routed_acc"] = correct["own"] / len(labels)
        metrics["lid_acc"] = correct["lid"] / len(labels)
        metrics["lid_group_acc"] = correct["lid_group"] / len(labels)
        if len(answers) > 1:
            for answer in answers:
                metrics[f"answer_{answer}_acc"] = correct[answer] / len(labels)
        hit, unknown = torch.cat(routed["hit"]), torch.cat(routed["unknown"])
        metrics["ece"] = expected_calibration_error(torch.cat(routed["prob"]).numpy(), hit.numpy())
        if reject is not None:
            metrics["unknown_rate"] = float(unknown.float().mean())
            if (~unknown).any():  # undefined when every answer is unknown
                metrics["acc_answered"] = float(hit[~unknown].float().mean())
    return metrics, {name: m.compute().int().tolist() for name, m in confusion.items()}


def confusion_records(key: str, matrices: dict[str, list[list[int]]]) -> dict:
    """`score_language`'s confusions as a record keys them: `test/kn` with the script given,
    `test/kn/routed` without it."""
    records = {key: matrices["given"]}
    if "routed" in matrices:
        records[f"{key}/routed"] = matrices["routed"]
    return records


@torch.no_grad()
def score_pages(
    model: UnifiedModel,
    x: torch.Tensor,
    labels: torch.Tensor,
    code: str,
    batch_size: int,
    page_size: int,
    seed: int,
    groups: dict[str, str] | None = None,
    reject: Thresholds | None = None,
) -> dict[str, float]:
    """`PAGE_METRICS`: the test images dealt at random into pages of `page_size`, each page's
    script decided by the router's pooled probabilities (`pooled_script`) and its digits read
    with that script's head. With `reject`, a digit of a page whose posterior or mean
    familiarity (a page's, like its script), or whose own digit probability, is below its
    threshold is unknown and counts as wrong."""
    device = next(model.parameters()).device
    groups = groups or {}
    probs = torch.cat(
        [model.script_probs(xb.to(device)).cpu() for xb in x.split(batch_size)]
    ).numpy()
    named = torch.empty(len(labels), dtype=torch.long)
    posterior = torch.empty(len(labels))
    dealt = [torch.from_numpy(page) for page in pages(len(labels), page_size, seed)]
    for page in dealt:
        named[page], posterior[page] = pooled_script(probs[page.numpy()])
    digit = torch.empty_like(labels)
    digit_prob = torch.empty(len(labels))
    familiarity = None if model.prototypes is None else torch.empty(len(labels))
    for i in named.unique().tolist():
        where = torch.nonzero(named == i).flatten()
        for part in where.split(batch_size):
            read = model.predict(x[part].to(device), language=model.languages[i])
            digit[part], digit_prob[part] = read["digit"].cpu(), read["digit_prob"].cpu()
            if familiarity is not None:
                familiarity[part] = read["familiarity"].cpu()
    if familiarity is not None:
        for page in dealt:
            familiarity[page] = familiarity[page].mean()
    reasons = unknown_reasons(posterior, digit_prob, reject, familiarity)
    unknown = torch.from_numpy(reasons != "")
    same_group = torch.tensor(
        [groups.get(c, c) == groups.get(code, code) for c in model.languages], dtype=torch.bool
    )
    return {
        "page_routed_acc": float(((digit == labels) & ~unknown).float().mean()),
        "page_lid_acc": float((named == model.languages.index(code)).float().mean()),
        "page_lid_group_acc": float(same_group[named].float().mean()),
    }


def usable_answers(model: UnifiedModel) -> list[str]:
    """The ways this model can read a digit without its language."""
    if model.router is None:
        return []
    shared = DIGIT_HEAD in model.members[model.router].heads
    return [a for a in ANSWERS if a != "shared" or shared]


def language_groups(manifest: dict) -> dict[str, str]:
    """Script group per language, from the manifest (older bundles: the registry's)."""
    out = {}
    for record in manifest.get("languages") or []:
        code = record.get("code")
        group = record.get("group")
        if group is None and code in available_languages():
            group = load_language(code).group
        out[code] = group or code
    return out


def checkpoint_as_bundle(path: str) -> tuple[UnifiedModel, dict]:
    """A classifier checkpoint as a router-less bundle: one member reading all its languages."""
    classifier, spec, classes = load_classifier(path)
    codes = language_codes(classes)
    model = UnifiedModel({"model": classifier}, dict.fromkeys(codes, "model"), codes).eval()
    return model, {"preprocessing": digit_preprocessing(), "metrics": {}, "integration": {}}


def outside_languages(cfg: DictConfig, model: UnifiedModel) -> list[str]:
    """`outside=[…]`: languages of conf/language the bundle does not hold; refused otherwise."""
    codes = list(cfg.get("outside") or [])
    if codes and model.router is None:
        raise ConfigError("outside", codes, "[]: this model has no router to score them with")
    for code in codes:
        if code in model.languages:
            raise ConfigError(
                "outside",
                code,
                f"a language the bundle does not hold; it holds {', '.join(model.languages)}",
            )
        if code not in available_languages():
            raise ConfigError(
                "outside", code, f"a language of conf/language: {', '.join(available_languages())}"
            )
    return codes


@torch.no_grad()
def in_bundle_scores(
    model: UnifiedModel, x: torch.Tensor, batch_size: int
) -> dict[str, np.ndarray]:
    """The in-bundle scores of each image, from one router pass: `script_prob`, its largest
    calibrated script probability, and with prototypes its `familiarity`."""
    device = next(model.parameters()).device
    parts = [model.script_scores(xb.to(device)) for xb in x.split(batch_size)]
    out = {"script_prob": torch.cat([p["script_probs"].max(dim=1).values.cpu() for p in parts])}
    if model.prototypes is not None:
        out["familiarity"] = torch.cat([p["familiarity"].cpu() for p in parts])
    return {key: value.numpy() for key, value in out.items()}


def page_means(scores: np.ndarray, page_size: int) -> np.ndarray:
    """The mean score of each page of `page_size` consecutive images; a last, shorter page is
    left out, so that every page weighs as many images."""
    whole = len(scores) // page_size * page_size
    return np.asarray(scores[:whole], dtype=np.float64).reshape(-1, page_size).mean(axis=1)


def outside_aurocs(
    inside: list[dict[str, np.ndarray]], outside: list[dict[str, np.ndarray]], page_size: int
) -> dict[str, float]:
    """How well an in-bundle score tells the bundle's own images (`inside`, one entry of
    `in_bundle_scores` per language) from those of languages it does not hold (`outside`):
    `auroc` of the familiarity (the script probability without prototypes), `auroc_script_prob`
    of the script probability, and `auroc_page` of `auroc`'s score averaged over pages of
    `page_size` images of one language (none when `page_size` < 2)."""
    score = "familiarity" if "familiarity" in inside[0] else "script_prob"

    def joined(parts: list[dict[str, np.ndarray]], key: str, size: int = 1) -> np.ndarray:
        return np.concatenate([page_means(p[key], size) for p in parts])

    metrics = {
        "auroc": auroc(joined(inside, score), joined(outside, score)),
        "auroc_script_prob": auroc(joined(inside, "script_prob"), joined(outside, "script_prob")),
    }
    if page_size > 1:
        pages_in, pages_out = joined(inside, score, page_size), joined(outside, score, page_size)
        if len(pages_in) and len(pages_out):
            metrics["auroc_page"] = auroc(pages_in, pages_out)
    return metrics


@torch.no_grad()
def score_outside(
    cfg: DictConfig,
    model: UnifiedModel,
    manifest: dict,
    codes: list[str],
    inside: list[dict[str, np.ndarray]],
    reject: Thresholds | None,
    page_size: int = 0,
) -> tuple[dict[str, float], dict[str, dict]]:
    """Test sets of languages the bundle does not hold, read by its router: `outside_aurocs`
    of the in-bundle scores, its own languages' images (`inside`) against these; with `reject`,
    the share answered `?` per language and over them all (`test/outside/unknown_rate`)."""
    device = next(model.parameters()).device
    batch = cfg.data.batch_size
    metrics, counts, scores, unknown = {}, {}, [], []
    for code in tracked(codes, "scoring outside scripts"):
        sets = evaluation_sets(cfg.data, load_language(code), cfg.seed, cfg.paths.data_dir)
        x = model_input(DigitArrays.concat(list(sets.values())).images, manifest["preprocessing"])
        counts[code] = {"test": len(x)}
        scores.append(in_bundle_scores(model, x, batch))
        reasons = []
        for xb in x.split(batch):
            read = {k: v.cpu() for k, v in model.predict(xb.to(device)).items()}
            reasons.append(
                unknown_reasons(
                    read["language_prob"], read["digit_prob"], reject, read.get("familiarity")
                )
            )
        mine = torch.from_numpy(np.concatenate(reasons) != "")
        unknown.append(mine)
        if reject is not None:
            metrics[f"test/{code}/unknown_rate"] = float(mine.float().mean())
    found = outside_aurocs(inside, scores, page_size)
    metrics.update({f"test/{OUTSIDE}/{name}": value for name, value in found.items()})
    if reject is not None:
        metrics[f"test/{OUTSIDE}/unknown_rate"] = float(torch.cat(unknown).float().mean())
    return metrics, counts


ANY_SCRIPT = "any"
"""The row of a file whose script nobody gave: `test/any/acc` is read by the bundle's router."""


def evaluate_any_script(
    cfg: DictConfig, model: UnifiedModel, manifest: dict, bundle: str
) -> tuple[dict, dict]:
    """A labelled file of unknown or mixed scripts: digit metrics of the routed reading, and
    the share of images the router gave to each language."""
    if model.router is None:
        raise ConfigError(
            "language", None, f"one of {', '.join(model.languages)}: this model cannot route"
        )
    from xlvision.data.real import load_real_splits

    source = {**OmegaConf.to_container(cfg.data.source, resolve=True), "language": "und"}
    cap = cfg.data.get("real_per_class")
    test = load_real_splits(source, cfg.seed, Path(cfg.paths.data_dir), cap)["test"]
    x = model_input(test.images, manifest["preprocessing"])
    device = next(model.parameters()).device
    scores = classification_metrics(10)  # readers refuse labels outside 0–9
    named = torch.zeros(len(model.languages))
    with torch.no_grad():
        batch = cfg.data.batch_size
        for xb, yb in zip(x.split(batch), test.labels.split(batch), strict=True):
            read = {k: v.cpu() for k, v in model.predict(xb.to(device)).items()}
            scores.update(read["digit"], yb)
            named += torch.bincount(read["language"], minlength=len(model.languages)).float()
    metrics = {f"test/{ANY_SCRIPT}/{k}": float(v) for k, v in scores.compute().items()}
    shares = {
        code: float(n / max(len(test), 1)) for code, n in zip(model.languages, named, strict=True)
    }
    metrics["bundle_bytes"] = Path(bundle).expanduser().stat().st_size
    artifacts = {
        "bundle": str(bundle),
        "named_languages": shares,
        "data_counts": {ANY_SCRIPT: {"test": len(test)}},
    }
    return metrics, artifacts


def evaluate(cfg: DictConfig) -> tuple[dict, dict]:
    """Test every asked language on the configured data; normalized acc = acc ÷ individual acc."""
    if (cfg.get("bundle") is None) == (cfg.get("checkpoint") is None):
        raise ConfigError(
            "bundle", cfg.get("bundle"), "a bundle file, or checkpoint=<classifier ckpt> instead"
        )
    source = cfg.bundle or cfg.checkpoint
    model, manifest = load_bundle(cfg.bundle) if cfg.bundle else checkpoint_as_bundle(source)
    model.to(inference_device(cfg.device.accelerator))
    declared = OmegaConf.select(cfg, "data.source.language", default=None, throw_on_missing=False)
    if cfg.data.kind == "real" and not declared:
        if not cfg.language:  # nobody says the script: the bundle names it per image
            if cfg.get("adapt") is not None and cfg.adapt.method != "none":
                raise ConfigError("language", None, "a language to adapt to (adapt=…)")
            return evaluate_any_script(cfg, model, manifest, source)
        with open_dict(cfg):  # the file's script is the one given
            cfg.data.source.language = next(iter(cfg.language))
    codes = eval_languages(cfg, model.languages)
    outside = outside_languages(cfg, model)
    # xlv-eval's default is auto; a config without the key (xlv-pipeline's) keeps today's metrics.
    reject = reject_thresholds(cfg.get("reject", "none"), manifest)
    inside = []  # the in-bundle scores of each tested language's images (`in_bundle_scores`)
    page_size = cfg.get("page_size") or 0
    if not isinstance(page_size, int) or page_size < 0:
        raise ConfigError(
            "page_size", page_size, "a page of n ≥ 2 digits of one script, or 0: none"
        )
    individual = (manifest.get("metrics") or {}).get("individual") or {}
    metrics, confusion, counts = {}, {}, {}
    groups = language_groups(manifest)
    on_real = []  # languages scored on real data, not on glyphs
    for code in tracked(codes, "evaluating"):
        node = cfg.language.get(code)
        language = language_from_mapping(node) if node is not None else load_language(code)
        sets = evaluation_sets(cfg.data, language, cfg.seed, cfg.paths.data_dir)
        reader, adapted = adapted_for_test(cfg, model, manifest, language)
        if "glyphs" not in sets:
            on_real.append(code)
        parts = {code: DigitArrays.concat(list(sets.values()))}
        if len(sets) > 1:
            parts.update({f"{code}@{name}": arrays for name, arrays in sets.items()})
        for name, test in parts.items():
            x = model_input(test.images, manifest["preprocessing"])
            scores, matrices = score_language(
                reader, x, test.labels, code, cfg.data.batch_size, groups, reject
            )
            confusion.update(confusion_records(f"test/{name}", matrices))
            if outside and name == code:
                inside.append(in_bundle_scores(model, x, cfg.data.batch_size))
            if model.router is not None and page_size > 1:
                scores.update(
                    score_pages(
                        reader,
                        x,
                        test.labels,
                        code,
                        cfg.data.batch_size,
                        page_size,
                        cfg.seed,
                        groups,
                        reject,
                    )
                )
            reference = (individual.get(code) or {}).get("acc")
            if reference and name == code:
                scores["normalized_acc"] = scores["acc"] / reference
            if name == code:
                scores.update(adapted)
            metrics.update({f"test/{name}/{key}": value for key, value in scores.items()})
            counts[name] = {"test": len(test)}
    # `mean_real`: over the languages scored on real handwriting, when glyphs score the others;
    # with data.leave_real_out, `mean_left_out` over those and `mean_trained_real` over the
    # languages whose real training data the model saw.
    left_out = [c for c in on_real if c in (cfg.data.get("leave_real_out") or [])]
    trained_real = []
    if left_out:
        mix = parse_mix(cfg.data, on_real, whole_run=False)
        trained_real = [c for c in on_real if trains_on_real(mix[c])]
    for mean, over in (
        ("mean", codes),
        ("mean_real", on_real if len(on_real) < len(codes) else []),
        ("mean_left_out", left_out),
        ("mean_trained_real", trained_real),
    ):
        for name in MEANS:
            values = [metrics[f"test/{c}/{name}"] for c in over if f"test/{c}/{name}" in metrics]
            if values:
                metrics[f"test/{mean}/{name}"] = sum(values) / len(values)
    if outside:
        found, outside_counts = score_outside(
            cfg, model, manifest, outside, inside, reject, page_size
        )
        metrics.update(found)
        counts.update(outside_counts)
    if reject is not None:
        metrics["reject_script"], metrics["reject_digit"] = reject.script, reject.digit
        if reject.familiar is not None and model.prototypes is not None:
            metrics["reject_familiar"] = reject.familiar
    metrics["bundle_bytes"] = Path(source).expanduser().stat().st_size
    integration = manifest.get("integration") or {}
    if model.router is not None and page_size > 1:
        metrics["page_size"] = page_size
    artifacts = {
        "bundle": str(source),
        "integration": integration.get("method"),
        "confusion": confusion,
        "data_counts": counts,
    }
    return metrics, artifacts
