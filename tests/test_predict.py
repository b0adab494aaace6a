"""xlv-predict and xlv-eval with a small bundle trained here: a shared backbone, a head per
language and a language-ID head, the multihead layout of xlv-integrate."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from PIL import Image, ImageDraw, ImageFont

from xlvision.bundle.file import load_bundle, save_bundle
from xlvision.bundle.manifest import digit_preprocessing, language_record, model_input
from xlvision.bundle.model import LID_HEAD, UnifiedModel
from xlvision.bundle.scripts import pages, pooled_script
from xlvision.cli import eval as eval_cli
from xlvision.cli import predict as predict_cli
from xlvision.config.compose import compose_config
from xlvision.config.errors import ConfigError
from xlvision.config.schema import AugmentConf
from xlvision.data.datamodule import glyph_splits
from xlvision.data.glyphs import generate_glyph_digits
from xlvision.data.real import load_real_splits
from xlvision.languages import load_language
from xlvision.models.registry import build_classifier
from xlvision.stages.evaluate import evaluate
from xlvision.stages.runner import run_stage

CODES = ["kn", "zh", "hi"]
SPEC = {"name": "net", "channels": [8, 16], "hidden": 64, "dropout": 0.0}
INDIVIDUAL_ACC = 0.8
MILD = OmegaConf.structured(
    AugmentConf(rotation=3.0, shear=0.05, elastic_alpha=0.3, noise=0.02, blur=[0.0, 0.3])
)


def train_shared(epochs: int = 12, per_class: int = 40) -> torch.nn.Module:
    """Digit heads and the `_lid` head trained jointly on one backbone, on mildly augmented glyphs.

    One thread: on two busy cores, two threads made each of these small steps 5× slower.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        data = [
            generate_glyph_digits(load_language(c), "train", per_class, MILD, seed)
            for seed, c in enumerate(CODES)
        ]
        x = torch.cat([d.normalized() for d in data])
        y = torch.cat([d.labels for d in data])
        lang = torch.cat([torch.full((len(d),), i) for i, d in enumerate(data)])
        model = build_classifier(SPEC, {**{c: 10 for c in CODES}, LID_HEAD: len(CODES)})
        optimizer = torch.optim.Adam(model.parameters(), 5e-3)
        for _ in range(epochs):
            for index in torch.randperm(len(y)).split(64):
                features = model.backbone(x[index])
                loss = F.cross_entropy(model.heads[LID_HEAD](features), lang[index])
                for i, code in enumerate(CODES):
                    mine = lang[index] == i
                    if mine.any():
                        logits = model.heads[code](features[mine])
                        loss = loss + F.cross_entropy(logits, y[index][mine])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval()


def shared_bundle(folder: Path) -> Path:
    """A multihead bundle of one freshly trained shared model over `CODES`."""
    shared = train_shared()
    model = UnifiedModel({"shared": shared}, {c: "shared" for c in CODES}, CODES, "shared")
    return save_shared(folder / "digits.safetensors", model)


def save_shared(path: Path, model: UnifiedModel) -> Path:
    """`model` (one member `shared` over `CODES`) as a multihead bundle at `path`."""
    return save_bundle(
        path,
        model,
        member_specs={"shared": SPEC},
        languages={c: language_record(c) for c in CODES},
        preprocessing=digit_preprocessing(),
        integration={"method": "multihead", "params": {}},
        metrics={"individual": {c: {"acc": INDIVIDUAL_ACC} for c in CODES}},
    )


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return shared_bundle(tmp_path_factory.mktemp("bundle"))


