"""Weight and gradient histograms and norms, in TensorBoard."""

import numpy as np

from kdrop.backend.gradients import loss_gradient_function
from kdrop.callbacks.base import (
    PeriodicLoggingCallback,
    check_probe_shape,
    probe_batch_xy,
)
from kdrop.callbacks.summary_writer import histogram_from_values


class WeightHistograms(PeriodicLoggingCallback):
    """Logs histograms and L2 norms of every weight and of its gradient.

    At the end of every `every_n_epochs`-th epoch:

        weights/<path>, weight_norm/<path>      every float weight
                                                (trainable or not)
        gradients/<path>, gradient_norm/<path>  d loss / d w on `data`, for
                                                every trainable weight

    `<path>` is the variable's Keras path (e.g. `sequential/dense/kernel`);
    histograms have 30 equal bins between the values' min and max; norms are
    `sqrt(sum(w ** 2))`. The gradient is that of the compiled loss
    (regularization losses included) on the probe batch, in inference mode:
    no dropout noise, and no ScheduledDropout step taken. It is computed by
    backend-specific code in `kdrop.backend.gradients`: a `tf.function`
    with `tf.GradientTape`, `jax.jit(jax.grad(...))` over
    `model.compute_loss_and_updates`, or `torch.autograd.grad`. Keras 3's
    TensorBoard callback logs weights only (`write_grads` was removed:
    tensorflow#31173, #31542).

    Args:
        log_dir: directory; events go to `log_dir/train`.
        every_n_epochs: int > 0, log at the end of every N-th epoch.
        gradients: bool, whether to log gradients (needs `data`).
        data: probe batch with targets: an `(x, y)` tuple or a
            `tf.data.Dataset` of `(x, y)` (its first batch is used).

    Example:

    ```python
    model.fit(x, y, callbacks=[kdrop.callbacks.WeightHistograms(
        "logs/run1", data=(x[:256], y[:256]))])
    ```
    """

    def __init__(self, log_dir, every_n_epochs=1, gradients=True, data=None):
        super().__init__(log_dir, every_n_epochs)
        self.gradients = bool(gradients)
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
            self.x, self.y = probe_batch_xy(data)
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
            check_probe_shape(self.model, self.x)
            if self._gradient_function is None:
                self._gradient_function = loss_gradient_function(self.model)

    def log_epoch(self, epoch):
        for variable in self.model.weights:
            if "float" not in variable.dtype:
                continue  # step counters and other integer state
            self._log_array(
                "weights", "weight_norm", variable.path, variable.numpy(), epoch
            )
        if self.gradients:
            gradients = self._gradient_function(self.x, self.y)
            for variable, gradient in zip(self.model.trainable_variables, gradients):
                self._log_array(
                    "gradients", "gradient_norm", variable.path, gradient, epoch
                )

    def _log_array(self, histogram_prefix, norm_prefix, path, values, step):
        values = np.asarray(values, dtype=np.float64)
        self.writer.histogram(
            f"{histogram_prefix}/{path}", histogram_from_values(values), step
        )
        self.writer.scalar(f"{norm_prefix}/{path}", np.sqrt(np.sum(values**2)), step)
