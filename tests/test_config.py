"""Every group option composes; bad values fail early with one line naming the key."""

from __future__ import annotations

import pytest
from conftest import run_cli

from xlvision.config.compose import compose_config, group_options
from xlvision.config.errors import ConfigError
from xlvision.languages import available_languages
from xlvision.paths import config_dir

GROUPS = [
    "language",
    "data",
    "model",
    "optimizer",
    "scheduler",
    "device",
    "logger",
    "debug",
    "finetune",
    "experiment",
]


def all_choices():
    for group in GROUPS:
        for option in group_options(group):
            yield group, option


@pytest.mark.parametrize(("group", "option"), list(all_choices()))
def test_every_group_option_composes(group, option, tmp_path):
    cfg = compose_config([f"{group}={option}", f"paths.output_dir={tmp_path}"])
    if group == "language":
        assert list(cfg.language) == [option]
        assert cfg.language[option].code == option
    elif group in {"model", "device", "data"}:
        assert cfg[group] is not None
    assert cfg.optimizer.lr > 0


def test_languages_registry_matches_configs():
    codes = available_languages()
    assert codes == group_options("language")
    assert "en" in codes


def test_several_languages_select_several_configs(tmp_path):
    cfg = compose_config(["language=[en,kn,zh]", f"paths.output_dir={tmp_path}"])
    assert list(cfg.language) == ["en", "kn", "zh"]
    assert cfg.language.kn.class_names[7] == "ಏಳು"
    assert cfg.language.zh.codepoints[0] == "U+96F6"


def test_debug_preset_overrides_trainer(tmp_path):
    cfg = compose_config(["debug=fast", f"paths.output_dir={tmp_path}"])
    assert cfg.trainer.max_epochs == 1
    assert cfg.trainer.limit_train_batches == 5
    assert cfg.data.train_per_class == 40


def test_unknown_language_names_key_value_and_options():
    with pytest.raises(ConfigError) as err:
        compose_config(["language=xx"])
    message = str(err.value)
    assert "language='xx'" in message and "en" in message
    assert "\n" not in message


def test_misspelt_key_is_refused_with_its_full_name():
    with pytest.raises(ConfigError) as err:
        compose_config(["optimizer.lrr=0.1"])
    assert "optimizer.lrr" in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("optimizer.lr=-0.1", "optimizer.lr"),
        ("data.batch_size=0", "data.batch_size"),
        ("data.shots_per_class=-5", "data.shots_per_class"),
        ("trainer.max_epochs=0", "trainer.max_epochs"),
        ("device.precision=fp8", "device.precision"),
        ("model.name=vgg", "model.name"),
        ("data.augment.monoline=1.5", "data.augment.monoline"),
        ("data.augment.binarize=-0.1", "data.augment.binarize"),
        ("data.augment.scale=[1.1,0.7]", "data.augment.scale"),
        ("data.augment.pen=[-1.0,2.0]", "data.augment.pen"),
        ("data.augment.blur=[0.5]", "data.augment.blur"),
        ("trainer.limit_train_batches=0", "trainer.limit_train_batches"),
        ("trainer.limit_val_batches=1.5", "trainer.limit_val_batches"),
        ("trainer.limit_test_batches=-1", "trainer.limit_test_batches"),
    ],
)
def test_bad_values_fail_with_key_value_and_allowed(override, key):
    with pytest.raises(ConfigError) as err:
        compose_config([override])
    value = override.split("=", 1)[1]
    assert str(err.value).startswith(f"{key}=")
    assert value in str(err.value).replace(", ", ",")  # lists print as [a, b]
    assert "allowed" in str(err.value)


def test_limit_batches_int_is_a_count_float_a_fraction(tmp_path):
    # As in Lightning: 1 is one batch, 1.0 all of them; an int must stay an int to mean that.
    cfg = compose_config(
        [
            "trainer.limit_train_batches=1",
            "trainer.limit_val_batches=1.0",
            f"paths.output_dir={tmp_path}",
        ]
    )
    assert cfg.trainer.limit_train_batches == 1
    assert isinstance(cfg.trainer.limit_train_batches, int)
    assert isinstance(cfg.trainer.limit_val_batches, float)
    assert cfg.trainer.limit_test_batches == 1.0 and isinstance(
        cfg.trainer.limit_test_batches, float
    )


def test_wrong_type_is_refused():
    with pytest.raises(ConfigError, match="data.batch_size"):
        compose_config(["data.batch_size=many"])


