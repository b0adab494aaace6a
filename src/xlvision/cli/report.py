"""`xlv-report runs=[outputs/multirun/...] rows=language cols=model metric=test/{lang}/acc`."""

from __future__ import annotations

import re
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from xlvision.config.paths import config_dir
from xlvision.config.resolvers import register_resolvers
from xlvision.report import ReportError, report

_BARE_PLACEHOLDER = re.compile(r"(?<!\\)\{lang\}")


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="report")
def _run(cfg: DictConfig) -> None:
    with open_dict(cfg):
        cfg.report.out_dir = HydraConfig.get().runtime.output_dir
    try:
        report(cfg)
    except ReportError as err:
        print(f"xlv-report: {err}", file=sys.stderr)
        sys.exit(1)


def escape_placeholder(arg: str) -> str:
    """Let `metric=test/{lang}/acc` through Hydra's override grammar, where `{` opens a dict."""
    if '"' in arg or "'" in arg:
        return arg
    return _BARE_PLACEHOLDER.sub(r"\\{lang\\}", arg)


def main() -> None:
    """Console script `xlv-report`."""
    sys.argv = [sys.argv[0], *map(escape_placeholder, sys.argv[1:])]
    register_resolvers()  # the out dir's ${xlv.uid:} suffix
    _run()


if __name__ == "__main__":
    main()
