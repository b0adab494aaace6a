"""Write run dirs the way the training stages do, for the report tests."""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import OmegaConf

LANGUAGE_NAMES = {"kn": "Kannada", "ar": "Arabic", "hi": "Hindi"}


def write_run(
    run_dir: Path,
    languages: list[str],
    model: str,
    seed: int,
    metrics: dict[str, float] | None = None,
    status: str = "completed",
    error: str | None = None,
    shots: int | None = None,
    confusion: dict[str, list[list[int]]] | None = None,
    extra: dict | None = None,
) -> Path:
    """One run dir: config.yaml, .hydra/overrides.yaml and, unless `metrics` is None and
    status is completed, a metrics.json."""
    run_dir.mkdir(parents=True)
    config = {
        "stage": "finetune",
        "seed": seed,
        "language": {c: {"code": c, "name": LANGUAGE_NAMES[c]} for c in languages},
        "model": {"name": model, "_target_": f"xlvision.models.{model}"},
        "finetune": {"name": "full"},
        "optimizer": {"_target_": "torch.optim.Adam", "lr": 0.001, "_partial_": True},
        "data": {"shots_per_class": shots, "cache_dir": f"/cache/{run_dir.name}"},
        **(extra or {}),
    }
    OmegaConf.save(OmegaConf.create(config), run_dir / "config.yaml")
    (run_dir / ".hydra").mkdir()
    overrides = [f"model={model}", f"seed={seed}", f"language={'+'.join(languages)}"]
    OmegaConf.save(OmegaConf.create(overrides), run_dir / ".hydra" / "overrides.yaml")
    if metrics is not None or status == "failed":
        payload = {
            "status": status,
            "stage": "finetune",
            "metrics": metrics or {},
            "confusion": confusion or {},
            "error": error,
        }
        (run_dir / "metrics.json").write_text(json.dumps(payload), encoding="utf-8")
    return run_dir


def confusion_matrix(correct: int, wrong: int) -> list[list[int]]:
    """10×10 counts with `correct` on the diagonal and `wrong` confusions of k with k+1."""
    return [
        [correct if i == j else wrong if j == (i + 1) % 10 else 0 for j in range(10)]
        for i in range(10)
    ]


