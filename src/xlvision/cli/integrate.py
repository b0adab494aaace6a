"""xlv-integrate: `xlv-integrate run=<pipeline dir> integrate=ties`, or
`xlv-integrate base=<ckpt> models=[kn=<ckpt>,ar=<ckpt>] integrate=routed`."""

from __future__ import annotations

import re

from xlvision.cli.app import Command

_PAIRS = re.compile(r"^(\+?models)=\[(.*)\]$")


def models_as_mapping(arg: str) -> str:
    """`models=[kn=a.ckpt,ar=b.ckpt]` → `models={kn:a.ckpt,ar:b.ckpt}`, which Hydra parses."""
    match = _PAIRS.match(arg)
    items = [item for item in match.group(2).split(",") if item] if match else []
    if not items or not all("=" in item for item in items):
        return arg
    pairs = [item.split("=", 1) for item in items]
    return f"{match.group(1)}={{{','.join(f'{k.strip()}:{v.strip()}' for k, v in pairs)}}}"


def implied(argv: list[str]) -> dict[str, str]:
    """`stage=integrate`, and `integrate=routed` unless an experiment preset says."""
    if any(arg.startswith("experiment=") for arg in argv):
        return {"stage": "integrate"}
    return {"stage": "integrate", "integrate": "routed"}


main = Command(
    "xlv-integrate",
    "config",
    __doc__,
    stage="xlvision.stages.integrate:integrate",
    defaults=implied,
    rewrite=models_as_mapping,
)

if __name__ == "__main__":
    main()
