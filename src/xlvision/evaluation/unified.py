"""How well a unified model reads one language: with the script given and not, per digit and
per page, its calibration, and how well its scores tell its own scripts from others.

Each function takes a model and images (already normalized, as `model_input` makes them) and
returns metric values; where the images come from is the stages' business."""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics.classification import MulticlassConfusionMatrix

from xlvision.bundle.calibration import Thresholds, unknown_reasons
from xlvision.bundle.model import ANSWERS, UnifiedModel
from xlvision.bundle.scripts import pages, pooled_script
from xlvision.evaluation.calibration import auroc, expected_calibration_error
from xlvision.evaluation.metrics import METRICS, classification_metrics
from xlvision.models.classifier import DIGIT_HEAD

PAGE_METRICS = ("page_routed_acc", "page_lid_acc", "page_lid_group_acc")
"""The script decided once per page of `page_size` digits of one script, not per digit: the
digit accuracy read with the page's script, and that script named exactly / within its group."""

ADAPT_METRICS = (
    "adapt_thicken",
    "adapt_routing",
    "adapt_routing_refused",
    "adapt_bn",
    "adapt_prior",
    "adapt_self_train",
    "adapt_kept",
    "adapt_lid_acc",
)
"""With `adapt`: passes of the stroke step kept, the share of the scans routed to their
script's group after adapting and the steps undone because it fell, steps kept (1/0), share of
scans kept in self-training's last epoch, and whether the pooled script was the language's own."""

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
            with model.reusing_features():  # one backbone pass for every reading of the batch
                reads = [model.predict(xb, language=code)]
                reads += [model.predict(xb, answer=answer) for answer in answers]
            read = {k: v.cpu() for k, v in reads[0].items()}
            oracle.update(read["digit"], yb)
            confusion["given"].update(read["digit"], yb)
            given["prob"].append(read["digit_prob"])
            given["hit"].append(read["digit"] == yb)
            if model.router is None:
                continue
            for answer, answered in zip(answers, reads[1:], strict=True):
                read = {k: v.cpu() for k, v in answered.items()}
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
    inside: list[dict[str, np.ndarray]],
    outside: list[dict[str, np.ndarray]],
    page_size: int,
    real: list[bool] | None = None,
) -> dict[str, float]:
    """How well an in-bundle score tells the bundle's own images (`inside`, one entry of
    `in_bundle_scores` per language) from those of languages it does not hold (`outside`):
    `auroc` of the familiarity (the script probability without prototypes), `auroc_script_prob`
    of the script probability, and `auroc_page` of `auroc`'s score averaged over pages of
    `page_size` images of one language (none when `page_size` < 2). With `real` (per entry of
    `inside`: scored on real handwriting, not glyphs), some but not all true: `auroc_real` and
    `auroc_real_page`, the same with only the real sets inside (handwriting against
    handwriting)."""
    score = "familiarity" if "familiarity" in inside[0] else "script_prob"

    def joined(parts: list[dict[str, np.ndarray]], key: str, size: int = 1) -> np.ndarray:
        return np.concatenate([page_means(p[key], size) for p in parts])

    def of(parts: list[dict[str, np.ndarray]], suffix: str = "") -> dict[str, float]:
        found = {f"auroc{suffix}": auroc(joined(parts, score), joined(outside, score))}
        if page_size > 1:
            pages_in = joined(parts, score, page_size)
            pages_out = joined(outside, score, page_size)
            if len(pages_in) and len(pages_out):
                found[f"auroc{suffix}_page"] = auroc(pages_in, pages_out)
        return found

    metrics = {
        **of(inside),
        "auroc_script_prob": auroc(joined(inside, "script_prob"), joined(outside, "script_prob")),
    }
    if real is not None and 0 < sum(real) < len(inside):
        metrics.update(of([p for p, on_real in zip(inside, real, strict=True) if on_real], "_real"))
    return metrics