def test_two_sweeps_in_the_same_second_get_different_dirs(tmp_path):
    first = compose_config(["hydra.sweep.dir=${paths.log_dir}/x_${xlv.uid:}"])
    second = compose_config(["hydra.sweep.dir=${paths.log_dir}/x_${xlv.uid:}"])
    assert first.hydra.sweep.dir != second.hydra.sweep.dir
    shipped = (config_dir() / "hydra" / "default.yaml").read_text()
    assert "${xlv.uid:}" in shipped.split("sweep:")[1]


def test_cli_reports_a_bad_value_in_one_line(tmp_path):
    result = run_cli("xlv-train", "optimizer.lr=-1", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == ["xlv-train: config error: optimizer.lr=-1.0 is not allowed: a number > 0"]
    assert not (tmp_path / "outputs").exists()


def test_cli_checks_every_value_of_a_sweep(tmp_path):
    result = run_cli("xlv-train", "-m", "language=en,xx", cwd=tmp_path)
    assert result.returncode == 2
    assert "language='xx'" in result.stderr


def test_console_defaults_go_after_flags_and_yield_to_the_command_line():
    from xlvision.cli.app import with_defaults

    defaults = {"stage": "integrate", "integrate": "routed"}
    assert with_defaults(["-m", "seed=0,1"], defaults) == [
        "-m",
        "stage=integrate",
        "integrate=routed",
        "seed=0,1",
    ]
    assert with_defaults(["--cfg", "job"], defaults)[:2] == ["--cfg", "job"]
    assert with_defaults(["~integrate", "stage=x"], defaults) == ["~integrate", "stage=x"]


@pytest.mark.parametrize("override", ["+foo=1", "+ckpt_path=x/last.ckpt", "+trainer.foo=2"])
def test_appended_unknown_key_is_refused(override):
    key = override[1:].split("=")[0]
    with pytest.raises(ConfigError, match=rf"^{key}=.* no such key in the config"):
        compose_config([override])


def test_appended_keys_inside_free_mappings_pass(tmp_path):
    cfg = compose_config(["+logger.extra.flag=1", f"paths.output_dir={tmp_path}"])
    assert cfg.logger.extra.flag == 1


def test_cli_refuses_an_appended_unknown_key_in_one_line(tmp_path):
    from conftest import run_cli

    result = run_cli("xlv-train", "+ckpt_path=runs/x/last.ckpt", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "xlv-train: config error: ckpt_path='runs/x/last.ckpt' is not allowed: "
        "no such key in the config (a typo?)"
    )
    assert not (tmp_path / "outputs").exists()


def test_finetune_takes_one_target_language():
    with pytest.raises(ConfigError, match=r"^language=\['kn', 'ar'\] is not allowed: one target"):
        compose_config(["stage=finetune", "finetune=full", "language=[kn,ar]"])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["data=npz", "data.source.arrays.images=x", "data.source.arrays.labels=y"],
            "data.source.arrays.images='x' is not allowed: data.source.arrays is one mapping "
            "now: write 'data.source.arrays={images: x, labels: y}' instead",
        ),
        (
            ["data=npy", "data.source.files.images=a.npy", "data.source.files.labels=b.npy"],
            "data.source.files.images='a.npy' is not allowed: data.source.files is one mapping "
            "now: write 'data.source.files={images: a.npy, labels: b.npy}' instead",
        ),
        (
            ["data=idx", "data.source.files.test.images=a", "data.source.files.test.labels=b"],
            "data.source.files.test.images='a' is not allowed: data.source.files is one mapping "
            "now: write 'data.source.files={test: {images: a, labels: b}}' instead",
        ),
    ],
)
def test_a_mapping_once_given_key_by_key_names_the_form_to_write(overrides, message):
    """npz's `arrays` and idx's and npy's `files` took `images=` and `labels=` one at a time
    before they became one mapping given whole; the earlier form is told the new one."""
    with pytest.raises(ConfigError) as err:
        compose_config(overrides)
    assert str(err.value) == message


def test_a_preset_s_own_mapping_still_takes_one_key():
    cfg = compose_config(["data=persian_hoda", "data.source.arrays.images=x"])
    assert cfg.data.source.arrays == {"images": "x", "labels": "labels"}
    with pytest.raises(ConfigError, match="Key 'writer' is not in struct"):
        compose_config(["data=persian_hoda", "data.source.arrays.writer=w"])
