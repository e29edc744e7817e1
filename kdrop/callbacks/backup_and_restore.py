"""Keras's BackupAndRestore, resuming a mid-epoch backup where it was taken.

What the other callbacks learn of a restore is held by the model itself:
while the run goes through the epoch a mid-epoch backup was restored into,
`BackupAndRestore` keeps a `RestoredEpoch(epoch, batches)` in the model's
attribute `RESTORED_EPOCH` ("_kdrop_restored_epoch"); it is None at every
other time. It is set in `on_train_begin` (before the other callbacks'
`on_epoch_begin`, where kdrop's logging callbacks read it through
`restored_batches(self.model, epoch)` to number that epoch's batches as an
uninterrupted run would) and cleared at that epoch's end and in the next
`on_train_begin` / `on_train_end`, so a later `fit` without the callback
never sees it.
"""

import dataclasses
import json
import os

import keras

from kdrop import keras_internals

# The model attribute holding the RestoredEpoch of the current run, or None.
RESTORED_EPOCH = "_kdrop_restored_epoch"


@dataclasses.dataclass(frozen=True)
class RestoredEpoch:
    """A mid-epoch backup restored into `epoch`, whose first `batches`
    batches the backup had trained (they are skipped, not trained)."""

    epoch: int
    batches: int


def restored_batches(model, epoch):
    """How many batches of `epoch` a restored backup had already trained:
    those of the model's `RestoredEpoch` for that epoch, else 0."""
    restored = getattr(model, RESTORED_EPOCH, None)
    return restored.batches if restored and restored.epoch == epoch else 0


class BackupAndRestore(keras.callbacks.BackupAndRestore):
    """`keras.callbacks.BackupAndRestore` that resumes mid-epoch backups
    exactly.

    With an integer `save_freq` Keras backs up after a batch, but restores
    only the weights and the epoch: the resumed run starts that epoch at its
    first batch, so the batches trained before the backup are trained a
    second time (and a backup written by a resumed run before its first
    epoch end records epoch 0). This subclass, after restoring a backup
    taken after batch `b` of epoch `e`, draws batches `0..b` of epoch `e`
    from the data without training on them, so the run continues with batch
    `b + 1` on the data an uninterrupted run would see there: it ends with
    the same weights, optimizer iterations, schedule steps and masks
    (kdrop's layers save their random-number state). kdrop's logging
    callbacks number the steps as an uninterrupted run would and log
    nothing for the skipped batches; steps trained after the last backup
    by the interrupted run are trained and logged again, with the same
    values.

    The data order of every epoch must not depend on the run (`shuffle=False`,
    or a dataset whose shuffle is seeded per epoch), and the same `fit` call
    must be repeated, as Keras requires for its callback. Keras's per-epoch
    metrics (History, the progress bar) of the resumed epoch average over
    the batches trained after the restore only. A skipped batch runs a step
    that trains nothing, put in place by this callback's batch-begin hook
    and taken away by its batch-end hook; if another callback's batch-begin
    hook raises in between, that step stays on the model until this
    callback's next `on_train_begin`: rerun the script (a new model), or
    call `fit` again with the same callback.

    Args:
        backup_dir: directory for the backup, used by this callback alone.
        save_freq: `"epoch"` or an int N: back up after every N trained
            batches.
        double_checkpoint: keep the previous backup too (see Keras's).
        delete_checkpoint: delete the backup when `fit` ends normally.

    Example:

    ```python
    model.fit(x, y, epochs=10, shuffle=False, callbacks=[
        kdrop.callbacks.BackupAndRestore("backup", save_freq=100)])
    # killed at any batch? run the same script again
    ```

    References:
        keras.callbacks.BackupAndRestore:
        https://keras.io/api/callbacks/backup_and_restore/
    """

    def __init__(
        self,
        backup_dir,
        save_freq="epoch",
        double_checkpoint=False,
        delete_checkpoint=True,
    ):
        super().__init__(backup_dir, save_freq, double_checkpoint, delete_checkpoint)
        self._skip_epoch = None
        self._skip_batches = 0
        self._train_function = None

    def on_train_begin(self, logs=None):
        self._stop_skipping()
        super().on_train_begin(logs)
        self._skip_epoch, self._skip_batches = None, 0
        setattr(self.model, RESTORED_EPOCH, None)
        metadata_path = os.path.join(self.backup_dir, "training_metadata.json")
        if self.save_freq == "epoch" or not os.path.exists(metadata_path):
            return
        with open(metadata_path) as file:
            metadata = json.load(file)
        # Backups of an integer save_freq are all written after batch
        # `batch` of epoch `epoch` (Keras's epoch-end backup is for "epoch").
        self._skip_epoch, self._skip_batches = metadata["epoch"], metadata["batch"] + 1
        setattr(
            self.model,
            RESTORED_EPOCH,
            RestoredEpoch(self._skip_epoch, self._skip_batches),
        )

    def _skipping(self, batch):
        return self._current_epoch == self._skip_epoch and batch < self._skip_batches

    def on_epoch_begin(self, epoch, logs=None):
        keras_internals.set_backup_epoch(self, epoch)

    def on_train_batch_begin(self, batch, logs=None):
        if self._skipping(batch):
            self._train_function = self.model.train_function
            self.model.train_function = keras_internals.untrained_step_function(
                self.model
            )

    def _stop_skipping(self):
        if self._train_function is not None:
            self.model.train_function = self._train_function
            self._train_function = None

    def on_train_batch_end(self, batch, logs=None):
        # The model's own step function is put back after every skipped
        # batch, so a run stopped while skipping (Ctrl-C, another
        # callback's error: Keras then calls no end hook) never leaves the
        # model with a step that trains nothing for its next `fit`.
        self._stop_skipping()
        if not self._skipping(batch):  # nothing to back up after a skip
            super().on_train_batch_end(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self._skip_epoch:
            # Read by the logging callbacks when this epoch began; a later
            # `fit` of the model without this callback must not see it.
            setattr(self.model, RESTORED_EPOCH, None)
        super().on_epoch_end(epoch, logs)

    def on_train_end(self, logs=None):
        setattr(self.model, RESTORED_EPOCH, None)
        super().on_train_end(logs)
