"""WeightHistograms: weights and gradients against numpy.

The gradient code is per backend (kdrop.backend.gradients): these tests
check each one when the suite runs under KERAS_BACKEND=jax and torch.
"""

import keras
import numpy as np
import pytest

from kdrop import callbacks
from tests.callback_models import X, Y, full_batch_gradients, twin_blocks_model
from tests.event_files import read_histograms, read_scalars


def linear_model():
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(
                1,
                kernel_initializer=keras.initializers.GlorotUniform(seed=3),
                name="linear",
            ),
        ]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")  # weights stay put
    return model


def assert_gradients_logged(model, log_dir, gradients):
    """The logged norm and histogram of each of `gradients` ({variable
    name: numpy gradient}) of layer 'linear' equal numpy's."""
    scalars = read_scalars(log_dir)
    histograms = read_histograms(log_dir)
    for name, gradient in gradients.items():
        path = f"{model.name}/linear/{name}"
        assert scalars[f"statistics/gradient_norm/{path}"][0] == pytest.approx(
            np.linalg.norm(gradient), rel=1e-5
        )
        buckets = histograms[f"value_histograms/gradients/{path}"][0]
        expected, edges = np.histogram(gradient, bins=len(buckets))
        np.testing.assert_allclose(buckets[:, 0], edges[:-1], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(buckets[:, 1], edges[1:], rtol=1e-5, atol=1e-6)
        # float32 gradients vs float64 here: only a value within rounding of
        # an inner bin edge may land in the neighbouring bin.
        on_an_edge = np.sum(
            np.min(np.abs(gradient.reshape(-1, 1) - edges[1:-1]), axis=1)
            <= 1e-5 * (edges[-1] - edges[0])
        )
        assert buckets[:, 2].sum() == gradient.size
        assert np.abs(buckets[:, 2] - expected).sum() <= 2 * on_an_edge


def test_gradients_and_weights_match_numpy_for_a_linear_model(tmp_path):
    model = linear_model()
    model.fit(
        X,
        Y,
        epochs=1,
        verbose=0,
        callbacks=[callbacks.WeightHistograms(tmp_path, data=(X, Y), variables="all")],
    )
    kernel, bias = (v.numpy() for v in model.get_layer("linear").weights)
    gradients = dict(zip(("kernel", "bias"), full_batch_gradients(kernel, bias)))
    assert_gradients_logged(model, tmp_path, gradients)
    scalars = read_scalars(tmp_path)
    histograms = read_histograms(tmp_path)
    assert scalars[f"statistics/weight_norm/{model.name}/linear/kernel"][
        0
    ] == pytest.approx(np.linalg.norm(kernel), rel=1e-6)
    assert (
        histograms[f"value_histograms/weights/{model.name}/linear/kernel"][0][
            :, 2
        ].sum()
        == kernel.size
    )


@pytest.mark.parametrize(
    "gradient_probe_size, rows",
    [("default", 128), (16, 16), (None, 200), (500, 200)],
)
def test_the_gradient_is_that_of_the_first_gradient_probe_size_examples(
    gradient_probe_size, rows, tmp_path
):
    rng = np.random.default_rng(7)
    x = rng.normal(size=(200, 6)).astype("float32")
    y = rng.normal(size=(200, 1)).astype("float32")
    options = (
        {}
        if gradient_probe_size == "default"
        else {"gradient_probe_size": gradient_probe_size}
    )
    model = linear_model()
    model.fit(
        X,
        Y,
        epochs=1,
        verbose=0,
        callbacks=[
            callbacks.WeightHistograms(
                tmp_path, data=(x, y), variables="all", **options
            )
        ],
    )
    kernel, bias = (v.numpy() for v in model.get_layer("linear").weights)
    used = full_batch_gradients(kernel, bias, x[:rows], y[:rows])
    assert_gradients_logged(model, tmp_path, dict(zip(("kernel", "bias"), used)))
    if rows < len(x):  # not the whole probe's gradient
        whole = full_batch_gradients(kernel, bias, x, y)[0]
        assert np.linalg.norm(used[0] - whole) > 1e-3 * np.linalg.norm(whole)


def test_every_float_weight_without_gradients_every_n_epochs(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(5, name="dense"),
            keras.layers.BatchNormalization(
                name="norm"
            ),  # non-trainable moving statistics
            keras.layers.Dense(1, name="out"),
        ]
    )
    model.compile(optimizer="sgd", loss="mse")
    model.fit(
        X,
        Y,
        epochs=4,
        verbose=0,
        callbacks=[
            callbacks.WeightHistograms(
                tmp_path, every_n_epochs=2, gradients=False, variables="all"
            )
        ],
    )
    histograms = read_histograms(tmp_path)
    scalars = read_scalars(tmp_path)
    assert set(histograms) == {
        f"value_histograms/weights/{v.path}" for v in model.weights
    }
    assert not any(tag.startswith("gradient") for tag in scalars)
    for variable in model.weights:
        values = variable.numpy()
        logged = histograms[f"value_histograms/weights/{variable.path}"]
        assert set(logged) == {1, 3}
        assert logged[3][:, 2].sum() == values.size
        assert scalars[f"statistics/weight_norm/{variable.path}"][3] == pytest.approx(
            np.linalg.norm(values), rel=1e-5
        )


