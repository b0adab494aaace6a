"""A pipeline's report tells what happened: the summary first, read from the stage records,
then each figure once, stages in pipeline order. On a fake demo-like pipeline dir."""

from __future__ import annotations

import hashlib
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from fake_runs import EVAL_ACC, PIPELINE_TARGETS, make_pipeline, write_run

from xlvision.report.collect import collect_runs
from xlvision.report.pivot import build_pivot
from xlvision.report.stage import in_pipeline_order, report
from xlvision.report.summary import find_pipelines, summarize
from xlvision.stages.pipeline import report_config

STAGES = ["pretrain", "finetune_kn", "finetune_ar", "finetune_hi", "integrate", "eval"]


@pytest.fixture(scope="module")
def pipeline_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pipeline(tmp_path_factory.mktemp("story") / "pipe")


@pytest.fixture(scope="module")
def pipeline_report(pipeline_dir: Path) -> tuple[Path, dict]:
    """The report xlv-pipeline writes at its end, from its own report config."""
    _, artifacts = report(report_config(pipeline_dir, [pipeline_dir / s for s in STAGES]))
    return artifacts["report.html"], artifacts


def record(pipeline_dir: Path, stage: str) -> dict[str, float]:
    return json.loads((pipeline_dir / stage / "metrics.json").read_text())["metrics"]


class SummaryCells(HTMLParser):
    """`data-value`s of the summary section: its tiles by label, its cells by (row, key)."""

    def __init__(self) -> None:
        super().__init__()
        self.tiles: dict[str, float] = {}
        self.cells: dict[tuple[str, str], float] = {}
        self.headers: list[str] = []
        self.row: str | None = None
        self.pending: float | None = None
        self.in_label = self.in_section = self.in_th = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "section" and a.get("id") == "summary":
            self.in_section = True
        if not self.in_section:
            return
        if tag == "div" and a.get("class") == "tile":
            self.pending = float(a["data-value"])
        if tag == "span" and a.get("class") == "label":
            self.in_label = True
        if tag == "tr" and "data-row" in a:
            self.row = a["data-row"]
        if tag == "td" and "data-value" in a:
            self.cells[(self.row, a["data-key"])] = float(a["data-value"])
        self.in_th = tag == "th" and self.row is None

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self.in_section = False
        self.in_label = self.in_label and tag != "span"
        self.in_th = self.in_th and tag != "th"

    def handle_data(self, data: str) -> None:
        if self.in_label and self.pending is not None:
            self.tiles[data] = self.pending
            self.pending = None
        elif self.in_th and data.strip():
            self.headers.append(data.strip())


def parse_summary(page: Path) -> SummaryCells:
    parser = SummaryCells()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def test_the_summary_holds_the_bundle_exactly_as_eval_recorded_it(
    pipeline_dir: Path, pipeline_report
) -> None:
    page, _ = pipeline_report
    evaluated = record(pipeline_dir, "eval")
    summary = parse_summary(page)
    # The headline: the bundle's means, exactly the numbers in eval/metrics.json.
    assert summary.tiles["digits read, script given"] == evaluated["test/mean/acc"]
    assert summary.tiles["digits read, script not given"] == evaluated["test/mean/routed_acc"]
    assert summary.tiles["script named, per digit"] == evaluated["test/mean/lid_acc"]
    assert summary.tiles["script named, per page of 5"] == evaluated["test/mean/page_lid_acc"]
    assert summary.tiles["on en"] == record(pipeline_dir, "pretrain")["test/en/acc"]
    assert summary.tiles["bundle size"] == 11383684
    assert summary.tiles["speed"] == record(pipeline_dir, "integrate")["predict_images_per_s"]
    for code in PIPELINE_TARGETS:
        assert summary.cells[(code, "given")] == evaluated[f"test/{code}/acc"] == EVAL_ACC[code]
        assert summary.cells[(code, "not_given")] == evaluated[f"test/{code}/routed_acc"]
        assert summary.cells[(code, "script_digit")] == evaluated[f"test/{code}/lid_acc"]
        assert summary.cells[(code, "script_page")] == evaluated[f"test/{code}/page_lid_acc"]
    assert summary.cells[("mean", "not_given")] == evaluated["test/mean/routed_acc"]
    text = page.read_text(encoding="utf-8")
    assert 'title="eval/metrics.json: test/hi/routed_acc"' in text  # where it was read


