"""The one base class of every error a user's mistake raises, importable without torch.

A bad config value, data file, bundle, checkpoint, image or run dir each has its own class
(`ConfigError`, `DataError`, `BundleError`, …), all derived from `XlvisionError`: the console
scripts catch that one class and print its message, which is one line for people, without a
traceback. Anything else is a fault of xlvision and keeps its traceback.
"""

from __future__ import annotations


class XlvisionError(Exception):
    """A user's mistake; the message is one line that names the key or file.

    `exit_status` is the console script's exit code for it: 1 for an input (a file, a run dir,
    data), 2 for a mistake in the command line itself (a config value, a `resume=` that cannot
    be). `prefix` heads the printed line (`config error: `)."""

    exit_status: int = 1
    prefix: str = ""


def one_line(err: BaseException) -> str:
    """An error as one line: `[Errno 13] Permission denied: 'x'` → `x: permission denied`."""
    if isinstance(err, OSError) and err.filename and err.strerror:
        return f"{err.filename}: {err.strerror[0].lower()}{err.strerror[1:]}"
    return " ".join(str(err).split()) or type(err).__name__
