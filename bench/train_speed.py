"""Training speed on CPU, switch by switch, and Net's accuracy with and without the switches.

1. Steady-state images/s of a training step through the Trainer (the stage's own module and
   data module), for Net and ResNet-18: the baseline (every switch off: fp32, contiguous
   weights, for-each Adam, eager — the code before the switches), each switch alone, the
   shipped defaults, and the defaults plus `device.compile`. Variants alternate within each
   round, so a busy machine slows them alike.
2. Net trained on English glyphs at the demo's budget (600 per class, 3 epochs), the baseline
   and the shipped defaults alternating, one run each per seed: test accuracy on 10,000
   held-out-font digits and end-to-end images/s (validation included).

    .venv/bin/python bench/train_speed.py [--rounds 3] [--seeds 0 1 2] [--models net resnet18]
                                          [--skip-accuracy] [--write]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

BASELINE = ["device.precision=32-true", "device.channels_last=false", "optimizer.fused=false"]
VARIANTS = {
    "baseline (all off)": BASELINE,
    "`device.channels_last=true`": [*BASELINE[:1], *BASELINE[2:], "device.channels_last=true"],
    "`device.precision=bf16-mixed`": [*BASELINE[1:], "device.precision=bf16-mixed"],
    "`optimizer.fused=true`": [*BASELINE[:2], "optimizer.fused=true"],
    "`device.compile=true`": [*BASELINE, "device.compile=true"],
    "shipped defaults": [],
    "shipped defaults + `device.compile=true`": ["device.compile=true"],
}
# ResNet-18 trains ~50× slower per image: fewer steps, and only the baseline and the defaults.
MODELS = {
    "net": {"batch": 128, "steps": 20, "overrides": ["model=net"], "variants": list(VARIANTS)},
    "resnet18": {
        "batch": 64,
        "steps": 5,
        "overrides": ["model=resnet18"],
        "variants": ["baseline (all off)", "shipped defaults"],
    },
}
WARMUP = 2  # steps left out of the timing (the first compiles, caches warm up)


def compose(work: Path, out: str, *overrides: str):
    from xlvision.config import compose_config

    return compose_config(
        [
            "language=en",
            f"paths.cache_dir={work / 'cache'}",
            f"paths.output_dir={work / out}",
            "trainer.enable_progress_bar=false",
            *overrides,
        ]
    )


def step_times(work: Path, out: str, overrides: list[str], steps: int) -> list[float]:
    """Seconds from each training step's start to the next's, after the warm-up steps."""
    import lightning as L
    from omegaconf import OmegaConf

    from xlvision.data.datamodule import DigitDataModule
    from xlvision.languages.registry import language_from_mapping
    from xlvision.models import build_classifier
    from xlvision.training.builders import build_optimizer, build_scheduler, build_trainer
    from xlvision.training.module import DigitClassifierModule

    class StepClock(L.Callback):
        def __init__(self) -> None:
            self.starts: list[float] = []

        def on_train_batch_start(self, *args) -> None:
            self.starts.append(time.perf_counter())

    limits = [f"trainer.limit_train_batches={steps + WARMUP + 1}", "trainer.limit_val_batches=1"]
    cfg = compose(work, out, *overrides, *limits, "trainer.max_epochs=1", "~logger")
    L.seed_everything(0, verbose=False)
    languages = [language_from_mapping(node) for node in cfg.language.values()]
    data = DigitDataModule(cfg.data, languages, cfg.seed, cfg.paths.data_dir)
    data.setup()
    spec = OmegaConf.to_container(cfg.model, resolve=True)
    scheduler, interval = build_scheduler(cfg.scheduler)
    module = DigitClassifierModule(
        build_classifier(spec, {"en": 10}), ["en"], build_optimizer(cfg.optimizer),
        scheduler, interval, spec, language_prior=data.language_shares(),
    )  # fmt: skip
    clock = StepClock()
    build_trainer(cfg, work / out, callbacks=[clock]).fit(module, datamodule=data)
    return [b - a for a, b in zip(clock.starts[WARMUP:], clock.starts[WARMUP + 1 :], strict=False)]


def switch_table(work: Path, models: list[str], rounds: int) -> list[str]:
    speeds: dict[tuple[str, str], list[float]] = {}
    for model in models:
        setting = MODELS[model]
        base = [*setting["overrides"], f"data.batch_size={setting['batch']}"]
        names = setting["variants"]
        for r in range(rounds):
            for name in names if r % 2 == 0 else names[::-1]:
                out = f"{model}-{names.index(name)}-{r}"
                gaps = step_times(work, out, [*base, *VARIANTS[name]], setting["steps"])
                speeds.setdefault((model, name), []).extend(setting["batch"] / g for g in gaps)
                rate = statistics.median(speeds[(model, name)])
                print(f"  {model:8s} round {r + 1}: {name}: {rate:.0f} images/s", flush=True)
    header = "| switch (config key) |"
    rule = "|---|"
    for model in models:
        header += f" {model} images/s | {model} × baseline |"
        rule += "---|---|"
    lines = [header, rule]
    for name in VARIANTS:
        row = f"| {name} |"
        for model in models:
            if (model, name) not in speeds:
                row += " — | — |"
                continue
            rate = statistics.median(speeds[(model, name)])
            base = statistics.median(speeds[(model, "baseline (all off)")])
            row += f" {rate:.1f} | {rate / base:.2f}× |"
        lines.append(row)
    batches = ", ".join(f"{m} batch {MODELS[m]['batch']}" for m in models)
    lines += [
        "",
        f"Median images/s of steady-state training steps ({batches}; Adam; {rounds} rounds, "
        f"{WARMUP} warm-up steps left out), through the Trainer with the stage's module.",
    ]
    return lines


def accuracy_table(work: Path, seeds: list[int]) -> list[str]:
    from xlvision.stages.train import train

    budget = ["data.train_per_class=600", "data.test_per_class=1000", "trainer.max_epochs=3"]
    settings = {"baseline (all off)": BASELINE, "shipped defaults": []}
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in settings}
    for seed in seeds:
        names = list(settings) if seed % 2 == 0 else list(settings)[::-1]
        for name in names:
            out = f"acc-{list(settings).index(name)}-{seed}"
            cfg = compose(work, out, *budget, f"seed={seed}", *settings[name])
            metrics, _ = train(cfg)
            rate = 6000 * 3 / metrics["train_time_s"]
            results[name].append((metrics["test/en/acc"], rate))
            print(
                f"  seed {seed}: {name}: test acc {metrics['test/en/acc']:.4f}, {rate:.0f} images/s"
            )
    lines = [
        "| setting | " + " | ".join(f"seed {s} test acc" for s in seeds)
        + " | mean test acc | images/s, validation included | × baseline |",
        "|---|" + "---|" * (len(seeds) + 3),
    ]  # fmt: skip
    base_rate = statistics.median(r for _, r in results["baseline (all off)"])
    means = {}
    for name, runs in results.items():
        means[name] = statistics.mean(a for a, _ in runs)
        rate = statistics.median(r for _, r in runs)
        lines.append(
            f"| {name} | " + " | ".join(f"{a:.4f}" for a, _ in runs)
            + f" | {means[name]:.4f} | {rate:.0f} | {rate / base_rate:.2f}× |"
        )  # fmt: skip
    delta = 100 * (means["shipped defaults"] - means["baseline (all off)"])
    lines += [
        "",
        f"Net, English glyphs, 600 per class, 3 epochs, batch 128, Adam with a cosine schedule; "
        f"test on 10,000 digits of held-out fonts. Mean accuracy, defaults − baseline: "
        f"{delta:+.2f} points (target: within ± 0.3).",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--write", action="store_true", help="write bench/RESULTS.md's section")
    args = parser.parse_args()

    import lightning  # noqa: F401  (sets its own log level when imported: quiet it after)

    from xlvision.cli.app import quiet_libraries

    quiet_libraries()  # as the console scripts do: no device banners or tips between the rows

    from xlvision.training.speed import resolve_precision

    with tempfile.TemporaryDirectory(prefix="xlv-speed-") as tmp:
        work = Path(tmp)
        auto = resolve_precision(compose(work, "probe").device)
        print("switches, steady-state steps:")
        lines = switch_table(work, args.models, args.rounds)
        if not args.skip_accuracy:
            print("accuracy, baseline vs defaults:")
            lines += ["", *accuracy_table(work, args.seeds)]

    from _results import machine, write_section

    text = "\n".join(
        [
            "## Training speed on CPU, per switch (`bench/train_speed.py`)",
            "",
            f"Machine: {machine()}.",
            f"Shipped defaults here: `device.precision=auto` (→ {auto}), "
            "`device.channels_last=true`, `optimizer.fused=true`, `device.compile=false`.",
            "",
            *lines,
        ]
    )
    print(text)
    if args.write:
        write_section("train_speed", text)


if __name__ == "__main__":
    main()
