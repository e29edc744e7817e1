"""Activation sparsity, means and histograms of every layer, in TensorBoard."""

import keras
import numpy as np
from keras import ops

from kdrop import keras_internals, layer_paths, registry, validation
from kdrop.backend.histogram import HISTOGRAM_SUPPORTS_XLA, histogram_counts
from kdrop.callbacks.base import (
    PeriodicLoggingCallback,
    build_for_probe,
    check_probe_shape,
    probe_batch_xy,
    run_probe_once,
)
from kdrop.tensorboard.writer import HISTOGRAM_BINS, histogram_from_counts

# Layout of the statistics vector each probe output holds.
_SPARSITY, _MEAN, _NONFINITE, _LOW, _HIGH = range(5)
_COUNTS = slice(5, 5 + HISTOGRAM_BINS)


class _ActivationStats(keras.layers.Layer):
    """Reduces a tensor to [sparsity, mean, non-finite fraction] over its
    finite values, on the device; with `histogram`, followed by [min, max,
    histogram counts...]."""

    def __init__(self, threshold, histogram=True, **kwargs):
        super().__init__(**kwargs)
        self.threshold = threshold
        # The min, max and histogram cost three times as much as the rest
        # (the histogram alone is 60 % of a large layer's statistics), so
        # only layers whose histogram is logged compute them.
        self.histogram = histogram
        # Keeps Keras's jit_compile="auto" (XLA on a GPU) off the probe
        # where the histogram kernel has no XLA version.
        self.supports_jit = HISTOGRAM_SUPPORTS_XLA or not histogram

    def call(self, x):
        x = ops.reshape(ops.cast(x, "float32"), (-1,))
        total = ops.sum(x)
        # A finite sum means no NaN/Inf: the usual case needs five passes
        # over x, the masked statistics about three times as many.
        return ops.cond(
            ops.isfinite(total),
            lambda: self._all_finite(x, total),
            lambda: self._finite_values_only(x),
        )

    def _all_finite(self, x, total):
        size = ops.cast(ops.size(x), "float32")
        inactive = ops.sum(ops.cast(ops.less_equal(x, self.threshold), "float32"))
        summary = [inactive / size, total / size, ops.zeros((), "float32")]
        if not self.histogram:
            return ops.stack(summary)
        return self._with_histogram(x, summary, ops.min(x), ops.max(x))

    def _finite_values_only(self, x):
        finite = ops.isfinite(x)
        size = ops.cast(ops.size(x), "float32")
        nonfinite_count = size - ops.sum(ops.cast(finite, "float32"))
        finite_count = ops.maximum(size - nonfinite_count, 1.0)
        safe = ops.where(finite, x, 0.0)
        inactive = ops.sum(
            ops.cast(
                ops.logical_and(finite, ops.less_equal(x, self.threshold)), "float32"
            )
        )
        summary = [
            inactive / finite_count,
            ops.sum(safe) / finite_count,
            nonfinite_count / size,
        ]
        if not self.histogram:
            return ops.stack(summary)
        low = ops.min(ops.where(finite, x, ops.max(safe)))
        high = ops.max(ops.where(finite, x, low))
        # Non-finite values are binned at `low` (the first bin), then taken
        # out of that bin again.
        statistics = self._with_histogram(ops.where(finite, x, low), summary, low, high)
        first_bin = ops.one_hot(_COUNTS.start, _COUNTS.stop, dtype="float32")
        return statistics - nonfinite_count * first_bin

    def _with_histogram(self, values, summary, low, high):
        high = ops.where(high > low, high, low + 1.0)  # constant activations
        counts = histogram_counts(values, low, high, HISTOGRAM_BINS)
        return ops.concatenate([ops.stack(summary + [low, high]), counts])


class _TrainingDraw(keras.layers.Layer):
    """One training-mode draw of a dropout-like layer on its input
    (`kdrop.registry.sample`: no schedule step taken)."""

    def __init__(self, dropout_layer, **kwargs):
        super().__init__(**kwargs)
        self.dropout_layer = dropout_layer

    def call(self, x):
        return registry.sample(self.dropout_layer, x)