def test_forgetting_is_its_own_column_per_target_never_pooled(
    pipeline_dir: Path, pipeline_report
) -> None:
    page, _ = pipeline_report
    summary = parse_summary(page)
    assert summary.headers[:4] == [
        "language",
        "the target, fine-tuned",
        "the source, before and after",
        "the bundle",
    ]
    assert "forgetting" in summary.headers
    for code in PIPELINE_TARGETS:
        tuned = record(pipeline_dir, f"finetune_{code}")
        assert summary.cells[(code, "target_after")] == tuned[f"test/{code}/acc"]
        assert summary.cells[(code, "target_before")] == tuned[f"zeroshot/{code}/acc"]
        assert summary.cells[(code, "source_before")] == tuned["zeroshot/en/acc"]
        assert summary.cells[(code, "source_after")] == tuned["test/en/acc"]
        assert summary.cells[(code, "forgetting")] == pytest.approx(-tuned["gain/en/acc"])
    # kn, ar, hi forgot 0.39, 0.59, 0.79 of en: three numbers, not one pooled `en` row
    forgetting = [summary.cells[(code, "forgetting")] for code in PIPELINE_TARGETS]
    assert forgetting == pytest.approx([0.39, 0.59, 0.79])
    assert ("en", "target_after") not in summary.cells
    # the mean row is over the same quantity of each target
    assert summary.cells[("mean", "forgetting")] == pytest.approx(0.59)
    assert summary.cells[("mean", "target_after")] == pytest.approx(0.98)


def test_tables_show_stages_in_pipeline_order_once_each(pipeline_report) -> None:
    page, artifacts = pipeline_report
    table = artifacts["table_test-lang-acc.md"].read_text(encoding="utf-8")
    header = next(line for line in table.splitlines() if line.startswith("| lang"))
    assert [c.strip() for c in header.strip("|").split("|")][1:] == [
        "pretrain",
        "finetune_kn",
        "finetune_ar",
        "finetune_hi",
        "eval",  # integrate tested the same bundle on the same images: shown once
    ]
    assert "| mean" not in table  # a stage's mean pools its target with its source
    en = next(line for line in table.splitlines() if line.startswith("| en "))
    # pretrain, then en after each fine-tune in a cell of its own, never pooled
    cells = [c.strip().strip("*") for c in en.strip("|").split("|")][1:]
    assert cells == ["0.991", "0.600", "0.400", "0.200", "—"]
    # the page says so in the same order
    text = page.read_text(encoding="utf-8")
    positions = [text.index(f"<th>{stage}</th>") for stage in ("pretrain", "finetune_kn", "eval")]
    assert positions == sorted(positions)


def test_every_figure_is_drawn_once(pipeline_report) -> None:
    page, artifacts = pipeline_report
    pngs = sorted(name for name in artifacts if name.endswith(".png"))
    assert pngs == ["bundle_confusion.png", "training_curves.png", "transfer_forgetting.png"]
    text = page.read_text(encoding="utf-8")
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', text)
    assert len(images) == len(set(images)) == 3
    digests = {hashlib.sha256(artifacts[name].read_bytes()).hexdigest() for name in pngs}
    assert len(digests) == 3
    assert (
        text.index('id="summary"') < text.index("transfer_forgetting") < text.index("<table data")
    )


def test_bundle_confusion_panels_are_eval_with_and_without_the_script(
    pipeline_dir: Path, monkeypatch, tmp_path: Path
) -> None:
    from xlvision.report import story

    drawn = {}
    monkeypatch.setattr(
        story,
        "plot_confusions",
        lambda matrices, stem, title, n_cols=3: (
            drawn.update(matrices=matrices, n_cols=n_cols) or {}
        ),
    )
    cfg = report_config(pipeline_dir, [pipeline_dir / s for s in STAGES])
    cfg.report.out_dir = str(tmp_path / "out")
    report(cfg)
    confusion = json.loads((pipeline_dir / "eval" / "metrics.json").read_text())["confusion"]
    assert list(drawn["matrices"]) == [
        f"{code} · {reading}"
        for code in PIPELINE_TARGETS
        for reading in ("script given", "script not given")
    ]
    assert drawn["n_cols"] == 2
    assert np.array_equal(drawn["matrices"]["hi · script not given"], confusion["test/hi/routed"])
    assert np.array_equal(drawn["matrices"]["kn · script given"], confusion["test/kn"])


