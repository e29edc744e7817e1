"""Callbacks that stop training the way a crash or Ctrl-C would."""

import keras


class RaiseAtEpoch(keras.callbacks.Callback):
    """Raises `error` when epoch `epoch` begins."""

    def __init__(self, error, epoch):
        super().__init__()
        self.error, self.epoch = error, epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise self.error


class RaiseAtStep(keras.callbacks.Callback):
    """Raises `error` before training step `step` (optimizer iterations)."""

    def __init__(self, error, step):
        super().__init__()
        self.error, self.step = error, step

    def on_train_batch_begin(self, batch, logs=None):
        iterations = keras.ops.convert_to_numpy(self.model.optimizer.iterations)
        if int(iterations) == self.step:
            raise self.error
