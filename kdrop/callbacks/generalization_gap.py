"""Validation minus training loss and metrics, in TensorBoard."""

from kdrop.callbacks.base import LoggingCallback

VALIDATION_PREFIX = "val_"


def gaps(logs):
    """{name: logs["val_<name>"] - logs[name]} for the loss and every
    metric of Keras's epoch-end `logs` that has a validation value."""
    return {
        name: float(logs[VALIDATION_PREFIX + name]) - float(logs[name])
        for name in logs
        if not name.startswith(VALIDATION_PREFIX) and VALIDATION_PREFIX + name in logs
    }


class GeneralizationGap(LoggingCallback):
    """Logs `generalization_gap/<metric>`, validation minus training value.

    At each epoch end, for the loss and every compiled metric that `fit`
    also evaluated on `validation_data` (the `val_<metric>` entries of the
    epoch's logs):

        generalization_gap/<metric> = val_<metric> - <metric>

    at step = epoch index, the step of Keras's own `epoch_<metric>` curves.
    The training value is Keras's: the mean over the epoch's batches in
    training mode, dropout on, as `History` holds it. The gap of the loss
    grows when the model overfits; that of an accuracy gets more negative.
    Without `validation_data` nothing is written.

    With `keras.callbacks.TensorBoard(log_dir)` in the same `fit`, the
    CUSTOM SCALARS "Dropout" category draws the training and validation
    `epoch_loss` and accuracy curves on one chart each, next to the gap.

    Args:
        log_dir: directory; events go to `log_dir/train`.

    Example:

    ```python
    model.fit(x, y, validation_data=(x_val, y_val), epochs=20, callbacks=[
        keras.callbacks.TensorBoard("logs/run1"),
        kdrop.callbacks.GeneralizationGap("logs/run1")])
    ```
    """

    def dashboard_charts(self):
        return ("epoch_loss", "epoch_accuracy", "generalization_gap")

    def on_epoch_end(self, epoch, logs=None):
        for name, gap in gaps(logs or {}).items():
            self.write_scalar(f"generalization_gap/{name}", gap, epoch)
        super().on_epoch_end(epoch, logs)
