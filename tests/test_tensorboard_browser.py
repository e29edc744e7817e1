"""TensorBoard's dashboards over kdrop's logs, checked in a real browser.

Trains two tiny runs with Keras's TensorBoard callback and every kdrop
callback, logs their hyperparameters and final metrics, starts
`tensorboard` on a loopback port, loads the Custom Scalars, HParams, Time
Series and Images dashboards in headless Chromium and reads what they show
from the page (shadow DOM included): the charts and the (tag, run) lines
each chart draws, one table row per run with its values, the tag groups,
the images with their descriptions, and the browser console, which must
hold no error. What should be there comes from the runs' model, their
History and the event files read back with TensorBoard's EventAccumulator.

Needs Debian's `chromium` and `chromium-driver` and the `selenium` package
(.ci/run installs them): skipped where they are missing, but failed when
the environment variable CI is set, so CI can never skip it silently. Run
it alone with `pytest -m browser`.
"""

import importlib.util
import os
import re
import time

import keras
import numpy as np
import pytest

import kdrop
from tests import tensorboard_browser as browser
from tests.event_files import read_metadata, read_tensors

pytestmark = pytest.mark.browser

MODES = ("inverted", "weight_scaled")  # one run per dropout convention
SUBDIRS = ("train", "validation")
EPOCHS = 3
MC_METRICS = ("accuracy", "nll", "brier", "ece")
LAYERS = ("hidden", "dropout", "classifier")
METRICS = {"loss": "final training loss", "val_loss": "final validation loss"}
# Groups the Time Series dashboard must show for these runs: Keras's curves
# and each kdrop callback's tags.
REQUIRED_GROUPS = {
    "epoch_loss",
    "epoch_accuracy",
    "gap",
    "mc_dropout",
    "rates",
    "statistics",
    "value_histograms",
}


def require_browser():
    missing = [
        path
        for path in (browser.CHROMIUM, browser.CHROMEDRIVER)
        if not os.access(path, os.X_OK)
    ]
    if importlib.util.find_spec("selenium") is None:
        missing.append("the selenium package")
    if missing:
        reason = f"needs {' and '.join(missing)} (installed by .ci/run)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI is set, so this test may not be skipped")
        pytest.skip(reason)


