"""Every real set in shared/data read through its preset: counts and label histograms as in the
data README's table (histograms as the files hold them), and MNIST-like images after
normalization."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from xlvision.data.datamodule import DigitDataModule
from xlvision.data.real import load_real_splits
from xlvision.languages.registry import language_from_mapping
from xlvision.stages.runner import run_stage
from xlvision.stages.train import train

pytestmark = pytest.mark.slow

CONF_DATA = Path(__file__).resolve().parents[1] / "conf" / "data"
SHARED_DATA = Path(
    os.environ.get("XLV_DATA_DIR", Path(__file__).resolve().parents[1].parent / "shared" / "data")
)

EVEN_500, EVEN_100 = [500] * 10, [100] * 10
USPS_TRAIN = [1194, 1005, 731, 658, 652, 556, 664, 645, 542, 644]
USPS_TEST = [359, 264, 198, 166, 200, 160, 170, 147, 166, 177]
HODA = [2070, 2330, 1923, 2334, 2333, 2110, 2254, 2363, 2264, 2371]
TIBETAN = [901, 992, 939, 838, 919, 599, 679, 557, 845, 1021]

EXPECTED = {
    # preset: (train+val histogram, test histogram or None when carved, group count or None)
    "kannada_dig_mnist": ([1024] * 10, None, None),
    "usps": (USPS_TRAIN, USPS_TEST, None),
    "bengali_cmaterdb": (EVEN_500, EVEN_100, None),
    "devanagari_cmaterdb": ([250] * 10, [50] * 10, None),
    "telugu_cmaterdb": ([250] * 10, [50] * 10, None),
    "gurmukhi": (EVEN_100, [18, 16, 17, 17, 18, 18, 18, 18, 14, 20], None),
    "persian_hoda": (HODA, None, None),
    "chinese_numerals": (EVEN_500, None, 50),
    "tibetan": (TIBETAN, None, 15),
    "odia_tiny": ([3, 3, 3, 5, 5, 5, 5, 5, 5, 5], None, None),
}
MEAN_INK = {"chinese_numerals": (0.04, 0.09)}
"""Mean intensity in [0, 1]; MNIST's is 0.13. Chinese numerals are drawn with a fine pen, and
shrinking them 2–3× to 20 px leaves thin grey strokes."""
MNIST_LIKE = (0.09, 0.20)


@pytest.fixture(scope="module")
def data_dir() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA} (set XLV_DATA_DIR)")
    return SHARED_DATA


def histogram(labels: torch.Tensor) -> list[int]:
    return torch.bincount(labels, minlength=10).tolist()


@pytest.mark.parametrize("preset", sorted(EXPECTED))
def test_shared_set_through_its_preset(preset: str, data_dir: Path) -> None:
    source = OmegaConf.load(CONF_DATA / f"{preset}.yaml").source
    splits = load_real_splits(source, seed=0, data_dir=data_dir)
    train_hist, test_hist, group_count = EXPECTED[preset]
    train, val, test = splits["train"], splits["val"], splits["test"]
    if test_hist is None:
        everything = torch.cat([train.labels, val.labels, test.labels])
        assert histogram(everything) == train_hist
        assert abs(len(test) - 0.2 * len(everything)) <= 0.05 * len(everything)
    else:
        assert histogram(torch.cat([train.labels, val.labels])) == train_hist
        assert histogram(test.labels) == test_hist
    assert abs(len(val) - 0.1 * (len(train) + len(val))) <= 0.03 * len(train) + 1
    if group_count is not None:
        groups = [set(part.groups.tolist()) for part in (train, val, test)]
        assert len(set.union(*groups)) == group_count
        assert not (groups[0] & groups[1] or groups[0] & groups[2] or groups[1] & groups[2])

    images = torch.cat([train.images, val.images, test.images]).float() / 255
    low, high = MEAN_INK.get(preset, MNIST_LIKE)
    assert low <= float(images.mean()) <= high
    assert float(images[:, [0, -1], :].mean()) < 0.01
    weights = images.sum(dim=(1, 2))
    rows = (images.sum(dim=2) @ torch.arange(28.0)) / weights
    cols = (images.sum(dim=1) @ torch.arange(28.0)) / weights
    off_centre = torch.maximum((rows - 14).abs(), (cols - 14).abs())
    assert float(off_centre.median()) < 0.05 and float(off_centre.quantile(0.99)) < 0.25


def test_datamodule_reads_a_preset_from_the_composed_config(make_config, data_dir: Path) -> None:
    cfg = make_config("data=usps", f"paths.data_dir={data_dir}")
    languages = [language_from_mapping(node) for node in cfg.language.values()]
    data = DigitDataModule(cfg.data, languages, cfg.seed, cfg.paths.data_dir)
    data.setup()
    assert data.counts == {"en": {"train": 6562, "val": 729, "test": 2007}}
    images = data.datasets["train"].images
    assert images.shape[1:] == (1, 28, 28)
    assert abs(float(images.mean())) < 0.1 and abs(float(images.std()) - 1) < 0.1


def test_training_on_a_real_set_beats_chance(make_config, data_dir: Path) -> None:
    cfg = make_config("data=usps", f"paths.data_dir={data_dir}", "trainer.limit_train_batches=30")
    metrics, _ = run_stage(train, cfg)
    assert metrics["test/en/acc"] > 0.8  # 10 classes: chance is 0.1; this run scored 0.95
