"""Validation minus training loss and metrics, in TensorBoard."""

from kdrop.callbacks.base import LoggingCallback
from kdrop.tensorboard import dashboard

VALIDATION_PREFIX = "val_"


def gap_name(metric):
    """The gap's name for Keras's log entry `metric`: an accuracy-type
    metric (its name holds "accuracy") is turned into an error in
    percentage points, "accuracy" becoming "error_%"
    (`sparse_categorical_accuracy` -> `sparse_categorical_error_%`); any
    other name is kept."""
    return metric.replace("accuracy", "error_%")


# The charts of the curves Keras's TensorBoard callback writes.
KERAS_CHARTS = ("epoch_loss", "epoch_accuracy")


def _measured_both_ways(logs):
    """The names in Keras's epoch-end `logs` that also have a `val_` value."""
    return [
        name
        for name in logs
        if not name.startswith(VALIDATION_PREFIX) and VALIDATION_PREFIX + name in logs
    ]


def gaps(logs):
    """{gap_name(name): gap} for the loss and every metric of Keras's
    epoch-end `logs` that has a validation value: `logs["val_<name>"] -
    logs[name]`, in the metric's units, except for an accuracy-type metric:
    the error gap in percentage points, `100 * (logs[name] -
    logs["val_<name>"])`."""
    result = {}
    for name in _measured_both_ways(logs):
        gap = float(logs[VALIDATION_PREFIX + name]) - float(logs[name])
        if "accuracy" in name:
            # Error = 1 - accuracy: its gap is minus the accuracy's, in %.
            gap = -100 * gap
        result[gap_name(name)] = gap
    return result


class GeneralizationGap(LoggingCallback):
    """Logs `gap/validation_minus_train/<metric>`, held-out minus training.

    At each epoch end, for the loss and every compiled metric that `fit`
    also evaluated on `validation_data` (the `val_<metric>` entries of the
    epoch's logs), at step = epoch index (the step of Keras's own
    `epoch_<metric>` curves):

        gap/validation_minus_train/loss     = val_loss - loss
        gap/validation_minus_train/error_%  = 100 * (accuracy - val_accuracy)
        gap/validation_minus_train/<metric> = val_<metric> - <metric>

    One definition throughout: held-out minus training, so a positive gap
    means the model does worse on data it was not trained on. An
    accuracy-type metric (its name holds "accuracy", e.g.
    `sparse_categorical_accuracy`) is logged as the gap of its error,
    `1 - accuracy`, in percentage points, under its name with "accuracy"
    replaced by "error_%"; the loss and the other metrics keep their names
    and units. The training value is Keras's: the mean over the epoch's
    batches in training mode, dropout on, as `History` holds it. Without
    `validation_data` nothing is written.

    With `keras.callbacks.TensorBoard(log_dir)` in the same `fit`, the
    CUSTOM SCALARS category "Train vs validation, per seed" draws the
    training and validation `epoch_loss` and accuracy curves on one chart
    each, next to the gap.

    Args:
        log_dir: directory; events go to `log_dir/train`.

    Example:

    ```python
    model.fit(x, y, validation_data=(x_val, y_val), epochs=20, callbacks=[
        keras.callbacks.TensorBoard("logs/run1"),
        kdrop.callbacks.GeneralizationGap("logs/run1")])
    ```
    """

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        for name, gap in gaps(logs).items():
            self.write_scalar(f"gap/validation_minus_train/{name}", gap, epoch)
        # Keras's TensorBoard callback writes `epoch_<metric>` to the train and
        # validation runs: the chart drawing both joins the dashboard with the
        # first gap of its metric.
        keras_tags = [f"epoch_{name}" for name in _measured_both_ways(logs)]
        self.add_dashboard_charts(
            [
                chart
                for chart in KERAS_CHARTS
                if any(dashboard.CHARTS[chart].matches(tag) for tag in keras_tags)
            ]
        )
        super().on_epoch_end(epoch, logs)
