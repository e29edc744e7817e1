"""The one-line description of every tag family kdrop's callbacks write.

TensorBoard shows a tag's description (its summary metadata) next to the
chart, so each says what is measured, in which mode and per what step.
Per-epoch tags use Keras's epoch index (0-based, the axis of `epoch_loss`);
per-batch tags, all under `batch/`, the 0-based global index of the
training step about to run (Keras's own `batch_*` and
`evaluation_*_vs_iterations` count steps done, 1-based).
"""

_PER_BATCH = "Per batch: step = 0-based global index of the training step about to run."

DESCRIPTIONS = {
    "dropout_rate": "Drop rate of the layer that its next training step uses, "
    "written at each epoch end. Per epoch.",
    "batch/dropout_rate": f"Drop rate of the layer in the training step. {_PER_BATCH}",
    "dropped_fraction": "Fraction of the dropout layer's non-zero inputs that one "
    "training-mode draw zeroes, on the probe batch. Per epoch.",
    "sparsity": "Fraction of the layer's outputs <= threshold on the probe "
    "batch: inference mode; a dropout layer's output in one training-mode "
    "draw. Per epoch.",
    "mean_activation": "Mean of the layer's outputs on the probe batch: "
    "inference mode; a dropout layer's output in one training-mode draw. "
    "Per epoch.",
    "activations": "Histogram (30 bins, min to max) of the layer's outputs on "
    "the probe batch: inference mode; a dropout layer's output in one "
    "training-mode draw. Per epoch.",
    "nonfinite_fraction": "Fraction of NaN/Inf among the layer's outputs on the "
    "probe batch (left out of its other statistics); written at the first "
    "and last probe, whenever non-zero and where it changes. Per epoch.",
    "learning_rate": "Learning rate the optimizer used in the epoch (with a "
    "per-batch schedule, in its last step). Per epoch.",
    "batch/learning_rate": f"Learning rate set for the training step. {_PER_BATCH}",
    "momentum": "Momentum the optimizer used in the epoch (with a per-batch "
    "schedule, in its last step). Per epoch.",
    "batch/momentum": f"Momentum set for the training step. {_PER_BATCH}",
    "weights": "Histogram (30 bins, min to max) of the weight's values at the "
    "epoch end. Per epoch.",
    "weight_norm": "L2 norm of the weight at the epoch end. Per epoch.",
    "gradients": "Histogram (30 bins) of d loss / d weight on the probe batch "
    "in inference mode (no dropout noise), at the epoch end. Per epoch.",
    "gradient_norm": "L2 norm of d loss / d weight on the probe batch in "
    "inference mode (no dropout noise), at the epoch end. Per epoch.",
    "generalization_gap": "Validation minus training value of the loss or "
    "metric. Per epoch.",
    "mc_dropout/accuracy": "Accuracy on the held-out batch of the MC-dropout "
    "average (mc) or the deterministic prediction. Per epoch.",
    "mc_dropout/nll": "Mean negative log-likelihood (nats) on the held-out "
    "batch of the MC-dropout average (mc) or the deterministic prediction. "
    "Per epoch.",
    "mc_dropout/brier": "Brier score on the held-out batch of the MC-dropout "
    "average (mc) or the deterministic prediction. Per epoch.",
    "mc_dropout/ece": "Expected calibration error (equal-width confidence "
    "bins) on the held-out batch of the MC-dropout average (mc) or the "
    "deterministic prediction. Per epoch.",
    "mc_dropout/mutual_information": "Mean BALD score (mutual information "
    "between prediction and masks, nats) over the held-out batch. Per epoch.",
    "mc_dropout/reliability": "Accuracy per confidence bin of the MC-dropout "
    "and deterministic predictions; the diagonal is perfect calibration. "
    "Per epoch.",
}


def describe(tag):
    """The description of `tag`'s family: the longest key of DESCRIPTIONS
    that is `tag` itself or a prefix of it followed by "/"."""
    families = [
        family
        for family in DESCRIPTIONS
        if tag == family or tag.startswith(family + "/")
    ]
    if not families:
        raise KeyError(
            f"No description for tag {tag!r}: add its family to DESCRIPTIONS."
        )
    return DESCRIPTIONS[max(families, key=len)]
