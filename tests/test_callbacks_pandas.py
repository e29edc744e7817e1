"""kdrop's callbacks take pandas probe data, as `model.fit` does."""

import keras
import numpy as np
import pytest

from kdrop import callbacks
from tests.event_files import read_scalars

pandas = pytest.importorskip("pandas")


def classifier():
    model = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(8, activation="relu", name="hidden"),
            keras.layers.Dropout(0.3, name="drop"),
            keras.layers.Dense(2, activation="softmax", name="out"),
        ]
    )
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    return model


def test_probes_take_a_dataframe_and_a_series(tmp_path):
    rng = np.random.default_rng(0)
    values = rng.normal(size=(16, 3)).astype("float32")
    frame = pandas.DataFrame(values, columns=["a", "b", "c"])
    labels = pandas.Series(np.arange(16) % 2)
    model = classifier()
    logging = [
        callbacks.ActivationSparsity(tmp_path / "frame", data=frame),
        callbacks.WeightHistograms(tmp_path / "frame", data=(frame, labels)),
        callbacks.MCDropoutMonitor(
            tmp_path / "frame",
            data=(frame, labels),
            samples=3,
            every_n_epochs=1,
            reliability_diagram=False,
        ),
        callbacks.ActivationSparsity(tmp_path / "array", data=values),
    ]
    model.fit(frame, labels, epochs=1, verbose=0, callbacks=logging)
    from_frame = read_scalars(tmp_path / "frame")
    from_array = read_scalars(tmp_path / "array")
    # The DataFrame's values were probed, not its column names (layers in
    # inference mode: the same values; a dropout draw may differ on torch,
    # where Keras's unseeded Dropout reads torch's global generator).
    assert "statistics/sparsity/drop" in from_frame
    for tag in (
        "statistics/sparsity/hidden",
        "statistics/mean_activation/hidden",
    ):
        assert from_frame[tag] == pytest.approx(from_array[tag])
    # The softmax head's mean is 1/classes by construction: not logged.
    assert "statistics/mean_activation/out" not in from_frame
    assert "mc_dropout/accuracy/mc" in from_frame
    assert any(tag.startswith("statistics/gradient_norm/") for tag in from_frame)
