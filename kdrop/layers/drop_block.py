"""DropBlock: dropout of contiguous regions of feature maps."""

import math

import keras
from keras import ops

from kdrop import validation
from kdrop.layers.dropout import _RateDropout

DATA_FORMATS = ("channels_last", "channels_first")


class _DropBlock(_RateDropout):
    """DropBlock over `rank` spatial axes; subclasses set `rank`."""

    rank = None

    def __init__(
        self,
        rate,
        block_size,
        data_format=None,
        share_across_channels=False,
        seed=None,
        **kwargs,
    ):
        super().__init__(rate, seed=seed, **kwargs)
        self.block_size = validation.check_positive_int(block_size, "block_size")
        self.data_format = validation.check_choice(
            keras.config.image_data_format() if data_format is None else data_format,
            "data_format",
            DATA_FORMATS,
        )
        self.share_across_channels = validation.check_bool(
            share_across_channels, "share_across_channels"
        )

    def _spatial_axes(self):
        first = 1 if self.data_format == "channels_last" else 2
        return tuple(range(first, first + self.rank))

    def _check_inputs(self, inputs):
        super()._check_inputs(inputs)
        shape = tuple(inputs.shape)
        if len(shape) != self.rank + 2:
            raise ValueError(
                f"Layer '{self.name}' ({type(self).__name__}) expects inputs "
                f"of rank {self.rank + 2} (batch, {self.rank} spatial "
                f"axes, channels). Received inputs of shape {shape}."
            )
        spatial = [shape[axis] for axis in self._spatial_axes()]
        if any(size is not None and size < self.block_size for size in spatial):
            raise ValueError(
                f"`block_size` of layer '{self.name}' must fit in the "
                f"input's spatial size {tuple(spatial)} ({self.data_format} "
                f"input of shape {shape}). Received: "
                f"block_size={self.block_size}."
            )

    def _dropped(self, inputs, rate):
        if isinstance(rate, float) and rate == 0.0:
            return inputs
        block = self.block_size
        shape = ops.shape(inputs)
        spatial_axes = self._spatial_axes()
        spatial = [shape[axis] for axis in spatial_axes]
        valid = [size - block + 1 for size in spatial]
        # Ghiasi et al.'s gamma: seeds at the `valid` block positions drop
        # about `rate` of the map (overlapping blocks make it a bit less).
        gamma = (
            rate
            / block**self.rank
            * ops.cast(math.prod(spatial), "float32")
            / ops.cast(math.prod(valid), "float32")
        )
        # One seed per block position, i.e. per top-left corner: every block
        # lies inside the map, and zero padding of `block - 1` on both sides
        # followed by a `block`-wide max pool marks each unit a block covers.
        seed_shape = list(shape)
        for axis, size in zip(spatial_axes, valid):
            seed_shape[axis] = size
        if self.share_across_channels:
            seed_shape[-1 if self.data_format == "channels_last" else 1] = 1
        # gamma <= rate < 1 (a block fits at most `valid` times), so the
        # seeds' complement has a keep probability in (0, 1].
        no_seed = self._keep_mask(tuple(seed_shape), 1.0 - gamma)
        seeds = ops.cast(ops.logical_not(no_seed), "float32")
        padding = [[0, 0]] * len(seed_shape)
        for axis in spatial_axes:
            padding[axis] = [block - 1, block - 1]
        dropped = ops.max_pool(
            ops.pad(seeds, padding),
            pool_size=block,
            strides=1,
            padding="valid",
            data_format=self.data_format,
        )
        kept = 1.0 - dropped
        # Renormalised by count(mask) / count_ones(mask) as in the paper
        # (floored at one kept unit when every unit is dropped).
        kept_fraction = ops.maximum(
            ops.mean(kept), 1.0 / ops.cast(ops.size(kept), "float32")
        )
        return ops.multiply(inputs, ops.cast(kept / kept_fraction, inputs.dtype))

    def get_config(self):
        config = super().get_config()
        del config["noise_shape"]  # the mask's shape is set by the blocks
        config.update(
            {
                "block_size": self.block_size,
                "data_format": self.data_format,
                "share_across_channels": self.share_across_channels,
            }
        )
        return config


_DOC = """DropBlock{rank}D: drops contiguous {block} regions of feature maps.

    Bernoulli dropout of single units barely regularises convolutional
    features, whose neighbours carry the same information; DropBlock drops
    `block_size`-wide {block} blocks instead. With `rate = 1 - keep_prob`
    and a feature map of size `feat_size` ({sizes}):

        gamma = rate / block_size**{rank} * {gamma_ratio}
        seeds ~ Bernoulli(gamma) at each position where a whole block fits
        mask  = 1 - max_pool(seeds, block_size)   (1 = kept)
        training:  y = x * mask * count(mask) / count_ones(mask)
        inference: y = x

    `count` and `count_ones` run over the whole mask (batch included), as in
    the paper and its TPU code. Overlapping blocks make the dropped fraction
    a little less than `rate`. The paper ramps `keep_prob` linearly from 1
    to its target over training, which a schedule as `rate` does inside the
    compiled train step:

    ```python
    # keep_prob 1 -> 0.9 over the whole run (Ghiasi et al.'s best results)
    kdrop.layers.DropBlock{rank}D(
        kdrop.schedules.Linear(0.0, 0.1, steps=epochs * steps_per_epoch),
        block_size={example_block},
    )
    ```

    Args:
        rate: float in [0, 1), `1 - keep_prob`, or a schedule of the
            training step (a `kdrop.schedules` schedule, a Keras
            learning-rate schedule or a `keras.ops` callable), evaluated
            inside the compiled train step as `clip(schedule(step), 0,
            0.99)`.
        block_size: int > 0, the side of a dropped block (the paper's best:
            7 on ResNet-50's last groups); at most the input's spatial size.
        data_format: `"channels_last"` ({last}) or `"channels_first"`
            ({first}); defaults to `keras.config.image_data_format()`.
        share_across_channels: bool; if True every channel drops the same
            blocks, otherwise each channel draws its own (the default).
        seed: None or an int; the same seed gives the same masks.
        **kwargs: base layer keyword arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: floating-point tensor of rank {input_rank}.
        training: bool, whether to drop blocks.

    Example:

    ```python
    x = keras.layers.Conv{rank}D(64, 3, padding="same")(x)
    x = kdrop.layers.DropBlock{rank}D(0.1, block_size={example_block})(x)
    ```

    References:
        - Ghiasi, Lin, Le, "DropBlock: A regularization method for
          convolutional networks", NeurIPS 2018, Algorithm 1 and eq. (1).
        - tensorflow/tpu `models/official/resnet/resnet_model.py`
          (`dropblock`).
    """


@keras.saving.register_keras_serializable(package="kdrop")
class DropBlock1D(_DropBlock):
    __doc__ = _DOC.format(
        rank=1,
        block="1-D",
        sizes="its length",
        gamma_ratio="feat_size / (feat_size - block_size + 1)",
        example_block=5,
        last="`(batch, steps, channels)`",
        first="`(batch, channels, steps)`",
        input_rank=3,
    )
    rank = 1


@keras.saving.register_keras_serializable(package="kdrop")
class DropBlock2D(_DropBlock):
    __doc__ = _DOC.format(
        rank=2,
        block="square",
        sizes="height x width",
        gamma_ratio="(H * W) / ((H - block_size + 1) * (W - block_size + 1))",
        example_block=7,
        last="`(batch, height, width, channels)`",
        first="`(batch, channels, height, width)`",
        input_rank=4,
    )
    rank = 2
