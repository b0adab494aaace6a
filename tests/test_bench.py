"""The benchmarks' shared helpers: RESULTS.md sections are replaced, never duplicated."""

from __future__ import annotations

import importlib.util

import torch
from conftest import REPO


def load_results_module(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("bench_results", REPO / "bench" / "_results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "RESULTS", tmp_path / "RESULTS.md")
    return module


def test_each_benchmark_owns_one_section_of_results(tmp_path, monkeypatch):
    results = load_results_module(tmp_path, monkeypatch)
    results.write_section("overhead", "| a | 1 |")
    results.write_section("train_speed", "| b | 2 |")
    results.write_section("overhead", "| a | 3 |")
    text = (tmp_path / "RESULTS.md").read_text()
    assert text.startswith("# Benchmark results")
    assert text.count("<!-- overhead -->") == 1 and "| a | 3 |" in text and "| a | 1 |" not in text
    assert "| b | 2 |" in text
    assert text.index("<!-- overhead -->") < text.index("<!-- train_speed -->")


def test_the_machine_line_names_what_the_numbers_depend_on(tmp_path, monkeypatch):
    line = load_results_module(tmp_path, monkeypatch).machine()
    assert torch.__version__ in line and "logical cores" in line and "BF16" in line
    assert "shared" in line


def test_make_bench_runs_every_benchmark_script():
    makefile = (REPO / "Makefile").read_text()
    assert "bench/[!_]*.py" in makefile  # a new bench/*.py is picked up without editing
    scripts = sorted(p.name for p in (REPO / "bench").glob("[!_]*.py"))
    assert {"glyph_throughput.py", "overhead.py", "train_speed.py", "export_predict.py"} <= set(
        scripts
    )
