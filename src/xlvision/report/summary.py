"""A pipeline's summary: what pretraining, each fine-tune and the bundle achieved.

Every number is read from the record of the stage that measured it (`pretrain/`,
`finetune_<code>/`, `integrate/`, `eval/` under the pipeline's dir) and keeps the file and key
it came from, so the page can show where each number is from and a test can check it against
the record. A mean is only ever over the same quantity of different languages.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

from omegaconf import OmegaConf

from xlvision.report.collect import COMPLETED, Run, natural_key
from xlvision.rundir import EVAL, FINETUNE_PREFIX, INTEGRATE, PRETRAIN, RunDir

STAGE_ORDER = (PRETRAIN, "finetune", INTEGRATE, EVAL)
"""The pipeline's stages in the order it runs them, named as it names their dirs."""
PIPELINE = "pipeline"
_STAGE_OF_DIR = {
    PRETRAIN: "train",
    "finetune": "finetune",
    INTEGRATE: "integrate",
    EVAL: "eval",
}
_SKIPPED_LANGUAGES = ("mean", "outside")


@dataclass
class PipelineStage(Run):
    """A run a pipeline made, labelled on a `stage` axis as the pipeline names it:
    `pretrain`, `finetune_kn`, `integrate`, `eval`."""

    name: str = ""

    def label(self, key: str) -> str:
        return self.name if key == "stage" else super().label(key)


@dataclass
class Pipeline:
    """One pipeline's dir and its stage runs, in the order it ran them."""

    root: Path
    targets: list[str]
    stages: dict[str, PipelineStage]

    def stage(self, name: str) -> PipelineStage | None:
        run = self.stages.get(name)
        return run if run is not None and run.status == COMPLETED else None

    @property
    def finetunes(self) -> dict[str, PipelineStage]:
        """Target code → its fine-tuning run, completed or not, in the pipeline's order."""
        prefix = FINETUNE_PREFIX
        return {n[len(prefix) :]: r for n, r in self.stages.items() if n.startswith(prefix)}

    @property
    def bundle_record(self) -> PipelineStage | None:
        """The bundle's evaluation; integrate's own test of it when eval did not complete."""
        return self.stage(EVAL) or self.stage(INTEGRATE)


def stage_kind(name: str) -> str:
    """`finetune_kn` → `finetune`; a standalone run's `train` counts as pretraining."""
    kind = name.split("_", 1)[0]
    return PRETRAIN if kind == "train" else kind


def stage_rank(name: str, targets: Sequence[str] = ()) -> tuple:
    """Sort key of a stage label in pipeline order: pretrain, finetune_<each target in the
    pipeline's order>, integrate, eval; unknown stages last."""
    kind = stage_kind(name)
    rank = STAGE_ORDER.index(kind) if kind in STAGE_ORDER else len(STAGE_ORDER)
    code = name.partition("_")[2]
    position = targets.index(code) if code in targets else len(targets)
    return (rank, position, natural_key(name))


def find_pipelines(runs: Sequence[Run]) -> tuple[list[Run], list[Pipeline]]:
    """The runs with each pipeline's stage runs labelled as it names them, and the pipelines.

    A stage run is a subdir `pretrain`, `finetune_<code>`, `integrate` or `eval` (of the
    matching stage) of a pipeline's dir: one whose config.yaml says `stage: pipeline`, or,
    where `pipeline()` was called without one, that holds two stage runs or more.
    """
    candidates: dict[Path, dict[str, Run]] = {}
    for run in runs:
        kind = _dir_kind(run.path.name)
        if kind is not None and run.config.get("stage") == _STAGE_OF_DIR[kind]:
            candidates.setdefault(run.path.parent, {})[run.path.name] = run
    pipelines: dict[Path, Pipeline] = {}
    for root, stages in candidates.items():
        listed = _pipeline_targets(root)
        if listed is None and len(stages) < 2:
            continue
        targets = _target_order(listed or [], stages)
        ordered = dict(sorted(stages.items(), key=lambda item: stage_rank(item[0], targets)))
        pipelines[root] = Pipeline(root, targets, {n: _as_stage(r, n) for n, r in ordered.items()})
    labelled = [
        pipelines[run.path.parent].stages[run.path.name]
        if run.path.parent in pipelines and run.path.name in pipelines[run.path.parent].stages
        else run
        for run in runs
    ]
    return labelled, list(pipelines.values())


def _as_stage(run: Run, name: str) -> PipelineStage:
    return PipelineStage(**{f.name: getattr(run, f.name) for f in fields(run)}, name=name)


