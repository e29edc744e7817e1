"""Monte-Carlo dropout: `kdrop.mc_predict`."""

import math
import warnings

import keras
import numpy as np

from kdrop import validation
from kdrop.inference import shared_masks
from kdrop.inference.inputs import flat_inputs, input_batches, model_graph
from kdrop.inference.result import MCResult, Moments, probability_entropy
from kdrop.inference.sampler import cached_sampling_model, default_rows, unsampled_noise
from kdrop.inference.sampling import dropout_like_layers, sampling, seed_generators


class _Draws:
    """Statistics over the passes of one output for one chunk of examples."""

    def __init__(self, keep):
        self.moments = Moments()
        self.entropy_sum = 0.0  # None once a pass is not a probability vector
        self.kept = [] if keep else None

    def add(self, draws):
        """Adds `draws`, an array of shape (samples, examples, ...)."""
        self.moments.add(draws)
        entropies = probability_entropy(np.asarray(draws, dtype=np.float64))
        if entropies is None or self.entropy_sum is None:
            self.entropy_sum = None
        else:
            self.entropy_sum = self.entropy_sum + entropies.sum(axis=0)
        if self.kept is not None:
            self.kept.append(draws)

    def mutual_information(self):
        entropy = probability_entropy(self.moments.mean)
        if entropy is None or self.entropy_sum is None:
            return None
        # Non-negative by Jensen's inequality; clip float rounding below 0.
        return np.maximum(entropy - self.entropy_sum / self.moments.count, 0.0)


def _chunk_size(examples, examples_per_call, previous=None):
    """Examples per compiled call for a batch of `examples`.

    Every chunk of a batch gets the same size (the last one padded), and a
    batch no larger than the previous batch's chunks reuses their size: the
    sampler then sees one input shape, so it is traced once, not again for
    a shorter last chunk (a JAX compilation costs a third of a 50-sample
    call of 1000 MNIST images on the CNN; BENCHMARKS.md). The chunks are
    balanced, so padding adds less than one example per chunk.
    """
    if previous is not None and examples <= previous:
        return previous
    chunks = math.ceil(examples / examples_per_call)
    return math.ceil(examples / chunks)


def _padded(chunk, size):
    """`chunk` (a list of arrays or tensors) with rows repeated up to `size`
    rows; padding repeats real examples, so it cannot produce NaN or
    infinities that a made-up input might."""
    missing = size - len(chunk[0])
    if missing == 0:
        return chunk
    rows = np.arange(size) % len(chunk[0])
    return [
        np.take(value, rows, axis=0)
        if isinstance(value, np.ndarray)
        else keras.ops.take(value, rows, axis=0)
        for value in chunk
    ]


def _sample_chunk(
    sampler, inputs_struct, chunk, samples, calls, keep, before=None, size=None
):
    """Runs `samples` passes over the examples in `chunk`, in `calls` calls.

    `chunk` is padded to `size` examples (its own size if None) and the
    padding's draws are dropped. Returns the output structure of `sampler`
    and a `_Draws` per output, keeping the passes' outputs if `keep`.
    `before(call)`, if given, runs before each call.
    """
    examples = len(chunk[0])
    chunk = _padded(chunk, size or examples)
    stats = None
    for call in range(calls):
        if before is not None:
            before(call)
        outputs = sampler.predict_on_batch(
            keras.tree.pack_sequence_as(inputs_struct, chunk)
        )
        flat = [np.asarray(output) for output in keras.tree.flatten(outputs)]
        stats = stats or [_Draws(keep) for _ in flat]
        for output, stat in zip(flat, stats):
            draws = output.reshape((-1, len(chunk[0])) + output.shape[1:])
            stat.add(draws[: samples - call * len(draws), :examples])
    return outputs, stats


def _concatenate(parts, axis=0):
    return None if any(part is None for part in parts) else np.concatenate(parts, axis)