class _DroppedFraction(keras.layers.Layer):
    """Fraction of a dropout layer's non-zero inputs `x` that are 0 in its
    training-mode output `y`."""

    def call(self, inputs):
        x, y = inputs
        nonzero = ops.not_equal(x, 0)
        dropped = ops.logical_and(nonzero, ops.equal(y, 0))
        total = ops.maximum(ops.sum(ops.cast(nonzero, "float32")), 1.0)
        return ops.sum(ops.cast(dropped, "float32")) / total


def _drawn_in_training_mode(layer):
    """Whether `layer`'s statistics come from a training-mode draw: a
    dropout-like layer whose inference output is its input (inverted
    dropout) or a scaled copy (weight-scaled dropout), which would repeat
    the input layer's statistics or halve them."""
    return registry.zeroes_units(layer) or registry.inference_kind(layer) in (
        registry.IDENTITY,
        registry.SCALE_BY_KEEP,
    )


def _output_activation(layer):
    """The activation applied last in `layer`'s output: a `Softmax`
    layer's softmax, else its `activation` attribute (Dense, Conv,
    `Activation`, ...), or None."""
    if isinstance(layer, keras.layers.Softmax):
        return keras.activations.softmax
    return getattr(layer, "activation", None)


def constant_statistics(layer, threshold):
    """The statistics of `layer`'s output that its activation fixes, whatever
    the weights: `"mean_activation"` for a softmax (the mean over the class
    axis is 1 / classes, so the mean of all outputs is too) and
    `"sparsity"` for a softmax or sigmoid with `threshold <= 0` (its outputs
    are > 0 unless they underflow)."""
    activation = _output_activation(layer)
    softmax = activation is keras.activations.softmax
    positive = softmax or activation is keras.activations.sigmoid
    constant = set()
    if softmax:
        constant.add("mean_activation")
    if positive and threshold <= 0:
        constant.add("sparsity")
    return constant


def _input_structure(model):
    """A graph model's inputs as it takes them: a Functional model's own
    structure (`model.input`: a dict of inputs stays a dict, keyed as Keras
    matches a dict of arrays), a Sequential model's list `model.inputs`."""
    if isinstance(model, keras.Sequential):
        return model.inputs
    return model.input


def _check_layer_choice(layers, name="layers", allowed="None"):
    if isinstance(layers, (str, keras.layers.Layer)):
        layers = [layers]
    if not hasattr(layers, "__iter__") or not all(
        isinstance(item, (str, keras.layers.Layer)) for item in layers
    ):
        raise TypeError(
            f"`{name}` must be {allowed} or a list of layer paths or layers. "
            f"Received: {name}={layers!r}."
        )
    return list(layers)


_HISTOGRAM_CHOICES = (
    "True (the layers feeding a dropout layer or the last layer), False, 'all'"
)


def _check_histograms(histograms):
    if isinstance(histograms, bool) or histograms == "all":
        return histograms
    if isinstance(histograms, str):
        raise ValueError(
            f"`histograms` must be {_HISTOGRAM_CHOICES} or a list of layer "
            f"paths or layers. Received: histograms={histograms!r}."
        )
    return _check_layer_choice(histograms, "histograms", _HISTOGRAM_CHOICES)


def _feeding_layers(model):
    """Names of the top-level layers whose output feeds a dropout layer or
    the model's last layer (the classifier's input), looked for behind
    pass-through and dropout layers, which repeat their input."""
    graph = keras_internals.functional_graph(model)
    nodes = keras_internals.graph_nodes(graph)
    producers = {id(t): node for node in nodes for t in node.output_tensors}

    def source(tensor):
        node = producers.get(id(tensor))
        while (
            node is not None
            and node.input_tensors
            and (
                isinstance(node.operation, registry.PASS_THROUGH)
                or _drawn_in_training_mode(node.operation)
            )
        ):
            node = producers.get(id(node.input_tensors[0]))
        return node

    fed = [
        node.input_tensors[0]
        for node in nodes
        if node.input_tensors and _drawn_in_training_mode(node.operation)
    ]
    for output in graph.outputs:
        last = source(output)
        if last is not None:
            fed += last.input_tensors
    return {
        node.operation.name
        for node in map(source, fed)
        if node is not None and node.input_tensors
    }


def _single_node(model, layer):
    """The one call of `layer` in `model`'s own graph, when it has one
    tensor output; else None. Calls of `layer` in other graphs do not count
    (`kdrop.mc_predict`'s sampling model calls every layer again)."""
    graph = keras_internals.functional_graph(model)
    nodes = [
        node for node in keras_internals.graph_nodes(graph) if node.operation is layer
    ]
    if len(nodes) != 1 or len(nodes[0].output_tensors) != 1:
        return None
    return nodes[0]


