"""`xlv-report runs=[outputs/multirun/...] rows=language cols=model metric=test/{lang}/acc`."""

from __future__ import annotations

import re
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from xlvision.cli.app import check_writable, one_line
from xlvision.config.compose import compose_config
from xlvision.config.errors import ConfigError
from xlvision.config.resolvers import register_resolvers
from xlvision.errors import XlvisionError
from xlvision.paths import config_dir
from xlvision.report.collect import find_run_dirs
from xlvision.report.options import ReportError, ReportOptions
from xlvision.rundir import RunDirError

PASSTHROUGH_FLAGS = {"--help", "-h", "--hydra-help", "--info", "-i", "--cfg", "-c", "--resolve"}

_BARE_PLACEHOLDER = re.compile(r"(?<!\\)\{lang\}")


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="report")
def _run(cfg: DictConfig) -> None:
    with open_dict(cfg):
        cfg.report.out_dir = HydraConfig.get().runtime.output_dir
    from xlvision.report.stage import report

    try:
        report(cfg)
    except XlvisionError as err:  # a run that cannot be read, a table that cannot be made
        print(f"xlv-report: {one_line(err)}", file=sys.stderr)
        sys.exit(1)


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


def main() -> None:
    """Console script `xlv-report`: config mistakes exit 2, runs that cannot be read 1."""
    sys.argv = [sys.argv[0], *map(escape_placeholder, sys.argv[1:])]
    register_resolvers()  # the out dir's ${xlv.uid:} suffix
    try:
        check_command_line(sys.argv[1:])
    except RunDirError as err:
        print(f"xlv-report: {err}", file=sys.stderr)
        sys.exit(1)
    except (ConfigError, ReportError) as err:
        runs = isinstance(err, ReportError) and str(err).startswith("runs= matched")
        prefix = "" if isinstance(err, ReportError) else "config error: "
        print(f"xlv-report: {prefix}{err}", file=sys.stderr)
        sys.exit(1 if runs else 2)
    _run()


if __name__ == "__main__":
    main()
