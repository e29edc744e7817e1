"""Reading and writing layer/optimizer state from batch-level hooks.

On the JAX backend, `fit` keeps variable values in its own training state
and writes them back to the Keras variables only at epoch ends. Inside an
epoch, `model.jax_state_sync()` refreshes the variables and makes the
trainer re-read them before the next step, so both reads and assignments
take effect. Keras 3.15 also syncs whenever a callback reads `self.model`;
measured there, an assignment through an optimizer reference kept elsewhere
is ignored until the epoch ends. The explicit call keeps batch-level hooks
right on every Keras 3 release.
"""

import keras


def sync_training_state(model):
    """Makes the model's variables current (a no-op off JAX)."""
    if keras.backend.backend() == "jax" and hasattr(model, "jax_state_sync"):
        model.jax_state_sync()
