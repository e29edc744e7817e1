"""Inference with dropout: fold the weight scaling, or sample (MC dropout).

- `fold`: `fold_dropout`, the inference model with dropout folded away.
- `mc`: `mc_predict`, Monte-Carlo dropout.
- `sampling`: the `with` block in which only the dropout-like layers of a
  model draw training-mode samples.
- `sampler`: the compiled model that runs many passes in one call.
- `result`: `MCResult`, its running moments and entropy.
- `inputs`: what `mc_predict` accepts as `x` (as `model.predict` does).

Both entry points REUSE the original model's layer objects for everything
that is not dropout: they build a new graph (`keras.models.clone_model`
with a `clone_function` returning the same layer) that calls the original
layers. So every piece of layer state is kept exactly (adapted
Normalization statistics, lookup tables, Lambda functions, custom layers'
attributes), and nothing is re-created from a config.
"""

from kdrop.inference.fold import fold_dropout
from kdrop.inference.mc import mc_predict
from kdrop.inference.result import MCResult
from kdrop.inference.sampling import dropout_like_layers, sampling

__all__ = ["MCResult", "dropout_like_layers", "fold_dropout", "mc_predict", "sampling"]
