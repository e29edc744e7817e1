"""Weight and gradient histograms and norms, in TensorBoard."""

import keras
import numpy as np

from kdrop import keras_internals, layer_paths, validation
from kdrop.backend.gradients import loss_gradient_function
from kdrop.callbacks.base import (
    PeriodicLoggingCallback,
    build_for_probe,
    check_probe_shape,
    probe_batch_xy,
    run_probe_once,
)
from kdrop.tensorboard.writer import histogram_from_values


def weight_tags(model):
    """`{id(variable): tag}` for every weight of `model`: the model's name,
    the path (`kdrop.layer_paths.walk`) of the innermost layer holding the
    variable, and the variable's name, e.g. `"cnn/encoder/dense/kernel"`.

    Unlike Keras's `variable.path`, which repeats when two nested models
    built by one helper share a name, layer paths are unique."""
    # Variables the model holds itself, outside any layer.
    tags = {id(v): f"{model.name}/{v.name}" for v in model.weights}
    # walk lists parents before their sub-layers: the innermost holder
    # of a variable is written last.
    for path, layer in layer_paths.walk(model):
        for variable in layer.weights:
            tags[id(variable)] = f"{model.name}/{path}/{variable.name}"
    return tags


def _first_examples(data, count):
    """The first `count` examples of every array in `data` (an array, or a
    list, tuple or dict of arrays, as `fit` takes them); all of them when
    `count` is None or `data` is None."""
    if count is None or data is None:
        return data
    return keras.tree.map_structure(lambda array: array[:count], data)


def _is_kernel(variable):
    # Kernels, recurrent kernels and embeddings are matrices or larger;
    # biases, scales and BatchNormalization statistics are vectors.
    return len(variable.shape) >= 2


