"""Search sweepers (`hparams_search=optuna`): what a job returns to them, which keys they
search, and how a trial that a user error ends is told apart from a sweep's failure."""

from __future__ import annotations

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from omegaconf import DictConfig, OmegaConf
from omegaconf.nodes import IntegerNode

from xlvision.config.errors import ConfigError
from xlvision.paths import config_dir
from xlvision.records import sweep_objective


def searched_keys(argv: list[str]) -> set[str]:
    """The keys that a search preset given on the command line (`hparams_search=optuna`)
    searches: a script's own defaults (xlv-finetune's `finetune=full`) leave them to it."""
    chosen = [a.partition("=")[2] for a in argv if a.startswith("hparams_search=")]
    path = config_dir() / "hparams_search" / f"{chosen[-1] if chosen else ''}.yaml"
    if not chosen or not path.is_file():
        return set()
    return set(OmegaConf.select(OmegaConf.load(path), "hydra.sweeper.params") or {})


class TrialFailed(Exception):
    """A search trial ended by a user error (already printed): the study records the trial
    as failed and goes on, where a grid sweep stops at its first failed job."""


def in_search() -> bool:
    """Whether this job is a trial of a search sweeper (Optuna)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return False
    return "optuna" in str(HydraConfig.get().sweeper.get("_target_", ""))


def sweep_value(cfg: DictConfig, metrics: dict) -> float | None:
    """What a job returns to a sweeper: its `sweep_objective` metric."""
    key = sweep_objective(cfg)
    return metrics.get(key) if key else None


SEARCH_GROUPS = ("hparams_search=", "hydra/sweeper=", "+hydra/sweeper=")
"""Command-line choices that may put a search sweeper in place of the grid one."""


def search_combinations(overrides: list[str], config_name: str) -> list[list[str]] | None:
    """The configurations to compose before a search starts, or None when the sweeper is not
    a search (Optuna). A search's keys, from its preset (`hydra.sweeper.params`) and the
    command line (`finetune.lr=interval(1e-4,1e-2)`, `finetune=choice(full,lora)`), each take
    a value: the first of the preset's (shipped and tested), and every value, or both ends of
    an interval or range, of the command line's, one at a time. A command-line key the
    config lacks is refused here, by its name."""
    if not any(o.lstrip("~").startswith(SEARCH_GROUPS) for o in overrides):
        return None
    from xlvision.config.compose import compose_config

    parser = OverridesParser.create()
    parsed = parser.parse_overrides(overrides)
    # Groups and Hydra's own keys alone: what picks the sweeper and its params.
    picking = [
        o.input_line
        for o in parsed
        if not o.is_sweep_override() and ("." not in o.key_or_group or o.is_hydra_override())
    ]
    sweeper = compose_config(picking, config_name, validate=False).hydra.sweeper
    if "optuna" not in str(sweeper.get("_target_", "")).lower():
        return None
    fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
    given = {o.key_or_group for o in parsed}
    preset = [
        parser.parse_override(f"{key}={value}")
        for key, value in (sweeper.get("params") or {}).items()
        if key not in given  # the command line's value, fixed or searched, replaces it
    ]
    searched = [o for o in parsed if o.is_sweep_override()]
    firsts = [values_to_check(o)[0] for o in preset]
    groups = [values_to_check(o)[0] for o in searched if (config_dir() / o.key_or_group).is_dir()]
    base = compose_config(fixed + firsts + groups, config_name, validate=False)
    for override in searched:
        check_searched_key(base, override)
    firsts += [values_to_check(o)[0] for o in searched]
    combos = [fixed + firsts]
    for i, override in enumerate(searched, start=len(preset)):
        for value in values_to_check(override)[1:]:
            combos.append(fixed + firsts[:i] + [value] + firsts[i + 1 :])
    return combos


def check_searched_key(base: DictConfig, override: Override) -> None:
    """A searched key the config has (a group, or a key of `base`), and an interval only over
    a key not typed an integer: the sampler draws any real number in it."""
    key = override.key_or_group
    if override.is_add() or (config_dir() / key).is_dir():
        return  # `+key` is checked against the schema, a group's options when composed
    parent_key, _, last = key.rpartition(".")
    parent = OmegaConf.select(base, parent_key, default=None) if parent_key else base
    raw = override.input_line.partition("=")[2]
    if not isinstance(parent, DictConfig) or (
        last not in parent.keys() and OmegaConf.is_struct(parent)
    ):
        raise ConfigError(key, raw, "no such key in the config (a typo?)")
    typed_int = last in parent.keys() and isinstance(parent._get_node(last), IntegerNode)
    if override.is_interval_sweep() and typed_int:
        raise ConfigError(
            key, raw, "an integer; an interval draws real numbers: search it with range(a,b)"
        )


def values_to_check(override: Override) -> list[str]:
    """`key=value` for each value of a searched key composed before the search starts: every
    choice, both ends of an interval or a range."""
    key = override.get_key_element()
    value = override.value()
    if override.is_interval_sweep():
        values = [value.start, value.end]
    elif override.is_range_sweep() or override.is_choice_sweep():
        values = list(override.sweep_string_iterator())
        values = values[:1] + values[-1:] if override.is_range_sweep() else values
    else:
        return [override.input_line]
    if not values:
        raise ConfigError(key, override.input_line.partition("=")[2], "at least one value")
    return [f"{key}={v}" for v in dict.fromkeys(values)]


def refuse_grid_intervals(parsed: list[Override]) -> None:
    """A grid sweep runs every value it is given; an interval has no list of values."""
    for override in parsed:
        if override.is_interval_sweep():
            raise ConfigError(
                override.key_or_group,
                override.input_line.partition("=")[2],
                "an interval is searched, not swept: add hparams_search=optuna, or give "
                "values (a,b,c) or range(start,stop,step)",
            )
