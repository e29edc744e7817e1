"""kdrop's entry points leave the model they are given exactly as it was.

A property test over every model of the zoo: `fold_dropout`, `mc_predict` (with and
without `return_samples`), every kdrop callback's probe and a .keras round
trip run in a random order, twice; afterwards the model has the same
predictions, variables (weights, seed-generator states, schedule steps),
optimizer state, compiled functions and call nodes (`_inbound_nodes` /
`_outbound_nodes` of every layer and keras.ops call in its graphs), and a
following `fit` with every kdrop logging callback logs the same tags as the
same model built afresh.
"""

import warnings

import keras
import numpy as np
import pytest
from keras import ops

import kdrop
from kdrop import callbacks, keras_internals, layer_paths
from tests import model_zoo
from tests.event_files import read_tensors


def flat_predict(model, x):
    return [np.asarray(out) for out in keras.tree.flatten(model.predict(x, verbose=0))]


def variables(model):
    values = [ops.convert_to_numpy(v).copy() for v in model.variables]
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None:
        values += [ops.convert_to_numpy(v).copy() for v in optimizer.variables]
    return values


def seed_states(model):
    return [
        ops.convert_to_numpy(generator.state).copy()
        for _, layer in [("", model)] + layer_paths.walk(model)
        for generator in keras_internals.own_seed_generators(layer)
    ]


def operations(model):
    """The model, every layer inside it and every operation of its graphs
    (InputLayers and keras.ops calls included), read independently of
    kdrop through the private attributes it checks."""
    found, pending = {id(model): model}, [model]
    while pending:
        current = pending.pop()
        children = list(getattr(current, "_layers", []))
        graph = getattr(current, "_functional", None) or current
        for nodes in getattr(graph, "_nodes_by_depth", {}).values():
            children += [node.operation for node in nodes]
        for child in children:
            if id(child) not in found:
                found[id(child)] = child
                pending.append(child)
    return list(found.values())


def node_counts(model):
    return [
        (op.name, len(op._inbound_nodes), len(op._outbound_nodes))
        for op in operations(model)
    ]


def compiled_functions(model):
    names = ("train_function", "test_function", "predict_function")
    return [getattr(model, name, None) for name in names]


def classes(model, x):
    """Class-index targets for a one-softmax-output model (MCDropoutMonitor)."""
    return np.zeros(len(keras.tree.flatten(x)[0]), dtype="int64")


def run_probe(callback, model, epoch_end=True):
    """One callback's hooks, as `fit` calls them around one epoch, without
    training."""
    callback.set_model(model)
    try:
        callback.on_train_begin()
    except ValueError:
        return  # a model the callback refuses, clearly, before any step
    callback.on_epoch_begin(0)
    if epoch_end:
        callback.on_epoch_end(0)
    callback.on_train_end()


def gives_probabilities(predictions):
    """Whether flat `predictions` are one (n, classes) array of probability
    rows, what MCDropoutMonitor needs."""
    if len(predictions) != 1 or predictions[0].ndim != 2:
        return False
    rows = predictions[0]
    return (
        rows.shape[1] > 1 and rows.min() >= 0 and np.allclose(rows.sum(1), 1, atol=1e-3)
    )


def monitor_probe(model, x, directory, probabilities):
    """MCDropoutMonitor's hooks; a model whose single output is not
    probabilities is refused at the first epoch end, clearly (and must leave
    no trace either)."""
    monitor = callbacks.MCDropoutMonitor(
        directory / "mc",
        data=(x, classes(model, x)),
        samples=3,
        every_n_epochs=1,
        reliability_diagram=False,
    )
    try:
        run_probe(monitor, model)
    except ValueError as error:
        assert not probabilities and "must hold probabilities" in str(error)
        monitor.on_train_end()


def entry_points(model, x, y, directory, probabilities=True):

    def fold():
        if keras_internals.functional_graph(model) is None:
            with pytest.raises(TypeError, match="subclassed"):
                kdrop.fold_dropout(model)
        else:
            kdrop.fold_dropout(model)

    def mc(return_samples):
        return lambda: kdrop.mc_predict(
            model, x, samples=3, seed=0, return_samples=return_samples
        )

    def save_load():
        path = directory / "model.keras"
        model.save(path)
        keras.models.load_model(path, safe_mode=False)

    return {
        "fold": fold,
        "mc": mc(False),
        "mc_samples": mc(True),
        "activation_sparsity": lambda: run_probe(
            callbacks.ActivationSparsity(directory / "as", data=x), model
        ),
        "weight_histograms": lambda: run_probe(
            callbacks.WeightHistograms(directory / "wh", data=(x, y)), model
        ),
        "dropout_rate_logger": lambda: run_probe(
            callbacks.DropoutRateLogger(directory / "dr"), model
        ),
        "mc_dropout_monitor": lambda: monitor_probe(model, x, directory, probabilities),
        "save_load": save_load,
    }


