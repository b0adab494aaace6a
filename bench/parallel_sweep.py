"""Parallel sweeps: 4 training jobs one after another vs on 2 joblib workers.

Runs a 4-job `xlv-train -m` sweep of learning rates twice, with the basic launcher (sequential, one process)
and with `hydra/launcher=joblib hydra.launcher.n_jobs=2` (each job takes cores // 2
threads), and prints both wall times and their ratio. Target: >= 1.7x on a 2-core machine.
The jobs share one seed and so one data set, which is cached before either sweep runs.

    .venv/bin/python bench/parallel_sweep.py [jobs] [n_jobs] [--write]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCRIPT = Path(sys.executable).parent / "xlv-train"
# A job of about 15-20 s of training on two cores: long enough that a worker's start-up (a
# fresh Python importing Lightning, about 5 s) does not dominate.
JOB = [
    "debug=fast",
    "data.train_per_class=1000",
    "trainer.limit_train_batches=1.0",
    "trainer.max_epochs=3",
]


def sweep(args: list[str], cwd: Path) -> float:
    """Seconds one `xlv-train` command takes; it must succeed."""
    env = {**os.environ, "XLV_CACHE_DIR": str(cwd / "cache")}
    start = time.perf_counter()
    result = subprocess.run(
        [str(SCRIPT), *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"xlv-train {' '.join(args)} failed:\n{result.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("jobs", type=int, nargs="?", default=4)
    parser.add_argument("n_jobs", type=int, nargs="?", default=2)
    parser.add_argument("--write", action="store_true", help="write bench/RESULTS.md's section")
    args = parser.parse_args()
    rates = "optimizer.lr=" + ",".join(f"{0.002 / (i + 1):.6f}" for i in range(args.jobs))
    with tempfile.TemporaryDirectory(prefix="xlv-bench-") as tmp:
        cwd = Path(tmp)
        sweep([*JOB, "trainer.max_epochs=1", "trainer.limit_train_batches=1"], cwd)  # the cache
        sequential = sweep(["-m", rates, *JOB], cwd)
        parallel = sweep(
            ["-m", rates, "hydra/launcher=joblib", f"hydra.launcher.n_jobs={args.n_jobs}", *JOB],
            cwd,
        )
    from _results import machine, write_section

    text = "\n".join(
        [
            "## Parallel sweeps: joblib workers against one job after another "
            "(`bench/parallel_sweep.py`)",
            "",
            f"Machine: {machine()}.",
            "",
            "| launcher | wall s | × sequential | target |",
            "|---|---|---|---|",
            f"| basic (one job after another) | {sequential:.1f} | 1.00× | |",
            f"| joblib, {args.n_jobs} workers | {parallel:.1f} | {sequential / parallel:.2f}× "
            "| >= 1.7× |",
            "",
            f"A {args.jobs}-job `xlv-train -m` sweep of learning rates (`debug=fast`, 1,000 "
            "glyphs per class, 3 epochs), the data cached before either sweep; each joblib job "
            "takes cores // workers threads and each worker is a fresh Python.",
        ]
    )
    print(text)
    if args.write:
        write_section("parallel_sweep", text)


if __name__ == "__main__":
    main()
