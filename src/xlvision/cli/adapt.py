"""`xlv-adapt bundle=<file> input=<folder|glob> output=<file>.safetensors [language=kn]`: a
bundle adapted to a user's unlabeled scans of one script."""

from __future__ import annotations

import sys
from pathlib import Path

from xlvision.cli.app import Command, check_writable
from xlvision.config.compose import compose_config
from xlvision.config.errors import ConfigError
from xlvision.rundir import RunDirError

PROG = "xlv-adapt"


def check_output(cfg) -> Path:
    """`output` names a new `.safetensors` file (or overwrite=true) in a writable folder:
    refused before any work, so that nothing is adapted for nothing and nothing is written."""
    output = Path(cfg.output).expanduser()
    if output.suffix.lower() != ".safetensors":
        raise ConfigError("output", cfg.output, "a path ending in .safetensors")
    if output.is_dir():
        raise RunDirError(f"output={output}: a folder is there")
    if output.exists() and not cfg.overwrite:
        raise RunDirError(f"output={output}: a file is there already (overwrite=true replaces it)")
    check_writable("output", output.absolute().parent)
    return output


def run(overrides: list[str]) -> None:
    """Compose, check the command line and the output, adapt, write, say what was adapted."""
    cfg = compose_config(overrides, config_name="adapt")
    codes = list(cfg.language)
    if len(codes) > 1:
        raise ConfigError("language", codes, "one language, or none to let the bundle decide")
    output = check_output(cfg)
    from xlvision.stages.adapt import adapt  # torch loads only now

    metrics, artifacts = adapt(cfg)
    print(f"{PROG}: {adaptation_line(artifacts['adaptation'], output)}", file=sys.stderr)


STEPS = {
    "stroke": "strokes grown",
    "bn": "batch-norm statistics",
    "prior": "the prior",
    "self_train": "self-training",
}
"""How `adaptation_line` names each step an adaptation can keep (`Adaptation.kept`)."""


def adaptation_line(record: dict, output: Path) -> str:
    """What was adapted, to what, and what the guard kept, in one line."""
    named = "given" if record["given"] else f"pooled, posterior {record['script_posterior']:.3f}"
    kept = " + ".join(STEPS.get(s, s) for s in record["kept"]) or "nothing (the bundle as it was)"
    if "stroke" in record["kept"]:
        kept = kept.replace(STEPS["stroke"], f"{STEPS['stroke']} ×{record['thicken']}")
    agreement = record["agreement"]
    last = record["kept"][-1] if record["kept"] else "none"
    detail = ""
    if record["kept_per_epoch"]:
        fit = max(record["images"] - record["held_out"], 1)
        detail = f"; kept {record['kept_per_epoch'][-1] / fit:.0%} of the scans in the last epoch"
    judged = ""
    if "none" in agreement and last in agreement:
        judged = f"; held-out agreement {agreement['none']:.3f} → {agreement[last]:.3f}"
    refused = record.get("refused") or []
    if refused:
        undone = ", ".join(STEPS.get(s, s) for s in refused)
        judged += f"; undone, fewer scans routed to {record['script']}: {undone}"
    return (
        f"{record['script']} ({named}) adapted on {record['images']} scans: {kept}"
        f"{detail}{judged}; written to {output}"
    )


main = Command(PROG, "adapt", __doc__, tool=run)
"""Console script `xlv-adapt`; every user mistake ends with one line."""


if __name__ == "__main__":
    main()
