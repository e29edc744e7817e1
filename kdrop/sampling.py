"""Alias of `kdrop.inference.sampling`, kept for code written before the
inference package: `kdrop.sampling.sampling(model, seed)` and
`kdrop.sampling.dropout_like_layers(model)`."""

from kdrop.inference.sampling import dropout_like_layers, sampling

__all__ = ["dropout_like_layers", "sampling"]
