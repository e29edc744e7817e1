"""The dropout rate of every dropout layer, in TensorBoard."""

from kdrop import layer_paths, registry
from kdrop.backend.jax_sync import sync_training_state
from kdrop.callbacks.base import LoggingCallback, check_update_freq


def rated_layers(model):
    """`[(path, layer)]` for every layer of `model` (nested ones included)
    that the registry gives a drop rate."""
    return [
        (path, layer)
        for path, layer in layer_paths.walk(model)
        if registry.current_rate(layer) is not None
    ]


class DropoutRateLogger(LoggingCallback):
    """Logs the drop rate of every dropout layer of the model.

    Every layer `kdrop.registry` knows as dropout-like and gives a rate is
    logged, wherever it sits: inside nested models, inside other layers
    (MultiHeadAttention's attention dropout, a custom block's Dropout) and
    recurrent layers (their `dropout`, or `recurrent_dropout` when only that
    is set). `<path>` is the layer's path from `kdrop.layer_paths.walk`
    (`"encoder/drop"`; a top-level layer's path is its name), so two nested
    models with the same layer names never share a tag. A layer whose rate
    follows a schedule (any kdrop layer given a schedule as its rate,
    `ScheduledDropout` included) logs its current rate, which changes as
    training goes, ConcreteDropout its learned rate, the others their fixed
    rate.

    - At epoch ends: `rates/dropout/<path>` at step = epoch index (the
      axis of Keras's `epoch_loss`), the rate the next training step will
      use.
    - With `update_freq="batch"` or an int N, also before a training step:
      `rates/dropout_per_batch/<path>` at step = the 0-based global batch
      index of that step, the rate it uses (every step, or the first step
      of each block of N). Keras's own `batch_*` and
      `evaluation_*_vs_iterations` curves count the steps done (1-based):
      their step s is our step s - 1. With `steps_per_execution` k > 1
      Keras calls batch hooks once per k steps, so a value is logged at
      most once per k.

    A rate is written only where it says something
    (`LoggingCallback.write_scalar_if_changing`): a rate that stays fixed
    during the `fit` (a plain `Dropout(0.5)`) is written once, at the first
    epoch end, and has no per-batch series. From the first time a rate
    changes (a schedule, ConcreteDropout's learned rate, a rate set by
    another callback) it is written at every epoch end and every logged
    step, the unchanged value of the logged step or epoch before the change
    first, so the chart shows the change where it happened.

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
        self._layers = []

    def _log(self, family, step, write_first):
        for path, layer in self._layers:
            rate = float(registry.current_rate(layer))
            self.write_scalar_if_changing(f"{family}/{path}", rate, step, write_first)
        self.flush_writes()

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._layers = rated_layers(self.model)
        self._next_logged_step = 0

    def on_train_batch_begin(self, batch, logs=None):
        super().on_train_batch_begin(batch, logs)
        if self._every_n_batches is None:
            return
        step = self.global_step(batch)
        if step >= self._next_logged_step and not self.is_restored_step(step):
            sync_training_state(self.model)
            self._log("rates/dropout_per_batch", step, write_first=False)
            n = self._every_n_batches
            self._next_logged_step = (step // n + 1) * n

    def on_epoch_end(self, epoch, logs=None):
        self._log("rates/dropout", epoch, write_first=True)
        super().on_epoch_end(epoch, logs)
