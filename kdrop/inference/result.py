"""`MCResult` and the statistics it holds: running moments and entropy."""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class MCResult:
    """Result of `kdrop.mc_predict`: Monte-Carlo dropout statistics.

    For a model with several outputs each field has the structure of
    `model.predict(x)` (a list or dict with one entry per output).

    Attributes:
        mean: float64 array shaped like `model.predict(x)`, the average of
            the sampled outputs.
        std: float64 array of the same shape, their population standard
            deviation over samples (ddof=0).
        entropy: float64 array of shape `mean.shape[:-1]`, the predictive
            entropy `-sum(mean * log(mean))` over the last axis (in nats),
            when the outputs are probabilities (non-negative rows of at
            least two entries summing to 1, e.g. a softmax); else None.
        samples: the number of stochastic forward passes per example.
        mutual_information: float64 array shaped like `entropy`, the
            mutual information between the prediction and the dropout masks
            (BALD), `entropy - 1/S sum_s H[y_s]` in nats, where `H[y_s]` is
            the entropy of pass `s`; None where `entropy` is None or a pass
            is not a probability vector.
        draws: None unless `mc_predict(..., return_samples=True)`: then the
            outputs of every pass, in the model's output dtype, shaped
            `(samples,) + mean.shape` (per output for several outputs).
    """

    mean: object
    std: object
    entropy: object
    samples: int
    mutual_information: object = None
    draws: object = None


class Moments:
    """Running mean and sum of squared deviations over samples.

    Batches of samples are merged with Chan et al.'s pairwise update, which
    avoids the cancellation of `E[y^2] - E[y]^2` when the spread is small
    relative to the mean.
    """

    def __init__(self):
        self.count, self.mean, self.m2 = 0, 0.0, 0.0

    def add(self, batch):
        """Adds `batch`, an array of shape (samples, ...)."""
        batch = np.asarray(batch, dtype=np.float64)
        count = len(batch)
        batch_mean = batch.mean(axis=0)
        batch_m2 = np.square(batch - batch_mean).sum(axis=0)
        total = self.count + count
        delta = batch_mean - self.mean
        self.mean = self.mean + delta * (count / total)
        self.m2 = self.m2 + batch_m2 + np.square(delta) * (self.count * count / total)
        self.count = total

    @property
    def std(self):
        return np.sqrt(self.m2 / self.count)


def entropy(probs):
    """Entropy `-sum(p * log(p))` over the last axis, in nats (0 log 0 = 0)."""
    probs = np.asarray(probs, dtype=np.float64)
    terms = np.where(probs > 0, probs * np.log(np.where(probs > 0, probs, 1.0)), 0.0)
    return -terms.sum(axis=-1)


def probability_entropy(mean):
    """`entropy(mean)` where `mean` holds probability vectors (at least two
    non-negative entries summing to 1 on the last axis), else None."""
    if mean.ndim < 2 or mean.shape[-1] < 2:
        return None
    if np.any(mean < 0) or not np.allclose(mean.sum(axis=-1), 1.0, atol=1e-3):
        return None
    return entropy(mean)
