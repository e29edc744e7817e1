"""Activation sparsity, means and histograms of every layer, in TensorBoard."""

import keras
import numpy as np
from keras import ops

from kdrop import keras_internals, validation
from kdrop.backend.histogram import HISTOGRAM_SUPPORTS_XLA, histogram_counts
from kdrop.callbacks.base import (
    PeriodicLoggingCallback,
    check_probe_shape,
    dropout_layers,
    probe_batch_xy,
)
from kdrop.callbacks.summary_writer import HISTOGRAM_BINS, histogram_from_counts
from kdrop.layers import BaseDropout

# Layout of the statistics vector each probe output holds.
_SPARSITY, _MEAN, _NONFINITE, _LOW, _HIGH = range(5)
_COUNTS = slice(5, 5 + HISTOGRAM_BINS)


class _ActivationStats(keras.layers.Layer):
    """Reduces a tensor to [sparsity, mean, non-finite fraction, min, max,
    histogram counts...] over its finite values, on the device."""

    def __init__(self, threshold, **kwargs):
        super().__init__(**kwargs)
        self.threshold = threshold
        # Keeps Keras's jit_compile="auto" (XLA on a GPU) off the probe
        # where the histogram kernel has no XLA version.
        self.supports_jit = HISTOGRAM_SUPPORTS_XLA

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
        return self._statistics(
            x, inactive / size, total / size, 0.0, ops.min(x), ops.max(x)
        )

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
        low = ops.min(ops.where(finite, x, ops.max(safe)))
        high = ops.max(ops.where(finite, x, low))
        # Non-finite values are binned at `low` (the first bin), then taken
        # out of that bin again.
        statistics = self._statistics(
            ops.where(finite, x, low),
            inactive / finite_count,
            ops.sum(safe) / finite_count,
            nonfinite_count / size,
            low,
            high,
        )
        first_bin = ops.one_hot(_COUNTS.start, _COUNTS.stop, dtype="float32")
        return statistics - nonfinite_count * first_bin

    def _statistics(self, values, sparsity, mean, nonfinite, low, high):
        high = ops.where(high > low, high, low + 1.0)  # constant activations
        counts = histogram_counts(values, low, high, HISTOGRAM_BINS)
        summary = ops.stack(
            [sparsity, mean, ops.convert_to_tensor(nonfinite, "float32"), low, high]
        )
        return ops.concatenate([summary, counts])


class _DroppedFraction(keras.layers.Layer):
    """Fraction of a dropout layer's non-zero inputs it zeroes in one
    training-mode draw (ScheduledDropout's step is not advanced)."""

    def __init__(self, dropout_layer, **kwargs):
        super().__init__(**kwargs)
        self.dropout_layer = dropout_layer

    def call(self, x):
        if isinstance(self.dropout_layer, BaseDropout):
            y = self.dropout_layer.sample(x)
        else:
            y = self.dropout_layer.call(x, training=True)
        nonzero = ops.not_equal(x, 0)
        dropped = ops.logical_and(nonzero, ops.equal(y, 0))
        total = ops.maximum(ops.sum(ops.cast(nonzero, "float32")), 1.0)
        return ops.sum(ops.cast(dropped, "float32")) / total


def _check_layer_choice(layers):
    if isinstance(layers, (str, keras.layers.Layer)):
        layers = [layers]
    if not hasattr(layers, "__iter__") or not all(
        isinstance(item, (str, keras.layers.Layer)) for item in layers
    ):
        raise TypeError(
            "`layers` must be None or a list of layer names or layers. "
            f"Received: layers={layers!r}."
        )
    return list(layers)


def _single_output(layer):
    try:
        output = layer.output
    except (AttributeError, ValueError):
        return None
    return output if isinstance(output, keras.KerasTensor) else None


