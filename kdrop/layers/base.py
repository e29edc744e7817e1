"""What every kdrop dropout layer shares: masks, `noise_shape`, conventions.

The mask comes from `kdrop.layers.seeded.SeededNoise` (the fastest exact
generator of each backend, its state saved with the layer's weights) and is
applied with `where`, not with `keras.random.dropout`: that function tests
`rate == 1.0` in Python, so it cannot take a rate held in a variable or
computed in-graph (a rate that follows a schedule needs both).
"""

import keras
from keras import ops

from kdrop import validation
from kdrop.layers.seeded import SeededNoise

INVERTED = "inverted"
WEIGHT_SCALED = "weight_scaled"
MODES = (INVERTED, WEIGHT_SCALED)


def _check_noise_shape(noise_shape):
    if noise_shape is None:
        return None
    if isinstance(noise_shape, (str, bytes)) or not hasattr(noise_shape, "__iter__"):
        raise TypeError(
            "`noise_shape` must be None or a tuple of positive ints or None "
            f"entries. Received: noise_shape={noise_shape!r}."
        )
    noise_shape = tuple(noise_shape)
    for dim in noise_shape:
        if dim is None:
            continue
        if not validation.is_integer(dim):
            raise TypeError(
                "`noise_shape` entries must be positive ints or None. "
                f"Received: noise_shape={noise_shape!r}, with an entry of "
                f"type {type(dim).__name__}."
            )
        if dim <= 0:
            raise ValueError(
                "`noise_shape` entries must be positive ints or None. "
                f"Received: noise_shape={noise_shape!r}."
            )
    # Plain ints, so the config stays JSON-serializable with numpy entries.
    return tuple(None if dim is None else int(dim) for dim in noise_shape)


class BaseDropout(SeededNoise, keras.layers.Layer):
    """Base class of kdrop's dropout layers.

    Subclasses set `mode` (one of `"inverted"`, `"weight_scaled"`),
    implement `_rate_tensor()`, the rate used by the next call (usually
    through the `kdrop.layers.rate.ScheduledRate` mixin: a number or a
    schedule), and end their `__init__` with
    `self._build_at_construction()`. In training mode the output is
    `x * mask / keep_prob` (inverted) or `x * mask` (weight-scaled); in
    inference mode it is `x` (inverted) or `x * keep_prob` (weight-scaled),
    with `mask ~ Bernoulli(keep_prob)`. The seed, the masks and the saving
    of their random state are `kdrop.layers.seeded.SeededNoise`'s.

    Args:
        noise_shape: None, or a tuple with one entry per input axis; an entry
            of 1 shares the mask along that axis, `None` takes the input's
            size.
        seed: None or an int; the same seed gives the same masks.
        **kwargs: base layer keyword arguments (`name`, `dtype`, ...).
    """

    mode = INVERTED

    def __init__(self, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.noise_shape = _check_noise_shape(noise_shape)
        self._init_seed(seed)
        self.supports_masking = True

    def _rate_tensor(self):
        raise NotImplementedError

    @property
    def current_rate(self):
        """The rate (a Python float) the next training-mode call will use."""
        return float(ops.convert_to_numpy(self._rate_tensor()))

    @property
    def keep_prob(self):
        """Probability of keeping a unit, `1 - current_rate`."""
        return 1.0 - self.current_rate

    def build(self, input_shape=None):
        """Creates nothing: no state depends on the input (`noise_shape` is
        checked against each input by the call)."""

    def _build_at_construction(self):
        """Builds the layer unless a subclass overrides `build`.

        Called at the end of each subclass's `__init__`, once its state
        exists, so a fresh layer is built like `keras.layers.Dropout`
        (`count_params()`, JAX `stateless_call` and saving work before its
        first call). A subclass whose `build` creates input-dependent state
        is left unbuilt, for Keras to build on the first input (Keras's
        layer-test harness checks both).
        """
        if type(self).build is BaseDropout.build:
            self.build()

    def _check_inputs(self, inputs):
        validation.check_float_inputs(self, inputs)
        self._check_noise_shape_fits(tuple(inputs.shape))

    def _check_noise_shape_fits(self, input_shape):
        if self.noise_shape is None:
            return
        if len(self.noise_shape) != len(input_shape):
            raise ValueError(
                f"`noise_shape` must have one entry per input axis: the "
                f"input of layer '{self.name}' has shape {input_shape} "
                f"(rank {len(input_shape)}). Received: "
                f"noise_shape={self.noise_shape} "
                f"(rank {len(self.noise_shape)})."
            )
        for axis, (dim, size) in enumerate(zip(self.noise_shape, input_shape)):
            if dim not in (None, 1) and size is not None and dim != size:
                raise ValueError(
                    f"`noise_shape` entry {axis} must be None, 1 or the "
                    f"input's size {size} on that axis (layer "
                    f"'{self.name}', input shape {input_shape}). "
                    f"Received: noise_shape={self.noise_shape}."
                )

    def _mask_shape(self, inputs):
        if self.noise_shape is None:
            return ops.shape(inputs)
        input_shape = ops.shape(inputs)
        return tuple(
            input_shape[axis] if dim is None else dim
            for axis, dim in enumerate(self.noise_shape)
        )

    def _dropped(self, inputs, rate):
        """Training-mode output at `rate` (a Python float or a scalar)."""
        if isinstance(rate, float) and rate == 0.0:
            return inputs
        keep_prob = 1.0 - rate
        kept = self._keep_mask(self._mask_shape(inputs), keep_prob)
        if self.mode == INVERTED:
            inputs = ops.multiply(inputs, ops.cast(1.0 / keep_prob, inputs.dtype))
        return ops.where(kept, inputs, ops.zeros((), dtype=inputs.dtype))

    def _inference(self, inputs, rate):
        if self.mode == INVERTED:
            return inputs
        return ops.multiply(inputs, ops.cast(1.0 - rate, inputs.dtype))

    def _advance_step(self):
        """Called after each training-mode call; a rate that follows the
        training step (`kdrop.layers.rate.ScheduledRate`) counts it here."""

    def call(self, inputs, training=False):
        self._check_inputs(inputs)
        if not training:
            return self._inference(inputs, self._rate_tensor())
        outputs = self._dropped(inputs, self._rate_tensor())
        self._advance_step()
        return outputs

    def sample(self, inputs):
        """Returns one training-mode draw at the current rate.

        Unlike `layer(inputs, training=True)` this never advances a
        schedule, so Monte-Carlo sampling and probes can use it freely.
        """
        self._check_inputs(inputs)
        return self._dropped(inputs, self._rate_tensor())

    def compute_output_spec(self, inputs, *args, **kwargs):
        # Keras builds symbolic outputs from compute_output_shape without
        # running `call`, so without this check a functional model fed
        # integers would be built and fail only at its first step.
        self._check_inputs(inputs)
        return super().compute_output_spec(inputs, *args, **kwargs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config["noise_shape"] = self.noise_shape
        return config
