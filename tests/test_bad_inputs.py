"""Every mistake a user can make on the command line ends in one line naming the key or the
file, with exit code 2 for a config error and 1 for a runtime one, and writes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli, run_in_process

from xlvision.config.errors import ConfigError

# (command line, exit code, the exact line on stderr)
CASES = [
    (
        ["xlv-train", "+foo=1"],
        2,
        "xlv-train: config error: foo='1' is not allowed: no such key in the config (a typo?)",
    ),
    (
        ["xlv-train", "+ckpt_path=runs/x/last.ckpt"],
        2,
        "xlv-train: config error: ckpt_path='runs/x/last.ckpt' is not allowed: no such key in the config (a typo?)",
    ),
    (
        ["xlv-train", "+trainer.foo=2"],
        2,
        "xlv-train: config error: trainer.foo='2' is not allowed: no such key in the config (a typo?)",
    ),
    (
        ["xlv-train", "optimizer.lr=-0.1"],
        2,
        "xlv-train: config error: optimizer.lr=-0.1 is not allowed: a number > 0",
    ),
    (
        ["xlv-train", "optimizer.lr=abc"],
        2,
        "xlv-train: config error: config=['optimizer.lr=abc'] is not allowed: optimizer.lr: Value 'abc' of type 'str' could not be converted to Float",
    ),
    (
        ["xlv-train", "optimizer.weight_decay=-1"],
        2,
        "xlv-train: config error: optimizer.weight_decay=-1.0 is not allowed: a number >= 0",
    ),
    (
        ["xlv-train", "optimizer.momentum=1.5"],
        2,
        "xlv-train: config error: optimizer.momentum=1.5 is not allowed: a number in [0, 1)",
    ),
    (
        ["xlv-train", "data.batch_size=0"],
        2,
        "xlv-train: config error: data.batch_size=0 is not allowed: an integer > 0",
    ),
    (
        ["xlv-train", "data.num_workers=-1"],
        2,
        "xlv-train: config error: data.num_workers=-1 is not allowed: an integer >= 0",
    ),
    (
        ["xlv-train", "data.shots_per_class=-5"],
        2,
        "xlv-train: config error: data.shots_per_class=-5 is not allowed: null (all data) or an integer > 0",
    ),
    (
        ["xlv-train", "trainer.max_epochs=0"],
        2,
        "xlv-train: config error: trainer.max_epochs=0 is not allowed: an integer > 0",
    ),
    (
        ["xlv-train", "trainer.limit_train_batches=0"],
        2,
        "xlv-train: config error: trainer.limit_train_batches=0 is not allowed: a fraction in (0.0, 1.0] or a batch count >= 1 (an int)",
    ),
    (
        ["xlv-train", "trainer.limit_val_batches=1.5"],
        2,
        "xlv-train: config error: trainer.limit_val_batches=1.5 is not allowed: a fraction in (0.0, 1.0] or a batch count >= 1 (an int)",
    ),
    (
        ["xlv-train", "trainer.gradient_clip_val=-1"],
        2,
        "xlv-train: config error: trainer.gradient_clip_val=-1.0 is not allowed: a number >= 0",
    ),
    (
        ["xlv-train", "seed=-1"],
        2,
        "xlv-train: config error: seed=-1 is not allowed: an integer >= 0",
    ),
    (
        ["xlv-train", "language=xx"],
        2,
        "xlv-train: config error: language='xx' is not allowed: one of ar, bn, bo, en, fa, gu, hi, km, kn, lo, ml, mn, mr, my, or, pa, si, ta, te, th, zh",
    ),
    (
        ["xlv-train", "language=[]"],
        2,
        "xlv-train: config error: language='' is not allowed: one of ar, bn, bo, en, fa, gu, hi, km, kn, lo, ml, mn, mr, my, or, pa, si, ta, te, th, zh",
    ),
    (
        ["xlv-train", "model=vgg"],
        2,
        "xlv-train: config error: model='vgg' is not allowed: one of net, resnet18, resnet34, resnet50",
    ),
    (
        ["xlv-train", "optimizer=nope"],
        2,
        "xlv-train: config error: optimizer='nope' is not allowed: one of adam, adamw, sgd",
    ),
    (
        ["xlv-train", "device=tpu9"],
        2,
        "xlv-train: config error: device='tpu9' is not allowed: one of auto, cpu, ddp_sim, gpu, mps, multi_gpu",
    ),
    (
        ["xlv-train", "device.precision=fp8"],
        2,
        "xlv-train: config error: device.precision='fp8' is not allowed: auto, 32-true, 16-mixed, bf16-mixed, bf16-true or 64-true",
    ),
    (
        ["xlv-train", "device.threads=0"],
        2,
        "xlv-train: config error: device.threads=0 is not allowed: null (PyTorch's default) or an integer > 0",
    ),
    (
        ["xlv-train", "data=nope"],
        2,
        "xlv-train: config error: data='nope' is not allowed: one of bengali_cmaterdb, chinese_numerals, csv, devanagari_cmaterdb, folder, glyphs, gurmukhi, idx, kannada_dig_mnist, mix, npy, npz, odia_tiny, persian_hoda, telugu_cmaterdb, tibetan, torchvision, usps",
    ),
    (
        ["xlv-train", "data.augment.monoline=1.5"],
        2,
        "xlv-train: config error: data.augment.monoline=1.5 is not allowed: a probability in [0, 1]",
    ),
    (
        ["xlv-train", "data.augment.scale=[1.1,0.7]"],
        2,
        "xlv-train: config error: data.augment.scale=[1.1, 0.7] is not allowed: [low, high] with 0 < low <= high",
    ),
    (
        ["xlv-train", "data.augment.blur=[0.5]"],
        2,
        "xlv-train: config error: data.augment.blur=[0.5] is not allowed: [low, high] with 0 <= low <= high",
    ),
    (
        ["xlv-train", "optimizer.lrr=0.1"],
        2,
        "xlv-train: config error: config=['optimizer.lrr=0.1'] is not allowed: optimizer.lrr: Key 'lrr' not in 'OptimizerConf'",
    ),
    (
        ["xlv-train", "trainer.max_epochs=abc"],
        2,
        "xlv-train: config error: config=['trainer.max_epochs=abc'] is not allowed: trainer.max_epochs: Value 'abc' of type 'str' could not be converted to Integer",
    ),
    (
        ["xlv-train", "experiment=nope"],
        2,
        "xlv-train: config error: experiment='nope' is not allowed: one of demo, kshot_curve, merge_ablation, strategy_ablation, transfer_matrix, unified",
    ),
    (
        ["xlv-train", "resume=/nope/run"],
        2,
        "xlv-train: resume=/nope/run: no run there (no config.yaml)",
    ),
    (
        ["xlv-finetune", "language=[kn,ar]"],
        2,
        "xlv-finetune: config error: language=['kn', 'ar'] is not allowed: one target language per fine-tuning run",
    ),
    (
        ["xlv-finetune", "finetune=nope"],
        2,
        "xlv-finetune: config error: finetune='nope' is not allowed: one of bitfit, full, l2sp, linear_probe, lora, partial",
    ),
    (
        ["xlv-finetune", "finetune.head_init=copy"],
        2,
        "xlv-finetune: config error: finetune.head_init='copy' is not allowed: one of source, random, zero",
    ),
    (
        ["xlv-finetune", "finetune.lora_rank=0"],
        2,
        "xlv-finetune: config error: finetune.lora_rank=0 is not allowed: an integer >= 1",
    ),
    (
        ["xlv-finetune", "finetune.replay=-1"],
        2,
        "xlv-finetune: config error: finetune.replay=-1.0 is not allowed: a sampling weight >= 0",
    ),
    (
        ["xlv-finetune", "finetune.blocks=-2"],
        2,
        "xlv-finetune: config error: finetune.blocks=-2 is not allowed: an integer >= 1",
    ),
    (
        ["xlv-finetune", "finetune.layer_decay=2"],
        2,
        "xlv-finetune: config error: finetune.layer_decay=2.0 is not allowed: null (off) or a number in (0, 1]",
    ),
    (
        ["xlv-pipeline", "pipeline.targets=[xx]"],
        2,
        "xlv-pipeline: config error: pipeline.targets='xx' is not allowed: language codes of conf/language/ (ar, bn, bo, en, fa, gu, hi, km, kn, lo, ml, mn, mr, my, or, pa, si, ta, te, th, zh)",
    ),
    (
        ["xlv-pipeline", "pipeline.sources=[yy]"],
        2,
        "xlv-pipeline: config error: pipeline.sources='yy' is not allowed: language codes of conf/language/ (ar, bn, bo, en, fa, gu, hi, km, kn, lo, ml, mn, mr, my, or, pa, si, ta, te, th, zh) or all",
    ),
    (
        ["xlv-pipeline", "pipeline.sources=[]"],
        2,
        "xlv-pipeline: config error: pipeline.sources=[] is not allowed: at least one language to pretrain on",
    ),
    (
        ["xlv-pipeline", "integrate=nope"],
        2,
        "xlv-pipeline: config error: integrate='nope' is not allowed: one of average, joint, multihead, routed, task_arithmetic, ties, unified",
    ),
    (
        ["xlv-pipeline", "integrate.lam=-1"],
        2,
        "xlv-pipeline: config error: integrate.lam=-1.0 is not allowed: null (picked on val) or a number >= 0",
    ),
    (
        ["xlv-pipeline", "integrate.evidence=-0.5"],
        2,
        "xlv-pipeline: config error: integrate.evidence=-0.5 is not allowed: auto (picked on val) or a number >= 0 (0: the router alone)",
    ),
    (
        ["xlv-pipeline", "integrate.familiarity=knn"],
        2,
        "xlv-pipeline: config error: integrate.familiarity='knn' is not allowed: one of class_means, with_nearest",
    ),
    (
        ["xlv-pipeline", "integrate.familiarity_dims=0"],
        2,
        "xlv-pipeline: config error: integrate.familiarity_dims=0 is not allowed: an integer >= 1",
    ),
    (
        ["xlv-pipeline", "integrate.temperature=hot"],
        2,
        "xlv-pipeline: config error: integrate.temperature='hot' is not allowed: one of constant, by_familiarity",
    ),
    (
        ["xlv-pipeline", "integrate.topk=0"],
        2,
        "xlv-pipeline: config error: config=['integrate.topk=0'] is not allowed: integrate.topk: Key 'topk' not in 'IntegrateConf'",
    ),
    (
        ["xlv-pipeline", "+bar=1"],
        2,
        "xlv-pipeline: config error: bar='1' is not allowed: no such key in the config (a typo?)",
    ),
    (
        ["xlv-integrate", "integrate=nope"],
        2,
        "xlv-integrate: config error: integrate='nope' is not allowed: one of average, joint, multihead, routed, task_arithmetic, ties, unified",
    ),
    (
        ["xlv-integrate", "+foo=1"],
        2,
        "xlv-integrate: config error: foo='1' is not allowed: no such key in the config (a typo?)",
    ),
    (
        ["xlv-eval", "+foo=1"],
        2,
        "xlv-eval: config error: foo='1' is not allowed: no such key in the config (a typo?)",
    ),
    (
        ["xlv-eval", "language=xx"],
        2,
        "xlv-eval: config error: language='xx' is not allowed: one of ar, bn, bo, en, fa, gu, hi, km, kn, lo, ml, mn, mr, my, or, pa, si, ta, te, th, zh",
    ),
    (
        ["xlv-eval", "data=nope"],
        2,
        "xlv-eval: config error: data='nope' is not allowed: one of bengali_cmaterdb, chinese_numerals, csv, devanagari_cmaterdb, folder, glyphs, gurmukhi, idx, kannada_dig_mnist, mix, npy, npz, odia_tiny, persian_hoda, telugu_cmaterdb, tibetan, torchvision, usps",
    ),
    (
        ["xlv-predict", "+foo=1"],
        2,
        "xlv-predict: config error: foo='1' is not allowed: no such key in the config (a typo?)",
    ),
    (
        ["xlv-predict", "language=xx"],
        2,
        "xlv-predict: config error: language='xx' is not allowed: one of ar, bn, bo, en, fa, gu, hi, km, kn, lo, ml, mn, mr, my, or, pa, si, ta, te, th, zh",
    ),
    (
        ["xlv-predict", "output=out.txt", "bundle=b.safetensors", "input=x"],
        2,
        "xlv-predict: config error: output='out.txt' is not allowed: a path ending in .json or .csv",
    ),
    (
        ["xlv-predict"],
        2,
        "xlv-predict: config error: bundle='???' is not allowed: a value is required: give bundle=…",
    ),
    (
        ["xlv-export"],
        2,
        "xlv-export: config error: bundle='???' is not allowed: a value is required: give bundle=…",
    ),
    (
        ["xlv-export", "bundle=b.safetensors", "format=pdf"],
        2,
        "xlv-export: config error: format='pdf' is not allowed: one of onnx, torchscript, web",
    ),
    (
        ["xlv-export", "bundle=b.safetensors", "format=torchscript", "output=m.onnx"],
        2,
        "xlv-export: config error: output='m.onnx' is not allowed: a path ending in .pt or .ts for format=torchscript",
    ),
    (
        ["xlv-export", "bundle=b.safetensors", "format=web", "output=page.html"],
        2,
        "xlv-export: config error: output='page.html' is not allowed: a folder for format=web (index.html goes in it)",
    ),
    (
        ["xlv-export", "bundle=b.safetensors", "check=-1"],
        2,
        "xlv-export: config error: check=-1 is not allowed: a number of images per language, 0 for none",
    ),
    (
        ["xlv-export", "bundle=b.safetensors", "+opset=11"],
        2,
        "xlv-export: config error: opset='11' is not allowed: no such key in the config (a typo?)",
    ),
    (
        ["xlv-export", "bundle=nope.safetensors"],
        1,
        "xlv-export: bundle=nope.safetensors: no such bundle file",
    ),
    (
        ["xlv-report"],
        2,
        "xlv-report: runs= is required: run dirs, sweep dirs or globs, e.g. runs=[outputs/multirun/*/*]",
    ),
    (
        ["xlv-report", "runs=x", "rows=model", "cols=model"],
        2,
        "xlv-report: rows= and cols= both contain model; use a key once",
    ),
    (
        ["xlv-report", "runs=x", "precision=-1"],
        2,
        "xlv-report: precision= must be an integer from 0 to 10, got -1",
    ),
    (
        ["xlv-report", "runs=x", "metric=[]"],
        2,
        "xlv-report: metric= is empty; give at least one value",
    ),
    (
        ["xlv-report", "runs=x", "mean_row=yes"],
        2,
        "xlv-report: mean_row= must be true or false, got 'yes'",
    ),
    (
        ["xlv-report", "runs=nothing/here"],
        1,
        "xlv-report: runs= matched no run dirs (none holds config.yaml or metrics.json): 'nothing/here'",
    ),
    (
        ["xlv-train", "language=[kn"],
        2,
        "xlv-train: bad command line: no viable alternative at input '[kn' See https://hydra.cc/docs/1.2/advanced/override_grammar/basic for details",
    ),
    (
        ["xlv-train", "trainer="],
        2,
        "xlv-train: config error: config=['trainer='] is not allowed: trainer: Invalid type assigned: str is not a subclass of TrainerConf. value:",
    ),
]


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A cwd with a finished run in it, so 'nothing changed' also covers existing files."""
    run = tmp_path / "outputs" / "runs" / "old"
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps({"status": "completed", "metrics": {}}))
    (run / "config.yaml").write_text("stage: train\n")
    return tmp_path


