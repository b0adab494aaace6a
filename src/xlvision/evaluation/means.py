"""The mean over languages: one rule for every stage, row and report.

A mean row is the plain mean of the languages that have the metric (a language without it, a
router metric of a router-less model say, is left out, not counted as 0)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence


def language_mean(values: Mapping[str, float]) -> float:
    """The mean of `{language: value}`; a mean of nothing is refused."""
    if not values:
        raise ValueError("a mean over languages needs at least one language")
    return sum(values.values()) / len(values)


def language_means(
    metrics: Mapping[str, float],
    prefix: str,
    rows: Mapping[str, Sequence[str]],
    names: Iterable[str],
) -> dict[str, float]:
    """`{prefix}/{row}/{name}`: for each mean row (`mean`, `mean_real`, …) over its languages,
    the mean of `{prefix}/{language}/{name}` for every metric `name` some language has."""
    out = {}
    for row, codes in rows.items():
        for name in names:
            found = {
                c: metrics[f"{prefix}/{c}/{name}"]
                for c in codes
                if f"{prefix}/{c}/{name}" in metrics
            }
            if found:
                out[f"{prefix}/{row}/{name}"] = language_mean(found)
    return out
