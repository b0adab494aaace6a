"""k-shot sampling: exactly k seeded examples of every class."""

from __future__ import annotations

import torch
from torch import Tensor

from xlvision.data.errors import DataError


def sample_shots(
    labels: Tensor, shots: int, seed: int, num_classes: int, source: str = ""
) -> Tensor:
    """Sorted indices of `shots` examples per class, the same for the same seed."""
    gen = torch.Generator().manual_seed(seed)
    picks = []
    for label in range(num_classes):
        members = torch.nonzero(labels == label).flatten()
        if len(members) < shots:
            where = f" in {source}" if source else ""
            raise DataError(
                f"data.shots_per_class={shots} but class {label} has only {len(members)} examples{where}"
            )
        picks.append(members[torch.randperm(len(members), generator=gen)[:shots]])
    return torch.cat(picks).sort().values
