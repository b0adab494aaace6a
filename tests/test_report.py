"""xlv-report on a fake sweep: aggregation, tables, figures, HTML, config and CLI.

Std is the sample standard deviation (n − 1 denominator), as printed in every table.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fake_runs import make_sweep, write_run
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig
from PIL import Image

import xlvision
from xlvision.cli.report import escape_placeholder
from xlvision.paths import config_dir
from xlvision.report.collect import collect_runs, find_run_dirs, load_run
from xlvision.report.options import ReportError, ReportOptions
from xlvision.report.pivot import build_pivot, varying_keys
from xlvision.report.stage import report
from xlvision.report.tables import csv_table, latex_table, markdown_table

ACC = "test/{lang}/acc"


def report_config(tmp_path: Path, *overrides: str, hydra: bool = False) -> DictConfig:
    """The real conf/report.yaml, composed with `overrides` and an out dir under tmp_path."""
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose(
            config_name="report",
            overrides=[f"report.out_dir={tmp_path / 'out'}", *overrides],
            return_hydra_config=hydra,
        )


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    return make_sweep(tmp_path)


@pytest.fixture
def runs(sweep: Path):
    return collect_runs([str(sweep)])


def test_report_yaml_composes_and_validates(tmp_path: Path) -> None:
    cfg = report_config(tmp_path, "runs=[a/*,b]", "rows=finetune", r"metric=[test/\{lang\}/f1]")
    options = ReportOptions.from_config(cfg)
    assert options.runs == ("a/*", "b")
    assert (options.rows, options.cols) == (("finetune",), ("model",))
    assert options.metrics == ("test/{lang}/f1",)
    assert options.out_dir == tmp_path / "out"
    assert options.precision == 3 and options.shots_key == "data.shots_per_class"
    assert options.is_lower_better("train_time_s") and options.is_lower_better("val/loss")
    assert not options.is_lower_better("test/{lang}/acc")


def test_report_yaml_puts_the_hydra_run_dir_under_outputs_reports(tmp_path: Path) -> None:
    from xlvision.config.resolvers import register_resolvers

    register_resolvers()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(config_name="report", overrides=["runs=x"], return_hydra_config=True)
        again = compose(config_name="report", overrides=["runs=x"], return_hydra_config=True)
    assert cfg.hydra.run.dir == cfg.report.out_dir
    assert str(cfg.report.out_dir).startswith("outputs/reports/20")
    # Two reports started in the same second write to two dirs (a random suffix, as runs get).
    assert cfg.report.out_dir != again.report.out_dir
    assert cfg.hydra.output_subdir is None and cfg.hydra.job.chdir is False
    assert list(cfg.metric) == [ACC] and list(cfg.rows) == ["language"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ((), "runs= is required"),
        (("runs=x", "rows=model"), "rows= and cols= both contain model"),
        (("runs=x", "rows=lang", "metric=train_time_s"), "metric 'train_time_s' has no {lang}"),
        (("runs=x", "precision=-1"), "precision= must be an integer from 0 to 10, got -1"),
        (("runs=x", "metric=[]"), "metric= is empty"),
    ],
)
def test_bad_report_config_fails_with_one_line(tmp_path, overrides, message) -> None:
    with pytest.raises(ReportError, match=message) as caught:
        ReportOptions.from_config(report_config(tmp_path, *overrides))
    assert "\n" not in str(caught.value)


def test_an_axis_key_no_run_has_is_refused(sweep: Path, tmp_path: Path) -> None:
    cfg = report_config(tmp_path, f"runs=[{sweep}]", "rows=modle", "cols=[]")
    with pytest.raises(ReportError, match=r"^rows=modle: no run's config has this key"):
        report(cfg)
    assert not (tmp_path / "out" / "report.html").exists()


def test_find_run_dirs_recurses_globs_and_sorts_naturally(sweep: Path, tmp_path: Path) -> None:
    (sweep / "10").mkdir()
    (sweep / "10" / "metrics.json").write_text("{}", encoding="utf-8")
    found = find_run_dirs([str(sweep), str(sweep / "1"), str(tmp_path / "multirun" / "*")])
    assert [p.name for p in found] == [str(i) for i in range(11)]
    assert find_run_dirs(["multirun/*/*/3"], base=tmp_path) == [(sweep / "3").resolve()]
    assert find_run_dirs([str(sweep / "2" / "config.yaml")]) == [(sweep / "2").resolve()]


def test_runs_matching_nothing_fail_naming_the_patterns(tmp_path: Path) -> None:
    with pytest.raises(ReportError) as caught:
        find_run_dirs([str(tmp_path / "nope" / "*"), "elsewhere"], base=tmp_path)
    message = str(caught.value)
    assert "nope/*" in message and "'elsewhere'" in message and "\n" not in message


def test_run_status_and_corrupt_metrics_warn_once(sweep: Path, caplog) -> None:
    with caplog.at_level(logging.WARNING):
        runs = collect_runs([str(sweep)])
    assert [r.status for r in runs] == ["completed"] * 5 + ["failed", "completed", "completed"] + [
        "failed",
        "incomplete",
    ]
    assert runs[5].error == "CUDA out of memory"
    assert runs[8].error.startswith("unreadable metrics.json: Unterminated string")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert warnings[0].startswith(f"{sweep / '8' / 'metrics.json'}: unreadable metrics.json")
    assert runs[0].label("model") == "net" and runs[0].label("language") == "kn"
    assert runs[0].label("optimizer") == "Adam" and runs[0].label("optimizer.lr") == "0.001"
    assert runs[0].label("integrate") == "none"


def test_a_running_record_whose_process_is_gone_reads_as_interrupted(tmp_path: Path) -> None:
    import json as _json

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    records = {"killed": int(dead.stdout), "going": os.getpid()}
    for name, pid in records.items():
        run_dir = write_run(tmp_path / "sweep" / name, ["kn"], "net", 0)
        record = {"status": "running", "stage": "train", "metrics": {}, "artifacts": {"pid": pid}}
        (run_dir / "metrics.json").write_text(_json.dumps(record))
    runs = {run.path.name: run for run in collect_runs([str(tmp_path / "sweep")])}
    assert runs["killed"].status == "interrupted" and "interrupted" in runs["killed"].error
    assert runs["going"].status == "running"
    cell = build_pivot([runs["killed"]], ["language"], ["model"], ACC).cell(("kn",), ("net",))
    assert cell.status == "interrupted"


def test_config_falls_back_to_hydra_files(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "run", ["kn"], "resnet18", 4, {"test/kn/acc": 0.5})
    (run_dir / "config.yaml").rename(run_dir / ".hydra" / "config.yaml")
    assert load_run(run_dir).label("model") == "resnet18"
    (run_dir / ".hydra" / "config.yaml").unlink()
    run = load_run(run_dir)
    assert (run.label("model"), run.label("seed"), run.languages) == ("resnet18", "4", ["kn"])


def test_pivot_aggregates_mean_sample_std_and_n(runs) -> None:
    pivot = build_pivot(runs, ["language"], ["model"], ACC)
    assert pivot.rows == [("ar",), ("hi",), ("kn",)]
    assert pivot.cols == [("net",), ("resnet18",)]
    kn_net = pivot.cell(("kn",), ("net",))
    assert kn_net.n == 3
    assert kn_net.mean == pytest.approx(0.92, abs=1e-12)
    assert kn_net.std == pytest.approx(0.02, abs=1e-12)
    kn_resnet = pivot.cell(("kn",), ("resnet18",))
    assert (kn_resnet.n, len(kn_resnet.failed)) == (2, 1)
    assert kn_resnet.std == pytest.approx(math.sqrt(2) * 0.01, abs=1e-12)
    ar_net = pivot.cell(("ar",), ("net",))
    assert (ar_net.n, len(ar_net.failed), ar_net.mean) == (2, 1, pytest.approx(0.83))
    assert ar_net.std == pytest.approx(0.03 * math.sqrt(2), abs=1e-12)
    assert pivot.cell(("ar",), ("resnet18",)).status == "missing"
    assert pivot.cell(("hi",), ("net",)).status == "incomplete"
    assert pivot.missing_cells() == [
        (("ar",), ("resnet18",)),
        (("hi",), ("net",)),
        (("hi",), ("resnet18",)),
    ]
    assert varying_keys(pivot) == {"seed": 3}


def test_mean_row_is_mean_and_std_over_rows_and_says_so(runs, tmp_path) -> None:
    pivot = build_pivot(runs, ["language"], ["model"], ACC).with_mean_row()
    assert pivot.rows[-1] == ("mean",)
    net = pivot.cell(("mean",), ("net",))
    # Each language counts once (kn's three runs are one row mean); hi has no value.
    assert (net.over_rows, net.mean) == (2, pytest.approx((0.92 + 0.83) / 2))
    assert net.std == pytest.approx(math.sqrt(2) * 0.045)
    assert pivot.cell(("mean",), ("resnet18",)).values == pytest.approx([0.96])
    rows = markdown_table(pivot, 3).splitlines()
    # Not `(n=2)`, which would read like two runs: the spread is over rows, and a mean over
    # fewer rows than the table has says how many.
    assert rows[-1] == (
        "| mean ± std over rows | 0.875 ± 0.064 (2 of 3 rows) | 0.960 (1 of 3 rows) |"
    )
    # Means over different rows are not compared: nothing in the mean row is bold.
    assert all(row != ("mean",) for row, _ in pivot.best_cells(3))
    assert ReportOptions.from_config(report_config(tmp_path, "runs=x", "mean_row=true")).mean_row
    with pytest.raises(ReportError, match="mean_row= must be true or false, got 'yes'"):
        ReportOptions.from_config(report_config(tmp_path, "runs=x", "mean_row=yes"))


def test_bold_follows_the_compared_axis_and_the_metric_direction(runs) -> None:
    # With cols, the best col of each row: kn's best model; ar has one model, nothing to bold.
    acc = build_pivot(runs, ["language"], ["model"], ACC)
    assert acc.bold_axis == "row" and acc.best_cells(3) == {(("kn",), ("resnet18",))}
    seconds = build_pivot(runs, ["language"], ["model"], "train_time_s", lower_is_better=True)
    assert seconds.best_cells(3) == {(("kn",), ("net",))}
    # Without cols, the best row.
    by_model = build_pivot(runs, ["model"], [], "train_time_s", lower_is_better=True)
    assert by_model.bold_axis == "column" and by_model.best_cells(3) == {(("net",), ())}
    # Languages alone, one column: nothing is compared, so nothing is bold.
    by_language = build_pivot(runs, ["language"], [], ACC)
    assert by_language.bold_axis == "none" and by_language.best_cells(3) == set()
    assert "in bold" not in markdown_table(by_language, 3)
    # Nor sets of scripts left out of a bundle (`xlv-eval outside=[…]`): data, not a choice.
    from xlvision.report.pivot import Pivot

    folds = Pivot("test/outside/auroc", ("outside",), (), [("bn,fa",), ("kn,te",)], [()], {})
    assert folds.bold_axis == "none"
    tied = build_pivot(runs, ["model"], [], "trainable_params")
    assert tied.best_cells(3) == {(("net",), ()), (("resnet18",), ())}
    # A mean row is not one of the rows compared.
    assert build_pivot(runs, ["model"], [], ACC).with_mean_row().best_cells(3) == {
        (("resnet18",), ())
    }


def _grid(root: Path, table: dict[tuple[str, str], list[float]]) -> list:
    """Runs of `test/<lang>/acc` per (language, model), one per value (seeds 0, 1, …)."""
    index = 0
    for (lang, model), values in table.items():
        for seed, acc in enumerate(values):
            write_run(root / str(index), [lang], model, seed, {f"test/{lang}/acc": acc})
            index += 1
    return collect_runs([str(root)])


def test_with_cols_model_the_best_model_of_each_language_is_bold(tmp_path: Path) -> None:
    # kn is the easy language for both models: bolding per column would bold kn twice.
    runs = _grid(
        tmp_path,
        {("kn", "net"): [0.97], ("kn", "resnet18"): [0.95], ("ar", "net"): [0.70]}
        | {("ar", "resnet18"): [0.80]},
    )
    text = markdown_table(build_pivot(runs, ["language"], ["model"], ACC), 3)
    lines = text.splitlines()
    assert lines[0] == (
        "**Test accuracy, script given** `test/{lang}/acc` by language × model. "
        "One run per cell. Best per row in bold (higher is better)."
    )
    assert lines[4:] == ["| ar | 0.700 | **0.800** |", "| kn | **0.970** | 0.950 |"]
    assert "n=" not in text


def test_n_is_said_once_when_every_cell_has_the_same(tmp_path: Path) -> None:
    values = {("kn", "net"): [0.90, 0.92, 0.94], ("ar", "net"): [0.80, 0.82, 0.84]}
    pivot = build_pivot(_grid(tmp_path, values), ["language"], ["model"], ACC)
    text = markdown_table(pivot, 3)
    assert "Mean ± sample std over 3 runs per cell, aggregated over seed (3 values)." in text
    assert "| kn | 0.920 ± 0.020 |" in text and "n=" not in text
    assert "($n$=" not in latex_table(pivot, 3)
    # One model per row: nothing compared, nothing bold, and the caption says no bold.
    assert "**" not in text.split("\n", 1)[1] and "in bold" not in text


def test_counts_print_as_whole_numbers_without_a_zero_spread(tmp_path: Path) -> None:
    # trainable_params is the same in every seed: `6,154`, not `6154.000 ± 0.000`.
    index = 0
    for model, params in (("net", [6154, 6154]), ("resnet18", [148270, 148272])):
        for seed, count in enumerate(params):
            write_run(tmp_path / str(index), ["kn"], model, seed, {"trainable_params": count})
            index += 1
    runs = collect_runs([str(tmp_path)])
    pivot = build_pivot(runs, ["language"], ["model"], "trainable_params", lower_is_better=True)
    assert "| kn | **6,154** | 148,271 ± 1.4 |" in markdown_table(pivot, 3)


def test_markdown_table(runs) -> None:
    text = markdown_table(build_pivot(runs, ["language"], ["model"], ACC), 3)
    lines = text.splitlines()
    assert lines[0] == (
        "**Test accuracy, script given** `test/{lang}/acc` by language × model. "
        "Mean ± sample std over the n runs of each cell, aggregated over seed (3 values). "
        "Best per row in bold (higher is better)."
    )
    assert lines[2:] == [
        "| language | net | resnet18 |",
        "|:---|:---:|:---:|",
        "| ar | 0.830 ± 0.042 (n=2, 1 failed) | — |",
        "| hi | incomplete (n=1) | — |",
        "| kn | 0.920 ± 0.020 (n=3) | **0.960 ± 0.014** (n=2, 1 failed) |",
    ]


def test_latex_table_is_a_captioned_booktabs_float(runs) -> None:
    pivot = build_pivot(runs, ["language"], ["finetune.name", "model"], "train_time_s", True)
    lines = latex_table(pivot, 1, label="train-time").splitlines()
    assert lines[:3] == [r"% needs \usepackage{booktabs}", r"\begin{table}[htbp]", r"\centering"]
    assert lines[3] == (
        r"\caption{Training time (s) {\footnotesize\texttt{train\_time\_s}} by language "
        r"$\times$ finetune.name / model. Mean $\pm$ sample std over the n runs of each cell, "
        r"aggregated over seed (3 values). Best per row in bold (lower is better).}"
    )
    assert lines[4:9] == [
        r"\label{tab:train-time}",
        r"\begin{tabular}{lcc}",
        r"\toprule",
        r"language & full / net & full / resnet18 \\",
        r"\midrule",
    ]
    assert lines[9:12] == [
        r"ar & 8.5 $\pm$ 0.7 {\scriptsize ($n$=2, 1 failed)} & --- \\",
        r"hi & incomplete ($n$=1) & --- \\",
        r"kn & \textbf{12.0 $\pm$ 2.0} {\scriptsize ($n$=3)} & "
        r"32.0 $\pm$ 2.8 {\scriptsize ($n$=2, 1 failed)} \\",
    ]
    assert lines[12:] == [r"\bottomrule", r"\end{tabular}", r"\end{table}"]


def test_latex_sets_the_mean_row_apart(runs) -> None:
    pivot = build_pivot(runs, ["language"], ["model"], ACC).with_mean_row()
    lines = latex_table(pivot, 3).splitlines()
    assert lines[-5:-3] == [
        r"\midrule",
        r"mean $\pm$ std over rows & 0.875 $\pm$ 0.064 {\scriptsize (2 of 3 rows)} & "
        r"0.960 {\scriptsize (1 of 3 rows)} \\",
    ]


def test_latex_escapes_labels(tmp_path: Path) -> None:
    extra = {"finetune": {"name": "linear_probe"}, "tag": "50% & #1"}
    write_run(tmp_path / "0", ["kn"], "net", 0, {"test/kn/acc": 0.5}, extra=extra)
    write_run(tmp_path / "1", ["kn"], "net", 0, {"test/kn/acc": 0.7}, extra={"tag": "b_2"})
    pivot = build_pivot(collect_runs([str(tmp_path)]), ["tag"], ["finetune"], ACC)
    lines = latex_table(pivot, 2).splitlines()
    assert lines[7] == r"tag & full & linear\_probe \\"
    assert lines[9] == r"50\% \& \#1 & --- & 0.50 \\"
    assert lines[10] == r"b\_2 & 0.70 & --- \\"


def test_csv_table_has_mean_std_n_per_cell(runs) -> None:
    text = csv_table(build_pivot(runs, ["language"], ["model"], ACC), 3)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == [
        "language",
        "model",
        "metric",
        "mean",
        "std",
        "n",
        "over",
        "n_failed",
        "n_incomplete",
        "status",
        "best",
    ]
    by_cell = {(r["language"], r["model"]): r for r in rows}
    assert len(by_cell) == 6
    kn_net = by_cell["kn", "net"]
    assert (float(kn_net["mean"]), float(kn_net["std"]), kn_net["n"]) == (0.92, 0.02, "3")
    assert kn_net["over"] == "runs"
    assert by_cell["kn", "resnet18"]["best"] == "1" and kn_net["best"] == "0"
    assert by_cell["ar", "net"]["best"] == "0"  # the only value of its row: nothing compared
    assert by_cell["kn", "resnet18"]["n_failed"] == "1"
    assert by_cell["ar", "resnet18"] == {
        **by_cell["ar", "resnet18"],
        "mean": "",
        "std": "",
        "n": "0",
        "status": "missing",
    }
    assert by_cell["hi", "net"]["status"] == "incomplete"


def test_lang_axis_spreads_multilanguage_runs(tmp_path: Path, caplog) -> None:
    for index, (method, seed, kn, ar) in enumerate(
        [("average", 0, 0.7, 0.6), ("average", 1, 0.8, 0.6), ("ties", 0, 0.9, 0.5)]
    ):
        metrics = {"test/kn/acc": kn, "test/ar/acc": ar, "test/mean/acc": (kn + ar) / 2}
        extra = {"integrate": {"name": method}, "stage": "integrate"}
        write_run(tmp_path / str(index), ["kn", "ar"], "net", seed, metrics, extra=extra)
    write_run(tmp_path / "3", ["kn", "ar"], "net", 0, status="failed", extra=extra)
    runs = collect_runs([str(tmp_path)])
    assert runs[0].label("language") == "kn+ar"
    pivot = build_pivot(runs, ["integrate"], ["lang"], ACC)
    assert pivot.cols == [("ar",), ("kn",), ("mean",)]
    assert pivot.cell(("average",), ("kn",)).mean == pytest.approx(0.75)
    assert pivot.cell(("average",), ("ar",)).std == 0.0
    assert pivot.cell(("ties",), ("mean",)).mean == pytest.approx(0.7)
    assert [len(pivot.cell(("ties",), (c,)).failed) for c in ("ar", "kn", "mean")] == [1, 1, 0]
    with caplog.at_level(logging.WARNING):
        ambiguous = build_pivot(runs, ["integrate"], [], ACC)
    assert ambiguous.cell(("average",), ()).status == "no metric"
    assert "{lang} is ambiguous for 3 run(s)" in caplog.text


def test_lang_means_add_a_row_per_run_over_the_named_languages(tmp_path: Path) -> None:
    for seed, (kn, ar, hi) in enumerate([(0.9, 0.7, 0.2), (0.8, 0.6, 0.4)]):
        metrics = {"test/kn/acc": kn, "test/ar/acc": ar, "test/hi/acc": hi, "test/kn/f1": kn}
        write_run(tmp_path / "runs" / str(seed), ["kn", "ar", "hi"], "net", seed, metrics)
    cfg = report_config(
        tmp_path,
        f"runs=[{tmp_path / 'runs'}]",
        "rows=lang",
        "cols=[]",
        r"metric=[test/\{lang\}/acc,test/\{lang\}/f1]",
        "lang_means={dev: [kn, ar]}",
    )
    report(cfg)
    table = (tmp_path / "out" / "table_test-lang-acc.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert rows[-1] == "| mean_dev | 0.750 ± 0.071 |"  # (0.8, 0.7): hi left out
    assert "over 2 runs per cell" in table
    assert [r.split(" |")[0] for r in rows[1:]] == ["| ar", "| hi", "| kn", "| mean_dev"]
    # f1 is reported for kn only: a mean over part of the languages is not written.
    assert "mean_dev" not in (tmp_path / "out" / "table_test-lang-f1.md").read_text()
    with pytest.raises(ReportError, match="lang_means.dev must be a non-empty list"):
        ReportOptions.from_config(report_config(tmp_path, "runs=x", "lang_means={dev: []}"))


def _png_ok(path: Path) -> None:
    assert path.stat().st_size > 1000
    with Image.open(path) as image:
        assert image.format == "PNG" and min(image.size) > 100
        image.load()


def test_report_writes_every_artifact(sweep: Path, tmp_path: Path, capsys) -> None:
    cfg = report_config(tmp_path, f"runs=[{sweep}]", r"metric=[test/\{lang\}/acc,train_time_s]")
    metrics, artifacts = report(cfg)
    assert metrics == {
        "report/runs": 10,
        "report/completed": 7,
        "report/failed": 2,
        "report/incomplete": 1,
        "report/interrupted": 0,
        "report/running": 0,
        "report/missing_cells": 6,
    }
    out = tmp_path / "out"
    expected = {
        f"table_{slug}.{ext}"
        for slug in ("test-lang-acc", "train-time-s")
        for ext in ("md", "tex", "csv")
    }
    stems = ["heatmap_test-lang-acc", "bars_test-lang-acc", "heatmap_train-time-s"]
    stems += ["bars_train-time-s", "confusion_test-kn", "confusion_test-ar", "training_curves"]
    expected |= {f"{stem}.{ext}" for stem in stems for ext in ("png", "svg")}
    assert set(artifacts) == expected | {"report.html"}
    assert all(path.parent == out and path.is_file() for path in artifacts.values())
    for name, path in artifacts.items():
        if name.endswith(".png"):
            _png_ok(path)
        if name.endswith(".svg"):
            assert b"<svg" in path.read_bytes()[:2000]
    printed = capsys.readouterr().out
    assert "0.920 ± 0.020 (n=3)" in printed and "CUDA out of memory" in printed
    assert "Test accuracy, script given" in printed
    assert f"report: {out / 'report.html'}" in printed
    page = artifacts["report.html"].read_text(encoding="utf-8")
    assert page.count("<table data-metric=") == 2
    assert "<strong>0.960 ± 0.014</strong>" in page and "<strong>0.920" not in page
    assert "Test accuracy, script given <small><code>test/{lang}/acc</code></small>" in page
    assert "Best per row in bold (higher is better)." in page
    assert (
        '<td class="failed">' not in page and '<td class="incomplete">incomplete (n=1)</td>' in page
    )
    assert page.count('<td class="missing">—</td>') == 4
    assert "CUDA out of memory" in page and "unreadable metrics.json" in page
    assert page.count('<details class="run">') == 10
    assert page.count('src="data:image/png;base64,') == 7
    assert "aggregated over seed (3 values)" in page
    # Paths as seen from the report's dir, none absolute.
    assert "<code>../multirun/2026-11-27/10-00-00_ab12</code>" in page
    assert str(tmp_path) not in page
    assert "http://" not in page and "https://" not in page


def test_report_draws_kshot_and_transfer_figures(tmp_path: Path) -> None:
    runs_dir = tmp_path / "kshot"
    index = 0
    for target, shots, seed in [
        (t, k, s) for t in ("kn", "ar") for k in (1, 5, 10) for s in (0, 1)
    ]:
        acc = 0.5 + 0.04 * shots + 0.01 * seed
        extra = {"source": {"code": "en", "name": "English"}, "target": target}
        write_run(
            runs_dir / str(index),
            [target],
            "net",
            seed,
            {f"test/{target}/acc": acc},
            shots=shots,
            extra=extra,
        )
        index += 1
    cfg = report_config(tmp_path, f"runs=[{runs_dir}]", "cols=[]")
    _, artifacts = report(cfg)
    for stem in ("kshot_test-lang-acc", "transfer_test-lang-acc", "bars_test-lang-acc"):
        _png_ok(artifacts[f"{stem}.png"])
        assert artifacts[f"{stem}.svg"].stat().st_size > 1000
    runs = collect_runs([str(runs_dir)])
    curve = build_pivot(runs, ["language"], ["data.shots_per_class"], ACC)
    assert curve.cols == [("1",), ("5",), ("10",)]
    assert curve.cell(("kn",), ("10",)).mean == pytest.approx(0.905)
    assert curve.cell(("kn",), ("10",)).std == pytest.approx(math.sqrt(0.00005))
    transfer = build_pivot(runs, ["source"], ["target"], ACC)
    assert (transfer.rows, transfer.cols) == ([("en",)], [("ar",), ("kn",)])
    assert transfer.cell(("en",), ("kn",)).n == 6


def test_escape_placeholder_lets_lang_through_hydra() -> None:
    assert escape_placeholder("metric=test/{lang}/acc") == r"metric=test/\{lang\}/acc"
    assert escape_placeholder(r"metric=test/\{lang\}/acc") == r"metric=test/\{lang\}/acc"
    assert escape_placeholder('metric="test/{lang}/acc"') == 'metric="test/{lang}/acc"'


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(Path(xlvision.__file__).parents[1])}
    command = [sys.executable, "-m", "xlvision.cli.report", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_cli_reports_a_sweep_given_relative_globs(sweep: Path, tmp_path: Path) -> None:
    done = _cli("runs=multirun/*/*", "rows=model", "cols=language", f"metric={ACC}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    reports = list((tmp_path / "outputs" / "reports").glob("*/report.html"))
    assert len(reports) == 1
    assert f"report: {reports[0].resolve()}" in done.stdout.replace("\n", "")
    table = (reports[0].parent / "table_test-lang-acc.md").read_text(encoding="utf-8")
    assert (
        "| net | 0.830 ± 0.042 (n=2, 1 failed) | incomplete (n=1) | **0.920 ± 0.020** (n=3) |"
        in table
    )


def test_cli_fails_with_one_line_when_runs_match_nothing(tmp_path: Path) -> None:
    done = _cli("runs=[nothing/here/*,gone]", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "xlv-report: runs= matched no run dirs (none holds config.yaml or metrics.json): "
        "'nothing/here/*', 'gone'"
    ]


def test_validation_curves_name_each_language(monkeypatch, tmp_path: Path) -> None:
    from xlvision.report import plots

    captured = {}
    monkeypatch.setattr(plots, "save_figure", lambda fig, stem: captured.setdefault("fig", fig))
    log = {
        "train/loss": ([0, 1], [2.0, 1.0]),
        "val/kn/acc": ([0, 1], [0.5, 0.7]),
        "val/ar/acc": ([0, 1], [0.4, 0.6]),
    }
    plots.plot_training_curves({"net": [log, log]}, tmp_path / "curves")
    acc_ax = captured["fig"].axes[1]
    labels = acc_ax.get_legend_handles_labels()[1]
    assert labels == ["net · ar", "net · kn"]  # each language once, named


@pytest.mark.parametrize(
    ("metric", "title"),
    [
        ("test/{lang}/acc", "Test accuracy, script given"),
        ("test/{lang}/routed_acc", "Test accuracy, script not given"),
        ("test/en/acc", "English test accuracy, script given"),
        ("zeroshot/kn/acc", "Kannada zero-shot test accuracy, script given"),
        ("val/mean/f1", "Validation macro F1, mean over languages"),
        ("test/mean_dev/acc", "Test accuracy, script given, mean over dev"),
        ("test/{lang}/page_lid_acc", "Test script named, per page"),
        (
            "test/outside/unknown_rate",
            "Test share answered unknown (?), languages outside the bundle",
        ),
        ("test/{lang}/answer_prior_acc", "Test accuracy, script not given, answer rule prior"),
        ("train_time_s", "Training time (s)"),
        ("test/{lang}/made_up", "test/{lang}/made_up"),
        ("finetune_kn/test/kn/acc", "finetune_kn/test/kn/acc"),
    ],
)
def test_metric_titles_read_as_words(metric: str, title: str) -> None:
    from xlvision.report.names import metric_title

    assert metric_title(metric) == title


def test_a_key_without_a_name_is_its_own_caption(runs) -> None:
    pivot = build_pivot(runs, ["language"], ["model"], "val/{lang}/made_up")
    first = markdown_table(pivot, 3).splitlines()[0]
    assert first.startswith("**val/{lang}/made_up** by language × model.") and "`" not in first
    assert r"\texttt" not in latex_table(pivot, 3).splitlines()[3]


def test_lower_is_better_by_default_for_calibration_error_unknowns_and_costs(
    tmp_path: Path,
) -> None:
    options = ReportOptions.from_config(report_config(tmp_path, "runs=x"))
    for metric in ("test/{lang}/ece", "test/kn/ece_given", "test/outside/unknown_rate") + (
        "trainable_params",
        "train_time_s",
    ):
        assert options.is_lower_better(metric), metric
    assert not options.is_lower_better("test/{lang}/acc_answered")


def test_aggregated_over_names_only_what_a_person_chose(tmp_path: Path) -> None:
    """Two pipelines (seeds 0, 1), each with sub-runs for kn and ar that have no overrides
    of their own: a cell pooling them lists the seed and the language, never a language's
    class names or fonts, nor an override that is the same everywhere."""
    for seed in (0, 1):
        job = tmp_path / "sweep" / str(seed)
        for code in ("kn", "ar"):
            extra = {
                "language": {code: {"code": code, "class_names": [f"{code}{i}" for i in range(10)]}}
            }
            write_run(
                job / f"finetune_{code}",
                [code],
                "net",
                seed,
                {f"test/{code}/acc": 0.5},
                extra=extra,
            )
            (job / f"finetune_{code}" / ".hydra" / "overrides.yaml").unlink()
            (job / f"finetune_{code}" / ".hydra").rmdir()
        (job / ".hydra").mkdir()
        (job / ".hydra" / "overrides.yaml").write_text(
            f"- seed={seed}\n- optimizer.lr=0.01\n- hydra.sweep.dir=/sweeps/{seed}\n"
        )
    runs = collect_runs([str(tmp_path / "sweep" / "*" / "finetune_*")])
    assert runs[0].chosen == {"seed": 0, "optimizer.lr": 0.01, "hydra.sweep.dir": "/sweeps/0"}
    assert varying_keys(build_pivot(runs, ["model"], [], ACC)) == {"language": 2, "seed": 2}
    assert varying_keys(build_pivot(runs, ["language"], ["model"], ACC)) == {"seed": 2}
    assert varying_keys(build_pivot(runs, ["lang"], ["model"], ACC)) == {"seed": 2}
    # A language every run reports (the source, after each target's fine-tune) pools them.
    for run in runs:
        run.metrics["test/en/acc"] = 0.4
    assert varying_keys(build_pivot(runs, ["lang"], ["model"], ACC)) == {"language": 2, "seed": 2}


def test_runs_without_any_overrides_are_compared_by_config_but_not_language_internals(
    tmp_path: Path,
) -> None:
    for index, (code, lr) in enumerate([("kn", 0.1), ("ar", 0.2)]):
        extra = {"language": {code: {"code": code, "fonts": [f"{code}.ttf"]}}, "lr": lr}
        run_dir = write_run(
            tmp_path / str(index), [code], "net", 0, {f"test/{code}/acc": 0.5}, extra=extra
        )
        (run_dir / ".hydra" / "overrides.yaml").unlink()
    pivot = build_pivot(collect_runs([str(tmp_path)]), ["model"], [], ACC)
    assert varying_keys(pivot) == {"language": 2, "lr": 2}


@pytest.fixture
def search(tmp_path: Path) -> Path:
    from fake_runs import make_search

    return make_search(tmp_path)


def test_a_search_gets_a_table_of_its_trials(search: Path, tmp_path: Path, capsys) -> None:
    cfg = report_config(tmp_path, f"runs=[{search}]", "cols=[]")
    _, artifacts = report(cfg)
    assert {"table_trials.md", "table_trials.tex", "table_trials.csv"} <= set(artifacts)
    lines = artifacts["table_trials.md"].read_text(encoding="utf-8").splitlines()
    assert lines[0] == (
        "**Search trials** of `../multirun/2026-11-28/09-00-00_cd34`. 4 trials (3 completed, "
        "1 failed); objective: Kannada validation accuracy, script given `val/kn/acc`, "
        "maximized. The best trial in bold."
    )
    assert lines[2] == (
        "| trial | finetune | finetune.lr | optimizer.weight_decay | val/kn/acc | status |"
    )
    assert lines[4:] == [
        "| 0 | lora | 0.00123 | 1.5e-05 | 0.910 | completed |",
        "| 1 | full | 0.0042 | 0.0003 | — | failed |",
        "| 2 | l2sp | 0.000271 | 2e-06 | **0.950** | completed |",
        "| 3 | bitfit | 0.0087 | 0.0061 | 0.880 | completed |",
    ]
    rows = list(csv.DictReader(io.StringIO(artifacts["table_trials.csv"].read_text())))
    assert [(r["trial"], r["finetune.lr"], r["objective"], r["best"]) for r in rows] == [
        ("0", "0.0012345678", "0.91", "0"),
        ("1", "0.0042", "", "0"),
        ("2", "0.00027123", "0.95", "1"),
        ("3", "0.0087", "0.88", "0"),
    ]
    assert rows[1]["status"] == "failed" and rows[1]["error"] == "CUDA out of memory"
    tex = artifacts["table_trials.tex"].read_text()
    assert r"2 & l2sp & 0.000271 & 2e-06 & \textbf{0.950} & completed \\" in tex
    page = artifacts["report.html"].read_text(encoding="utf-8")
    assert "<h2>Search trials</h2>" in page
    assert "<td>0.000271</td><td>2e-06</td><td><strong>0.950</strong></td>" in page
    # The pivot of the same runs says what its cells pool: the searched parameters.
    table = artifacts["table_test-lang-acc.md"].read_text(encoding="utf-8")
    # (the failed trial gave no value: it is counted as failed, not as a value pooled)
    assert "aggregated over finetune (3 values), finetune.lr (3 values)" in table
    assert "| kn | 0.893 ± 0.035 (1 failed) |" in table
    printed = capsys.readouterr().out
    assert "Search trials of ../multirun/2026-11-28/09-00-00_cd34" in printed
    assert "optimizer.weight_decay" in printed and "0.000271" in printed


def test_an_unfinished_search_says_so_and_a_grid_sweep_has_no_trials(
    tmp_path: Path, sweep: Path
) -> None:
    from fake_runs import make_search

    from xlvision.report.trials import find_studies, trials_markdown

    unfinished = make_search(tmp_path / "unfinished", finished=False)
    (study,) = find_studies(collect_runs([str(unfinished)]))
    assert study.params == ("finetune", "finetune.lr", "optimizer.weight_decay")
    assert (study.objective, study.direction, study.best_trials()) == (
        "val/kn/acc",
        "maximize",
        {2},
    )
    text = trials_markdown(study, 3, tmp_path)
    assert "the study has not ended (no `optimization_results.yaml`)" in text
    assert find_studies(collect_runs([str(sweep)])) == []


def test_a_minimizing_search_bolds_its_smallest_objective(tmp_path: Path) -> None:
    from fake_runs import make_search
    from omegaconf import OmegaConf

    from xlvision.report.trials import find_studies

    search = make_search(tmp_path)
    for trial in search.iterdir():
        hydra = trial / ".hydra" / "hydra.yaml"
        if hydra.is_file():
            cfg = OmegaConf.load(hydra)
            cfg.hydra.sweeper.direction = "minimize"
            OmegaConf.save(cfg, hydra)
    (study,) = find_studies(collect_runs([str(search)]))
    assert study.lower_is_better and study.best_trials() == {3}


def test_latex_tables_compile_with_pdflatex(search: Path, sweep: Path, tmp_path: Path) -> None:
    import shutil

    from xlvision.report.trials import find_studies, trials_latex

    pdflatex = shutil.which("pdflatex")
    if pdflatex is None:
        pytest.skip("pdflatex is not installed")
    runs = collect_runs([str(sweep)])
    tables = [
        latex_table(build_pivot(runs, ["language"], ["model"], ACC).with_mean_row(), 3),
        latex_table(build_pivot(runs, ["finetune"], [], "train_time_s", True), 1, "time"),
    ]
    (study,) = find_studies(collect_runs([str(search)]))
    tables.append(trials_latex(study, 3, tmp_path))
    extra = {"finetune": {"name": "linear_probe"}, "tag": "50% & #1 ~x^"}
    write_run(tmp_path / "odd" / "0", ["kn"], "net", 0, {"test/kn/acc": 0.5}, extra=extra)
    odd = collect_runs([str(tmp_path / "odd")])
    tables.append(latex_table(build_pivot(odd, ["tag"], ["finetune"], ACC), 2, "odd"))
    for index, text in enumerate(tables):
        (tmp_path / f"t{index}.tex").write_text(text, encoding="utf-8")
    inputs = "\n".join(f"\\input{{t{index}.tex}}" for index in range(len(tables)))
    (tmp_path / "paper.tex").write_text(
        "\\documentclass{article}\n\\usepackage[T1]{fontenc}\n\\usepackage{booktabs}\n"
        f"\\begin{{document}}\n{inputs}\n\\end{{document}}\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [pdflatex, "-interaction=nonstopmode", "-halt-on-error", "paper.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert (tmp_path / "paper.pdf").stat().st_size > 1000


def test_a_job_that_never_wrote_its_record_is_listed_as_not_finished(
    sweep: Path, tmp_path: Path, capsys
) -> None:
    """A sweep's job stopped before its stage began holds only `.hydra/`: the report counts
    it in its cell and names it in the list of runs that did not finish."""
    hydra_dir = sweep / "10" / ".hydra"
    hydra_dir.mkdir(parents=True)
    config = (sweep / "0" / "config.yaml").read_text().replace("seed: 0", "seed: 3")
    (hydra_dir / "config.yaml").write_text(config)
    runs = collect_runs([str(sweep)])
    assert runs[-1].path == (sweep / "10").resolve()
    assert (runs[-1].status, runs[-1].label("model"), runs[-1].label("seed")) == (
        "incomplete",
        "net",
        "3",
    )
    metrics, _ = report(report_config(tmp_path, f"runs=[{sweep}]"))
    assert (metrics["report/runs"], metrics["report/incomplete"]) == (11, 2)
    lines = capsys.readouterr().out.splitlines()
    start = lines.index("not finished (4 of 11 runs):")
    listed = [line.split(maxsplit=2) for line in lines[start + 1 : start + 5]]
    assert [(status, path) for status, path, _ in listed] == [
        ("failed", f"{sweep / '5'}:"),
        ("failed", f"{sweep / '8'}:"),
        ("incomplete", f"{sweep / '9'}:"),
        ("incomplete", f"{sweep / '10'}:"),
    ]
    assert listed[-1][2] == "no metrics.json: the run did not finish"


def test_figures_false_writes_the_same_tables_and_page_without_a_figure(sweep, tmp_path) -> None:
    """figures=false: a script that only reads the tables skips every plot (run.sh pages that
    call the report dozens of times); the tables are the same files, byte for byte."""
    drawn = tmp_path / "drawn"
    _, with_figures = report(report_config(drawn, f"runs=[{sweep}]"))
    plain = tmp_path / "plain"
    _, without = report(report_config(plain, f"runs=[{sweep}]", "figures=false"))
    assert any(p.suffix == ".png" for p in with_figures.values())
    assert not list((plain / "out").glob("*.png")) and not list((plain / "out").glob("*.svg"))
    tables = {n: p for n, p in with_figures.items() if p.suffix in (".md", ".csv", ".tex")}
    assert tables and {n: without[n].read_bytes() for n in tables} == {
        n: p.read_bytes() for n, p in tables.items()
    }
    assert "<img" not in without["report.html"].read_text()
    with pytest.raises(ReportError, match="figures= must be true or false, got 'no'"):
        ReportOptions.from_config(report_config(tmp_path, "runs=x", "figures=no"))