def logged_tags(model, x, directory):
    """The tags one 1-epoch fit with every kdrop logging callback writes,
    with layer paths replaced by their position (`positional_tag`)."""
    y = model_zoo.fit_targets(model, x)
    logging = [
        callbacks.DropoutRateLogger(directory),
        callbacks.WeightHistograms(directory, data=(x, y), variables="all"),
        callbacks.LRMomentumScheduler(lambda epoch: 1e-3, log_dir=directory),
        callbacks.GeneralizationGap(directory),
    ]
    if getattr(model, "inputs", None):
        logging.append(callbacks.ActivationSparsity(directory, data=x))
        if gives_probabilities(flat_predict(model, x)):
            logging.append(
                callbacks.MCDropoutMonitor(
                    directory / "mc",
                    data=(x, classes(model, x)),
                    samples=2,
                    every_n_epochs=1,
                    reliability_diagram=False,
                )
            )
    model.fit(x, y, epochs=1, verbose=0, callbacks=logging)
    positions = {
        path: f"<{position}>"
        for position, (path, _) in enumerate(layer_paths.walk(model))
    }
    tags = set()
    for log_dir in (directory, directory / "mc"):
        if log_dir.exists():
            tags.update(positional_tag(tag, positions) for tag in read_tensors(log_dir))
    return tags


# WeightHistograms' kinds, whose tags are family / kind / model name / layer
# path / variable.
WEIGHT_KINDS = ("weights", "weight_norm", "gradients", "gradient_norm")


def positional_tag(tag, positions):
    """`tag` with the layer path after its family and kind replaced by the
    layer's position in `layer_paths.walk` (`positions`): a model built
    afresh has other automatic layer names. Only the path is replaced, as a
    whole: a kind such as `rates/dropout` stays as it is even when a layer
    happens to be named `dropout`."""
    parts = tag.split("/")
    prefix, rest = parts[:2], parts[2:]
    if len(prefix) == 2 and prefix[1] in WEIGHT_KINDS and rest:
        # The model's name, which a layer of a model built before may have.
        prefix, rest = prefix + ["<model>"], rest[1:]
    for end in range(len(rest), 0, -1):
        path = "/".join(rest[:end])
        if path in positions:
            return "/".join(prefix + [positions[path]] + rest[end:])
    return tag


@pytest.mark.parametrize("build", model_zoo.zoo_params())
def test_entry_points_leave_the_model_as_it_was(build, tmp_path):
    model, x = build()
    fresh, _ = build()
    rng = np.random.default_rng(sum(map(ord, build.__name__)))
    y = model_zoo.fit_targets(model, x)
    predictions = flat_predict(model, x)  # LSTM/GRU advance seeds in predict
    before = (
        variables(model),
        seed_states(model),
        node_counts(model),
        compiled_functions(model),
    )
    points = entry_points(model, x, y, tmp_path, gives_probabilities(predictions))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no dropout / unsaved-lambda warnings
        for _ in range(2):
            for name in rng.permutation(sorted(points)):
                points[name]()

    after = (
        variables(model),
        seed_states(model),
        node_counts(model),
        compiled_functions(model),
    )
    for got, expected in zip(after[0], before[0], strict=True):
        np.testing.assert_array_equal(got, expected)
    for got, expected in zip(after[1], before[1], strict=True):
        np.testing.assert_array_equal(got, expected)
    assert after[2] == before[2]
    assert all(a is b for a, b in zip(after[3], before[3], strict=True))
    for got, expected in zip(flat_predict(model, x), predictions, strict=True):
        np.testing.assert_array_equal(got, expected)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        used = logged_tags(model, x, tmp_path / "used")
        new = logged_tags(fresh, x, tmp_path / "fresh")
    assert used == new
    assert any(tag.startswith("statistics/sparsity/") for tag in used) == bool(
        getattr(model, "inputs", None)
    )


def test_activation_sparsity_with_no_layer_to_probe_says_so(tmp_path):
    inputs = keras.Input((4,))
    dense = keras.layers.Dense(4, name="shared")
    model = keras.Model(inputs, dense(dense(inputs)))  # called twice
    model.compile(optimizer="adam", loss="mse")
    x = np.ones((2, 4), "float32")
    callback = callbacks.ActivationSparsity(tmp_path, data=x)
    with pytest.raises(ValueError, match="no layer it can probe.*`layers=`"):
        model.fit(x, x, verbose=0, callbacks=[callback])
