"""A bundle out of Python: one ONNX or TorchScript file that reads a batch as xlv-predict does,
and a self-contained web page that runs the ONNX file in the browser.

The exported graph takes `image`, float32 [N, 1, 28, 28] in [0, 1]: a digit normalized the MNIST
way (bright ink on a dark ground, its ink box fitted in 20×20, its centre of mass at row and
column 14), divided by 255; the bundle's mean and std are applied inside the graph. For each
image it returns every language's digit logits, the script probabilities, and the routed answer
(digit and script) with their probabilities; a bundle with prototypes adds the familiarity.
Every file is checked against PyTorch before it replaces anything at `output`.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from xlvision.bundle.errors import BundleError, ExportError
from xlvision.bundle.manifest import model_input
from xlvision.bundle.model import UnifiedModel, cosine_familiarity
from xlvision.bundle.onnx_file import (
    EXPORT_FORMAT,
    EXPORT_FORMAT_VERSION,
    FAMILIARITY,
    INPUT,
    METADATA_KEY,
    OPSET,
    OUTPUT_DOCS,
    OUTPUTS,
    OnnxReader,
)
from xlvision.models.classifier import DIGIT_HEAD, LID_HEAD
from xlvision.models.views import Views

FORMATS = ("onnx", "torchscript", "web")
TOLERANCE = 1e-4
RUNTIME_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
WEB_TEMPLATE = Path(__file__).with_name("web")


class ReadEverything(nn.Module):
    """Every reading of a batch at once, with no data-dependent control flow, so it traces.

    The digit answer follows the bundle's `answer`: `routed` takes the head of the language the
    router names; `shared` the router member's shared digit head; `marginal` weighs every
    language's digit probabilities by that language's probability. Computing every head for
    every image gives the numbers of `UnifiedModel.predict`, which runs only the chosen ones.
    The bundle's temperatures and digit evidence are constants of the graph: its probabilities
    are calibrated and its script read as `UnifiedModel.script_logits` reads it.
    So are its prototypes, if any: the graph then also outputs the familiarity (`outputs`), and
    with a `temperature_rise` its temperatures are computed per image from it. Its `views`, if
    any, are read in the graph too (`xlvision.models.views`).
    """

    def __init__(self, model: UnifiedModel, mean: float, std: float, thicken: int = 0) -> None:
        super().__init__()
        self.thicken = int(thicken)  # 3×3 maximum filters on the image first (a thin pen)
        if model.router is None:
            raise ValueError("it has no language-ID router, so it cannot read without a language")
        sizes = {c: model.members[model.routes[c]].heads[c].out_features for c in model.languages}
        if len(set(sizes.values())) != 1:
            found = ", ".join(f"{code}: {n}" for code, n in sizes.items())
            raise ValueError(f"its languages differ in their number of classes ({found})")
        used = {model.routes[code] for code in model.languages} | {model.router}
        self.members = nn.ModuleDict({key: m for key, m in model.members.items() if key in used})
        self.routes = [(model.routes[code], code) for code in model.languages]
        self.router = model.router
        self.answer = model.answer
        self.views = Views(model.views.name)  # the moved copies: constants of the graph
        self.register_buffer("mean", torch.tensor(float(mean)))
        self.register_buffer("std", torch.tensor(float(std)))
        self.register_buffer("script_t", torch.tensor(float(model.temperatures["script"])))
        self.register_buffer("digit_t", torch.tensor(float(model.temperatures["digit"])))
        self.register_buffer("evidence", torch.tensor(float(model.evidence)))
        self.register_buffer("prototypes", None)
        self.register_buffer("neighbours", None)
        self.register_buffer("feature_center", None)
        self.register_buffer("feature_projection", None)
        self.rise = None  # (below, script t, script slope, digit t, digit slope)
        if model.temperature_rise is not None:
            rise = model.temperature_rise
            kinds = [rise[k][v] for k in ("script", "digit") for v in ("t", "slope")]
            self.rise = tuple(float(v) for v in (rise["below"], *kinds))
        self.outputs = OUTPUTS
        if model.prototypes is not None:
            self.prototypes = model.prototypes.detach().clone()
            self.outputs = (*OUTPUTS, FAMILIARITY)
            if model.neighbours is not None:
                self.neighbours = model.neighbours.detach().clone()
                self.feature_center = model.feature_center.detach().clone()
                self.feature_projection = model.feature_projection.detach().clone()

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        for _ in range(self.thicken):
            image = F.max_pool2d(image, 3, stride=1, padding=1)
        x = (image - self.mean) / self.std
        features = {key: self.views.read(m.backbone, x) for key, m in self.members.items()}
        raw = torch.stack(
            [self.members[key].heads[code](features[key]) for key, code in self.routes], dim=1
        )
        router = self.members[self.router]
        script_logits = router.heads[LID_HEAD](features[self.router])
        script_logits = script_logits + self.evidence * torch.logsumexp(raw / self.digit_t, dim=2)
        script_t, digit_t = self.script_t, self.digit_t
        if self.rise is not None:
            below, script_base, script_slope, digit_base, digit_slope = self.rise
            means = cosine_familiarity(features[self.router], self.prototypes)
            gap = (below - means).clamp(min=0).unsqueeze(1)
            script_t = script_base * torch.exp(script_slope * gap)
            digit_t = (digit_base * torch.exp(digit_slope * gap)).unsqueeze(2)
        logits = raw / digit_t
        script_probs = (script_logits / script_t).softmax(dim=1)
        script_prob, script = script_probs.max(dim=1)
        probs = logits.softmax(dim=2)
        if self.answer == "routed":
            index = script.view(-1, 1, 1).expand(-1, 1, probs.shape[2])
            chosen = probs.gather(1, index).squeeze(1)
        elif self.answer == "shared":
            shared = router.heads[DIGIT_HEAD](features[self.router])
            chosen = (shared / digit_t.reshape(-1, 1) if self.rise else shared / digit_t).softmax(1)
        else:  # marginal
            chosen = (script_probs.unsqueeze(2) * probs).sum(dim=1)
        digit_prob, digit = chosen.max(dim=1)
        out = (logits, script_probs, digit, digit_prob, script, script_prob)
        if self.prototypes is None:
            return out
        familiar = cosine_familiarity(
            features[self.router],
            self.prototypes,
            self.neighbours,
            self.feature_center,
            self.feature_projection,
        )
        return (*out, familiar)


def exported_outputs(manifest: dict) -> tuple[str, ...]:
    """The outputs a bundle's export has: `OUTPUTS`, then the familiarity if it has prototypes."""
    if (manifest.get("calibration") or {}).get("prototypes"):
        return (*OUTPUTS, FAMILIARITY)
    return OUTPUTS


