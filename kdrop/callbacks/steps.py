"""The step of kdrop's per-batch values: batches trained, not updates.

A step is one training batch (one `train_step`), the unit a scheduled
layer's counter counts. `optimizer.iterations` counts something else in
two settings: under `gradient_accumulation_steps=k` it counts weight
updates (one per k batches), and a batch whose update a mixed-precision
`LossScaleOptimizer` skipped (non-finite gradients) does not advance it.
The optimizer's own batch counter (`keras_internals.batches_applied`)
counts accumulated batches but not skipped ones, so the callbacks keep
the difference: at each epoch end they leave on the optimizer a
`BatchesTrained(applied, trained)` mark, "when the optimizer had taken
`applied` batches, `trained` batches had been trained", and the next
epoch, `fit` call or callback counts on from it. Every callback computes
the same mark, so two of them in one `fit` never count a batch twice.
"""

import dataclasses

from kdrop import keras_internals

# The optimizer attribute holding its BatchesTrained mark.
MARK = "_kdrop_batches_trained"


@dataclasses.dataclass(frozen=True)
class BatchesTrained:
    """`trained` batches had been trained when the optimizer had taken
    `applied` of them."""

    applied: int
    trained: int


def _optimizer(model):
    optimizer = getattr(model, "optimizer", None)
    return getattr(optimizer, "inner_optimizer", optimizer)


def batches_applied(model):
    """The batches the model's optimizer has taken (0 without one)."""
    optimizer = _optimizer(model)
    return 0 if optimizer is None else keras_internals.batches_applied(optimizer)


def batches_trained(model):
    """How many batches `model` has trained on, from its optimizer's count
    plus the skipped updates kdrop's callbacks saw. A mark newer than the
    optimizer's count (its variables were restored from a backup) is not
    used."""
    applied = batches_applied(model)
    mark = getattr(_optimizer(model), MARK, None)
    if mark is None or applied < mark.applied:
        return applied
    return mark.trained + applied - mark.applied


def mark_batches_trained(model, trained):
    """Records that `model` has trained `trained` batches, now."""
    optimizer = _optimizer(model)
    if optimizer is not None:
        setattr(optimizer, MARK, BatchesTrained(batches_applied(model), trained))


def batches_in_epoch(params, last_batch, steps_per_execution, applied):
    """The batches of an epoch whose last batch hook got `last_batch` (the
    first batch of the last block of `steps_per_execution` steps), with
    `params` from `fit` and `applied` the batches the optimizer took in the
    epoch (restored batches included).

    With a known number of steps the last block is cut there; without one
    the block's length is unknown and the optimizer's count fills it in
    (a skipped update in a partial last block is then not counted).
    """
    if last_batch is None:
        return applied
    steps = (params or {}).get("steps")
    if steps:
        return min(steps, last_batch + steps_per_execution)
    return max(last_batch + 1, applied)
