"""`xlv-predict bundle=<file> input=<image|folder|glob> [language=kn] [display=[en,zh]]`.

`bundle` is a `.safetensors` bundle (read with torch) or an `.onnx` file from `xlv-export`
(read with onnxruntime; torch is never imported)."""

from __future__ import annotations

import sys
from pathlib import Path

from xlvision.cli.app import check_writable, simple_main
from xlvision.config import ConfigError, compose_config
from xlvision.records import RunDirError

PROG = "xlv-predict"
OUTPUT_SUFFIXES = (".json", ".csv")


def open_reader(bundle: str, accelerator: str):
    """An exported `.onnx` file through onnxruntime, or a bundle through torch (loaded only now
    that the command line is known to be right)."""
    if Path(bundle).suffix.lower() == ".onnx":
        from xlvision.bundle.onnx_file import OnnxReader

        return OnnxReader(bundle)
    from xlvision.bundle import load_bundle
    from xlvision.bundle.predict import TorchReader, inference_device

    model, manifest = load_bundle(bundle)
    return TorchReader(model, manifest, inference_device(accelerator))


def run(overrides: list[str]) -> None:
    """Compose the config, load the bundle, predict, print a line per image, write `output`."""
    cfg = compose_config(overrides, config_name="predict")
    codes = list(cfg.language)
    if len(codes) > 1:
        raise ConfigError("language", codes, "one language, or none to let the bundle decide")
    if cfg.output and Path(cfg.output).suffix.lower() not in OUTPUT_SUFFIXES:
        raise ConfigError("output", cfg.output, "a path ending in .json or .csv")
    if cfg.output:  # before any work: a place the predictions cannot be written is named now
        check_writable("output", Path(cfg.output).expanduser().absolute().parent)
    from xlvision.bundle.predict import predict_images, prediction_line, write_predictions

    reader = open_reader(cfg.bundle, cfg.device.accelerator)
    predictions = predict_images(
        reader,
        reader.manifest,
        cfg.input,
        language=codes[0] if codes else None,
        display=list(cfg.display),
        batch_size=cfg.batch_size,
    )
    for prediction in predictions:
        print(prediction_line(prediction))
    if cfg.output:
        path = write_predictions(predictions, cfg.output)
        print(f"{PROG}: {len(predictions)} predictions written to {path}", file=sys.stderr)


def user_errors() -> tuple[type[Exception], ...]:
    """A bad bundle, image or output; imported only once something went wrong."""
    from xlvision.bundle.errors import BundleError
    from xlvision.bundle.images import InputError

    return (BundleError, InputError, RunDirError)


main = simple_main(PROG, "predict", run, user_errors)
"""Console script `xlv-predict`; every user mistake ends with one line."""


if __name__ == "__main__":
    main()
