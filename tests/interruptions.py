"""A callback that stops training the way a crash or Ctrl-C would."""

import keras


class RaiseAtEpoch(keras.callbacks.Callback):
    """Raises `error` when epoch `epoch` begins."""

    def __init__(self, error, epoch):
        super().__init__()
        self.error, self.epoch = error, epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise self.error