def _has_graph(layer):
    return isinstance(layer, keras.Model) and bool(getattr(layer, "inputs", None))


def _tensors_in(model, names, path, prefix=""):
    """`[input, output]` of the layer at `names` (a path split on "/")
    below `model`, as tensors of `model`'s own graph: a layer of a nested
    model is reached by calling, in the outer graph, a model from the
    nested model's inputs to that layer's tensors."""
    layer = model.get_layer(names[0])
    node = _single_node(model, layer)
    if node is None:
        raise ValueError(
            f"`layers` entry {path!r}: layer '{layer.name}' has no single "
            "tensor output in its model (it is used several times or "
            "returns several tensors)."
        )
    if len(names) == 1:
        return [node.input_tensors[0], node.output_tensors[0]]
    if not _has_graph(layer):
        raise ValueError(
            f"`layers` entry {path!r} is inside layer '{layer.name}' "
            f"({type(layer).__name__}), which has no layer graph to read it "
            "from: ActivationSparsity reads layers of Functional and "
            "Sequential models, nested ones included. Pass "
            f"{prefix + names[0]!r} itself instead."
        )
    inner_tensors = _tensors_in(layer, names[1:], path, f"{prefix}{names[0]}/")
    inner = keras.Model(layer.inputs, inner_tensors)
    return inner(node.input_tensors)


