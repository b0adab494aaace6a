"""What the framework costs: `xlv-train` against a hand-written PyTorch loop on the same data.

Both train the same Net with the same switches (the composed config's precision, channels-last
and fused Adam, cosine schedule, batch 128), 2 epochs of 10,000 English glyph digits from the
same cached tensors, validating every epoch, keeping the best epoch's weights on disk and
testing them at the end. Measured interleaved in this one run:

- whole process: wall time of `xlv-train` and of a script running the loop, start to exit;
- steady state: the median time of a training step, Lightning (the stage's own module, data
  module and Trainer, everything it does between steps included) and the loop, in lockstep
  in this process: one loop step at the start of every Lightning step.

Ratios are loop time / xlv-train time; targets: whole process >= 0.95, steady state >= 0.98.

    .venv/bin/python bench/overhead.py [--repeats 3] [--steps 70] [--write]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

OVERRIDES = ["language=en", "data.train_per_class=1000", "trainer.max_epochs=2"]
XLV_TRAIN = Path(sys.executable).with_name("xlv-train")


def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, bf16: bool) -> float:
    model.eval()
    hits = 0
    with torch.no_grad(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
        for xb, yb in zip(x.split(128), y.split(128), strict=True):
            hits += int((model(xb).argmax(1) == yb).sum())
    return hits / len(y)


class HandLoop:
    """The loop one would write by hand: its model, optimizer, schedule and training step."""

    def __init__(self, switches: dict, epochs: int) -> None:
        from xlvision.models.net import Net

        torch.manual_seed(0)
        self.model = torch.nn.Sequential(Net(), torch.nn.Linear(512, 10))
        if switches["channels_last"]:
            self.model.to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3, fused=switches["fused"])
        self.schedule = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=epochs)
        self.bf16 = switches["bf16"]
        self.generator = torch.Generator().manual_seed(0)
        self.losses: list[float] = []

    def epoch(self, x: torch.Tensor, y: torch.Tensor):
        """One epoch of training steps in a seeded order; yields after each step."""
        self.model.train()
        for step, index in enumerate(torch.randperm(len(y), generator=self.generator).split(128)):
            with torch.autocast("cpu", torch.bfloat16, enabled=self.bf16):
                loss = F.cross_entropy(self.model(x[index]), y[index])
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            if step % 20 == 0:
                self.losses.append(loss.item())
            yield
        self.schedule.step()


def hand_loop(data: dict, switches: dict, out_dir: Path, epochs: int) -> dict:
    """Train, validate every epoch, keep the best epoch's weights on disk, test them."""
    loop = HandLoop(switches, epochs)
    best_acc = -1.0
    for _ in range(epochs):
        for _ in loop.epoch(*data["train"]):
            pass
        acc = evaluate(loop.model, *data["val"], loop.bf16)
        if acc > best_acc:
            best_acc = acc
            torch.save(loop.model.state_dict(), out_dir / "best.pt")
    loop.model.load_state_dict(torch.load(out_dir / "best.pt", weights_only=True))
    metrics = {
        "val/acc": evaluate(loop.model, *data["val"], loop.bf16),
        "test/acc": evaluate(loop.model, *data["test"], loop.bf16),
    }
    (out_dir / "metrics.json").write_text(json.dumps(metrics))
    return metrics


def loop_process(tensors: str, out_dir: str, switches: str, epochs: int) -> None:
    """The loop as its own script: what a user would run instead of xlv-train."""
    data = torch.load(tensors, weights_only=True)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    hand_loop(data, json.loads(switches), Path(out_dir), epochs)


