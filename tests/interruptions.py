"""Callbacks that stop training the way a crash or Ctrl-C would."""

import keras


class RaiseAtEpoch(keras.callbacks.Callback):
    """Raises `error` when epoch `epoch` begins, or with `at_end=True` when
    it ends (before the epoch-end hooks of the callbacks listed after it)."""

    def __init__(self, error, epoch, at_end=False):
        super().__init__()
        self.error, self.epoch, self.at_end = error, epoch, at_end

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch and not self.at_end:
            raise self.error

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch and self.at_end:
            raise self.error


class RaiseAtStep(keras.callbacks.Callback):
    """Raises `error` when a batch begins with `step` optimizer iterations
    done, or with `at_end=True` when a batch ends with `step` done (after
    the batch-end hooks of the callbacks listed before it)."""

    def __init__(self, error, step, at_end=False):
        super().__init__()
        self.error, self.step, self.at_end = error, step, at_end

    def _raise_at_step(self):
        iterations = keras.ops.convert_to_numpy(self.model.optimizer.iterations)
        if int(iterations) == self.step:
            raise self.error

    def on_train_batch_begin(self, batch, logs=None):
        if not self.at_end:
            self._raise_at_step()

    def on_train_batch_end(self, batch, logs=None):
        if self.at_end:
            self._raise_at_step()
