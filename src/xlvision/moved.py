"""Names that packages used to hand on: importing one says where it lives now.

Each package's `__init__` once re-exported its submodules' names; now a name is imported from
the module that defines it, so a type checker and an editor find it. A script written against
the old form gets one line saying what to write instead, not a bare "cannot import name"."""

from __future__ import annotations

from collections.abc import Callable


def moved_names(package: str, homes: dict[str, str]) -> Callable[[str], object]:
    """A module `__getattr__` for `package`: a name of `homes` (module → its names, separated
    by spaces) raises an ImportError naming its module; any other name is missing as usual."""
    where = {name: module for module, names in homes.items() for name in names.split()}

    def __getattr__(name: str) -> object:
        if name in where:
            raise ImportError(
                f"{package}.{name} has moved: write `from {where[name]} import {name}`",
                name=package,
            )
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    __getattr__.homes = where  # type: ignore[attr-defined]
    return __getattr__