def exportable(model: UnifiedModel, manifest: dict, bundle: str | Path) -> ReadEverything:
    """The model wrapped for export, in eval mode; `BundleError` names the bundle if it cannot be."""
    preprocessing = manifest["preprocessing"]
    try:
        wrapped = ReadEverything(
            model, preprocessing["mean"], preprocessing["std"], preprocessing.get("thicken", 0)
        )
    except ValueError as err:
        raise BundleError(f"{bundle}: cannot be exported: {err}") from None
    return wrapped.eval()


def description(manifest: dict, bundle: str | Path, fmt: str) -> dict:
    """What the exported file holds and expects, stored beside its graph."""
    pre = manifest["preprocessing"]
    canvas, box = pre.get("canvas", 28), pre.get("box", 20)
    return {
        "format": EXPORT_FORMAT,
        "format_version": EXPORT_FORMAT_VERSION,
        "exported_as": fmt,
        "opset": None if fmt == "torchscript" else OPSET,
        "input": {
            "name": INPUT,
            "dtype": "float32",
            "shape": ["N", 1, canvas, canvas],
            "range": [0.0, 1.0],
            "meaning": (
                f"pixel / 255 of a {canvas}×{canvas} digit normalized as MNIST was: bright ink on "
                f"a dark ground, the ink's box fitted in {box}×{box} (aspect kept), its centre "
                f"of mass at row and column {canvas // 2}; (x - mean) / std with mean "
                f"{pre['mean']} and std {pre['std']} is applied inside the graph"
            ),
        },
        "outputs": {name: OUTPUT_DOCS[name] for name in exported_outputs(manifest)},
        "preprocessing": pre,
        "answer": manifest.get("answer", "routed"),
        "calibration": manifest.get("calibration"),
        "languages": manifest["languages"],
        "source_bundle": Path(bundle).name,
        "source_sha256": manifest.get("payload_sha256"),
    }


def _example(batch: int = 2) -> torch.Tensor:
    return torch.rand(batch, 1, 28, 28, generator=torch.Generator().manual_seed(0))


def write_onnx(wrapped: ReadEverything, info: dict, path: Path) -> None:
    """One self-contained `.onnx` file (weights inside), dynamic batch, `info` in its metadata."""
    import onnx

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            wrapped,
            (_example(),),
            dynamo=True,
            input_names=[INPUT],
            output_names=list(wrapped.outputs),
            dynamic_shapes={"image": {0: torch.export.Dim("N")}},
            opset_version=OPSET,
            verbose=False,
        )
    proto = program.model_proto
    del proto.metadata_props[:]
    entries = {
        METADATA_KEY: json.dumps(info, ensure_ascii=False),
        "preprocessing": info["input"]["meaning"],
        "opset": str(OPSET),
        "languages": ",".join(record["code"] for record in info["languages"]),
    }
    for key, value in entries.items():
        proto.metadata_props.add(key=key, value=value)
    proto.doc_string = "xlvision digit reader; input: " + info["input"]["meaning"]
    onnx.save_model(proto, str(path))


