"""One script for several digits known to share it: a number, a form, one writer's folder.

A single digit cannot always say its script: Bengali ৭ (7) and Devanagari १ (1), Western 2 and
Kannada ೭ (7) are written alike. Several digits of one script nearly always can. The router's
probabilities are pooled over the images: Σᵢ log p(script | imageᵢ) is, up to a constant, the
log-posterior of the script given all of them (the router's prior over scripts is flat). Each
probability is floored, so one stray or overconfident image cannot veto the right script.

Torch-free: an exported `.onnx` file's `script_probs` pool the same way as a bundle's.
"""

from __future__ import annotations

import numpy as np

FLOOR = 1e-6
"""The smallest probability an image gives any script when pooled (log 1e-6 ≈ −13.8)."""


def pooled_script(probs: np.ndarray) -> tuple[int, float]:
    """(index, posterior) of the script that best explains every row of `probs` [N, L] at once."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or len(probs) == 0:
        raise ValueError(f"script probabilities of shape [N, L] with N ≥ 1, got {probs.shape}")
    scores = np.log(np.clip(probs, FLOOR, None)).sum(axis=0)
    posterior = np.exp(scores - scores.max())
    posterior /= posterior.sum()
    index = int(scores.argmax())
    return index, float(posterior[index])


def pages(n: int, page_size: int, seed: int) -> list[np.ndarray]:
    """`n` images dealt at random (by `seed`) into pages of `page_size`; the last may be short."""
    if page_size < 1:
        raise ValueError(f"page_size={page_size}: at least 1")
    order = np.random.default_rng(seed).permutation(n)
    return [order[i : i + page_size] for i in range(0, n, page_size)]
