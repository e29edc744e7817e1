"""The random state of every kdrop layer that draws noise, in one place.

`SeededNoise` owns a layer's seed, its seed generator and the draws made
from it, and saves the generator's state with the layer's weights. Keras
saves no `SeedGenerator` state, so without it a layer restored by
`load_weights`, `load_model` or `kdrop.callbacks.BackupAndRestore` would
replay the masks of a fresh layer with the same seed and diverge from an
uninterrupted run.
"""

from kdrop import validation
from kdrop.backend.distribute import ReplicaSeedGenerator
from kdrop.backend.masks import keep_mask
from kdrop.backend.noise import standard_normal, uniform

# The key of the generator's state among the layer's saved variables, as
# written by every kdrop version that saved it.
SEED_STATE_KEY = "seed_generator_state"


class SeededNoise:
    """Mixin for a `keras.layers.Layer` that draws random noise, placed
    before the Keras layer class in the bases.

    The layer calls `self._init_seed(seed)` in its `__init__`, after
    `Layer.__init__`, and draws with `_keep_mask`, `_standard_normal` and
    `_uniform`: each draw advances the generator once. The generator is
    created even when the layer's rate is 0, so a rate that grows later (a
    schedule) has its random state and saved files always hold the same
    entries. Under `tf.distribute` each replica draws different noise
    (`kdrop.backend.distribute.ReplicaSeedGenerator`).

    The generator's state is saved with the layer's own variables under
    `"seed_generator_state"` and restored by `load_own_variables`; a file
    without it (written by another library) loads and leaves the state as
    it is.

    Attributes:
        seed: None or the int the layer was given.
        seed_generator: the layer's `keras.random.SeedGenerator`.
    """

    def _init_seed(self, seed):
        self.seed = validation.check_seed(seed)
        self.seed_generator = ReplicaSeedGenerator(self.seed)

    def _keep_mask(self, shape, keep_prob):
        """Boolean mask of `shape`, True with probability `keep_prob` (a
        Python float or a float scalar tensor)."""
        return keep_mask(shape, keep_prob, self.seed_generator)

    def _standard_normal(self, shape):
        """float32 N(0, 1) noise of `shape`."""
        return standard_normal(shape, self.seed_generator)

    def _uniform(self, shape):
        """float32 U(0, 1) noise of `shape`."""
        return uniform(shape, self.seed_generator)

    def save_own_variables(self, store):
        super().save_own_variables(store)
        store[SEED_STATE_KEY] = self.seed_generator.state

    def load_own_variables(self, store):
        if SEED_STATE_KEY in store:
            self.seed_generator.state.assign(store[SEED_STATE_KEY])
        # Keras's loaders check that the store holds exactly the layer's own
        # variables, so they get it without the seed state. `keys()`: Keras
        # 3.15's H5IOStore has no `__iter__`.
        super().load_own_variables(
            {key: store[key] for key in store.keys() if key != SEED_STATE_KEY}  # noqa: SIM118
        )

    def get_config(self):
        config = super().get_config()
        config["seed"] = self.seed
        return config
