"""MC dropout against the deterministic prediction, in TensorBoard."""

import io

import keras
import numpy as np

from kdrop import inference, keras_internals, optional, uncertainty, validation
from kdrop.callbacks.base import (
    PeriodicLoggingCallback,
    check_probe_shape,
    probe_batch_xy,
)

PREFIX = "mc_dropout"
METRICS = {
    "accuracy": uncertainty.accuracy,
    "nll": uncertainty.negative_log_likelihood,
    "brier": uncertainty.brier_score,
}
PREDICTIONS = ("mc", "deterministic")


def _png(figure):
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


class MCDropoutMonitor(PeriodicLoggingCallback):
    """Logs MC-dropout calibration and uncertainty on held-out data.

    At the end of every `every_n_epochs`-th epoch and of the fit's last
    epoch, on the held-out batch `(x, y)`, compares
    `kdrop.mc_predict(model, x, samples)` (the average of `samples`
    stochastic passes) with the deterministic prediction
    `model.predict_on_batch(x)` (the weight-scaling rule; in `batch_size`
    slices if given) and logs, with `<p>` one of
    `mc` / `deterministic`:

        mc_dropout/accuracy/<p>, mc_dropout/nll/<p>, mc_dropout/brier/<p>,
        mc_dropout/ece/<p>            (`bins` equal-width confidence bins)
        mc_dropout/mutual_information  (mean over x of the BALD score, nats)
        mc_dropout/reliability         (image: both reliability diagrams)

    computed by the functions of `kdrop.uncertainty`, plus a CUSTOM SCALARS
    layout that draws each metric's two curves in one chart. The model must
    have one softmax (probability) output; `y` holds class indices or
    one-hot rows.

    The masks are drawn from `seed` at every logged epoch (the same masks
    each time when the weights are unchanged), so the curves move with the
    weights, not with the draw.

    Cost. A logged epoch runs, for the `n` held-out images, one
    deterministic pass and `kdrop.mc_predict`'s `samples` passes through
    the layers after the first dropout layer (the layers before it run once
    per image), plus the metrics and the PNG. Relative to a training epoch
    of `N` images, averaged over epochs:

        cost / epoch ≈ (n * (c_det + samples * c_mc) + c_png)
                       / (every_n_epochs * N * c_train)

    with `c_det` a deterministic forward pass per image (twice: the
    prediction and mc_predict's shared layers), `c_mc` one pass of the
    layers after the dropout per image, `c_train` a training step per
    image. For the MNIST CNN of the experiments (Dropout before the
    Dense classifier; 4000 training images, 1000 held out, batch 128;
    measured on a 2-core CPU): `c_det` ≈ 0.5 `c_train`, `c_mc` ≈ 0.05
    `c_train`, `c_png` ≈ 0.2 training epochs; a logged epoch with 30
    samples cost 68 % of a training epoch, with 20 samples about 57 %,
    so the defaults (20 samples, every 5 epochs) cost about 11 % per
    epoch (BENCHMARKS.md), plus one logged epoch at the end of a fit
    whose length is not a multiple of `every_n_epochs`. On the full
    60000-image training set the same monitor costs 15 times less relative
    to an epoch: log more often there, or pass fewer images or samples on
    small ones.

    Works on every backend with Sequential (built) and Functional models.
    Files, steps (the epoch index) and flushing follow the other kdrop
    callbacks.

    Args:
        log_dir: directory; events go to `log_dir/train`.
        data: the held-out `(x, y)` batch, or a `tf.data.Dataset` whose
            first batch is used.
        samples: int > 0, stochastic passes per example (default 20).
        bins: int > 0, confidence bins of the ECE and the diagram.
        every_n_epochs: int > 0, log at the end of every N-th epoch
            and of the fit's last epoch (default 5: see the cost above).
        batch_size: None or int > 0, as for `kdrop.mc_predict`.
        seed: None or an int, the seed of `kdrop.mc_predict`.
        reliability_diagram: bool, whether to log the diagram image.

    Example:

    ```python
    monitor = kdrop.callbacks.MCDropoutMonitor(
        "logs/run1", data=(x_val, y_val), samples=30, every_n_epochs=5)
    model.fit(x, y, epochs=50, callbacks=[monitor])
    # tensorboard --logdir logs/run1: SCALARS / CUSTOM SCALARS mc_dropout/...
    ```

    References:
        - Gal & Ghahramani, "Dropout as a Bayesian Approximation", ICML 2016.
        - Guo et al., "On Calibration of Modern Neural Networks", ICML 2017.
    """

    def __init__(
        self,
        log_dir,
        data,
        samples=20,
        bins=15,
        every_n_epochs=5,
        batch_size=None,
        seed=0,
        reliability_diagram=True,
    ):
        super().__init__(log_dir, every_n_epochs)
        self.x, y = probe_batch_xy(data)
        if y is None:
            raise ValueError(
                "`data` must be a held-out (x, y) batch with class labels y: "
                "calibration needs the labels. Received data without targets."
            )
        y = np.asarray(keras.ops.convert_to_numpy(y))
        self.y = y.argmax(axis=-1) if y.ndim == 2 and y.shape[1] > 1 else y
        self.samples = validation.check_positive_int(samples, "samples")
        self.bins = validation.check_positive_int(bins, "bins")
        if batch_size is not None:
            batch_size = validation.check_positive_int(batch_size, "batch_size")
        self.batch_size = batch_size
        self.seed = validation.check_seed(seed)
        self.reliability_diagram = validation.check_bool(
            reliability_diagram, "reliability_diagram"
        )
        # Checked here, not at the first epoch's end.
        self._figure_module = (
            optional.require(
                "matplotlib.figure",
                "MCDropoutMonitor(reliability_diagram=True) (pass False to log "
                "the metrics without the diagram)",
            )
            if self.reliability_diagram
            else None
        )

    def on_train_begin(self, logs=None):
        try:
            outputs = self.model.outputs
        except (AttributeError, ValueError):  # subclassed, unbuilt Sequential
            outputs = None
        if not outputs:
            raise ValueError(
                "MCDropoutMonitor needs a Functional model, or a Sequential "
                "model started with keras.Input: kdrop.mc_predict samples "
                f"through the layer graph. Received {type(self.model).__name__} "
                f"'{self.model.name}' without one."
            )
        check_probe_shape(self.model, self.x)
        if len(outputs) != 1 or len(outputs[0].shape) != 2 or outputs[0].shape[1] < 2:
            raise ValueError(
                "MCDropoutMonitor needs a model with one output of shape "
                "(batch, classes), classes >= 2, holding class probabilities. "
                f"Model '{self.model.name}' has output shape(s) "
                f"{[tuple(output.shape) for output in outputs]}."
            )
        n = len(keras.tree.flatten(self.x)[0])
        self.y = uncertainty.check_labels(self.y, n, outputs[0].shape[1])
        super().on_train_begin(logs)

    def _predict(self):
        # predict_on_batch skips the data adapter that `predict` builds on
        # every call: 0.3 s instead of 1-1.5 s for 1000 images of the CNN.
        n = len(keras.tree.flatten(self.x)[0])
        rows = self.batch_size or n
        outputs = []
        for start in range(0, n, rows):
            part = slice(start, start + rows)
            batch = keras.tree.map_structure(lambda v, part=part: v[part], self.x)
            # The model's random state is kept (a recurrent layer draws its
            # masks in inference mode too).
            with keras_internals.keeping_seed_states(self.model):
                prediction = np.asarray(self.model.predict_on_batch(batch))
            # Under a tf.distribute strategy with several replicas, Keras
            # 3.15's predict_on_batch runs the whole batch on every replica
            # and concatenates the (identical, inference-mode) copies: 2n
            # rows on 2 replicas. The first n rows are one replica's.
            outputs.append(prediction[: len(keras.tree.flatten(batch)[0])])
        return np.concatenate(outputs)

    def log_epoch(self, epoch):
        predictions = {
            "mc": inference.mc_predict(
                self.model,
                self.x,
                samples=self.samples,
                batch_size=self.batch_size,
                seed=self.seed,
            ),
            "deterministic": self._predict(),
        }
        tables = {}
        for name, probs in predictions.items():
            for metric, function in METRICS.items():
                value = function(probs, self.y)
                self.write_scalar(f"{PREFIX}/{metric}/{name}", value, epoch)
            tables[name] = uncertainty.reliability(probs, self.y, self.bins)
            self.write_scalar(f"{PREFIX}/ece/{name}", tables[name].ece, epoch)
        information = uncertainty.mutual_information(predictions["mc"])
        self.write_scalar(f"{PREFIX}/mutual_information", information.mean(), epoch)
        if self.reliability_diagram:
            # 800 x 800 pixels: TensorBoard's IMAGES dashboard shows an image
            # at its own size up to the card's width, so a smaller one is a
            # thumbnail unless "Show actual image size" is ticked.
            figure = self._figure_module.Figure(
                figsize=(5, 5), dpi=160, layout="constrained"
            )
            ax = figure.add_subplot()
            labels = ("MC dropout", "deterministic")
            for index, (name, label) in enumerate(zip(PREDICTIONS, labels)):
                uncertainty.plot_reliability(
                    tables[name], ax=ax, label=label, slot=(index, len(labels))
                )
            ax.set_title(f"epoch {epoch}")
            self.write_image(f"{PREFIX}/reliability", _png(ax.figure), epoch)
