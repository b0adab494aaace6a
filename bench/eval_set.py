"""Scoring a test set as `xlv-eval` does, its images read once (`reading_set`) against batch by
batch, on CPU.

A shared-backbone bundle of the unified preset's shape (one Net, a head per language, a router)
reading with the preset's six views, and with one. For each, `score_language` (the script
given, then every answer rule), `score_pages` and `in_bundle_scores` over the same glyph
digits, inside `UnifiedModel.reading_set` and outside it, interleaved rounds. Prints the
median seconds of each and their ratio, and checks that both give the same figures. Weights
are untrained: speed does not depend on them.

    .venv/bin/python bench/eval_set.py [--images 3000] [--rounds 3] [--write]
"""

from __future__ import annotations

import time

import torch
from _results import compared, comparison_args, write_comparison

from xlvision.bundle.export import check_images
from xlvision.bundle.model import LID_HEAD, UnifiedModel
from xlvision.data.arrays import MNIST_MEAN, MNIST_STD
from xlvision.evaluation.unified import in_bundle_scores, score_language, score_pages
from xlvision.models.classifier import DIGIT_HEAD
from xlvision.models.registry import build_classifier

CODES = ["kn", "ar", "hi"]
BATCH = 128  # xlv-eval's data.batch_size


def bundle(views: str) -> UnifiedModel:
    torch.manual_seed(0)
    heads = {**{c: 10 for c in CODES}, DIGIT_HEAD: 10, LID_HEAD: len(CODES)}
    shared = build_classifier({"name": "net"}, heads)
    model = UnifiedModel(
        {"shared": shared}, {c: "shared" for c in CODES}, CODES, "shared", "marginal", views=views
    )
    return model.eval()


def score(model: UnifiedModel, x: torch.Tensor, y: torch.Tensor, once: bool) -> tuple:
    """Seconds to score the set as xlv-eval does, and the figures."""
    start = time.perf_counter()
    with torch.no_grad():
        if once:
            with model.reading_set(x, BATCH):
                figures = score_set(model, x, y)
        else:
            figures = score_set(model, x, y)
    return time.perf_counter() - start, figures


def score_set(model: UnifiedModel, x: torch.Tensor, y: torch.Tensor) -> dict:
    scores, _ = score_language(model, x, y, CODES[0], BATCH)
    scores.update(score_pages(model, x, y, CODES[0], BATCH, 5, seed=0))
    inside = in_bundle_scores(model, x, BATCH)
    return {**scores, "script_prob": float(inside["script_prob"].mean())}


def main() -> None:
    args, threads = comparison_args(__doc__, images=3000)
    x = (torch.from_numpy(check_images(CODES, args.images // len(CODES))) - MNIST_MEAN) / MNIST_STD
    y = torch.arange(len(x)) % 10
    print(f"{len(x)} images, batch {BATCH}, {threads} threads, {args.rounds} interleaved rounds")
    rows = []
    for views in ("shifts_thick", "none"):
        model = bundle(views)
        score(model, x[:BATCH], y[:BATCH], once=False)  # warm-up
        seconds = {True: [], False: []}
        for _ in range(args.rounds):
            apart, plain = score(model, x, y, once=False)
            together, figures = score(model, x, y, once=True)
            seconds[False].append(apart)
            seconds[True].append(together)
            assert figures.keys() == plain.keys()
            assert all(abs(figures[k] - plain[k]) < 1e-9 for k in plain), "the figures differ"
        line = (
            "views={label:12s} batch by batch {first:6.2f} s   read once {second:6.2f} s   "
            "ratio {ratio:.2f}x (same figures)"
        )
        rows.append(compared(views, seconds[False], seconds[True], seconds=True, line=line))
    if args.write:
        write_comparison(
            "eval_set",
            "## Scoring a test set: its images read once against batch by batch "
            "(`bench/eval_set.py`)",
            ["`integrate.views`", "batch by batch (s)", "read once (s)", "speed-up"],
            rows,
            ".2f",
            f"""One shared-backbone bundle (kn, ar, hi; untrained Net) scoring {len(x)} glyph digits as
`xlv-eval` does (`score_language`, `score_pages`, `in_bundle_scores`), batch {BATCH},
{threads} threads, the median of {args.rounds} interleaved rounds; both ways give the same
figures (checked each round).""",
        )


if __name__ == "__main__":
    main()