class ActivationSparsity(PeriodicLoggingCallback):
    """Logs how sparse each layer's activations are, to TensorBoard.

    At the end of every `every_n_epochs`-th epoch and of the fit's last
    epoch, on a fixed probe batch, for every chosen layer's output `a` in
    inference mode:

        statistics/sparsity/<path>           mean(a <= threshold)
        statistics/mean_activation/<path>    mean(a)
        value_histograms/activations/<path>  histogram of a: 30 equal bins
                                             between the layer's min and max
                                             (the layers of `histograms`)
        statistics/nonfinite_fraction/<path> fraction of NaN/Inf values (left
                                             out of the three above;
                                             training goes on), written only
                                             where non-zero, and as 0 at the
                                             probe before it becomes
                                             non-zero and where it returns
                                             to zero: a run without NaN/Inf
                                             has no such tag

    Statistics that a layer's activation fixes whatever the weights are
    left out (unless `constant_statistics=True`): `mean_activation` of a
    softmax output (its mean over the class axis is 1 / classes), and
    `sparsity` of a softmax or sigmoid output when `threshold <= 0` (its
    values are > 0 unless they underflow). The activation is read from the
    layer (`keras.layers.Softmax`, or an `activation` attribute that is
    `keras.activations.softmax` / `sigmoid`: Dense, Conv, `Activation`),
    not from its name.

    A dropout-like layer whose inference output is its input (inverted
    dropout, Keras's Dropout and GaussianDropout) or a scaled copy of it
    (weight-scaled dropout) would only repeat, or halve, its input layer's
    statistics: its `a` is instead one training-mode draw of the layer on
    its inference-mode input (`kdrop.registry.sample`, which never
    advances a scheduled rate's step), so `statistics/sparsity/<path>` of a
    Dropout(p) after a ReLU is about `s + (1 - s) * p` for the ReLU's
    sparsity `s`. Dropout layers that zero units (kdrop's,
    `keras.layers.Dropout` and `SpatialDropout*`:
    `kdrop.registry.zeroes_units`) also log `statistics/dropped_fraction/<path>`: the
    fraction of the layer's non-zero inputs that this draw zeroes. The
    layer's random-number state is put back after the draw, so logging
    never changes the masks training draws.

    `<path>` is the layer's path from `kdrop.layer_paths.walk`: its name
    for a top-level layer, `"encoder/drop"` for layer "drop" of nested
    model "encoder", so nested models with the same layer names never share
    a tag. All layers are
    reduced on the device in ONE compiled call of a probe model
    `keras.Model(model.inputs, [statistics per layer])`, which returns only
    3 numbers per layer (35 for a layer with a histogram: only those
    compute the min, max and bin counts); it is built once and reused by
    later `fit` calls.

    Every check runs in `on_train_begin`, before the first training step:
    the probe model is built and run once on `data` (a Sequential model
    without `keras.Input` is first built from the probe's shape), so a probe
    the model cannot take, or a layer it cannot read, fails there with a
    `ValueError`. Works with Functional and Sequential models and the
    Functional/Sequential models nested in them; subclassed models (and
    layers inside custom layers) have no layer graph to probe and get a
    clear error.

    Args:
        log_dir: directory; events go to `log_dir/train`.
        data: probe batch: the inputs (an array, a LIST of arrays with one
            per model input, or a dict of arrays by input name), an `(x,)`
            or `(x, y)` TUPLE (targets are ignored), or a `tf.data.Dataset`
            (its first batch is used, by the same rule). A list is always
            read as the inputs, never as `(x, y)`.
        layers: None (every top-level layer with one tensor output except
            the pass-through layers of `kdrop.registry.PASS_THROUGH`: Flatten, Reshape,
            Permute, RepeatVector, Identity, ActivityRegularization, whose
            statistics repeat their input layer's), or a list of layers or
            layer paths (`"encoder/drop"`; a top-level layer's path is its
            name), layers of nested models included; a layer named here is
            always logged.
        threshold: float, activations `<= threshold` count as inactive.
        histograms: which layers get `value_histograms/activations/<path>`:
            True (default: the top-level layers feeding each dropout layer and the input
            of the model's last layer, i.e. the classifier's input, looked
            for behind pass-through and dropout layers), `"all"` (every
            logged layer), a list of layers or layer paths among the
            logged ones, or False (none).
        every_n_epochs: int > 0, log at the end of every N-th epoch
            and of the fit's last epoch.
        constant_statistics: bool, whether to also log the statistics that
            a softmax or sigmoid output fixes (see above); default False.

    Example:

    ```python
    model.fit(x, y, epochs=5, callbacks=[
        kdrop.callbacks.ActivationSparsity("logs/run1", data=x[:256])])
    # tensorboard --logdir logs/run1: statistics/sparsity/...,
    # value_histograms/activations/...
    ```

    References:
        - Srivastava et al. 2014, section 7.2 and Fig. 8 (dropout makes
          hidden activations sparse).
    """

    def __init__(
        self,
        log_dir,
        data,
        layers=None,
        threshold=0.0,
        histograms=True,
        every_n_epochs=1,
        constant_statistics=False,
    ):
        super().__init__(log_dir, every_n_epochs)
        self.constant_statistics = validation.check_bool(
            constant_statistics, "constant_statistics"
        )
        self.x, _ = probe_batch_xy(data)
        self.layer_choice = None if layers is None else _check_layer_choice(layers)
        self.threshold = validation.check_number(
            threshold, "threshold", "a number, not NaN"
        )
        self.histograms = _check_histograms(histograms)
        self._probe = None

    def _chosen_paths(self):
        """`[(path, layer)]` of the layers to log, in the model's order."""
        if self.layer_choice is None:
            return [
                (layer.name, layer)
                for layer in self.model.layers
                if not isinstance(
                    layer, (keras.layers.InputLayer, *registry.PASS_THROUGH)
                )
                and _single_node(self.model, layer) is not None
            ]
        return layer_paths.resolve(self.model, self.layer_choice, "layers")

    def _histogram_paths(self):
        """The logged paths that get an activation histogram."""
        if self.histograms is True:
            return set(self._paths) & _feeding_layers(self.model)
        if self.histograms is False:
            return set()
        if self.histograms == "all":
            return set(self._paths)
        chosen = layer_paths.resolve(self.model, self.histograms, "histograms")
        paths = {path for path, _ in chosen}
        if not paths <= set(self._paths):
            raise ValueError(
                f"`histograms` entries {sorted(paths - set(self._paths))} are "
                f"not among the logged layers {self._paths}: add them to "
                "`layers`."
            )
        return paths

    def _build_probe(self):
        chosen = self._chosen_paths()
        if not chosen:
            raise ValueError(
                f"ActivationSparsity: model '{self.model.name}' has no layer "
                "it can probe: every top-level layer is an InputLayer, a "
                "pass-through layer or a layer called several times (or "
                "returning several tensors). Name the layers to log in "
                "`layers=`."
            )
        # The probe calls the model's layers on its tensors; it leaves no
        # call node on them.
        with keras_internals.keeping_call_nodes(self.model):
            self._build_probe_model(chosen)

    def _build_probe_model(self, chosen):
        tensors = [_tensors_in(self.model, path.split("/"), path) for path, _ in chosen]
        self._paths = [path for path, _ in chosen]
        # {path: statistics not logged}: those its activation fixes.
        self._omitted = {
            path: set()
            if self.constant_statistics
            else constant_statistics(layer, self.threshold)
            for path, layer in chosen
        }
        self._histograms = self._histogram_paths()
        self._dropout_paths = []
        outputs, dropped = [], []
        for (path, layer), (layer_input, layer_output) in zip(chosen, tensors):
            if _drawn_in_training_mode(layer):
                layer_output = _TrainingDraw(layer)(layer_input)
                if registry.zeroes_units(layer):
                    self._dropout_paths.append(path)
                    dropped.append(_DroppedFraction()([layer_input, layer_output]))
            outputs.append(
                _ActivationStats(self.threshold, path in self._histograms)(layer_output)
            )
        outputs += dropped
        # The model's own input structure, so the probe takes what the
        # model takes.
        self._probe = keras.Model(_input_structure(self.model), outputs)

    def forget_model(self):
        self._probe = None

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        # (epoch, {path: (fraction, written)}) of this fit's last probe;
        # None before its first probe.
        self._last_nonfinite = None
        if self._probe is not None:
            return
        build_for_probe(self.model, self.x)
        if not getattr(self.model, "inputs", None):
            raise ValueError(
                "ActivationSparsity needs a Functional or Sequential model "
                "(its layer outputs are read through the model's graph). "
                f"Received a subclassed {type(self.model).__name__}."
            )
        check_probe_shape(self.model, self.x)
        self._build_probe()
        # Runs once now, so that a probe the model cannot take fails here,
        # before the first training step, not at the first epoch end.
        run_probe_once(self, self.model, self._run_probe)

    def _run_probe(self):
        # The training-mode draws advance the layers' own seed states; they
        # are put back, so that logging never changes the masks
        # training draws (nor a resumed run, which probes once more in
        # on_train_begin, its masks).
        # (Every layer's: a recurrent layer draws its masks in inference
        # mode too.)
        with keras_internals.keeping_seed_states(self.model):
            results = keras.tree.flatten(self._probe.predict_on_batch(self.x))
        return [np.asarray(keras.ops.convert_to_numpy(r)) for r in results]

    def _log_nonfinite(self, results, epoch):
        """Writes `statistics/nonfinite_fraction/<path>` while it is non-zero,
        the zero of the probe where it returns to zero, and the unwritten
        zero of the probe before a non-zero value, so that the chart's line
        rises and falls at the probes where it changed; a layer that never
        had a NaN/Inf gets no tag."""
        last_epoch, last = self._last_nonfinite or (None, {})
        current = {}
        for path, stats in zip(self._paths, results):
            tag, fraction = (
                f"statistics/nonfinite_fraction/{path}",
                float(stats[_NONFINITE]),
            )
            last_fraction, last_written = last.get(path, (None, True))
            if fraction > 0 and not last_written:
                self.write_scalar(tag, last_fraction, last_epoch)
            written = fraction > 0 or bool(last_fraction)
            if written:
                self.write_scalar(tag, fraction, epoch)
            current[path] = (fraction, written)
        self._last_nonfinite = (epoch, current)

    def log_epoch(self, epoch):
        results = self._run_probe()
        # First, as it may write at the previous probe's step.
        self._log_nonfinite(results, epoch)
        for path, stats in zip(self._paths, results):
            for name, index in (("sparsity", _SPARSITY), ("mean_activation", _MEAN)):
                if name not in self._omitted[path]:
                    self.write_scalar(f"statistics/{name}/{path}", stats[index], epoch)
            if path in self._histograms and stats[_NONFINITE] < 1.0:
                edges = np.linspace(stats[_LOW], stats[_HIGH], HISTOGRAM_BINS + 1)
                self.write_histogram(
                    f"value_histograms/activations/{path}",
                    histogram_from_counts(edges, stats[_COUNTS]),
                    epoch,
                )
        for path, fraction in zip(self._dropout_paths, results[len(self._paths) :]):
            self.write_scalar(f"statistics/dropped_fraction/{path}", fraction, epoch)
