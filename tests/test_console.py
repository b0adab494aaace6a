"""The stage summary on the console: it fits the width it is given and never cuts a number."""

from __future__ import annotations

import io
import re

from rich.console import Console

from xlvision.stages.runner import column_chunks, print_summary


def summary(metrics: dict, width: int) -> str:
    out = io.StringIO()
    print_summary(
        metrics, "/runs/a/very/long/path/bundle.safetensors", Console(file=out, width=width)
    )
    return out.getvalue()


def test_a_wide_summary_is_split_into_tables_that_fit_and_keep_every_number():
    names = [
        "acc",
        "recall",
        "f1",
        "routed_acc",
        "lid_acc",
        "lid_group_acc",
        "page_routed_acc",
        "page_lid_group_acc",
        "ece",
        "unknown_rate",
        "acc_answered",
    ]
    metrics = {
        f"test/{c}/{n}": 0.123456 + i / 100
        for i, n in enumerate(names)
        for c in ("kn", "mean", "ar")
    }
    text = summary(metrics, 80)
    assert max(map(len, text.splitlines())) <= 80
    assert "…" not in text
    for i in range(len(names)):
        assert text.count(f"{0.123456 + i / 100:.4f}") == 3  # every value, whole, once per row
    assert "test metrics (continued)" in text
    # Languages first, means last; the path on a line of its own.
    rows = re.findall(r"^│ (\w+)", text, flags=re.M)
    assert rows[:3] == ["ar", "kn", "mean"]
    assert "outputs:\n  /runs/a/very/long/path/bundle.safetensors" in text


def test_column_chunks_keep_order_and_take_one_column_at_least():
    assert column_chunks(["a", "b", "c"], 18) == [["a", "b"], ["c"]]
    assert column_chunks(["a_very_long_metric_name"], 5) == [["a_very_long_metric_name"]]
    assert column_chunks([], 80) == []


def test_a_tracked_loop_yields_every_item_with_or_without_a_terminal():
    import io

    from rich.console import Console

    from xlvision.progress import tracked

    assert list(tracked(["kn", "ar"], "evaluating")) == ["kn", "ar"]  # piped: no bar
    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, width=60)
    assert list(tracked(["kn", "ar"], "evaluating", console=terminal)) == ["kn", "ar"]
    assert "evaluating" in screen.getvalue()


def test_a_header_names_the_languages_of_the_stage_not_the_default_language():
    from xlvision.config.compose import compose_config
    from xlvision.stages.runner import stage_header

    demo = compose_config(
        ["pipeline.sources=[en]", "pipeline.targets=[kn,ar,hi]"], config_name="pipeline"
    )
    assert stage_header(demo) == "pipeline · en → kn+ar+hi"
    unified = compose_config(["experiment=unified"], config_name="pipeline")
    assert stage_header(unified) == "pipeline · 21 languages"
    merge = compose_config(["stage=integrate", "+models={kn: a.ckpt, th: b.ckpt, zh: c.ckpt}"])
    assert stage_header(merge) == "integrate · kn+th+zh"
    train = compose_config(["language=[kn,ar]"])
    assert stage_header(train).startswith("train · kn+ar · ")


def test_quiet_libraries_hides_lightnings_notices_that_a_user_cannot_act_on():
    import warnings

    from xlvision.cli.app import quiet_libraries

    notices = [
        "The number of training batches (5) is smaller than the logging interval "
        "Trainer(log_every_n_steps=20).",
        "You have overridden `transfer_batch_to_device` in `LightningModule`",
    ]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_libraries()
        for notice in notices:
            warnings.warn(notice, UserWarning, stacklevel=1)
        warnings.warn("a warning of our own", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["a warning of our own"]


def test_quiet_libraries_hides_library_info_logs_but_not_their_warnings():
    import logging

    from xlvision.cli.app import quiet_libraries

    quiet_libraries()
    for name in ("matplotlib.font_manager", "lightning.pytorch.utilities.rank_zero"):
        logger = logging.getLogger(name)
        assert not logger.isEnabledFor(logging.INFO), name  # "generated new fontManager"
        assert logger.isEnabledFor(logging.WARNING), name
