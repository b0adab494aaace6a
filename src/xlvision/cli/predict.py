"""`xlv-predict bundle=<file> input=<image|folder|glob> [language=kn] [one_script=all|folder]
[display=[en,zh]] [reject=auto|none|<p>]`.

`bundle` is a `.safetensors` bundle (read with torch) or an `.onnx` file from `xlv-export`
(read with onnxruntime; torch is never imported)."""

from __future__ import annotations

import sys
from pathlib import Path

from xlvision.cli.app import Command, check_writable
from xlvision.config.compose import compose_config
from xlvision.config.errors import ConfigError
from xlvision.rundir import RunDirError

PROG = "xlv-predict"
OUTPUT_SUFFIXES = (".json", ".csv")


def open_reader(bundle: str, accelerator: str):
    """An exported `.onnx` file through onnxruntime, or a bundle through torch (loaded only now
    that the command line is known to be right)."""
    if Path(bundle).suffix.lower() == ".onnx":
        from xlvision.bundle.onnx_file import OnnxReader

        return OnnxReader(bundle)
    from xlvision.bundle.file import load_bundle
    from xlvision.bundle.predict import TorchReader, inference_device

    model, manifest = load_bundle(bundle)
    return TorchReader(model, manifest, inference_device(accelerator))


def run(overrides: list[str]) -> None:
    """Compose the config, load the bundle, predict, print a line per image, write `output`."""
    cfg = compose_config(overrides, config_name="predict")
    codes = list(cfg.language)
    if len(codes) > 1:
        raise ConfigError("language", codes, "one language, or none to let the bundle decide")
    if cfg.one_script is not None and cfg.one_script not in ("all", "folder"):
        raise ConfigError("one_script", cfg.one_script, "all, folder, or null")
    if cfg.one_script is not None and codes:
        raise ConfigError("one_script", cfg.one_script, "null when language= names the script")
    if cfg.output and Path(cfg.output).suffix.lower() not in OUTPUT_SUFFIXES:
        raise ConfigError("output", cfg.output, "a path ending in .json or .csv")
    if cfg.output:  # before any work: a place the predictions cannot be written is named now
        check_writable("output", Path(cfg.output).expanduser().absolute().parent)
    if not Path(cfg.bundle).expanduser().is_file():  # named before torch is loaded
        kind = "ONNX" if Path(cfg.bundle).suffix.lower() == ".onnx" else "bundle"
        raise RunDirError(f"bundle={cfg.bundle}: no such {kind} file")
    from xlvision.bundle.calibration import reject_thresholds
    from xlvision.bundle.predict import predict_images, prediction_line, write_predictions

    reader = open_reader(cfg.bundle, cfg.device.accelerator)
    thresholds = reject_thresholds(cfg.reject, reader.manifest)
    predictions = predict_images(
        reader,
        reader.manifest,
        cfg.input,
        language=codes[0] if codes else None,
        display=list(cfg.display),
        batch_size=cfg.batch_size,
        one_script=cfg.one_script,
        reject=thresholds,
    )
    if cfg.one_script is not None:
        for line in script_summary(predictions, cfg.one_script):
            print(f"{PROG}: {line}", file=sys.stderr)
    unknown = sum(p.unknown_reason is not None for p in predictions)
    if thresholds is not None:
        familiar = ""  # checked only when the bundle names the script and has prototypes
        if thresholds.familiar is not None and not codes and predictions[0].familiarity is not None:
            familiar = f", familiarity below {thresholds.familiar:.3f}"
        print(
            f"{PROG}: {unknown} of {len(predictions)} images answered ? (reject={cfg.reject}: "
            f"script below {thresholds.script:.3f}{familiar} or digit below "
            f"{thresholds.digit:.3f})",
            file=sys.stderr,
        )
    for prediction in predictions:
        print(prediction_line(prediction))
    if cfg.output:
        path = write_predictions(predictions, cfg.output)
        print(f"{PROG}: {len(predictions)} predictions written to {path}", file=sys.stderr)


def script_summary(predictions, one_script: str) -> list[str]:
    """A line per group that was given one script: its images, the script and its posterior."""
    groups: dict[str, list] = {}
    for p in predictions:
        key = str(Path(p.path).parent) if one_script == "folder" else "the input"
        groups.setdefault(key, []).append(p)
    return [
        f"{len(ps)} images in {key} read as one script: {ps[0].language} {ps[0].language_name} "
        f"(posterior {ps[0].language_prob:.3f})"
        for key, ps in groups.items()
    ]


main = Command(PROG, "predict", __doc__, tool=run)
"""Console script `xlv-predict`; every user mistake ends with one line."""


if __name__ == "__main__":
    main()