def _target_order(listed: Sequence[str], stages: dict[str, Run]) -> list[str]:
    """The targets in the pipeline's order: as its config lists them, else as its bundle
    holds them, else natural order."""
    tuned = [
        name.removeprefix(FINETUNE_PREFIX) for name in stages if name.startswith(FINETUNE_PREFIX)
    ]
    bundle = stages.get(INTEGRATE) or stages.get(EVAL)
    order = [*listed, *(bundle.languages if bundle else []), *sorted(tuned, key=natural_key)]
    return [code for code in dict.fromkeys(order) if code in tuned]


def _dir_kind(name: str) -> str | None:
    """The stage a pipeline's subdir of this name holds (`finetune_kn` → `finetune`), if any."""
    if name.startswith(FINETUNE_PREFIX) and len(name) > len(FINETUNE_PREFIX):
        return "finetune"
    return name if name in _STAGE_OF_DIR and name != "finetune" else None


def _pipeline_targets(path: Path) -> list[str] | None:
    """The targets a pipeline dir's config.yaml lists; None without a pipeline's config."""
    config_file = RunDir(path).config_file
    if not config_file.is_file():
        return None
    try:
        config = OmegaConf.load(config_file)
    except Exception:  # an unreadable config is no pipeline's; the run itself says why
        return None
    if not OmegaConf.is_dict(config) or config.get("stage") != PIPELINE:
        return None
    targets = OmegaConf.select(config, "pipeline.targets", default=None)
    return [str(t) for t in targets] if OmegaConf.is_list(targets) else []


@dataclass(frozen=True)
class Number:
    """One number of the summary and where it was read: `eval/metrics.json: test/kn/acc`."""

    value: float
    source: str
    unit: str = "acc"
    """How it is printed: `acc` (0.966), `bytes` (11.4 MB), `count` (2.8 M), `per_s`, `s`."""


@dataclass(frozen=True)
class Column:
    """A summary column: its key in a row, its group and header on the page, its header on
    the console (no group there) and what it means."""

    key: str
    group: str
    header: str
    console: str
    help: str


TUNING, SOURCE, BUNDLE = "the target, fine-tuned", "the source, before and after", "the bundle"
BUNDLE_METRICS = {
    "given": "acc",
    "not_given": "routed_acc",
    "script_digit": "lid_acc",
    "script_page": "page_lid_acc",
}
"""The bundle's columns and the eval metric each reads (`test/<lang>/<metric>`)."""


def summary_columns(page_size: float | None) -> list[Column]:
    page = f"{page_size:g}" if page_size else "n"
    return [
        Column(
            "target_before",
            TUNING,
            "zero-shot",
            "zero-shot",
            "the target's accuracy with the source's head, before any update",
        ),
        Column(
            "target_after",
            TUNING,
            "fine-tuned",
            "tuned",
            "the target's accuracy after its own fine-tune",
        ),
        Column(
            "source",
            SOURCE,
            "source",
            "source",
            "the language(s) of the target's start, tested again after its fine-tune",
        ),
        Column(
            "source_before",
            SOURCE,
            "before",
            "src before",
            "the source's accuracy before the fine-tune, on the same test images",
        ),
        Column(
            "source_after",
            SOURCE,
            "after",
            "src after",
            "the source's accuracy after the fine-tune on this target",
        ),
        Column(
            "forgetting",
            SOURCE,
            "forgetting",
            "forgetting",
            "before − after: what the fine-tune on this target cost the source",
        ),
        Column("given", BUNDLE, "script given", "given", "digits read with their script given"),
        Column(
            "not_given",
            BUNDLE,
            "script not given",
            "not given",
            "digits read without the script: the bundle's own answer",
        ),
        Column(
            "script_digit",
            BUNDLE,
            "script per digit",
            "script/digit",
            "the script named, per digit",
        ),
        Column(
            "script_page",
            BUNDLE,
            f"script per page of {page}",
            "script/page",
            f"the script named once per page of {page} digits of one script",
        ),
    ]


@dataclass
class SummaryRow:
    label: str
    cells: dict[str, Number | str] = field(default_factory=dict)


