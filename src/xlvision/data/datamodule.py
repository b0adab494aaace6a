"""One Lightning DataModule for every source: glyphs or real data, one or many languages."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    RandomSampler,
    Sampler,
    WeightedRandomSampler,
)

from xlvision.data.arrays import MNIST_MEAN, MNIST_STD, DigitArrays
from xlvision.data.augment import augment_digits
from xlvision.data.cache import cached_arrays, file_digest
from xlvision.data.errors import DataError
from xlvision.data.glyphs import GENERATOR_VERSION, generate_glyph_digits, split_seed
from xlvision.data.mix import MixSource, parse_mix, sampling_weights
from xlvision.data.sampling import sample_shots
from xlvision.languages import Language

SPLITS = ("train", "val", "test")
EVAL_ORDER_SEED = 20261127


@dataclass(frozen=True)
class Unlabeled:
    """A pool of unlabeled real training images of one language for self-training."""

    language: str
    size: int
    weight: float


class RankShare(Sampler):
    """This process's share of every batch: `data.batch_size` is the global batch, so
    that one process and several (DDP) train on the same batches in the same order. With
    `drop_small` (training), a batch too small to give every rank an example is dropped by
    all of them, so that they take the same number of steps."""

    def __init__(self, batches: BatchSampler, rank: int, world: int, drop_small: bool) -> None:
        self.batches, self.rank, self.world, self.drop_small = batches, rank, world, drop_small

    def __iter__(self):
        for batch in self.batches:
            share = batch[self.rank :: self.world]
            if share and not (self.drop_small and len(batch) < self.world):
                yield share

    def __len__(self) -> int:
        return len(self.batches)


class SeededEpochs(Sampler):
    """Training batches whose order, and the dataset's augmentation draws, depend only on the
    seed and the epoch. Lightning calls `set_epoch` at the start of every epoch, so a run
    resumed from last.ckpt draws in its next epoch what the uninterrupted run drew; epoch 0
    draws from the seed itself."""

    STRIDE = 1_000_003

    def __init__(self, batches: Sampler, generators: list[torch.Generator], seed: int) -> None:
        self.batches, self.generators, self.seed = batches, generators, seed

    def set_epoch(self, epoch: int) -> None:
        for generator in self.generators:
            generator.manual_seed(self.seed + self.STRIDE * epoch)

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class LanguageBatches(Dataset):
    """Images, labels and language indices, fetched a whole batch per index list.

    With `augmented` (a mask) and `augment` (the glyph augmentation's ranges), those samples
    are drawn afresh each time they are fetched: real examples augmented like glyphs. With
    `real` (a mask), a batch also carries which of its samples are real handwriting, for
    losses that treat the two domains apart (`objective.script_id_real`).
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        languages: torch.Tensor,
        augmented: torch.Tensor | None = None,
        augment=None,
        seed: int = 0,
        real: torch.Tensor | None = None,
    ):
        self.images, self.labels, self.languages = images, labels, languages
        self.augmented, self.augment, self.real = augmented, augment, real
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index):
        images = self.images[index]
        if self.augmented is not None:
            mask = self.augmented[index]
            if mask.any():
                images = images.clone()
                pixels = images[mask, 0] * MNIST_STD + MNIST_MEAN
                drawn = augment_digits(pixels, self.augment, self.generator)
                images[mask, 0] = (drawn - MNIST_MEAN) / MNIST_STD
        if self.real is not None:
            return images, self.labels[index], self.languages[index], self.real[index]
        return images, self.labels[index], self.languages[index]


