"""data=mix: several sources per language in one run, drawn by weight, scored per source."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from xlvision.config.errors import ConfigError
from xlvision.data.datamodule import DigitDataModule, evaluation_sets
from xlvision.data.errors import DataError
from xlvision.languages import load_language
from xlvision.languages.registry import language_from_mapping
from xlvision.stages.runner import run_stage
from xlvision.stages.train import train


def write_digits(path, count: int, seed: int, dark_ink: bool = False) -> None:
    """An npz of blocky fake 'handwriting': a bar whose position encodes the label."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 10
    images = np.zeros((count, 32, 32), dtype=np.uint8)
    for i, label in enumerate(labels):
        images[i, 4 + 2 * label : 8 + 2 * label, 6 : 26 - rng.integers(0, 4)] = 255
    if dark_ink:
        images = 255 - images
    np.savez(path, images=images, labels=labels.astype(np.int64))


def npz_source(name: str, weight: float = 1.0) -> str:
    return (
        f"{{name: {name}, weight: {weight}, source: {{format: npz, path: {name}.npz, "
        "arrays: {images: images, labels: labels}}}"
    )


@pytest.fixture
def data_dir(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    write_digits(folder / "scans_a.npz", 400, 0)
    write_digits(folder / "scans_b.npz", 200, 1, dark_ink=True)
    return folder


def mix_config(make_config, data_dir, sources: str, *overrides: str):
    return make_config(
        "data=mix",
        "language=[kn,th]",
        f"paths.data_dir={data_dir}",
        f"data.sources={sources}",
        *overrides,
    )


def datamodule(cfg) -> DigitDataModule:
    languages = [language_from_mapping(node) for node in cfg.language.values()]
    data = DigitDataModule(cfg.data, languages, cfg.seed, cfg.paths.data_dir)
    data.setup()
    return data


def test_sources_are_drawn_by_weight_not_size(make_config, data_dir):
    kn = f"[{npz_source('scans_a', 3)}, {npz_source('scans_b', 1)}]"
    sources = f"{{kn: {kn}, th: [glyphs]}}"
    cfg = mix_config(make_config, data_dir, sources, "data.glyph_weight=0", "data.epoch_size=4000")
    data = datamodule(cfg)
    # 400 and 200 examples: 70 % / 10 % / 20 % to train / val / test of each file.
    assert data.counts["kn"] == {"train": 280 + 140, "val": 40 + 20, "test": 80 + 40}
    assert data.counts["th"]["train"] == 40 * 10  # glyphs, debug=fast: 40 per class
    # Weights 3 (kn scans_a), 1 (kn scans_b), 0 (kn glyphs: glyph_weight), 1 (th glyphs):
    # scans_a is 3/5 of the draws, though it has fewer examples than th's glyphs.
    drawn = torch.cat([b[2] for b in data.train_dataloader()])
    assert len(drawn) == 4000
    assert float((drawn == 1).float().mean()) == pytest.approx(0.2, abs=0.025)
    weights = data.train_weights
    assert float(weights[:280].sum() / weights.sum()) == pytest.approx(0.6)


def test_glyph_weight_balances_glyphs_against_real_sources(make_config, data_dir):
    sources = f"{{kn: [{npz_source('scans_a', 2)}]}}"
    cfg = mix_config(make_config, data_dir, sources, "data.epoch_size=30000")
    data = datamodule(cfg)
    drawn = torch.cat([b[2] for b in data.train_dataloader()])
    # kn: scans_a (2) + glyphs (1); th: glyphs (1): th gets a quarter of the draws.
    assert float((drawn == 1).float().mean()) == pytest.approx(0.25, abs=0.015)
    # Evaluation is on the real splits where a language has them, glyphs otherwise.
    assert data.counts["kn"]["test"] == 80
    assert data.counts["th"]["test"] == 20 * 10


def test_a_language_scored_on_several_sources_gets_a_breakdown(make_config, data_dir):
    sources = f"{{kn: [{npz_source('scans_a')}, {npz_source('scans_b')}]}}"
    cfg = mix_config(make_config, data_dir, sources, "trainer.limit_test_batches=1.0")
    metrics, _ = run_stage(train, cfg)
    a, b = metrics["test/kn@scans_a/acc"], metrics["test/kn@scans_b/acc"]
    assert metrics["test/kn/acc"] == pytest.approx((80 * a + 40 * b) / 120, abs=1e-4)
    assert "test/th@glyphs/acc" not in metrics  # one source: no breakdown
    sets = evaluation_sets(cfg.data, load_language("kn"), cfg.seed, data_dir)
    assert {name: len(s) for name, s in sets.items()} == {"scans_a": 80, "scans_b": 40}


@pytest.mark.parametrize(
    ("sources", "message"),
    [
        ("{zh: [usps]}", "data.sources.zh: language 'zh' is not in this run (language=kn,th)"),
        ("{kn: [usps]}", "data.sources.kn[0]: source 'usps' is language 'en', not 'kn'"),
        ("{kn: [nosuch]}", "data.sources.kn[0].preset='nosuch' is not allowed: one of"),
        ("{kn: [glyphs, glyphs]}", "data.sources.kn: source 'glyphs' is listed twice"),
        ("{kn: [{preset: glyphs, weight: -1}]}", "data.sources.kn[0].weight=-1 is not allowed"),
        ("{kn: [{preset: glyphs, weight: nan}]}", "data.sources.kn[0].weight=nan is not allowed"),
        ("{kn: [{preset: glyphs, weight: inf}]}", "data.sources.kn[0].weight=inf is not allowed"),
        ("{kn: [{preset: glyphs, wieght: 1}]}", "data.sources.kn[0].wieght is not allowed"),
        ("{kn: [{preset: glyphs, weight: 0}]}", "data.sources.kn: no source with a weight > 0"),
    ],
)
def test_bad_sources_fail_in_one_line_naming_the_key(make_config, data_dir, sources, message):
    cfg = mix_config(make_config, data_dir, sources)
    with pytest.raises(DataError) as err:
        datamodule(cfg)
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_a_missing_file_fails_before_any_training(make_config, data_dir, tmp_path):
    sources = f"{{kn: [{npz_source('missing')}]}}"
    cfg = mix_config(make_config, data_dir, sources)
    with pytest.raises(DataError, match=r"missing\.npz: file not found"):
        run_stage(train, cfg)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_bad_mix_values_fail_at_composition(make_config):
    with pytest.raises(ConfigError, match="data.glyph_weight=-1"):
        make_config("data=mix", "data.glyph_weight=-1")
    with pytest.raises(ConfigError, match="data.epoch_size=0"):
        make_config("data=mix", "data.epoch_size=0")


def test_a_weight_zero_real_source_is_for_testing_only(make_config, data_dir):
    sources = f"{{kn: [{npz_source('scans_a', 0)}]}}"
    data = datamodule(mix_config(make_config, data_dir, sources))
    # Trained and validated on glyphs (no real label is used for a choice), tested on scans_a.
    assert data.counts["kn"] == {"train": 400, "val": 100, "test": 80}


@pytest.mark.parametrize(
    ("sources", "line"),
    [
        (
            "{zh: [usps]}",
            "xlv-train: data.sources.zh: language 'zh' is not in this run (language=kn,th)",
        ),
        (
            "{kn: [{name: scans, source: {format: npz, path: nowhere.npz, arrays: {images: x, "
            "labels: y}}}]}",
            "xlv-train: {data}/nowhere.npz: file not found",
        ),
    ],
)
def test_cli_mix_mistakes_end_in_one_line_before_training(data_dir, tmp_path, sources, line):
    from conftest import run_in_process

    result = run_in_process(
        "xlv-train",
        "data=mix",
        "language=[kn,th]",
        "debug=fast",
        "data.real_per_class=null",
        f"paths.data_dir={data_dir}",
        f"data.sources={sources}",
        "hydra.run.dir=run",
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == line.format(data=data_dir)
    assert "Traceback" not in result.stderr
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert record["status"] == "failed"
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_kshot_takes_k_real_examples_and_keeps_every_glyph(make_config, data_dir):
    sources = f"{{kn: [{npz_source('scans_a')}]}}"
    cfg = mix_config(make_config, data_dir, sources, "data.shots_per_class=3")
    data = datamodule(cfg)
    # 3 real per class + kn's 400 glyphs; th: its 400 glyphs. Validation on glyphs only (no
    # real label beyond the k shots); the test is still kn's real test split.
    assert data.counts["kn"] == {"train": 30 + 400, "val": 100, "test": 80}
    assert data.counts["th"] == {"train": 400, "val": 100, "test": 200}


def test_real_examples_are_redrawn_with_the_glyph_augmentation(make_config, data_dir):
    sources = f"{{kn: [{npz_source('scans_a')}]}}"
    cfg = mix_config(make_config, data_dir, sources, "data.augment_real=true")
    train = datamodule(cfg).datasets["train"]
    real = torch.nonzero(train.augmented).flatten()
    glyphs = torch.nonzero(~train.augmented).flatten()
    assert len(real) == 280 and len(glyphs) == 800
    first, second = train[real[:50]][0], train[real[:50]][0]
    assert not torch.equal(first, second)  # a fresh draw each time
    assert torch.equal(train[glyphs[:50]][0], train.images[glyphs[:50]])  # glyphs untouched
    assert torch.equal(train[real[:50]][1], train.labels[real[:50]])


def test_augment_digits_with_no_variation_returns_the_digit():
    from omegaconf import OmegaConf

    from xlvision.config.schema import AugmentConf
    from xlvision.data.augment import augment_digits

    digits = torch.zeros(4, 28, 28)
    digits[:, 8:20, 12:16] = 1.0
    ranges = ("rotation", "shear", "aspect", "translation", "elastic_alpha", "noise")
    still = OmegaConf.structured(
        AugmentConf(**dict.fromkeys(ranges, 0.0), stroke=[0.0, 0.0], blur=[0.0, 0.0])
    )
    gen = torch.Generator().manual_seed(0)
    out = augment_digits(digits, still, gen)
    # Only the ±10 % scale jitter remains: same ink centre, ink mass within 25 %.
    assert out.shape == digits.shape
    rows = torch.arange(28.0).view(1, 28, 1)
    centre = (out * rows).sum((1, 2)) / out.sum((1, 2))
    assert torch.allclose(centre, torch.full((4,), 13.5), atol=0.6)
    assert torch.allclose(out.sum((1, 2)), digits.sum((1, 2)), rtol=0.25)
    moved = augment_digits(digits, OmegaConf.structured(AugmentConf()), gen)
    assert (moved - digits).abs().mean() > 0.02  # the default ranges change the digit


def test_leave_real_out_tests_a_real_source_without_training_on_it(make_config, data_dir):
    sources = f"{{kn: [{npz_source('scans_a', 2)}], th: [glyphs]}}"
    data = datamodule(mix_config(make_config, data_dir, sources, "data.leave_real_out=[kn]"))
    # As a weight-0 source: trained and validated on kn's glyphs, tested on scans_a.
    assert data.counts["kn"] == {"train": 400, "val": 100, "test": 80}
    kept = datamodule(mix_config(make_config, data_dir, sources))
    assert kept.counts["kn"] == {"train": 400 + 280, "val": 40, "test": 80}


@pytest.mark.parametrize(
    ("left_out", "message"),
    [
        ("[zh]", "data.leave_real_out: language 'zh' is not in this run (language=kn,th)"),
        ("[th]", "data.leave_real_out: 'th' has no real source in data.sources.th"),
    ],
)
def test_leave_real_out_names_a_run_language_with_real_data(
    make_config, data_dir, left_out, message
):
    sources = f"{{kn: [{npz_source('scans_a')}]}}"
    cfg = mix_config(make_config, data_dir, sources, f"data.leave_real_out={left_out}")
    with pytest.raises(DataError) as err:
        datamodule(cfg)
    assert str(err.value) == message


def test_batches_carry_the_real_mask_only_when_asked(make_config, data_dir):
    sources = f"{{kn: [{npz_source('scans_a', 1)}], th: [glyphs]}}"
    cfg = mix_config(make_config, data_dir, sources, "data.epoch_size=2000")
    plain = datamodule(cfg)
    assert len(next(iter(plain.train_dataloader()))) == 3
    languages = [language_from_mapping(node) for node in cfg.language.values()]
    marked = DigitDataModule(cfg.data, languages, cfg.seed, cfg.paths.data_dir, domains=True)
    marked.setup()
    batches = list(marked.train_dataloader())
    real = torch.cat([b[3] for b in batches])
    language = torch.cat([b[2] for b in batches])
    # kn draws scans_a (weight 1) and its glyphs (1); th its glyphs (1): a third of the draws is
    # real, all of them kn's.
    assert float(real.float().mean()) == pytest.approx(1 / 3, abs=0.03)
    assert bool((language[real] == 0).all())
    # A loss that ignores real samples sees a prior over the glyph draws only: uniform.
    assert marked.language_shares(0.0).tolist() == pytest.approx([0.5, 0.5])
    assert marked.language_shares(1.0).tolist() == pytest.approx([2 / 3, 1 / 3])
