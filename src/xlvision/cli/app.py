"""Shared wrapper of the console scripts: check overrides early, run a stage, record it."""

from __future__ import annotations

import errno
import importlib
import logging
import os
import sys
import tempfile
import traceback
import warnings
from collections.abc import Callable, Mapping
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import NoReturn

import hydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from xlvision.cli.ranks import ddp_rank_config, job_environment
from xlvision.cli.search import (
    refuse_grid_intervals,
    search_combinations,
    searched_keys,
    sweep_value,
)
from xlvision.cli.sweep_jobs import in_sweep, keep_launch_records, refused, sweep_job_failed
from xlvision.config.compose import compose_config
from xlvision.config.errors import ConfigError
from xlvision.config.resolvers import register_resolvers
from xlvision.config.schema import register_schemas
from xlvision.errors import XlvisionError, one_line
from xlvision.paths import config_dir
from xlvision.records import InputFileError
from xlvision.rundir import OtherJobError, ResumeError, RunDir, RunDirError

Stage = Callable[[DictConfig], tuple[dict, dict]]
StageRef = Stage | str  # a stage, or "module:name" imported on first use

USER_ERRORS = (XlvisionError, OSError)
"""What ends a job with its one line and no traceback: a user's mistake, or a file the user
named that is missing, unreadable or unwritable."""


def load_stage(ref: StageRef) -> Stage:
    """`"xlvision.stages.train:train"` → the function; a function as it is. The console
    scripts name their stage this way so `--help` and config errors never import torch."""
    if isinstance(ref, str):
        module, _, name = ref.partition(":")
        return getattr(importlib.import_module(module), name)
    return ref


PASSTHROUGH_FLAGS = {"--help", "-h", "--hydra-help", "--info", "-i", "--cfg", "-c", "--resolve"}


