"""`debug=fast` on every `experiment=` preset: seconds of `xlv-pipeline experiment=X
debug=fast`, one job as a user would start it, each in a fresh output and cache dir (nothing
reused), against the one-minute target. Ratio = seconds / 60 (≤ 1.00 meets it).

    .venv/bin/python bench/debug_fast.py [--presets demo unified] [--write]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _results import machine, write_section

REPO = Path(__file__).resolve().parents[1]
PRESETS = sorted(p.stem for p in (REPO / "conf" / "experiment").glob("*.yaml"))
TARGET_S = 60.0


def seconds(preset: str) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        command = [
            str(Path(sys.executable).with_name("xlv-pipeline")),
            f"experiment={preset}",
            "debug=fast",
            f"hydra.run.dir={tmp}/run",
            f"paths.cache_dir={tmp}/cache",
        ]
        start = time.perf_counter()
        done = subprocess.run(command, cwd=tmp, capture_output=True, text=True)
        return time.perf_counter() - start, done.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="*", default=PRESETS)
    parser.add_argument("--write", action="store_true", help="write bench/RESULTS.md's section")
    args = parser.parse_args()
    rows = []
    for preset in args.presets:
        wall, rc = seconds(preset)
        status = "completed" if rc == 0 else f"failed (exit {rc})"
        rows.append(f"| `{preset}` | {wall:.1f} | {wall / TARGET_S:.2f} | {status} |")
        print(rows[-1], flush=True)
    text = "\n".join(
        [
            "## `debug=fast` on every preset (`bench/debug_fast.py`)",
            "",
            f"Machine: {machine()}.",
            "",
            "`xlv-pipeline experiment=<preset> debug=fast`, one job, fresh output and cache dirs.",
            "",
            "| preset | seconds | × the 60 s target | status |",
            "|---|---|---|---|",
            *rows,
        ]
    )
    print(text)
    if args.write:
        write_section("debug_fast", text)


if __name__ == "__main__":
    main()