def import_seconds(module: str, repeats: int = 3) -> float:
    """Median wall seconds of a fresh Python importing `module`."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"import {module}"], check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def config(work: Path, out: Path, *extra: str):
    from xlvision.config.compose import compose_config

    return compose_config(
        [*OVERRIDES, f"paths.cache_dir={work / 'cache'}", f"paths.output_dir={out}", *extra]
    )


def prepare(work: Path) -> tuple[dict, dict]:
    """The glyph cache xlv-train will read, the same tensors for the loop, and the switches."""
    from xlvision.data.datamodule import DigitDataModule
    from xlvision.languages.registry import language_from_mapping
    from xlvision.training.speed import resolve_precision

    cfg = config(work, work / "prepare")
    languages = [language_from_mapping(node) for node in cfg.language.values()]
    data = DigitDataModule(cfg.data, languages, cfg.seed, cfg.paths.data_dir)
    data.setup()
    tensors = {s: (d.images, d.labels) for s, d in data.datasets.items()}
    torch.save(tensors, work / "tensors.pt")
    switches = {
        "bf16": resolve_precision(cfg.device) == "bf16-mixed",
        "channels_last": bool(cfg.device.channels_last),
        "fused": bool(cfg.optimizer.get("fused")),
    }
    return tensors, switches


def timed(command: list[str], env: dict) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{command[0]} failed:\n{done.stderr[-2000:]}")
    return seconds


def whole_process(work: Path, switches: dict, repeats: int) -> tuple[list, list, dict]:
    env = {**os.environ, "XLV_CACHE_DIR": str(work / "cache")}
    xlv, loop = [], []
    for i in range(repeats):
        runs = [
            ("xlv", [str(XLV_TRAIN), *OVERRIDES, f"hydra.run.dir={work / f'xlv{i}'}"]),
            (
                "loop",
                [
                    sys.executable,
                    __file__,
                    "--loop",
                    str(work / "tensors.pt"),
                    str(work / f"loop{i}"),
                ]
                + ["--switches", json.dumps(switches)],
            ),
        ]
        for name, command in runs if i % 2 == 0 else runs[::-1]:
            (xlv if name == "xlv" else loop).append(timed(command, env))
    accuracy = {
        "xlv-train": json.loads((work / "xlv0" / "metrics.json").read_text())["metrics"][
            "test/en/acc"
        ],
        "loop": json.loads((work / "loop0" / "metrics.json").read_text())["test/acc"],
    }
    return xlv, loop, accuracy


def steady_state(work: Path, tensors: dict, switches: dict, steps: int) -> tuple[list, list]:
    """Seconds per training step of the stage's own module, data module and Trainer, and of
    the loop, in lockstep: a callback runs one loop step at the start of every Lightning
    step, so both see the same moment of a busy machine. A Lightning step's time is from
    the end of one loop step to the start of the next batch: its forward, backward and
    optimizer step, and everything Lightning does around them (fetching, logging, progress
    bar, callbacks)."""
    import lightning as L
    from omegaconf import OmegaConf

    from xlvision.data.datamodule import DigitDataModule
    from xlvision.languages.registry import language_from_mapping
    from xlvision.models.registry import build_classifier
    from xlvision.training.builders import build_optimizer, build_scheduler, build_trainer
    from xlvision.training.module import DigitClassifierModule

    loop_steps = HandLoop(switches, 1).epoch(*tensors["train"])

    class Lockstep(L.Callback):
        def __init__(self) -> None:
            self.xlv: list[float] = []
            self.loop: list[float] = []
            self.resumed: float | None = None

        def on_train_batch_start(self, *args) -> None:
            now = time.perf_counter()
            if self.resumed is not None:
                self.xlv.append(now - self.resumed)
            next(loop_steps)
            self.resumed = time.perf_counter()
            self.loop.append(self.resumed - now)

    out = work / "steady"
    limits = [f"trainer.limit_train_batches={steps}", "trainer.limit_val_batches=1"]
    cfg = config(work, out, *limits, "trainer.max_epochs=1")
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
    clock = Lockstep()
    build_trainer(cfg, out, callbacks=[clock]).fit(module, datamodule=data)
    return clock.xlv[5:], clock.loop[5:]  # after 5 warm-up steps each


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=70, help="steady-state steps (<= 78)")
    parser.add_argument("--write", action="store_true", help="write bench/RESULTS.md's section")
    parser.add_argument("--loop", nargs=2, metavar=("TENSORS", "OUT_DIR"), help=argparse.SUPPRESS)
    parser.add_argument("--switches", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.loop:
        loop_process(*args.loop, args.switches, epochs=2)
        return

    import lightning  # noqa: F401  (sets its own log level when imported: quiet it after)

    from xlvision.cli.app import quiet_libraries

    quiet_libraries()  # as xlv-train does: no device banners or tips between the rows
    with tempfile.TemporaryDirectory(prefix="xlv-overhead-") as tmp:
        work = Path(tmp)
        tensors, switches = prepare(work)
        xlv, loop, accuracy = whole_process(work, switches, args.repeats)
        xlv_steps, loop_steps = steady_state(work, tensors, switches, args.steps)
        step_xlv, step_loop = statistics.median(xlv_steps), statistics.median(loop_steps)
    imports = {m: import_seconds(m) for m in ("torch", "lightning.pytorch")}

    from _results import machine, write_section

    whole = statistics.median(loop) / statistics.median(xlv)
    steady = step_loop / step_xlv
    on = ", ".join(k for k, v in switches.items() if v) or "none"
    lines = [
        "## Framework overhead: xlv-train vs a hand-written loop (`bench/overhead.py`)",
        "",
        f"Machine: {machine()}.",
        "",
        f"Net, 2 epochs of 10,000 glyph digits, batch 128, Adam; switches on both sides: {on}.",
        f"Whole process: {args.repeats} interleaved repeats each. Steady state: "
        f"{len(xlv_steps)} steps each in lockstep. Ratio = loop time / xlv-train time.",
        "",
        "| measure | hand-written loop | xlv-train | ratio | target |",
        "|---|---|---|---|---|",
        f"| whole process, median s | {statistics.median(loop):.1f} "
        f"| {statistics.median(xlv):.1f} | {whole:.3f} | >= 0.95 |",
        f"| steady-state step, median ms | {step_loop * 1e3:.1f} | {step_xlv * 1e3:.1f} "
        f"| {steady:.3f} | >= 0.98 |",
        f"| test accuracy (repeat 1) | {accuracy['loop']:.4f} | {accuracy['xlv-train']:.4f} | | |",
        "",
        "Whole-process seconds, each repeat: xlv-train "
        + ", ".join(f"{s:.1f}" for s in xlv)
        + "; loop "
        + ", ".join(f"{s:.1f}" for s in loop)
        + ".",
        "",
        f"Start-up: a fresh Python takes {imports['torch']:.1f} s to import torch and "
        f"{imports['lightning.pytorch']:.1f} s to import Lightning (which imports torchmetrics, "
        "torchvision and SciPy with it; median of 3), a cost every xlv-train process pays once "
        "and the loop does not.",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section("overhead", text)


if __name__ == "__main__":
    main()
