"""What the benchmarks share: the machine's description and their sections of RESULTS.md."""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
from pathlib import Path

import torch

RESULTS = Path(__file__).with_name("RESULTS.md")
HEADER = (
    "# Benchmark results\n\n"
    "Written by the benchmarks themselves (`python bench/<name>.py --write`); each section is\n"
    "one run's output, with the machine it ran on. Ratios are measured interleaved in that\n"
    "run, so a busy machine slows both sides alike; absolute images/s are only indicative.\n"
)


def machine() -> str:
    """CPU model, cores, PyTorch and its CPU features, and how busy the machine was."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        found = re.search(r"model name\s*:\s*(.+)", cpuinfo.read_text())
        model = found.group(1).strip() if found else model
    bf16 = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return (
        f"{model}, {os.cpu_count()} logical cores, {torch.get_num_threads()} torch threads, "
        f"PyTorch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}, "
        f"AVX-512 BF16 {'yes' if bf16 else 'no'}; load average at the end {load} "
        "(a machine shared with other jobs)"
    )


def write_section(name: str, text: str) -> None:
    """Replace this benchmark's section of RESULTS.md (or add it), keeping the others."""
    begin, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    block = f"{begin}\n{text.strip()}\n{end}"
    current = RESULTS.read_text(encoding="utf-8") if RESULTS.is_file() else HEADER
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if pattern.search(current):
        updated = pattern.sub(lambda _: block, current)
    else:
        updated = current.rstrip() + "\n\n" + block + "\n"
    RESULTS.write_text(updated, encoding="utf-8")
    print(f"wrote the {name} section of {RESULTS}")


def comparison_args(doc: str, images: int) -> tuple[argparse.Namespace, int]:
    """The options of a benchmark that times two ways of doing one thing (`--images`,
    `--rounds`, `--write`), and the torch threads it sets (at most 2)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--images", type=int, default=images)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="write bench/RESULTS.md's section")
    args = parser.parse_args()
    threads = min(2, torch.get_num_threads())
    torch.set_num_threads(threads)
    return args, threads


def compared(
    label: str, first: list[float], second: list[float], *, seconds: bool, line: str
) -> tuple:
    """A row of `write_comparison`: (label, the median of each side's samples, how many times
    faster the second side is), printed as `line` (a format with {label}, {first}, {second}
    and {ratio}). Samples are seconds when `seconds`, else rates (per second)."""
    a, b = statistics.median(first), statistics.median(second)
    ratio = a / b if seconds else b / a
    print(line.format(label=label, first=a, second=b, ratio=ratio))
    return label, a, b, ratio


def write_comparison(
    name: str, title: str, columns: list[str], rows: list[tuple], number: str, note: str
) -> None:
    """`write_section` of a table with a row per (label, first, second, ratio): the two
    measures in `number` format, the ratio as 1.23×; under the title, the machine; below the
    table, `note`."""
    lines = "\n".join(
        f"| {label} | {a:{number}} | {b:{number}} | {ratio:.2f}× |" for label, a, b, ratio in rows
    )
    write_section(
        name,
        f"{title}\n\nMachine: {machine()}.\n\n| {' | '.join(columns)} |\n|---|---|---|---|\n"
        f"{lines}\n\n{note}",
    )