# (language, digit, font px, canvas (w, h), ink, paper, file name): sizes and both polarities.
SCANS = [
    ("kn", 7, 30, (40, 44), 255, 0, "kn7_small_bright.png"),
    ("kn", 3, 150, (230, 200), 0, 255, "kn3_large_dark.png"),
    ("zh", 7, 60, (90, 80), (20, 30, 120), (245, 240, 225), "zh7_colour.jpg"),
    ("zh", 4, 44, (64, 64), 230, 25, "zh4_bright.bmp"),
    ("hi", 5, 100, (120, 160), 10, 240, "hi5_tall_dark.png"),
    ("hi", 8, 40, (70, 50), (0, 0, 0, 255), (0, 0, 0, 0), "hi8_transparent.png"),
]


def write_scans(folder) -> dict[str, tuple[str, int]]:
    """Digits drawn with a training font of their language: {file name: (language, digit)}."""
    folder.mkdir(parents=True, exist_ok=True)
    expected = {}
    for code, digit, px, size, ink, paper, name in SCANS:
        language = load_language(code)
        font = ImageFont.truetype(str(language.font_paths("train")[0]), px)
        mode = {int: "L", 3: "RGB", 4: "RGBA"}[len(ink) if isinstance(ink, tuple) else int]
        image = Image.new(mode, size, paper)
        centre = (size[0] // 2, size[1] // 2)
        ImageDraw.Draw(image).text(centre, language.digits[digit], fill=ink, font=font, anchor="mm")
        image.save(folder / name)
        expected[name] = (code, digit)
    return expected


def cli_run(monkeypatch, capsys, prog: str, main, *args: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of the console script `prog args…`, run in this process."""
    monkeypatch.setattr(sys, "argv", [prog, *args])
    code = 0
    try:
        main()
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def predict_cli_run(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `xlv-predict args…`, run in this process."""
    return cli_run(monkeypatch, capsys, "xlv-predict", predict_cli.main, *args)


def test_predict_reads_a_folder_of_any_size_and_polarity(bundle, tmp_path, monkeypatch, capsys):
    expected = write_scans(tmp_path / "scans")
    output = tmp_path / "preds.json"
    code, out, err = predict_cli_run(
        monkeypatch,
        capsys,
        f"bundle={bundle}",
        f"input={tmp_path / 'scans'}",
        "display=[en,zh,hi]",
        f"output={output}",
    )
    assert code == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == len(SCANS)
    records = json.loads(output.read_text())
    got = {r["path"].rsplit("/", 1)[1]: (r["language"], r["digit"]) for r in records}
    assert got == expected
    by_name = {r["path"].rsplit("/", 1)[1]: r for r in records}
    kannada_seven = by_name["kn7_small_bright.png"]
    assert kannada_seven["names"] == {"en": "seven", "zh": "七", "hi": "सात"}
    assert kannada_seven["language_name"] == "Kannada"
    assert 0 < kannada_seven["confidence"] <= kannada_seven["digit_prob"] <= 1
    line = next(x for x in lines if "kn7_small_bright.png" in x)
    assert "  7  kn Kannada  " in line and line.endswith("seven  七  सात")


def test_predict_with_a_known_language_skips_routing(bundle, tmp_path, monkeypatch, capsys):
    write_scans(tmp_path / "scans")
    output = tmp_path / "preds.csv"
    code, _, err = predict_cli_run(
        monkeypatch,
        capsys,
        f"bundle={bundle}",
        f"input={tmp_path / 'scans' / 'kn*.png'}",
        "language=kn",
        "display=[kn,th]",
        f"output={output}",
    )
    assert code == 0, err
    with output.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert sorted((r["path"].rsplit("/", 1)[1], r["digit"]) for r in rows) == [
        ("kn3_large_dark.png", "3"),
        ("kn7_small_bright.png", "7"),
    ]
    assert {r["language_prob"] for r in rows} == {"1.0"}
    seven = next(r for r in rows if r["digit"] == "7")
    assert (seven["name_kn"], seven["name_th"]) == ("ಏಳು", "เจ็ด")  # th: from the registry


def test_predict_mistakes_end_with_one_line(bundle, tmp_path, monkeypatch, capsys):
    write_scans(tmp_path / "scans")
    scans = f"input={tmp_path / 'scans'}"
    code, _, err = predict_cli_run(monkeypatch, capsys, f"bundle={bundle}", scans, "display=[xx]")
    assert code == 2 and err.count("\n") == 1
    assert "display='xx' is not allowed" in err and "kn, zh, hi" in err
    code, _, err = predict_cli_run(monkeypatch, capsys, f"bundle={tmp_path}/no.safetensors", scans)
    assert (
        code == 1 and err == f"xlv-predict: bundle={tmp_path}/no.safetensors: no such bundle file\n"
    )
    code, _, err = predict_cli_run(
        monkeypatch, capsys, f"bundle={bundle}", f"input={tmp_path}/empty*"
    )
    assert code == 1 and "no PNG, JPEG or BMP images found" in err
    code, _, err = predict_cli_run(monkeypatch, capsys, f"bundle={bundle}", scans, "language=ar")
    assert code == 2 and "language='ar' is not allowed: one of the bundle's kn, zh, hi" in err
    code, _, err = predict_cli_run(
        monkeypatch, capsys, f"bundle={bundle}", scans, "output=preds.txt"
    )
    assert code == 2 and "output='preds.txt'" in err


def router_less(bundle: Path, path: Path) -> Path:
    """`bundle` again at `path`, without its router: it reads only a language it is given."""
    model, manifest = load_bundle(bundle)
    return save_bundle(
        path,
        UnifiedModel(dict(model.members), model.routes, model.languages),
        member_specs={"shared": SPEC},
        languages={r["code"]: r for r in manifest["languages"]},
        preprocessing=manifest["preprocessing"],
        integration=manifest["integration"],
        metrics=manifest["metrics"],
    )


def test_a_bundle_without_router_needs_the_language(bundle, tmp_path, monkeypatch, capsys):
    plain = router_less(bundle, tmp_path / "plain.safetensors")
    write_scans(tmp_path / "scans")
    code, _, err = predict_cli_run(
        monkeypatch, capsys, f"bundle={plain}", f"input={tmp_path}/scans"
    )
    assert code == 2 and "this bundle cannot identify languages" in err
    metrics, _ = run_stage(evaluate, eval_config(tmp_path, f"bundle={plain}", "language=[hi]"))
    assert "test/hi/acc" in metrics and "test/hi/routed_acc" not in metrics


def eval_config(tmp_path, *overrides: str):
    return compose_config(
        [
            f"paths.output_dir={tmp_path / 'eval'}",
            f"paths.cache_dir={tmp_path / 'cache'}",
            "data.test_per_class=10",
            *overrides,
        ],
        config_name="eval",
    )


def test_eval_writes_metrics_and_normalized_accuracy(bundle, tmp_path):
    cfg = eval_config(tmp_path, f"bundle={bundle}")
    metrics, _ = run_stage(evaluate, cfg)
    record = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert record["status"] == "completed" and record["stage"] == "eval"
    assert record["metrics"] == pytest.approx(metrics)
    model, manifest = load_bundle(bundle)
    for i, code in enumerate(CODES):
        test = glyph_splits(cfg.data, load_language(code), cfg.seed, ("test",))["test"]
        x = model_input(test.images, manifest["preprocessing"])
        with torch.no_grad():
            acc = (model(x, code).argmax(dim=1) == test.labels).float().mean().item()
            routed = model.predict(x)
        assert metrics[f"test/{code}/acc"] == pytest.approx(acc)
        assert metrics[f"test/{code}/normalized_acc"] == pytest.approx(acc / INDIVIDUAL_ACC)
        lid = (routed["language"] == i).float().mean().item()
        assert metrics[f"test/{code}/lid_acc"] == pytest.approx(lid)
        routed_acc = (routed["digit"] == test.labels).float().mean().item()
        assert metrics[f"test/{code}/routed_acc"] == pytest.approx(routed_acc)
        assert 0 <= metrics[f"test/{code}/f1"] <= 1 and 0 <= metrics[f"test/{code}/recall"] <= 1
        assert sum(map(sum, record["confusion"][f"test/{code}"])) == len(test)
    mean = sum(metrics[f"test/{c}/acc"] for c in CODES) / len(CODES)
    assert metrics["test/mean/acc"] == pytest.approx(mean)
    assert metrics["bundle_bytes"] == bundle.stat().st_size


def test_eval_takes_a_subset_of_the_bundle_languages(bundle, tmp_path):
    metrics, _ = run_stage(evaluate, eval_config(tmp_path, f"bundle={bundle}", "language=[zh]"))
    assert {k.split("/")[1] for k in metrics if k.startswith("test/")} == {"zh", "mean"}
    with pytest.raises(ConfigError, match="language='ar' is not allowed"):
        run_stage(evaluate, eval_config(tmp_path / "b", f"bundle={bundle}", "language=[ar]"))


def test_eval_refuses_a_damaged_bundle_in_one_line(bundle, tmp_path, monkeypatch, capsys):
    damaged = tmp_path / "damaged.safetensors"
    data = bytearray(bundle.read_bytes())
    data[-5] ^= 0xFF
    damaged.write_bytes(bytes(data))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["xlv-eval", f"bundle={damaged}"])
    with pytest.raises(SystemExit) as exit_:
        eval_cli.main()
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == f"xlv-eval: {damaged}: checksum mismatch: " + (
        "the file is damaged or was modified"
    )
    (record,) = tmp_path.glob("outputs/runs/*/*/metrics.json")
    assert json.loads(record.read_text())["status"] == "failed"


def test_eval_of_a_classifier_checkpoint_matches_the_same_weights_in_a_bundle(bundle, tmp_path):
    from xlvision.models.checkpoint import save_classifier

    model, _ = load_bundle(bundle)
    ckpt = save_classifier(tmp_path / "model.ckpt", model.members["shared"], SPEC)
    from_bundle, _ = run_stage(evaluate, eval_config(tmp_path / "a", f"bundle={bundle}"))
    from_ckpt, _ = run_stage(evaluate, eval_config(tmp_path / "b", f"checkpoint={ckpt}"))
    for code in CODES:
        assert from_ckpt[f"test/{code}/acc"] == from_bundle[f"test/{code}/acc"]
    assert "test/kn/normalized_acc" not in from_ckpt  # no individual models to compare with
    assert "test/kn/routed_acc" not in from_ckpt  # a checkpoint has no router
    with pytest.raises(ConfigError, match="checkpoint="):
        run_stage(evaluate, eval_config(tmp_path / "c"))


def write_test_only_file(path, codes: list[str], per_class: int = 8) -> dict[str, torch.Tensor]:
    """An npz holding only a test split (no train split to carve from), mixing `codes`."""
    import numpy as np

    images, labels, languages = [], [], []
    for i, code in enumerate(codes):
        test = generate_glyph_digits(load_language(code), "train", per_class, MILD, 100 + i)
        images.append(test.images)
        labels.append(test.labels)
        languages.append(torch.full((len(test),), i))
    arrays = {"x_test": torch.cat(images), "y_test": torch.cat(labels)}
    np.savez(path, **{k: v.numpy() for k, v in arrays.items()})
    return {**arrays, "language": torch.cat(languages)}


def test_eval_reads_a_file_with_only_a_test_split_script_given(bundle, tmp_path):
    arrays = write_test_only_file(tmp_path / "kn_test.npz", ["kn"])
    cfg = eval_config(
        tmp_path,
        f"bundle={bundle}",
        "data=npz",
        f"data.source.path={tmp_path / 'kn_test.npz'}",
        "data.source.arrays={test: {images: x_test, labels: y_test}}",
        "language=[kn]",
    )
    metrics, artifacts = run_stage(evaluate, cfg)
    model, manifest = load_bundle(bundle)
    source = {**OmegaConf.to_container(cfg.data.source), "language": "kn"}
    test = load_real_splits(source, 0, tmp_path)["test"]  # normalized like any real file
    assert torch.equal(test.labels, arrays["y_test"])
    x = model_input(test.images, manifest["preprocessing"])
    with torch.no_grad():
        acc = (model(x, "kn").argmax(1) == test.labels).float().mean().item()
        routed = (model.predict(x)["digit"] == test.labels).float().mean().item()
    assert metrics["test/kn/acc"] == pytest.approx(acc)
    assert metrics["test/kn/routed_acc"] == pytest.approx(routed)
    assert artifacts["data_counts"] == {"kn": {"test": 80}}


def test_eval_of_a_file_of_unknown_scripts_lets_the_bundle_route(bundle, tmp_path):
    write_test_only_file(tmp_path / "mixed.npz", ["kn", "zh"])
    cfg = eval_config(
        tmp_path,
        f"bundle={bundle}",
        "data=npz",
        f"data.source.path={tmp_path / 'mixed.npz'}",
        "data.source.arrays={test: {images: x_test, labels: y_test}}",
    )
    metrics, artifacts = run_stage(evaluate, cfg)
    assert set(metrics) >= {"test/any/acc", "test/any/recall", "test/any/f1"}
    assert metrics["test/any/acc"] > 0.5
    shares = artifacts["named_languages"]
    assert sum(shares.values()) == pytest.approx(1.0)
    assert shares["kn"] + shares["zh"] > 0.8  # the router names the scripts in the file
    assert artifacts["data_counts"] == {"any": {"test": 160}}


def test_training_on_a_test_only_file_fails_in_one_line(tmp_path):
    from xlvision.data.errors import DataError
    from xlvision.stages.train import train

    write_test_only_file(tmp_path / "kn_test.npz", ["kn"])
    cfg = compose_config(
        [
            f"paths.output_dir={tmp_path / 'run'}",
            "data=npz",
            "language=kn",
            f"data.source.path={tmp_path / 'kn_test.npz'}",
            "data.source.language=kn",
            "data.source.arrays={test: {images: x_test, labels: y_test}}",
        ]
    )
    with pytest.raises(DataError, match="language kn: its data have no train examples"):
        train(cfg)


def test_pooled_script_is_the_posterior_of_all_the_images_at_once():
    # Two images lean to script 1, one is sure of script 0: 0.3·0.3·0.9 < 0.7·0.7·0.1 is false,
    # 0.081 against 0.049, so script 0 explains the three best.
    probs = np.array([[0.3, 0.7], [0.3, 0.7], [0.9, 0.1]])
    index, posterior = pooled_script(probs)
    assert index == 0 and posterior == pytest.approx(0.081 / (0.081 + 0.049))
    # One image that gives script 1 no chance at all cannot veto it: the floor keeps it at 1e-6.
    probs = np.array([[0.01, 0.99]] * 4 + [[1.0, 0.0]])
    assert pooled_script(probs)[0] == 1
    with pytest.raises(ValueError, match="N ≥ 1"):
        pooled_script(np.zeros((0, 3)))


def test_pages_deal_every_image_once_by_the_seed():
    dealt = pages(23, 5, seed=3)
    assert [len(p) for p in dealt] == [5, 5, 5, 5, 3]
    assert sorted(np.concatenate(dealt).tolist()) == list(range(23))
    assert all((a == b).all() for a, b in zip(dealt, pages(23, 5, seed=3), strict=True))
    assert not (np.concatenate(dealt) == np.concatenate(pages(23, 5, seed=4))).all()


def test_eval_decides_the_script_once_per_page(bundle, tmp_path):
    cfg = eval_config(tmp_path, f"bundle={bundle}", "page_size=4")
    metrics, _ = run_stage(evaluate, cfg)
    assert metrics["page_size"] == 4
    model, manifest = load_bundle(bundle)
    for i, code in enumerate(CODES):
        test = glyph_splits(cfg.data, load_language(code), cfg.seed, ("test",))["test"]
        x = model_input(test.images, manifest["preprocessing"])
        with torch.no_grad():
            probs = model.script_probs(x).numpy()
            every = {c: model(x, c).argmax(dim=1) for c in CODES}
        named = np.empty(len(test), dtype=int)
        for page in pages(len(test), 4, cfg.seed):  # the log-posterior of each page, by hand
            named[page] = np.log(np.maximum(probs[page], 1e-6)).sum(axis=0).argmax()
        digits = torch.stack([every[CODES[j]][k] for k, j in enumerate(named)])
        assert metrics[f"test/{code}/page_lid_acc"] == pytest.approx((named == i).mean())
        assert metrics[f"test/{code}/page_lid_group_acc"] == pytest.approx((named == i).mean())
        assert metrics[f"test/{code}/page_routed_acc"] == pytest.approx(
            (digits == test.labels).float().mean().item()
        )
        # Four digits together are named at least as well as one at a time, here.
        assert metrics[f"test/{code}/page_lid_acc"] >= metrics[f"test/{code}/lid_acc"]
    mean = sum(metrics[f"test/{c}/page_routed_acc"] for c in CODES) / len(CODES)
    assert metrics["test/mean/page_routed_acc"] == pytest.approx(mean)
    off, _ = run_stage(evaluate, eval_config(tmp_path / "off", f"bundle={bundle}", "page_size=0"))
    assert not any("page" in k for k in off)
    with pytest.raises(ConfigError, match="page_size=-2 is not allowed"):
        run_stage(evaluate, eval_config(tmp_path / "bad", f"bundle={bundle}", "page_size=-2"))


def test_predict_one_script_pools_the_router_over_the_images(bundle, tmp_path, monkeypatch, capsys):
    expected = write_scans(tmp_path / "mixed")
    for code in CODES:  # a folder per script, with the same drawings
        (tmp_path / "scans" / code).mkdir(parents=True)
        for name, (language, _) in expected.items():
            if language == code:
                (tmp_path / "scans" / code / name).write_bytes(
                    (tmp_path / "mixed" / name).read_bytes()
                )
    output = tmp_path / "folder.json"
    code, out, err = predict_cli_run(
        monkeypatch,
        capsys,
        f"bundle={bundle}",
        f"input={tmp_path / 'scans'}",
        "one_script=folder",
        f"output={output}",
    )
    assert code == 0, err
    records = json.loads(output.read_text())
    assert len(records) == len(SCANS) == len(out.strip().splitlines())
    for record in records:
        folder, name = record["path"].rsplit("/", 2)[-2:]
        assert (record["language"], record["digit"]) == expected[name] and folder == record[
            "language"
        ]
    for code_ in CODES:
        same = [r["language_prob"] for r in records if f"/{code_}/" in r["path"]]
        assert len(set(same)) == 1 and 0.5 < same[0] <= 1  # the folder's pooled posterior
        assert f"2 images in {tmp_path / 'scans' / code_} read as one script: {code_}" in err
    # `all`: one script for every image given, even when they are of three scripts.
    code, out, err = predict_cli_run(
        monkeypatch, capsys, f"bundle={bundle}", f"input={tmp_path / 'mixed'}", "one_script=all"
    )
    assert code == 0, err
    assert len({line.split()[2] for line in out.strip().splitlines()}) == 1
    assert f"{len(SCANS)} images in the input read as one script" in err
    for args, message in (
        (["one_script=page"], "one_script='page' is not allowed: all, folder, or null"),
        (["one_script=all", "language=kn"], "null when language= names the script"),
    ):
        code, _, err = predict_cli_run(
            monkeypatch, capsys, f"bundle={bundle}", f"input={tmp_path / 'mixed'}", *args
        )
        assert code == 2 and err.count("\n") == 1 and message in err