@dataclass
class Summary:
    """The pipeline in one lead line, its headline numbers and a row per language."""

    lead: str
    headline: list[tuple[str, list[tuple[str, Number]]]]
    """Groups of headline numbers: (group, [(label, number)])."""
    columns: list[Column]
    rows: list[SummaryRow]
    notes: list[str]

    def value(self, row: str, column: str) -> Number | str | None:
        found = next((r for r in self.rows if r.label == row), None)
        return found.cells.get(column) if found else None

    def groups(self) -> list[tuple[str, list[Column]]]:
        """The columns by group, in order."""
        grouped: dict[str, list[Column]] = {}
        for column in self.columns:
            grouped.setdefault(column.group, []).append(column)
        return list(grouped.items())


def format_number(number: Number, precision: int = 3) -> str:
    """`0.966`, `11.4 MB`, `2.82 M`, `872 images/s`: as its unit is read."""
    if number.unit == "bytes":
        return f"{number.value / 1e6:.1f} MB"
    if number.unit == "count":
        return f"{number.value / 1e6:.2f} M" if number.value >= 1e5 else f"{number.value:,.0f}"
    if number.unit == "per_s":
        return f"{number.value:,.0f} images/s"
    if number.unit == "s":
        return f"{number.value:.1f} s"
    return f"{number.value:.{precision}f}"


def _read(run: Run | None, key: str, unit: str = "acc") -> Number | None:
    if run is None or key not in run.metrics:
        return None
    return Number(run.metrics[key], f"{run.path.name}/metrics.json: {key}", unit)


def _mean(numbers: Sequence[Number | None], what: str) -> Number | None:
    present = [n for n in numbers if n is not None]
    if not present:
        return None
    return Number(statistics.fmean(n.value for n in present), what, present[0].unit)


def _tested(run: Run | None, prefix: str = "test") -> list[str]:
    """The languages a run has `<prefix>/<code>/acc` for, in the order it wrote them."""
    if run is None:
        return []
    codes = [
        k.split("/")[1] for k in run.metrics if k.startswith(f"{prefix}/") and k.count("/") == 2
    ]
    return [
        c
        for c in dict.fromkeys(codes)
        if f"{prefix}/{c}/acc" in run.metrics
        and "@" not in c
        and not c.startswith(_SKIPPED_LANGUAGES)
    ]


def summarize(pipeline: Pipeline) -> Summary:
    """The pipeline's summary from its stage records."""
    pretrain = pipeline.stage(PRETRAIN)
    bundle = pipeline.bundle_record
    page_size = bundle.metrics.get("page_size") if bundle else None
    columns = summary_columns(page_size)
    rows: dict[str, SummaryRow] = {}
    notes = []
    for code, run in pipeline.finetunes.items():
        row = rows.setdefault(code, SummaryRow(code))
        if run.status != COMPLETED:
            notes.append(
                f"{run.path.name}: {run.status}" + (f" ({run.error})" if run.error else "")
            )
            continue
        _fill_finetune(row, run, code)
    for code in _tested(bundle):
        row = rows.setdefault(code, SummaryRow(code))
        for key, metric in BUNDLE_METRICS.items():
            number = _read(bundle, f"test/{code}/{metric}")
            if number is not None:
                row.cells[key] = number
    ordered = list(rows.values())
    if len(ordered) >= 2:
        ordered.append(_mean_row(ordered, bundle))
    used = {key for row in ordered for key in row.cells}
    columns = [c for c in columns if c.key in used]
    for name, run in pipeline.stages.items():
        if run.status != COMPLETED and not name.startswith(FINETUNE_PREFIX):
            notes.append(f"{name}: {run.status}" + (f" ({run.error})" if run.error else ""))
    return Summary(_lead(pipeline), _headline(pretrain, bundle, pipeline), columns, ordered, notes)


def _fill_finetune(row: SummaryRow, run: Run, code: str) -> None:
    cells = row.cells
    for key, prefix in (("target_before", "zeroshot"), ("target_after", "test")):
        if (number := _read(run, f"{prefix}/{code}/acc")) is not None:
            cells[key] = number
    sources = [c for c in _tested(run) if c != code]
    if not sources:
        return
    where = f"{run.path.name}/metrics.json"
    if len(sources) == 1:
        (source,) = sources
        cells["source"] = source
        before, after = _read(run, f"zeroshot/{source}/acc"), _read(run, f"test/{source}/acc")
        gain = _read(run, f"gain/{source}/acc")
    else:
        cells["source"] = f"{len(sources)} sources"
        over = f"mean over {', '.join(sources)} of {where}"
        before = _mean(
            [_read(run, f"zeroshot/{s}/acc") for s in sources], f"{over}: zeroshot/…/acc"
        )
        after = _mean([_read(run, f"test/{s}/acc") for s in sources], f"{over}: test/…/acc")
        gains = [_read(run, f"gain/{s}/acc") for s in sources]
        gain = _mean(gains, f"{over}: gain/…/acc") if all(gains) else None
    for key, number in (("source_before", before), ("source_after", after)):
        if number is not None:
            cells[key] = number
    if gain is not None:  # the record's gain is after − before
        cells["forgetting"] = Number(-gain.value, f"−({gain.source})")
    elif before is not None and after is not None:
        cells["forgetting"] = Number(
            before.value - after.value, f"{before.source} − {after.source}"
        )