def glyph_splits(
    data: DictConfig, language: Language, seed: int, splits: tuple[str, ...] = SPLITS
) -> dict[str, DigitArrays]:
    """Train and val from the training fonts, test from the held-out fonts."""
    augment = OmegaConf.to_container(data.augment, resolve=True)
    out = {}
    for split in splits:
        role = "test" if split == "test" else "train"
        per_class = data[f"{split}_per_class"]
        if split == "train" and data.shots_per_class is not None:
            per_class = max(per_class, data.shots_per_class)  # k shots need k draws per class
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
    if declared in (None, "???"):  # a generic reader (data=csv …): the file is the run's script
        declared = source["language"] = language.code
    if declared != language.code:
        raise DataError(
            f"data.source.language={declared!r} does not match language={language.code!r}; "
            f"run with language={declared}"
        )
    return load_real_splits(source, seed, Path(data_dir), data.get("real_per_class"))


def evaluation_sets(
    data: DictConfig, language: Language, seed: int, data_dir: str | Path, split: str = "test"
) -> dict[str, DigitArrays]:
    """A language's `split` by source: its real sources under data=mix (glyphs where it has
    none), else the configured source's."""
    if data.kind != "mix":
        return {data.kind: load_splits(data, language, seed, data_dir, (split,))[split]}
    from xlvision.data.real import load_real_splits

    sources = parse_mix(data, [language.code], whole_run=False)[language.code]
    real = [s for s in sources if s.is_real]
    if not real:
        return {"glyphs": glyph_splits(data, language, seed, (split,))[split]}
    cap = data.get("real_per_class")
    return {s.name: load_real_splits(s.source, seed, Path(data_dir), cap)[split] for s in real}


