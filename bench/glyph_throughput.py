"""Glyph generation speed: the vectorized generator vs a per-image torchvision loop.

Prints images/s of both, measured in this one run, and their ratio. Target: >= 20k images/s
for the generator on a 2-core machine.

    .venv/bin/python bench/glyph_throughput.py [language] [images]
"""

from __future__ import annotations

import sys
import time

import torch
from torchvision.transforms import v2

from xlvision.config.schema import AugmentConf
from xlvision.data.glyphs import generate_glyph_digits, glyph_masters
from xlvision.languages import load_language


def per_image_loop(masters, count: int, seed: int) -> torch.Tensor:
    """The usual way: one sample at a time through torchvision transforms."""
    torch.manual_seed(seed)
    transform = v2.Compose(
        [
            v2.RandomAffine(degrees=12, translate=(0.05, 0.05), scale=(0.75, 1.1), shear=14),
            v2.ElasticTransform(alpha=20.0, sigma=5.0),
            v2.GaussianBlur(5, sigma=(0.1, 0.8)),
            v2.Resize((28, 28), antialias=True),
        ]
    )
    images = masters.strokes[2]
    out = torch.empty(count, 28, 28)
    for i in range(count):
        out[i] = transform(images[i % len(images)])[0]
    return out


def main() -> None:
    code = sys.argv[1] if len(sys.argv) > 1 else "kn"
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 50_000
    torch.set_num_threads(2)
    language = load_language(code)
    masters = glyph_masters(language, "train")
    generate_glyph_digits(language, "train", 10, AugmentConf(), seed=0)  # warm-up

    start = time.perf_counter()
    generate_glyph_digits(language, "train", count // 10, AugmentConf(), seed=1)
    fast = count / (time.perf_counter() - start)

    loop_count = max(500, count // 50)
    start = time.perf_counter()
    per_image_loop(masters, loop_count, seed=1)
    slow = loop_count / (time.perf_counter() - start)

    print(f"language {code}, {torch.get_num_threads()} threads")
    print(f"vectorized generator: {fast:10.0f} images/s ({count} images)")
    print(f"per-image torchvision loop: {slow:10.0f} images/s ({loop_count} images)")
    print(f"ratio generator / loop: {fast / slow:.1f}x")


if __name__ == "__main__":
    main()