class WeightHistograms(PeriodicLoggingCallback):
    """Logs histograms and L2 norms of the weights and of their gradients.

    At the end of every `every_n_epochs`-th epoch and of the fit's last
    epoch, for the chosen weights (`variables`: by default the kernels,
    i.e. every float weight with 2 or more dimensions: Dense and
    convolution kernels, recurrent kernels, embeddings; `"all"`: every
    float weight, biases and normalization statistics included):

        value_histograms/weights/<path>    each chosen weight (trainable
        statistics/weight_norm/<path>      or not)
        value_histograms/gradients/<path>  d loss / d w on `data`, for each
        statistics/gradient_norm/<path>    chosen trainable weight

    `<path>` is the model's name, the layer's path from
    `kdrop.layer_paths.walk` and the variable's name
    (`sequential/dense/kernel`, `model/encoder/dense/kernel` for a nested
    model): unique even where nested models repeat layer names, which
    Keras's own `variable.path` does not guarantee. Histograms have 30 equal
    bins between the values' min and max; norms are `sqrt(sum(w ** 2))`.
    The gradient is that of the compiled loss (regularization losses
    included) on the first `gradient_probe_size` examples of the probe
    batch (one training batch's worth: 128 by default), in inference mode:
    no dropout noise, and no schedule step taken. One batch, because that
    is the size of the gradient the optimizer applies at each step: a
    gradient on more examples is a smoother estimate than any step ever
    sees, and costs a forward and backward pass of each of them at every
    logged epoch. Keras 3 does not tell callbacks the batch size (a fit's
    `params` hold `verbose`, `epochs` and `steps` only), so pass the fit's
    `batch_size` as `gradient_probe_size` when it is not 128. It is computed by
    backend-specific code in `kdrop.backend.gradients`: a `tf.function`
    with `tf.GradientTape`, `jax.jit(jax.grad(...))` over
    `model.compute_loss_and_updates`, or `torch.autograd.grad`. Keras 3's
    TensorBoard callback logs weights only (`write_grads` was removed:
    tensorflow#31173, #31542).

    Args:
        log_dir: directory; events go to `log_dir/train`.
        every_n_epochs: int > 0, log at the end of every N-th epoch
            and of the fit's last epoch.
        gradients: bool, whether to log gradients (needs `data`).
        variables: `"kernels"` (weights with 2 or more dimensions) or
            `"all"` (every float weight).
        data: probe batch with targets: an `(x, y)` tuple or a
            `tf.data.Dataset` of `(x, y)` (its first batch is used). `x` and
            `y` are what `model.fit(x, y)` takes: lists or dicts of arrays
            for several inputs or outputs.
        gradient_probe_size: int > 0, the number of probe examples, from
            the first, whose gradient is logged (default 128: set it to the
            fit's `batch_size`); None for the whole probe. A probe smaller
            than this is used whole.
        histograms: bool, whether to log the histograms
            (`value_histograms/...`); False logs the norms only (one card
            per tag in TensorBoard's TIME SERIES, where histograms get one
            card per run and tag).

    With `gradients=True` the gradient is computed once in the first
    `on_train_begin` for a model, so a probe the model or its loss cannot
    take fails there with a `ValueError`, before the first training step;
    later `fit` calls of the same model reuse that check.

    Example:

    ```python
    model.fit(x, y, callbacks=[kdrop.callbacks.WeightHistograms(
        "logs/run1", data=(x[:256], y[:256]))])
    ```
    """

    def __init__(
        self,
        log_dir,
        every_n_epochs=1,
        gradients=True,
        data=None,
        variables="kernels",
        histograms=True,
        gradient_probe_size=128,
    ):
        super().__init__(log_dir, every_n_epochs)
        if gradient_probe_size is not None:
            gradient_probe_size = validation.check_int(
                gradient_probe_size,
                "gradient_probe_size",
                "a positive int (the fit's batch size) or None (the whole probe)",
                minimum=1,
            )
        self.gradient_probe_size = gradient_probe_size
        self.gradients = bool(gradients)
        self.histograms = validation.check_bool(histograms, "histograms")
        self.variables = validation.check_choice(
            variables, "variables", ("kernels", "all")
        )
        self.x = self.y = None
        self._gradient_function = None
        if self.gradients:
            if data is None:
                raise ValueError(
                    "`data` must be an (x, y) probe batch when "
                    "gradients=True (the gradient of the loss needs "
                    "targets). Received: data=None; pass data=(x, y) or "
                    "gradients=False."
                )
            self.x, self.y = (
                _first_examples(part, gradient_probe_size)
                for part in probe_batch_xy(data)
            )
            if self.y is None:
                raise ValueError(
                    "`data` must hold targets, as an (x, y) tuple or a "
                    "dataset of (x, y), when gradients=True. Received "
                    "inputs only."
                )

    def forget_model(self):
        self._gradient_function = None

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.gradients:
            build_for_probe(self.model, self.x)
            check_probe_shape(self.model, self.x)
            if self._gradient_function is None:
                self._gradient_function = loss_gradient_function(self.model)
                # Once per model: later fits of the same model would only
                # repeat the check, at the cost of a gradient each.
                run_probe_once(self, self.model, self._gradients)

    def _gradients(self):
        # The model's random state is as before (a recurrent layer draws
        # its masks in inference mode too).
        with keras_internals.keeping_seed_states(self.model):
            return self._gradient_function(self.x, self.y)

    def _chosen(self, variable):
        return self.variables == "all" or _is_kernel(variable)

    def log_epoch(self, epoch):
        tags = weight_tags(self.model)
        for variable in self.model.weights:
            # Integer weights are step counters and other state.
            if "float" in variable.dtype and self._chosen(variable):
                self._log_array(
                    "weights",
                    "weight_norm",
                    tags[id(variable)],
                    variable.numpy(),
                    epoch,
                )
        if self.gradients:
            gradients = self._gradients()
            for variable, gradient in zip(self.model.trainable_variables, gradients):
                if self._chosen(variable):
                    self._log_array(
                        "gradients",
                        "gradient_norm",
                        tags[id(variable)],
                        gradient,
                        epoch,
                    )

    def _log_array(self, histogram_prefix, norm_prefix, path, values, step):
        values = np.asarray(values, dtype=np.float64)
        if self.histograms:
            self.write_histogram(
                f"value_histograms/{histogram_prefix}/{path}",
                histogram_from_values(values),
                step,
            )
        self.write_scalar(
            f"statistics/{norm_prefix}/{path}", np.sqrt(np.sum(values**2)), step
        )