@pytest.mark.parametrize(("argv", "code", "line"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bad_command_line_is_one_line_and_changes_nothing(workdir, argv, code, line):
    before = snapshot(workdir)
    result = run_in_process(*argv, cwd=workdir)
    assert result.returncode == code, result.stderr[-1500:]
    assert result.stderr.strip().splitlines() == [line]
    assert snapshot(workdir) == before


@pytest.mark.parametrize(("argv", "code", "line"), [CASES[0], CASES[-1]], ids=["key", "parser"])
def test_the_table_reads_the_same_from_a_shell(workdir, argv, code, line):
    """The table runs in-process; a shell's console script gives the same line and code."""
    result = run_cli(*argv, cwd=workdir)
    assert (result.returncode, result.stderr.strip().splitlines()) == (code, [line])


def test_the_table_is_large_enough():
    assert len(CASES) >= 60
    assert {argv[0] for argv, _, _ in CASES} >= {
        "xlv-train",
        "xlv-finetune",
        "xlv-pipeline",
        "xlv-integrate",
        "xlv-eval",
        "xlv-predict",
        "xlv-report",
        "xlv-export",
    }


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (
            ["xlv-train", "hydra.run.dir=outputs/runs/old"],
            1,
            "outputs/runs/old already holds a run",
        ),
        (["xlv-train", "resume=outputs/runs/old"], 2, "that run already completed"),
        (["xlv-train", "resume=outputs/runs/old", "seed=3"], 2, "takes no other argument"),
        (["xlv-finetune", "resume=outputs/runs/nope"], 2, "no run there (no config.yaml)"),
        (["xlv-finetune", "language=kn", "base=nope.ckpt"], 1, "base=nope.ckpt: no such file"),
        (["xlv-finetune", "language=kn", "base=outputs"], 1, "base=outputs: a directory, not"),
        (["xlv-integrate", "run=nope/run"], 1, "run=nope/run: no such dir"),
        (["xlv-integrate", "models=[kn=x.ckpt]"], 1, "models.kn=x.ckpt: no such checkpoint"),
        (["xlv-eval", "bundle=outputs", "language=kn"], 1, "bundle=outputs: a directory, not"),
        (["xlv-predict", "bundle=nope.safetensors", "input=x.png"], 1, "no such bundle file"),
        (
            ["xlv-predict", "bundle=b.safetensors", "input=x.png", "output=/proc/p/out.json"],
            1,
            "output=/proc/p: cannot write there",
        ),
        (["xlv-train", "hydra.run.dir=/proc/xlv"], 1, "hydra.run.dir=/proc/xlv: cannot write"),
        (["xlv-train", "-m", "hydra.sweep.dir=/proc/xlv"], 1, "hydra.sweep.dir=/proc/xlv: cannot"),
        (["xlv-train", "data=kannada_dig_mnist", "language=en"], 2, "data.source holds kn"),
        (
            ["xlv-report", "runs=[outputs/runs]", "report.out_dir=/proc/rep"],
            1,
            "report.out_dir=/proc/rep: cannot write there",
        ),
    ],
)
def test_run_dir_mistakes_are_one_line_and_change_nothing(workdir, argv, code, message):
    before = snapshot(workdir)
    result = run_cli(*argv, cwd=workdir)
    assert result.returncode == code, result.stderr[-1500:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{argv[0]}: ") and message in lines[0]
    assert snapshot(workdir) == before


def test_a_checkpoint_that_is_not_one_is_one_line(tmp_path):
    (tmp_path / "text.ckpt").write_text("hello")
    result = run_in_process(
        "xlv-finetune", "debug=fast", "language=kn", "base=text.ckpt", cwd=tmp_path
    )
    assert result.returncode == 1
    # The stage's header line, then the error in one line; no traceback.
    header, line = result.stderr.strip().splitlines()
    assert "finetune · kn" in header
    assert line.startswith("xlv-finetune: text.ckpt: not a readable checkpoint (")


def test_a_decompression_bomb_image_is_refused_in_one_line(tmp_path):
    from PIL import Image

    from xlvision.bundle.images import InputError, read_image

    Image.new("L", (20000, 20000)).save(tmp_path / "bomb.png")  # 400 megapixels, 0.4 MB
    with pytest.raises(InputError, match=r"bomb\.png: not a readable image \(Image size"):
        read_image(tmp_path / "bomb.png")


def test_integrate_input_mistakes_are_one_line(tmp_path):
    from xlvision.models.checkpoint import save_classifier
    from xlvision.models.registry import build_classifier

    net = {"name": "net", "channels": [4, 8], "hidden": 16}
    save_classifier(tmp_path / "kn.ckpt", build_classifier(net, {"kn": 10}), net)
    resnet = {"name": "resnet18", "small_stem": True}
    save_classifier(tmp_path / "ar.ckpt", build_classifier(resnet, {"ar": 10}), resnet)
    cases = [
        (
            ["integrate=routed", "models=[th=kn.ckpt]"],
            1,
            "xlv-integrate: kn.ckpt: no head for 'th'",
        ),
        (
            ["integrate=average", "models=[kn=kn.ckpt,ar=ar.ckpt]"],
            2,
            "xlv-integrate: config error: integrate='average' is not allowed: a method for "
            "models of one architecture",
        ),
    ]
    for args, code, start in cases:
        result = run_in_process("xlv-integrate", *args, cwd=tmp_path)
        assert result.returncode == code, result.stderr[-1500:]
        lines = [line for line in result.stderr.strip().splitlines() if not line.startswith("─")]
        # Found as the models load: no data read, no model tested, before the line.
        assert len(lines) == 1 and lines[0].startswith(start), result.stderr


@pytest.mark.parametrize(
    ("overrides", "config_name"),
    [(["device=gpu"], "config"), (["experiment=unified", "budget=gpu"], "pipeline")],
)
def test_a_gpu_asked_of_a_machine_without_one_fails_before_any_dir(
    monkeypatch, tmp_path, overrides, config_name
):
    from xlvision.cli import app

    monkeypatch.setattr(app, "has_cuda_driver", lambda: False)
    run_dir = tmp_path / "run"
    with pytest.raises(ConfigError) as err:
        app.check_command_line([*overrides, f"hydra.run.dir={run_dir}"], config_name)
    assert (
        str(err.value) == "device='gpu' is not allowed: cpu or auto: this machine has no CUDA GPU"
    )
    assert not run_dir.exists()
    monkeypatch.setattr(app, "has_cuda_driver", lambda: True)
    app.check_command_line([*overrides, f"hydra.run.dir={run_dir}"], config_name)