def write_training_log(
    run_dir: Path, language: str, losses: list[float], accs: list[float]
) -> None:
    """A sparse Lightning CSVLogger file: loss rows by step, val rows by epoch."""
    (run_dir / "csv").mkdir()
    lines = [f"epoch,step,train/loss,val/{language}/acc"]
    for epoch, (loss, acc) in enumerate(zip(losses, accs, strict=True)):
        lines.append(f"{epoch},{epoch * 10 + 5},{loss},")
        lines.append(f"{epoch},{epoch * 10 + 9},,{acc}")
    (run_dir / "csv" / "metrics.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def make_sweep(root: Path) -> Path:
    """A multirun sweep over language × model × seed with the trouble real sweeps have.

    test/{lang}/acc per cell: kn/net 0.90 0.92 0.94; kn/resnet18 0.95 0.97 + 1 failed;
    ar/net 0.80 0.86 + 1 corrupt metrics.json; ar/resnet18 never ran; hi/net incomplete.
    """
    sweep = root / "multirun" / "2026-11-27" / "10-00-00_ab12"
    sweep.mkdir(parents=True)
    (sweep / "multirun.yaml").write_text("hydra: {mode: MULTIRUN}\n", encoding="utf-8")
    plan = [
        ("kn", "net", 0, 0.90, 10.0),
        ("kn", "net", 1, 0.92, 12.0),
        ("kn", "net", 2, 0.94, 14.0),
        ("kn", "resnet18", 0, 0.95, 30.0),
        ("kn", "resnet18", 1, 0.97, 34.0),
        ("kn", "resnet18", 2, None, None),
        ("ar", "net", 0, 0.80, 8.0),
        ("ar", "net", 1, 0.86, 9.0),
        ("ar", "net", 2, "corrupt", None),
        ("hi", "net", 0, "incomplete", None),
    ]
    for index, (lang, model, seed, acc, seconds) in enumerate(plan):
        run_dir = sweep / str(index)
        if acc is None:
            write_run(run_dir, [lang], model, seed, status="failed", error="CUDA out of memory")
        elif acc == "corrupt":
            write_run(run_dir, [lang], model, seed)
            (run_dir / "metrics.json").write_text('{"status": "compl', encoding="utf-8")
        elif acc == "incomplete":
            write_run(run_dir, [lang], model, seed)
        else:
            metrics = {
                f"val/{lang}/acc": acc + 0.01,
                f"test/{lang}/acc": acc,
                f"test/{lang}/f1": acc - 0.05,
                "test/mean/acc": acc,
                "train_time_s": seconds,
                "trainable_params": 1234,
            }
            confusion = {f"test/{lang}": confusion_matrix(9, 1)}
            write_run(run_dir, [lang], model, seed, metrics, confusion=confusion)
            if seed == 0:
                write_training_log(run_dir, lang, [2.0, 1.0, 0.5], [0.5, 0.8, acc])
    return sweep


SEARCHED = {
    "finetune": "choice(full, linear_probe, partial, bitfit, l2sp, lora)",
    "finetune.lr": "tag(log, interval(1e-4, 1e-2))",
    "optimizer.weight_decay": "tag(log, interval(1e-6, 1e-2))",
}


def make_search(root: Path, finished: bool = True) -> Path:
    """An Optuna sweep as `xlv-finetune -m hparams_search=optuna language=kn` leaves it.

    Trials (finetune, lr, weight decay → val/kn/acc): 0 lora 0.00123 1.5e-05 → 0.91;
    1 full 0.0042 0.0003 → failed; 2 l2sp 0.000271 2e-06 → 0.95 (the best); 3 bitfit 0.0087
    0.0061 → 0.88. With `finished`, the sweep dir holds optimization_results.yaml.
    """
    sweep = root / "multirun" / "2026-11-28" / "09-00-00_cd34"
    plan = [
        ("lora", 0.0012345678, 1.5e-05, 0.91),
        ("full", 0.0042, 0.0003, None),
        ("l2sp", 0.00027123, 2.0e-06, 0.95),
        ("bitfit", 0.0087, 0.0061, 0.88),
    ]
    sweeper = {
        "_target_": "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper",
        "direction": "maximize",
        "study_name": "${stage}",
        "n_trials": 4,
        "params": SEARCHED,
    }
    for number, (strategy, lr, decay, acc) in enumerate(plan):
        extra = {
            "finetune": {"name": strategy, "lr": lr},
            "optimizer": {"_target_": "torch.optim.AdamW", "lr": lr, "weight_decay": decay},
        }
        metrics = None if acc is None else {"val/kn/acc": acc, "test/kn/acc": acc - 0.02}
        status = "failed" if acc is None else "completed"
        run_dir = write_run(
            sweep / str(number),
            ["kn"],
            "net",
            0,
            metrics,
            status=status,
            extra=extra,
            error="CUDA out of memory" if acc is None else None,
        )
        overrides = ["hparams_search=optuna", "language=kn", "base=base/checkpoints/best.ckpt"]
        overrides += [f"finetune={strategy}", f"finetune.lr={lr}"]
        overrides += [f"optimizer.weight_decay={decay}"]
        OmegaConf.save(OmegaConf.create(overrides), run_dir / ".hydra" / "overrides.yaml")
        hydra = {"hydra": {"sweeper": sweeper, "job": {"num": number}}}
        OmegaConf.save(OmegaConf.create(hydra), run_dir / ".hydra" / "hydra.yaml")
    if finished:
        best = {"finetune": "l2sp", "finetune.lr": 0.00027123, "optimizer.weight_decay": 2.0e-06}
        results = {"name": "optuna", "best_params": best, "best_value": 0.95}
        OmegaConf.save(OmegaConf.create(results), sweep / "optimization_results.yaml")
    return sweep
