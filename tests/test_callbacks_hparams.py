"""log_hparams / log_hparams_config, read back by TensorBoard's hparams plugin."""

import numpy as np
import pytest

from kdrop.callbacks import log_hparams, log_hparams_config
from kdrop.tensorboard import families
from tests.event_files import (
    read_descriptions,
    read_metadata,
    read_scalars,
    read_tensors,
)
from tests.tensorboard_plugins import (
    hparams_experiment,
    hparams_metric_tags,
    hparams_table,
)

VARIANTS = {"none": 0.0, "dropout": 0.5}
SEEDS = (0, 1)


def final_metrics(variant, seed):
    """Distinct, hand-made numbers per run, so a mix-up would show."""
    error = 0.02 + 0.01 * seed + (0.03 if variant == "none" else 0.0)
    return {"test_error": error, "test_loss": 2 * error, "gap": error / 4}


def log_experiment(root):
    for variant, rate in VARIANTS.items():
        for seed in SEEDS:
            log_hparams(
                root / variant / f"seed_{seed}",
                {"variant": variant, "rate": rate, "seed": np.int64(seed)},
                final_metrics(variant, seed),
                step=5,
                trial_id=f"{variant}/seed_{seed}",
            )
    log_hparams_config(
        root,
        {"variant": list(VARIANTS), "rate": list(VARIANTS.values()), "seed": None},
        {name: f"final {name}" for name in final_metrics("none", 0)},
    )


def test_every_run_and_seed_is_a_row_of_the_table_sorted_by_a_metric(tmp_path):
    log_experiment(tmp_path)
    names, domains, metrics = hparams_experiment(tmp_path)
    assert names == ["rate", "seed", "variant"]  # the plugin sorts them
    assert domains == {
        "variant": ["dropout", "none"],  # sorted by summary_v2.Discrete
        "rate": [0.0, 0.5],
        "seed": None,
    }
    # The columns are headed by the bare names; the values are the scalars
    # of the group `wrap_up`.
    assert metrics == ["test_error", "test_loss", "gap"]
    assert hparams_metric_tags(tmp_path) == {
        "test_error": "wrap_up/test_error",
        "test_loss": "wrap_up/test_loss",
        "gap": "wrap_up/gap",
    }
    rows = hparams_table(tmp_path, sort_by="test_error", descending=True)
    runs = [(variant, seed) for variant in VARIANTS for seed in SEEDS]
    expected_order = sorted(
        runs, key=lambda run: final_metrics(*run)["test_error"], reverse=True
    )
    assert [name for name, _, _ in rows] == [
        f"{variant}/seed_{seed}" for variant, seed in expected_order
    ]
    for (variant, seed), (_, hparams, values) in zip(expected_order, rows):
        assert hparams == {"variant": variant, "rate": VARIANTS[variant], "seed": seed}
        # Scalars are float32 in the event file.
        assert values == pytest.approx(final_metrics(variant, seed), rel=1e-6)


def test_metrics_are_scalars_at_the_given_step_with_a_description(tmp_path):
    log_hparams(tmp_path, {"seed": 0}, {"test_loss": float("nan"), "gap": 0.5}, 7)
    scalars = read_scalars(tmp_path, subdir="")
    assert sorted(scalars) == ["wrap_up/gap", "wrap_up/test_loss"]
    assert np.isnan(scalars["wrap_up/test_loss"][7])
    assert scalars["wrap_up/gap"] == {7: 0.5}
    descriptions = read_descriptions(tmp_path, subdir="")
    for tag in scalars:
        assert descriptions[tag].startswith(
            "Final metric of the run for the HParams dashboard, which reads a "
            "metric's value from a scalar summary"
        )
        assert descriptions[tag] == families.describe(tag)


