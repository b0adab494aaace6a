"""`xlv-export bundle=<file> format=onnx|torchscript|web [output=…]`: a bundle out of Python."""

from __future__ import annotations

import sys
from pathlib import Path

from xlvision.cli.app import Command, check_writable
from xlvision.config.compose import compose_config
from xlvision.config.errors import ConfigError
from xlvision.rundir import RunDirError

PROG = "xlv-export"
FORMATS = ("onnx", "torchscript", "web")
SUFFIXES = {"onnx": (".onnx",), "torchscript": (".pt", ".ts")}
DEFAULT_NAMES = {"onnx": "{stem}.onnx", "torchscript": "{stem}.pt", "web": "{stem}_web"}


def output_path(cfg) -> Path:
    """`output`, or beside the bundle; refused (before any work) if it is misnamed, if the bundle
    is missing, or if something is there already."""
    if cfg.output:
        output = Path(cfg.output).expanduser()
    else:
        bundle = Path(cfg.bundle).expanduser()
        output = bundle.with_name(DEFAULT_NAMES[cfg.format].format(stem=bundle.stem))
    suffixes = SUFFIXES.get(cfg.format)
    if suffixes and output.suffix.lower() not in suffixes:
        allowed = f"a path ending in {' or '.join(suffixes)} for format={cfg.format}"
        raise ConfigError("output", str(output), allowed)
    if cfg.format == "web" and output.suffix.lower() in (".onnx", ".pt", ".html"):
        raise ConfigError("output", str(output), "a folder for format=web (index.html goes in it)")
    if not Path(cfg.bundle).expanduser().is_file():
        raise RunDirError(f"bundle={cfg.bundle}: no such bundle file")
    if output.exists() and not cfg.overwrite:
        kind = "folder" if output.is_dir() else "file"
        raise RunDirError(
            f"output={output}: a {kind} is there already (overwrite=true replaces it)"
        )
    check_writable("output", output.absolute().parent)
    return output


def run(overrides: list[str]) -> None:
    """Compose, check the output and the runtime, load the bundle, export, check, move in place."""
    cfg = compose_config(overrides, config_name="export")
    if cfg.format not in FORMATS:
        raise ConfigError("format", cfg.format, f"one of {', '.join(FORMATS)}")
    if cfg.check < 0:
        raise ConfigError("check", cfg.check, "a number of images per language, 0 for none")
    output = output_path(cfg)
    # torch loads only now that the command line is known to be right.
    from xlvision.bundle.export import checked_export, web_runtime
    from xlvision.bundle.file import load_bundle

    runtime = web_runtime(cfg.runtime) if cfg.format == "web" else None
    model, manifest = load_bundle(cfg.bundle)
    print(
        f"{PROG} · {cfg.format} · {len(model.languages)} languages · {len(model.members)} members",
        file=sys.stderr,
    )
    from rich.console import Console

    checking = f", then checking it on {cfg.check} glyphs per language" if cfg.check else ""
    with Console(stderr=True).status(f"exporting{checking}…"):
        path, parity = checked_export(
            model,
            manifest,
            cfg.bundle,
            cfg.format,
            output,
            runtime=runtime,
            check=cfg.check,
            overwrite=cfg.overwrite,
        )
    if parity is not None:
        print(f"{PROG}: checked on {parity.line()}", file=sys.stderr)
    shown = path / "index.html" if cfg.format == "web" else path
    print(shown)
    if cfg.format == "web":
        print(f"{PROG}: serve it with: python -m http.server -d {path}", file=sys.stderr)


main = Command(PROG, "export", __doc__, tool=run)
"""Console script `xlv-export`; every user mistake ends with one line."""


if __name__ == "__main__":
    main()