def mc_predict(
    model,
    x,
    samples=50,
    batch_size=None,
    seed=None,
    return_samples=False,
    masks="per_example",
):
    """Monte-Carlo dropout: mean and spread of `samples` stochastic passes.

    Each pass samples new masks in every dropout-like layer of
    `kdrop.registry` wherever it is in the model: kdrop's and Keras's
    dropout layers, Keras's other training-only noise layers
    (GaussianDropout, AlphaDropout, GaussianNoise), dropout held inside
    other layers (MultiHeadAttention(dropout=...), a custom layer holding
    keras.layers.Dropout), Attention / AdditiveAttention(dropout=...),
    keras.applications' ConvNeXt StochasticDepth (drawn from Keras's
    global generator, seeded and restored around the call), nested models,
    and the `dropout` / `recurrent_dropout` of recurrent layers (LSTM, GRU,
    SimpleRNN, RNN(cell) with any cell or StackedRNNCells, ConvLSTM*,
    inside Bidirectional too: one mask per sequence, reused at every time
    step: the variational RNN dropout of Gal & Ghahramani 2016, which is
    how Keras applies them in training).
    Every other layer (BatchNormalization, random augmentation, custom
    layers reading `training`) stays in inference mode, unlike
    `model(x, training=True)`. WeightScaledDropout samples its
    training-mode mask without rescaling, so the mean estimates the
    weight-scaled inference output; a layer whose rate follows a schedule
    samples at its current rate and its step is not advanced. With `y_s`
    the output of pass `s`:

        mean = 1/S sum_s y_s,    std = sqrt(1/S sum_s (y_s - mean)^2)
        entropy = -sum_c mean_c log(mean_c)     (probability outputs only)
        mutual_information = entropy - 1/S sum_s (-sum_c y_sc log(y_sc))

    How it runs: only the dropout-like layers are switched to sampling, by
    `kdrop.inference.sampling` for the duration of the call; the model's
    other layers are the original objects, in inference mode, so their
    state is used as it is. Its weights, outputs, random state and schedule
    steps are the same afterwards. For Sequential and Functional models,
    layers that no dropout feeds run once per example and their outputs
    are tiled where the stochastic part reads them, so one compiled
    `predict_on_batch` call evaluates many samples of several examples (for
    a CNN with dropout before its classifier, only the classifier runs per
    sample); a subclassed model runs whole on the tiled examples. The
    compiled function is cached per model (the last 8 models), so a second
    call does not retrace; the examples of a batch are split into equal
    chunks, the last one padded by repeating examples (their draws are
    dropped), so a call traces it once. Masks are drawn per row, so every copy gets its
    own; a `noise_shape` whose batch entry is 1 (one mask shared by the
    batch) is sampled per row too, which gives each example the same
    distribution.

    With `masks="shared"`, pass `s` is instead ONE sampled network applied
    to every example of `x` (baal's ConsistentDropout): each dropout-like
    layer draws one mask per pass and broadcasts it over the examples, in
    every compiled call, chunk and dataset batch alike (pass `s` of every
    call starts the layers' seed generators from the same state, a
    function of the seed, `s` and the generator). Each example's draws have
    the same distribution as with per-example masks, so mean and std
    estimate the same quantities, but the examples' draws are correlated
    through the shared masks: the consistent draws BatchBALD
    (`kdrop.acquisition.batch_bald`) needs, and per-pass curves over `x`
    that are smooth. Each call evaluates one pass of up to `batch_size`
    examples (deterministic layers included). Shared: Keras's Dropout,
    SpatialDropout1D/2D/3D, GaussianDropout and GaussianNoise, kdrop's
    dropout layers (DropPath and DropBlock included; DropConnect masks the
    kernel once per pass), dropout inside MultiHeadAttention, and the
    `(1, features)` masks of LSTM, GRU and SimpleRNN. Any other
    dropout-like layer (AlphaDropout, a subclass or a class registered
    with `kdrop.registry.register`) raises ValueError naming its path and
    class, rather than silently drawing per-example masks.

    A layer that holds randomness kdrop does not know (an unregistered
    layer with its own seed generator or a positive `rate` / `dropout`)
    is left in inference mode, with a warning naming its path: register its
    class with `kdrop.registry.register` to sample it. Random augmentation
    layers are left in inference mode on purpose, silently.

    Args:
        model: a Keras model: Sequential, Functional (nested models
            included) or subclassed.
        x: the inputs, as for `model.predict`: an array or tensor, a list /
            dict of them for several inputs, nested lists of numbers, a
            `tf.data.Dataset`, a `keras.utils.PyDataset` or a generator
            (elements `x`, `(x,)`, `(x, y)` or `(x, y, sample_weight)`; the
            targets are ignored, and the results of all batches are
            concatenated).
        samples: int > 0, stochastic forward passes per example.
        batch_size: None or int > 0, the most rows (copies of examples, one
            per sample) evaluated by one compiled call, which bounds memory
            like `model.predict(batch_size=...)`. None: as many as keep the
            largest layer output of one call under 2**24 elements (64 MiB
            in float32), counting unknown dimensions as 1 (pass batch_size
            for models with variable-length inputs); 1024 for subclassed
            models.
        seed: None or an int; the same seed gives the same result, None
            fresh randomness.
        return_samples: bool; if True, `MCResult.draws` keeps every pass's
            output, which costs `samples * model.predict(x).nbytes` of
            memory on top of the compiled calls (e.g. 1000 passes of a
            10-class float32 softmax on 10000 examples: 400 MB; the peak is
            about 3 times that while the pieces are joined). Otherwise only
            running statistics are kept: memory does not grow with
            `samples`, and grows with `x` only by a few float64 numbers per
            output value (measured in BENCHMARKS.md).
        masks: "per_example" (default): every example draws its own masks
            in every pass; "shared": every example of `x` sees the same
            masks in pass `s` (see above).

    Returns:
        `kdrop.MCResult(mean, std, entropy, samples, mutual_information,
        draws)`.

    Raises:
        ValueError: for bad `samples` / `batch_size` / `masks`, `x` that
            does not fit the model or holds no example, a Sequential model
            that was never built, or, with `masks="shared"`, a dropout-like
            layer that cannot share its mask.
        TypeError: for a bad `seed` or `return_samples`, an `x` of a type
            `model.predict` does not take, or a `model` that is not a
            `keras.Model`.

    Example:

    ```python
    result = kdrop.mc_predict(model, x_test, samples=50, seed=0)
    prediction = result.mean.argmax(axis=-1)
    least_sure = np.argsort(result.entropy)[-10:]
    ```

    References:
        - Gal & Ghahramani, "Dropout as a Bayesian Approximation:
          Representing Model Uncertainty in Deep Learning", ICML 2016.
        - Gal & Ghahramani, "A Theoretically Grounded Application of
          Dropout in Recurrent Neural Networks", NeurIPS 2016.
        - Srivastava et al., JMLR 15, 2014, section 7.5 and Fig. 11.
    """
    samples = validation.check_positive_int(samples, "samples")
    if batch_size is not None:
        batch_size = validation.check_positive_int(batch_size, "batch_size")
    seed = validation.check_seed(seed)
    return_samples = validation.check_bool(return_samples, "return_samples")
    masks = shared_masks.check_masks(masks)
    graph = model_graph(model, "mc_predict")
    batches = input_batches(x)
    unsampled = unsampled_noise(model)
    if not dropout_like_layers(model) and not unsampled:
        warnings.warn(
            f"Model '{model.name}' has no dropout layer: every sample is "
            "the same and std is zero.",
            stacklevel=2,
        )
    if unsampled:
        warnings.warn(
            f"mc_predict cannot sample the noise of layer(s) {unsampled} of "
            f"model '{model.name}': they are not registered dropout-like "
            "layers, so they run in inference mode and std leaves out their "
            "noise. Register their class with kdrop.registry.register.",
            stacklevel=2,
        )
    rows = batch_size or default_rows(graph)
    examples_per_call = max(1, rows // samples)
    calls = math.ceil(samples / min(samples, rows))  # per example
    copies = math.ceil(samples / calls)  # samples per call
    before = None
    if masks == shared_masks.SHARED:
        # One pass per call, its rows distinct examples; pass s starts from
        # the same seed states in every chunk and batch.
        examples_per_call, calls, copies = rows, samples, 1
        seed = base = shared_masks.base_seed(seed)
    sampler = cached_sampling_model(model, copies, masks)

    chunk_stats, structure = [], None
    with sampling(model, seed, masks) as sampled:
        if masks == shared_masks.SHARED:
            generators = shared_masks.with_global_generator(
                seed_generators(sampled), sampled
            )

            def before(call):
                shared_masks.seed_pass(generators, base, call)

        size = None
        for batch in batches:
            inputs, struct = flat_inputs(graph, batch)
            lengths = {len(value) for value in inputs}
            if len(lengths) != 1 or 0 in lengths:
                raise ValueError(
                    "`x` must hold at least one example, and the same number "
                    "of examples in every input. Received shape(s) "
                    f"{[tuple(value.shape) for value in inputs]}."
                )
            examples = lengths.pop()
            size = _chunk_size(examples, examples_per_call, size)
            for start in range(0, examples, size):
                chunk = [value[start : start + size] for value in inputs]
                # Only the last call's outputs stay alive (for their
                # structure): keeping every chunk's would grow memory with
                # the size of x.
                structure, stats = _sample_chunk(
                    sampler, struct, chunk, samples, calls, return_samples, before, size
                )
                chunk_stats.append(stats)
    if not chunk_stats:
        raise ValueError("`x` holds no batch: the dataset or generator is empty.")
    per_output = list(zip(*chunk_stats))
    mean = [np.concatenate([s.moments.mean for s in output]) for output in per_output]
    std = [np.concatenate([s.moments.std for s in output]) for output in per_output]
    entropy = [probability_entropy(output_mean) for output_mean in mean]
    information = [
        _concatenate([s.mutual_information() for s in output]) for output in per_output
    ]
    draws = [
        _concatenate([_concatenate(s.kept) for s in output], axis=1)
        if return_samples
        else None
        for output in per_output
    ]
    mean, std, entropy, information, draws = (
        keras.tree.pack_sequence_as(structure, values)
        for values in (mean, std, entropy, information, draws)
    )
    return MCResult(
        mean=mean,
        std=std,
        entropy=entropy,
        samples=samples,
        mutual_information=information,
        draws=draws if return_samples else None,
    )
