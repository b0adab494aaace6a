"""Prediction speed of an exported `.onnx` file (onnxruntime) against the PyTorch bundle, on CPU.

Builds a bundle of the demo's shape (a Net per language for kn, ar and hi, plus a router: the
routed layout) and a shared-backbone one, exports each to ONNX, and reads the same normalized
glyph digits with both, interleaved rounds, same thread count. Prints images/s of the model
alone (batch 256, the xlv-predict default), the median of the rounds, and the ratio. Weights
are untrained: speed does not depend on them.

    .venv/bin/python bench/export_predict.py [--images 3072] [--rounds 3] [--write]
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _results import compared, comparison_args, write_comparison

from xlvision.bundle.export import check_images, checked_export
from xlvision.bundle.file import load_bundle, save_bundle
from xlvision.bundle.manifest import digit_preprocessing, language_record
from xlvision.bundle.model import LID_HEAD, UnifiedModel
from xlvision.bundle.onnx_file import OnnxReader
from xlvision.bundle.predict import TorchReader
from xlvision.models.registry import build_classifier

CODES = ["kn", "ar", "hi"]
NET = {"name": "net"}  # the registry's defaults: the seed's Net


def layouts() -> dict[str, tuple[UnifiedModel, dict]]:
    torch.manual_seed(0)
    members = {c: build_classifier(NET, {c: 10}) for c in CODES}
    members["router"] = build_classifier(NET, {LID_HEAD: len(CODES)})
    routed = UnifiedModel(members, {c: c for c in CODES}, CODES, "router")
    shared = build_classifier(NET, {**{c: 10 for c in CODES}, LID_HEAD: len(CODES)})
    one = UnifiedModel({"shared": shared}, {c: "shared" for c in CODES}, CODES, "shared")
    return {
        "routed (4 Nets)": (routed, {k: NET for k in members}),
        "shared (1 Net)": (one, {"shared": NET}),
    }


def rate(read, digits: np.ndarray, batch: int) -> float:
    start = time.perf_counter()
    for i in range(0, len(digits), batch):
        read(digits[i : i + batch], None)
    return len(digits) / (time.perf_counter() - start)


LINE = (
    "{label:16s} PyTorch {first:8.0f} images/s   onnxruntime {second:8.0f} images/s   "
    "ratio onnx / torch {ratio:.2f}x"
)


def main() -> None:
    args, threads = comparison_args(__doc__, images=3072)
    digits = np.round(check_images(CODES, args.images // len(CODES))[:, 0] * 255).astype(np.uint8)
    print(f"{len(digits)} images, batch 256, {threads} threads, {args.rounds} interleaved rounds")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (model, specs) in layouts().items():
            path = save_bundle(
                Path(tmp) / "b.safetensors",
                model.eval(),
                member_specs=specs,
                languages={c: language_record(c) for c in CODES},
                preprocessing=digit_preprocessing(),
                integration={"method": "bench", "params": {}},
                metrics={},
            )
            model, manifest = load_bundle(path)
            onnx_path, _ = checked_export(
                model, manifest, path, "onnx", Path(tmp) / "b.onnx", check=50, overwrite=True
            )
            readers = {
                "torch": TorchReader(model, manifest),
                "onnx": OnnxReader(onnx_path, threads),
            }
            for reader in readers.values():  # warm-up
                reader.read(digits[:256], None)
            speeds = {key: [] for key in readers}
            for _ in range(args.rounds):
                for key, reader in readers.items():
                    speeds[key].append(rate(reader.read, digits, 256))
            rows.append(compared(name, speeds["torch"], speeds["onnx"], seconds=False, line=LINE))
    if args.write:
        write_comparison(
            "export_predict",
            "## Prediction: an exported .onnx file against the PyTorch bundle "
            "(`bench/export_predict.py`)",
            ["bundle (kn, ar, hi)", "PyTorch images/s", "onnxruntime images/s", "onnx / torch"],
            rows,
            ".0f",
            f"""The model alone (`TorchReader.read` against `OnnxReader.read`) on {len(digits)} normalized glyph
digits, batch 256, {threads} threads each, the median of {args.rounds} interleaved rounds.""",
        )


if __name__ == "__main__":
    main()