class DigitDataModule(L.LightningDataModule):
    """Batches of (image, label, language index) over the configured languages."""

    def __init__(
        self,
        data: DictConfig,
        languages: list[Language],
        seed: int,
        data_dir: str | Path = ".",
        eval_only: tuple[str, ...] = (),
        unlabeled: Unlabeled | None = None,
        domains: bool = False,
    ) -> None:
        """`eval_only` languages get val and test data but no training data (forgetting).
        With `domains`, training batches carry a fourth tensor: which samples are real.
        With `unlabeled`, that language's real training images beyond its k shots form a
        pool without labels (`unlabeled_slice` of the training set), drawn only once
        something (`PseudoLabels`) has labelled them and given them sampling weights."""
        super().__init__()
        self.data, self.languages, self.seed, self.data_dir = data, languages, seed, data_dir
        self.eval_only = set(eval_only)
        self.unlabeled = unlabeled
        self.domains = domains
        self.unlabeled_slice: slice | None = None
        self._real: dict[tuple[str, str], dict[str, DigitArrays]] = {}
        self.datasets: dict[str, LanguageBatches] = {}
        self.counts: dict[str, dict[str, int]] = {}
        # {split: {language: {source: arrays}}} for languages scored on several real sources
        self.eval_sources: dict[str, dict[str, dict[str, DigitArrays]]] = {}
        self.train_weights: torch.Tensor | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        # (arrays, language index, sampling weight, real) per source and split
        parts: dict[str, list[tuple[DigitArrays, int, float, bool]]] = {s: [] for s in SPLITS}
        mix = parse_mix(self.data, [lang.code for lang in self.languages]) if self.is_mix else {}
        for index, language in enumerate(self.languages):
            train, evaluation = self._language_splits(language, mix.get(language.code))
            if language.code not in self.eval_only:
                sizes = {
                    "train": sum(len(a[0]) for a in train),
                    "val": sum(map(len, evaluation["val"].values())),
                }
                empty = [name for name, size in sizes.items() if size == 0]
                if empty:
                    raise DataError(
                        f"language {language.code}: its data have no {empty[0]} examples (a "
                        "file with only a test split is for xlv-eval, not for training)"
                    )
                parts["train"] += [(arrays, index, weight, real) for arrays, weight, real in train]
                self.counts.setdefault(language.code, {})["train"] = sum(len(a[0]) for a in train)
                if self.unlabeled is not None and language.code == self.unlabeled.language:
                    pool = self._unlabeled_pool(language, mix.get(language.code))
                    start = sum(len(a) for a, _, _, _ in parts["train"])
                    self.unlabeled_slice = slice(start, start + len(pool))
                    parts["train"].append((pool, index, self.unlabeled.weight, True))
                    self.counts[language.code]["unlabeled"] = len(pool)
            for split in ("val", "test"):
                by_source = evaluation[split]
                parts[split] += [(arrays, index, 1.0, False) for arrays in by_source.values()]
                self.counts.setdefault(language.code, {})[split] = sum(map(len, by_source.values()))
                if len(by_source) > 1:
                    self.eval_sources.setdefault(split, {})[language.code] = by_source
        for split, items in parts.items():
            real = torch.cat([torch.full((len(a),), is_real) for a, _, _, is_real in items])
            augmented = real if split == "train" and self.data.get("augment_real") else None
            self.datasets[split] = LanguageBatches(
                torch.cat([a.normalized() for a, _, _, _ in items]),
                torch.cat([a.labels for a, _, _, _ in items]),
                torch.cat([torch.full((len(a),), i, dtype=torch.long) for a, i, _, _ in items]),
                augmented,
                self.data.augment,
                self.seed,
                real if split == "train" and self.domains else None,
            )
        if self.is_mix:
            self.train_weights = torch.tensor(
                sampling_weights([(a, w) for a, _, w, _ in parts["train"]]), dtype=torch.double
            )
            if self.unlabeled_slice is not None:  # not drawn until labelled
                self.train_weights[self.unlabeled_slice] = 0.0
        self._real.clear()

    def language_shares(self, real_weight: float = 1.0, per_domain: bool = False) -> torch.Tensor:
        """Each language's share of the training draws (its prior as the model sees it), a real
        sample's draw counting `real_weight` (the weight a loss gives it). `per_domain`: two
        rows, the shares among the rendered draws and among the real ones."""
        train = self.datasets["train"]
        weights = self.train_weights
        if weights is None:
            weights = torch.ones(len(train), dtype=torch.double)
        if per_domain and train.real is not None:
            rows = [torch.where(train.real, 0.0, weights), torch.where(train.real, weights, 0.0)]
            return torch.stack([self._shares(train.languages, w) for w in rows])
        if real_weight != 1.0 and train.real is not None:
            weights = torch.where(train.real, weights * real_weight, weights)
        return self._shares(train.languages, weights)

    def _shares(self, languages: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        shares = torch.bincount(languages, weights=weights, minlength=len(self.languages))
        return (shares / shares.sum().clamp_min(1e-12)).float()

    @property
    def is_mix(self) -> bool:
        return self.data.kind == "mix"

    def _real_splits(self, source: MixSource) -> dict[str, DigitArrays]:
        """A real source's splits, read and normalized once per data module."""
        key = (source.language, source.name)
        if key not in self._real:
            from xlvision.data.real import load_real_splits

            self._real[key] = load_real_splits(
                source.source, self.seed, Path(self.data_dir), self.data.get("real_per_class")
            )
        return self._real[key]

    def _shot_indices(self, arrays: DigitArrays, language: Language, name: str) -> torch.Tensor:
        """The k shots' indices in `arrays` (every index without a k-shot budget)."""
        shots = self.data.shots_per_class
        if shots is None:
            return torch.arange(len(arrays))
        where = f"{language.code} {name} train"
        return sample_shots(arrays.labels, shots, self.seed, language.num_classes, where)

    def _shots(self, arrays: DigitArrays, language: Language, name: str) -> DigitArrays:
        if self.data.shots_per_class is None:
            return arrays
        return arrays.subset(self._shot_indices(arrays, language, name))

    def _unlabeled_pool(self, language: Language, sources: list[MixSource] | None) -> DigitArrays:
        """Up to `unlabeled.size` real training images of `language` that are not its k shots,
        drawn by the seed; their labels are replaced by -1 here, so nothing downstream can
        read one."""
        real = [s for s in sources or [] if s.is_real and s.weight > 0]
        if not real:
            raise DataError(
                f"finetune.unlabeled needs a real training source of {language.code}: list one "
                f"under data.sources.{language.code} with a weight > 0 (data=mix)"
            )
        rest = []
        for source in real:
            train = self._real_splits(source)["train"]
            keep = torch.ones(len(train), dtype=torch.bool)
            keep[self._shot_indices(train, language, source.name)] = False
            rest.append(train.images[keep])
        images = torch.cat(rest)
        if not len(images):
            raise DataError(
                f"finetune.unlabeled: every {language.code} training image is labelled "
                "(set data.shots_per_class to keep the rest unlabeled)"
            )
        generator = torch.Generator().manual_seed(self.seed)
        chosen = torch.randperm(len(images), generator=generator)[: self.unlabeled.size]
        images = images[chosen.sort().values]
        return DigitArrays(images, torch.full((len(images),), -1, dtype=torch.long))

    def _language_splits(self, language: Language, sources: list[MixSource] | None):
        """([(train arrays, weight, real)], {split: {source name: arrays}}) of one language.

        A k-shot budget applies to real sources only (glyphs are free), and then validation is
        on glyphs: no real label beyond the k per class is used for any choice.
        """
        real_kind = self.data.kind == "real"
        if sources is None:
            splits = load_splits(self.data, language, self.seed, self.data_dir)
            train = [(self._shots(splits["train"], language, self.data.kind), 1.0, real_kind)]
            return train, {s: {self.data.kind: splits[s]} for s in ("val", "test")}
        # Test on every real source (glyphs where there is none); validate on the real sources
        # trained on, else on glyphs: a weight-0 real source is for testing only.
        kshot = self.data.shots_per_class is not None
        tested = {"val": [s for s in sources if s.is_real and s.weight > 0 and not kshot]}
        tested["test"] = [s for s in sources if s.is_real]
        train, evaluation = [], {"val": {}, "test": {}}
        for source in sources:
            if source.is_real:
                splits = self._real_splits(source)
            else:
                wanted = ("train",) * (source.weight > 0)
                wanted += tuple(s for s in ("val", "test") if not tested[s])
                splits = glyph_splits(self.data, language, self.seed, wanted)
            if source.weight > 0:
                arrays = (
                    self._shots(splits["train"], language, source.name)
                    if source.is_real
                    else splits["train"]
                )
                train.append((arrays, source.weight, source.is_real))
            for split in ("val", "test"):
                if source in tested[split] or (not source.is_real and not tested[split]):
                    evaluation[split][source.name] = splits[split]
        return train, evaluation

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        """Training order follows the seed. Evaluation order is one fixed permutation, so a
        run limited to a few eval batches still sees every language."""
        dataset = self.datasets[split]
        seed = self.seed if shuffle else EVAL_ORDER_SEED
        draws = None
        if shuffle and self.data.shots_per_class is not None:  # k-shot: a few steps is no epoch
            training = sum(lang.code not in self.eval_only for lang in self.languages)
            draws = max(len(dataset), self.data.get("min_train_samples", 0) * training)
        generator = torch.Generator().manual_seed(seed)
        if shuffle and self.train_weights is not None:  # a mix: `epoch_size` draws if given
            draws = self.data.get("epoch_size") or draws or len(dataset)
            order = WeightedRandomSampler(self.train_weights, draws, generator=generator)
        else:
            order = RandomSampler(dataset, num_samples=draws, generator=generator)
        batches = BatchSampler(order, self.data.batch_size, drop_last=False)
        trainer = self.trainer
        if trainer is not None and trainer.world_size > 1:
            batches = RankShare(batches, trainer.global_rank, trainer.world_size, shuffle)
        if shuffle:
            batches = SeededEpochs(batches, [generator, dataset.generator], seed)
        return DataLoader(
            dataset,
            batch_size=None,
            sampler=batches,
            num_workers=self.data.num_workers,
            persistent_workers=self.data.num_workers > 0,
            pin_memory=bool(self.data.get("pin_memory", False)),
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)
