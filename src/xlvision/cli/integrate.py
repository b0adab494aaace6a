"""xlv-integrate: `xlv-integrate run=<pipeline dir> integrate=ties`, or
`xlv-integrate base=<ckpt> models=[kn=<ckpt>,ar=<ckpt>] integrate=routed`."""

from __future__ import annotations

import re
import sys

from xlvision.cli.app import console_main

_PAIRS = re.compile(r"^(\+?models)=\[(.*)\]$")


def models_as_mapping(arg: str) -> str:
    """`models=[kn=a.ckpt,ar=b.ckpt]` → `models={kn:a.ckpt,ar:b.ckpt}`, which Hydra parses."""
    match = _PAIRS.match(arg)
    items = [item for item in match.group(2).split(",") if item] if match else []
    if not items or not all("=" in item for item in items):
        return arg
    pairs = [item.split("=", 1) for item in items]
    return f"{match.group(1)}={{{','.join(f'{k.strip()}:{v.strip()}' for k, v in pairs)}}}"


def main() -> None:
    """Console script `xlv-integrate`; `integrate=routed` unless an experiment preset says."""
    sys.argv = [sys.argv[0], *map(models_as_mapping, sys.argv[1:])]
    defaults = {"stage": "integrate"}
    if not any(arg.startswith("experiment=") for arg in sys.argv[1:]):
        defaults["integrate"] = "routed"
    console_main(
        "xlvision.stages.integrate:integrate",
        "config",
        "xlv-integrate",
        defaults=defaults,
        summary=__doc__,
    )()


if __name__ == "__main__":
    main()
