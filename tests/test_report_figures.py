"""What a reader of the report's figures checks: a legend never covers the bars or lines,
an error bar only where there is a spread, every curve named."""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_runs import make_sweep

from xlvision.report import plots
from xlvision.report.collect import collect_runs
from xlvision.report.pivot import build_pivot


@pytest.fixture
def drawn(monkeypatch) -> list:
    """The figures the plot functions make, instead of their files."""
    figures = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, stem: figures.append(fig) or {})
    return figures


def legend_is_outside(ax) -> bool:
    ax.figure.draw_without_rendering()
    legend, frame = ax.get_legend().get_window_extent(), ax.get_window_extent()
    return legend.x0 >= frame.x1 or legend.y1 <= frame.y0


def test_bars_have_error_bars_only_where_a_cell_has_a_spread(drawn, tmp_path: Path) -> None:
    runs = collect_runs([str(make_sweep(tmp_path))])
    # kn/net 3 runs, kn/resnet18 2, ar/net 2 (and a corrupt one), ar/resnet18 none, hi/net 0
    pivot = build_pivot(runs, ["language"], ["model"], "test/{lang}/acc")
    plots.plot_bars(pivot, tmp_path / "bars")
    (ax,) = drawn[0].axes
    bars = [b for container in ax.containers if hasattr(container, "patches") for b in container]
    assert len(bars) == 6  # 3 languages × 2 models, empty ones at height 0
    error_bars = [c for c in ax.containers if type(c).__name__ == "ErrorbarContainer"]
    spans = [len(c.lines[2][0].get_segments()) for c in error_bars]
    assert sum(spans) == 3  # kn/net, kn/resnet18, ar/net: the cells with n ≥ 2
    assert legend_is_outside(ax)


def test_a_single_run_per_cell_draws_no_error_bar(drawn, tmp_path: Path) -> None:
    runs = [r for r in collect_runs([str(make_sweep(tmp_path))]) if r.config.seed == 0]
    plots.plot_bars(build_pivot(runs, ["language"], ["model"], "test/{lang}/acc"), tmp_path / "b")
    (ax,) = drawn[0].axes
    assert not [c for c in ax.containers if type(c).__name__ == "ErrorbarContainer"]


def test_an_axis_and_a_title_name_the_metric_in_words(drawn, tmp_path: Path) -> None:
    runs = collect_runs([str(make_sweep(tmp_path))])
    pivot = build_pivot(runs, ["language"], ["model"], "test/{lang}/acc")
    plots.plot_bars(pivot, tmp_path / "bars")
    plots.plot_kshot(build_pivot(runs, ["language"], ["seed"], "test/{lang}/acc"), tmp_path / "k")
    bars, kshot = (fig.axes[0] for fig in drawn)
    assert bars.get_ylabel() == kshot.get_ylabel() == "Test accuracy, script given"
    assert bars.get_title() == "Test accuracy, script given"
    assert kshot.get_title() == "Test accuracy, script given vs shots per class"


def test_each_stage_of_the_training_curves_is_named(drawn, tmp_path: Path) -> None:
    def log(language: str) -> dict:
        return {"train/loss": ([0, 1], [2.0, 1.0]), f"val/{language}/acc": ([0, 1], [0.5, 0.9])}

    curves = {"pretrain": [log("en")], "finetune_kn": [log("kn")], "finetune_ar": [log("ar")]}
    plots.plot_training_curves(curves, tmp_path / "curves")
    loss_ax, acc_ax = drawn[0].axes
    assert loss_ax.get_legend_handles_labels()[1] == ["pretrain", "finetune_kn", "finetune_ar"]
    assert acc_ax.get_legend_handles_labels()[1] == [
        "pretrain · en",
        "finetune_kn · kn",
        "finetune_ar · ar",
    ]
    colours = {line.get_color() for line in loss_ax.lines}
    assert len(colours) == 3
    assert legend_is_outside(loss_ax) and legend_is_outside(acc_ax)


def test_before_after_bars_carry_their_values_and_skip_missing_ones(drawn, tmp_path) -> None:
    panels = {
        "the target": {"kn": (0.1, 0.97), "ar": (0.15, 0.98)},
        "the source": {"kn": (0.99, 0.6), "ar": (None, None)},
    }
    plots.plot_before_after(panels, tmp_path / "pairs", "Transfer and forgetting")
    target, source = drawn[0].axes
    assert [t.get_text() for t in target.texts] == ["0.100", "0.150", "0.970", "0.980"]
    assert [t.get_text() for t in source.texts] == ["0.990", "0.600"]
    assert legend_is_outside(source)
