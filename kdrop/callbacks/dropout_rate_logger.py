"""The dropout rate of every dropout layer, in TensorBoard."""

from kdrop.callbacks.base import LoggingCallback, check_update_freq, dropout_layers
from kdrop.callbacks.jax_sync import sync_training_state
from kdrop.layers import ScheduledDropout


def _rate(layer):
    if isinstance(layer, ScheduledDropout):
        return layer.current_rate
    return float(layer.rate)


class DropoutRateLogger(LoggingCallback):
    """Logs `dropout_rate/<layer>` for every dropout layer of the model.

    ScheduledDropout layers log their current rate (it changes as training
    goes); InvertedDropout, WeightScaledDropout and Keras's Dropout /
    SpatialDropout layers log their fixed rate.

    - `update_freq="batch"` (or an int N): the rate each training step
      uses, at that step's global batch index (every N-th batch).
    - `update_freq="epoch"`: at each epoch end, at step = epoch index, the
      rate the next training step will use.

    Args:
        log_dir: directory; events go to `log_dir/train`.
        update_freq: `"epoch"`, `"batch"` or an int N (every N batches).

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

    def _log(self, step):
        for layer in dropout_layers(self.model):
            self.writer.scalar(f"dropout_rate/{layer.name}", _rate(layer), step)

    def on_train_batch_begin(self, batch, logs=None):
        if self._every_n_batches and self._global_step % self._every_n_batches == 0:
            sync_training_state(self.model)
            self._log(self._global_step)
            self.writer.flush()  # a run that stops mid-epoch keeps them

    def on_epoch_end(self, epoch, logs=None):
        if self._every_n_batches is None:
            self._log(epoch)
        super().on_epoch_end(epoch, logs)