def train_run(log_dir, mode):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 8)).astype("float32")
    y = (x[:, 0] > 0).astype("int64") + (x[:, 1] > 0)
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(16, activation="relu", name="hidden"),
            kdrop.layers.ScheduledDropout(
                kdrop.schedules.Linear(0.1, 0.5, steps=6), mode=mode, name="dropout"
            ),
            keras.layers.Dense(3, activation="softmax", name="classifier"),
        ]
    )
    model.compile(
        kdrop.optimizers.SGD(),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    probe = (x[:32], y[:32])
    history = model.fit(
        x[32:],
        y[32:],
        batch_size=32,
        epochs=EPOCHS,
        validation_data=probe,
        verbose=0,
        callbacks=[
            keras.callbacks.TensorBoard(log_dir),
            kdrop.callbacks.ActivationSparsity(log_dir, data=probe[0]),
            kdrop.callbacks.WeightHistograms(log_dir, data=probe),
            kdrop.callbacks.DropoutRateLogger(log_dir),
            kdrop.callbacks.LRMomentumScheduler(
                lambda epoch: 0.1 * 0.9**epoch,
                kdrop.optimizer_schedules.LinearMomentum(0.5, 0.9, EPOCHS),
                log_dir=log_dir,
            ),
            kdrop.callbacks.MCDropoutMonitor(
                log_dir, data=probe, samples=4, every_n_epochs=1
            ),
            kdrop.callbacks.GeneralizationGap(log_dir),
        ],
    )
    metrics = {name: history.history[name][-1] for name in METRICS}
    kdrop.callbacks.log_hparams(
        log_dir, hparams(mode), metrics, step=EPOCHS, trial_id=mode
    )
    return metrics


def hparams(mode):
    # The seed as a str, which the table shows as written ("1"; a number
    # would be printed with 5 significant digits, "1.0000").
    return {
        "dropout": mode,
        "rate": "Linear(0.1, 0.5, 6)",
        "epochs": EPOCHS,
        "seed": str(MODES.index(mode)),
    }


def lines(tags, subdirs=("train",)):
    """The "tag (run)" lines a chart of `tags` draws for every run."""
    return sorted(
        f"{tag} ({mode}/{subdir})"
        for tag in tags
        for mode in MODES
        for subdir in subdirs
    )


# The dropout dashboard these runs should get: categories and charts in
# this order, each chart with the lines it draws.
CUSTOM_SCALARS = [
    (
        "Train vs validation, per seed",
        [
            ("loss: train vs validation", lines(["epoch_loss"], SUBDIRS)),
            ("accuracy: train vs validation", lines(["epoch_accuracy"], SUBDIRS)),
            (
                "gap: validation - train (loss; error in % points)",
                lines(
                    [
                        "gap/validation_minus_train/loss",
                        "gap/validation_minus_train/error_%",
                    ]
                ),
            ),
        ],
    ),
    (
        "MC dropout vs deterministic",
        [
            (
                metric,
                lines(
                    f"mc_dropout/{metric}/{prediction}"
                    for prediction in ("deterministic", "mc")
                ),
            )
            for metric in MC_METRICS
        ],
    ),
    (
        "Rates",
        [
            ("dropout rate per layer", lines(["rates/dropout/dropout"])),
            ("learning rate", lines(["rates/learning_rate"])),
            ("momentum", lines(["rates/momentum"])),
        ],
    ),
    (
        "Statistics",
        [
            (
                "fraction of units dropped (training-mode draw)",
                lines(["statistics/dropped_fraction/dropout"]),
            ),
            # The classifier's softmax output has no sparsity (never <= 0)
            # nor informative mean (1 / classes): ActivationSparsity omits them.
            (
                "sparsity per layer",
                lines(f"statistics/sparsity/{layer}" for layer in LAYERS[:2]),
            ),
            (
                "mean activation per layer",
                lines(f"statistics/mean_activation/{layer}" for layer in LAYERS[:2]),
            ),
        ],
    ),
]


def hparams_rows(header, rows):
    """{Trial ID: {column: cell text}} without the Trial ID and Show
    Metrics columns."""
    return {row[0]: dict(zip(header[2:], row[2:])) for row in rows}


def expected_images(root):
    cards = []
    for mode in MODES:
        metadata = read_metadata(root / mode)
        for tag, events in read_tensors(root / mode).items():
            if metadata[tag].plugin_data.plugin_name != "images":
                continue
            width = int(events[-1][1][0])  # [width, height, PNG] at the last step
            description = metadata[tag].summary_description
            cards.append((tag, f"{mode}/train", description, width))
    return sorted(cards)


def shown(read, expected, timeout=120):
    """`read()` once it equals `expected`, or after `timeout` s (the caller's
    assertion then shows the difference): pages fill in asynchronously."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if value == expected or time.monotonic() > deadline:
            return value
        time.sleep(0.25)


def test_dashboards_show_every_run_and_the_console_has_no_error(tmp_path):
    require_browser()
    root = tmp_path / "logs"
    final = {mode: train_run(root / mode, mode) for mode in MODES}
    kdrop.callbacks.log_hparams_config(
        root, {name: None for name in hparams(MODES[0])}, METRICS
    )
    # The runs <mode>/train and <mode>/validation (the callbacks), and <mode>
    # (log_hparams' final metrics).
    tags = browser.logged_tags(root)
    assert sorted(tags) == sorted(
        f"{mode}{subdir}" for mode in MODES for subdir in ("", "/train", "/validation")
    )
    groups = sorted(
        {tag.split("/")[0] for run_tags in tags.values() for tag in run_tags}
    )
    assert set(groups) >= REQUIRED_GROUPS
    # The final metrics of log_hparams: one group, the last on the page.
    assert groups[-1] == "wrap_up"
    assert sorted(tags[MODES[0]]) == [f"wrap_up/{name}" for name in METRICS]
    images = expected_images(root)
    assert len(images) == len(MODES)

    with browser.tensorboard_server(root, tmp_path / "tensorboard.log") as url:
        # The server answers before it has read every file.
        assert shown(lambda: browser.served_tags(url), tags) == tags
        driver = browser.chromium()
        console = []
        try:
            browser.open_dashboard(driver, url, "custom_scalars")
            read = lambda: browser.custom_scalar_charts(driver)  # noqa: E731
            assert shown(read, CUSTOM_SCALARS) == CUSTOM_SCALARS
            console += browser.console_log(driver)

            browser.open_dashboard(driver, url, "hparams")
            # One row per run; the columns: hyperparameters (by name), then
            # the metrics in the declared order.
            header = ["Trial ID", "Show Metrics", *sorted(hparams(MODES[0])), *METRICS]
            read = lambda: browser.hparams_table(driver)[0]  # noqa: E731
            assert shown(read, header) == header
            table = lambda: hparams_rows(*browser.hparams_table(driver))  # noqa: E731
            assert shown(lambda: sorted(table()), sorted(MODES)) == sorted(MODES)
            for mode, row in table().items():
                expected = hparams(mode) | final[mode]
                texts = {k: v for k, v in expected.items() if isinstance(v, str)}
                numbers = {k: v for k, v in expected.items() if k not in texts}
                assert {name: row[name] for name in texts} == texts
                # TensorBoard shows numbers to 5 significant digits.
                shown_numbers = {name: float(row[name]) for name in numbers}
                assert shown_numbers == pytest.approx(numbers, rel=1e-4)
            console += browser.console_log(driver)

            browser.open_dashboard(driver, url, "timeseries")
            read = lambda: browser.time_series_groups(driver)  # noqa: E731
            assert shown(read, groups) == groups
            console += browser.console_log(driver)

            browser.open_dashboard(driver, url, "images")
            read = lambda: sorted(browser.image_cards(driver))  # noqa: E731
            assert shown(read, images) == images
            console += browser.console_log(driver)
        finally:
            driver.quit()
    errors = [entry for entry in console if entry["level"] == "SEVERE"]
    assert errors == []


# A short run of the main job's script, as the scripts log it: two variants
# x two seeds, aggregated by aggregate_seeds (seeds >= 2).
MULTI_SEED = dict(
    variants=("none", "inverted"),
    seeds=2,
    epochs=2,
    train_size=256,
    curve_test_size=128,
    verbose=0,
)
FIRST_SCREEN = (1600, 1000)  # a laptop's browser window, CSS pixels
# The curves of the result, by name: error before loss (sorted), train
# before validation.
STORY_CARDS = [
    "across_seeds/epoch_error_%/train",
    "across_seeds/epoch_error_%/validation",
    "across_seeds/epoch_loss/train",
    "across_seeds/epoch_loss/validation",
]
# Bound on the first loss card's top edge (viewport pixels) in a 1000-pixel
# high window: at least its title and its upper 200 pixels (of about 420)
# on the first screen, without scrolling.
FIRST_LOSS_CARD_TOP = FIRST_SCREEN[1] - 200
# Bound on the Time Series cards of this run: 23 aggregated quantities x 3
# (across_seeds, and within_one_std's lower and upper edges) + 29 per-seed
# scalar tags (statistics 17, wrap_up 5, Keras's epoch_* 3 and
# evaluation_* 2, gap 2, rates 1) + 7 histogram tags x 2 runs (the first
# seed's only) + 1 figure = 114. A new card must raise it on purpose.
MAX_CARDS = 114
# Constant by construction, so never written: the softmax classifier's mean
# activation (1 / classes), a per-batch series of a fixed rate, the mean
# over seeds of a fixed learning or dropout rate.
CONSTANT = re.compile(
    r"^statistics/mean_activation/classifier$|_per_batch(/|$)"
    r"|^across_seeds/(epoch_learning_rate|rates)/"
)


def test_the_first_screen_shows_the_mean_over_seeds_per_variant(tmp_path):
    """What TensorBoard opens on, for a multi-seed run of the main job.

    Before the tags were grouped and aggregated (main at c0bec50,
    `cnn_dropout.run(epochs=3, seeds=2, train_size=512,
    curve_test_size=256)`, 3 variants, Chromium 1600 x 1000, Time Series):
    23 groups, the first (expanded) `activations` (6 histogram cards), the
    second `batch`; the `epoch_loss` group's header at y = 1866 px, so no
    loss curve on the first screen; 196 cards on a 3-variant x 2-seed,
    1-epoch run (142 after the tag rework). Now, on this run (2 variants x
    2 seeds, 2 epochs): 13 groups, the first `across_seeds` (23 cards), its
    first four cards the test error and loss, train and validation, one
    line per variant; the first loss card's top at y = 748 px; 114 cards;
    Custom Scalars opens on the margin charts in the same order.
    """
    require_browser()
    from kdrop.experiments import cnn_dropout

    root = tmp_path / "logs"
    cnn_dropout.run(out=str(root), **MULTI_SEED)
    averaged = sorted(f"across_seeds/{variant}" for variant in MULTI_SEED["variants"])
    tags = browser.logged_tags(root)
    every_tag = set().union(*tags.values())
    assert not [tag for tag in every_tag if CONSTANT.search(tag)]
    counts = browser.time_series_card_counts(root)
    assert sum(counts.values()) <= MAX_CARDS
    groups = sorted(counts)
    assert groups[0] == "across_seeds"
    quantities = sorted(
        tag.split("/", 1)[1] for tag in every_tag if tag.startswith("across_seeds/")
    )
    assert [f"across_seeds/{q}" for q in quantities[:4]] == STORY_CARDS

    with browser.tensorboard_server(root, tmp_path / "tensorboard.log") as url:
        assert shown(lambda: browser.served_tags(url), tags) == tags
        driver = browser.chromium(FIRST_SCREEN)
        console = []
        try:
            browser.open_dashboard(driver, url, "timeseries")

            def landing():
                """The page once every group and the first cards' tables
                are there."""
                page = browser.time_series_layout(driver)
                first = page[0][3][: len(STORY_CARDS)] if page else []
                ready = [group[0] for group in page] == groups and len(first) == len(
                    STORY_CARDS
                )
                return page if ready and all(card[1] for card in first) else None

            page = browser.wait_for(
                landing,
                120,
                lambda: f"Time Series shows {browser.time_series_layout(driver)}",
            )
            # Every group's header counts the cards TensorBoard makes of the
            # event files.
            assert {title: count for title, count, *_ in page} == counts
            (first_group, _, _, cards), *_ = page
            assert first_group == "across_seeds"
            cards = sorted(cards, key=lambda card: (card[2], card[3]))
            assert [(tag, runs) for tag, runs, *_ in cards[: len(STORY_CARDS)]] == [
                (tag, averaged) for tag in STORY_CARDS
            ]
            loss_top = next(top for tag, _, top, _ in cards if "epoch_loss" in tag)
            assert loss_top < FIRST_LOSS_CARD_TOP
            console += browser.console_log(driver)

            browser.open_dashboard(driver, url, "custom_scalars")
            margin = [
                (
                    "Across seeds (mean ± 1 std)",
                    [
                        # one line per variant that holds the quantity (a
                        # dropped fraction: the variants with dropout)
                        (
                            q,
                            [
                                f"across_seeds/{q} ({run})"
                                for run in averaged
                                if f"across_seeds/{q}" in tags[run]
                            ],
                        )
                        for q in quantities
                    ],
                )
            ]
            read = lambda: browser.margin_charts(driver)[:1]  # noqa: E731
            assert shown(read, margin) == margin
            console += browser.console_log(driver)
        finally:
            driver.quit()
    errors = [entry for entry in console if entry["level"] == "SEVERE"]
    assert errors == []
