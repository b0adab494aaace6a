"""A progress bar on stderr for the stages' long loops that Lightning does not drive."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar

from rich.console import Console
from rich.progress import track

T = TypeVar("T")


def tracked(
    items: Sequence[T] | Iterable[T],
    description: str,
    total: int | None = None,
    console: Console | None = None,
) -> Iterator[T]:
    """`items` one by one behind a bar on stderr that disappears when the loop ends (the
    lines printed before and after stay); piped, nothing is drawn."""
    console = console or Console(stderr=True)
    if not console.is_terminal:
        return iter(items)
    return iter(track(items, description=description, total=total, console=console, transient=True))
