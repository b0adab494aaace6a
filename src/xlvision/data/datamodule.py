"""One Lightning DataModule for every source: glyphs or real data, one or many languages."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler

from xlvision.data.arrays import DigitArrays
from xlvision.data.cache import cached_arrays, file_digest
from xlvision.data.glyphs import GENERATOR_VERSION, generate_glyph_digits, split_seed
from xlvision.data.sampling import sample_shots
from xlvision.languages import Language

SPLITS = ("train", "val", "test")
EVAL_ORDER_SEED = 20261127


class LanguageBatches(Dataset):
    """Images, labels and language indices, fetched a whole batch per index list."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, languages: torch.Tensor):
        self.images, self.labels, self.languages = images, labels, languages

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index):
        return self.images[index], self.labels[index], self.languages[index]


def glyph_splits(
    data: DictConfig, language: Language, seed: int, splits: tuple[str, ...] = SPLITS
) -> dict[str, DigitArrays]:
    """Train and val from the training fonts, test from the held-out fonts."""
    augment = OmegaConf.to_container(data.augment, resolve=True)
    out = {}
    for split in splits:
        role = "test" if split == "test" else "train"
        per_class = data[f"{split}_per_class"]
        spec = {
            "generator": GENERATOR_VERSION,
            "language": language.code,
            "glyphs": [language.glyphs(i) for i in range(language.num_classes)],
            "fonts": [file_digest(p) for p in language.font_paths(role)],
            "augment": augment,
            "per_class": per_class,
            "split": split,
            "seed": seed,
        }
        stream = split_seed(seed, language.code, split)
        out[split] = cached_arrays(
            data.cache_dir,
            spec,
            lambda per_class=per_class, role=role, stream=stream: generate_glyph_digits(
                language, role, per_class, data.augment, stream
            ),
        )
    return out


def load_splits(
    data: DictConfig,
    language: Language,
    seed: int,
    data_dir: str | Path,
    splits: tuple[str, ...] = SPLITS,
) -> dict[str, DigitArrays]:
    """The `splits` arrays of one language from the configured source (real data: all three)."""
    if data.kind == "glyphs":
        return glyph_splits(data, language, seed, splits)
    from xlvision.data.real import load_real_splits

    source = OmegaConf.to_container(data.source, resolve=True)
    declared = source.get("language")
    if declared and declared != language.code:
        raise ValueError(
            f"data.source.language={declared!r} does not match language={language.code!r}; "
            f"run with language={declared}"
        )
    return load_real_splits(source, seed=seed, data_dir=Path(data_dir))


class DigitDataModule(L.LightningDataModule):
    """Batches of (image, label, language index) over the configured languages."""

    def __init__(
        self,
        data: DictConfig,
        languages: list[Language],
        seed: int,
        data_dir: str | Path = ".",
        eval_only: tuple[str, ...] = (),
    ) -> None:
        """`eval_only` languages get val and test data but no training data (forgetting)."""
        super().__init__()
        self.data, self.languages, self.seed, self.data_dir = data, languages, seed, data_dir
        self.eval_only = set(eval_only)
        self.datasets: dict[str, LanguageBatches] = {}
        self.counts: dict[str, dict[str, int]] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        parts: dict[str, list[tuple[DigitArrays, int]]] = {s: [] for s in SPLITS}
        for index, language in enumerate(self.languages):
            splits = load_splits(self.data, language, self.seed, self.data_dir)
            shots = self.data.shots_per_class
            if shots is not None:
                train = splits["train"]
                keep = sample_shots(
                    train.labels, shots, self.seed, language.num_classes, f"{language.code} train"
                )
                splits["train"] = train.subset(keep)
            for split in SPLITS:
                if split == "train" and language.code in self.eval_only:
                    continue
                parts[split].append((splits[split], index))
                self.counts.setdefault(language.code, {})[split] = len(splits[split])
        for split, items in parts.items():
            self.datasets[split] = LanguageBatches(
                torch.cat([a.normalized() for a, _ in items]),
                torch.cat([a.labels for a, _ in items]),
                torch.cat([torch.full((len(a),), i, dtype=torch.long) for a, i in items]),
            )

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        """Training order follows the seed. Evaluation order is one fixed permutation, so a
        run limited to a few eval batches still sees every language."""
        dataset = self.datasets[split]
        seed = self.seed if shuffle else EVAL_ORDER_SEED
        draws = None
        if shuffle and self.data.shots_per_class is not None:  # k-shot: a few steps is no epoch
            training = sum(lang.code not in self.eval_only for lang in self.languages)
            draws = max(len(dataset), self.data.get("min_train_samples", 0) * training)
        order = RandomSampler(
            dataset, num_samples=draws, generator=torch.Generator().manual_seed(seed)
        )
        return DataLoader(
            dataset,
            batch_size=None,
            sampler=BatchSampler(order, self.data.batch_size, drop_last=False),
            num_workers=self.data.num_workers,
            persistent_workers=self.data.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)
