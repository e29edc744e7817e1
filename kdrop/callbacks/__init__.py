"""Keras callbacks that log dropout's effects to TensorBoard."""

from kdrop.callbacks.activation_sparsity import ActivationSparsity
from kdrop.callbacks.backup_and_restore import BackupAndRestore
from kdrop.callbacks.dropout_rate_logger import DropoutRateLogger
from kdrop.callbacks.generalization_gap import GeneralizationGap
from kdrop.callbacks.lr_momentum import LRMomentumScheduler
from kdrop.callbacks.mc_dropout_monitor import MCDropoutMonitor
from kdrop.callbacks.weight_histograms import WeightHistograms
from kdrop.tensorboard.hparams import log_hparams, log_hparams_config

__all__ = [
    "ActivationSparsity",
    "BackupAndRestore",
    "DropoutRateLogger",
    "GeneralizationGap",
    "LRMomentumScheduler",
    "MCDropoutMonitor",
    "WeightHistograms",
    "log_hparams",
    "log_hparams_config",
]
