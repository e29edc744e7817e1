"""The dropout rate of every dropout layer, in TensorBoard."""

import keras

from kdrop.backend.jax_sync import sync_training_state
from kdrop.callbacks.base import (
    MASKING_DROPOUT,
    LoggingCallback,
    check_update_freq,
    dropout_layers,
)
from kdrop.layers import BaseDropout

# Every layer with a dropout `rate`: kdrop's, keras.layers.Dropout and
# SpatialDropout*, and Keras's multiplicative-noise dropouts.
RATE_LAYERS = MASKING_DROPOUT + (
    keras.layers.GaussianDropout,
    keras.layers.AlphaDropout,
)


def _rate(layer):
    if isinstance(layer, BaseDropout):
        return layer.current_rate
    return float(layer.rate)


class DropoutRateLogger(LoggingCallback):
    """Logs `dropout_rate/<layer>` for every dropout layer of the model.

    ScheduledDropout layers log their current rate (it changes as training
    goes); InvertedDropout, WeightScaledDropout and Keras's Dropout,
    SpatialDropout*, GaussianDropout and AlphaDropout log their fixed rate.

    - `update_freq="epoch"`: at each epoch end, at step = epoch index, the
      rate the next training step will use.
    - `update_freq="batch"` or an int N: before a training step, at its
      global batch index, the rate that step uses (every step, or the first
      step of each block of N). With `steps_per_execution` k > 1 Keras calls
      batch hooks once per k steps, so a value is logged at most once per k.

    On JAX, per-batch logging calls `model.jax_state_sync()` first (JAX's
    `fit` copies layer variables back only at epoch ends), which costs one
    device-to-host sync per logged step.

    Args:
        log_dir: directory; events go to `log_dir/train`.
        update_freq: `"epoch"`, `"batch"` or an int N > 0 (every N batches).

    Example:

    ```python
    model.fit(x, y, callbacks=[kdrop.callbacks.DropoutRateLogger(
        "logs/run1", update_freq="batch")])
    ```
    """

    def __init__(self, log_dir, update_freq="epoch"):
        super().__init__(log_dir)
        self.update_freq = update_freq
        self._every_n_batches = check_update_freq(update_freq)
        self._next_logged_step = 0

    def _log(self, step):
        for layer in dropout_layers(self.model, RATE_LAYERS):
            self.writer.scalar(f"dropout_rate/{layer.name}", _rate(layer), step)
        self.flush_writes()

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._next_logged_step = 0

    def on_train_batch_begin(self, batch, logs=None):
        if self._every_n_batches is None:
            return
        step = self.global_step(batch)
        if step >= self._next_logged_step:
            sync_training_state(self.model)
            self._log(step)
            n = self._every_n_batches
            self._next_logged_step = (step // n + 1) * n

    def on_epoch_end(self, epoch, logs=None):
        if self._every_n_batches is None:
            self._log(epoch)
        super().on_epoch_end(epoch, logs)