def override_combinations(overrides: list[str]) -> list[list[str]]:
    """One override list per value of every sweep (not the full product): enough to check all."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    refuse_grid_intervals(parsed)
    fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
    sweeps = [
        [f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()]
        for o in parsed
        if o.is_sweep_override()
    ]
    if not sweeps:
        return [fixed]
    firsts = [values[0] for values in sweeps]
    combos = [fixed + firsts]
    for i, values in enumerate(sweeps):
        for value in values[1:]:
            combos.append(fixed + firsts[:i] + [value] + firsts[i + 1 :])
    return combos


def check_command_line(argv: list[str], config_name: str) -> None:
    """Compose every configuration the command line asks for before Hydra starts a job."""
    if any(a.split("=")[0] in PASSTHROUGH_FLAGS for a in argv):
        return
    overrides = [a for a in argv if "=" in a and not a.startswith("-")]
    combos = search_combinations(overrides, config_name) or override_combinations(overrides)
    for combo in combos:
        cfg = compose_config(combo, config_name=config_name)
        check_inputs(cfg)
    multirun = "-m" in argv or "--multirun" in argv
    try:
        run_dir = OmegaConf.select(cfg, "hydra.sweep.dir" if multirun else "hydra.run.dir")
    except Exception:  # an interpolation only Hydra's job can resolve
        return
    if run_dir:
        check_writable("hydra.sweep.dir" if multirun else "hydra.run.dir", Path(run_dir))
    if multirun:
        return  # each job's dir is checked when it starts (run_stage)
    # A single run's dir is known now: refuse one that holds a run before Hydra writes there.
    if run_dir and config_name != "report":
        RunDir(run_dir).check_unused()


def check_writable(key: str, path: Path) -> None:
    """Refuse a dir that cannot be made or written, leaving nothing behind on disk."""
    ancestor = path.expanduser().absolute()
    while not ancestor.exists():
        ancestor = ancestor.parent
    try:
        if not ancestor.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "not a directory", str(ancestor))
        os.rmdir(tempfile.mkdtemp(dir=ancestor, prefix=".xlv-probe-"))
    except OSError as err:
        reason = (err.strerror or type(err).__name__).lower()
        raise RunDirError(f"{key}={path}: cannot write there ({ancestor}: {reason})") from None


# Inputs the command line names, checked before Hydra makes a dir: key → file or dir.
INPUT_FILES = {"base": "file", "bundle": "file", "checkpoint": "file", "run": "dir"}


def has_cuda_driver() -> bool:
    """Whether an NVIDIA driver is loaded, asked without importing torch."""
    return Path("/proc/driver/nvidia").exists() or Path("/dev/nvidiactl").exists()


def check_device(cfg: DictConfig) -> None:
    """A GPU or MPS device asked of a machine without one fails before any dir is made."""
    accelerator = OmegaConf.select(cfg, "device.accelerator", default=None)
    if accelerator in ("gpu", "cuda") and not has_cuda_driver():
        raise ConfigError("device", "gpu", "cpu or auto: this machine has no CUDA GPU")
    if accelerator == "mps" and sys.platform != "darwin":
        raise ConfigError("device", "mps", "cpu or auto: MPS needs an Apple machine")


def check_inputs(cfg: DictConfig) -> None:
    """Every input file the config names exists and is of the right kind, the device asked for
    is there, and a real-data preset's script is the run's."""
    check_device(cfg)
    declared = OmegaConf.select(cfg, "data.source.language", default=None, throw_on_missing=False)
    if (
        cfg.get("stage") in ("train", "finetune")
        and declared not in (None, "???")
        and "language" in cfg
        and list(cfg.language) != [declared]
    ):
        raise ConfigError(
            "language", list(cfg.language), f"{declared}: data.source holds {declared} handwriting"
        )
    for key, kind in INPUT_FILES.items():
        value = cfg.get(key) if key in cfg else None
        if not value or OmegaConf.is_missing(cfg, key):
            continue
        path = Path(str(value)).expanduser()
        if not path.exists():
            raise InputFileError(f"{key}={path}: no such {kind}")
        if kind == "file" and not path.is_file():
            raise InputFileError(f"{key}={path}: a directory, not a file")
        if kind == "dir" and not path.is_dir():
            raise InputFileError(f"{key}={path}: a file, not a directory")
    models = cfg.get("models") if "models" in cfg else None
    if isinstance(models, DictConfig):
        for code, value in models.items():
            path = Path(str(value)).expanduser()
            if not path.is_file():
                raise InputFileError(f"models.{code}={path}: no such checkpoint file")


def with_defaults(argv: list[str], defaults: dict[str, str]) -> list[str]:
    """Add `key=value` for every default key the command line does not set, in front of the
    first override so that flags (`-m`, `--cfg job`) keep their place."""
    given = {a.split("=", 1)[0].lstrip("+~") for a in argv if "=" in a or a.startswith("~")}
    added = [f"{k}={v}" for k, v in defaults.items() if k not in given]
    first = next(
        (i for i, a in enumerate(argv) if not a.startswith("-") and ("=" in a or a[:1] == "~")),
        len(argv),
    )
    return argv[:first] + added + argv[first:]


def resume_config(argv: list[str], stage: str) -> DictConfig:
    """`resume=<run dir>` and nothing else: that run's own config.yaml, pointed at its dir
    (`RunDir.resume_config` decides whether it can be continued)."""
    given = [a for a in argv if a.startswith("resume=")]
    others = [a for a in argv if not a.startswith("resume=") and not a.startswith(("stage=",))]
    if len(given) > 1 or others:
        raise ResumeError(
            "resume= takes no other argument: the run's config.yaml is its config "
            f"(got {' '.join(others or given[1:])})"
        )
    return RunDir(given[0].partition("=")[2]).resume_config(stage)


def verbose() -> bool:
    """`XLV_VERBOSE=1` or `HYDRA_FULL_ERROR=1`: tracebacks and library messages stay."""
    return bool(os.environ.get("XLV_VERBOSE") or os.environ.get("HYDRA_FULL_ERROR"))


def quiet_libraries() -> None:
    """Library chatter off: device banners, tips, restore and `limit_*` notices, deprecations
    raised inside libraries. `XLV_VERBOSE=1` (or `HYDRA_FULL_ERROR=1`) keeps all of it."""
    if verbose():
        return
    # alembic: imported by Optuna's storages, it logs every plugin it sets up.
    for name in (
        "lightning",
        "lightning.pytorch",
        "lightning.fabric",
        "pytorch_lightning",
        "alembic",
        "matplotlib",  # "generated new fontManager", once on a fresh machine
    ):
        logging.getLogger(name).setLevel(logging.WARNING)
    if "optuna" in sys.modules:  # it sets its own level when imported
        sys.modules["optuna"].logging.set_verbosity(logging.WARNING)
    # MLflow's first run of an experiment: "Experiment with name … not found. Creating it."
    logging.getLogger("lightning.pytorch.loggers.mlflow").setLevel(logging.ERROR)
    # W&B's banners, sync hints and run summary; the run is in <run dir>/wandb all the same.
    os.environ.setdefault("WANDB_SILENT", "true")
    # device.compile: the C++ toolchain probe warns that a CPU machine has no CUDA runtime.
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=r".*(LeafSpec|does not have many workers).*")
    # The module skips Lightning's batch transfer on a CPU on purpose (DigitClassifierModule).
    warnings.filterwarnings("ignore", message=r".*overridden `transfer_batch_to_device`.*")
    # A resumed run writes into its own dir on purpose.
    warnings.filterwarnings("ignore", message=r".*directory .* exists and is not empty.*")
    # A k-shot epoch of a few batches logs once an epoch instead, which is what it needs.
    warnings.filterwarnings("ignore", message=r".*smaller than the logging interval.*")


def fail(prog: str, err: XlvisionError | OSError) -> NoReturn:
    """End the process with the error's one line and its exit status (`XlvisionError`'s own;
    1 for a file the user named that cannot be read or written)."""
    prefix = getattr(err, "prefix", "")
    print(f"{prog}: {prefix}{one_line(err)}", file=sys.stderr)
    sys.exit(getattr(err, "exit_status", 1))


def help_overrides(prog: str, summary: str) -> list[str]:
    """`--help` shows the script's own name and summary (its module docstring), not Hydra's."""
    text = " ".join(summary.split()).replace("\\", "\\\\").replace("'", "\\'")
    return [f"hydra.help.app_name={prog}", f"hydra.help.header='{text}'"]


Defaults = Mapping[str, str] | Callable[[list[str]], Mapping[str, str]]


@dataclass(frozen=True)
class Command:
    """One console script, declared once: every `xlv-*` command is a `Command`.

    - `stage`: a Hydra job that runs in its own run dir, recorded by `run_stage` (config.yaml,
      metrics.json, a lock, `resume=`): xlv-train, -finetune, -pipeline, -eval, -integrate.
      With `records=False` the job writes into Hydra's dir but is not a run (xlv-report).
    - `tool`: no run dir; its function composes the overrides itself and runs in this process
      (xlv-predict, -export, -adapt). `--help` prints its config file, which documents it.

    `defaults` are overrides the command implies (xlv-finetune means `stage=finetune`), or a
    function of the command line that gives them. They go on the command line, not into a
    primary config's defaults list: an `override integrate: routed` there would beat an
    `experiment=` preset's own `override /integrate: unified`. `rewrite` turns each argument into Hydra's
    grammar first (`models=[kn=a.ckpt]`); `check` is what runs before Hydra makes a dir
    (`check_command_line`, every configuration the command line asks for, unless given).

    Every user mistake (`XlvisionError`, or an `OSError` on a file the user named) ends with
    one line and the error's exit status (`fail`): 2 for the command line, 1 for an input.
    In a sweep only that job ends; its siblings go on (`sweep_jobs`).
    """

    prog: str
    config_name: str
    summary: str = ""
    stage: StageRef | None = None
    tool: Callable[[list[str]], None] | None = None
    records: bool = True
    defaults: Defaults = field(default_factory=dict)
    rewrite: Callable[[str], str] | None = None
    check: Callable[[list[str]], None] | None = None

    def __post_init__(self) -> None:
        if (self.stage is None) == (self.tool is None):
            raise ValueError(f"{self.prog}: a Command runs a stage or a tool, one of them")

    def __call__(self) -> None:
        """The console script's entry point."""
        quiet_libraries()
        if self.rewrite is not None:
            sys.argv = [sys.argv[0], *map(self.rewrite, sys.argv[1:])]
        if self.tool is not None:
            self._run_tool(sys.argv[1:])
        else:
            self._run_job()

    def implied(self, argv: list[str]) -> dict[str, str]:
        """The overrides this command implies for this command line."""
        return dict(self.defaults(argv) if callable(self.defaults) else self.defaults)

    def _run_tool(self, args: list[str]) -> None:
        if {"-h", "--help"} & set(args):
            print((config_dir() / f"{self.config_name}.yaml").read_text())
            return
        try:
            self.tool(args)
        except USER_ERRORS as err:
            if verbose():
                raise
            fail(self.prog, err)

    def run_guarded(self, cfg: DictConfig) -> dict:
        """Run the stage; a user's mistake ends the process with its one line, or in a sweep
        the job alone (its siblings go on; `sweep_jobs`)."""
        stage_fn = load_stage(self.stage)
        quiet_libraries()  # again: importing Lightning resets its loggers to INFO
        try:
            if not self.records:
                stage_fn(cfg)
                return {}
            from xlvision.stages.runner import run_stage

            with job_environment(cfg):
                metrics, _ = run_stage(stage_fn, cfg)
        except USER_ERRORS as err:
            if not in_sweep():
                if verbose() and not isinstance(err, ConfigError):
                    raise
                fail(self.prog, err)
            print(f"{self.prog}: {getattr(err, 'prefix', '')}{one_line(err)}", file=sys.stderr)
            if verbose():
                traceback.print_exc()
            if isinstance(err, OtherJobError):  # its dir holds another job's run: untouched
                refused.append(str(cfg.paths.output_dir))
                return {}
            return sweep_job_failed(cfg, f"{type(err).__name__}: {one_line(err)}")
        except Exception as err:  # a fault of xlvision: its traceback; a sweep goes on
            if not in_sweep():
                raise
            traceback.print_exc()
            return sweep_job_failed(cfg, f"{type(err).__name__}: {one_line(err)}")
        return metrics

    def _run_job(self) -> None:
        register_resolvers()
        register_schemas()

        @hydra.main(config_path=str(config_dir()), config_name=self.config_name, version_base="1.3")
        def job(cfg: DictConfig) -> float | None:
            return sweep_value(cfg, self.run_guarded(cfg))

        if {"-h", "--help"} & set(sys.argv[1:]):
            sys.argv += help_overrides(self.prog, self.summary or self.prog)
        rank_cfg = ddp_rank_config()
        if rank_cfg is not None:  # a DDP rank of a job that rank 0 started: its console to a file
            log = Path(rank_cfg.paths.output_dir) / f"rank{os.environ['LOCAL_RANK']}.log"
            with log.open("a") as out, redirect_stdout(out), redirect_stderr(out):
                self.run_guarded(rank_cfg)
            return
        args = sys.argv[1:]
        resume = [a for a in args if a.startswith("resume=")] if self.records else []
        multirun = "-m" in args or "--multirun" in args
        if resume and multirun:  # the same sweep into its dir: only unfinished jobs run
            sweep = resume[0].partition("=")[2]
            if not Path(sweep).expanduser().is_dir():
                fail(self.prog, ResumeError(f"resume={sweep}: no such sweep dir"))
            keep_launch_records(Path(sweep).expanduser())
            args.append(f"hydra.sweep.dir={sweep}")
        elif resume:
            default = "pipeline" if self.config_name == "pipeline" else "train"
            try:
                cfg = resume_config(args, self.implied(args).get("stage", default))
            except XlvisionError as err:  # ResumeError; RunDirError: another process writes there
                fail(self.prog, err)
            self.run_guarded(cfg)
            return
        searched = searched_keys(args)
        if searched:  # Optuna's sweeper: imported now, so that its study banner stays off
            try:
                importlib.import_module("optuna")
            except ImportError:
                print(f"{self.prog}: hparams_search needs Optuna: make install", file=sys.stderr)
                sys.exit(2)
            quiet_libraries()
        implied = {k: v for k, v in self.implied(args).items() if k not in searched}
        sys.argv = [sys.argv[0], *with_defaults(args, implied)]
        try:
            (self.check or partial(check_command_line, config_name=self.config_name))(sys.argv[1:])
        except XlvisionError as err:  # a config value, a run dir, an input file, a data file
            fail(self.prog, err)
        except Exception as err:  # a malformed override: Hydra's parser explains it
            detail = " ".join(str(err).split()) or traceback.format_exc(limit=1)
            print(f"{self.prog}: bad command line: {detail}", file=sys.stderr)
            sys.exit(2)
        job()
