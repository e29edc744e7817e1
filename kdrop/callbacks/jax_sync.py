"""Reading and writing layer/optimizer state from batch-level hooks.

On the JAX backend, `fit` keeps variable values in its own training state
and writes them back to the Keras variables only at epoch ends. Inside an
epoch, a callback must call `model.jax_state_sync()` first: it refreshes
the variables and makes the trainer re-read them before the next step, so
both reads and assignments take effect (REFERENCE.md, section 5).
"""

import keras


def sync_training_state(model):
    """Makes the model's variables current (a no-op off JAX)."""
    if keras.backend.backend() == "jax" and hasattr(model, "jax_state_sync"):
        model.jax_state_sync()
