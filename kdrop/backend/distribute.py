"""kdrop under `tf.distribute`: distinct masks per replica, one log writer.

Under `tf.distribute.MirroredStrategy` a layer's `SeedGenerator` state is a
mirrored variable: every replica reads the same seed, so Keras's own Dropout
draws the SAME mask on every replica (measured with Keras 3.15: identical
masks on two replicas), which makes the replicas' dropout noise perfectly
correlated. `ReplicaSeedGenerator` offsets the drawn seed by the replica
index. It does nothing on other backends or outside a distribution strategy.

Under `tf.distribute.MultiWorkerMirroredStrategy` every worker runs the
same script, callbacks included; `writes_logs` tells them whether this
worker is the one whose event files are kept (the chief).
"""

import keras
from keras import ops

# A prime, so that replica offsets never line up with user seeds that differ
# by small integers.
_REPLICA_SEED_STRIDE = 1_000_003


def replica_index():
    """Index of the `tf.distribute` replica being traced, or None.

    None outside a strategy, in cross-replica context, and on backends other
    than TensorFlow.
    """
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    if not tf.distribute.has_strategy() or tf.distribute.in_cross_replica_context():
        return None
    return tf.distribute.get_replica_context().replica_id_in_sync_group


def writes_logs(model):
    """Whether this process's callbacks should write `model`'s logs.

    False only on a worker other than the chief of a multi-worker
    `tf.distribute` run (the strategy's `extended.should_checkpoint`, the
    test Keras 2's TensorBoard and ModelCheckpoint made); True on one
    process, on other backends and outside a strategy.
    """
    strategy = getattr(model, "distribute_strategy", None)  # TensorFlow only
    return strategy is None or strategy.extended.should_checkpoint


class ReplicaSeedGenerator(keras.random.SeedGenerator):
    """A `SeedGenerator` whose draws differ between `tf.distribute` replicas.

    The state (and so saving, loading and determinism) is exactly that of
    `keras.random.SeedGenerator`; only the seed handed to the random op is
    offset by `replica_index * 1000003`.
    """

    def next(self, ordered=True):
        seed = super().next(ordered=ordered)
        replica = replica_index()
        if replica is None:
            return seed
        offset = ops.cast(replica, seed.dtype) * _REPLICA_SEED_STRIDE
        return seed + ops.stack([offset, ops.zeros_like(offset)])