def write_torchscript(wrapped: ReadEverything, info: dict, path: Path) -> None:
    """A traced TorchScript module (`torch.jit.load`), `info` as the extra file `xlvision.json`."""
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(wrapped, _example(), check_trace=False)
        torch.jit.save(traced, str(path), _extra_files={f"{METADATA_KEY}.json": json.dumps(info)})


def run_onnx(path: Path) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    return OnnxReader(path).outputs_of


def run_torchscript(path: Path) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = torch.jit.load(str(path))

    def run(image: np.ndarray) -> dict[str, np.ndarray]:
        with torch.no_grad():
            out = module(torch.from_numpy(image))
        names = (*OUTPUTS, FAMILIARITY)[: len(out)]
        return {name: value.numpy() for name, value in zip(names, out, strict=True)}

    return run


@torch.no_grad()
def reference_outputs(model: UnifiedModel, manifest: dict, image: np.ndarray) -> dict:
    """What PyTorch's bundle says of `image` ([N, 1, 28, 28] in [0, 1]), by the paths
    xlv-predict takes: each language's own forward (over the digit temperature), the router
    (`script_probs`, calibrated), and `UnifiedModel.predict` (with its `familiarity`, if any)."""
    digits = torch.from_numpy(np.round(image[:, 0] * 255).astype(np.uint8))
    x = model_input(digits, manifest["preprocessing"])
    logits = torch.stack([model(x, code) for code in model.languages], dim=1)
    if model.temperature_rise is None:
        logits = logits / model.temperatures["digit"]
    else:
        features = model.features(model.router, x)
        logits = logits / model.temperature("digit", features).unsqueeze(2)
    script_probs = model.script_probs(x)
    answer = model.predict(x)
    out = {
        "digit_logits": logits.numpy(),
        "script_probs": script_probs.numpy(),
        "digit": answer["digit"].numpy(),
        "digit_prob": answer["digit_prob"].numpy(),
        "script": answer["language"].numpy(),
        "script_prob": answer["language_prob"].numpy(),
    }
    if FAMILIARITY in answer:
        out[FAMILIARITY] = answer[FAMILIARITY].numpy()
    return out


@dataclass
class Parity:
    """How far an exported file is from PyTorch on `images` images."""

    images: int
    max_abs: float
    digits_differ: int
    scripts_differ: int

    @property
    def ok(self) -> bool:
        return self.max_abs <= TOLERANCE and not self.digits_differ and not self.scripts_differ

    def line(self) -> str:
        same = "digits and scripts identical"
        if self.digits_differ or self.scripts_differ:
            same = f"{self.digits_differ} digits and {self.scripts_differ} scripts differ"
        return f"{self.images} images: max |Δ| {self.max_abs:.1e} against PyTorch, {same}"