class ActivationSparsity(PeriodicLoggingCallback):
    """Logs how sparse each layer's activations are, to TensorBoard.

    At the end of every `every_n_epochs`-th epoch, on a fixed probe batch,
    in inference mode, for every chosen layer's output `a`:

        sparsity/<layer>           = mean(a <= threshold)
        mean_activation/<layer>    = mean(a)
        activations/<layer>        = histogram of a: 30 equal bins between
                                     the layer's min and max
        nonfinite_fraction/<layer> = fraction of NaN/Inf values (left out of
                                     the three above; training goes on)

    and for dropout layers (kdrop's, `keras.layers.Dropout` and
    `SpatialDropout*`) also `dropped_fraction/<layer>`: the fraction of the
    layer's non-zero inputs that one training-mode draw zeroes (kdrop layers
    draw with `layer.sample(x)`, so a ScheduledDropout's step is not
    advanced). All layers are reduced on the device in ONE compiled call of
    a probe model `keras.Model(model.inputs, [statistics per layer])`, which
    returns only the 35 numbers per layer; it is built once and reused by
    later `fit` calls.

    Works with Functional and Sequential models (a Sequential model without
    `keras.Input` is probed from its first epoch end on, once built);
    subclassed models have no layer graph to probe and get a clear error.

    Args:
        log_dir: directory; events go to `log_dir/train`.
        data: probe batch: an array (a dict or list of arrays for several
            inputs), an `(x, y)` tuple, or a `tf.data.Dataset` (its first
            batch is used; targets are ignored).
        layers: None (every top-level layer with one tensor output), or a
            list of layer names or layers (nested models' layers included).
        threshold: float, activations `<= threshold` count as inactive.
        histograms: bool, whether to log activation histograms.
        every_n_epochs: int > 0, log at the end of every N-th epoch.

    Example:

    ```python
    model.fit(x, y, epochs=5, callbacks=[
        kdrop.callbacks.ActivationSparsity("logs/run1", data=x[:256])])
    # tensorboard --logdir logs/run1: SCALARS sparsity/..., HISTOGRAMS activations/...
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
    ):
        super().__init__(log_dir, every_n_epochs)
        self.x, _ = probe_batch_xy(data)
        self.layer_choice = None if layers is None else _check_layer_choice(layers)
        self.threshold = validation.check_number(
            threshold, "threshold", "a number, not NaN"
        )
        self.histograms = bool(histograms)
        self._probe = None

    def _chosen_layers(self):
        if self.layer_choice is None:
            return [
                layer
                for layer in self.model.layers
                if not isinstance(layer, keras.layers.InputLayer)
                and _single_output(layer) is not None
            ]
        in_model = keras_internals.all_sublayers(self.model)
        chosen = []
        for item in self.layer_choice:
            if isinstance(item, str):
                matches = [layer for layer in in_model if layer.name == item]
                layer = matches[0] if matches else None
            else:
                layer = item if any(item is known for known in in_model) else None
            if layer is None:
                raise ValueError(
                    f"`layers` entry {item!r} is not a layer of model "
                    f"'{self.model.name}'."
                )
            if _single_output(layer) is None:
                raise ValueError(
                    f"`layers` entry {item!r}: layer '{layer.name}' has no "
                    "single tensor output in this model (it is used several "
                    "times or returns several tensors)."
                )
            chosen.append(layer)
        return chosen

    def _build_probe(self):
        check_probe_shape(self.model, self.x)
        self._layers = self._chosen_layers()
        self._dropouts = [
            layer for layer in dropout_layers(self.model) if layer in self._layers
        ]
        outputs = [
            _ActivationStats(self.threshold)(_single_output(layer))
            for layer in self._layers
        ]
        outputs += [_DroppedFraction(layer)(layer.input) for layer in self._dropouts]
        self._probe = keras.Model(self.model.inputs, outputs)

    def forget_model(self):
        self._probe = None

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self._probe is not None:
            return
        if getattr(self.model, "inputs", None):
            self._build_probe()
        elif not (isinstance(self.model, keras.Sequential) and not self.model.built):
            raise ValueError(
                "ActivationSparsity needs a Functional or Sequential model "
                "(its layer outputs are read through the model's graph). "
                f"Received a subclassed {type(self.model).__name__}."
            )
        # A Sequential model without keras.Input is built by its first
        # training step (on TensorFlow): the probe is then built at the
        # first epoch end.

    def log_epoch(self, epoch):
        if self._probe is None:
            self._build_probe()
        results = keras.tree.flatten(self._probe.predict_on_batch(self.x))
        results = [np.asarray(keras.ops.convert_to_numpy(r)) for r in results]
        for layer, stats in zip(self._layers, results):
            name = layer.name
            self.writer.scalar(f"sparsity/{name}", stats[_SPARSITY], epoch)
            self.writer.scalar(f"mean_activation/{name}", stats[_MEAN], epoch)
            self.writer.scalar(f"nonfinite_fraction/{name}", stats[_NONFINITE], epoch)
            if self.histograms and stats[_NONFINITE] < 1.0:
                edges = np.linspace(stats[_LOW], stats[_HIGH], HISTOGRAM_BINS + 1)
                self.writer.histogram(
                    f"activations/{name}",
                    histogram_from_counts(edges, stats[_COUNTS]),
                    epoch,
                )
        for layer, fraction in zip(self._dropouts, results[len(self._layers) :]):
            self.writer.scalar(f"dropped_fraction/{layer.name}", fraction, epoch)