@pytest.mark.parametrize(
    "epochs, every_n_epochs, stop_after, logged",
    [
        (5, 2, None, [1, 3, 4]),  # the last epoch is no multiple of 2
        (4, 2, None, [1, 3]),
        (2, 5, None, [1]),  # a fit shorter than every_n_epochs
        (6, 4, 2, [2]),  # stopped by a callback at the 3rd epoch
    ],
)
def test_every_n_th_epoch_and_the_fits_last_one(
    epochs, every_n_epochs, stop_after, logged, tmp_path
):
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(1, name="out")])
    model.compile(optimizer="sgd", loss="mse")
    kernels = {}

    def end(epoch, logs):
        kernels[epoch] = model.get_layer("out").kernel.numpy()
        if epoch == stop_after:
            model.stop_training = True

    model.fit(
        X,
        Y,
        epochs=epochs,
        verbose=0,
        callbacks=[
            # Keras calls the callbacks in this order: the weights are read
            # and the fit stopped before WeightHistograms' epoch end.
            keras.callbacks.LambdaCallback(on_epoch_end=end),
            callbacks.WeightHistograms(
                tmp_path, every_n_epochs=every_n_epochs, gradients=False
            ),
        ],
    )
    kernel = model.get_layer("out").kernel
    norms = read_scalars(tmp_path)[f"statistics/weight_norm/{kernel.path}"]
    assert sorted(norms) == logged
    for epoch in logged:
        assert norms[epoch] == pytest.approx(np.linalg.norm(kernels[epoch]), rel=1e-5)


def test_kernels_embeddings_and_recurrent_kernels_by_default_every_weight_on_request(
    tmp_path,
):
    model = keras.Sequential(
        [
            keras.Input((3,), dtype="int32"),
            keras.layers.Embedding(10, 4, name="embed"),
            keras.layers.LSTM(5, name="lstm"),
            keras.layers.Dense(1, name="out"),
        ]
    )
    model.compile(optimizer="sgd", loss="mse")
    x = np.random.default_rng(1).integers(0, 10, (16, 3))
    y = np.zeros((16, 1), "float32")
    logged = {}
    for variables in ("kernels", "all"):
        model.fit(
            x,
            y,
            verbose=0,
            callbacks=[
                callbacks.WeightHistograms(
                    tmp_path / variables, data=(x, y), variables=variables
                )
            ],
        )
        logged[variables] = read_histograms(tmp_path / variables)
    names = {
        variables: sorted(
            tag.rsplit("/", 1)[1] for tag in tags if "value_histograms/weights/" in tag
        )
        for variables, tags in logged.items()
    }
    # Embedding (10 x 4), LSTM kernel and recurrent kernel, Dense kernel;
    # "all" adds the LSTM's and the Dense's biases.
    assert names["kernels"] == ["embeddings", "kernel", "kernel", "recurrent_kernel"]
    assert names["all"] == sorted(names["kernels"] + ["bias", "bias"])
    gradients = [
        tag
        for tag in logged["kernels"]
        if tag.startswith("value_histograms/gradients/")
    ]
    assert len(gradients) == 4


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({}, ValueError, ["data", "gradients=True", "data=None"]),
        (
            {"gradients": False, "variables": "biases"},
            ValueError,
            ["variables", "'biases'", "'kernels'", "'all'"],
        ),
        ({"gradients": False, "variables": 2}, TypeError, ["variables", "2"]),
        ({"data": X}, ValueError, ["data", "targets"]),
        ({"data": (X, Y), "every_n_epochs": -1}, ValueError, ["every_n_epochs", "-1"]),
        (
            {"data": (X, Y), "gradient_probe_size": 0},
            ValueError,
            ["gradient_probe_size", "positive int", "None", "=0"],
        ),
        (
            {"data": (X, Y), "gradient_probe_size": 2.5},
            TypeError,
            ["gradient_probe_size", "2.5", "float"],
        ),
        (
            {"data": (X, Y), "gradient_probe_size": True},
            TypeError,
            ["gradient_probe_size", "True", "bool"],
        ),
    ],
)
def test_bad_arguments(kwargs, error, words):
    with pytest.raises(error) as info:
        callbacks.WeightHistograms("logs", **kwargs)
    for word in words:
        assert word in str(info.value)


