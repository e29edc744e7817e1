"""Inference with dropout: fold the weight scaling, or sample (MC dropout).

- `fold`: `fold_dropout`, the inference model with dropout folded away.
- `mc`: `mc_predict`, Monte-Carlo dropout.
- `sampling`: the `with` block in which only the dropout-like layers of a
  model draw training-mode samples.
- `sampler`: the compiled model that runs many passes in one call.
- `result`: `MCResult`, its running moments and entropy.
- `inputs`: what `mc_predict` accepts as `x` (as `model.predict` does).

Both entry points REUSE the original model's layers for everything that
is not dropout: they build a new graph (`keras.models.clone_model` with a
`clone_function` returning the layer) that calls them. So every piece of
layer state is kept exactly (adapted Normalization statistics, lookup
tables, Lambda functions, custom layers' attributes), and nothing is
re-created from a config.

And both leave the original model exactly as it was, call nodes included
(each symbolic call of a layer appends a node to `layer._inbound_nodes`,
which Keras and kdrop's callbacks read as the layer's uses in its model):
`mc_predict`'s internal sampling model calls the original layer objects and
removes the nodes it added once it is built
(`keras_internals.keeping_call_nodes`); `fold_dropout`'s model, which is
returned and can be saved, needs its nodes, so it calls
`keras_internals.detached_copy` of each layer: the same attribute values
and the same variables, with call nodes of its own. Operation nodes
(`x + h`, `keras.ops.tanh(h)`, the `NotEqual` of `Embedding(mask_zero=True)`)
are deterministic: MC dropout runs them as they are, and a fold factor
crosses only the few listed in `kdrop.registry.SCALE_COMMUTING_OPS`.
"""

from kdrop.inference.fold import fold_dropout
from kdrop.inference.mc import mc_predict
from kdrop.inference.result import MCResult
from kdrop.inference.sampling import dropout_like_layers, sampling

__all__ = ["MCResult", "dropout_like_layers", "fold_dropout", "mc_predict", "sampling"]