def test_console_ends_with_the_summary_and_the_page(pipeline_dir: Path, tmp_path, capsys) -> None:
    cfg = report_config(pipeline_dir, [pipeline_dir / s for s in STAGES])
    cfg.report.out_dir = str(tmp_path / "out")
    report(cfg)
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == f"report: {tmp_path / 'out' / 'report.html'}"
    text = "\n".join(lines)
    assert "digits read, script not given  0.863" in text  # (0.882 + 0.851 + 0.857) / 3
    tuning, bundle = (
        [c.strip() for c in line.split("│")[1:-1]] for line in lines if line.startswith("│ kn ")
    )
    assert tuning == ["kn", "0.100", "0.970", "en", "0.990", "0.600", "0.390"]
    assert bundle == ["kn", "0.982", "0.882", "0.840", "0.970"]
    assert all(len(line) <= 80 for line in lines[:-1])
    assert "test/{lang}/acc by" not in text  # the detail tables stay on the page


def test_summary_reads_one_pipeline_given_its_dir(pipeline_dir: Path) -> None:
    runs, pipelines = find_pipelines(collect_runs([str(pipeline_dir)]))
    (pipeline,) = pipelines
    assert list(pipeline.stages) == STAGES
    assert pipeline.targets == list(PIPELINE_TARGETS)
    summary = summarize(pipeline)
    assert summary.lead == (
        "Pretrained on en, fine-tuned on kn, ar, hi (full), integrated (routed) into one "
        "bundle of kn, ar, hi."
    )
    assert [row.label for row in summary.rows] == ["kn", "ar", "hi", "mean"]
    labels = {run.path.name: run.label("stage") for run in runs}
    assert labels["pretrain"] == "pretrain" and labels["pipe"] == "pipeline"


def test_standalone_stages_sort_in_pipeline_order(tmp_path: Path) -> None:
    for index, stage in enumerate(["eval", "train", "integrate", "finetune"]):
        write_run(
            tmp_path / str(index), ["kn"], "net", 0, {"test/kn/acc": 0.5}, extra={"stage": stage}
        )
    runs = collect_runs([str(tmp_path)])
    pivot = in_pipeline_order(build_pivot(runs, ["lang"], ["stage"], "test/{lang}/acc"))
    assert pivot.cols == [("train",), ("finetune",), ("integrate",), ("eval",)]


def test_a_pipeline_called_without_its_own_config_is_found_by_its_stage_dirs(
    pipeline_dir: Path, tmp_path: Path
) -> None:
    # pipeline() called from Python writes no config.yaml of its own, only its stages'.
    import shutil

    copy = tmp_path / "pipe"
    shutil.copytree(pipeline_dir, copy, ignore=shutil.ignore_patterns("report"))
    (copy / "config.yaml").unlink()
    _, pipelines = find_pipelines(collect_runs([str(copy / s) for s in STAGES]))
    (pipeline,) = pipelines
    assert pipeline.targets == list(PIPELINE_TARGETS)  # the bundle's order, not alphabetical
    assert list(pipeline.stages) == STAGES
    # one stage run alone, without a pipeline's config, is just a run
    _, alone = find_pipelines(collect_runs([str(copy / "finetune_kn")]))
    assert alone == []


def test_a_report_of_part_of_a_pipeline_stays_a_plain_report(
    pipeline_dir: Path, tmp_path: Path
) -> None:
    cfg = report_config(pipeline_dir, [pipeline_dir / "eval"])
    cfg.rows, cfg.cols = ["lang"], []
    cfg.report.out_dir = str(tmp_path / "out")
    _, artifacts = report(cfg)
    page = artifacts["report.html"].read_text(encoding="utf-8")
    assert 'id="summary"' not in page and "bundle_confusion.png" not in artifacts
    assert {"heatmap_test-lang-acc.png", "bars_test-lang-acc.png"} <= set(artifacts)
    table = artifacts["table_test-lang-acc.md"].read_text(encoding="utf-8")
    assert "| mean |" in table  # the mean over the bundle's languages, as asked


def test_a_bundle_of_many_languages_gets_its_confusion_summed_over_them() -> None:
    from xlvision.report.collect import Run
    from xlvision.report.story import MAX_CONFUSION_LANGUAGES, bundle_confusions

    codes = [f"l{k}" for k in range(MAX_CONFUSION_LANGUAGES + 1)]
    confusion = {f"test/{c}": [[3, 1], [0, 4]] for c in codes}
    confusion |= {f"test/{c}/routed": [[2, 2], [1, 3]] for c in codes}
    run = Run(Path("eval"), config=None, status="completed", confusion=confusion)
    panels = bundle_confusions(run)
    n = len(codes)
    assert list(panels) == [
        f"all {n} languages · script given",
        f"all {n} languages · script not given",
    ]
    assert panels[f"all {n} languages · script not given"].tolist() == [[2 * n, 2 * n], [n, 3 * n]]
