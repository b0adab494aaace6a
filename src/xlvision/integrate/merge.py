"""Weight-space merging: pure functions of state dicts, after Ilharco et al. and Yadav et al.

A task vector is `finetuned - base`. Every function merges the floating-point entries and
copies the others (integer buffers such as BatchNorm's `num_batches_tracked` count batches;
they are not weights) from the base, or from the first state where there is no base.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

State = Mapping[str, torch.Tensor]


def _check_keys(states: Sequence[State]) -> None:
    if not states:
        raise ValueError("nothing to merge: no state dicts given")
    keys = set(states[0])
    for i, state in enumerate(states[1:], start=1):
        if set(state) != keys:
            diff = sorted(keys.symmetric_difference(state))
            raise ValueError(f"state {i} does not have the keys of state 0 (differ: {diff[:5]})")


def task_vector(base: State, finetuned: State) -> dict[str, torch.Tensor]:
    """`finetuned - base` on every floating-point entry."""
    return {k: finetuned[k] - base[k] for k in base if base[k].is_floating_point()}


def _running_mean(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """The mean as `m += (x - m) / i`: identical inputs give their value back bit for bit."""
    mean = tensors[0].clone()
    for i, x in enumerate(tensors[1:], start=2):
        mean += (x - mean) / i
    return mean


def average(states: Sequence[State]) -> dict[str, torch.Tensor]:
    """Uniform average of the floating-point entries (a model soup)."""
    _check_keys(states)
    first = states[0]
    return {
        k: _running_mean([s[k] for s in states])
        if first[k].is_floating_point()
        else first[k].clone()
        for k in first
    }


def _apply(base: State, merged: Mapping[str, torch.Tensor], lam: float) -> dict[str, torch.Tensor]:
    return {k: base[k] + lam * merged[k] if k in merged else base[k].clone() for k in base}


def task_arithmetic(base: State, states: Sequence[State], lam: float) -> dict[str, torch.Tensor]:
    """`base + lam * Σ_i (θ_i - base)`; `lam=0` returns the base."""
    _check_keys([base, *states])
    vectors = [task_vector(base, s) for s in states]
    summed = {k: torch.stack([v[k] for v in vectors]).sum(0) for k in vectors[0]}
    return _apply(base, summed, lam)


def trim(vector: Mapping[str, torch.Tensor], k: float) -> dict[str, torch.Tensor]:
    """Keep the top `k` percent of a task vector's entries by magnitude, over all its tensors
    together (the TIES paper's global threshold); the rest become zero."""
    if not 0 < k <= 100:
        raise ValueError(f"k={k} is not allowed: a percentage in (0, 100]")
    flat = torch.cat([v.flatten() for v in vector.values()]).abs()
    keep = max(1, round(flat.numel() * k / 100))
    threshold = flat.kthvalue(flat.numel() - keep + 1).values
    return {
        name: torch.where(v.abs() >= threshold, v, torch.zeros_like(v))
        for name, v in vector.items()
    }


def ties(base: State, states: Sequence[State], k: float, lam: float) -> dict[str, torch.Tensor]:
    """TIES-merging: trim each task vector to its top-k%, elect each entry's sign by the
    sign of the summed trimmed vectors (total mass), average only the entries that agree
    with it (disjoint mean), and add `lam` times the result to the base.

    An entry whose trimmed values sum to exactly zero has no elected sign and stays at base.
    """
    _check_keys([base, *states])
    trimmed = [trim(task_vector(base, s), k) for s in states]
    merged = {}
    for name in trimmed[0]:
        stacked = torch.stack([t[name] for t in trimmed])
        sign = torch.sign(stacked.sum(0))
        agree = (torch.sign(stacked) == sign) & (stacked != 0)
        count = agree.sum(0)
        total = torch.where(agree, stacked, torch.zeros_like(stacked)).sum(0)
        merged[name] = torch.where(count > 0, total / count.clamp(min=1), torch.zeros_like(total))
    return _apply(base, merged, lam)
