"""Each private Keras API kdrop uses, checked on the installed Keras.

A failure here means a Keras release changed the internal named in the
assertion message: update kdrop/keras_internals.py (and the versions its
docstrings name), not the callers.
"""

import keras
import numpy as np
import pytest
from keras import ops

from kdrop import keras_internals
from kdrop.keras_internals import KerasInternalsError

CHANGED = f"Keras {keras.__version__} changed"


def test_direct_sublayers_lists_held_layers_not_their_children():
    attention = keras.layers.MultiHeadAttention(num_heads=1, key_dim=2, dropout=0.1)
    attention(keras.ops.ones((1, 3, 2)), keras.ops.ones((1, 3, 2)))
    sublayers = keras_internals.direct_sublayers(attention)
    assert attention._dropout_layer in sublayers
    assert all(layer is not attention for layer in sublayers)
    block = keras.Sequential([keras.layers.Dense(1)])
    holder = keras.Sequential([block])
    assert keras_internals.direct_sublayers(holder) == [block], (
        f"{CHANGED} Layer._flatten_layers(recursive=False)"
    )


def test_all_sublayers_reaches_every_depth_once():
    inner = keras.Sequential([keras.layers.Dense(2, name="d")], name="inner")
    attention = keras.layers.MultiHeadAttention(num_heads=1, key_dim=2, dropout=0.1)
    inputs = keras.Input((3, 2))
    shared = inner(inputs)
    outputs = keras.layers.Add()([inner(shared), attention(shared, shared)])
    model = keras.Model(inputs, outputs)
    found = keras_internals.all_sublayers(model)
    ids = [id(layer) for layer in found]
    message = f"{CHANGED} Layer._flatten_layers(include_self=False)"
    assert len(ids) == len(set(ids)), message  # `inner` is used twice
    assert model not in found, message
    for expected in (inner, inner.layers[0], attention, attention._dropout_layer):
        assert any(layer is expected for layer in found), message


def test_is_preprocessing_layer():
    message = f"{CHANGED} the package of its preprocessing layers"
    for layer in (
        keras.layers.RandomFlip(),
        keras.layers.Normalization(),
        keras.layers.StringLookup(),
    ):
        assert keras_internals.is_preprocessing_layer(layer), message
    for layer in (keras.layers.Dense(1), keras.layers.Dropout(0.5)):
        assert not keras_internals.is_preprocessing_layer(layer), message


def test_own_seed_generators():
    dropout = keras.layers.Dropout(0.5)
    assert keras_internals.own_seed_generators(dropout) == [dropout.seed_generator]
    assert keras_internals.own_seed_generators(keras.layers.Dense(1)) == []


def test_callback_model_is_the_model_given_to_set_model():
    callback = keras.callbacks.Callback()
    assert keras_internals.callback_model(callback) is None, (
        f"{CHANGED} Callback._model (not None before set_model)"
    )
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    callback.set_model(model)
    assert keras_internals.callback_model(callback) is model, (
        f"{CHANGED} Callback._model"
    )


def test_learning_rate_schedule_is_the_schedule_itself():
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)
    assert keras_internals.learning_rate_schedule(keras.optimizers.Adam(schedule)) is (
        schedule
    ), f"{CHANGED} Optimizer._learning_rate (the schedule)"
    assert keras_internals.learning_rate_schedule(keras.optimizers.SGD(0.1)) is None, (
        f"{CHANGED} Optimizer._learning_rate (a variable for a float rate)"
    )


def test_variable_index_follows_the_build_order():
    variables = [keras.Variable(np.zeros(shape)) for shape in [(2,), (3, 1), ()]]
    optimizer = keras.optimizers.SGD(0.1, momentum=0.9)
    optimizer.build(variables)
    for index, variable in enumerate(variables):
        assert keras_internals.variable_index(optimizer, variable) == index, (
            f"{CHANGED} Optimizer._get_variable_index"
        )
        assert optimizer.momentums[index].shape == variable.shape


def test_batches_applied_counts_accumulated_batches_not_skipped_ones():
    variable = keras.Variable(np.zeros((2,), "float32"))
    accumulating = keras.optimizers.SGD(0.1, gradient_accumulation_steps=3)
    for _ in range(5):
        accumulating.apply([ops.ones((2,), "float32")], [variable])
    assert keras_internals.batches_applied(accumulating) == 5, (
        f"{CHANGED} Optimizer._iterations (every batch under accumulation)"
    )
    assert int(ops.convert_to_numpy(accumulating.iterations)) == 5 // 3
    # Trained with fit: JAX runs a LossScaleOptimizer only inside a traced
    # step. The second of three batches has a non-finite gradient.
    scaled = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.1))
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(scaled, "mse")
    x = np.array([[1.0], [1.0], [np.inf], [1.0], [1.0], [1.0]], "float32")
    model.fit(x, np.ones((6, 1)), batch_size=2, shuffle=False, verbose=0)
    assert keras_internals.batches_applied(scaled) == 2, (
        f"{CHANGED} LossScaleOptimizer skipping its inner optimizer's apply"
    )