def test_twin_sub_models_with_one_name_get_distinct_weight_tags(tmp_path):
    model = twin_blocks_model()
    first = model.first.get_layer("dense").kernel
    second = model.second.get_layer("dense").kernel
    assert first.path == second.path  # Keras's own paths collide
    model.fit(
        X,
        Y,
        epochs=1,
        verbose=0,
        callbacks=[callbacks.WeightHistograms(tmp_path, data=(X, Y))],
    )
    scalars = read_scalars(tmp_path)
    for tag, variable in [
        ("twin/block/dense/kernel", first),
        ("twin/block_2/dense/kernel", second),
    ]:
        assert scalars[f"statistics/weight_norm/{tag}"][0] == pytest.approx(
            np.linalg.norm(variable.numpy()), rel=1e-6
        )
    # By default the kernels only: two Denses in blocks plus 'out'.
    assert len([t for t in scalars if t.startswith("statistics/weight_norm/")]) == 3
    assert len([t for t in scalars if t.startswith("statistics/gradient_norm/")]) == 3


def two_input_two_output_model():
    left, right = keras.Input((6,), name="left"), keras.Input((3,), name="right")
    hidden = keras.layers.Concatenate()([left, right])
    outputs = {
        "a": keras.layers.Dense(1, name="a")(hidden),
        "b": keras.layers.Dense(2, name="b")(hidden),
    }
    model = keras.Model([left, right], outputs)
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    return model


@pytest.mark.parametrize("rows", [len(X), 16])
def test_two_inputs_and_two_outputs_gradients_match_numpy(rows, tmp_path):
    model = two_input_two_output_model()
    right = np.random.default_rng(5).normal(size=(len(X), 3)).astype("float32")
    y = {"a": Y, "b": np.zeros((len(X), 2), "float32")}
    model.fit(
        [X, right],
        y,
        epochs=1,
        verbose=0,
        callbacks=[
            callbacks.WeightHistograms(
                tmp_path,
                data=([X, right], y),
                variables="all",
                gradient_probe_size=rows,
            )
        ],
    )
    # Loss = mean((f_a - Y)^2) + mean(f_b^2) on the first `rows` examples
    # of every input and output: the gradient of 'a''s bias is
    # 2 * mean(f_a - Y), of 'b''s bias 2 * mean(f_b, axis=0) / 2.
    features = np.concatenate([X, right], axis=1)[:rows].astype(np.float64)
    a, b = model.get_layer("a"), model.get_layer("b")
    f_a = features @ a.kernel.numpy() + a.bias.numpy()
    f_b = features @ b.kernel.numpy() + b.bias.numpy()
    scalars = read_scalars(tmp_path)
    name = model.name
    assert scalars[f"statistics/gradient_norm/{name}/a/bias"][0] == pytest.approx(
        abs(2 * np.mean(f_a - Y[:rows])), rel=1e-4
    )
    assert scalars[f"statistics/gradient_norm/{name}/b/bias"][0] == pytest.approx(
        np.linalg.norm(f_b.mean(axis=0)), rel=1e-4
    )


@pytest.mark.parametrize(
    "data, words",
    [
        # One output's targets missing: Keras's loss cannot be computed.
        (lambda x, y: (x, {"a": y["a"]}), ["WeightHistograms", "probe", "data"]),
        # One input missing.
        (lambda x, y: (x[:1], y), ["does not fit", "2 input"]),
    ],
)
def test_a_probe_the_model_cannot_take_fails_before_the_first_step(
    data, words, tmp_path
):
    model = two_input_two_output_model()
    right = np.zeros((len(X), 3), "float32")
    x, y = [X, right], {"a": Y, "b": np.zeros((len(X), 2), "float32")}
    with pytest.raises(ValueError) as info:
        model.fit(
            x,
            y,
            epochs=1,
            verbose=0,
            callbacks=[callbacks.WeightHistograms(tmp_path, data=data(x, y))],
        )
    for word in words:
        assert word in str(info.value)
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 0


def test_the_gradient_is_traced_once_and_reused_by_every_epoch_and_fit(tmp_path):
    # Python runs the loss only while tracing a compiled function (the
    # train step, the gradient) on TensorFlow and JAX; torch runs it
    # eagerly, at every batch and every gradient.
    calls = []

    def counted_mse(y_true, y_pred):
        calls.append(1)
        return keras.losses.mean_squared_error(y_true, y_pred)

    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(1, name="linear")])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss=counted_mse)
    histograms = callbacks.WeightHistograms(tmp_path, data=(X, Y))
    at_epoch_end = []
    count = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: at_epoch_end.append(len(calls))
    )
    # One 64-row batch per epoch.
    model.fit(X, Y, batch_size=64, epochs=3, verbose=0, callbacks=[histograms, count])
    model.fit(X, Y, batch_size=64, epochs=2, verbose=0, callbacks=[histograms, count])
    if keras.backend.backend() == "torch":
        # A training step and a gradient per epoch; the second fit does
        # not check the probe again.
        assert np.diff(at_epoch_end).tolist() == [2, 2, 2, 2]
    else:
        assert at_epoch_end == [at_epoch_end[0]] * 5
    # Every epoch logged a gradient, the second fit's at steps 0 and 1 again.
    norms = read_scalars(tmp_path)[
        f"statistics/gradient_norm/{model.name}/linear/kernel"
    ]
    assert sorted(norms) == [0, 1, 2]
