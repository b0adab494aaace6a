"""Every experiment preset: its sweep composes value by value, and a tiny run goes through.
The run scripts of experiments/ and their shared experiments/lib.sh, with stand-in commands."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from xlvision.cli.app import override_combinations
from xlvision.config.compose import compose_config, group_options
from xlvision.stages.pipeline import pipeline

PRESETS = group_options("experiment")


def test_the_presets_the_readme_promises_exist():
    assert {"demo", "transfer_matrix", "kshot_curve", "strategy_ablation"} <= set(PRESETS)


@pytest.mark.parametrize("preset", PRESETS)
def test_every_swept_value_composes(preset, tmp_path):
    base = [f"experiment={preset}", f"paths.output_dir={tmp_path}"]
    cfg = compose_config(base, config_name="pipeline")
    sweep = [f"{k}={v}" for k, v in (cfg.hydra.sweeper.params or {}).items()]
    combos = override_combinations(sweep)
    for combo in combos:
        composed = compose_config(base + combo, config_name="pipeline")
        assert composed.stage == "pipeline"
    if sweep:
        assert len(combos) > 1


@pytest.mark.parametrize("preset", PRESETS)
def test_budget_gpu_raises_every_preset_and_its_cpu_defaults_stay(preset):
    cpu = compose_config([f"experiment={preset}"], config_name="pipeline")
    gpu = compose_config([f"experiment={preset}", "budget=gpu"], config_name="pipeline")
    assert (cpu.device.accelerator, cpu.model.name) == ("cpu", "net")
    # Sized for two CPU cores: unified's 18 epochs of 60,000 draws take about 11 minutes.
    assert cpu.data.train_per_class <= 600
    assert cpu.trainer.max_epochs <= (18 if preset == "unified" else 6)
    assert (gpu.device.accelerator, gpu.device.precision, gpu.model.name) == (
        "gpu",
        "bf16-mixed",
        "resnet18",
    )
    assert gpu.data.train_per_class >= 1000 and gpu.trainer.max_epochs >= 10
    assert gpu.trainer.max_epochs > cpu.trainer.max_epochs
    assert gpu.data.batch_size > cpu.data.batch_size and gpu.data.pin_memory
    # What the preset is about stays: its languages, shots, strategy, sweep, sources.
    for key in ("pipeline", "finetune", "integrate", "objective", "data.shots_per_class"):
        assert OmegaConf.select(gpu, key) == OmegaConf.select(cpu, key), key
    assert gpu.hydra.sweeper.params == cpu.hydra.sweeper.params
    assert OmegaConf.select(gpu, "data.sources") == OmegaConf.select(cpu, "data.sources")


def test_a_model_given_beside_the_budget_wins():
    cfg = compose_config(["experiment=kshot_curve", "budget=gpu", "model=net"], "pipeline")
    assert (cfg.model.name, cfg.trainer.max_epochs) == ("net", 30)


@pytest.mark.parametrize("preset", PRESETS)
def test_debug_fast_shrinks_every_preset_and_budget(preset):
    for extra in ([], ["budget=gpu"]):
        cfg = compose_config([f"experiment={preset}", *extra, "debug=fast"], "pipeline")
        assert cfg.trainer.max_epochs == 1 and cfg.trainer.limit_train_batches == 5
        assert (cfg.data.train_per_class, cfg.data.real_per_class) == (40, 20)


@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_runs_as_is_under_debug_fast(preset, tmp_path):
    """What a user types, `xlv-pipeline experiment=<preset> debug=fast`, one job
    (bench/debug_fast.py times it against the one-minute target)."""
    cfg = compose_config(
        [
            f"experiment={preset}",
            "debug=fast",
            f"paths.output_dir={tmp_path / 'pipe'}",
            f"paths.cache_dir={tmp_path / 'cache'}",
        ],
        config_name="pipeline",
    )
    pipeline(cfg)
    record = json.loads((tmp_path / "pipe" / "metrics.json").read_text())
    assert record["status"] == "completed"
    assert (tmp_path / "pipe" / "report" / "report.html").is_file()


# `demo` is the pipeline's default preset: test_finetune_stage runs it end to end; `unified`
# bundles its pretrained model with no fine-tuning: tests/test_unified.py runs it.
@pytest.mark.parametrize("preset", [p for p in PRESETS if p not in ("demo", "unified")])
def test_preset_smoke_run(preset, tmp_path):
    cfg = compose_config(
        [
            f"experiment={preset}",
            f"paths.output_dir={tmp_path / 'pipe'}",
            f"paths.cache_dir={tmp_path / 'cache'}",
            "debug=fast",
            "pipeline.targets=[kn]",
            "data.train_per_class=60",
            "data.val_per_class=10",
            "data.test_per_class=20",
            "trainer.limit_train_batches=1",
            "trainer.limit_val_batches=1",
            "trainer.limit_test_batches=1",
        ],
        config_name="pipeline",
    )
    metrics, _ = pipeline(cfg)
    record = json.loads((tmp_path / "pipe" / "finetune_kn" / "metrics.json").read_text())
    assert record["status"] == "completed"
    assert 0 <= metrics["finetune_kn/test/kn/acc"] <= 1
    assert 0 <= record["metrics"]["zeroshot/kn/acc"] <= 1  # the source head on the target
    config = (tmp_path / "pipe" / "finetune_kn" / "config.yaml").read_text()
    assert "source_language: en" in config
    assert (tmp_path / "pipe" / "report" / "report.html").is_file()


def test_from_scratch_baseline_skips_pretraining(tmp_path):
    cfg = compose_config(
        [
            f"paths.output_dir={tmp_path / 'pipe'}",
            f"paths.cache_dir={tmp_path / 'cache'}",
            "debug=fast",
            "pipeline.targets=[kn]",
            "pipeline.pretrain=false",
            "data.shots_per_class=5",
        ],
        config_name="pipeline",
    )
    metrics, _ = pipeline(cfg)
    assert not (tmp_path / "pipe" / "pretrain").exists()
    record = json.loads((tmp_path / "pipe" / "finetune_kn" / "metrics.json").read_text())
    assert "zeroshot/kn/acc" not in record["metrics"]
    assert record["artifacts"]["data_counts"]["kn"]["train"] == 50
    assert "head_init: random" in (tmp_path / "pipe" / "finetune_kn" / "config.yaml").read_text()


REPO = Path(__file__).resolve().parents[1]
RUN_SCRIPTS = sorted(p.parent.name for p in (REPO / "experiments").glob("*/run.sh"))
RECORDED = "64 CPU cores (Recorded CPU), one NVIDIA H100 80GB HBM3 GPU"

# xlv-report as far as the run scripts see it: a markdown table per metric, named as the real
# one names it (`test/{lang}/acc` → table_test-lang-acc.md), its cells naming the metric.
REPORT_STAND_IN = r"""#!/usr/bin/env bash
out= metrics=
for arg in "$@"; do
  case $arg in
    report.out_dir=*) out=${arg#*=} ;;
    metric=*) metrics=${arg#metric=[}; metrics=${metrics%]} ;;
  esac
done
mkdir -p "$out"
IFS=, read -ra list <<< "$metrics"
for metric in "${list[@]}"; do
  slug=$(sed -E 's/[^A-Za-z0-9]+/-/g; s/^-+|-+$//g' <<< "$metric" | tr 'A-Z' 'a-z')
  printf '| lang | x |\n|:---|:---:|\n| kn | %s |\n| mean_left_out | %s |\n' "$metric" "$metric" \
    > "$out/table_$slug.md"
done
"""
# Every other xlv-* command: its arguments, one call a line.
CALL_STAND_IN = '#!/usr/bin/env bash\necho "${0##*/} $*" >> "$CALLS"\n'


def stand_in_root(tmp_path: Path, gpu: str | None = None) -> Path:
    """A copy of experiments/ and conf/ whose .venv/bin/xlv-* are stand-ins, and a bin/ for
    PATH whose nvidia-smi names `gpu` (or fails: no GPU)."""
    root = tmp_path / "root"
    shutil.copytree(REPO / "experiments", root / "experiments")
    shutil.copytree(REPO / "conf", root / "conf")
    commands = {"xlv-report": REPORT_STAND_IN}
    for name in ("xlv-train", "xlv-pipeline", "xlv-finetune", "xlv-eval", "xlv-integrate"):
        commands[name] = CALL_STAND_IN
    gpu_line = f"echo '{gpu}'" if gpu else "exit 9"
    for path, text in [
        *((root / ".venv/bin" / name, text) for name, text in commands.items()),
        (tmp_path / "bin/nvidia-smi", f"#!/usr/bin/env bash\n{gpu_line}\n"),
    ]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o755)
    return root


def bash(command: str, root: Path, check: bool = True, **env: str) -> subprocess.CompletedProcess:
    """`command` run by bash in `root` (PATH led by its stand-in bin/), with `env` added."""
    path = f"{root.parent / 'bin'}:{os.environ['PATH']}"
    result = subprocess.run(
        ["bash", "-c", command],
        cwd=root,
        env={**os.environ, "PATH": path, "CALLS": str(root / "calls.log"), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def lib(command: str, root: Path = REPO) -> list[str]:
    """The lines `command` prints with experiments/lib.sh sourced, as a run script has it."""
    script = f"set -euo pipefail; source experiments/lib.sh; {command}"
    result = subprocess.run(["bash", "-c", script], cwd=root, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def unified_sources() -> dict[str, list[dict]]:
    return OmegaConf.to_container(OmegaConf.load(REPO / "conf/experiment/unified.yaml")).get(
        "data"
    )["sources"]


def test_real_pairs_are_the_real_presets_of_conf_data_in_the_unified_preset_order():
    named = {}
    for path in sorted((REPO / "conf/data").glob("*.yaml")):
        source = OmegaConf.load(path).get("source") or {}
        if source.get("format") != "torchvision" and source.get("language", "???") != "???":
            named[path.stem] = source["language"]
    pairs = lib("real_pairs")
    assert sorted(pairs) == sorted(f"{code}:{preset}" for preset, code in named.items())
    expected = [f"{code}:{s['preset']}" for code, items in unified_sources().items() for s in items]
    assert pairs == expected
    assert len(pairs) == 10 and "or:odia_tiny" in pairs


def test_dev_pairs_are_the_real_sets_the_unified_preset_trains_on():
    trained = [
        f"{code}:{s['preset']}"
        for code, items in unified_sources().items()
        for s in items
        if s["weight"] > 0
    ]
    assert lib("dev_pairs") == trained
    assert len(trained) == 9 and "or:odia_tiny" not in trained


def test_real_pairs_takes_a_new_preset_and_skips_downloads_and_generic_formats(tmp_path):
    root = stand_in_root(tmp_path)
    data = root / "conf/data"
    (data / "lao_sheets.yaml").write_text(
        "kind: real\nsource:\n  format: npz\n  language: lo  # scanned sheets\n  path: lao.npz\n"
    )
    (data / "svhn.yaml").write_text(
        "kind: real\nsource:\n  format: torchvision\n  language: en\n  name: SVHN\n"
    )
    pairs = lib("real_pairs", root)
    assert pairs == lib("real_pairs") + ["lo:lao_sheets"]
    assert not any(p.endswith((":svhn", ":torchvision", ":csv", ":folder")) for p in pairs)
    assert "lo:lao_sheets" not in lib("dev_pairs", root)  # not among unified's trained sets


def test_a_unified_source_in_another_form_stops_the_script_naming_file_and_line(tmp_path):
    root = stand_in_root(tmp_path)
    unified = root / "conf/experiment/unified.yaml"
    unified.write_text(unified.read_text().replace("{preset: tibetan, weight: 2}", "tibetan"))
    script = "set -euo pipefail; source experiments/lib.sh; pairs=$(dev_pairs); echo reached"
    result = bash(script, root, check=False)
    assert result.returncode != 0 and "reached" not in result.stdout
    assert "conf/experiment/unified.yaml:" in result.stderr and "bo: [tibetan]" in result.stderr


def test_record_machine_keeps_machine_sh_line_and_machine_line_reads_it(tmp_path):
    root = stand_in_root(tmp_path, gpu="NVIDIA L4")
    bash("source experiments/lib.sh; record_machine outputs/sweep", root)
    recorded = (root / "outputs/sweep/machine.txt").read_text().strip()
    assert recorded.endswith(", one NVIDIA L4 GPU") and " CPU cores (" in recorded
    # Reported later on a machine without a GPU: the page names the one the runs ran on.
    (tmp_path / "bin/nvidia-smi").write_text("#!/usr/bin/env bash\nexit 9\n")
    line = bash("source experiments/lib.sh; machine_line outputs/sweep", root).stdout
    assert line == f"Machine: {recorded}.\n"
    # Nothing recorded (a sweep run before machine.txt existed): this machine's line.
    line = bash("source experiments/lib.sh; machine_line outputs/none", root).stdout
    assert re.fullmatch(r"Machine: \d+ CPU cores \(.*\), no GPU\.\n", line), line


def test_write_results_puts_header_machine_run_line_tables_and_discussion_in_order(tmp_path):
    root = stand_in_root(tmp_path)
    here = root / "experiments/demo"
    here.mkdir()
    (here / "header.md").write_text("# Demo\n\nWhat it measures.\n")
    (here / "discussion.md").write_text("\n## Discussion\n\nWhat it means.\n")
    (root / "runs").mkdir()
    (root / "runs/machine.txt").write_text(RECORDED + "\n")
    (root / "t1.md").write_text("| a |\n")
    (root / "t2.md").write_text("| b |\n")
    body = 'body() { section "### Accuracy" t1.md t2.md; echo; echo "- note"; }'
    before = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    out = bash(
        f'source experiments/lib.sh; {body}; write_results {here.relative_to(root)} runs "seed 0." body',
        root,
    )
    after = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    assert out.stdout == "wrote experiments/demo/RESULTS.md\n"
    page = (here / "RESULTS.md").read_text()
    expected = (
        "# Demo\n\nWhat it measures.\n\n"
        f"Machine: {RECORDED}.\n"
        "Run: `bash experiments/demo/run.sh` on {date}; seed 0.\n"
        "\n### Accuracy\n\n| a |\n| b |\n\n- note\n"
        "\n## Discussion\n\nWhat it means.\n"
    )
    assert page in {expected.format(date=before), expected.format(date=after)}
    # No runs dir: the body names the machine (one line per part).
    bash(
        f'source experiments/lib.sh; {body}; write_results experiments/demo "" "seed 0." body', root
    )
    assert "Machine:" not in (here / "RESULTS.md").read_text()
    # A table that is missing stops the script.
    missing = 'body() { section "### Accuracy" t3.md; }'
    result = bash(
        f"set -euo pipefail; source experiments/lib.sh; {missing}; write_results experiments/demo runs x body; echo reached",
        root,
        check=False,
    )
    assert result.returncode != 0 and "reached" not in result.stdout


@pytest.mark.parametrize("name", RUN_SCRIPTS)
def test_every_run_script_uses_lib_sh_and_parses(name):
    path = REPO / "experiments" / name / "run.sh"
    text = path.read_text()
    assert 'cd "$(dirname "$0")/../.."\nsource experiments/lib.sh\n' in text
    assert subprocess.run(["bash", "-n", str(path)], capture_output=True).returncode == 0
    # The machine comes from machine.sh through lib.sh; the page from write_results.
    assert "no GPU" not in text and "Machine:" not in text and "machine.sh" not in text
    assert 'write_results "$here"' in text and '> "$here/RESULTS.md"' not in text
    # The real sets are named in conf/ only.
    for pair in lib("real_pairs"):
        assert pair.split(":")[1] not in text, pair


# What a report of every part needs to find: the parts' dirs, and the runs a page counts.
REPORT_FIXTURES = {
    "kshot_curve": ["pretrained/0/finetune_kn"],
    "strategy_ablation": ["net/0/finetune_kn"],
    "merge_ablation": ["en", "all"],
    "real_kshot": ["recipe", "no_replay", "self_train"],
    "unified_real": [
        "unified/0/eval",
        "unified/0/eval_one_view",
        "glyphs_only/0/eval",
        "per_language/kn/0",
    ],
    "unseen_handwriting": [
        "domain_prior/A/0/eval_reject",
        "domain_prior/A/0/eval_adapt",
        "domain_prior/A/0/eval_evidence",
        "domain_prior/A/0/eval_adapt_prior",
        "domain_prior/A/0/eval_adapt_stroke",
        "domain_prior/A/0/eval_nearest",
        "domain_prior/A/0/eval_views",
    ],
}


@pytest.mark.parametrize("name", RUN_SCRIPTS)
def test_every_report_names_the_recorded_machine_between_header_and_discussion(name, tmp_path):
    root = stand_in_root(tmp_path)
    out = root / "outputs/experiments" / name
    for run in REPORT_FIXTURES.get(name, []):
        (out / run).mkdir(parents=True)
        (out / run / "metrics.json").write_text('{"status": "completed"}')
    machines = [out / part for part in ("en", "all")] if name == "merge_ablation" else [out]
    for i, folder in enumerate(machines):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "machine.txt").write_text(f"{RECORDED} {i}\n")
    result = bash(f"bash experiments/{name}/run.sh --report-only", root)
    assert result.stdout.endswith(f"wrote experiments/{name}/RESULTS.md\n")
    here = root / "experiments" / name
    page = (here / "RESULTS.md").read_text()
    header, discussion = (here / "header.md").read_text(), (here / "discussion.md").read_text()
    assert page.startswith(header + "\n") and page.endswith(discussion)
    assert f"Run: `bash experiments/{name}/run.sh` on " in page
    for i in range(len(machines)):
        assert f"\nMachine: {RECORDED} {i}.\n" in page
    assert "/acc |" in page  # the stand-in report's tables
    if name == "unseen_handwriting":  # a step's section, read from its runs and its baseline's
        views = page.split("## Every image read with its moved copies")[1].split("\n## ")[0]
        assert "| mean_left_out |" in views and "| one view | six views |" in views
    if name == "unified_real":  # the same runs read once and with the views, a row each
        views = page.split("## The views against one read")[1].split("\n## ")[0]
        assert views.count("| lang |") == views.count("| lang | one view | six views |") == 5
        assert "| kn | test/{lang}/acc | test/{lang}/acc |" in views


@pytest.mark.parametrize("name", RUN_SCRIPTS)
def test_every_run_records_machine_sh_line_where_its_report_reads_it(name, tmp_path):
    root = stand_in_root(tmp_path, gpu="NVIDIA H100 80GB HBM3")
    out = root / "outputs/experiments"
    for seed in range(3):  # what merge_ablation and real_kshot start from
        (out / f"transfer_matrix/{seed}").mkdir(parents=True)
        (out / f"transfer_matrix/{seed}/config.yaml").write_text(
            f"seed: {seed}\npipeline:\n  sources:\n  - en\n"
        )
        best = out / f"unified_real/glyphs_only/{seed}/pretrain/checkpoints/best.ckpt"
        best.parent.mkdir(parents=True)
        best.touch()
    # The stand-ins write no runs, so a report after them may stop: the record is made first.
    result = bash(f"bash experiments/{name}/run.sh", root, check=False)
    parts = ["en", "all"] if name == "merge_ablation" else [""]
    for part in parts:
        machine = out / name / part / "machine.txt"
        assert machine.is_file(), result.stderr
        assert machine.read_text().endswith(", one NVIDIA H100 80GB HBM3 GPU\n")
    if f"wrote experiments/{name}/RESULTS.md" in result.stdout:
        page = (root / "experiments" / name / "RESULTS.md").read_text()
        assert ", one NVIDIA H100 80GB HBM3 GPU.\n" in page


def test_one_view_bundles_each_finished_unified_run_again_and_reads_its_test_splits(tmp_path):
    root = stand_in_root(tmp_path)
    out = root / "outputs/experiments/unified_real/unified"
    (out / "0/eval").mkdir(parents=True)
    (out / "0/eval/metrics.json").write_text('{"status": "completed"}')
    (out / "1/eval").mkdir(parents=True)  # not finished: not bundled again
    bash("bash experiments/unified_real/run.sh one_view", root, check=False)
    calls = (root / "calls.log").read_text().splitlines()
    assert len(calls) == 2
    integrate, evaluate = calls
    run = "outputs/experiments/unified_real/unified/0"
    assert integrate.startswith(f"xlv-integrate run={run} experiment=unified seed=0 ")
    assert "integrate.views=none" in integrate
    assert evaluate.startswith(f"xlv-eval bundle={run}/integrate_one_view/bundle.safetensors ")
    # The test splits the pipeline's eval read: every real source of the preset, as it trains.
    sources = ",".join(
        f"{code}: [{{preset: {s[0]['preset']}, weight: {s[0]['weight']}}}]"
        for code, s in unified_sources().items()
    )
    assert f"data.sources={{{sources}}}" in evaluate
    assert "seed=0 reject=none" in evaluate


def test_unseen_handwriting_steps_bundle_with_the_familiarity_and_views_each_names(tmp_path):
    root = stand_in_root(tmp_path)
    steps = {"STEPS": "nearest rising views copies", "FOLDS": "A", "SEEDS": "0"}
    bash("bash experiments/unseen_handwriting/run.sh domain_prior", root, check=False, **steps)
    calls = (root / "calls.log").read_text().splitlines()
    train, copy = (c for c in calls if c.startswith("xlv-pipeline"))
    bundles = {c.split("integrate_")[-1]: c for c in calls if c.startswith("xlv-integrate")}
    assert sorted(bundles) == ["copies", "nearest", "rising", "views"]
    # The run's own bundle, as every earlier record: class-mean familiarity, each image read once;
    # a step changes only what it names, so its record compares with that one.
    assert "integrate.familiarity=class_means integrate.views=none" in train
    assert "integrate.familiarity=with_nearest integrate.views=none" in bundles["nearest"]
    assert "integrate.views=none integrate.temperature=by_familiarity" in bundles["rising"]
    assert "integrate.familiarity=with_nearest integrate.views=shifts_thick" in bundles["views"]
    assert "integrate.views=none" not in bundles["views"]
    # The second training: the run's own, bar init_seed, and its bundle the views step's with it.
    run = "outputs/experiments/unseen_handwriting/domain_prior/A/0"
    assert copy.startswith("xlv-pipeline experiment=unified data.leave_real_out=[bn,fa,zh] seed=0 ")
    assert "init_seed=1000" in copy and f"hydra.run.dir={run}/copy_2" in copy
    assert "init_seed" not in train and "script_id_prior=per_domain" in copy
    views = bundles["views"].split(" integrate.familiarity")[1].split(" hydra.run.dir")[0]
    assert f"integrate.familiarity{views} integrate.copies=[{run}/copy_2]" in bundles["copies"]


def test_unseen_handwriting_keeps_records_without_the_page_when_told(tmp_path):
    """REPORT=no: parts queued one after another keep their records and leave the page (a
    rebuild of many reports) to one `--report-only` at the end."""
    root = stand_in_root(tmp_path)
    page = root / "experiments/unseen_handwriting/RESULTS.md"
    before = page.read_text()
    run = root / "outputs/experiments/unseen_handwriting/wide/A/0/eval_reject"
    run.mkdir(parents=True)
    (run / "metrics.json").write_text('{"status": "completed"}')
    result = bash(
        "bash experiments/unseen_handwriting/run.sh wide", root, FOLDS="A", SEEDS="0", REPORT="no"
    )
    assert "page not rebuilt (REPORT=no)" in result.stdout
    assert (root / "experiments/unseen_handwriting/records/wide/A/0/eval_reject").is_dir()
    calls = (root / "calls.log").read_text()
    assert "xlv-pipeline" in calls and "xlv-report" not in calls
    assert page.read_text() == before


def test_the_dev_sets_reach_the_commands_in_order(tmp_path):
    root = stand_in_root(tmp_path)
    bash("bash experiments/sim2real/run.sh", root)
    calls = (root / "calls.log").read_text().splitlines()
    dev = lib("dev_pairs")
    codes = ",".join(p.split(":")[0] for p in dev)
    assert any(f"language=[{codes}]" in call for call in calls)  # one model, heads in this order
    evaluated = [c.split("data=")[1].split()[0] for c in calls if c.startswith("xlv-eval")]
    assert evaluated == [p.split(":")[1] for p in dev for _ in range(2)]


def test_keep_records_copies_each_finished_run_with_its_job_overrides(tmp_path):
    out, records = tmp_path / "out", tmp_path / "records"
    for seed, status in (("0", "completed"), ("1", "running")):
        job = out / "part" / seed
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra/overrides.yaml").write_text(f"- seed={seed}\n")
        (job / "eval").mkdir()
        (job / "eval/config.yaml").write_text(f"seed: {seed}\n")
        (job / "eval/metrics.json").write_text(json.dumps({"status": status}))
        (job / "eval/bundle.safetensors").write_bytes(b"large")
    (out / "machine.txt").write_text(RECORDED + "\n")
    bash(f"source experiments/lib.sh; keep_records {out} {records} 'part/*/eval'", REPO)
    kept = sorted(str(p.relative_to(records)) for p in records.rglob("*") if p.is_file())
    # The finished run only, and only its record: no model, nothing of the one still running.
    assert kept == [
        "machine.txt",
        "part/0/.hydra/overrides.yaml",
        "part/0/eval/config.yaml",
        "part/0/eval/metrics.json",
    ]
    assert (records / "part/0/eval/config.yaml").read_text() == "seed: 0\n"
    # Kept again after the run dir is gone: what was kept stays.
    shutil.rmtree(out / "part")
    bash(f"source experiments/lib.sh; keep_records {out} {records} 'part/*/eval'", REPO)
    assert (records / "part/0/eval/metrics.json").is_file()