def test_first_example_rnn_masks_draws_one_row_and_is_undone():
    cell = keras.layers.LSTMCell(4, dropout=0.5, recurrent_dropout=0.5)
    step_input = ops.ones((3, 5))
    with keras_internals.first_example_rnn_masks(cell):
        cell.reset_dropout_mask()
        masks = keras.tree.flatten(cell.get_dropout_mask(step_input))
    assert masks and all(tuple(mask.shape) == (1, 5) for mask in masks), (
        f"{CHANGED} DropoutRNNCell._create_dropout_mask(step_input, rate)"
    )
    assert "_create_dropout_mask" not in vars(cell)
    cell.reset_dropout_mask()
    assert all(
        tuple(mask.shape) == (3, 5)
        for mask in keras.tree.flatten(cell.get_dropout_mask(step_input))
    )


def test_attention_weights_noise_multiplies_the_weights():
    layer = keras.layers.Attention(dropout=0.5)
    rng = np.random.default_rng(0)
    query, value = (rng.normal(size=(2, 3, 4)).astype("float32") for _ in range(2))
    reference = ops.convert_to_numpy(layer([query, value], training=False))
    # A noise of 2 everywhere doubles the output, in training mode.
    with keras_internals.attention_weights_noise(layer, lambda w: 2 * ops.ones_like(w)):
        doubled = ops.convert_to_numpy(layer([query, value], training=True))
    assert np.allclose(doubled, 2 * reference, rtol=1e-5, atol=1e-6), (
        f"{CHANGED} Attention._apply_scores(scores, value, scores_mask, training)"
    )
    assert "_apply_scores" not in vars(layer)


@pytest.mark.parametrize(
    "function, internal",
    [
        (keras_internals.direct_sublayers, "_flatten_layers"),
        (keras_internals.all_sublayers, "_flatten_layers"),
        (keras_internals.callback_model, "_model"),
        (keras_internals.learning_rate_schedule, "_learning_rate"),
        (lambda obj: keras_internals.variable_index(obj, None), "_get_variable_index"),
        (keras_internals.graph_nodes, "_nodes_by_depth"),
        (keras_internals.inputs_structure, "_inputs_struct"),
        (keras_internals.outputs_structure, "_outputs_struct"),
        (lambda obj: keras_internals.set_backup_epoch(obj, 1), "_current_epoch"),
    ],
)
def test_a_missing_internal_is_named_in_the_error(function, internal):
    class Changed:
        pass

    with pytest.raises(KerasInternalsError) as info:
        function(Changed())
    message = str(info.value)
    assert f"`Changed.{internal}`" in message and keras.__version__ in message


def test_functional_graph_nodes_and_structures():
    inputs = {"a": keras.Input((2,), name="a"), "b": keras.Input((3,), name="b")}
    dense = keras.layers.Dense(1)
    outputs = [dense(keras.layers.Concatenate()([inputs["a"], inputs["b"]]))]
    functional = keras.Model(inputs, outputs)
    assert keras_internals.functional_graph(functional) is functional
    assert keras_internals.inputs_structure(functional) == inputs
    assert keras_internals.outputs_structure(functional) == outputs
    operations = [node.operation for node in keras_internals.graph_nodes(functional)]
    assert dense in operations

    sequential = keras.Sequential([keras.layers.Dense(1)])
    assert keras_internals.functional_graph(sequential) is None  # not built
    sequential.build((None, 2))
    graph = keras_internals.functional_graph(sequential)
    assert graph is not None and graph is not sequential

    class Subclassed(keras.Model):
        def call(self, x):
            return x

    assert keras_internals.functional_graph(Subclassed()) is None


def test_inbound_nodes_give_a_nested_models_tensors_in_the_outer_graph():
    block = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)], name="block")
    inputs = keras.Input((2,))
    outputs = block(inputs)
    (node,) = keras_internals.inbound_nodes(block)
    assert node.input_tensors == [inputs], f"{CHANGED} Node.input_tensors"
    assert node.output_tensors == [outputs], f"{CHANGED} Node.output_tensors"
    assert keras_internals.inbound_nodes(keras.layers.Dense(1)) == []


class TrainFrom(keras.callbacks.Callback):
    """Sets `untrained_step_function` as the train function for the batches
    before `first`, the real one from batch `first` on."""

    def __init__(self, first):
        super().__init__()
        self.first, self.real = first, None

    def on_train_batch_begin(self, batch, logs=None):
        if batch == 0:
            self.real = self.model.train_function
            self.model.train_function = keras_internals.untrained_step_function(
                self.model
            )
        if batch == self.first:
            self.model.train_function = self.real