def compare(exported: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> Parity:
    """Largest absolute difference over the float outputs (infinite for one the export lacks),
    and disagreements in the answers."""
    floats = [n for n in reference if n not in ("digit", "script")]
    worst = max(
        float(np.abs(exported[n] - reference[n]).max(initial=0.0)) if n in exported else math.inf
        for n in floats
    )
    return Parity(
        images=len(reference["digit"]),
        max_abs=worst,
        digits_differ=int((exported["digit"] != reference["digit"]).sum()),
        scripts_differ=int((exported["script"] != reference["script"]).sum()),
    )


def check_images(codes: list[str], per_language: int, seed: int = 0) -> np.ndarray:
    """float32 [N, 1, 28, 28] in [0, 1]: glyph test digits of each language (noise for a
    language the registry lacks), the inputs an export is checked on."""
    from xlvision.config.schema import AugmentConf
    from xlvision.data.glyphs import generate_glyph_digits
    from xlvision.languages import available_languages, load_language

    per_class = max(1, -(-per_language // 10))
    parts = []
    for i, code in enumerate(codes):
        if code in available_languages():
            digits = generate_glyph_digits(
                load_language(code), "test", per_class, AugmentConf(), seed + i
            ).images[:per_language]
            parts.append(digits.numpy().astype(np.float32) / 255.0)
        else:
            noise = np.random.default_rng(seed + i).random((per_language, 28, 28))
            parts.append(np.round(noise * 255).astype(np.float32) / 255.0)
    return np.concatenate(parts)[:, None].astype(np.float32)


def web_runtime(runtime: str | None) -> Path:
    """onnxruntime-web's dist/ folder: `runtime`, or the one `make install` put in the venv."""
    folder = Path(runtime).expanduser() if runtime else default_runtime()
    missing = [name for name in RUNTIME_FILES if not (folder / name).is_file()]
    if missing:
        hint = "give runtime=<node_modules/onnxruntime-web/dist>" if runtime else "run make install"
        raise ExportError(
            f"runtime={folder}: no onnxruntime-web there (missing {', '.join(missing)}); {hint}"
        )
    return folder


def default_runtime() -> Path:
    return (
        Path(sys.prefix)
        / "share"
        / "xlvision"
        / "web"
        / "node_modules"
        / "onnxruntime-web"
        / "dist"
    )


def page_fonts(code: str) -> tuple[Path | None, Path | None]:
    """The bundled fonts the page draws `code`'s numerals and names with (None: the system's)."""
    from xlvision.languages import available_languages, load_language
    from xlvision.paths import NAME_FONTS_DIR

    digits = None
    if code in available_languages():
        paths = load_language(code).font_paths("train")
        digits = paths[0] if paths else None
    names = sorted(NAME_FONTS_DIR.glob(f"{code}.*"))
    return digits, names[0] if names else None


def page_model(info: dict) -> dict:
    """What the page needs besides the graph: languages (names, digits, fonts), preprocessing,
    and the reject thresholds of `reject=auto` (null: the page always answers; `familiar` only
    when the graph outputs the familiarity)."""
    languages = []
    for record in info["languages"]:
        digits, names = page_fonts(record["code"])
        languages.append(
            {
                **record,
                "font": f"fonts/{record['code']}{digits.suffix}" if digits else None,
                "name_font": f"fonts/names/{names.name}" if names else None,
            }
        )
    return {
        "input": info["input"],
        "preprocessing": info["preprocessing"],
        "answer": info["answer"],
        "reject": page_reject(info),
        "languages": languages,
        "source_bundle": info["source_bundle"],
    }


def page_reject(info: dict) -> dict | None:
    reject = (info.get("calibration") or {}).get("reject")
    if reject is None or FAMILIARITY in info["outputs"]:
        return reject
    return {k: v for k, v in reject.items() if k != "familiar"}


def write_web(wrapped: ReadEverything, info: dict, folder: Path, runtime: Path) -> None:
    """index.html, app.js, model.onnx, model.json, ort/ (the runtime) and fonts/ in `folder`."""
    folder.mkdir(parents=True)
    write_onnx(wrapped, info, folder / "model.onnx")
    for name in ("index.html", "app.js"):
        shutil.copyfile(WEB_TEMPLATE / name, folder / name)
    page = page_model(info)
    (folder / "model.json").write_text(json.dumps(page, ensure_ascii=False, indent=1))
    (folder / "ort").mkdir()
    for name in RUNTIME_FILES:
        shutil.copyfile(runtime / name, folder / "ort" / name)
    (folder / "fonts" / "names").mkdir(parents=True)
    for record in page["languages"]:
        for source, target in zip(page_fonts(record["code"]), ("font", "name_font"), strict=True):
            if record[target]:
                shutil.copyfile(source, folder / record[target])


def checked_export(
    model: UnifiedModel,
    manifest: dict,
    bundle: str | Path,
    fmt: str,
    output: Path,
    *,
    runtime: Path | None = None,
    check: int = 200,
    overwrite: bool = False,
) -> tuple[Path, Parity | None]:
    """Export to a temporary path beside `output`, compare it with PyTorch on `check` glyph
    images per language, and only then move it to `output` (replacing it if `overwrite`)."""
    if fmt not in FORMATS:
        raise ValueError(f"format={fmt!r}: one of {', '.join(FORMATS)}")
    wrapped = exportable(model, manifest, bundle)
    info = description(manifest, bundle, "onnx" if fmt == "web" else fmt)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    remove(tmp)
    try:
        if fmt == "onnx":
            write_onnx(wrapped, info, tmp)
            run = run_onnx(tmp)
        elif fmt == "torchscript":
            write_torchscript(wrapped, info, tmp)
            run = run_torchscript(tmp)
        else:
            write_web(wrapped, info, tmp, runtime or web_runtime(None))
            run = run_onnx(tmp / "model.onnx")
        parity = None
        if check > 0:
            image = check_images(model.languages, check)
            parity = compare(run(image), reference_outputs(model, manifest, image))
            if not parity.ok:
                raise ExportError(f"{output}: not written: the export differs: {parity.line()}")
        if overwrite:
            remove(output)
        os.replace(tmp, output)
    finally:
        remove(tmp)
    return output, parity


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
