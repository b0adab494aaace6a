"""xlv-report: finished run and sweep dirs → tables, figures and report.html, e.g.
`xlv-report runs=[outputs/multirun/...] rows=language cols=model metric=test/{lang}/acc`."""

from __future__ import annotations

import re

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from xlvision.cli.app import PASSTHROUGH_FLAGS, Command, check_writable
from xlvision.config.compose import compose_config
from xlvision.report.collect import find_run_dirs
from xlvision.report.options import ReportOptions

_BARE_PLACEHOLDER = re.compile(r"(?<!\\)\{lang\}")


def report_job(cfg: DictConfig) -> None:
    """The report, written into the dir Hydra made for it (`report.out_dir`)."""
    from xlvision.report.stage import report

    with open_dict(cfg):
        cfg.report.out_dir = HydraConfig.get().runtime.output_dir
    report(cfg)


def escape_placeholder(arg: str) -> str:
    """Let `metric=test/{lang}/acc` through Hydra's override grammar, where `{` opens a dict."""
    if '"' in arg or "'" in arg:
        return arg
    return _BARE_PLACEHOLDER.sub(r"\\{lang\\}", arg)


def check_command_line(argv: list[str]) -> None:
    """The options and the runs they name, checked before Hydra makes the report's dir."""
    if any(a.split("=")[0] in PASSTHROUGH_FLAGS for a in argv) or "-m" in argv:
        return
    overrides = [a for a in argv if "=" in a and not a.startswith("-")]
    options = ReportOptions.from_config(compose_config(overrides, "report", validate=False))
    find_run_dirs(options.runs)
    if options.out_dir is not None:
        check_writable("report.out_dir", options.out_dir)


main = Command(
    "xlv-report",
    "report",
    __doc__,
    stage=report_job,
    records=False,
    rewrite=escape_placeholder,
    check=check_command_line,
)
"""Console script `xlv-report`: a mistake in the options exits 2, runs that cannot be read 1."""


if __name__ == "__main__":
    main()