def test_untrained_step_function_draws_batches_without_training():
    x = np.random.default_rng(0).normal(size=(32, 3)).astype("float32")
    y = x @ np.array([[1.0], [-2.0], [0.5]], dtype="float32")

    def fitted(data, extra):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        model.compile(keras.optimizers.SGD(0.1), "mse")
        model.fit(*data, batch_size=8, shuffle=False, verbose=0, callbacks=extra)
        return model

    skipped = fitted((x, y), [TrainFrom(2)])
    expected = fitted((x[16:], y[16:]), [])  # the last two batches alone
    assert int(keras.ops.convert_to_numpy(skipped.optimizer.iterations)) == 2
    for got, want in zip(skipped.get_weights(), expected.get_weights()):
        np.testing.assert_array_equal(got, want)


def test_set_backup_epoch_is_the_epoch_keras_records_in_a_backup(tmp_path):
    backup = keras.callbacks.BackupAndRestore(tmp_path, save_freq=1)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    backup.set_model(model)
    keras_internals.set_backup_epoch(backup, 3)
    backup.on_train_batch_end(0)
    metadata = (tmp_path / "training_metadata.json").read_text()
    assert '"epoch": 3' in metadata, CHANGED


def test_graph_walking_internals_on_a_residual_graph_with_an_op():
    inputs = keras.Input((4,), name="x")
    dense = keras.layers.Dense(4, name="branch")
    branch = dense(inputs)
    added = inputs + branch  # keras.ops.add's Operation in the graph
    outputs = keras.layers.Dense(2, name="head")(added)
    model = keras.Model(inputs, outputs)
    args, kwargs = keras_internals.first_call_arguments(dense)
    assert args[0] is inputs and kwargs == {}
    assert keras_internals.first_call_arguments(keras.layers.Dense(1)) is None
    nodes = keras_internals.nodes_in_call_order(model)
    names = [getattr(node.operation, "name", None) for node in nodes]
    assert names[0] == "branch" and names[-1] == "head" and len(names) == 3
    (add_node,) = [
        node for node in nodes if keras_internals.is_add_operation(node.operation)
    ]
    assert not keras_internals.is_add_operation(keras.layers.Add())
    assert keras_internals.producer_node(added) is add_node
    assert keras_internals.producer_node(branch).operation is dense
    assert keras_internals.producer_node(keras.ops.ones((2,))) is None


def test_call_nodes_keeping_call_nodes_and_detached_copy():
    inputs = keras.Input((3,))
    dense = keras.layers.Dense(2, name="d")
    model = keras.Model(inputs, keras.ops.tanh(dense(inputs)))
    operations = keras_internals.model_operations(model)
    assert dense in operations
    tanh = [op for op in operations if keras_internals.keras_op_name(op) == "Tanh"]
    assert len(tanh) == 1 and not keras_internals.is_layer(tanh[0])
    assert [len(nodes) for nodes in keras_internals.call_nodes(dense)] == [1, 1]
    with keras_internals.keeping_call_nodes(model):
        other = keras.Model(inputs, dense(inputs))
        assert len(keras_internals.call_nodes(dense)[0]) == 2
    assert [len(nodes) for nodes in keras_internals.call_nodes(dense)] == [1, 1]
    np.testing.assert_allclose(  # a model built inside the block still runs
        other.predict(np.ones((1, 3)), verbose=0),
        ops.convert_to_numpy(dense(np.ones((1, 3)))),
        rtol=1e-6,
    )
    copy = keras_internals.detached_copy(dense)
    assert copy.kernel is dense.kernel and copy.name == dense.name
    assert keras_internals.call_nodes(copy) == ([], [])
    copy(inputs)
    assert len(keras_internals.call_nodes(dense)[0]) == 1


def test_keeping_seed_states_and_the_global_generator():
    layer = keras.layers.Dropout(0.5, seed=1)
    layer.build((2, 3))
    start = ops.convert_to_numpy(layer.seed_generator.state).copy()
    generator = keras_internals.global_seed_generator()
    global_start = ops.convert_to_numpy(generator.state).copy()
    with keras_internals.keeping_seed_states(layer):
        layer(np.ones((2, 3)), training=True)
        keras.random.uniform((2,))  # unseeded: the global generator
    np.testing.assert_array_equal(
        ops.convert_to_numpy(layer.seed_generator.state), start
    )
    np.testing.assert_array_equal(ops.convert_to_numpy(generator.state), global_start)
    assert keras_internals.applications_stochastic_depth().__name__ == "StochasticDepth"
