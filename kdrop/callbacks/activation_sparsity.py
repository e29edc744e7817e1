"""Activation sparsity, means and histograms of every layer, in TensorBoard."""

import math
import numbers

import keras
import numpy as np
from keras import ops

from kdrop import validation
from kdrop.callbacks.base import (
    LoggingCallback,
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

    def call(self, x):
        x = ops.reshape(ops.cast(x, "float32"), (-1,))
        finite = ops.isfinite(x)
        finite_f = ops.cast(finite, "float32")
        count = ops.maximum(ops.sum(finite_f), 1.0)
        safe = ops.where(finite, x, 0.0)
        at_most = ops.logical_and(finite, ops.less_equal(x, self.threshold))
        sparsity = ops.sum(ops.cast(at_most, "float32")) / count
        mean = ops.sum(safe) / count
        size = ops.cast(ops.size(x), "float32")
        nonfinite = (size - ops.sum(finite_f)) / size
        low = ops.min(ops.where(finite, x, ops.max(safe)))
        high = ops.max(ops.where(finite, x, low))
        width = ops.maximum(high - low, 1e-12)
        bins = ops.floor((safe - low) / width * HISTOGRAM_BINS)
        bins = ops.cast(ops.clip(bins, 0, HISTOGRAM_BINS - 1), "int32")
        counts = ops.segment_sum(finite_f, bins, num_segments=HISTOGRAM_BINS)
        summary = ops.stack([sparsity, mean, nonfinite, low, high])
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


def _single_output(layer):
    try:
        output = layer.output
    except (AttributeError, ValueError):
        return None
    return output if isinstance(output, keras.KerasTensor) else None


class ActivationSparsity(LoggingCallback):
    """Logs how sparse each layer's activations are, to TensorBoard.

    On a fixed probe batch, in inference mode, for every chosen layer:

        sparsity/<layer>          = mean(a <= threshold)
        mean_activation/<layer>   = mean(a)
        activations/<layer>       = histogram of a (30 bins)
        nonfinite_fraction/<layer>= fraction of NaN/Inf (they are excluded
                                    from the statistics above)

    and for dropout layers (kdrop's and Keras's) also
    `dropped_fraction/<layer>`: the fraction of the layer's non-zero inputs
    that one training-mode draw zeroes. All layers are reduced in ONE
    compiled probe call that returns only these numbers and the histogram
    counts. ScheduledDropout's step is not advanced by the probe.

    Args:
        log_dir: directory; events go to `log_dir/train`.
        data: probe batch: an array, an `(x, y)` tuple, or a
            `tf.data.Dataset` (its first batch is used).
        layers: None (every layer with one tensor output), or a list of
            layer names or layers.
        threshold: float, activations `<= threshold` count as inactive.
        histograms: bool, whether to log activation histograms.
        every_n_epochs: int > 0, log at the end of every N-th epoch.

    Example:

    ```python
    model.fit(x, y, epochs=5, callbacks=[
        kdrop.callbacks.ActivationSparsity("logs/run1", data=x[:256])])
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
        super().__init__(log_dir)
        if (
            isinstance(threshold, bool)
            or not isinstance(threshold, numbers.Real)
            or math.isnan(threshold)
        ):
            raise ValueError(
                f"`threshold` must be a number. Received: threshold={threshold!r}."
            )
        self.x, _ = probe_batch_xy(data)
        self.layer_choice = None if layers is None else list(layers)
        self.threshold = float(threshold)
        self.histograms = bool(histograms)
        self.every_n_epochs = validation.check_positive_int(
            every_n_epochs, "every_n_epochs"
        )
        self._probe = None

    def _chosen_layers(self):
        if self.layer_choice is None:
            return [
                layer
                for layer in self.model.layers
                if not isinstance(layer, keras.layers.InputLayer)
                and _single_output(layer) is not None
            ]
        chosen = []
        for item in self.layer_choice:
            layer = self.model.get_layer(item) if isinstance(item, str) else item
            if _single_output(layer) is None:
                raise ValueError(
                    f"`layers` entry {item!r}: layer '{layer.name}' has no "
                    "single tensor output in this model (it is used several "
                    "times or returns several tensors)."
                )
            chosen.append(layer)
        return chosen

    def _build_probe(self):
        if not getattr(self.model, "inputs", None):
            raise ValueError(
                "ActivationSparsity needs a Functional or Sequential model "
                "with known inputs (start a Sequential model with "
                f"keras.Input). Received a {type(self.model).__name__}."
            )
        self._layers = self._chosen_layers()
        dropouts = [
            layer for layer in dropout_layers(self.model) if layer in self._layers
        ]
        outputs = [
            _ActivationStats(self.threshold)(_single_output(layer))
            for layer in self._layers
        ]
        outputs += [_DroppedFraction(layer)(layer.input) for layer in dropouts]
        self._dropouts = dropouts
        self._probe = keras.Model(self.model.inputs, outputs)

    def on_train_begin(self, logs=None):
        check_probe_shape(self.model, self.x)
        super().on_train_begin(logs)
        self._build_probe()

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every_n_epochs == 0:
            self._log(epoch)
        super().on_epoch_end(epoch, logs)

    def _log(self, epoch):
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
        for layer, fraction in zip(self._dropouts, results[len(self._layers):]):
            self.writer.scalar(f"dropped_fraction/{layer.name}", fraction, epoch)
