"""What kdrop writes for TensorBoard, without TensorFlow.

- `writer`: event files (scalars, histograms, images, layouts) written with
  the `tensorboard` package alone, on every Keras backend.
- `families`: the table of tag families: each one's description and chart.
- `dashboard`: the CUSTOM SCALARS layout of each log directory, built from
  the families' charts.
- `hparams`: runs and their hyperparameters for the HPARAMS dashboard.
- `aggregate`: the mean and +-1 std band over seeds of every per-epoch
  curve, as margin charts.

The callbacks that feed them are in `kdrop.callbacks`.
"""

from kdrop.tensorboard.aggregate import aggregate_seeds
from kdrop.tensorboard.hparams import log_hparams, log_hparams_config
from kdrop.tensorboard.writer import SummaryWriter

__all__ = ["SummaryWriter", "aggregate_seeds", "log_hparams", "log_hparams_config"]