def _mean_row(rows: Sequence[SummaryRow], bundle: Run | None) -> SummaryRow:
    """Fine-tuning columns: the mean over the targets of each (the same quantity for every
    target); the bundle's: the means its evaluation recorded (`test/mean/…`)."""
    mean = SummaryRow("mean")
    for key in ("target_before", "target_after", "source_before", "source_after", "forgetting"):
        having = [r for r in rows if isinstance(r.cells.get(key), Number)]
        if len(having) >= 2:
            over = ", ".join(r.label for r in having)
            mean.cells[key] = _mean([r.cells[key] for r in having], f"mean over {over}")
    for key, metric in BUNDLE_METRICS.items():
        if (number := _read(bundle, f"test/mean/{metric}")) is not None:
            mean.cells[key] = number
    return mean


def _headline(
    pretrain: Run | None, bundle: Run | None, pipeline: Pipeline
) -> list[tuple[str, list[tuple[str, Number]]]]:
    """(group, [(label, number)]): pretraining, the bundle's means, its size and speed."""
    groups: list[tuple[str, list[tuple[str, Number | None]]]] = []
    sources = _tested(pretrain)
    if len(sources) == 1:
        groups.append(
            ("pretraining", [(f"on {sources[0]}", _read(pretrain, f"test/{sources[0]}/acc"))])
        )
    elif sources:
        groups.append(
            (
                "pretraining",
                [(f"mean over {len(sources)} languages", _read(pretrain, "test/mean/acc"))],
            )
        )
    bundled = _tested(bundle)
    language = "mean" if len(bundled) > 1 else next(iter(bundled), "mean")
    page = bundle.metrics.get("page_size") if bundle else None
    reading = [
        ("digits read, script given", "acc"),
        ("digits read, script not given", "routed_acc"),
        ("script named, per digit", "lid_acc"),
        (
            f"script named, per page of {page:g}" if page else "script named, per page",
            "page_lid_acc",
        ),
    ]
    named = ", ".join(bundled) if len(bundled) <= 6 else f"{len(bundled)} languages"
    over = f"mean over {named}" if len(bundled) > 1 else named
    groups.append(
        (
            f"the bundle ({over})" if over else "the bundle",
            [(label, _read(bundle, f"test/{language}/{metric}")) for label, metric in reading],
        )
    )
    integrate = pipeline.stage(INTEGRATE)
    size = _read(bundle, "bundle_bytes", "bytes") or _read(integrate, "bundle_bytes", "bytes")
    groups.append(
        (
            "its size and speed",
            [
                ("bundle size", size),
                ("parameters", _read(integrate, "total_params", "count")),
                ("speed", _read(integrate, "predict_images_per_s", "per_s")),
            ],
        )
    )
    kept = [(group, [(lbl, n) for lbl, n in items if n is not None]) for group, items in groups]
    return [(group, items) for group, items in kept if items]


def _lead(pipeline: Pipeline) -> str:
    """`Pretrained on en, fine-tuned on kn, ar (full), integrated (routed) into one bundle of
    kn, ar.`, from the stages' configs."""
    parts = []
    pretrain = pipeline.stages.get(PRETRAIN)
    if pretrain is not None:
        parts.append(f"pretrained on {'+'.join(pretrain.languages) or '?'}")
    tunes = pipeline.finetunes
    if tunes:
        strategy = next(iter(tunes.values())).config_value("finetune")
        name = strategy.get("name") if OmegaConf.is_dict(strategy) else None
        how = f" ({name})" if name else ""
        parts.append(f"fine-tuned on {', '.join(tunes)}{how}")
    integrate = pipeline.stages.get(INTEGRATE)
    if integrate is not None:
        method = integrate.config_value("integrate")
        name = method.get("name") if OmegaConf.is_dict(method) else None
        languages = ", ".join(integrate.languages)
        parts.append(f"integrated{f' ({name})' if name else ''} into one bundle of {languages}")
    text = ", ".join(parts)
    return text[:1].upper() + text[1:] + "." if text else ""
