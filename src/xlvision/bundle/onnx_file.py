"""The exported ONNX file: its interface, and reading digits with it through onnxruntime.

Nothing here imports torch: a machine that only predicts needs NumPy, Pillow and onnxruntime.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from xlvision.bundle.errors import BundleError

INPUT = "image"
OUTPUTS = ("digit_logits", "script_probs", "digit", "digit_prob", "script", "script_prob")
OUTPUT_DOCS = {
    "digit_logits": (
        "float32 [N, L, C]: each language's digit logits divided by the bundle's digit "
        "temperature (softmax gives calibrated probabilities), in `languages` order"
    ),
    "script_probs": "float32 [N, L]: the script (language) probabilities, calibrated",
    "digit": "int64 [N]: the answer's digit",
    "digit_prob": "float32 [N]: the answer digit's probability",
    "script": "int64 [N]: the answer's language, an index into `languages`",
    "script_prob": "float32 [N]: that language's probability",
    "familiarity": (
        "float32 [N]: the largest cosine similarity of the router's features to the bundle's "
        "prototypes (one per language and digit of its validation data); only from a bundle "
        "with prototypes"
    ),
}
FAMILIARITY = "familiarity"
"""The output a bundle with prototypes adds after `OUTPUTS`; a file without it reads as before."""
OPSET = 18
EXPORT_FORMAT = "xlvision-export"
EXPORT_FORMAT_VERSION = 1
METADATA_KEY = "xlvision"
"""The ONNX metadata_props key (and the TorchScript extra file `xlvision.json`) holding the JSON
description of an exported file: its input, outputs, preprocessing and languages."""


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


class OnnxReader:
    """An exported `.onnx` file run by onnxruntime on the CPU; reads as `TorchReader` does."""

    def __init__(self, path: str | Path, threads: int = 0) -> None:
        path = Path(path).expanduser()
        if not path.is_file():
            raise BundleError(f"{path}: no such ONNX file")
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # errors only: no warnings on the console
        options.intra_op_num_threads = threads
        try:
            self.session = onnxruntime.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as err:
            reason = " ".join(str(err).split())[:200] or type(err).__name__
            raise BundleError(f"{path}: not a readable ONNX model ({reason})") from None
        text = self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        if text is None:
            raise BundleError(f"{path}: no {METADATA_KEY!r} metadata (not exported by xlv-export)")
        try:
            info = json.loads(text)
        except json.JSONDecodeError as err:
            raise BundleError(
                f"{path}: its {METADATA_KEY!r} metadata is not JSON ({err})"
            ) from None
        if (
            info.get("format") != EXPORT_FORMAT
            or info.get("format_version") != EXPORT_FORMAT_VERSION
        ):
            raise BundleError(
                f"{path}: format {info.get('format')!r} version {info.get('format_version')!r} "
                f"is not supported (this xlvision reads {EXPORT_FORMAT} {EXPORT_FORMAT_VERSION})"
            )
        names = [output.name for output in self.session.get_outputs()]
        if names not in (list(OUTPUTS), [*OUTPUTS, FAMILIARITY]):
            raise BundleError(
                f"{path}: outputs {names}, expected {list(OUTPUTS)} (and maybe {FAMILIARITY!r})"
            )
        self.outputs = names
        self.path = path
        self.info = info
        self.manifest = {
            "languages": info["languages"],
            "preprocessing": info["preprocessing"],
            "answer": info.get("answer", "routed"),
            "calibration": info.get("calibration"),
        }
        self.languages = [record["code"] for record in info["languages"]]
        self.can_identify = True

    def outputs_of(self, image: np.ndarray) -> dict[str, np.ndarray]:
        """Every output for float32 [N, 1, 28, 28] images in [0, 1], the file's input."""
        return dict(zip(self.outputs, self.session.run(self.outputs, {INPUT: image}), strict=True))

    def run(self, digits: np.ndarray) -> dict[str, np.ndarray]:
        """Every output for uint8 [N, 28, 28] normalized digits."""
        return self.outputs_of((digits.astype(np.float32) / np.float32(255.0))[:, None])

    def script_probs(self, digits: np.ndarray) -> np.ndarray:
        return self.run(digits)["script_probs"]

    def read(self, digits: np.ndarray, language: str | None) -> dict[str, np.ndarray]:
        """As `UnifiedModel.predict`: `familiarity` too when the file has it."""
        out = self.run(digits)
        familiar = {FAMILIARITY: out[FAMILIARITY]} if FAMILIARITY in out else {}
        if language is None:
            return {
                "language": out["script"],
                "language_prob": out["script_prob"],
                "digit": out["digit"],
                "digit_prob": out["digit_prob"],
                **familiar,
            }
        index = self.languages.index(language)
        probs = softmax(out["digit_logits"][:, index])
        n = len(digits)
        return {
            "language": np.full(n, index),
            "language_prob": np.ones(n, dtype=np.float32),
            "digit": probs.argmax(axis=1),
            "digit_prob": probs.max(axis=1),
            **familiar,
        }
