"""The table of tag families: every tag kdrop writes has exactly one."""

import keras
import pytest
from tensorboard.plugins.custom_scalar.metadata import CONFIG_SUMMARY_TAG

from kdrop import callbacks
from kdrop.callbacks.base import LoggingCallback
from kdrop.tensorboard import dashboard, families
from tests.callback_models import CLASSES, X, classifier, every_logging_callback
from tests.event_files import read_descriptions

PER_BATCH = "Per batch: step = 0-based global index of the training step about to run."


def example_tag(family):
    return f"{family.name}/x" if family.suffix else family.name


def test_every_family_has_a_description_and_a_chart_or_none_said_so():
    names = [family.name for family in families.FAMILIES]
    assert len(set(names)) == len(names)
    for family in families.FAMILIES:
        # `chart` has no default: every entry says whether it has one.
        assert family.chart is None or (family.chart.category and family.chart.title)
        if family.description is None:  # Keras writes these tags
            assert family.chart is not None, family.name
            continue
        assert family.description and "\n" not in family.description
        if family.name == families.WRAP_UP:  # log_hparams' final metrics
            ending = families.ONCE_PER_RUN
        elif family.name in ("across_seeds", "within_one_std"):  # aggregate_seeds
            ending = families.AT_THE_SEEDS_STEPS
        elif family.name.endswith("_per_batch"):
            ending = PER_BATCH
        else:
            ending = "Per epoch."
        assert family.description.endswith(ending), family.name
    titles = [(f.chart.category, f.chart.title) for f in dashboard.CHARTS.values()]
    assert len(set(titles)) == len(titles)


def test_each_familys_tags_resolve_to_it_alone():
    for family in families.FAMILIES:
        if family.description is not None:
            tag = example_tag(family)
            assert families.family_of(tag) is family, tag
            assert families.describe(tag) == family.description
    assert families.family_of("epoch_sparse_categorical_accuracy").name == (
        "epoch_accuracy"
    )
    # A family of one tag holds no sub-tags, a family of sub-tags not its name.
    for tag in ("rates/learning_rate/x", "rates/dropout", "mc_dropout/ece"):
        with pytest.raises(families.UnknownTagError, match=tag):
            families.family_of(tag)


def test_every_tag_any_callback_writes_resolves_to_exactly_one_family(tmp_path):
    every_callback = every_logging_callback(tmp_path, X, CLASSES) + [
        callbacks.MCDropoutMonitor(tmp_path, (X, CLASSES), samples=2, every_n_epochs=1),
        callbacks.GeneralizationGap(tmp_path),
    ]
    validation = (X, CLASSES)
    classifier().fit(X, CLASSES, 32, 1, 0, every_callback, validation_data=validation)
    descriptions = read_descriptions(tmp_path)
    del descriptions[CONFIG_SUMMARY_TAG]  # the layout, not a series
    written = {families.family_of(tag).name for tag in descriptions}
    # Every family kdrop's callbacks write was written, with its description
    # (aggregate_seeds writes across_seeds and within_one_std:
    # test_tensorboard_aggregate; log_hparams wrap_up: test_callbacks_hparams),
    # except those that only say something elsewhere and are left out here:
    # per-batch series of rates that never change
    # (test_callbacks_dropout_rate_logger, test_callbacks_lr_momentum) and
    # the NaN/Inf fraction of a run without any
    # (test_callbacks_activation_sparsity).
    not_written = {
        "across_seeds",
        "within_one_std",
        "wrap_up",
        "rates/dropout_per_batch",
        "rates/momentum_per_batch",
        "statistics/nonfinite_fraction",
    }
    assert written == set(families.DESCRIPTIONS) - not_written
    for tag, description in descriptions.items():
        assert description == families.describe(tag), tag


def test_sorted_time_series_groups_tell_the_story_in_the_documented_order():
    # TensorBoard's TIME SERIES sorts its groups (a tag's prefix before the
    # first "/") by name: the order of `GROUPS` must be that sorted order,
    # and every family must start with one of them, so that no new tag can
    # land before the story on the first screen.
    names = [group for group, _ in families.GROUPS]
    assert names == sorted(names)
    order = [
        "across_seeds",
        "epoch_*",
        "gap",
        "mc_dropout",
        "rates",
        "statistics",
        "value_histograms",
        "within_one_std",
        "wrap_up",
    ]
    assert names == order
    position = {}
    for family in families.FAMILIES:
        group = families.group_of(example_tag(family))
        if group.startswith("epoch_"):
            group = "epoch_*"  # Keras's own curves, one group per metric
        assert group in names, (family.name, group)
        position[family.name] = names.index(group)
    # Story < rates < statistics < histograms, and FAMILIES (the dashboard's
    # order) follows the groups.
    assert list(position.values()) == sorted(position.values())
    assert (
        position["epoch_loss"]
        < position["gap/validation_minus_train"]
        < position["rates/dropout"]
        < position["statistics/sparsity"]
        < position["value_histograms/activations"]
    )
    # Keras's own groups sort between the aggregates and kdrop's gap.
    for keras_tag in ("epoch_accuracy", "epoch_learning_rate", "epoch_loss"):
        assert "across_seeds" < keras_tag < "gap"


class _WritesAnUnknownTag(LoggingCallback):
    def on_epoch_end(self, epoch, logs=None):
        self.write_scalar("dropout_rates/drop", 0.5, epoch)


def test_a_tag_of_no_family_fails_at_its_first_write_naming_the_table(tmp_path):
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    with pytest.raises(
        families.UnknownTagError,
        match=r"'dropout_rates/drop' belongs to no tag family.*"
        r"kdrop\.tensorboard\.families\.FAMILIES",
    ):
        model.fit(
            X, X[:, :1], epochs=1, verbose=0, callbacks=[_WritesAnUnknownTag(tmp_path)]
        )
