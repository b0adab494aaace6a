"""Training speed on CPU, switch by switch, and Net's accuracy with and without the switches.

1. Images/s of a training step of the stage's own module, switched as the Trainer switches
   it, for Net and ResNet-18: the baseline (every switch off: fp32, contiguous weights,
   for-each Adam, eager — the code before the switches), each switch alone, the shipped
   defaults, and the defaults plus `device.compile`. The variants are built side by side and
   take turns of a few steps, so a busy machine slows them alike.
2. Net trained on English glyphs at the demo's budget (600 per class, 3 epochs), the baseline
   and the shipped defaults alternating, one run each per seed: test accuracy on 10,000
   held-out-font digits and end-to-end images/s (validation included).

    .venv/bin/python bench/train_speed.py [--part switches|accuracy|all] [--cycles 6]
                                          [--seeds 0 1 2] [--models net resnet18] [--write]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

BASELINE = ["device.precision=32-true", "device.channels_last=false", "optimizer.fused=false"]
VARIANTS = {
    "baseline (all off)": BASELINE,
    "`device.channels_last=true`": [*BASELINE[:1], *BASELINE[2:], "device.channels_last=true"],
    "`device.precision=bf16-mixed`": [*BASELINE[1:], "device.precision=bf16-mixed"],
    "`optimizer.fused=true`": [*BASELINE[:2], "optimizer.fused=true"],
    "`device.compile=true`": [*BASELINE, "device.compile=true"],
    "shipped defaults": [],
    "shipped defaults + `device.compile=true`": ["device.compile=true"],
    "shipped defaults + `device.threads=1`": ["device.threads=1"],
}
# ResNet-18 trains ~50× slower per image: one step per turn, and no fused or compile rows.
MODELS = {
    "net": {"batch": 128, "turn": 3, "overrides": ["model=net"], "variants": list(VARIANTS)},
    "resnet18": {
        "batch": 64,
        "turn": 1,
        "overrides": ["model=resnet18"],
        "variants": [
            n for n in VARIANTS if not any(k in n for k in ("fused", "compile", "threads"))
        ],
    },
}
WARMUP = 2  # steps before the timing (the first compiles, caches warm up)


def compose(work: Path, out: str, *overrides: str):
    from xlvision.config.compose import compose_config

    return compose_config(
        [
            "language=en",
            f"paths.cache_dir={work / 'cache'}",
            f"paths.output_dir={work / out}",
            "trainer.enable_progress_bar=false",
            *overrides,
        ]
    )


class Variant:
    """One setting's module and optimizer, switched the way the Trainer switches them."""

    def __init__(self, cfg) -> None:
        from omegaconf import OmegaConf

        from xlvision.models.registry import build_classifier
        from xlvision.training.builders import build_optimizer
        from xlvision.training.module import DigitClassifierModule
        from xlvision.training.speed import SpeedSwitches, resolve_precision

        torch.manual_seed(0)
        spec = OmegaConf.to_container(cfg.model, resolve=True)
        model = build_classifier(spec, {"en": 10})
        self.module = DigitClassifierModule(model, ["en"], build_optimizer(cfg.optimizer))
        self.bf16 = resolve_precision(cfg.device) == "bf16-mixed"
        switches = SpeedSwitches(cfg.device.channels_last, cfg.device.compile)
        switches.setup(None, self.module, "fit")
        self.threads = cfg.device.threads or torch.get_num_threads()
        self.optimizer = self.module.configure_optimizers()
        self.module.train()

    def step(self, batch) -> None:
        torch.set_num_threads(self.threads)  # as `device.threads` sets it for a run
        with torch.autocast("cpu", torch.bfloat16, enabled=self.bf16):
            loss = self.module._loss(batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()


def train_flops(variant: Variant, batch) -> float:
    """FLOPs of one training step per image (forward and backward), counted by PyTorch."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        variant.module._loss(batch).backward()
    variant.optimizer.zero_grad(set_to_none=True)
    return counter.get_total_flops() / len(batch[1])


def gemm_peak(dtype: torch.dtype, size: int = 2048, repeats: int = 5) -> float:
    """This CPU's matrix-multiply throughput in `dtype`, GFLOP/s (best of `repeats`): what a
    compute-bound training step can approach at most."""
    a = torch.randn(size, size).to(dtype)
    b = torch.randn(size, size).to(dtype)
    a @ b  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def switch_table(work: Path, models: list[str], cycles: int) -> list[str]:
    """Every variant of a model built side by side; they take turns of a few steps each, in
    alternating order, so a busy machine slows them alike. Median images/s over the turns."""
    from xlvision.data.datamodule import DigitDataModule
    from xlvision.languages.registry import language_from_mapping

    speeds: dict[tuple[str, str], float] = {}
    warmups: dict[tuple[str, str], float] = {}
    flops: dict[str, float] = {}
    for model in models:
        setting = MODELS[model]
        base = [*setting["overrides"], f"data.batch_size={setting['batch']}"]
        cfgs = {
            name: compose(work, "switches", *base, *VARIANTS[name]) for name in setting["variants"]
        }
        first = next(iter(cfgs.values()))
        data = DigitDataModule(
            first.data, [language_from_mapping(n) for n in first.language.values()], 0,
            first.paths.data_dir,
        )  # fmt: skip
        data.setup()
        train = data.datasets["train"]
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))
        batches = [train[i] for i in order.split(setting["batch"])[:8]]
        variants = {}
        for name, cfg in cfgs.items():
            variants[name] = Variant(cfg)
            if name == "baseline (all off)":
                flops[model] = train_flops(variants[name], batches[0])
            start = time.perf_counter()
            for batch in batches[:WARMUP]:
                variants[name].step(batch)
            warmups[(model, name)] = time.perf_counter() - start
        rates: dict[str, list[float]] = {name: [] for name in variants}
        names = list(variants)
        turn = setting["turn"]
        for c in range(cycles):
            for name in names if c % 2 == 0 else names[::-1]:
                start = time.perf_counter()
                for k in range(turn):
                    variants[name].step(batches[(c * turn + k) % len(batches)])
                rates[name].append(turn * setting["batch"] / (time.perf_counter() - start))
        for name in names:
            speeds[(model, name)] = statistics.median(rates[name])
            base_rate = statistics.median(rates["baseline (all off)"])
            print(
                f"  {model:8s} {name}: {speeds[(model, name)]:.1f} images/s, "
                f"{speeds[(model, name)] / base_rate:.2f}× (warm-up {warmups[(model, name)]:.1f} s)",
                flush=True,
            )
    header = "| switch (config key) |"
    rule = "|---|"
    for model in models:
        header += f" {model} images/s | {model} × baseline | {model} warm-up s |"
        rule += "---|---|---|"
    lines = [header, rule]
    for name in VARIANTS:
        row = f"| {name} |"
        for model in models:
            if (model, name) not in speeds:
                row += " — | — | — |"
                continue
            rate, base_rate = speeds[(model, name)], speeds[(model, "baseline (all off)")]
            row += f" {rate:.1f} | {rate / base_rate:.2f}× | {warmups[(model, name)]:.1f} |"
        lines.append(row)
    setup = "; ".join(
        f"{m}: batch {MODELS[m]['batch']}, turns of {MODELS[m]['turn']} steps" for m in models
    )
    lines += [
        "",
        f"Median images/s of a training step of the stage's module (forward, loss, backward, "
        f"Adam), the variants side by side taking {cycles} turns each in alternating order "
        f"({setup}). Warm-up: the first {WARMUP} steps, compilation included.",
    ]
    peaks = {
        name: gemm_peak(dtype)
        for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16))
    }
    lines += [
        "",
        f"Compute: a {peaks['fp32']:.0f} GFLOP/s fp32 and {peaks['bf16']:.0f} GFLOP/s bf16 "
        "matrix multiply (2048², best of 5) is what this CPU gives a compute-bound step at most.",
    ]
    for model in models:
        base_rate = speeds[(model, "baseline (all off)")]
        best = max(speeds[(model, n)] for n in VARIANTS if (model, n) in speeds)
        lines.append(
            f"- {model}: {flops[model] / 1e9:.3f} GFLOP per training image; the baseline runs at "
            f"{base_rate * flops[model] / 1e9:.0f} GFLOP/s ({base_rate * flops[model] / 1e9 / peaks['fp32']:.0%} "
            f"of the fp32 multiply), the fastest setting at {best * flops[model] / 1e9:.0f} GFLOP/s "
            f"({best * flops[model] / 1e9 / peaks['bf16']:.0%} of the bf16 multiply). At the bf16 "
            f"multiply's rate a step would be {peaks['bf16'] / (base_rate * flops[model] / 1e9):.2f}× "
            "the baseline: the most any switch can give without cutting FLOPs."
        )
    return lines


def accuracy_table(work: Path, seeds: list[int], threads: int | None) -> list[str]:
    from xlvision.stages.train import train

    budget = ["data.train_per_class=600", "data.test_per_class=1000", "trainer.max_epochs=3"]
    if threads:
        budget.append(f"device.threads={threads}")
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
        f"test on 10,000 digits of held-out fonts; threads: {threads or 'PyTorch default'} "
        f"on both sides. Mean accuracy, defaults − baseline: "
        f"{delta:+.2f} points (target: within ± 0.3).",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["switches", "accuracy", "all"], default="all")
    parser.add_argument("--cycles", type=int, default=6, help="turns per variant")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, help="threads of every variant and accuracy run")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--write", action="store_true", help="write bench/RESULTS.md's sections")
    args = parser.parse_args()

    import lightning  # noqa: F401  (sets its own log level when imported: quiet it after)

    from xlvision.cli.app import quiet_libraries

    quiet_libraries()  # as the console scripts do: no device banners or tips between the rows

    from xlvision.training.speed import resolve_precision

    sections = {}
    with tempfile.TemporaryDirectory(prefix="xlv-speed-") as tmp:
        work = Path(tmp)
        auto = resolve_precision(compose(work, "probe").device)
        if args.part in ("switches", "all"):
            print("switches, steady-state steps:")
            if args.threads:  # every variant on that many threads: a second table
                torch.set_num_threads(args.threads)
            name = f"train_speed_threads{args.threads}" if args.threads else "train_speed"
            sections[name] = switch_table(work, args.models, args.cycles)
        if args.part in ("accuracy", "all"):
            print("accuracy, baseline vs defaults:")
            sections["train_accuracy"] = accuracy_table(work, args.seeds, args.threads)

    from _results import machine, write_section

    titles = {
        "train_speed": "Training speed on CPU, per switch (`bench/train_speed.py`)",
        "train_accuracy": "Net's accuracy, every switch off vs the defaults (`bench/train_speed.py`)",
    }
    for name, lines in sections.items():
        title = titles.get(name, f"{titles['train_speed']}, {args.threads} thread(s) each")
        text = "\n".join(
            [
                f"## {title}",
                "",
                f"Machine: {machine()}.",
                f"Shipped defaults here: `device.precision=auto` (→ {auto}), "
                "`device.channels_last=true`, `optimizer.fused=true`, `device.compile=false`, "
                "`device.threads=null`.",
                "",
                *lines,
            ]
        )
        print(text)
        if args.write:
            write_section(name, text)


if __name__ == "__main__":
    main()
