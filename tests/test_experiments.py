"""Smoke tests of every experiment behind scripts/, with tiny settings.

Each checks that the outputs exist AND hold sensible numbers, read back
independently: summary.csv against the returned rows, TensorBoard event
files with tests/event_files.py, logged rates and learning rates against
the schedules' formulas written out here, PNGs decoded by matplotlib.

The scripts' recipes and data are the same on every backend, and what is
backend-specific under them (layers, inference, callbacks) has its own
tests on every backend; so .ci/run trains the `scripts_tensorflow_pass`
smoke tests on TensorFlow only, and keeps the MLP run
(`scripts_all_backends`) in the JAX and PyTorch passes.
"""

import csv
import io
import math
import os

import keras
import matplotlib.image
import matplotlib.ticker
import numpy as np
import pytest
from tensorboard.plugins.custom_scalar import metadata as custom_scalar_metadata

import kdrop
from kdrop.experiments import (
    cli,
    cnn_dropout,
    dropout_schedules,
    figures,
    mc_uncertainty,
    mc_vs_weight_scaling,
    mlp_dropout,
    regression_overfit,
    scaling_demo,
    sparsity_autoencoder,
    training,
)
from kdrop.experiments.events import read_held
from kdrop.tensorboard.families import GROUPS, group_of
from tests.callback_models import W_HIDDEN, relu_model
from tests.event_files import (
    event_file_paths,
    read_descriptions,
    read_histograms,
    read_metadata,
    read_scalars,
    read_tensors,
)
from tests.tensorboard_plugins import hparams_experiment, hparams_table

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Two of the variants' code paths, two seeds: no dropout layer, and a rate
# computed in the compiled step. The layers themselves are tested on every
# backend in test_dropout_layers.py.
CNN_VARIANTS = ("none", "scheduled")
# 1000 balanced test images: chance accuracy 0.1 with binomial standard
# deviation sqrt(0.1 * 0.9 / 1000) = 0.0095; 0.2 is 10 standard deviations up.
ABOVE_CHANCE = 0.2