def test_final_metrics_are_one_time_series_group_sorted_after_every_other(tmp_path):
    """TensorBoard's Time Series tab groups cards by the tag's prefix before
    the first "/" and orders the groups by name: the final metrics' group
    comes after every group kdrop's and Keras's curves make."""
    log_hparams(tmp_path, {"seed": "0"}, {"test_error_%": 1.5, "test_loss": 0.1})
    groups = {tag.split("/")[0] for tag in read_scalars(tmp_path, subdir="")}
    assert groups == {"wrap_up"}
    others = {family.name.split("/")[0] for family in families.FAMILIES}
    others |= {"epoch_loss", "epoch_accuracy", "epoch_learning_rate"}  # Keras's
    others -= groups
    assert "within_one_std" in others and "across_seeds" in others
    assert sorted(others | groups)[-1] == "wrap_up"


@pytest.mark.parametrize(
    "arguments, error, message",
    [
        ((None, {}, {}), TypeError, "`log_dir` must be a path"),
        (("d", {}, {}, 0, ""), TypeError, "`trial_id` must be None or a non-empty"),
        (("d", [("seed", 0)], {}), TypeError, "`hparams` must be a dict"),
        (("d", {1: 0}, {}), TypeError, "`hparams` keys must be non-empty strings"),
        (("d", {"rate": [0.5]}, {}), TypeError, r"`hparams\['rate'\]` must be a bool"),
        (("d", {}, {"loss": "0.1"}), TypeError, r"`metrics\['loss'\]` must be a real"),
        (("d", {}, {"loss": True}), TypeError, r"`metrics\['loss'\]` must be a real"),
        (("d", {}, {}, -1), ValueError, "`step` must be"),
    ],
)
def test_log_hparams_rejects_bad_arguments(tmp_path, arguments, error, message):
    arguments = tuple(tmp_path if arg == "d" else arg for arg in arguments)
    with pytest.raises(error, match=message):
        log_hparams(*arguments)


def test_constants_are_one_text_summary_and_no_column(tmp_path):
    log_experiment(tmp_path)
    log_hparams_config(
        tmp_path / "with_constants",
        {"variant": list(VARIANTS)},
        {"test_error": "final test error"},
        constants={"epochs": 20, "optimizer": "SGD", "nesterov": False},
    )
    names, _, _ = hparams_experiment(tmp_path / "with_constants")
    assert names == ["variant"]
    (events,) = [read_tensors(tmp_path / "with_constants", "")]
    ((step, text),) = events["constant_hyperparameters"]
    assert step == 0
    assert text.item().decode().splitlines() == [
        "| hyperparameter | value (every run) |",
        "|---|---|",
        "| epochs | 20 |",
        "| optimizer | SGD |",
        "| nesterov | False |",
    ]
    metadata = read_metadata(tmp_path / "with_constants", "")
    assert metadata["constant_hyperparameters"].plugin_data.plugin_name == "text"
    # Without constants, no text summary.
    assert "constant_hyperparameters" not in read_tensors(tmp_path, "")


@pytest.mark.parametrize(
    "hparams, metrics, message",
    [
        ({"rate": 0.5}, {}, r"`hparams\['rate'\]` must be a list of the values"),
        ({"rate": [0.5, "high"]}, {}, r"`hparams\['rate'\]` must list values of one"),
        ({}, {"loss": None}, r"`metrics\['loss'\]` must be a str"),
    ],
)
def test_log_hparams_config_rejects_bad_arguments(tmp_path, hparams, metrics, message):
    with pytest.raises(TypeError, match=message):
        log_hparams_config(tmp_path, hparams, metrics)


def test_log_hparams_config_rejects_bad_constants(tmp_path):
    with pytest.raises(TypeError, match="`constants` must be a dict"):
        log_hparams_config(tmp_path, {}, {}, constants=[("epochs", 2)])
    with pytest.raises(TypeError, match=r"`constants\['lr'\]` must be a bool, a real"):
        log_hparams_config(tmp_path, {}, {}, constants={"lr": [0.1]})