def read_csv(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


def assert_png(path):
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert image.std() > 0.01  # something is drawn on the canvas


def assert_classifier_rows(rows, csv_path):
    saved = read_csv(csv_path)
    assert len(saved) == len(rows)
    for row, saved_row in zip(rows, saved):
        for column in ("train_accuracy", "test_accuracy", training.GAP):
            assert float(saved_row[column]) == pytest.approx(row[column])
        assert (
            0.0 <= row["train_accuracy"] <= 1.0 and 0.0 <= row["test_accuracy"] <= 1.0
        )
        assert row[training.GAP] == pytest.approx(
            row["test_error_%"] - row["train_error_%"]
        )
        assert row["test_error_%"] == pytest.approx(100 * (1 - row["test_accuracy"]))
        assert row["train_error_%"] == pytest.approx(100 * (1 - row["train_accuracy"]))
        assert row["test_accuracy"] > ABOVE_CHANCE
        assert row["seconds"] > 0


def logged(name, value):
    """A hyperparameter as the HPARAMS table should show it: the seed as a
    str, "0" (TensorBoard prints a number with 5 significant digits, "0.0000")."""
    return str(value) if name == "seed" else value


def assert_hparams_table(
    out,
    rows,
    by,
    hparams,
    metrics=training.HPARAMS_METRICS,
    fixed=("epochs", "batch_size", "optimizer"),
):
    """The HPARAMS dashboard (read by TensorBoard's plugin) has one row per
    run, with the run's identity and final numbers as in `rows`; its
    columns are the identity columns that differ between runs, the others
    and the `fixed` settings are in the text summary of `out`."""
    names, domains, logged_metrics = hparams_experiment(out)
    varying = {name for name in hparams if len({row[name] for row in rows}) > 1}
    assert set(names) == varying
    for name in names:  # declared with the values the runs take
        assert domains[name] == sorted({logged(name, row[name]) for row in rows})
    constants = read_tensors(out, "")["constant_hyperparameters"][0][1].item().decode()
    for name in [*fixed, *(set(hparams) - varying)]:
        assert f"| {name} | " in constants
    assert logged_metrics == list(metrics)
    table = {
        name: (run, values)
        for name, run, values in hparams_table(out, next(iter(metrics)))
    }
    assert len(table) == len(rows)
    for row in rows:
        run, values = table[f"{row[by]}/seed_{row['seed']}".replace(" ", "_")]
        assert run == {name: logged(name, row[name]) for name in varying}
        # Scalars are float32 in the event file.
        assert values == pytest.approx(
            {name: row[name] for name in metrics}, rel=1e-5, abs=1e-6
        )


def assert_aggregate(out, by, columns, seeds):
    """aggregate.csv = mean and sample std (n - 1) of summary.csv's per-seed
    rows, computed here with numpy."""
    per_seed = read_csv(out / "summary.csv")
    aggregate = read_csv(out / "aggregate.csv")
    names = list(dict.fromkeys(row[by] for row in per_seed))
    assert [row[by] for row in aggregate] == names
    for row in aggregate:
        group = [seed_row for seed_row in per_seed if seed_row[by] == row[by]]
        assert sorted(int(seed_row["seed"]) for seed_row in group) == seeds
        assert int(row["seeds"]) == len(seeds)
        for column in columns:
            values = np.array([float(seed_row[column]) for seed_row in group])
            assert float(row[f"{column}_mean"]) == pytest.approx(values.mean())
            squares = np.sum((values - values.mean()) ** 2)
            expected_std = np.sqrt(squares / (len(values) - 1)) if len(seeds) > 1 else 0
            assert float(row[f"{column}_std"]) == pytest.approx(expected_std)
    return per_seed, aggregate


def assert_curves_match_events(out, runs, seeds, epochs):
    """curves.csv (the figure's numbers) = mean and std over seeds of the
    per-epoch values Keras's TensorBoard callback logged in each run."""
    drawn = {}
    for row in read_csv(out / "curves.csv"):
        drawn.setdefault((row["panel"], row["label"]), []).append(
            (int(row["epoch"]), float(row["mean"]), float(row["std"]))
        )
    for label, run_name in runs.items():
        logged = {
            "test loss": [
                read_scalars(out / run_name / f"seed_{s}", "validation")["epoch_loss"]
                for s in seeds
            ],
            "test error (%)": [
                {
                    epoch: 100 * (1 - value)
                    for epoch, value in read_scalars(
                        out / run_name / f"seed_{s}", "validation"
                    )["epoch_accuracy"].items()
                }
                for s in seeds
            ],
        }
        for panel, per_seed in logged.items():
            values = np.array([[run[e] for e in range(epochs)] for run in per_seed])
            epochs_drawn, means, stds = zip(*drawn[panel, label])
            assert list(epochs_drawn) == list(range(1, epochs + 1))
            np.testing.assert_allclose(means, values.mean(axis=0), rtol=1e-5)
            np.testing.assert_allclose(
                stds, values.std(axis=0, ddof=1), rtol=1e-4, atol=1e-6
            )


def assert_across_seeds(out, variants, seeds, epochs):
    """finish() aggregated the seeds: run across_seeds/<variant> holds the
    mean and mean +- sample std (numpy, n - 1) of the per-seed validation
    loss and error (%) Keras's TensorBoard callback logged."""
    for variant in variants:
        aggregated = read_scalars(out / "across_seeds" / variant, "")
        # The final metrics of each seed's run (HPARAMS) are one point, no
        # curve: left out of the aggregation.
        final = read_scalars(out / variant / f"seed_{seeds[0]}", "")
        assert final and all(tag.startswith("wrap_up/") for tag in final)
        assert not [tag for tag in aggregated if "wrap_up/" in tag]
        per_seed = [
            read_scalars(out / variant / f"seed_{seed}", "validation") for seed in seeds
        ]
        for quantity, tag, to_value in (
            ("epoch_loss/validation", "epoch_loss", lambda v: v),
            ("epoch_error_%/validation", "epoch_accuracy", lambda v: 100 * (1 - v)),
        ):
            values = np.array(
                [[to_value(run[tag][e]) for e in range(epochs)] for run in per_seed]
            )
            mean, std = values.mean(axis=0), values.std(axis=0, ddof=1)
            got = [aggregated[f"across_seeds/{quantity}"][e] for e in range(epochs)]
            upper = aggregated[f"within_one_std/{quantity}/upper"]
            np.testing.assert_allclose(got, mean, rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(
                [upper[e] for e in range(epochs)], mean + std, rtol=1e-5, atol=1e-4
            )


@pytest.mark.scripts_tensorflow_pass
def test_cnn_dropout_smoke(tmp_path):
    # The offline digits, every epoch tested on all 1000 test images (the
    # default's full MNIST: test_experiments_full).
    rows, summary = cnn_dropout.run(
        CNN_VARIANTS,
        epochs=2,
        seed=3,
        seeds=2,
        out=str(tmp_path),
        dataset="offline",
        curve_test_size=None,
        train_size=512,
        batch_size=32,
        verbose=0,
    )
    assert [(row["variant"], row["seed"]) for row in rows] == [
        (variant, seed) for seed in (3, 4) for variant in CNN_VARIANTS
    ]
    assert_classifier_rows(rows, tmp_path / "summary.csv")
    _, aggregate = assert_aggregate(
        tmp_path, "variant", cnn_dropout.COLUMNS, seeds=[3, 4]
    )
    for returned, saved in zip(summary, aggregate):
        assert float(saved["test_loss_mean"]) == pytest.approx(
            returned["test_loss_mean"]
        )
    assert_curves_match_events(
        tmp_path, {variant: variant for variant in CNN_VARIANTS}, [3, 4], epochs=2
    )
    assert_png(tmp_path / "curves.png")
    assert_figure_logged(tmp_path, "curves")
    assert_hparams_table(tmp_path, rows, "variant", ("variant", "dropout", "seed"))
    assert_across_seeds(tmp_path, CNN_VARIANTS, [3, 4], epochs=2)
    steps = np.arange(32)  # 2 epochs of 512 / 32 steps
    for row in rows:
        log_dir = tmp_path / row["variant"] / f"seed_{row['seed']}"
        # Keras's TensorBoard callback: the validation accuracy and loss of
        # the last epoch are the summary's test accuracy and loss.
        validation = read_scalars(log_dir, "validation")
        assert validation["epoch_accuracy"][1] == pytest.approx(
            row["test_accuracy"], abs=1e-6
        )
        assert validation["epoch_loss"][1] == pytest.approx(row["test_loss"], rel=1e-5)
        assert row["test_error_%"] == pytest.approx(100 * (1 - row["test_accuracy"]))
        scalars, histograms = read_scalars(log_dir), read_histograms(log_dir)
        assert "statistics/weight_norm/cnn/classifier/kernel" in scalars
        # Per-layer histograms for the first seed only; scalars for all.
        if row["seed"] == 4:
            assert histograms == {}
        else:
            assert "value_histograms/weights/cnn/classifier/kernel" in histograms
            # A 1600 x 10 kernel: every weight is counted in the histogram.
            gradients = histograms["value_histograms/gradients/cnn/classifier/kernel"]
            assert gradients[1][:, 2].sum() == 16000
        assert 0.0 <= scalars["statistics/sparsity/pool2"][1] <= 1.0
        assert scalars["gap/validation_minus_train/loss"][1] == pytest.approx(
            validation["epoch_loss"][1] - scalars["epoch_loss"][1], abs=1e-5
        )
        if row["variant"] == "none":
            assert not any(tag.startswith("rates/dropout/") for tag in scalars)
            continue
        if row["variant"] != "scheduled":
            # A fixed Dropout(0.5): one value, no per-batch series.
            assert scalars["rates/dropout/dropout"] == {0: pytest.approx(0.5)}
            assert "rates/dropout_per_batch/dropout" not in scalars
            assert 0.3 < scalars["statistics/dropped_fraction/dropout"][1] < 0.7
            continue
        rates = scalars["rates/dropout_per_batch/dropout"]
        assert sorted(rates) == list(steps)  # changes before every step
        if row["variant"] == "scheduled":
            # Curriculum(0.5, gamma = 6 / 32 steps), Morerio et al.'s formula.
            expected = 0.5 * (1 - np.exp(-6 / 32 * steps))
            assert (
                row["dropout"]
                == "ScheduledDropout(Curriculum(final_rate=0.5, gamma=0.1875))"
            )
        else:
            expected = np.full(32, 0.5)
        np.testing.assert_allclose(
            [rates[s] for s in steps], expected, rtol=1e-5, atol=1e-7
        )
        # Fraction of the flattened features one training-mode draw zeroes:
        # Binomial(n, rate) / n over n >> 1000 non-zero units, about the rate.
        assert 0.3 < scalars["statistics/dropped_fraction/dropout"][1] < 0.7


def test_plot_bands_draws_mean_and_sample_std(tmp_path):
    runs = np.array([[3.0, 2.0, 1.0], [5.0, 2.0, 0.5], [4.0, 5.0, 2.0]])
    fig = figures.plot_bands(
        str(tmp_path / "bands.png"),
        {"test error (%)": {"a": runs, "b": runs[:1]}, "dropout rate": {"a": runs}},
        "title",
        styles={"b": {"color": "red", "linestyle": "--"}},
    )
    axis, rates = fig.axes[:2]
    mean = np.array([4.0, 3.0, 7 / 6])
    std = np.array([1.0, np.sqrt(3.0), np.std([1.0, 0.5, 2.0], ddof=1)])
    line_a, line_b = axis.lines
    np.testing.assert_allclose(line_a.get_xydata(), np.c_[[1, 2, 3], mean])
    assert line_b.get_linestyle() == "--" and line_b.get_color() == "red"
    # fill_between's polygon: the upper edge and the lower edge of the band.
    (band,) = axis.collections  # a single run ("b") has no band
    vertices = band.get_paths()[0].vertices
    for x, low, high in zip([1, 2, 3], mean - std, mean + std):
        at_x = vertices[np.isclose(vertices[:, 0], x), 1]
        assert at_x.min() == pytest.approx(low) and at_x.max() == pytest.approx(high)
    # Errors on a log axis, other quantities on a linear one; epochs whole.
    assert axis.get_yscale() == "log" and rates.get_yscale() == "linear"
    for panel in (axis, rates):
        locator = panel.xaxis.get_major_locator()
        assert isinstance(locator, matplotlib.ticker.MaxNLocator)
        assert all(float(tick).is_integer() for tick in panel.get_xticks())
    assert fig.get_suptitle() == "title, 3 seeds: mean +- 1 std"
    saved = read_csv(tmp_path / "curves.csv")
    np.testing.assert_allclose([float(r["std"]) for r in saved[:3]], std)
    assert_png(tmp_path / "bands.png")


def test_plot_bands_with_one_seed_draws_no_band(tmp_path):
    fig = figures.plot_bands(
        str(tmp_path / "one.png"),
        {"test error (%)": {"a": [[27.0, 5.0, 3.6]], "b": [[20.0, 4.0, 2.7]]}},
        "title",
    )
    (axis,) = fig.axes
    assert not axis.collections  # no band
    assert [text.get_text() for text in axis.get_legend().get_texts()] == ["a", "b"]
    assert fig.get_suptitle() == "title, 1 seed"
    assert "std" not in fig.get_suptitle()
    assert read_descriptions(tmp_path, figures.FIGURES_RUN)["one"].count("no band")
    # The log scale gives the last epochs' 3.6 vs 2.7 % a visible gap: on
    # a linear 2.7-27 axis they are 4 % of its height apart, here 12 %.
    low, high = axis.get_ylim()
    share = (np.log(3.6) - np.log(2.7)) / (np.log(high) - np.log(low))
    assert share > 0.1


def drawn_inside(axis, line):
    """Whether every point of `line` lands inside `axis`'s y limits once
    transformed as drawn (a log axis puts a 0 far below them)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(axis.figure).draw()
    y = axis.transData.transform(line.get_xydata())[:, 1]
    low, high = axis.transData.transform([(0, v) for v in axis.get_ylim()])[:, 1]
    return bool(np.all(np.isfinite(y)) and np.all((low <= y) & (y <= high)))


def test_a_zero_percent_error_keeps_every_point_on_the_axis(tmp_path):
    # Training error reaching exactly 0 % in epoch 4 in both seeds.
    train = np.array([[20.0, 2.0, 0.3, 0.0], [24.0, 3.0, 0.5, 0.0]])
    test = np.array([[25.0, 6.0, 3.0, 2.5], [27.0, 7.0, 4.0, 3.0]])
    fig = figures.plot_bands(
        str(tmp_path / "zero.png"),
        {"training error (%)": {"a": train}, "test error (%)": {"a": test}},
        "title",
    )
    zero, positive = fig.axes[:2]
    (line,) = zero.lines
    np.testing.assert_allclose(line.get_ydata(), train.mean(axis=0))
    assert drawn_inside(zero, line)
    # Linear up to the largest power of ten at or below the smallest
    # positive mean (0.4 %), logarithmic above, as the label says.
    assert zero.get_yscale() == "symlog"
    assert zero.yaxis.get_transform().linthresh == pytest.approx(0.1)
    assert zero.get_ylabel() == "training error (%) (log scale, linear below 0.1)"
    low, high = zero.get_ylim()
    assert low <= 0 and high >= 22
    # A panel with every value positive stays on a plain log axis.
    assert positive.get_yscale() == "log"
    assert positive.get_ylabel() == "test error (%)"
    assert drawn_inside(positive, positive.lines[0])
    assert_png(tmp_path / "zero.png")


def test_a_band_below_zero_is_drawn_too(tmp_path):
    # Means all positive, but the band's lower edge goes below 0.
    runs = np.array([[10.0, 1.0, 0.1], [12.0, 3.0, 0.9]])
    fig = figures.plot_bands(
        str(tmp_path / "band.png"), {"test loss": {"a": runs}}, "title"
    )
    (axis,) = fig.axes
    lower = runs.mean(axis=0) - runs.std(axis=0, ddof=1)
    assert lower[-1] < 0
    assert axis.get_yscale() == "symlog"
    assert axis.yaxis.get_transform().linthresh == pytest.approx(0.1)
    assert axis.get_ylim()[0] <= lower[-1]
    assert drawn_inside(axis, axis.lines[0])


def test_a_long_title_is_wrapped_inside_the_figure(tmp_path):
    title = "MC dropout vs weight scaling, 10000 test images, 3 seeds: mean +- 1 std"
    fig = figures.plot_lines(
        str(tmp_path / "lines.png"),
        {"mc": ([1, 10, 100], [3.0, 2.0, 1.9])},
        "samples k",
        "test error (%)",
        title,
        xscale="log",
    )
    # The title, drawn again as savefig drew it (constrained layout, on an
    # Agg canvas: pyplot left the closed figure a bare one), lies within
    # the figure.
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig).draw()
    (axes,) = fig.axes
    box = axes.title.get_window_extent()
    assert box.x0 >= 0 and box.x1 <= fig.bbox.width and box.y1 <= fig.bbox.height
    assert axes.get_title().replace("\n", " ") == title
    assert "\n" in axes.get_title()


def test_sparsity_histograms_share_their_axes_by_row(tmp_path):
    rng = np.random.default_rng(0)
    unit_means = {
        "no dropout": rng.uniform(0, 5, 64),
        "dropout": rng.uniform(0, 1.5, 64),
    }
    histograms = {
        "no dropout": np.array([[0.0, 1.0, 10.0], [1.0, 5.0, 3.0]]),
        "dropout": np.array([[0.0, 0.5, 20.0], [0.5, 1.5, 2.0]]),
    }
    fig = sparsity_autoencoder._plot(
        str(tmp_path / "hist.png"),
        unit_means,
        histograms,
        {"no dropout": 0.1, "dropout": 0.4},
    )
    top_left, top_right, bottom_left, bottom_right = fig.axes
    assert top_left.get_xlim() == top_right.get_xlim()
    assert top_left.get_ylim() == top_right.get_ylim()
    assert bottom_left.get_xlim() == bottom_right.get_xlim()
    assert top_left.get_xlim()[1] >= unit_means["no dropout"].max()
    # The same bins: every bar of both models has one width.
    widths = {
        round(bar.get_width(), 9) for ax in (top_left, top_right) for bar in ax.patches
    }
    assert len(widths) == 1


def test_sparsity_histograms_of_a_single_model(tmp_path):
    """One model is one column of panels: both are drawn, with its numbers."""
    unit_means = {"dropout": np.random.default_rng(0).uniform(0, 2, 64)}
    edges_and_counts = np.array([[0.0, 0.5, 20.0], [0.5, 1.5, 2.0]])
    fig = sparsity_autoencoder._plot(
        str(tmp_path / "one.png"),
        unit_means,
        {"dropout": edges_and_counts},
        {"dropout": 0.4},
    )
    top, bottom = fig.axes
    # The top panel: numpy's histogram of the unit means on the 30 bins.
    expected, _ = np.histogram(
        unit_means["dropout"], np.linspace(0, unit_means["dropout"].max(), 31)
    )
    np.testing.assert_array_equal([bar.get_height() for bar in top.patches], expected)
    assert [bar.get_height() for bar in bottom.patches] == [20.0, 2.0]
    assert [bar.get_x() for bar in bottom.patches] == [0.0, 0.5]
    assert [bar.get_width() for bar in bottom.patches] == [0.5, 1.0]
    assert bottom.get_yscale() == "log"
    assert bottom.get_title() == "dropout: 40% of activations are 0"
    assert_png(tmp_path / "one.png")


def assert_figure_logged(out, name):
    """The figure `out/<name>.png` is also the image `<name>` of the run
    `figures`: the same PNG bytes, with a description."""
    tensors = read_tensors(out, figures.FIGURES_RUN)
    ((step, (width, height, png)),) = tensors[name]
    saved = (out / f"{name}.png").read_bytes()
    assert step == 0 and png == saved
    pixels = matplotlib.image.imread(io.BytesIO(png), format="png")
    assert pixels.shape[:2] == (int(height), int(width))
    # Readable in TensorBoard's IMAGES dashboard at its own size.
    assert int(width) >= 800 == figures.MIN_WIDTH_PIXELS
    assert read_descriptions(out, figures.FIGURES_RUN)[name]


def test_a_figure_is_logged_as_an_image_and_replaced_with_it(tmp_path):
    for value in (1.0, 2.0):
        with figures.figure(str(tmp_path / "plot.png"), description="A line.") as (
            _,
            axes,
        ):
            axes.plot([0.0, value])
        assert_figure_logged(tmp_path, "plot")
    assert read_descriptions(tmp_path, figures.FIGURES_RUN) == {"plot": "A line."}
    # The second figure's event file replaced the first's: a script run
    # again into `out` is not refused for its figures.
    assert len(os.listdir(tmp_path / figures.FIGURES_RUN)) == 1
    cli.prepare_out(str(tmp_path))


def test_goal_verdicts():
    def row(variant, error, loss, loss_std):
        return {
            "variant": variant,
            "test_error_%_mean": error,
            "test_loss_mean": loss,
            "test_loss_std": loss_std,
        }

    verdicts = cnn_dropout.goal_verdicts(
        [
            row("none", 3.0, 0.12, 0.02),
            row("inverted", 2.0, 0.07, 0.01),  # 0.08 < 0.10: apart
            row("weight_scaled", 2.5, 0.09, 0.02),  # 0.11 > 0.10: overlap
        ]
    )
    assert verdicts["inverted"] == {
        "lower_test_error": True,
        "lower_test_loss": True,
        "test_loss_intervals_apart": True,
    }
    assert verdicts["weight_scaled"]["lower_test_loss"]
    assert not verdicts["weight_scaled"]["test_loss_intervals_apart"]
    assert cnn_dropout.goal_verdicts([row("inverted", 2.0, 0.07, 0.01)]) == {}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"variants": ["dropconnect"]}, r"`variants` must be one of .*'dropconnect'"),
        ({"variants": ["none", "none"]}, r"must not repeat"),
        ({"variants": []}, r"at least one"),
        ({"epochs": 0}, r"`epochs` must be a positive int"),
        ({"train_size": -5}, r"`train_size` must be a positive int"),
        ({"dataset": "mnist.csv"}, r"`source` must be"),
        ({"seeds": 0}, r"`seeds` must be a positive int"),
    ],
)
def test_cnn_dropout_rejects_bad_arguments_before_training(tmp_path, kwargs, message):
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=message):
        cnn_dropout.run(out=str(out), **kwargs)
    assert not out.exists()


def test_cnn_dropout_rejects_wrongly_typed_arguments_before_training(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(TypeError, match=r"`batch_size` must be a positive int.*1.5"):
        cnn_dropout.run(out=str(out), batch_size=1.5)
    assert not out.exists()


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="file handling only, the same on every backend; two CNN runs cost "
    "several times more on JAX and torch",
)
def test_a_second_run_into_the_same_out_is_refused_unless_overwrite(tmp_path):
    tiny = dict(
        variants=["none"], epochs=1, seeds=1, train_size=64, batch_size=32, verbose=0
    )
    cnn_dropout.run(out=str(tmp_path), **tiny)
    first = event_file_paths(tmp_path)
    assert first
    with pytest.raises(ValueError, match=r"`out` already holds .*--overwrite"):
        cnn_dropout.run(out=str(tmp_path), **tiny)
    assert event_file_paths(tmp_path) == first  # refused before anything was written
    cnn_dropout.run(out=str(tmp_path), overwrite=True, **tiny)
    assert not set(event_file_paths(tmp_path)) & set(first)
    # One run's events only: every (tag, step) pair is logged once.
    for subdir in ("train", "validation"):
        for tag, events in read_tensors(tmp_path / "none/seed_0", subdir).items():
            if tag == custom_scalar_metadata.CONFIG_SUMMARY_TAG:
                continue  # the dashboard's layout, in every kdrop event file
            steps = [step for step, _ in events]
            assert len(steps) == len(set(steps)), (subdir, tag, steps)
    logged = read_scalars(tmp_path / "none/seed_0", "validation")
    assert logged["epoch_accuracy"].keys() == {0}


@pytest.mark.parametrize(
    "module",
    [
        cnn_dropout,
        dropout_schedules,
        mc_uncertainty,
        mc_vs_weight_scaling,
        mlp_dropout,
        sparsity_autoencoder,
    ],
)
def test_scripts_writing_events_take_overwrite(module, tmp_path, capsys):
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "events.out.tfevents.1.host").write_bytes(b"")
    with pytest.raises(SystemExit) as exit_info:
        module.main(["--out", str(tmp_path), "--epochs", "1"])
    # argparse's convention for a bad command line: one line, status 2.
    assert exit_info.value.code == 2
    name = module.__name__.rsplit(".", 1)[-1]
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"scripts/{name}.py: error: `out` already holds 1 ")
    assert "--overwrite" in line
    assert event_file_paths(tmp_path)  # nothing deleted without --overwrite


@pytest.mark.parametrize(
    "module, trains",
    [
        (cnn_dropout, True),
        (dropout_schedules, True),
        (mc_uncertainty, True),
        (mc_vs_weight_scaling, True),
        (mlp_dropout, True),
        (regression_overfit, True),
        (scaling_demo, False),
        (sparsity_autoencoder, True),
    ],
)
def test_every_script_has_the_common_options(module, trains, capsys):
    with pytest.raises(SystemExit) as exit_info:
        module.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    name = module.__name__.rsplit(".", 1)[-1]
    assert f"scripts/{name}.py" in text and f"logs/{name}" in text
    assert "--seed" in text and "--out" in text
    assert ("--epochs" in text) == trains
    assert ("--seeds" in text) == trains


@pytest.mark.parametrize(
    "argv",
    [
        ["--epochs", "0"],
        ["--seed", "-1"],
        ["--epochs", "2.5"],
        ["--variants", "dropconnect"],
    ],
)
def test_cnn_dropout_command_line_rejects_bad_options(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cnn_dropout.main(argv)
    assert exit_info.value.code == 2
    assert argv[1] in capsys.readouterr().err


def test_scaling_demo_values(tmp_path):
    draws = 20
    rows = scaling_demo.run(draws=draws, out=str(tmp_path))
    inverted, weight_scaled, small = rows
    # Inference: no mask, exact.
    assert inverted["inference"] == 10000.0 and weight_scaled["inference"] == 5000.0
    assert small["inference"] == 100.0
    # Training: sum(mask) ~ Binomial(n, keep); inverted divides it by keep.
    for row, mean, sd, unit in (
        (inverted, 10000, 100, 2.0),
        (weight_scaled, 5000, 50, 1.0),
        (small, 70, math.sqrt(21), 1.0),
    ):
        values = np.array(row["training_draws"])
        assert len(values) == draws and np.all(values % unit == 0)  # whole units kept
        assert np.all(np.abs(values - mean) < 6 * sd)
        assert abs(values.mean() - mean) < 5 * sd / math.sqrt(draws)
        assert row["training_mean"] == pytest.approx(values.mean())
    saved = read_csv(tmp_path / "summary.csv")
    assert [float(row["inference"]) for row in saved] == [10000.0, 5000.0, 100.0]


def test_full_batch_iterations_are_plain_gradient_steps():
    """fit_full_batch takes exactly `iterations` steps on the whole set:
    compare with gradient descent on a linear model written in numpy."""
    x = np.array([[-1.0], [0.0], [0.5], [2.0]], "float32")
    y = np.array([[1.0], [0.0], [2.0], [-1.0]], "float32")
    model = keras.Sequential(
        [
            keras.Input((1,)),
            keras.layers.Dense(1, kernel_initializer="ones", bias_initializer="zeros"),
        ]
    )
    model.compile(keras.optimizers.SGD(0.1), "mse")
    regression_overfit.fit_full_batch(model, x, y, 3, "linear")
    w, b = 1.0, 0.0
    for _ in range(3):
        residual = w * x[:, 0] + b - y[:, 0]
        w, b = (
            w - 0.1 * np.mean(2 * residual * x[:, 0]),
            b - 0.1 * np.mean(2 * residual),
        )
    kernel, bias = model.get_weights()
    np.testing.assert_allclose([kernel[0, 0], bias[0]], [w, b], rtol=1e-5)


@pytest.mark.scripts_tensorflow_pass
def test_regression_overfit_smoke(tmp_path):
    rows, _ = regression_overfit.run(iterations=300, seeds=2, out=str(tmp_path))
    assert [(row["model"], row["seed"]) for row in rows] == [
        ("dropout 0.0", 0),
        ("dropout 0.5", 0),
        ("dropout 0.0", 1),
        ("dropout 0.5", 1),
    ]
    for row in rows:
        assert np.isfinite(row["train_mse"]) and np.isfinite(row["test_mse"])
        # Better than predicting 0 everywhere: E[(1.5 x + noise)^2] = 0.75 + 0.09
        # on the test points.
        assert 0 <= row["test_mse"] < 0.84
    for without, with_dropout in (rows[:2], rows[2:]):
        # The net without dropout fits its 10 points far below the noise
        # variance 0.25 and more closely than the net with dropout.
        assert without["train_mse"] < min(0.1, with_dropout["train_mse"])
    saved = read_csv(tmp_path / "summary.csv")
    assert [float(row["train_mse"]) for row in saved] == pytest.approx(
        [row["train_mse"] for row in rows]
    )
    assert_aggregate(tmp_path, "model", regression_overfit.COLUMNS, seeds=[0, 1])
    assert_png(tmp_path / "fit.png")


@pytest.mark.scripts_tensorflow_pass
def test_mc_vs_weight_scaling_smoke(tmp_path):
    rows, summary = mc_vs_weight_scaling.run(
        epochs=1,
        seeds=2,
        out=str(tmp_path),
        sample_counts=(1, 5),
        repeats=2,
        train_size=1000,
        verbose=0,
    )
    assert [(row["samples"], row["seed"]) for row in rows] == [
        (1, 0),
        (5, 0),
        (1, 1),
        (5, 1),
    ]
    for row in rows:
        for column in ("mc_test_error_%", "weight_scaling_test_error_%"):
            assert 0 <= row[column] < 100 * (1 - ABOVE_CHANCE)
    assert_aggregate(tmp_path, "samples", mc_vs_weight_scaling.COLUMNS, seeds=[0, 1])
    assert [row["samples"] for row in summary] == [1, 5]
    assert_png(tmp_path / "mc_vs_weight_scaling.png")
    # HPARAMS: one row per trained MLP, its errors as in the per-k rows.
    table = {
        name: values
        for name, _, values in hparams_table(tmp_path, "weight_scaling_test_error_%")
    }
    assert set(table) == {"mlp/seed_0", "mlp/seed_1"}
    for row in rows:
        values = table[f"mlp/seed_{row['seed']}"]
        assert values[f"mc_test_error_%_k{row['samples']}"] == pytest.approx(
            row["mc_test_error_%"], rel=1e-6
        )
        assert values["weight_scaling_test_error_%"] == pytest.approx(
            row["weight_scaling_test_error_%"], rel=1e-6
        )
    # Srivastava 2014's recipe, applied per step (10 steps of 100 images):
    # learning rate 1 / (1 + t / 10000), momentum 0.5 -> 0.99 over 100000 steps.
    logged = read_scalars(tmp_path / "mlp" / "seed_1")
    steps = np.arange(10)
    np.testing.assert_allclose(
        [logged["rates/learning_rate_per_batch"][s] for s in steps],
        1 / (1 + steps / 10000),
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        [logged["rates/momentum_per_batch"][s] for s in steps],
        0.5 + 0.49 * steps / 100000,
        rtol=1e-6,
    )


@pytest.mark.scripts_tensorflow_pass
def test_sparsity_autoencoder_smoke(tmp_path):
    rows, _ = sparsity_autoencoder.run(
        epochs=1, seeds=2, out=str(tmp_path), train_size=500, verbose=0
    )
    assert [(row["model"], row["seed"]) for row in rows] == [
        ("no dropout", 0),
        ("dropout 0.5", 0),
        ("no dropout", 1),
        ("dropout 0.5", 1),
    ]
    assert_aggregate(tmp_path, "model", sparsity_autoencoder.COLUMNS, seeds=[0, 1])
    side = 16 * 29 + 1  # 16 tiles of 28 pixels, 1-pixel gaps and borders
    for row in rows:
        log_dir = tmp_path / row["model"].replace(" ", "_") / f"seed_{row['seed']}"
        assert row["mean_activation"] >= 0 and 0 <= row["fraction_zero"] <= 1
        logged = read_scalars(log_dir)
        assert row["mean_activation"] == pytest.approx(
            logged["statistics/mean_activation/hidden"][0]
        )
        assert row["fraction_zero"] == pytest.approx(
            logged["statistics/sparsity/hidden"][0]
        )
        # The histogram counts every hidden activation of the 1000 test images.
        histogram = read_histograms(log_dir)["value_histograms/activations/hidden"][0]
        assert histogram[:, 2].sum() == 1000 * 256
        assert np.all(histogram[:, 0] >= 0)  # ReLU outputs
        # The learned features as a TensorBoard image: the image plugin's
        # [width, height, PNG] strings, the PNG decoding to that size.
        [(step, image)] = read_tensors(log_dir)["features/hidden"]
        assert step == 0
        width, height, png = image
        assert (int(width), int(height)) == (side, side)
        pixels = matplotlib.image.imread(io.BytesIO(png), format="png")
        assert pixels.shape[:2] == (side, side)
        # Gray around 0.5 inside the tiles, white between them.
        assert np.all(pixels[0, :, :3] == 1.0) and 0.3 < pixels[1:29, 1:29].mean() < 0.7
    assert_png(tmp_path / "hidden_activations.png")
    assert_png(tmp_path / "features.png")
    for name in ("hidden_activations", "features"):
        assert_figure_logged(tmp_path, name)
    assert_hparams_table(
        tmp_path,
        rows,
        "model",
        ("model", "seed"),
        sparsity_autoencoder.HPARAMS_METRICS,
        fixed=("dropout", "epochs", "batch_size", "optimizer"),
    )


def test_feature_grid_places_each_unit_in_its_tile():
    # Unit i's weights are i + 1 at one pixel (i mod 784) and -(i + 1) at the
    # next: scaled by its own largest |weight|, always 1.0 and 0.0 there.
    units = 20
    kernel = np.zeros((784, units))
    for unit in range(units):
        kernel[unit % 784, unit] = unit + 1
        kernel[(unit + 1) % 784, unit] = -(unit + 1)
    grid = sparsity_autoencoder.feature_grid(kernel, columns=8, pad=1)
    assert grid.shape == (3 * 29 + 1, 8 * 29 + 1)  # ceil(20 / 8) = 3 rows
    for unit in range(units):
        row, column = divmod(unit, 8)
        tile = grid[1 + 29 * row : 29 * (row + 1), 1 + 29 * column : 29 * (column + 1)]
        expected = np.full(784, 0.5)
        expected[unit % 784], expected[(unit + 1) % 784] = 1.0, 0.0
        np.testing.assert_allclose(tile.ravel(), expected)
    # The four unused tiles of the last row and the gaps stay white.
    assert np.all(grid[1 + 2 * 29 :, 1 + 4 * 29 :] == 1.0)
    assert np.all(grid[0] == 1.0) and np.all(grid[:, 29] == 1.0)


@pytest.mark.scripts_all_backends
def test_mlp_dropout_smoke(tmp_path):
    rows, _ = mlp_dropout.run(
        ["2x32"],
        epochs=2,
        seeds=2,
        out=str(tmp_path),
        train_size=1000,
        verbose=0,
    )
    models = ["2x32 no dropout", "2x32 dropout"]
    assert [(row["model"], row["seed"]) for row in rows] == [
        (model, seed) for seed in (0, 1) for model in models
    ]
    assert_classifier_rows(rows, tmp_path / "summary.csv")
    assert_aggregate(tmp_path, "model", mlp_dropout.COLUMNS, seeds=[0, 1])
    assert_curves_match_events(
        tmp_path, {model: model.replace(" ", "_") for model in models}, [0, 1], 2
    )
    assert_png(tmp_path / "test_error.png")
    assert_hparams_table(
        tmp_path, rows, "model", ("model", "architecture", "dropout", "seed")
    )
    # Momentum 0.5 -> 0.9 over the first 10 % of the 2 x 10 steps, then 0.9.
    momentum = read_scalars(tmp_path / "2x32_dropout" / "seed_1")[
        "rates/momentum_per_batch"
    ]
    np.testing.assert_allclose(
        [momentum[step] for step in range(20)], [0.5, 0.7] + [0.9] * 18, rtol=1e-6
    )


def test_mlp_dropout_models():
    with_dropout = mlp_dropout.mlp((64, 32), dropout=True, seed=0)
    rates = [
        layer.rate
        for layer in with_dropout.layers
        if isinstance(layer, kdrop.InvertedDropout)
    ]
    assert rates == [0.2, 0.5, 0.5]  # inputs, then after each hidden layer
    without = mlp_dropout.mlp((64, 32), dropout=False, seed=0)
    for model in (with_dropout, without):
        dense = [x for x in model.layers if isinstance(x, keras.layers.Dense)]
        assert [layer.units for layer in dense] == [64, 32, 10]
        for layer in dense:
            assert isinstance(layer.kernel_constraint, keras.constraints.MaxNorm)
            assert layer.kernel_constraint.max_value == 3
    assert not any(isinstance(x, kdrop.InvertedDropout) for x in without.layers)


@pytest.mark.parametrize(
    "architectures, error, message",
    [
        (["2x"], ValueError, r"'<layers>x<units>'.*'2x'"),
        (["0x64"], ValueError, r"'0x64'"),
        (["2x64", "2x64"], ValueError, r"without repeats"),
        ([], ValueError, r"at least one"),
        ([64], TypeError, r"must hold strings.*int"),
    ],
)
def test_mlp_dropout_rejects_bad_architectures(tmp_path, architectures, error, message):
    with pytest.raises(error, match=message):
        mlp_dropout.run(architectures, out=str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


@pytest.mark.scripts_tensorflow_pass
def test_dropout_schedules_smoke(tmp_path):
    rows, _ = dropout_schedules.run(
        names=("early", "late"),
        epochs=2,
        seeds=1,
        out=str(tmp_path),
        train_size=512,
        batch_size=64,
        verbose=0,
    )
    assert [row["schedule"] for row in rows] == ["early", "late"]
    assert_classifier_rows(rows, tmp_path / "summary.csv")
    assert_aggregate(tmp_path, "schedule", dropout_schedules.COLUMNS, seeds=[0])
    steps = np.arange(16)  # 2 epochs of 8 steps; switch at step 8
    expected = {
        "early": 0.5 * np.maximum(1 - steps / 8, 0),  # Liu et al.: linear decay to 0
        "late": np.where(steps >= 8, 0.5, 0.0),
    }
    for row in rows:
        log_dir = tmp_path / row["schedule"] / "seed_0"
        # Written where the rate changes, each value held until the next.
        rates = read_held(
            log_dir, "rates/dropout_per_batch/dropout", steps, "rates/dropout/dropout"
        )
        np.testing.assert_allclose(rates, expected[row["schedule"]], atol=1e-6)
        assert row["mean_rate"] == pytest.approx(
            np.mean(expected[row["schedule"]]), abs=1e-6
        )
    for name in ("rates.png", "test_error.png"):
        assert_png(tmp_path / name)
    assert_hparams_table(tmp_path, rows, "schedule", ("schedule", "dropout", "seed"))


@pytest.mark.scripts_tensorflow_pass
def test_mc_uncertainty_smoke(tmp_path):
    # Two seeds exercise the mean +- std tables; one on JAX and torch, where
    # each new model's compilation costs several times more.
    seeds = 2 if keras.backend.backend() == "tensorflow" else 1
    tables = mc_uncertainty.run(
        epochs=2, out=str(tmp_path), seeds=seeds, samples=5, train_size=1000
    )
    for name, rows in tables.items():
        saved = read_csv(tmp_path / f"{name}.csv")
        assert len(saved) == len(rows)
        for row, saved_row in zip(rows, saved):
            for column, value in row.items():
                if isinstance(value, float):
                    assert float(saved_row[column]) == pytest.approx(value)
    calibration = {row["prediction"]: row for row in tables["calibration"]}
    assert set(calibration) == {"deterministic", "mc"}
    for row in calibration.values():
        assert row["accuracy_mean"] > ABOVE_CHANCE
        assert row["nll_mean"] > 0 and 0 < row["brier_mean"] < 2
        assert 0 <= row["ece_mean"] <= 1 and row["accuracy_std"] >= 0
    ood = {row["case"]: row for row in tables["ood"]}
    assert set(ood) == {
        f"{name} / {score}"
        for name in ("rotated_90", "inverted", "uniform_noise")
        for score in ("entropy_deterministic", "entropy_mc", "mutual_information_mc")
    }
    for row in ood.values():
        assert 0 <= row["auroc_mean"] <= 1 and 0 <= row["fpr95_mean"] <= 1
    rotation = tables["rotation"]
    np.testing.assert_allclose(
        [row["angle"] for row in rotation], mc_uncertainty.ANGLES
    )
    for row in rotation:
        assert 0.1 <= row["mc_confidence"] <= 1 and row["mc_mutual_information"] >= 0
    assert_png(tmp_path / "rotated_one.png")
    assert_png(tmp_path / "reliability.png")
    for name in ("rotated_one", "reliability"):
        assert_figure_logged(tmp_path, name)
    # HPARAMS: one row per seed; their means are the calibration table's.
    names, _, metrics = hparams_experiment(tmp_path)
    # One model: only the seed differs; the rest is written once as text.
    # A single run has nothing that varies: its identity columns stay.
    identity = ["seed"] if seeds > 1 else ["dropout", "model", "seed"]
    assert names == identity
    constants = read_tensors(tmp_path, "")["constant_hyperparameters"][0][1]
    for name in ("model", "dropout", "epochs", "batch_size", "optimizer", "samples"):
        if name not in identity:
            assert f"| {name} | " in constants.item().decode()
    assert metrics == list(mc_uncertainty.HPARAMS_METRICS)
    table = hparams_table(tmp_path, "test_error_%")
    # Seeds are strs: the table shows "0", not the double 0 as "0.0000".
    assert sorted(run["seed"] for _, run, _ in table) == [
        str(seed) for seed in range(seeds)
    ]
    for column, prediction, metric, to_column in [
        ("test_error_%", "deterministic", "accuracy", lambda a: 100 * (1 - a)),
        ("mc_test_error_%", "mc", "accuracy", lambda a: 100 * (1 - a)),
        ("test_loss", "deterministic", "nll", float),
        ("mc_test_loss", "mc", "nll", float),
        ("mc_ece", "mc", "ece", float),
    ]:
        mean = np.mean([values[column] for _, _, values in table])
        expected = to_column(calibration[prediction][f"{metric}_mean"])
        assert mean == pytest.approx(expected, rel=1e-5, abs=1e-5), column
    for _, _, values in table:
        gap = values["test_error_%"] - values["train_error_%"]
        assert values[training.GAP] == pytest.approx(gap, abs=1e-4)


def test_mc_uncertainty_tables_are_mean_and_std_over_seeds():
    def seed_result(accuracy, auroc):
        metrics = {"accuracy": accuracy, "nll": 1.0, "brier": 0.5, "ece": 0.1}
        return {
            "calibration": {"deterministic": metrics, "mc": metrics},
            "ood": {"inverted": {"entropy_mc": (auroc, 0.5)}},
        }

    calibration, ood = mc_uncertainty.summarize(
        [seed_result(0.9, 0.8), seed_result(0.7, 0.6)]
    )
    # Sample std of two values a, b: |a - b| / sqrt(2).
    assert calibration[1]["prediction"] == "mc" and calibration[1]["seeds"] == 2
    assert calibration[1]["accuracy_mean"] == pytest.approx(0.8)
    assert calibration[1]["accuracy_std"] == pytest.approx(0.2 / np.sqrt(2))
    assert calibration[1]["nll_std"] == 0.0
    assert ood == [
        {
            "case": "inverted / entropy_mc",
            "seeds": 2,
            "auroc_mean": pytest.approx(0.7),
            "auroc_std": pytest.approx(0.2 / np.sqrt(2)),
            "fpr95_mean": 0.5,
            "fpr95_std": 0.0,
        }
    ]


def test_mc_uncertainty_rotation_and_ood_sets():
    image = np.random.default_rng(0).random((28, 28, 1)).astype("float32")
    np.testing.assert_array_equal(mc_uncertainty.rotate(image, 0), image)
    for quarter_turns in (1, 2, 3):  # counter-clockwise, as np.rot90
        np.testing.assert_allclose(
            mc_uncertainty.rotate(image, 90 * quarter_turns),
            np.rot90(image, quarter_turns),
            atol=1e-6,
        )
    # 45 degrees keeps the centre pixel's neighbourhood and loses corners.
    turned = mc_uncertainty.rotate(image, 45)
    assert turned[0, 0, 0] == 0 and turned[14, 14, 0] > 0
    sets = mc_uncertainty.ood_sets(image[np.newaxis], seed=0)
    np.testing.assert_array_equal(sets["rotated_90"][0], np.rot90(image))
    np.testing.assert_allclose(sets["inverted"][0], 1 - image)
    noise = sets["uniform_noise"]
    assert noise.shape == (1, 28, 28, 1) and noise.min() >= 0 and noise.max() < 1


def test_mc_uncertainty_rejects_one_sample_before_training(tmp_path):
    with pytest.raises(ValueError, match="`samples` must be at least 2.*samples=1"):
        mc_uncertainty.run(out=str(tmp_path), samples=1)


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="which callbacks log, the same on every backend",
)
def test_keras_tensorboard_only_logs_what_keras_alone_logs(tmp_path):
    cnn_dropout.run(
        out=str(tmp_path),
        variants=["none", "inverted"],
        epochs=1,
        seeds=2,
        train_size=64,
        batch_size=32,
        verbose=0,
        keras_tensorboard_only=True,
    )
    # Keras's runs only: no aggregate over seeds, HPARAMS or figure run.
    runs = {
        os.path.relpath(os.path.dirname(path), tmp_path)
        for path in event_file_paths(tmp_path)
    }
    assert runs == {
        f"{variant}/seed_{seed}/{subdir}"
        for variant in ("none", "inverted")
        for seed in (0, 1)
        for subdir in ("train", "validation")
    }
    tags = read_metadata(tmp_path / "inverted/seed_1", "train")
    # Keras's own tags (histogram_freq=1: a histogram per weight), no kdrop one.
    assert "epoch_loss" in tags
    assert any(tag.endswith("/histogram") for tag in tags)
    assert not any(group_of(tag) in dict(GROUPS) for tag in tags if "/" in tag)


def test_logging_callbacks_probe_activations_on_one_training_batch(tmp_path):
    # The probe's first batch_size rows, the gradient's images: the
    # statistics equal numpy's on those rows, not on the whole probe.
    rng = np.random.default_rng(1)
    x_probe = rng.normal(size=(96, 6)).astype("float32")
    y_probe = rng.normal(size=(96, 1)).astype("float32")
    model = relu_model()
    model.fit(
        x_probe,
        y_probe,
        epochs=1,
        batch_size=32,
        verbose=0,
        callbacks=training.logging_callbacks(
            str(tmp_path), x_probe, y_probe, batch_size=32
        ),
    )
    hidden = np.maximum(x_probe @ W_HIDDEN, 0.0)
    scalars = read_scalars(tmp_path)
    logged = scalars["statistics/sparsity/hidden"][0]
    assert logged == pytest.approx(np.mean(hidden[:32] <= 0), abs=1e-6)
    assert logged != pytest.approx(np.mean(hidden <= 0), abs=1e-6)
    assert scalars["statistics/mean_activation/hidden"][0] == pytest.approx(
        hidden[:32].mean(), rel=1e-5
    )
